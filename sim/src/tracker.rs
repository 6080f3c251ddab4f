//! The swarm's tracker: whatever answers the engines' HTTP announces.
//!
//! The engines announce as they would to a real tracker: an `Output::TrackerHttp` with
//! the bytes of an HTTP GET. The simulator hands those bytes to a [`Tracker`] together
//! with the address the request comes from, and gives the engine the HTTP answer bytes
//! one tracker round trip later. So the engines' tracker client (announce schedule,
//! request encoding, answer parsing) runs for real.
//!
//! [`CoreTracker`], the default, is core's tracker server (`TrackerServer`), the state
//! machine the `shoal tracker` command runs: the request bytes go through its HTTP request
//! reader and announce logic, so a simulation exercises the real swarm table, peer
//! selection and expiry. [`SwarmTracker`] is a minimal stand-in kept here (one swarm
//! table, random peers, no expiry), useful to tell the tracker's influence on a result
//! from the engines'.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use shoal_core::rng::Rng;
use shoal_core::tracker::server::{
    http::error_response, parse_request_head, ServerConfig, TrackerServer, MAX_REQUEST_HEAD,
};
use shoal_core::tracker::{
    encode_announce_response, encode_failure_response, parse_query, AnnounceEvent, AnnounceResponse,
};
use shoal_core::PeerId;

/// Answers HTTP announces.
pub trait Tracker {
    /// The whole HTTP response to `request` (the bytes an engine sent), coming from `from`.
    fn http(&mut self, from: IpAddr, request: &[u8], now: Instant) -> Vec<u8>;
}

/// Core's tracker server behind the [`Tracker`] seam.
pub struct CoreTracker {
    server: TrackerServer,
}

impl CoreTracker {
    /// A server asking for announces every `interval`, its peer selection seeded by `seed`.
    pub fn new(seed: u64, interval: Duration, now: Instant) -> Self {
        let mut secret = [0u8; 32];
        let mut rng = Rng::new(seed ^ 0x005e_c2e7);
        for chunk in secret.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        let config = ServerConfig {
            interval,
            min_interval: interval / 2,
            peer_timeout: interval * 2 + Duration::from_secs(300),
            rng_seed: seed,
            secret,
            ..ServerConfig::default()
        };
        CoreTracker {
            server: TrackerServer::new(config, now),
        }
    }

    pub fn server(&self) -> &TrackerServer {
        &self.server
    }
}

impl Tracker for CoreTracker {
    fn http(&mut self, from: IpAddr, request: &[u8], now: Instant) -> Vec<u8> {
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        match parse_request_head(request, MAX_REQUEST_HEAD) {
            Ok(Some(head)) => self
                .server
                .serve_http(&head, from, now)
                .unwrap_or_else(|| error_response(404)),
            _ => error_response(400),
        }
    }
}

/// What [`SwarmTracker`] reads from an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    pub peer_id: PeerId,
    pub port: u16,
    pub left: u64,
    pub event: AnnounceEvent,
    pub numwant: u32,
    pub compact: bool,
}

/// Reads the announce fields out of an HTTP request's request line. Fields other than
/// these are ignored (the swarm has one torrent).
pub fn parse_announce(request: &[u8]) -> Result<Announce, String> {
    let line_end = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or("no request line")?;
    let line = &request[..line_end];
    let target = line
        .strip_prefix(b"GET ")
        .ok_or("not a GET")?
        .split(|&b| b == b' ')
        .next()
        .ok_or("no target")?;
    let query = match target.iter().position(|&b| b == b'?') {
        Some(q) => &target[q + 1..],
        None => return Err("no query".into()),
    };
    let mut a = Announce {
        peer_id: PeerId([0; 20]),
        port: 0,
        left: 0,
        event: AnnounceEvent::None,
        numwant: 50,
        compact: false,
    };
    let mut have_id = false;
    let num = |v: &[u8]| -> Result<u64, String> {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "bad number".to_string())
    };
    for (k, v) in parse_query(query) {
        match &k[..] {
            b"peer_id" => {
                a.peer_id = PeerId(v.try_into().map_err(|_| "peer_id is not 20 bytes")?);
                have_id = true;
            }
            b"port" => a.port = u16::try_from(num(&v)?).map_err(|_| "bad port")?,
            b"left" => a.left = num(&v)?,
            b"numwant" => a.numwant = u32::try_from(num(&v)?).unwrap_or(u32::MAX),
            b"compact" => a.compact = v == b"1",
            b"event" => a.event = AnnounceEvent::from_http_str(&v),
            _ => {}
        }
    }
    if !have_id || a.port == 0 {
        return Err("peer_id and port are required".into());
    }
    Ok(a)
}

