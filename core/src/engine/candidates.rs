//! The addresses a torrent may dial: learnt from trackers, the user, peer exchange; each
//! remembered with whether it is connected and how often dialling it failed.
//!
//! Bounds and costs, since every entry comes from outside:
//!
//! - At most `max` addresses (`EngineConfig::max_candidates`). When full, a new address
//!   replaces the one that failed most often (the oldest learnt among equals) if that one
//!   failed at all and is not connected; otherwise the new one is not kept. Finding it
//!   walks the table, which happens only when the table is full.
//! - An entry is small: the address packed in 19 bytes and an 8-byte record in a hash
//!   table keyed with a secret from the engine's seeded generator (a BTreeMap of
//!   `SocketAddr`s took about three times the memory per address), and the queues hold
//!   packed addresses too. A thousand-peer swarm fills the table of every member.
//! - An address that fails [`MAX_FAILURES`] times in a row (a refused or timed-out dial,
//!   a connection that closed before its handshake was done) is forgotten; a handshake
//!   done sets its count back to zero.
//! - An address known to be a seed (a PEX flag, or what the peer held when its
//!   connection closed) is not dialled while the torrent is complete: the connection
//!   would close as soon as the bitfields crossed (both seeds). (In the simulator's
//!   300-leecher flash crowd this took both-seeds closes from 37.1 k to 35.6 k: most seeds
//!   a finishing node dials were leechers when it heard of them.)
//! - An address whose peer closed our MSE dial before the MSE handshake was done is
//!   dialled again at once, in plaintext from then on (libtorrent does the same): the
//!   peer may speak nothing else.
//! - Addresses ready to dial wait in a FIFO queue, those waiting out their pause after a
//!   close in a queue ordered by when they may go: taking the next one to dial is
//!   O(log n) whatever the number waiting, and each address is in at most one queue once
//!   (a flag says so), so nothing walks a queue.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, DefaultHasher, Hasher};
use std::time::Instant;

/// Failed dials in a row after which an address is forgotten.
pub(super) const MAX_FAILURES: u8 = 5;

/// An address in 19 bytes (family, IP, port), where a `SocketAddr` takes 32: the table,
/// its queues and its heap hold these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key([u8; 19]);

impl Key {
    fn of(addr: SocketAddr) -> Key {
        let mut k = [0u8; 19];
        match addr.ip() {
            IpAddr::V4(ip) => {
                k[0] = 4;
                k[1..5].copy_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                k[0] = 6;
                k[1..17].copy_from_slice(&ip.octets());
            }
        }
        k[17..].copy_from_slice(&addr.port().to_be_bytes());
        Key(k)
    }

    fn addr(self) -> SocketAddr {
        let k = self.0;
        let port = u16::from_be_bytes([k[17], k[18]]);
        let ip = if k[0] == 4 {
            IpAddr::V4(Ipv4Addr::new(k[1], k[2], k[3], k[4]))
        } else {
            let mut b = [0u8; 16];
            b.copy_from_slice(&k[1..17]);
            IpAddr::V6(Ipv6Addr::from(b))
        };
        SocketAddr::new(ip, port)
    }
}

/// The table's hasher: SipHash behind a secret prefix drawn from the engine's seeded
/// generator, so the addresses peers send cannot be chosen to collide, and the same seed
/// gives the same table. (Nothing depends on the table's order: see `make_room`.)
#[derive(Clone, Copy, Debug)]
struct Keyed(u64);

impl BuildHasher for Keyed {
    type Hasher = DefaultHasher;
    fn build_hasher(&self) -> DefaultHasher {
        let mut h = DefaultHasher::new();
        h.write_u64(self.0);
        h
    }
}

/// One address's record: 8 bytes.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    connected: bool,
    /// What is known of it: [`SEED`], [`PLAIN`].
    known: u8,
    /// In `ready` or `later`.
    queued: bool,
    /// Failed dials (or connections that ended before their handshake) in a row.
    failures: u8,
    /// When it was learnt, as a count: ties between replaceable entries go to the oldest.
    learnt: u32,
}

