//! Peer exchange (BEP 11, `ut_pex`): peers tell each other whom they are connected to.
//!
//! This module owns the message codec ([`PexMessage`]: compact `added`/`added6` lists with
//! their flags, `dropped`/`dropped6`) and a torrent's list of changes ([`PexLog`]): which
//! peers came and went, in order, shared by all the torrent's connections, each of which
//! keeps only its position in it. It performs no IO and reads no clock; the caller says
//! when a message is due ([`INTERVAL`]) and keeps PEX off for a private torrent (BEP 27).
//!
//! Bounds, whatever a peer sends: the dictionary is read with the bencode reader's limits;
//! a compact list whose length is not a whole number of entries is refused; at most
//! [`MAX_READ`] entries of each list are read (the rest ignored); entries with port 0 or an
//! address no one can dial (unspecified, multicast, broadcast) are skipped. Sending, a
//! message holds at most [`MAX_ADDED`] added and as many dropped peers, and goes out at most
//! once per [`INTERVAL`].

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::collections::VecDeque;
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

/// A change to the peer set, by its place in the [`PexLog`]: the first change is 0.
pub type Seq = u64;

/// One peer in the [`PexLog`]: where it listens, its flags as they were when it was
/// listed, when it was listed and, once gone, when it was dropped.
#[derive(Clone, Copy, Debug)]
struct Entry {
    addr: SocketAddr,
    flags: PexFlags,
    added: Seq,
    /// `ALIVE` while the peer is connected.
    dropped: Seq,
}

const ALIVE: Seq = Seq::MAX;

/// Dropped peers kept for connections that have not been told yet, at most: beyond it the
/// oldest go (a connection that far behind misses their `dropped`, which only advises).
pub const MAX_KEPT_DROPPED: usize = 4 * MAX_ADDED;

/// One torrent's peers as PEX tells them, shared by all its connections (libtorrent's
/// shape: one list of changes per torrent, a position in it per connection).
///
/// Each peer listed ([`PexLog::add`]) and each peer gone ([`PexLog::remove`]) is a change
/// with the next sequence number. A connection keeps only its position: it has been told
/// every peer listed before it that was still there when it was told, and every drop before
/// it of a peer it had been told of. From position 0 (a new connection) the first message
/// is the peers connected now, in the order they came; from any other, what changed since.
///
/// Invariants: entries are in the order they were added (so by `added`); dropped entries
/// stay until every connection is past their drop ([`PexLog::prune`]), and never more than
/// [`MAX_KEPT_DROPPED`] of them; alive entries are the torrent's peers (the caller adds and
/// removes each once).
#[derive(Clone, Debug, Default)]
pub struct PexLog {
    entries: VecDeque<Entry>,
    next: Seq,
    dropped: usize,
}

impl PexLog {
    /// An empty log.
    pub fn new() -> PexLog {
        PexLog::default()
    }

    /// The position after every change so far.
    pub fn head(&self) -> Seq {
        self.next
    }

    /// Lists a connected peer; the returned number names it for [`PexLog::remove`].
    pub fn add(&mut self, addr: SocketAddr, flags: PexFlags) -> Seq {
        let seq = self.next;
        self.next += 1;
        self.entries.push_back(Entry {
            addr,
            flags,
            added: seq,
            dropped: ALIVE,
        });
        seq
    }

    /// The peer listed as `listed` is gone (nothing if it is not listed, or gone already).
    pub fn remove(&mut self, listed: Seq) {
        let Ok(i) = self.entries.binary_search_by_key(&listed, |e| e.added) else {
            return;
        };
        if self.entries[i].dropped != ALIVE {
            return;
        }
        self.entries[i].dropped = self.next;
        self.next += 1;
        self.dropped += 1;
        if self.dropped > MAX_KEPT_DROPPED {
            // The oldest listed of the dropped ones goes.
            if let Some(j) = self.entries.iter().position(|e| e.dropped != ALIVE) {
                self.entries.remove(j);
                self.dropped -= 1;
            }
        }
    }

    /// Sets `flags` on the listed peer `listed` (it became a seed): connections told of it
    /// from now on hear them; those told already are not told again (nor does libtorrent).
    pub fn set_flags(&mut self, listed: Seq, flags: u8) {
        if let Ok(i) = self.entries.binary_search_by_key(&listed, |e| e.added) {
            self.entries[i].flags.0 |= flags;
        }
    }

