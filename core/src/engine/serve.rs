//! The requests a peer made that we will serve, oldest first.
//!
//! A peer may send a `request` or a `cancel` in 17 bytes, so each must cost little
//! however long the queue (`EngineConfig::max_serve_queue`, 500 by default): a scan of
//! the queue per message would let a peer make us do hundreds of comparisons per message.
//! The queue keeps its order in a deque and its membership in a set: a request already
//! queued is found in the set, and a cancel takes the block out of the set only; the
//! deque's entries no longer in the set are skipped when met at the front, and the deque
//! is compacted when stale entries outnumber live ones (amortised: each entry is dropped
//! once).

use std::collections::{BTreeSet, VecDeque};

use crate::BlockRequest;

#[derive(Debug, Default)]
pub(crate) struct ServeQueue {
    /// Requests in the order they came, cancelled ones among them until met.
    order: VecDeque<BlockRequest>,
    /// The requests still wanted; boxed, so the queue takes one word more than a deque
    /// in the connection's hot slot.
    #[allow(clippy::box_collection)] // a set is 3 words; the slot has room for 1
    live: Box<BTreeSet<BlockRequest>>,
}

impl ServeQueue {
    /// Requests still wanted.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Queues `block`; false if it was queued already.
    pub(crate) fn push(&mut self, block: BlockRequest) -> bool {
        if !self.live.insert(block) {
            return false;
        }
        self.order.push_back(block);
        true
    }

    /// The peer cancelled `block`: it is not served (if it was still queued).
    pub(crate) fn cancel(&mut self, block: BlockRequest) {
        if self.live.remove(&block) && self.order.len() > 2 * self.live.len() + 16 {
            let live = &self.live;
            self.order.retain(|b| live.contains(b));
        }
    }

    /// The oldest request still wanted.
    pub(crate) fn front(&mut self) -> Option<BlockRequest> {
        while let Some(&b) = self.order.front() {
            if self.live.contains(&b) {
                return Some(b);
            }
            self.order.pop_front();
        }
        None
    }

    /// Takes the oldest request still wanted.
    pub(crate) fn pop_front(&mut self) -> Option<BlockRequest> {
        let b = self.front()?;
        self.order.pop_front();
        self.live.remove(&b);
        Some(b)
    }

    /// Empties the queue; returns the requests still wanted, oldest first.
    pub(crate) fn drain(&mut self) -> Vec<BlockRequest> {
        let live = std::mem::take(&mut *self.live);
        let out = self.order.drain(..).filter(|b| live.contains(b)).collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PieceIndex;

    fn b(piece: u32, begin: u32) -> BlockRequest {
        BlockRequest {
            piece: PieceIndex(piece),
            begin,
            length: 16384,
        }
    }

    #[test]
    fn requests_come_out_in_order_once_and_cancelled_ones_never() {
        let mut q = ServeQueue::default();
        assert!(q.push(b(1, 0)));
        assert!(q.push(b(2, 0)));
        assert!(!q.push(b(1, 0)), "already queued");
        q.push(b(3, 0));
        q.cancel(b(2, 0));
        q.cancel(b(9, 0)); // never queued: nothing happens
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_front(), Some(b(1, 0)));
        assert_eq!(q.front(), Some(b(3, 0)));
        // A cancelled block asked for again is served, once.
        q.push(b(2, 0));
        assert_eq!(q.drain(), vec![b(3, 0), b(2, 0)]);
        assert_eq!((q.len(), q.front()), (0, None));
    }

    #[test]
    fn request_and_cancel_in_a_loop_keeps_the_deque_bounded() {
        let mut q = ServeQueue::default();
        q.push(b(0, 0));
        for i in 0..100_000u32 {
            let x = b(1 + i % 7, 0);
            q.push(x);
            q.cancel(x);
        }
        assert_eq!(q.len(), 1);
        assert!(
            q.order.len() <= 2 * q.len() + 17,
            "{} stale entries",
            q.order.len()
        );
        assert_eq!(q.pop_front(), Some(b(0, 0)));
    }
}
