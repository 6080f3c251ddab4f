//! Trackers, client side: what to announce when, and the bytes of HTTP and UDP trackers.
//!
//! This module owns the tracker protocols as sans-IO pieces the engine drives per torrent.
//! It opens no socket and reads no clock: requests go out as bytes, answers come in as
//! bytes, time comes in as `now`, randomness as a seed.
//!
//! - [`url`]: tracker URLs (`http://`, `https://`, `udp://`), parsed small and strict.
//! - [`query`]: percent-encoding and URL query strings (shared with the tracker server).
//! - [`http`]: HTTP/1.1 announce and scrape requests as bytes, and [`HttpResponseReader`],
//!   which frames a tracker's HTTP answer from bytes fed in as they arrive.
//! - [`answer`]: the bencoded announce and scrape answers, read (zero-copy, through
//!   [`crate::bencode`]) and written (canonical, for the tracker server).
//! - [`udp`]: every BEP 15 packet as pure encode/decode functions (shared with the server),
//!   and [`UdpTrackerClient`], the connect → announce exchange with one tracker as a state
//!   machine over datagrams.
//! - [`announcer`]: [`Announcer`], one torrent's announce schedule over BEP 12 tiers.
//!
//! Invariants kept throughout, and checked by property tests on arbitrary input:
//!
//! - **No panic on remote input.** Every parser returns a [`TrackerError`].
//! - **Bounded.** HTTP heads, bodies, chunk lines, query strings, peer lists and error
//!   messages all have limits; what is past a limit is refused or dropped, never buffered.
//! - **Deterministic.** The same inputs, `now`s and seeds give the same outputs.

pub mod announcer;
pub mod answer;
mod error;
pub mod http;
pub mod query;
pub mod server;
pub mod udp;
pub mod url;

use core::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::types::{InfoHash, PeerId};

pub use announcer::{AnnounceId, AnnounceStats, Announcer, AnnouncerConfig, TrackerEvent};
pub use answer::{
    encode_announce_response, encode_failure_response, encode_scrape_response,
    parse_announce_response, parse_scrape_response, MAX_PEERS,
};
pub use error::TrackerError;
pub use http::{
    http_announce_request, http_scrape_request, HttpProgress, HttpResponse, HttpResponseReader,
};
pub use query::{encode_query, parse_query, percent_decode, percent_encode};
pub use udp::{UdpConfig, UdpEvent, UdpTrackerClient};
pub use url::{Scheme, TrackerUrl};

/// The `event` of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AnnounceEvent {
    /// A regular, periodic announce.
    #[default]
    None,
    /// The first announce of a torrent to a tracker.
    Started,
    /// The download has just finished (sent once, never for a torrent complete at start).
    Completed,
    /// The torrent is leaving.
    Stopped,
}

impl AnnounceEvent {
    /// The value of the HTTP `event` parameter; `None` for a regular announce, which sends
    /// no `event` at all (BEP 3 also allows `empty`, which some trackers refuse).
    pub fn as_http_str(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::None => None,
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Completed => Some("completed"),
            AnnounceEvent::Stopped => Some("stopped"),
        }
    }

    /// Reads an HTTP `event` value; unknown values (and `empty`) are a regular announce.
    pub fn from_http_str(s: &[u8]) -> AnnounceEvent {
        match s {
            b"started" => AnnounceEvent::Started,
            b"completed" => AnnounceEvent::Completed,
            b"stopped" => AnnounceEvent::Stopped,
            _ => AnnounceEvent::None,
        }
    }

    /// The BEP 15 event code.
    pub fn udp_code(self) -> u32 {
        match self {
            AnnounceEvent::None => 0,
            AnnounceEvent::Completed => 1,
            AnnounceEvent::Started => 2,
            AnnounceEvent::Stopped => 3,
        }
    }

    /// Reads a BEP 15 event code; unknown codes are a regular announce.
    pub fn from_udp_code(code: u32) -> AnnounceEvent {
        match code {
            1 => AnnounceEvent::Completed,
            2 => AnnounceEvent::Started,
            3 => AnnounceEvent::Stopped,
            _ => AnnounceEvent::None,
        }
    }
}