    /// Forgets the dropped peers every connection has passed: `oldest` is the least of
    /// their positions (the head when none speaks PEX).
    pub fn prune(&mut self, oldest: Seq) {
        if self.dropped == 0 {
            return;
        }
        let before = self.entries.len();
        self.entries
            .retain(|e| e.dropped == ALIVE || e.dropped >= oldest);
        self.dropped -= before - self.entries.len();
    }

    /// What a connection at position `at`, whose peer listens at `remote` (never told of
    /// itself), is to be told: the message (`None` when nothing changed for it) and its
    /// new position. At most [`MAX_ADDED`] added and as many dropped: the changes past the
    /// first one that would not fit wait for the next message.
    pub fn message(&self, at: Seq, remote: SocketAddr) -> (Option<PexMessage>, Seq) {
        if at >= self.next {
            return (None, at);
        }
        // The changes since `at`, in order: a peer listed since and still there is an
        // addition; a peer listed before and dropped since, a drop. (A peer listed and
        // dropped since `at` is neither.)
        let mut changes: Vec<(Seq, usize)> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.added >= at && e.dropped == ALIVE {
                changes.push((e.added, i));
            } else if e.added < at && e.dropped != ALIVE && e.dropped >= at {
                changes.push((e.dropped, i));
            }
        }
        changes.sort_unstable_by_key(|c| c.0);
        let mut message = PexMessage::default();
        let mut pos = self.next;
        for (seq, i) in changes {
            let e = &self.entries[i];
            if e.dropped == ALIVE {
                if e.addr == remote || message.added.iter().any(|p| p.addr == e.addr) {
                    continue;
                }
                // Gone and back since: it was told of, and is still there.
                if let Some(d) = message.dropped.iter().position(|&a| a == e.addr) {
                    message.dropped.swap_remove(d);
                    continue;
                }
                if message.added.len() == MAX_ADDED {
                    pos = seq;
                    break;
                }
                message.added.push(PexPeer {
                    addr: e.addr,
                    flags: e.flags,
                });
            } else {
                // Listed again meanwhile (a second connection): still there.
                if e.addr == remote
                    || message.dropped.contains(&e.addr)
                    || message.added.iter().any(|p| p.addr == e.addr)
                {
                    continue;
                }
                if message.dropped.len() == MAX_ADDED {
                    pos = seq;
                    break;
                }
                message.dropped.push(e.addr);
            }
        }
        let news = !message.added.is_empty() || !message.dropped.is_empty();
        (news.then_some(message), pos)
    }

    /// How many peers are listed, connected or kept as dropped.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no peer is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a message that came from a peer at `now`, the previous one read at `last`,
