//! Peer exchange (BEP 11, `ut_pex`): peers tell each other whom they are connected to.
//!
//! This module owns the message codec ([`PexMessage`]: compact `added`/`added6` lists with
//! their flags, `dropped`/`dropped6`) and the per-connection schedule ([`PexState`]): what
//! to tell one peer and when. It keeps no other state and performs no IO; the caller says
//! what the torrent's peers are, what time it is, and whether the torrent is private
//! (BEP 27: a private torrent never uses PEX, and [`PexState::poll`] then says nothing).
//!
//! Bounds, whatever a peer sends: the dictionary is read with the bencode reader's limits;
//! a compact list whose length is not a whole number of entries is refused; at most
//! [`MAX_READ`] entries of each list are read (the rest ignored); entries with port 0 or an
//! address no one can dial (unspecified, multicast, broadcast) are skipped. Sending, a
//! message holds at most [`MAX_ADDED`] added and as many dropped peers, and goes out at most
//! once per [`INTERVAL`].

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bencode::{self, put_bytes, Limits};

/// The extension's name in the BEP 10 handshake's `m` dictionary.
pub const EXTENSION_NAME: &str = "ut_pex";
/// The most entries read from each list of a received message.
pub const MAX_READ: usize = 200;
/// The most peers added (and dropped) in one message we send (BEP 11 says 50).
pub const MAX_ADDED: usize = 50;
/// The least time between two messages to one peer (BEP 11: once a minute).
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Bounds for reading the dictionary: flat, six keys and a few more.
const LIMITS: Limits = Limits {
    max_depth: 2,
    max_values: 32,
};

/// What BEP 11 says about a peer, one byte per entry in `added.f` and `added6.f`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// It prefers encrypted connections.
    pub const ENCRYPTION: u8 = 0x01;
    /// It is a seed (or upload only).
    pub const SEED: u8 = 0x02;
    /// It supports uTP.
    pub const UTP: u8 = 0x04;
    /// It supports the holepunch extension.
    pub const HOLEPUNCH: u8 = 0x08;
    /// It accepts incoming connections (we reached it, not it us).
    pub const CONNECTABLE: u8 = 0x10;

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag == flag
    }
}

/// A peer in an `added` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What is known of it.
    pub flags: PexFlags,
}

/// One `ut_pex` message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers the sender is connected to since its last message (IPv4 and IPv6 together).
    pub added: Vec<PexPeer>,
    /// Peers the sender is no longer connected to.
    pub dropped: Vec<SocketAddr>,
}

/// Why a payload is not a `ut_pex` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PexError {
    /// Not readable bencode, or beyond the reader's bounds.
    Bencode(bencode::Error),
    /// Not a dictionary.
    NotDict,
    /// A list that is not a string, or whose length is not a whole number of entries.
    Malformed(&'static str),
}

impl fmt::Display for PexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PexError::Bencode(e) => write!(f, "ut_pex: {e}"),
            PexError::NotDict => f.write_str("ut_pex: not a dictionary"),
            PexError::Malformed(k) => write!(f, "ut_pex: malformed `{k}`"),
        }
    }
}

impl std::error::Error for PexError {}

