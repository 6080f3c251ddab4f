//! The picker's invariants, and [`Picker::check_invariants`], which the tests call after
//! every step to check them all against brute-force counts.
//!
//! (`raw[i]`, `pos[i]`: the fields of piece `i`'s entry in `pieces`, which keeps what the
//! picker knows of a piece side by side.)
//!
//! - `base + raw[i]` equals the number of live peers that have piece `i`.
//! - A piece is in its class's order exactly when it is wanted and has no partial; it sits
//!   in bucket `raw[i] - lo` at position `pos[i]`; the first and last buckets of an order
//!   are non-empty; `fresh[class]` mirrors membership bit for bit.
//! - `cursor[class]` is at or below the lowest member of the class.
//! - A partial exists only while some block is requested or received; its `free` and
//!   `received` counts match its blocks; it is in `open` exactly when it has a free block
//!   and its piece is wanted; a peer has a link in it exactly when it owns it or has
//!   requests in it, and the link and the peer's list point at each other.
//! - Each peer's wanted-count matches its pieces, so [`Picker::is_interesting`] is O(1).

use super::has::Has;
use super::{class_of, Picker, Priority, NONE};

impl Picker {
    pub(super) fn set_caps(&mut self, sparse: usize, allbut: usize, slack: u64) {
        self.sparse_cap = sparse;
        self.allbut_cap = allbut;
        self.walk_slack = slack;
    }

    /// Checks every invariant of the module docs; panics with a message on a violation.
    pub(crate) fn check_invariants(&self) {
        let n = self.layout.pieces;
        // Availability against a brute-force count.
        for i in 0..n {
            let count = self
                .live
                .iter()
                .filter(|&&k| self.peers[k as usize].as_ref().unwrap().has.contains(i))
                .count() as i32;
            assert_eq!(
                self.base + self.pieces[i as usize].raw,
                count,
                "availability of {i}"
            );
        }
        // Wanted.
        for i in 0..n {
            let w = !self.have.get(i) && self.pieces[i as usize].prio != Priority::Skip;
            assert_eq!(self.wanted.get(i), w, "wanted {i}");
        }
        assert_eq!(self.have.count_ones(), self.have_count);
        // Orders.
        let mut members = 0;
        for c in 0..2 {
            let ord = &self.order[c];
            let mut len = 0;
            if !ord.buckets.is_empty() {
                assert!(!ord.buckets[0].is_empty(), "empty first bucket");
                assert!(
                    !ord.buckets[ord.buckets.len() - 1].is_empty(),
                    "empty last bucket"
                );
            }
            for (bi, bucket) in ord.buckets.iter().enumerate() {
                for (j, &i) in bucket.iter().enumerate() {
                    let iu = i as usize;
                    assert_eq!(self.pieces[iu].pos, j as u32, "pos of {i}");
                    assert_eq!(self.pieces[iu].raw, ord.lo + bi as i32, "bucket of {i}");
                    assert_eq!(class_of(self.pieces[iu].prio), c, "class of {i}");
                    assert!(
                        self.wanted.get(i) && self.pieces[iu].slot == NONE,
                        "{i} in order"
                    );
                    assert!(self.fresh[c].get(i));
                    len += 1;
                }
            }
            assert_eq!(ord.len, len);
            assert_eq!(self.fresh[c].count_ones(), len);
            members += len;
            if let Some(first) = self.fresh[c].iter_ones().next() {
                assert!(self.cursor[c] <= first, "cursor past a member");
            }
        }
        let mut should = 0;
        for i in 0..n {
            let iu = i as usize;
            let belongs = self.wanted.get(i) && self.pieces[iu].slot == NONE;
            assert_eq!(belongs, self.pieces[iu].pos != NONE, "membership of {i}");
            should += u32::from(belongs);
        }
        assert_eq!(members, should);
        // Partials.
        let mut used = 0;
        for (s, part) in self.partials.iter().enumerate() {
            if part.piece == NONE {
                assert!(self.free_slots.contains(&(s as u32)));
                continue;
            }
            used += 1;
            assert_eq!(self.pieces[part.piece as usize].slot, s as u32);
            assert_eq!(part.blocks.len() as u32, self.layout.blocks(part.piece));
            let free = part
                .blocks
                .iter()
                .filter(|b| b.from == NONE && b.requesters.is_empty())
                .count();
            let received = part.blocks.iter().filter(|b| b.from != NONE).count();
            assert_eq!(part.free as usize, free);
            assert_eq!(part.received as usize, received);
            assert!(free < part.blocks.len(), "pristine partial {}", part.piece);
            for b in &part.blocks {
                assert!(b.from == NONE || b.requesters.is_empty());
            }
            let open = free > 0 && self.wanted.get(part.piece);
            assert_eq!(open, part.open_pos != NONE, "open {}", part.piece);
            if open {
                assert_eq!(self.open[part.open_pos as usize], s as u32);
            }
            if part.owner != NONE {
                assert!(part.links.iter().any(|l| l.peer == part.owner));
            }
            for l in &part.links {
                let p = self.peers[l.peer as usize]
                    .as_ref()
                    .expect("linked peer lives");
                assert_eq!(p.links[l.idx as usize], part.piece);
                let outstanding = part
                    .blocks
                    .iter()
                    .filter(|b| b.requesters.contains(&l.peer))
                    .count() as u32;
                assert_eq!(l.outstanding, outstanding);
                assert!(outstanding > 0 || part.owner == l.peer, "idle link");
            }
            for b in &part.blocks {
                for q in &b.requesters {
                    assert!(
                        part.links.iter().any(|l| l.peer == *q),
                        "requester without link"
                    );
                }
            }
        }
        assert_eq!(used, self.partial_count);
        assert_eq!(
            self.open.len(),
            self.open
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
        // Peers.
        for (pos, &k) in self.live.iter().enumerate() {
            let p = self.peers[k as usize].as_ref().expect("live peer");
            assert_eq!(p.live_pos as usize, pos);
            for (idx, &piece) in p.links.iter().enumerate() {
                let s = self.pieces[piece as usize].slot;
                assert_ne!(s, NONE, "peer linked to a piece not in progress");
                let l = self.partials[s as usize]
                    .links
                    .iter()
                    .find(|l| l.peer == k)
                    .expect("link back");
                assert_eq!(l.idx as usize, idx);
            }
            let wc = match &p.has {
                Has::Sparse(list) => {
                    assert!(list.windows(2).all(|w| w[0] < w[1]), "list not sorted");
                    assert!(list.len() <= self.sparse_cap);
                    assert!(list.iter().all(|&i| i < n));
                    list.iter().filter(|&&i| self.wanted.get(i)).count() as u32
                }
                Has::Dense(b) => b.count_ones_and(&self.wanted),
                Has::AllBut(missing) => {
                    assert!(missing.windows(2).all(|w| w[0] < w[1]));
                    assert!(missing.iter().all(|&i| i < n));
                    missing.iter().filter(|&&j| self.wanted.get(j)).count() as u32
                }
            };
            assert_eq!(p.wcount, wc, "wanted-count of peer {k}");
        }
        let live_count = self.peers.iter().filter(|p| p.is_some()).count();
        assert_eq!(live_count, self.live.len());
    }
}
