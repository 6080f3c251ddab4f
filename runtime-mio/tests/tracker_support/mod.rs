//! Helpers for the `shoal tracker` tests: start one, talk raw HTTP and UDP to it.
//!
//! Builds on `support` (processes killed on drop, free ports, logs shown on failure).

#![allow(dead_code)] // each test file uses a part

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use shoal_core::tracker::percent_encode;
use shoal_core::tracker::udp::{IpFamily, UdpAnnounceRequest, UdpRequest, UdpResponse};
use shoal_core::tracker::{AnnounceEvent, AnnounceParams};
use shoal_core::{InfoHash, PeerId};

use shoal_core::tracker::parse_scrape_response;

use crate::support::{free_port, wait_until, Proc};

/// A running `shoal tracker` on 127.0.0.1, HTTP and UDP on one port.
pub struct ShoalTracker {
    pub port: u16,
    pub proc: Proc,
}

impl ShoalTracker {
    /// Starts `shoal tracker` with `extra` arguments; waits until it listens.
    pub fn start(log_dir: &Path, extra: &[&str], deadline: Instant) -> ShoalTracker {
        ShoalTracker::start_on(free_port(), log_dir, extra, deadline)
    }

    /// [`start`](Self::start) on a given port (for torrents that must name it first).
    pub fn start_on(port: u16, log_dir: &Path, extra: &[&str], deadline: Instant) -> ShoalTracker {
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = crate::support::shoal_command();
        cmd.args(["tracker", "--http", &addr, "--udp", &addr])
            .args(extra);
        let mut proc = Proc::spawn(&format!("shoal-tracker-{port}"), cmd, log_dir);
        proc.wait_for("listening on", deadline);
        ShoalTracker { port, proc }
    }

    pub fn announce_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    pub fn udp_url(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Fails the test if the tracker has exited.
    pub fn assert_running(&mut self) {
        assert!(
            self.proc.try_status().is_none(),
            "shoal tracker exited: {:?}\n{}",
            self.proc.try_status(),
            self.proc.tail(40)
        );
    }

    /// (seeders, leechers, downloads) of `info_hash` by an HTTP scrape; zeros if unknown.
    pub fn scrape(&self, info_hash: &InfoHash) -> (u32, u32, u32) {
        scrape_http(self.port, info_hash)
    }

    /// Waits until the tracker counts at least `seeders` seeds and `leechers` leechers.
    pub fn wait_for_peers(
        &mut self,
        info_hash: &InfoHash,
        seeders: u32,
        leechers: u32,
        deadline: Instant,
    ) {
        self.wait_for_swarm(info_hash, seeders, seeders + leechers, leechers, deadline);
    }

    /// Waits until the tracker counts at least `peers` peers, `seeders` of them seeds and
    /// `leechers` leechers. A leecher on loopback may finish (and count as a seed) before
    /// slower peers announce: ask for the total, not for it to still be leeching.
    pub fn wait_for_swarm(
        &mut self,
        info_hash: &InfoHash,
        seeders: u32,
        peers: u32,
        leechers: u32,
        deadline: Instant,
    ) {
        wait_until(
            &format!(
                "{peers} peers announced, {seeders} seeder(s) and {leechers} leecher(s) among them"
            ),
            deadline,
            || {
                self.assert_running();
                match self.scrape(info_hash) {
                    (s, l, _) if s >= seeders && l >= leechers && s + l >= peers => Ok(()),
                    (s, l, _) => Err(format!("{s} seeders, {l} leechers")),
                }
            },
        );
    }

    /// Its resident memory in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

/// An HTTP response, split.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Splits raw response bytes; `None` if there is no complete head.
pub fn split_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Response {
        status,
        head,
        body: raw[end + 4..].to_vec(),
    })
}

/// Sends `request` (bytes as they are) to 127.0.0.1:`port` and reads until the server
/// closes (at most 10 s).
pub fn raw_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("write request");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    raw
}

