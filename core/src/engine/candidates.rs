//! The addresses a torrent may dial: learnt from trackers, the user, peer exchange; each
//! remembered with whether it is connected and how often dialling it failed.
//!
//! Bounds and costs, since every entry comes from outside:
//!
//! - At most `max` addresses (`EngineConfig::max_candidates`). When full, a new address
//!   replaces the one that failed most often (the oldest learnt among equals) if that one
//!   failed at all and is not connected; otherwise the new one is not kept. Finding it
//!   walks the table, which happens only when the table is full.
//! - An address that fails [`MAX_FAILURES`] times in a row (a refused or timed-out dial,
//!   a connection that closed before its handshake was done) is forgotten; a handshake
//!   done sets its count back to zero.
//! - Addresses ready to dial wait in a FIFO queue, those waiting out their pause after a
//!   close in a queue ordered by when they may go: taking the next one to dial is
//!   O(log n) whatever the number waiting, and each address is in at most one queue once
//!   (a flag says so), so nothing walks a queue.

use core::net::SocketAddr;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Instant;

/// Failed dials in a row after which an address is forgotten.
pub(super) const MAX_FAILURES: u8 = 5;

#[derive(Clone, Copy, Debug)]
struct Candidate {
    connected: bool,
    /// In `ready` or `later`.
    queued: bool,
    /// Failed dials (or connections that ended before their handshake) in a row.
    failures: u8,
    /// When it was learnt, as a count: ties between replaceable entries go to the oldest.
    learnt: u64,
}

/// How a connection to a candidate ended, for its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// Before its handshake was done: a failure.
    Failed,
    /// After: may be dialled again after the pause.
    Ended,
    /// Not to be dialled again (both seeds, banned, torrent removed).
    Final,
}

/// One torrent's dial candidates (see the module docs).
pub(super) struct Candidates {
    table: BTreeMap<SocketAddr, Candidate>,
    ready: VecDeque<SocketAddr>,
    later: BinaryHeap<Reverse<(Instant, SocketAddr)>>,
    max: usize,
    learnt: u64,
    /// Entries with a failure on record: none, and a full table is left as it is
    /// without a walk.
    failing: usize,
}

