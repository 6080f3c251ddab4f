//! The discrete-event queue: events in time order, ties in the order they were scheduled.
//!
//! Virtual time is a count of nanoseconds since the start of the run ([`Nanos`]). Two events
//! at the same nanosecond come out in the order they were pushed (a sequence number breaks
//! the tie), so a run never depends on the heap's internal order: the same pushes give the
//! same pops.
//!
//! Events are never removed. A holder that reschedules (a node's timer, a transfer whose
//! rate changed) pushes a new event and recognises the stale one when it comes out (lazy
//! invalidation): cheaper than a decrease-key heap and as deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

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

struct Entry<E> {
    /// Time and sequence number in one key: time in the high 64 bits.
    key: u128,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: the earliest key must compare greatest.
        other.key.cmp(&self.key)
    }
}

/// A time-ordered event queue with deterministic ties.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1 << 16),
            seq: 0,
        }
    }

    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: Nanos, event: E) {
        self.seq += 1;
        self.heap.push(Entry {
            key: (u128::from(at) << 64) | u128::from(self.seq),
            event,
        });
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        self.heap.pop().map(|e| ((e.key >> 64) as Nanos, e.event))
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<Nanos> {
        self.heap.peek().map(|e| (e.key >> 64) as Nanos)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Events pushed so far.
    pub fn pushed(&self) -> u64 {
        self.seq
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

    #[test]
    fn seconds_round_trip() {
        assert_eq!(secs(1.5), 1_500_000_000);
        assert_eq!(as_secs(secs(2.25)), 2.25);
        assert_eq!(secs(-1.0), 0);
    }
}