/// Everything one announce tells a tracker, whichever protocol carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceParams {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peer connections on.
    pub port: u16,
    /// Payload bytes sent since the torrent started.
    pub uploaded: u64,
    /// Payload bytes received since the torrent started.
    pub downloaded: u64,
    /// Bytes still missing; 0 makes us a seed in the tracker's eyes.
    pub left: u64,
    /// Why we announce now (started, completed, stopped, or a regular announce).
    pub event: AnnounceEvent,
    /// How many peers we would like (0 when stopping).
    pub numwant: u32,
    /// Ask for BEP 23 compact peer lists (HTTP only; UDP is always compact).
    pub compact: bool,
    /// A number that stays the same for the torrent's life, so that a tracker can tell us
    /// apart from others behind the same address and follow us across address changes.
    pub key: u32,
    /// The `tracker id` this tracker gave in an earlier answer, echoed back.
    pub tracker_id: Option<Vec<u8>>,
    /// An address to announce instead of the one the tracker sees (rarely wanted).
    pub ip: Option<IpAddr>,
}

impl AnnounceParams {
    /// Parameters with the usual defaults: no event, 50 peers wanted, compact, key 0.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> Self {
        AnnounceParams {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::None,
            numwant: 50,
            compact: true,
            key: 0,
            tracker_id: None,
            ip: None,
        }
    }
}

/// A tracker's successful answer to an announce (HTTP or UDP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// How long to wait before the next regular announce, as the tracker said it (the
    /// [`Announcer`] clamps it to a sane range).
    pub interval: Duration,
    /// The tracker's `min interval`: no announce to it sooner than this after the last.
    pub min_interval: Option<Duration>,
    /// An opaque id to echo back in later announces to the same tracker.
    pub tracker_id: Option<Vec<u8>>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    /// Peers to try, IPv4 and IPv6, at most [`MAX_PEERS`], in the tracker's order.
    pub peers: Vec<SocketAddr>,
    /// A `warning message`: the announce worked, but the tracker has something to say.
    pub warning: Option<String>,
}

impl AnnounceResponse {
    /// An answer with the given interval and nothing else.
    pub fn new(interval: Duration) -> Self {
        AnnounceResponse {
            interval,
            min_interval: None,
            tracker_id: None,
            complete: None,
            incomplete: None,
            peers: Vec::new(),
            warning: None,
        }
    }
}

/// One torrent's counts in a scrape answer (BEP 48, BEP 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Times the torrent was downloaded to the end (`completed` events seen).
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// The longest warning, failure reason or UDP error message kept, in bytes: they are shown
/// to users, and a tracker should not be able to make us hold megabytes of text.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Turns a tracker's message into text: invalid UTF-8 replaced, cut to [`MAX_MESSAGE_LEN`]
/// bytes at a character boundary.
pub(crate) fn message_text(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_MESSAGE_LEN)];
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    // Replacement characters are 3 bytes where the input had 1, so the text can grow past the
    // limit; cut it again on a character boundary.
    if s.len() > MAX_MESSAGE_LEN {
        let mut end = MAX_MESSAGE_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// SplitMix64: a tiny, well-mixed PRNG. It serves the shuffles and transaction ids of this
/// module, where the seed comes from the engine's own seeded generator.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A number in `0..n` (n > 0), by multiply-and-shift, which has no modulo bias worth
    /// speaking of for small `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_is_bounded_and_valid() {
        assert_eq!(message_text(b"hello"), "hello");
        let long = vec![b'a'; 5000];
        assert_eq!(message_text(&long).len(), MAX_MESSAGE_LEN);
        let invalid = vec![0xff; 5000];
        let text = message_text(&invalid);
        assert!(text.len() <= MAX_MESSAGE_LEN);
        assert!(text.chars().all(|c| c == char::REPLACEMENT_CHARACTER));
    }

    #[test]
    fn event_codes_round_trip() {
        for e in [
            AnnounceEvent::None,
            AnnounceEvent::Started,
            AnnounceEvent::Completed,
            AnnounceEvent::Stopped,
        ] {
            assert_eq!(AnnounceEvent::from_udp_code(e.udp_code()), e);
            let http = e.as_http_str().unwrap_or("empty");
            assert_eq!(AnnounceEvent::from_http_str(http.as_bytes()), e);
        }
    }

    #[test]
    fn splitmix_below_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        for n in 1..50 {
            assert!(rng.below(n) < n);
        }
    }
}