/// should be read: one per [`INTERVAL`] less a margin for jitter; more often is flooding
/// and is ignored. Updates `last` when it is read.
pub fn accept_received(last: &mut Option<Instant>, now: Instant) -> bool {
    let margin = INTERVAL / 4;
    if last.is_some_and(|t| now.saturating_duration_since(t) < INTERVAL - margin) {
        return false;
    }
    *last = Some(now);
    true
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
    fn a_log_tells_each_connection_what_changed_since_its_position() {
        let mut log = PexLog::new();
        let them = v4(200, 6881);
        let mut listed: Vec<Seq> = (1..=60)
            .map(|a| log.add(v4(a, 6881), peer(a).flags))
            .collect();
        listed.push(log.add(them, PexFlags(0)));
        // A new connection: the peers connected now, the first fifty, in order.
        let (first, at) = log.message(0, them);
        let first = first.unwrap();
        assert_eq!(first.added.len(), MAX_ADDED);
        assert_eq!(first.added[..], (1..=50).map(peer).collect::<Vec<_>>()[..]);
        assert!(first.dropped.is_empty());
        assert!(at < log.head());
        // Two leave: the other ten (never the peer itself), and those two.
        log.remove(listed[0]);
        log.remove(listed[1]);
        log.remove(listed[1]);
        let (second, at) = log.message(at, them);
        let second = second.unwrap();
        assert_eq!(
            second.added[..],
            (51..=60).map(peer).collect::<Vec<_>>()[..]
        );
        assert_eq!(second.dropped, [v4(1, 6881), v4(2, 6881)]);
        assert_eq!(at, log.head());
        // Nothing new: nothing to say, the position stays.
        assert_eq!(log.message(at, them), (None, at));
        // One comes and goes between two messages: neither; one goes and comes back:
        // neither (it is still there); a new one: added.
        let brief = log.add(v4(100, 6881), PexFlags(0));
        log.remove(brief);
        log.remove(listed[2]);
        listed[2] = log.add(v4(3, 6881), peer(3).flags);
        log.add(v4(101, 6881), PexFlags(0));
        let (third, at) = log.message(at, them);
        assert_eq!(
            third.unwrap(),
            PexMessage {
                added: vec![PexPeer {
                    addr: v4(101, 6881),
                    flags: PexFlags(0)
                }],
                dropped: vec![]
            }
        );
        // A peer that became a seed is said to be one to those told of it from now on.
        log.set_flags(listed[4], PexFlags::SEED);
        let (fresh, _) = log.message(0, them);
        let five = fresh
            .unwrap()
            .added
            .into_iter()
            .find(|p| p.addr == v4(5, 6881));
        assert_eq!(
            five.map(|p| p.flags),
            Some(PexFlags(PexFlags::CONNECTABLE | PexFlags::SEED))
        );
        // Every connection is past the drops: they are forgotten.
        let before = log.len();
        log.prune(at);
        assert_eq!(log.len(), before - 4);
        assert_eq!(log.len(), 60);
    }

    #[test]
    fn a_log_keeps_a_bounded_number_of_dropped_peers() {
        let mut log = PexLog::new();
        for i in 0..10_000u32 {
            let s = log.add(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::from(i + 1)), 1),
                PexFlags(0),
            );
            log.remove(s);
        }
        assert!(log.len() <= MAX_KEPT_DROPPED);
        // A connection that was told long ago: at most the bound's worth of drops, cut to
        // fifty a message.
        let (m, at) = log.message(0, v4(1, 1));
        assert!(m.is_none(), "never told of them: nothing to drop");
        assert_eq!(at, log.head());
        log.prune(log.head());
        assert!(log.is_empty());
    }

    #[test]
    fn a_flood_of_received_messages_is_ignored() {
        let t0 = shoal_test_clock::epoch();
        let mut last = None;
        assert!(accept_received(&mut last, t0));
        assert!(!accept_received(&mut last, t0 + Duration::from_secs(1)));
        assert!(!accept_received(&mut last, t0 + Duration::from_secs(44)));
        assert!(accept_received(&mut last, t0 + Duration::from_secs(45)));
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

        fn a_log_tells_a_connection_the_torrents_peers(ops: Vec<(u8, u8)>) -> bool {
            // Peers 0..64 come and go; connection "us" (remote 10.0.0.0) is told now and
            // then. What it knows, applying the messages, must be the set of peers there
            // (but itself) whenever a message was not cut short, within the bounds always.
            let mut log = PexLog::new();
            let remote = v4(0, 6881);
            let mut alive: std::collections::BTreeMap<SocketAddr, Seq> = Default::default();
            let mut told: std::collections::BTreeSet<SocketAddr> = Default::default();
            let mut at = 0;
            let mut cut = false;
            for (kind, a) in ops {
                let addr = v4(a % 64, 6881);
                match kind % 3 {
                    0 => {
                        alive.entry(addr).or_insert_with(|| log.add(addr, PexFlags(0)));
                    }
                    1 => {
                        if let Some(s) = alive.remove(&addr) {
                            log.remove(s);
                        }
                    }
                    _ => {
                        let (m, next) = log.message(at, remote);
                        at = next;
                        log.prune(at);
                        let m = m.unwrap_or_default();
                        if m.added.len() > MAX_ADDED
                            || m.dropped.len() > MAX_ADDED
                            || m.added.iter().any(|p| p.addr == remote || !alive.contains_key(&p.addr))
                            || m.added.iter().any(|p| told.contains(&p.addr))
                            || (!cut && m.dropped.iter().any(|a| !told.contains(a)))
                        {
                            return false;
                        }
                        for a in &m.dropped {
                            told.remove(a);
                        }
                        told.extend(m.added.iter().map(|p| p.addr));
                        cut |= at != log.head();
                        let there: std::collections::BTreeSet<SocketAddr> =
                            alive.keys().copied().filter(|&a| a != remote).collect();
                        if at == log.head() && told != there {
                            return false;
                        }
                    }
                }
            }
            log.len() <= alive.len() + MAX_KEPT_DROPPED
        }
    }
}
