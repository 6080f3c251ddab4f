//! Picking: [`Picker::pick`] in its five steps, and the [`Select`] walker that chooses
//! new pieces for one priority class.
//!
//! *Picking a new piece* never looks at all pieces one by one, for any peer shape. A
//! near-seed walks the order from the rarest bucket (it lacks at most `allbut_cap` pieces,
//! so the walk skips at most that many). A sparse peer whose list is shorter than the
//! expected walk (`pieces needed × class size / wanted pieces it has`) takes the rarest of
//! its own k pieces in O(k). Any other peer walks with a budget of a few times the expected
//! walk, capped at a few checks per word of a bitfield; if the rarest buckets hold only
//! pieces it lacks, a sparse peer falls back to its list and a bitfield peer to a
//! word-wise scan of its bitfield ANDed with the class's members from a random word,
//! stopping as soon as it has enough candidates as rare as the bucket where the walk
//! stopped (it is then exactly rarest first) or after a bounded number of candidates (then
//! approximately rarest first). That scan, O(n/64) word operations, is the worst case of a
//! pick; it needs a peer whose bitfield misses the rarest buckets entirely. A peer with no
//! piece we want costs O(1). Sequential mode keeps a cursor per class at or below the
//! lowest member, advanced lazily word by word, and reads from there (a sparse peer from
//! its sorted list); random-first samples the order uniformly (a sparse peer, its own
//! list).

use crate::bitfield::Bitfield;
use crate::rng::Rng;
use crate::{BlockRequest, PeerKey, PieceIndex, BLOCK_SIZE};

use super::has::{Has, Peer};
use super::layout::Layout;
use super::order::{Order, PieceState};
use super::{Picker, NONE};

/// How a walk over an order ended.
pub(super) enum WalkEnd {
    Done,
    Exhausted,
    /// Out of budget inside the bucket of this `raw` value: every unseen piece is at least
    /// that rare.
    Budget(i32),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Rarest,
    Random,
    Sequential,
}

/// Sort key of a `raw` value as an unsigned number.
#[inline]
fn raw_key(r: i32) -> u64 {
    u64::from((r as u32) ^ (1 << 31))
}

/// The selection of new pieces for one pick, over one priority class.
pub(super) struct Select<'a> {
    pub(super) layout: &'a Layout,
    pub(super) pieces: &'a [PieceState],
    pub(super) rng: &'a mut Rng,
    pub(super) scratch: &'a mut Vec<(u64, u32)>,
    pub(super) collected: &'a mut Vec<u32>,
    /// Blocks still to find.
    pub(super) bn: u32,
    /// Where this class's pieces start in `collected`.
    pub(super) from: usize,
}