/// `GET target` over HTTP/1.1; panics if there is no well-formed answer.
pub fn get(port: u16, target: &str) -> Response {
    let raw = raw_exchange(
        port,
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    );
    split_response(&raw).unwrap_or_else(|| {
        panic!(
            "no HTTP answer to {target}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// One announce's parameters, for building raw queries.
#[derive(Clone, Debug)]
pub struct Ann {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub port: u16,
    pub left: u64,
    pub event: Option<&'static str>,
    pub numwant: Option<u32>,
}

impl Ann {
    pub fn new(info_hash: [u8; 20], n: u16, left: u64) -> Ann {
        let mut peer_id = *b"-TT0001-000000000000";
        peer_id[14..20].copy_from_slice(format!("{n:06}").as_bytes());
        Ann {
            info_hash,
            peer_id,
            port: 10_000 + n,
            left,
            event: None,
            numwant: None,
        }
    }

    pub fn event(mut self, event: &'static str) -> Ann {
        self.event = Some(event);
        self
    }

    pub fn numwant(mut self, n: u32) -> Ann {
        self.numwant = Some(n);
        self
    }

    /// The query string, as BEP 3 clients write it.
    pub fn query(&self) -> String {
        let mut q = format!(
            "info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left={}&compact=1",
            percent_encode(&self.info_hash),
            percent_encode(&self.peer_id),
            self.port,
            self.left
        );
        if let Some(e) = self.event {
            q.push_str("&event=");
            q.push_str(e);
        }
        if let Some(n) = self.numwant {
            q.push_str(&format!("&numwant={n}"));
        }
        q
    }

    pub fn udp_params(&self) -> AnnounceParams {
        let mut p = AnnounceParams::new(InfoHash(self.info_hash), PeerId(self.peer_id), self.port);
        p.left = self.left;
        p.event = AnnounceEvent::from_http_str(self.event.unwrap_or("").as_bytes());
        p.numwant = self.numwant.unwrap_or(50);
        p
    }
}

/// A UDP tracker client on its own socket, one request at a time, 2 s per answer.
pub struct UdpClient {
    pub socket: UdpSocket,
    to: SocketAddr,
    connection_id: Option<u64>,
    next_tid: u32,
}

impl UdpClient {
    pub fn new(to: SocketAddr) -> UdpClient {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        UdpClient {
            socket,
            to,
            connection_id: None,
            next_tid: 1,
        }
    }

    /// Sends `datagram` and waits for one answer (`None` after 2 s of silence).
    pub fn exchange(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        self.socket.send_to(datagram, self.to).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    fn tid(&mut self) -> u32 {
        self.next_tid += 1;
        self.next_tid
    }

    pub fn connect(&mut self) -> u64 {
        let tid = self.tid();
        let answer = self
            .exchange(
                &UdpRequest::Connect {
                    transaction_id: tid,
                }
                .encode(),
            )
            .expect("no answer to a UDP connect");
        match UdpResponse::decode(&answer, IpFamily::V4) {
            Ok(UdpResponse::Connect {
                transaction_id,
                connection_id,
            }) if transaction_id == tid => {
                self.connection_id = Some(connection_id);
                connection_id
            }
            other => panic!("bad connect answer: {other:?}"),
        }
    }

    /// An announce; connects first if needed.
    pub fn announce(&mut self, ann: &Ann) -> UdpResponse {
        let id = match self.connection_id {
            Some(id) => id,
            None => self.connect(),
        };
        let tid = self.tid();
        let request =
            UdpRequest::Announce(UdpAnnounceRequest::from_params(id, tid, &ann.udp_params()));
        let answer = self
            .exchange(&request.encode())
            .expect("no answer to a UDP announce");
        UdpResponse::decode(&answer, IpFamily::V4).expect("undecodable UDP answer")
    }
}

/// (seeders, leechers, downloads) of `info_hash` by an HTTP scrape of the tracker on
/// 127.0.0.1:`port` (shoal's or opentracker); zeros if unknown.
pub fn scrape_http(port: u16, info_hash: &InfoHash) -> (u32, u32, u32) {
    let r = get(
        port,
        &format!("/scrape?info_hash={}", percent_encode(&info_hash.0)),
    );
    let files = parse_scrape_response(&r.body).expect("a scrape answer");
    files
        .iter()
        .find(|(h, _)| h == info_hash)
        .map_or((0, 0, 0), |(_, s)| (s.complete, s.incomplete, s.downloaded))
}

/// A running `shoal serve DIR` on 127.0.0.1, HTTP and UDP on one port.
pub struct ShoalServe {
    pub port: u16,
    pub proc: Proc,
}

impl ShoalServe {
    /// Starts `shoal serve DIR` with `extra` arguments; waits until it has made its
    /// torrents and listens.
    pub fn start(dir: &Path, log_dir: &Path, extra: &[&str], deadline: Instant) -> ShoalServe {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = crate::support::shoal_command();
        cmd.arg("serve")
            .arg(dir)
            .args(["--http", &addr, "--udp", &addr])
            .args(extra);
        let mut proc = Proc::spawn(&format!("shoal-serve-{port}"), cmd, log_dir);
        proc.wait_for("listening on", deadline);
        ShoalServe { port, proc }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Fails the test if the server has exited.
    pub fn assert_running(&mut self) {
        assert!(
            self.proc.try_status().is_none(),
            "shoal serve exited: {:?}\n{}",
            self.proc.try_status(),
            self.proc.tail(40)
        );
    }
}

/// `METHOD target` over HTTP/1.1 with `headers` (each ending in CRLF) and `Connection:
/// close`; panics if there is no well-formed answer.
pub fn request(port: u16, method: &str, target: &str, headers: &str) -> Response {
    let raw = raw_exchange(
        port,
        format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    split_response(&raw).unwrap_or_else(|| {
        panic!(
            "no HTTP answer to {method} {target}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}
