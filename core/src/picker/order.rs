//! The order of new pieces: the wanted, unstarted pieces of each priority class, in
//! buckets by availability, and the picker's bookkeeping of availability and of each
//! piece's place in its order.
//!
//! *Order.* Pieces that are wanted (not verified, not Skip) and not yet started are kept in
//! one bucket structure per priority class (High, Normal): bucket `b` is a vector holding,
//! in no particular order, the pieces whose `raw` is `lo + b`, and each piece knows its
//! position in its bucket. A change of ±1 moves a piece to the neighbouring bucket by a
//! swap-remove and a push: O(1). Seeds only change `base`, so they don't move anything.
//! (This is the bucketed permutation array with one vector per bucket instead of one array
//! with boundaries: a ±1 move costs the same, and taking a piece out of the order when it
//! is started or verified is O(1) too instead of one shift per bucket.) The buckets span
//! only occupied values, at most one per possible availability, so skipping empty ones is
//! O(peers) at worst. The initial order is shuffled with the seeded
//! [`Rng`](crate::rng::Rng), and each walk starts at a random offset in each bucket, so
//! ties are random yet reproducible. A piece leaves the order when it is started (a
//! partial piece), verified or skipped, and comes back if its partial is dropped or fails
//! its hash.

use super::has::Has;
use super::{class_of, Picker, Priority, NONE};

/// What the picker keeps of one piece, side by side: a `have` reads and writes `raw` and
/// `pos` and reads `prio` of one piece, a pick reads `slot` or `raw` of the pieces it
/// considers. In four arrays, each of those would be a cache miss of its own when the
/// picker is cold (a busy engine comes back to it after serving other connections).
#[derive(Clone, Copy, Debug)]
pub(super) struct PieceState {
    /// Availability is `Picker::base + raw`.
    pub(super) raw: i32,
    /// Position in its order bucket, or NONE when not in the order.
    pub(super) pos: u32,
    /// The partial slot of the piece while in progress, or NONE.
    pub(super) slot: u32,
    pub(super) prio: Priority,
}

/// The wanted, unstarted pieces of one priority class, bucketed by `raw` availability.
#[derive(Clone, Debug, Default)]
pub(super) struct Order {
    /// The `raw` value of `buckets[0]`.
    pub(super) lo: i32,
    /// Spans only occupied `raw` values: the first and last buckets are never empty. There
    /// are at most (number of peers + 1) buckets, since all availabilities lie in
    /// `0..=peers`, so the rare insertion of a bucket at the front is cheap.
    pub(super) buckets: Vec<Vec<u32>>,
    pub(super) len: u32,
    /// Emptied bucket vectors, kept for their capacity.
    pub(super) spare: Vec<Vec<u32>>,
}