impl Select<'_> {
    #[inline]
    fn done(&self) -> bool {
        self.bn == 0
    }

    #[inline]
    pub(super) fn take(&mut self, i: u32) {
        self.collected.push(i);
        self.bn = self.bn.saturating_sub(self.layout.blocks(i));
    }

    /// Whether `i` was collected for this class before position `upto`.
    #[inline]
    fn already(&self, i: u32, upto: usize) -> bool {
        // Usually nothing was collected before: skip the search.
        upto > self.from && self.collected[self.from..upto].contains(&i)
    }

    /// Enough pieces to cover the blocks still wanted (one more for the short last piece).
    fn pieces_wanted(&self) -> usize {
        let bpp = self.layout.blocks_per_piece;
        // One piece covers small asks: skip the division on the common path.
        let whole = if self.bn <= bpp {
            1
        } else {
            self.bn.div_ceil(bpp)
        };
        whole as usize + 1
    }

    /// Rarest bucket first, each from a random offset, taking pieces `has` accepts.
    fn walk(&mut self, ord: &Order, has: impl Fn(u32) -> bool, mut budget: u64) -> WalkEnd {
        let upto = self.collected.len();
        for (bi, bucket) in ord.buckets.iter().enumerate() {
            if bucket.is_empty() {
                continue;
            }
            let start = self.rng.below(bucket.len() as u32) as usize;
            let (head, tail) = bucket.split_at(start);
            for half in [tail, head] {
                for &i in half {
                    if budget == 0 {
                        return WalkEnd::Budget(ord.lo + bi as i32);
                    }
                    budget -= 1;
                    if has(i) && !self.already(i, upto) {
                        self.take(i);
                        if self.done() {
                            return WalkEnd::Done;
                        }
                    }
                }
            }
        }
        WalkEnd::Exhausted
    }

    /// The rarest of a peer's own pieces that are in `fresh`, in O(len) (+ the selection).
    fn best_of_list(&mut self, list: &[u32], fresh: &Bitfield) {
        self.scratch.clear();
        if list.is_empty() {
            return;
        }
        let upto = self.collected.len();
        // Ties go to whoever comes first from a random rotation of the list.
        let start = self.rng.below(list.len() as u32) as usize;
        let (head, tail) = list.split_at(start);
        for (j, &i) in tail.iter().chain(head).enumerate() {
            if fresh.get(i) && !self.already(i, upto) {
                let key = (raw_key(self.pieces[i as usize].raw) << 32) | j as u64;
                self.scratch.push((key, i));
            }
        }
        self.take_best();
    }

    /// Takes the lowest-keyed candidates of `scratch` until enough blocks are found.
    fn take_best(&mut self) {
        let m = self.pieces_wanted().min(self.scratch.len());
        if m == 0 {
            return;
        }
        if m < self.scratch.len() {
            self.scratch.select_nth_unstable(m - 1);
        }
        self.scratch[..m].sort_unstable();
        for t in 0..m {
            if self.done() {
                break;
            }
            let i = self.scratch[t].1;
            self.take(i);
        }
    }

    /// The fallback for a dense peer whose walk ran out of budget: a word-wise scan of
    /// `bits & fresh` from a random word, stopping once it has enough candidates as rare as
    /// `floor` (no unseen piece is rarer) or `cap` candidates in all.
    fn scan(&mut self, bits: &Bitfield, fresh: &Bitfield, floor: i32, cap: usize) {
        self.scratch.clear();
        let upto = self.collected.len();
        let (a, f) = (bits.words(), fresh.words());
        let nw = f.len().min(a.len());
        if nw == 0 {
            return;
        }
        let m = self.pieces_wanted();
        let start = self.rng.below(nw as u32) as usize;
        let mut at_floor = 0;
        let mut seen = 0u64;
        for t in 0..nw {
            let w = if start + t < nw {
                start + t
            } else {
                start + t - nw
            };
            let mut x = a[w] & f[w];
            while x != 0 {
                let i = w as u32 * 64 + x.trailing_zeros();
                x &= x - 1;
                if self.already(i, upto) {
                    continue;
                }
                let r = self.pieces[i as usize].raw;
                if r <= floor {
                    at_floor += 1;
                }
                self.scratch.push(((raw_key(r) << 32) | seen, i));
                seen += 1;
            }
            if at_floor >= m || self.scratch.len() >= cap {
                break;
            }
        }
        self.take_best();
    }

    /// Lowest index first from `start`: the set bits of `fresh` (ANDed with `filter`)
    /// that `has` accepts.
    fn scan_seq(
        &mut self,
        fresh: &Bitfield,
        filter: Option<&Bitfield>,
        has: impl Fn(u32) -> bool,
        start: u32,
    ) {
        let f = fresh.words();
        let mut w = (start / 64) as usize;
        if w >= f.len() {
            return;
        }
        let mut x = f[w] & (!0u64 << (start % 64));
        loop {
            if let Some(b) = filter {
                x &= b.words().get(w).copied().unwrap_or(0);
            }
            while x != 0 {
                let i = w as u32 * 64 + x.trailing_zeros();
                x &= x - 1;
                if has(i) {
                    self.take(i);
                    if self.done() {
                        return;
                    }
                }
            }
            w += 1;
            match f.get(w) {
                Some(&next) => x = next,
                None => return,
            }
        }
    }

    /// Lowest index first among a sparse peer's sorted pieces in `fresh`, from `start`.
    fn seq_of_list(&mut self, list: &[u32], fresh: &Bitfield, start: u32) {
        let from = list.partition_point(|&i| i < start);
        for &i in &list[from..] {
            if fresh.get(i) {
                self.take(i);
                if self.done() {
                    return;
                }
            }
        }
    }

    /// Random pieces among a sparse peer's own pieces in `fresh`.
    fn random_of_list(&mut self, list: &[u32], fresh: &Bitfield) {
        self.scratch.clear();
        let upto = self.collected.len();
        for &i in list {
            if fresh.get(i) && !self.already(i, upto) {
                self.scratch.push((0, i));
            }
        }
        let len = self.scratch.len();
        let m = self.pieces_wanted().min(len);
        for t in 0..m {
            if self.done() {
                break;
            }
            let j = t + self.rng.below((len - t) as u32) as usize;
            self.scratch.swap(t, j);
            let i = self.scratch[t].1;
            self.take(i);
        }
    }

    /// Uniform samples of the order that `has` accepts, at most `attempts` of them.
    fn random_sample(&mut self, ord: &Order, has: impl Fn(u32) -> bool, attempts: u64) {
        for _ in 0..attempts {
            if self.done() || self.collected.len() - self.from >= ord.len as usize {
                return;
            }
            let i = ord.nth(self.rng.below(ord.len));
            if i != NONE && has(i) && !self.already(i, self.collected.len()) {
                self.take(i);
            }
        }
    }
}