impl Candidates {
    pub(super) fn new(max: usize) -> Candidates {
        Candidates {
            table: BTreeMap::new(),
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
        self.table.contains_key(addr)
    }

    /// Learns `addr` and queues it to be dialled; false if it was known, or the table is
    /// full of addresses worth more.
    pub(super) fn learn(&mut self, addr: SocketAddr) -> bool {
        if self.table.contains_key(&addr) {
            return false;
        }
        if self.table.len() >= self.max && !self.make_room() {
            return false;
        }
        self.learnt += 1;
        self.table.insert(
            addr,
            Candidate {
                connected: false,
                queued: true,
                failures: 0,
                learnt: self.learnt,
            },
        );
        self.ready.push_back(addr);
        true
    }

    /// Forgets the entry that failed most (oldest first among equals), if any failed and
    /// is not connected.
    fn make_room(&mut self) -> bool {
        if self.failing == 0 {
            return false;
        }
        let worst = self
            .table
            .iter()
            .filter(|(_, c)| !c.connected && c.failures > 0)
            .max_by_key(|(_, c)| (c.failures, Reverse(c.learnt)))
            .map(|(a, _)| *a);
        match worst {
            Some(addr) => {
                self.forget(&addr);
                true
            }
            None => false,
        }
    }

    /// The next address to dial at `now`, marked connected; `skip` says which to forget
    /// instead (banned ones).
    pub(super) fn next(
        &mut self,
        now: Instant,
        mut skip: impl FnMut(&SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        while let Some(Reverse((at, addr))) = self.later.peek().copied() {
            if at > now {
                break;
            }
            self.later.pop();
            self.ready.push_back(addr);
        }
        while let Some(addr) = self.ready.pop_front() {
            // Entries of a forgotten address (or one forgotten and learnt again, then
            // queued anew) are recognised by the flag and passed over.
            let Some(c) = self.table.get_mut(&addr) else {
                continue;
            };
            if !std::mem::replace(&mut c.queued, false) || c.connected {
                continue;
            }
            if skip(&addr) {
                self.forget(&addr);
                continue;
            }
            c.connected = true;
            return Some(addr);
        }
        None
    }

    fn forget(&mut self, addr: &SocketAddr) {
        if self.table.remove(addr).is_some_and(|c| c.failures > 0) {
            self.failing -= 1;
        }
    }

    /// A connection to `addr` finished its handshake.
    pub(super) fn established(&mut self, addr: &SocketAddr) {
        if let Some(c) = self.table.get_mut(addr) {
            if std::mem::take(&mut c.failures) > 0 {
                self.failing -= 1;
            }
        }
    }

    /// A connection to `addr` closed (as `ending` says); it may be dialled again from
    /// `again_at`.
    pub(super) fn closed(&mut self, addr: SocketAddr, ending: Ending, again_at: Instant) {
        let Some(c) = self.table.get_mut(&addr) else {
            return;
        };
        c.connected = false;
        if ending == Ending::Failed {
            if c.failures == 0 {
                self.failing += 1;
            }
            c.failures = c.failures.saturating_add(1);
            if c.failures >= MAX_FAILURES {
                self.forget(&addr);
                return;
            }
        }
        if ending != Ending::Final && !c.queued {
            c.queued = true;
            self.later.push(Reverse((again_at, addr)));
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
        let mut c = Candidates::new(10);
        assert!(c.learn(addr(1)));
        assert!(c.learn(addr(2)));
        assert!(!c.learn(addr(1)));
        assert_eq!(c.next(now, |_| false), Some(addr(1)));
        assert_eq!(c.next(now, |_| false), Some(addr(2)));
        assert_eq!(c.next(now, |_| false), None);
    }

    #[test]
    fn a_closed_address_waits_its_pause_then_is_dialled_again() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(10);
        c.learn(addr(1));
        assert_eq!(c.next(now, |_| false), Some(addr(1)));
        let again = now + Duration::from_secs(60);
        c.closed(addr(1), Ending::Ended, again);
        // Closed twice (a late duplicate): still queued once.
        c.closed(addr(1), Ending::Ended, again);
        assert_eq!(c.next(now, |_| false), None);
        assert_eq!(c.next(again, |_| false), Some(addr(1)));
        assert_eq!(c.next(again, |_| false), None);
        c.closed(addr(1), Ending::Final, again);
        assert_eq!(c.next(again + Duration::from_secs(600), |_| false), None);
    }

    #[test]
    fn repeated_failures_forget_an_address_and_a_handshake_forgives() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(10);
        c.learn(addr(1));
        for round in 0..MAX_FAILURES - 1 {
            assert_eq!(c.next(now, |_| false), Some(addr(1)), "round {round}");
            c.closed(addr(1), Ending::Failed, now);
        }
        c.next(now, |_| false);
        c.established(&addr(1));
        c.closed(addr(1), Ending::Ended, now);
        for _ in 0..MAX_FAILURES {
            assert_eq!(c.next(now, |_| false), Some(addr(1)));
            c.closed(addr(1), Ending::Failed, now);
        }
        assert!(!c.contains(&addr(1)));
        assert_eq!(c.next(now, |_| false), None);
    }

    #[test]
    fn a_full_table_replaces_the_worst_failure_or_keeps_what_it_has() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(3);
        for i in 1..=3 {
            c.learn(addr(i));
        }
        // Nothing has failed: a newcomer is not kept.
        assert!(!c.learn(addr(4)));
        assert_eq!(c.len(), 3);
        // 2 fails twice, 3 once: 2 goes.
        for a in [addr(1), addr(2), addr(3)] {
            assert_eq!(c.next(now, |_| false), Some(a));
        }
        c.closed(addr(2), Ending::Failed, now);
        c.closed(addr(3), Ending::Failed, now);
        assert_eq!(c.next(now, |_| false), Some(addr(2)));
        c.closed(addr(2), Ending::Failed, now);
        assert!(c.learn(addr(4)));
        assert!(!c.contains(&addr(2)));
        assert!(c.contains(&addr(3)) && c.contains(&addr(4)));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn banned_addresses_are_forgotten_when_their_turn_comes() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(10);
        c.learn(addr(1));
        c.learn(addr(2));
        assert_eq!(c.next(now, |a| *a == addr(1)), Some(addr(2)));
        assert!(!c.contains(&addr(1)));
    }

    #[test]
    fn the_table_never_holds_more_than_its_bound() {
        let now = shoal_test_clock::epoch();
        let mut c = Candidates::new(1000);
        for i in 0..50_000u32 {
            let a = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1));
            c.learn(a);
        }
        assert_eq!(c.len(), 1000);
        let mut dialled = 0;
        while c.next(now, |_| false).is_some() {
            dialled += 1;
        }
        assert_eq!(dialled, 1000);
    }
}