impl PexMessage {
    /// The message's bytes, keys sorted; `added.f`/`added6.f` are written with their lists.
    pub fn encode(&self) -> Bytes {
        let (mut a4, mut f4, mut a6, mut f6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in &self.added {
            match p.addr {
                SocketAddr::V4(_) => {
                    a4.extend_from_slice(&compact(p.addr));
                    f4.push(p.flags.0);
                }
                SocketAddr::V6(_) => {
                    a6.extend_from_slice(&compact(p.addr));
                    f6.push(p.flags.0);
                }
            }
        }
        let (mut d4, mut d6) = (Vec::new(), Vec::new());
        for &addr in &self.dropped {
            match addr {
                SocketAddr::V4(_) => d4.extend_from_slice(&compact(addr)),
                SocketAddr::V6(_) => d6.extend_from_slice(&compact(addr)),
            }
        }
        let mut out = Vec::with_capacity(64 + a4.len() + a6.len() + d4.len() + d6.len());
        out.push(b'd');
        for (key, value) in [
            (&b"added"[..], &a4),
            (b"added.f", &f4),
            (b"added6", &a6),
            (b"added6.f", &f6),
            (b"dropped", &d4),
            (b"dropped6", &d6),
        ] {
            put_bytes(&mut out, key);
            put_bytes(&mut out, value);
        }
        out.push(b'e');
        Bytes::from(out)
    }

    /// Reads a message within this module's bounds (see the module docs).
    pub fn decode(payload: &[u8]) -> Result<PexMessage, PexError> {
        let value = bencode::decode_with(payload, LIMITS).map_err(PexError::Bencode)?;
        let dict = value.as_dict().ok_or(PexError::NotDict)?;
        let list = |key: &'static str, width: usize| -> Result<&[u8], PexError> {
            match dict.get(key.as_bytes()) {
                None => Ok(&[]),
                Some(v) => {
                    let b = v.as_bytes().ok_or(PexError::Malformed(key))?;
                    if b.len() % width != 0 {
                        return Err(PexError::Malformed(key));
                    }
                    Ok(&b[..b.len().min(width * MAX_READ)])
                }
            }
        };
        let flags = |key: &'static str| dict.get(key.as_bytes()).and_then(|v| v.as_bytes());
        let mut message = PexMessage::default();
        for (key, fkey, width) in [("added", "added.f", 6), ("added6", "added6.f", 18)] {
            let entries = list(key, width)?;
            // Flags are advice: missing or short ones read as none.
            let f = flags(fkey).unwrap_or(&[]);
            for (i, entry) in entries.chunks_exact(width).enumerate() {
                if let Some(addr) = from_compact(entry).filter(dialable) {
                    let flags = PexFlags(f.get(i).copied().unwrap_or(0));
                    message.added.push(PexPeer { addr, flags });
                }
            }
        }
        for (key, width) in [("dropped", 6), ("dropped6", 18)] {
            for entry in list(key, width)?.chunks_exact(width) {
                if let Some(addr) = from_compact(entry).filter(dialable) {
                    message.dropped.push(addr);
                }
            }
        }
        Ok(message)
    }
}