/// [`Candidate::known`]: it is a seed.
const SEED: u8 = 1;
/// [`Candidate::known`]: a dial with MSE was refused: dial it in plaintext.
const PLAIN: u8 = 2;

/// How a connection to a candidate ended, for its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// Before its handshake was done: a failure.
    Failed,
    /// Our MSE dial was closed before the MSE handshake was done: dialled again at once,
    /// in plaintext (not a failure: the peer may speak only plaintext).
    MseRefused,
    /// After: may be dialled again after the pause.
    Ended,
    /// Not to be dialled again (both seeds, banned, torrent removed).
    Final,
}

/// One torrent's dial candidates (see the module docs).
pub(super) struct Candidates {
    table: HashMap<Key, Candidate, Keyed>,
    ready: VecDeque<Key>,
    later: BinaryHeap<Reverse<(Instant, Key)>>,
    max: usize,
    learnt: u32,
    /// Entries with a failure on record: none, and a full table is left as it is
    /// without a walk.
    failing: usize,
}

impl Candidates {
    /// An empty table of at most `max` addresses, hashing with `seed`.
    pub(super) fn new(max: usize, seed: u64) -> Candidates {
        Candidates {
            table: HashMap::with_hasher(Keyed(seed)),
            ready: VecDeque::new(),
            later: BinaryHeap::new(),
            max: max.max(1),
            learnt: 0,
            failing: 0,
        }
    }

    /// How many addresses are known.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether `addr` is known.
    #[cfg(test)]
    fn contains(&self, addr: &SocketAddr) -> bool {
        self.table.contains_key(&Key::of(*addr))
    }

    /// Learns `addr` (`seed`: said to be a seed) and queues it to be dialled; false if it
    /// was known (it is marked a seed if said to be one), or the table is full of
    /// addresses worth more.
    pub(super) fn learn(&mut self, addr: SocketAddr, seed: bool) -> bool {
        let key = Key::of(addr);
        if let Some(c) = self.table.get_mut(&key) {
            c.known |= SEED * u8::from(seed);
            return false;
        }
        if self.table.len() >= self.max && !self.make_room() {
            return false;
        }
        // Only the order among entries matters; a count that stops at the top keeps it
        // among all but the last learnt of four billion.
        self.learnt = self.learnt.saturating_add(1);
        self.table.insert(
            key,
            Candidate {
                connected: false,
                known: SEED * u8::from(seed),
                queued: true,
                failures: 0,
                learnt: self.learnt,
            },
        );
        self.ready.push_back(key);
        true
    }

    /// Forgets the entry that failed most (oldest first among equals), if any failed and
    /// is not connected. The walk's order does not matter: the key it keeps the most of
    /// is unique (no two entries were learnt at the same count, bar the saturated end,
    /// where the address breaks the tie).
    fn make_room(&mut self) -> bool {
        if self.failing == 0 {
            return false;
        }
        let worst = self
            .table
            .iter()
            .filter(|(_, c)| !c.connected && c.failures > 0)
            .max_by_key(|(k, c)| (c.failures, Reverse(c.learnt), Reverse(**k)))
            .map(|(k, _)| *k);
        match worst {
            Some(key) => {
                self.forget(&key);
                true
            }
            None => false,
        }
    }