/// Appends the first `need` blocks of piece `i` (all of them if it has fewer).
#[inline]
fn push_piece(layout: &Layout, i: u32, need: &mut u32, out: &mut Vec<BlockRequest>) {
    let blocks = layout.blocks(i).min(*need);
    let len = layout.piece_len(i);
    out.extend((0..blocks).map(|b| BlockRequest {
        piece: PieceIndex(i),
        begin: b * BLOCK_SIZE,
        length: (len - b * BLOCK_SIZE).min(BLOCK_SIZE),
    }));
    *need -= blocks;
}

/// Moves `cursor` up to the first member of `fresh` (or the end) and returns it.
fn advance_cursor(fresh: &Bitfield, cursor: &mut u32) -> u32 {
    let words = fresh.words();
    let mut c = *cursor;
    loop {
        let w = (c / 64) as usize;
        let Some(&word) = words.get(w) else {
            c = fresh.len();
            break;
        };
        let x = word & (!0u64 << (c % 64));
        if x != 0 {
            c = w as u32 * 64 + x.trailing_zeros();
            break;
        }
        c = (w as u32 + 1) * 64;
    }
    *cursor = c.min(fresh.len());
    *cursor
}

/// Rarest-first selection in one class for a peer of any shape (see the module docs).
fn rarest(sel: &mut Select<'_>, has: &Has, ord: &Order, fresh: &Bitfield, budget: u64) {
    match has {
        Has::AllBut(missing) => {
            // It lacks at most a few pieces, so the walk skips at most that many.
            sel.walk(ord, |i| missing.binary_search(&i).is_err(), u64::MAX);
        }
        Has::Sparse(list) => {
            if (list.len() as u64) * 4 <= budget {
                sel.best_of_list(list, fresh);
            } else if let WalkEnd::Budget(_) = sel.walk(ord, |i| has.contains(i), budget) {
                sel.best_of_list(list, fresh);
            }
        }
        Has::Dense(bits) => {
            if let WalkEnd::Budget(floor) = sel.walk(ord, |i| bits.get(i), budget) {
                let cap = (16 * sel.pieces_wanted()).max(256);
                sel.scan(bits, fresh, floor, cap);
            }
        }
    }
}

impl Picker {
    /// Appends to `out` up to `max_blocks` blocks to request from `peer`, best first (see
    /// the module docs for the policy). Returns how many it appended.
    ///
    /// Nothing is recorded: call [`mark_requested`](Self::mark_requested) for the blocks
    /// actually requested. Only the random number generator advances, so two calls in a row
    /// may break ties differently.
    #[inline]
    pub fn pick(&mut self, peer: PeerKey, max_blocks: u32, out: &mut Vec<BlockRequest>) -> usize {
        let before = out.len();
        let k = peer.0 as usize;
        let Some(Some(p)) = self.peers.get(k) else {
            return 0;
        };
        let mut need = max_blocks;
        // Every step needs a wanted piece the peer has.
        let interesting = match p.has {
            Has::AllBut(_) => self.wanted.count_ones() > p.wcount,
            _ => p.wcount > 0,
        };
        if need == 0 || !interesting {
            return 0;
        }
        if !p.links.is_empty() {
            self.pick_own(k, &mut need, out);
        }
        if need > 0 && !self.open.is_empty() {
            self.pick_open(k, true, &mut need, out);
        }
        if need > 0 && self.order[0].len + self.order[1].len > 0 {
            let rarest_first =
                !self.config.sequential && self.have_count >= self.config.random_first_pieces;
            match self.peers.get(k) {
                Some(Some(Peer {
                    has: Has::AllBut(_),
                    ..
                })) if rarest_first => self.pick_new_near_seed(k, &mut need, out),
                _ => self.pick_new(k, &mut need, out),
            }
        }
        if need > 0 && !self.open.is_empty() {
            self.pick_open(k, false, &mut need, out);
        }
        if need > 0 && self.in_endgame() {
            self.pick_endgame(k, &mut need, out);
        }
        out.len() - before
    }