/// The compact form: 4 or 16 address bytes, then the port, big-endian.
fn compact(addr: SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

fn from_compact(entry: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = entry.split_at(entry.len().checked_sub(2)?);
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match ip.len() {
        4 => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether an address could be a peer at all.
fn dialable(addr: &SocketAddr) -> bool {
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

/// What one connection's peer has been told, and when it may be told more.
#[derive(Clone, Debug)]
pub struct PexState {
    remote: SocketAddr,
    /// Peers we told it of and have not since said dropped, with the flags we gave.
    told: BTreeMap<SocketAddr, PexFlags>,
    last_sent: Option<Instant>,
    last_received: Option<Instant>,
}

impl PexState {
    /// The state for a connection to the peer at `remote` (never told of itself).
    pub fn new(remote: SocketAddr) -> PexState {
        PexState {
            remote,
            told: BTreeMap::new(),
            last_sent: None,
            last_received: None,
        }
    }

    /// When a message may next go out (`None`: now).
    pub fn next_due(&self) -> Option<Instant> {
        self.last_sent.map(|t| t + INTERVAL)
    }

    /// The message to send now, if one is due and there is news: the peers in `current`
    /// (the torrent's peers, in the caller's order) not told yet, at most [`MAX_ADDED`],
    /// and those told of and since gone, at most as many. Nothing for a private torrent,
    /// before [`INTERVAL`] has passed since the last message, or when nothing changed.
    pub fn poll(&mut self, current: &[PexPeer], private: bool, now: Instant) -> Option<PexMessage> {
        if private || self.next_due().is_some_and(|due| now < due) {
            return None;
        }
        let mut message = PexMessage::default();
        for p in current {
            if message.added.len() == MAX_ADDED {
                break;
            }
            if p.addr != self.remote
                && !self.told.contains_key(&p.addr)
                && !message.added.iter().any(|a| a.addr == p.addr)
            {
                message.added.push(*p);
            }
        }
        for &addr in self.told.keys() {
            if message.dropped.len() == MAX_ADDED {
                break;
            }
            if !current.iter().any(|p| p.addr == addr) {
                message.dropped.push(addr);
            }
        }
        if message.added.is_empty() && message.dropped.is_empty() {
            return None;
        }
        for addr in &message.dropped {
            self.told.remove(addr);
        }
        for p in &message.added {
            self.told.insert(p.addr, p.flags);
        }
        self.last_sent = Some(now);
        Some(message)
    }

    /// Whether a message that came from the peer now should be read: one per
    /// [`INTERVAL`] less a margin for jitter; more often is flooding and is ignored.
    pub fn accept_received(&mut self, now: Instant) -> bool {
        let margin = INTERVAL / 4;
        if self
            .last_received
            .is_some_and(|t| now.saturating_duration_since(t) < INTERVAL - margin)
        {
            return false;
        }
        self.last_received = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    fn v4(a: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)), port)
    }
    fn peer(a: u8) -> PexPeer {
        PexPeer {
            addr: v4(a, 6881),
            flags: PexFlags(PexFlags::CONNECTABLE),
        }
    }

    #[test]
    fn encodes_every_list() {
        let six: SocketAddr = "[2001:db8::1]:6882".parse().unwrap();
        let m = PexMessage {
            added: vec![
                PexPeer {
                    addr: v4(1, 0x1ae1),
                    flags: PexFlags(PexFlags::SEED | PexFlags::CONNECTABLE),
                },
                PexPeer {
                    addr: six,
                    flags: PexFlags(PexFlags::UTP),
                },
            ],
            dropped: vec![v4(2, 0x1ae1)],
        };
        let bytes = m.encode();
        let mut want = b"d5:added6:\x0a\x00\x00\x01\x1a\xe17:added.f1:\x12".to_vec();
        want.extend_from_slice(b"6:added618:");
        want.extend_from_slice(&compact(six));
        want.extend_from_slice(b"8:added6.f1:\x04");
        want.extend_from_slice(b"7:dropped6:\x0a\x00\x00\x02\x1a\xe18:dropped60:e");
        assert_eq!(&bytes[..], &want[..]);
        assert!(bencode::decode(&bytes).unwrap().is_canonical());
        assert_eq!(PexMessage::decode(&bytes), Ok(m));
    }

    #[test]
    fn reads_leniently_but_refuses_malformed_lists() {
        // No flags at all, an extra key.
        let m = PexMessage::decode(b"d5:added6:\x0a\x00\x00\x01\x1a\xe11:xi1ee").unwrap();
        assert_eq!(
            m.added,
            [PexPeer {
                addr: v4(1, 0x1ae1),
                flags: PexFlags(0)
            }]
        );
        assert_eq!(
            PexMessage::decode(b"d5:added5:\x0a\x00\x00\x01\x1ae"),
            Err(PexError::Malformed("added"))
        );
        assert_eq!(
            PexMessage::decode(b"d7:droppedi5ee"),
            Err(PexError::Malformed("dropped"))
        );
        assert_eq!(
            PexMessage::decode(b"d8:dropped65:xxxxxe"),
            Err(PexError::Malformed("dropped6"))
        );
        assert_eq!(PexMessage::decode(b"le"), Err(PexError::NotDict));
        assert!(matches!(
            PexMessage::decode(b"d5:added"),
            Err(PexError::Bencode(_))
        ));
        // Port 0, unspecified, multicast and broadcast addresses are skipped.
        let m = PexMessage::decode(
            b"d5:added24:\x0a\x00\x00\x01\x00\x00\x00\x00\x00\x00\x1a\xe1\
              \xe0\x00\x00\x01\x1a\xe1\xff\xff\xff\xff\x1a\xe1e",
        )
        .unwrap();
        assert!(m.added.is_empty());
    }

    #[test]
    fn thousands_of_peers_are_cut_to_the_bound() {
        let big = PexMessage {
            added: (0..5000u32)
                .map(|i| PexPeer {
                    addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 1),
                    flags: PexFlags(0),
                })
                .collect(),
            dropped: (0..5000u32)
                .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), 1))
                .collect(),
        };
        let read = PexMessage::decode(&big.encode()).unwrap();
        assert_eq!(read.added.len(), MAX_READ);
        assert_eq!(read.dropped.len(), MAX_READ);
        assert_eq!(read.added[..], big.added[..MAX_READ]);
    }

    #[test]
    fn state_sends_at_most_once_a_minute_with_news_only() {
        let t0 = shoal_test_clock::epoch();
        let mut s = PexState::new(v4(200, 6881));
        let mut current: Vec<PexPeer> = (1..=60).map(peer).collect();
        current.push(PexPeer {
            addr: v4(200, 6881),
            flags: PexFlags(0),
        });
        let first = s.poll(&current, false, t0).unwrap();
        assert_eq!(first.added.len(), MAX_ADDED);
        assert_eq!(first.added[..], current[..MAX_ADDED]);
        assert!(first.dropped.is_empty());
        assert_eq!(s.next_due(), Some(t0 + INTERVAL));
        assert_eq!(s.poll(&current, false, t0 + INTERVAL / 2), None, "too soon");
        // A minute on: the other ten (never the peer itself), and those gone.
        current.retain(|p| p.addr != v4(1, 6881) && p.addr != v4(2, 6881));
        let second = s.poll(&current, false, t0 + INTERVAL).unwrap();
        assert_eq!(second.added.len(), 10);
        assert!(second.added.iter().all(|p| p.addr != v4(200, 6881)));
        assert_eq!(second.dropped, [v4(1, 6881), v4(2, 6881)]);
        // Nothing new: nothing sent, and the next change may go out at once.
        assert_eq!(s.poll(&current, false, t0 + 2 * INTERVAL), None);
        current.push(peer(100));
        let third = s.poll(&current, false, t0 + 2 * INTERVAL).unwrap();
        assert_eq!(third.added, [peer(100)]);
    }

    #[test]
    fn never_for_a_private_torrent() {
        let t0 = shoal_test_clock::epoch();
        let mut s = PexState::new(v4(9, 6881));
        let current: Vec<PexPeer> = (1..=3).map(peer).collect();
        assert_eq!(s.poll(&current, true, t0), None);
        assert_eq!(s.poll(&current, true, t0 + 10 * INTERVAL), None);
        assert!(s.poll(&current, false, t0 + 10 * INTERVAL).is_some());
    }

    #[test]
    fn a_flood_of_received_messages_is_ignored() {
        let t0 = shoal_test_clock::epoch();
        let mut s = PexState::new(v4(9, 6881));
        assert!(s.accept_received(t0));
        assert!(!s.accept_received(t0 + Duration::from_secs(1)));
        assert!(!s.accept_received(t0 + Duration::from_secs(44)));
        assert!(s.accept_received(t0 + Duration::from_secs(45)));
    }

    impl Arbitrary for PexFlags {
        fn arbitrary(g: &mut Gen) -> Self {
            PexFlags(u8::arbitrary(g))
        }
    }

    fn arbitrary_addr(g: &mut Gen) -> SocketAddr {
        let ip = if bool::arbitrary(g) {
            IpAddr::V4(Ipv4Addr::from(u32::arbitrary(g)))
        } else {
            IpAddr::V6(Ipv6Addr::from(u128::arbitrary(g)))
        };
        SocketAddr::new(ip, u16::arbitrary(g))
    }

    impl Arbitrary for PexMessage {
        fn arbitrary(g: &mut Gen) -> Self {
            let n = usize::arbitrary(g) % 60;
            let d = usize::arbitrary(g) % 60;
            PexMessage {
                added: (0..n)
                    .map(|_| PexPeer {
                        addr: arbitrary_addr(g),
                        flags: PexFlags::arbitrary(g),
                    })
                    .collect(),
                dropped: (0..d).map(|_| arbitrary_addr(g)).collect(),
            }
        }
    }

    quickcheck! {
        fn round_trips(m: PexMessage) -> bool {
            // What reading skips (undialable addresses) cannot come back; the order comes
            // back family by family.
            let mut want = m.clone();
            want.added.retain(|p| dialable(&p.addr));
            want.dropped.retain(dialable);
            want.added.sort_by_key(|p| p.addr.is_ipv6());
            want.dropped.sort_by_key(SocketAddr::is_ipv6);
            PexMessage::decode(&m.encode()) == Ok(want)
        }

        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) -> bool {
            let _ = PexMessage::decode(&bytes);
            true
        }

        fn arbitrary_lists_never_panic(added: Vec<u8>, flags: Vec<u8>, dropped6: Vec<u8>) -> bool {
            let mut b = b"d".to_vec();
            for (key, value) in [(&b"added"[..], &added), (b"added.f", &flags), (b"dropped6", &dropped6)] {
                put_bytes(&mut b, key);
                put_bytes(&mut b, value);
            }
            b.push(b'e');
            let _ = PexMessage::decode(&b);
            true
        }

        fn state_bounds_what_it_sends(peers: Vec<u8>, gone: Vec<u8>) -> bool {
            let t0 = shoal_test_clock::epoch();
            let mut s = PexState::new(v4(0, 6881));
            let now: Vec<PexPeer> = peers.iter().map(|&a| peer(a)).collect();
            let first = s.poll(&now, false, t0).unwrap_or_default();
            let later: Vec<PexPeer> = peers
                .iter()
                .filter(|a| !gone.contains(a))
                .map(|&a| peer(a))
                .collect();
            let second = s.poll(&later, false, t0 + INTERVAL).unwrap_or_default();
            first.added.len() <= MAX_ADDED
                && second.added.len() <= MAX_ADDED
                && second.dropped.len() <= MAX_ADDED
                && first.added.iter().all(|p| p.addr != v4(0, 6881))
                && second.dropped.iter().all(|a| first.added.iter().any(|p| p.addr == *a))
                && second.added.iter().all(|p| !first.added.contains(p))
        }
    }
}