/// An HTTP/1.1 200 answer around a bencoded body.
pub fn http_ok(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

struct Entry {
    peer_id: PeerId,
    addr: SocketAddr,
    seed: bool,
}

/// A one-torrent tracker: remembers who announced, answers with peers drawn at random
/// (seeds are not sent to seeds), forgets peers that announce `stopped`.
pub struct SwarmTracker {
    peers: Vec<Entry>,
    /// Peer id → index in `peers`. Only looked up, never iterated: its order cannot leak.
    index: HashMap<PeerId, usize>,
    rng: Rng,
    interval: Duration,
    max_peers: u32,
    pub announces: u64,
}

impl SwarmTracker {
    pub fn new(seed: u64, interval: Duration) -> Self {
        SwarmTracker {
            peers: Vec::new(),
            index: HashMap::new(),
            rng: Rng::new(seed),
            interval,
            max_peers: 200,
            announces: 0,
        }
    }

    /// Peers and seeds known now.
    pub fn counts(&self) -> (u32, u32) {
        let seeds = self.peers.iter().filter(|e| e.seed).count() as u32;
        (self.peers.len() as u32 - seeds, seeds)
    }

    fn remove(&mut self, id: &PeerId) {
        if let Some(at) = self.index.remove(id) {
            self.peers.swap_remove(at);
            if let Some(moved) = self.peers.get(at) {
                self.index.insert(moved.peer_id, at);
            }
        }
    }

    /// Answers one announce (the state change and the peer list).
    pub fn announce(&mut self, from: IpAddr, a: &Announce) -> AnnounceResponse {
        self.announces += 1;
        let mut response = AnnounceResponse::new(self.interval);
        if a.event == AnnounceEvent::Stopped {
            self.remove(&a.peer_id);
            let (l, s) = self.counts();
            response.complete = Some(s);
            response.incomplete = Some(l);
            return response;
        }
        let addr = SocketAddr::new(from, a.port);
        let seed = a.left == 0;
        let me = match self.index.get(&a.peer_id) {
            Some(&at) => {
                self.peers[at].addr = addr;
                self.peers[at].seed = seed;
                at
            }
            None => {
                self.peers.push(Entry {
                    peer_id: a.peer_id,
                    addr,
                    seed,
                });
                self.index.insert(a.peer_id, self.peers.len() - 1);
                self.peers.len() - 1
            }
        };
        let want = a.numwant.min(self.max_peers) as usize;
        let n = self.peers.len();
        let eligible = |e: &Entry, at: usize| at != me && !(seed && e.seed);
        // Random distinct picks: rejection for a small share of a big swarm, a shuffle of
        // the candidates otherwise.
        let mut picked = Vec::with_capacity(want);
        if want * 4 < n {
            let mut seen = std::collections::BTreeSet::new();
            let mut tries = 0;
            while picked.len() < want && tries < want * 8 {
                tries += 1;
                let at = self.rng.below(n as u32) as usize;
                if eligible(&self.peers[at], at) && seen.insert(at) {
                    picked.push(self.peers[at].addr);
                }
            }
        } else {
            let mut all: Vec<usize> = (0..n).filter(|&at| eligible(&self.peers[at], at)).collect();
            self.rng.shuffle(&mut all);
            picked.extend(all.into_iter().take(want).map(|at| self.peers[at].addr));
        }
        response.peers = picked;
        let (l, s) = self.counts();
        response.complete = Some(s);
        response.incomplete = Some(l);
        response
    }
}

impl Tracker for SwarmTracker {
    fn http(&mut self, from: IpAddr, request: &[u8], _now: Instant) -> Vec<u8> {
        match parse_announce(request) {
            Ok(a) => {
                let response = self.announce(from, &a);
                http_ok(&encode_announce_response(&response, a.compact))
            }
            Err(why) => http_ok(&encode_failure_response(&why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::tracker::{http_announce_request, AnnounceParams, TrackerUrl};
    use shoal_core::InfoHash;

    fn request(id: u8, left: u64, event: AnnounceEvent) -> Vec<u8> {
        let url = TrackerUrl::parse("http://tracker.sim/announce").unwrap();
        let mut p = AnnounceParams::new(InfoHash([7; 20]), PeerId([id; 20]), 6881);
        p.left = left;
        p.event = event;
        http_announce_request(&url, &p)
    }

    #[test]
    fn reads_what_the_engine_sends() {
        let a = parse_announce(&request(3, 99, AnnounceEvent::Started)).unwrap();
        assert_eq!(a.peer_id, PeerId([3; 20]));
        assert_eq!((a.port, a.left, a.numwant), (6881, 99, 50));
        assert_eq!(a.event, AnnounceEvent::Started);
        assert!(a.compact);
    }

    #[test]
    fn random_peers_no_self_no_seed_to_seed_and_stopped_leaves() {
        let mut t = SwarmTracker::new(1, Duration::from_secs(60));
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        let seed = parse_announce(&request(1, 0, AnnounceEvent::Started)).unwrap();
        t.announce(ip(1), &seed);
        for i in 2..10 {
            let a = parse_announce(&request(i, 5, AnnounceEvent::Started)).unwrap();
            let r = t.announce(ip(i), &a);
            assert!(!r.peers.contains(&SocketAddr::new(ip(i), 6881)));
            assert_eq!(r.peers.len(), (i - 1) as usize);
        }
        let r = t.announce(ip(1), &seed);
        assert_eq!(r.peers.len(), 8);
        assert_eq!((r.complete, r.incomplete), (Some(1), Some(8)));
        let stop = parse_announce(&request(5, 5, AnnounceEvent::Stopped)).unwrap();
        t.announce(ip(5), &stop);
        let r = t.announce(ip(1), &seed);
        assert_eq!(r.peers.len(), 7);
        assert!(!r.peers.contains(&SocketAddr::new(ip(5), 6881)));
    }
}