impl Order {
    /// Makes sure a bucket for `key` exists; returns its index.
    #[inline]
    fn bucket_for(&mut self, key: i32) -> usize {
        let idx = key.wrapping_sub(self.lo) as u32 as usize;
        if idx < self.buckets.len() {
            idx
        } else {
            self.grow_to(key)
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_to(&mut self, key: i32) -> usize {
        if self.buckets.is_empty() {
            self.lo = key;
        }
        if key < self.lo {
            let extra = (self.lo - key) as usize;
            let spare = &mut self.spare;
            self.buckets
                .splice(0..0, (0..extra).map(|_| spare.pop().unwrap_or_default()));
            self.lo = key;
        }
        let idx = (key - self.lo) as usize;
        while self.buckets.len() <= idx {
            self.buckets.push(self.spare.pop().unwrap_or_default());
        }
        idx
    }

    #[inline]
    pub(super) fn insert(&mut self, piece: u32, key: i32, pieces: &mut [PieceState]) {
        let idx = self.bucket_for(key);
        let bucket = &mut self.buckets[idx];
        pieces[piece as usize].pos = bucket.len() as u32;
        bucket.push(piece);
        self.len += 1;
    }

    /// Takes `piece` out of bucket `idx`; says whether that left the bucket empty.
    #[inline]
    fn take_out(&mut self, piece: u32, idx: usize, pieces: &mut [PieceState]) -> bool {
        let bucket = &mut self.buckets[idx];
        let at = pieces[piece as usize].pos as usize;
        debug_assert_eq!(bucket[at], piece);
        bucket.swap_remove(at);
        if let Some(&moved) = bucket.get(at) {
            pieces[moved as usize].pos = at as u32;
        }
        bucket.is_empty()
    }

    #[inline]
    pub(super) fn remove(&mut self, piece: u32, key: i32, pieces: &mut [PieceState]) {
        let idx = (key - self.lo) as usize;
        let emptied = self.take_out(piece, idx, pieces);
        pieces[piece as usize].pos = NONE;
        self.len -= 1;
        if emptied {
            self.trim();
        }
    }

    /// Moves `piece` from the bucket of `from` to the bucket of `to`: O(1).
    #[inline]
    fn shift(&mut self, piece: u32, from: i32, to: i32, pieces: &mut [PieceState]) {
        // Make the target bucket first: it may shift the indexes.
        let ti = self.bucket_for(to);
        let fi = (from - self.lo) as usize;
        let emptied = self.take_out(piece, fi, pieces);
        let dst = &mut self.buckets[ti];
        pieces[piece as usize].pos = dst.len() as u32;
        dst.push(piece);
        if emptied {
            self.trim();
        }
    }

    /// Drops empty buckets at both ends.
    fn trim(&mut self) {
        let lead = self.buckets.iter().take_while(|b| b.is_empty()).count();
        if lead > 0 {
            self.spare.extend(self.buckets.drain(..lead));
            self.lo += lead as i32;
        }
        while self.buckets.last().is_some_and(Vec::is_empty) {
            if let Some(v) = self.buckets.pop() {
                self.spare.push(v);
            }
        }
    }

    /// The `r`-th piece counting bucket by bucket (for uniform sampling), O(buckets).
    pub(super) fn nth(&self, mut r: u32) -> u32 {
        for b in &self.buckets {
            match b.get(r as usize) {
                Some(&piece) => return piece,
                None => r -= b.len() as u32,
            }
        }
        NONE
    }
}

impl Picker {
    /// `raw[i] += d` (d = ±1), moving the piece to the neighbouring bucket if it is in the
    /// order.
    #[inline]
    pub(super) fn raw_add(&mut self, i: u32, d: i32) {
        let iu = i as usize;
        let old = self.pieces[iu].raw;
        self.pieces[iu].raw = old + d;
        if self.pieces[iu].pos != NONE {
            self.order[class_of(self.pieces[iu].prio)].shift(i, old, old + d, &mut self.pieces);
        }
    }

    fn order_insert(&mut self, i: u32) {
        let c = class_of(self.pieces[i as usize].prio);
        self.order[c].insert(i, self.pieces[i as usize].raw, &mut self.pieces);
        self.fresh[c].set(i);
        if i < self.cursor[c] {
            self.cursor[c] = i;
        }
    }

    pub(super) fn order_remove(&mut self, i: u32) {
        let c = class_of(self.pieces[i as usize].prio);
        self.order[c].remove(i, self.pieces[i as usize].raw, &mut self.pieces);
        self.fresh[c].clear(i);
    }

    /// Puts the piece in or out of the order as its state says.
    pub(super) fn sync_order(&mut self, i: u32) {
        let iu = i as usize;
        let belongs = self.wanted.get(i) && self.pieces[iu].slot == NONE;
        let is_in = self.pieces[iu].pos != NONE;
        if belongs && !is_in {
            self.order_insert(i);
        } else if !belongs && is_in {
            self.order_remove(i);
        }
    }

    /// Re-derives whether piece `i` is wanted; on a change, updates the order, the open
    /// list and (if `count_peers`) every peer's wanted-count.
    pub(super) fn refresh_wanted(&mut self, i: u32, count_peers: bool) {
        let iu = i as usize;
        let now = !self.have.get(i) && self.pieces[iu].prio != Priority::Skip;
        if now == self.wanted.get(i) {
            return;
        }
        if now {
            self.wanted.set(i);
        } else {
            self.wanted.clear(i);
        }
        if count_peers {
            let Picker { peers, live, .. } = self;
            for &k in live.iter() {
                let Some(p) = peers[k as usize].as_mut() else {
                    continue;
                };
                // Sparse/Dense count wanted pieces they have, AllBut wanted ones they lack.
                let counts = match &p.has {
                    Has::AllBut(missing) => missing.binary_search(&i).is_ok(),
                    other => other.contains(i),
                };
                if counts {
                    if now {
                        p.wcount += 1;
                    } else {
                        p.wcount -= 1;
                    }
                }
            }
        }
        self.sync_order(i);
        let s = self.pieces[iu].slot;
        if s != NONE {
            self.sync_open(s);
        }
    }
}