    /// Appends the blocks of the pieces right after `after`, whole, for as long as each
    /// is wanted, not started by anyone (no block requested or received) and had by
    /// `peer`, up to `max_blocks` blocks. Returns how many it appended.
    ///
    /// For a source that fetches runs of bytes rather than blocks (a web seed): a
    /// [`pick`](Self::pick) that ends a piece is extended with the pieces that follow, so
    /// one request covers many. It never proposes a block anyone else asked for, and, as
    /// `pick`, records nothing. O(pieces appended).
    pub fn extend_run(
        &self,
        peer: PeerKey,
        after: PieceIndex,
        max_blocks: u32,
        out: &mut Vec<BlockRequest>,
    ) -> usize {
        let before = out.len();
        let Some(Some(p)) = self.peers.get(peer.0 as usize) else {
            return 0;
        };
        let mut budget = max_blocks;
        let mut piece = after.0.saturating_add(1);
        while piece < self.layout.pieces {
            let state = &self.pieces[piece as usize];
            let fresh = state.pos != NONE && state.slot == NONE;
            let blocks = self.layout.blocks(piece);
            if !fresh || !p.has.contains(piece) || blocks > budget {
                break;
            }
            for b in 0..blocks {
                out.push(self.layout.block(piece, b));
            }
            budget -= blocks;
            piece += 1;
        }
        out.len() - before
    }

    /// Appends the free blocks of partial `s`.
    fn push_free(&self, s: u32, need: &mut u32, out: &mut Vec<BlockRequest>) {
        let part = &self.partials[s as usize];
        if part.free == 0 {
            return;
        }
        for (b, blk) in part.blocks.iter().enumerate() {
            if *need == 0 {
                return;
            }
            if blk.from == NONE && blk.requesters.is_empty() {
                out.push(self.layout.block(part.piece, b as u32));
                *need -= 1;
            }
        }
    }

    /// Step 1: the pieces this peer is downloading.
    #[inline(never)]
    fn pick_own(&self, k: usize, need: &mut u32, out: &mut Vec<BlockRequest>) {
        let Some(p) = self.peers[k].as_ref() else {
            return;
        };
        for &piece in &p.links {
            if *need == 0 {
                return;
            }
            if self.wanted.get(piece) && p.has.contains(piece) {
                let s = self.pieces[piece as usize].slot;
                if s != NONE {
                    self.push_free(s, need, out);
                }
            }
        }
    }

    /// Steps 2 (`orphans`: abandoned pieces) and 4 (pieces others are downloading).
    #[inline(never)]
    fn pick_open(&self, k: usize, orphans: bool, need: &mut u32, out: &mut Vec<BlockRequest>) {
        let Some(p) = self.peers[k].as_ref() else {
            return;
        };
        let kk = k as u32;
        for &s in &self.open {
            if *need == 0 {
                return;
            }
            let part = &self.partials[s as usize];
            if (part.owner == NONE) != orphans
                || part.links.iter().any(|l| l.peer == kk)
                || !p.has.contains(part.piece)
            {
                continue;
            }
            self.push_free(s, need, out);
        }
    }

    /// Step 5: blocks requested from others, not yet from this peer.
    #[inline(never)]
    fn pick_endgame(&mut self, k: usize, need: &mut u32, out: &mut Vec<BlockRequest>) {
        let np = self.partials.len();
        if np == 0 {
            return;
        }
        let start = self.rng.below(np as u32) as usize;
        let Some(p) = self.peers[k].as_ref() else {
            return;
        };
        let kk = k as u32;
        let max = self.config.endgame_requests as usize;
        for t in 0..np {
            let part = &self.partials[(start + t) % np];
            if part.piece == NONE || !self.wanted.get(part.piece) || !p.has.contains(part.piece) {
                continue;
            }
            for (b, blk) in part.blocks.iter().enumerate() {
                if *need == 0 {
                    return;
                }
                if blk.from == NONE
                    && !blk.requesters.is_empty()
                    && blk.requesters.len() < max
                    && !blk.requesters.contains(&kk)
                {
                    out.push(self.layout.block(part.piece, b as u32));
                    *need -= 1;
                }
            }
        }
    }