    /// The next address to dial at `now`, marked connected; `skip` says which to forget
    /// instead (banned ones), as are seeds when `seeding`.
    pub(super) fn next(
        &mut self,
        now: Instant,
        seeding: bool,
        mut skip: impl FnMut(&SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        while let Some(Reverse((at, key))) = self.later.peek().copied() {
            if at > now {
                break;
            }
            self.later.pop();
            self.ready.push_back(key);
        }
        while let Some(key) = self.ready.pop_front() {
            // Entries of a forgotten address (or one forgotten and learnt again, then
            // queued anew) are recognised by the flag and passed over.
            let Some(c) = self.table.get_mut(&key) else {
                continue;
            };
            if !std::mem::replace(&mut c.queued, false) || c.connected {
                continue;
            }
            let addr = key.addr();
            if (seeding && c.known & SEED != 0) || skip(&addr) {
                self.forget(&key);
                continue;
            }
            c.connected = true;
            return Some(addr);
        }
        None
    }

    fn forget(&mut self, key: &Key) {
        if self.table.remove(key).is_some_and(|c| c.failures > 0) {
            self.failing -= 1;
        }
    }

    /// Whether `addr` is to be dialled in plaintext (an MSE dial of it was refused).
    pub(super) fn dial_plain(&self, addr: &SocketAddr) -> bool {
        self.table
            .get(&Key::of(*addr))
            .is_some_and(|c| c.known & PLAIN != 0)
    }

    /// A connection to `addr` finished its handshake.
    pub(super) fn established(&mut self, addr: &SocketAddr) {
        if let Some(c) = self.table.get_mut(&Key::of(*addr)) {
            if std::mem::take(&mut c.failures) > 0 {
                self.failing -= 1;
            }
        }
    }

    /// A connection to `addr` closed (as `ending` says; `seed`: the peer was a seed); it
    /// may be dialled again from `again_at`.
    pub(super) fn closed(
        &mut self,
        addr: SocketAddr,
        ending: Ending,
        seed: bool,
        again_at: Instant,
    ) {
        let key = Key::of(addr);
        let Some(c) = self.table.get_mut(&key) else {
            return;
        };
        c.connected = false;
        c.known |= SEED * u8::from(seed);
        if ending == Ending::MseRefused {
            c.known |= PLAIN;
        }
        if ending == Ending::Failed {
            if c.failures == 0 {
                self.failing += 1;
            }
            c.failures = c.failures.saturating_add(1);
            if c.failures >= MAX_FAILURES {
                self.forget(&key);
                return;
            }
        }
        if ending != Ending::Final && !c.queued {
            c.queued = true;
            self.later.push(Reverse((again_at, key)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
    }

    #[test]
    fn addresses_are_dialled_in_the_order_learnt_and_once() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(10, 7);
        assert!(c.learn(addr(1), false));
        assert!(c.learn(addr(2), false));
        assert!(!c.learn(addr(1), false));
        assert_eq!(c.next(now, false, |_| false), Some(addr(1)));
        assert_eq!(c.next(now, false, |_| false), Some(addr(2)));
        assert_eq!(c.next(now, false, |_| false), None);
    }

    #[test]
    fn a_closed_address_waits_its_pause_then_is_dialled_again() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(10, 7);
        c.learn(addr(1), false);
        assert_eq!(c.next(now, false, |_| false), Some(addr(1)));
        let again = now + Duration::from_secs(60);
        c.closed(addr(1), Ending::Ended, false, again);
        // Closed twice (a late duplicate): still queued once.
        c.closed(addr(1), Ending::Ended, false, again);
        assert_eq!(c.next(now, false, |_| false), None);
        assert_eq!(c.next(again, false, |_| false), Some(addr(1)));
        assert_eq!(c.next(again, false, |_| false), None);
        c.closed(addr(1), Ending::Final, false, again);
        assert_eq!(
            c.next(again + Duration::from_secs(600), false, |_| false),
            None
        );
    }

    #[test]
    fn repeated_failures_forget_an_address_and_a_handshake_forgives() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(10, 7);
        c.learn(addr(1), false);
        for round in 0..MAX_FAILURES - 1 {
            assert_eq!(
                c.next(now, false, |_| false),
                Some(addr(1)),
                "round {round}"
            );
            c.closed(addr(1), Ending::Failed, false, now);
        }
        c.next(now, false, |_| false);
        c.established(&addr(1));
        c.closed(addr(1), Ending::Ended, false, now);
        for _ in 0..MAX_FAILURES {
            assert_eq!(c.next(now, false, |_| false), Some(addr(1)));
            c.closed(addr(1), Ending::Failed, false, now);
        }
        assert!(!c.contains(&addr(1)));
        assert_eq!(c.next(now, false, |_| false), None);
    }

    #[test]
    fn a_full_table_replaces_the_worst_failure_or_keeps_what_it_has() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(3, 7);
        for i in 1..=3 {
            c.learn(addr(i), false);
        }
        // Nothing has failed: a newcomer is not kept.
        assert!(!c.learn(addr(4), false));
        assert_eq!(c.len(), 3);
        // 2 fails twice, 3 once: 2 goes.
        for a in [addr(1), addr(2), addr(3)] {
            assert_eq!(c.next(now, false, |_| false), Some(a));
        }
        c.closed(addr(2), Ending::Failed, false, now);
        c.closed(addr(3), Ending::Failed, false, now);
        assert_eq!(c.next(now, false, |_| false), Some(addr(2)));
        c.closed(addr(2), Ending::Failed, false, now);
        assert!(c.learn(addr(4), false));
        assert!(!c.contains(&addr(2)));
        assert!(c.contains(&addr(3)) && c.contains(&addr(4)));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn seeds_are_not_dialled_while_seeding() {
        let now = shoal_test_clock::epoch();
        let learn = |c: &mut Candidates| {
            c.learn(addr(1), true);
            c.learn(addr(2), false);
            assert!(!c.learn(addr(2), true), "known already: marked a seed");
            c.learn(addr(3), false);
        };
        // A leecher dials seeds.
        let mut c = Candidates::new(10, 1);
        learn(&mut c);
        assert_eq!(c.next(now, false, |_| false), Some(addr(1)));
        assert_eq!(c.next(now, false, |_| false), Some(addr(2)));
        // A seed does not; it forgets them.
        let mut c = Candidates::new(10, 1);
        learn(&mut c);
        assert_eq!(c.next(now, true, |_| false), Some(addr(3)));
        assert_eq!(c.next(now, true, |_| false), None);
        assert_eq!(c.len(), 1);
        // A peer that was a seed when its connection closed is one from then on.
        let again = now + Duration::from_secs(60);
        c.closed(addr(3), Ending::Ended, true, again);
        assert_eq!(c.next(again, true, |_| false), None);
        assert!(!c.contains(&addr(3)));
    }

    #[test]
    fn banned_addresses_are_forgotten_when_their_turn_comes() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(10, 7);
        c.learn(addr(1), false);
        c.learn(addr(2), false);
        assert_eq!(c.next(now, false, |a| *a == addr(1)), Some(addr(2)));
        assert!(!c.contains(&addr(1)));
    }

    #[test]
    fn packed_addresses_come_back_whole() {
        for a in [
            "10.1.2.3:6881",
            "[2001:db8::7]:51413",
            "0.0.0.0:0",
            "[::ffff:1.2.3.4]:1",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(Key::of(a).addr(), a);
        }
        // The same bytes in either family are different addresses.
        let v4: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let v6: SocketAddr = "[102:304::]:5".parse().unwrap();
        assert_ne!(Key::of(v4), Key::of(v6));
        let mut c = Candidates::new(10, 1);
        assert!(c.learn(v4, false) && c.learn(v6, false));
        let now = shoal_test_clock::epoch();
        assert_eq!(c.next(now, false, |_| false), Some(v4));
        assert_eq!(c.next(now, false, |_| false), Some(v6));
    }

    #[test]
    fn the_table_never_holds_more_than_its_bound() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(1000, 7);
        for i in 0..50_000u32 {
            let a = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1));
            c.learn(a, false);
        }
        assert_eq!(c.len(), 1000);
        let mut dialled = 0;
        while c.next(now, false, |_| false).is_some() {
            dialled += 1;
        }
        assert_eq!(dialled, 1000);
    }
}
