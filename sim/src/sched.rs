//! The discrete-event queue: events in time order, ties in the order they were scheduled.
//!
//! Virtual time is a count of nanoseconds since the start of the run ([`Nanos`]). Two events
//! at the same nanosecond come out in the order they were pushed, so a run never depends on
//! the queue's internal layout: the same pushes give the same pops.
//!
//! Events are never removed. A holder that reschedules (a node's timer, a transfer whose
//! rate changed) pushes a new event and recognises the stale one when it comes out (lazy
//! invalidation): cheaper than a decrease-key heap and as deterministic.
//!
//! # A radix heap
//!
//! The simulator never schedules into the past: every push is at or after the time of the
//! last pop. That is what a radix heap needs. Bucket `b > 0` holds the events whose time
//! first differs from the last popped time `last` in bit `b - 1` (counting from the low
//! end); bucket 0 holds those at `last` itself. A pop takes from bucket 0; when it is empty,
//! the lowest non-empty bucket is emptied into the lower ones around its earliest time,
//! which becomes `last`. An event moves down at most 64 times and in practice once or
//! twice, and every bucket is a plain vector walked in order: where a binary heap's pop
//! sifts down through some twenty scattered levels of a megabyte-sized array of pending
//! events, this reads and writes a few vectors front to back.
//!
//! Ties: a bucket's vector is in push order (pushes append; a bucket is refilled only
//! when every lower bucket is empty, by a stable pass over a higher one), so bucket 0, all
//! at one time, comes out in push order.

use std::collections::VecDeque;

/// Virtual time: nanoseconds since the run began.
pub type Nanos = u64;

pub const NANOS_PER_SEC: f64 = 1e9;

/// Seconds as virtual time (rounded to the nanosecond; negative is 0).
pub fn secs(s: f64) -> Nanos {
    (s * NANOS_PER_SEC).round().max(0.0) as Nanos
}

/// Virtual time as seconds.
pub fn as_secs(t: Nanos) -> f64 {
    t as f64 / NANOS_PER_SEC
}

const BUCKETS: usize = 65;

/// A time-ordered event queue with deterministic ties, for times that never go back.
pub struct EventQueue<E> {
    /// Events at `last`, in push order.
    now: VecDeque<E>,
    /// Bucket `b` (index `b - 1`): events whose time differs from `last` first in bit
    /// `b - 1`.
    buckets: Vec<Vec<(Nanos, E)>>,
    /// The time of the last pop (0 before the first).
    last: Nanos,
    /// Bit `b - 1` set: bucket `b` is not empty.
    occupied: u64,
    len: usize,
    pushed: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of time `t` relative to `last` (`t >= last`): 0 if equal, else one more than
/// the index of the highest bit in which they differ.
fn bucket_of(last: Nanos, t: Nanos) -> usize {
    (64 - (t ^ last).leading_zeros()) as usize
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            now: VecDeque::new(),
            buckets: (1..BUCKETS).map(|_| Vec::new()).collect(),
            last: 0,
            occupied: 0,
            len: 0,
            pushed: 0,
        }
    }

    /// Schedules `event` at `at`. A time before the last pop is a caller's bug (a debug
    /// assertion); in a release build it is taken as the last pop's time, which keeps the
    /// order total.
    pub fn push(&mut self, at: Nanos, event: E) {
        self.pushed += 1;
        self.len += 1;
        debug_assert!(at >= self.last, "an event scheduled in the past");
        let at = at.max(self.last);
        match bucket_of(self.last, at) {
            0 => self.now.push_back(event),
            b => {
                self.buckets[b - 1].push((at, event));
                self.occupied |= 1 << (b - 1);
            }
        }
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        self.pop_before(Nanos::MAX)
    }

    /// The earliest event and its time, if that is before `end`. Pushes after it may go
    /// anywhere from the time of the last event popped.
    pub fn pop_before(&mut self, end: Nanos) -> Option<(Nanos, E)> {
        if self.now.is_empty() && !self.refill(end) {
            return None;
        }
        if self.last >= end {
            return None;
        }
        self.len -= 1;
        self.now.pop_front().map(|e| (self.last, e))
    }

    /// Moves the lowest non-empty bucket down around its earliest time, if that is before
    /// `end`. False when it is not, or the queue is empty.
    fn refill(&mut self, end: Nanos) -> bool {
        if self.occupied == 0 {
            return false;
        }
        let b = self.occupied.trailing_zeros() as usize;
        let min = self.buckets[b]
            .iter()
            .map(|e| e.0)
            .min()
            .expect("bucket not empty");
        if min >= end {
            return false;
        }
        self.occupied &= !(1 << b);
        let mut moving = std::mem::take(&mut self.buckets[b]);
        self.last = min;
        for (t, e) in moving.drain(..) {
            match bucket_of(min, t) {
                0 => self.now.push_back(e),
                k => {
                    debug_assert!(k <= b);
                    self.buckets[k - 1].push((t, e));
                    self.occupied |= 1 << (k - 1);
                }
            }
        }
        // Keep the emptied vector's allocation for the next events of that bucket.
        if self.buckets[b].is_empty() {
            self.buckets[b] = moving;
        }
        true
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<Nanos> {
        if !self.now.is_empty() {
            return Some(self.last);
        }
        self.lowest()?.iter().map(|e| e.0).min()
    }

    fn lowest(&self) -> Option<&Vec<(Nanos, E)>> {
        (self.occupied != 0).then(|| &self.buckets[self.occupied.trailing_zeros() as usize])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events pushed so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_then_push_order() {
        let mut q = EventQueue::new();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        q.push(0, "z");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(0, "z"), (1, "a"), (1, "b"), (5, "c"), (5, "d")]
        );
    }

    /// Against a sorted model: random pushes (never before the last pop) interleaved with
    /// pops come out by time, then by push order.
    #[test]
    fn matches_a_stable_sort() {
        let mut rng = shoal_core::rng::Rng::new(7);
        let mut q = EventQueue::new();
        let mut model: Vec<(Nanos, u64)> = Vec::new();
        let mut now = 0;
        let mut id = 0u64;
        for _ in 0..20_000 {
            if rng.below_u64(3) > 0 || model.is_empty() {
                let span = [0, 1, 1000, 1 << 20, 1 << 40][rng.below_u64(5) as usize];
                let at = now + rng.below_u64(span + 1);
                q.push(at, id);
                model.push((at, id));
                id += 1;
            } else {
                model.sort_by_key(|e| e.0);
                assert_eq!(q.peek_time(), Some(model[0].0));
                // Nothing before a time at or before the earliest; the earliest before
                // any later time.
                assert_eq!(q.pop_before(model[0].0), None);
                let want = model.remove(0);
                let got = q.pop_before(want.0 + 1 + rng.below_u64(1000)).unwrap();
                assert_eq!(got, want);
                now = got.0;
            }
            assert_eq!(q.len(), model.len());
        }
        model.sort_by_key(|e| e.0);
        for want in model {
            assert_eq!(q.pop(), Some(want));
        }
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn seconds_round_trip() {
        assert_eq!(secs(1.5), 1_500_000_000);
        assert_eq!(as_secs(secs(2.25)), 2.25);
        assert_eq!(secs(-1.0), 0);
    }
}