    /// Step 3 for a seed or near-seed, rarest first: it lacks at most `allbut_cap` pieces,
    /// so a plain walk of each class from its rarest bucket finds its pieces at once, and
    /// blocks go straight to `out`. (The general path would choose the same pieces.)
    #[inline]
    fn pick_new_near_seed(&mut self, k: usize, need: &mut u32, out: &mut Vec<BlockRequest>) {
        let Picker {
            order,
            rng,
            layout,
            peers,
            ..
        } = self;
        let Some(Some(Peer {
            has: Has::AllBut(missing),
            ..
        })) = peers.get(k)
        else {
            return;
        };
        for ord in order.iter() {
            for bucket in &ord.buckets {
                if bucket.is_empty() {
                    continue;
                }
                let start = rng.below(bucket.len() as u32) as usize;
                let (head, tail) = bucket.split_at(start);
                for half in [tail, head] {
                    for &i in half {
                        if !missing.is_empty() && missing.binary_search(&i).is_ok() {
                            continue;
                        }
                        push_piece(layout, i, need, out);
                        if *need == 0 {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Step 3: new pieces, High class first.
    #[inline(never)]
    fn pick_new(&mut self, k: usize, need: &mut u32, out: &mut Vec<BlockRequest>) {
        let mut collected = std::mem::take(&mut self.collected);
        collected.clear();
        let mode = if self.config.sequential {
            Mode::Sequential
        } else if self.have_count < self.config.random_first_pieces {
            Mode::Random
        } else {
            Mode::Rarest
        };
        let mut bn = *need;
        for c in 0..2 {
            if bn > 0 && self.order[c].len > 0 {
                bn = self.new_pieces(k, c, mode, bn, &mut collected);
            }
        }
        for &i in &collected {
            push_piece(&self.layout, i, need, out);
            if *need == 0 {
                break;
            }
        }
        self.collected = collected;
    }

    /// New pieces of class `c` for peer `k`, appended to `collected`; returns the blocks
    /// still wanted.
    fn new_pieces(
        &mut self,
        k: usize,
        c: usize,
        mode: Mode,
        need: u32,
        collected: &mut Vec<u32>,
    ) -> u32 {
        let Picker {
            layout,
            pieces,
            rng,
            scratch,
            peers,
            order,
            fresh,
            cursor,
            wanted,
            walk_slack,
            ..
        } = self;
        let Some(p) = peers[k].as_ref() else {
            return need;
        };
        let ord = &order[c];
        let fr = &fresh[c];
        let from = collected.len();
        let mut sel = Select {
            layout,
            pieces,
            rng,
            scratch,
            collected,
            bn: need,
            from,
        };
        let m = sel.pieces_wanted() as u64;
        let budget = match (&p.has, mode) {
            // A near-seed's rarest-first walk needs no budget, nor sequential mode.
            (Has::AllBut(_), Mode::Rarest) | (_, Mode::Sequential) => u64::MAX,
            _ => {
                // The expected walk to find enough pieces: pieces wanted × class size /
                // pieces the peer has that we want…
                let has_wanted = match p.has {
                    Has::AllBut(_) => wanted.count_ones().saturating_sub(p.wcount),
                    _ => p.wcount,
                };
                let est = m.saturating_mul(u64::from(ord.len)) / u64::from(has_wanted.max(1));
                // … but past a few checks per bitfield word, the word scan of the fallback
                // is cheaper.
                let scan_cost = 4 * fr.words().len() as u64;
                est.saturating_mul(4).min(scan_cost) + *walk_slack
            }
        };
        match mode {
            Mode::Sequential => {
                let start = advance_cursor(fr, &mut cursor[c]);
                match &p.has {
                    Has::Sparse(list) => sel.seq_of_list(list, fr, start),
                    Has::Dense(b) => sel.scan_seq(fr, Some(b), |_| true, start),
                    Has::AllBut(missing) => {
                        sel.scan_seq(fr, None, |i| missing.binary_search(&i).is_err(), start)
                    }
                }
            }
            Mode::Random => match &p.has {
                Has::Sparse(list) => sel.random_of_list(list, fr),
                Has::Dense(b) => {
                    sel.random_sample(ord, |i| b.get(i), budget);
                    if !sel.done() {
                        rarest(&mut sel, &p.has, ord, fr, budget);
                    }
                }
                Has::AllBut(missing) => {
                    let attempts = m.saturating_mul(4) + missing.len() as u64 + *walk_slack;
                    sel.random_sample(ord, |i| missing.binary_search(&i).is_err(), attempts);
                    if !sel.done() {
                        rarest(&mut sel, &p.has, ord, fr, budget);
                    }
                }
            },
            Mode::Rarest => rarest(&mut sel, &p.has, ord, fr, budget),
        }
        sel.bn
    }
}
