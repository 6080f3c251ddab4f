//! The pieces each peer has, in the form that fits it, and what its joining, leaving and
//! announcements do to availability.
//!
//! *Availability without per-piece work for seeds.* Availability is `base + raw[i]`. A peer
//! described by the pieces it has adds 1 to `raw[i]` for each; a seed adds 1 to `base`; a
//! near-seed adds 1 to `base` and −1 to `raw[j]` for each piece `j` it lacks. Since only
//! differences of `raw` decide the order, and both descriptions give the same `base + raw`,
//! a peer can be added in one style and removed in the other: joining or leaving costs
//! O(min(k, n−k)) piece updates for a peer with k of n pieces (O(1) for a seed), and a
//! `have` is always `raw[i] += 1`. `raw` values drift over time; only their spread (at most
//! the number of peers) matters.
//!
//! *Peers.* The caller names peers by a small dense [`PeerKey`] (reusable after
//! [`Picker::remove_peer`]). Each peer's pieces are kept in whichever form fits: *only
//! these* (a sorted list of at most `sparse_cap` = n/64 clamped to 32..=4096 pieces), *a
//! bitfield*, or *all but these* (a sorted list of at most `allbut_cap` missing pieces; a
//! seed has an empty one and costs no memory). So "does peer P have piece i" is a bit test
//! or a binary search in a short list (≤ 12 steps), a sparse peer's pieces are listed in
//! O(k) without a bitfield copy, and a seed is added in O(1). Forms change as haves
//! arrive (a list past its cap becomes a bitfield, a full bitfield a seed); changing form
//! never touches availability.

use crate::bitfield::Bitfield;
use crate::{PeerKey, PieceIndex};

use super::{Picker, PickerError, MAX_PEER_KEY, NONE};

/// The pieces a peer has, in the form that fits.
#[derive(Clone, Debug)]
pub(super) enum Has {
    /// Exactly the pieces in the sorted list (membership by binary search; a `have`
    /// inserts in place, which the list's cap keeps cheap).
    Sparse(Vec<u32>),
    /// The pieces set in the bitfield.
    Dense(Bitfield),
    /// Every piece but the sorted `missing` (a seed when it is empty).
    AllBut(Vec<u32>),
}

impl Has {
    #[inline]
    pub(super) fn contains(&self, i: u32) -> bool {
        match self {
            Has::Dense(b) => b.get(i),
            Has::Sparse(list) => list.binary_search(&i).is_ok(),
            Has::AllBut(missing) => missing.binary_search(&i).is_err(),
        }
    }

    fn empty() -> Has {
        Has::Sparse(Vec::new())
    }
}

#[derive(Clone, Debug)]
pub(super) struct Peer {
    pub(super) has: Has,
    /// For `Sparse`/`Dense`: how many wanted pieces it has; for `AllBut`: how many wanted
    /// pieces it lacks.
    pub(super) wcount: u32,
    /// The pieces in which this peer has a link (see `Link`).
    pub(super) links: Vec<u32>,
    /// Position in `Picker::live`.
    pub(super) live_pos: u32,
}

impl Picker {
    /// Registers a peer that has nothing yet.
    pub fn add_peer(&mut self, peer: PeerKey) -> Result<(), PickerError> {
        if peer.0 >= MAX_PEER_KEY {
            return Err(PickerError::PeerKeyTooLarge(peer));
        }
        let k = peer.0 as usize;
        if self.peers.len() <= k {
            self.peers.resize_with(k + 1, || None);
        }
        if self.peers[k].is_some() {
            return Err(PickerError::PeerExists(peer));
        }
        self.peers[k] = Some(Peer {
            has: Has::empty(),
            wcount: 0,
            links: Vec::new(),
            live_pos: self.live.len() as u32,
        });
        self.live.push(peer.0);
        Ok(())
    }

    /// Forgets a peer: its availability goes, its requests are aborted, the pieces it owned
    /// are up for grabs. O(min(k, n−k) + its requests).
    pub fn remove_peer(&mut self, peer: PeerKey) -> Result<(), PickerError> {
        let k = self.peer_index(peer)?;
        let kk = k as u32;
        let (links, has, live_pos) = match self.peers[k].take() {
            Some(p) => (p.links, p.has, p.live_pos),
            None => return Err(PickerError::UnknownPeer(peer)),
        };
        for piece in links {
            let s = self.pieces[piece as usize].slot;
            if s == NONE {
                continue;
            }
            let part = &mut self.partials[s as usize];
            for b in &mut part.blocks {
                if let Some(at) = b.requesters.iter().position(|&q| q == kk) {
                    b.requesters.swap_remove(at);
                    if b.requesters.is_empty() && b.from == NONE {
                        part.free += 1;
                    }
                }
            }
            if part.owner == kk {
                part.owner = NONE;
            }
            if let Some(at) = part.links.iter().position(|l| l.peer == kk) {
                part.links.swap_remove(at);
            }
            self.settle(s);
        }
        self.retract(&has);
        self.live.swap_remove(live_pos as usize);
        if let Some(&moved) = self.live.get(live_pos as usize) {
            if let Some(p) = self.peers[moved as usize].as_mut() {
                p.live_pos = live_pos;
            }
        }
        Ok(())
    }

    /// The peer's `bitfield` message (replaces whatever it had). O(n/64 + min(k, n−k)).
    pub fn peer_bitfield(&mut self, peer: PeerKey, bits: &Bitfield) -> Result<(), PickerError> {
        let k = self.peer_index(peer)?;
        let n = self.layout.pieces;
        if bits.len() != n {
            return Err(PickerError::BitfieldLength {
                expected: n,
                got: bits.len(),
            });
        }
        self.clear_peer(k);
        let count = bits.count_ones();
        let lacks = n - count;
        let (has, wcount) = if lacks as usize <= self.allbut_cap && count >= lacks {
            let missing: Vec<u32> = bits.iter_zeros().collect();
            self.base += 1;
            let mut w = 0;
            for &j in &missing {
                self.raw_add(j, -1);
                w += u32::from(self.wanted.get(j));
            }
            (Has::AllBut(missing), w)
        } else if count as usize <= self.sparse_cap {
            let list: Vec<u32> = bits.iter_ones().collect();
            let mut w = 0;
            for &i in &list {
                self.raw_add(i, 1);
                w += u32::from(self.wanted.get(i));
            }
            (Has::Sparse(list), w)
        } else {
            if count <= lacks {
                for i in bits.iter_ones() {
                    self.raw_add(i, 1);
                }
            } else {
                self.base += 1;
                for j in bits.iter_zeros() {
                    self.raw_add(j, -1);
                }
            }
            (Has::Dense(bits.clone()), bits.count_ones_and(&self.wanted))
        };
        if let Some(p) = self.peers[k].as_mut() {
            p.has = has;
            p.wcount = wcount;
        }
        Ok(())
    }

    /// The peer has every piece (`have all`, or a seed). O(1) for a peer that had nothing.
    #[inline]
    pub fn peer_have_all(&mut self, peer: PeerKey) -> Result<(), PickerError> {
        // The common case, inlined: a peer with nothing yet (fast extension's `have all`
        // right after the handshake) becomes a seed.
        if let Some(Some(p)) = self.peers.get_mut(peer.0 as usize) {
            match &p.has {
                Has::Sparse(list) if list.is_empty() => {
                    p.has = Has::AllBut(Vec::new());
                    p.wcount = 0;
                    self.base += 1;
                    return Ok(());
                }
                Has::AllBut(missing) if missing.is_empty() => return Ok(()),
                _ => {}
            }
        }
        self.have_all_slow(peer)
    }

    fn have_all_slow(&mut self, peer: PeerKey) -> Result<(), PickerError> {
        let k = self.peer_index(peer)?;
        self.clear_peer(k);
        self.base += 1;
        if let Some(p) = self.peers[k].as_mut() {
            p.has = Has::AllBut(Vec::new());
            p.wcount = 0;
        }
        Ok(())
    }

    /// The peer has nothing (`have none`; replaces whatever it had). O(1) for a seed.
    #[inline]
    pub fn peer_have_none(&mut self, peer: PeerKey) -> Result<(), PickerError> {
        if let Some(Some(p)) = self.peers.get_mut(peer.0 as usize) {
            match &p.has {
                Has::AllBut(missing) if missing.is_empty() => {
                    p.has = Has::empty();
                    p.wcount = 0;
                    self.base -= 1;
                    return Ok(());
                }
                Has::Sparse(list) if list.is_empty() => return Ok(()),
                _ => {}
            }
        }
        let k = self.peer_index(peer)?;
        self.clear_peer(k);
        Ok(())
    }

    /// The peer's `have` message. Returns whether the peer didn't have the piece before.
    /// O(1).
    pub fn peer_have(&mut self, peer: PeerKey, piece: PieceIndex) -> Result<bool, PickerError> {
        let k = self.peer_index(peer)?;
        let i = self.check_piece(piece)?;
        let n = self.layout.pieces;
        let wanted = self.wanted.get(i);
        let wanted_total = self.wanted.count_ones();
        let sparse_cap = self.sparse_cap;
        let Some(p) = self.peers[k].as_mut() else {
            return Err(PickerError::UnknownPeer(peer));
        };
        if p.has.contains(i) {
            return Ok(false);
        }
        match &mut p.has {
            Has::Sparse(list) => {
                let Err(at) = list.binary_search(&i) else {
                    return Ok(false);
                };
                list.insert(at, i);
                p.wcount += u32::from(wanted);
                if list.len() > sparse_cap || list.len() as u32 == n {
                    let mut b = Bitfield::new(n);
                    for &j in list.iter() {
                        b.set(j);
                    }
                    p.has = Has::Dense(b);
                }
            }
            Has::Dense(b) => {
                b.set(i);
                p.wcount += u32::from(wanted);
            }
            Has::AllBut(missing) => {
                if let Ok(at) = missing.binary_search(&i) {
                    missing.remove(at);
                }
                p.wcount -= u32::from(wanted);
            }
        }
        // A peer that now has everything becomes a seed: no bitfield to keep.
        if let Has::Dense(b) = &p.has {
            if b.is_full() {
                p.has = Has::AllBut(Vec::new());
                p.wcount = wanted_total - p.wcount;
            }
        }
        self.raw_add(i, 1);
        Ok(true)
    }

    /// The peer no longer has `piece` (BEP 54 `lt_donthave`). O(1) (a binary search and a
    /// short move in a peer's short list at most).
    pub fn peer_dont_have(&mut self, peer: PeerKey, piece: PieceIndex) -> Result<(), PickerError> {
        let k = self.peer_index(peer)?;
        let i = self.check_piece(piece)?;
        let n = self.layout.pieces;
        let wanted = self.wanted.get(i);
        let wanted_total = self.wanted.count_ones();
        let allbut_cap = self.allbut_cap;
        let Some(p) = self.peers[k].as_mut() else {
            return Err(PickerError::UnknownPeer(peer));
        };
        if !p.has.contains(i) {
            return Ok(());
        }
        match &mut p.has {
            Has::Sparse(list) => {
                if let Ok(at) = list.binary_search(&i) {
                    list.remove(at);
                }
                p.wcount -= u32::from(wanted);
            }
            Has::Dense(b) => {
                b.clear(i);
                p.wcount -= u32::from(wanted);
            }
            Has::AllBut(missing) => {
                if let Err(at) = missing.binary_search(&i) {
                    missing.insert(at, i);
                }
                p.wcount += u32::from(wanted);
                if missing.len() > allbut_cap {
                    let mut b = Bitfield::full(n);
                    for &j in missing.iter() {
                        b.clear(j);
                    }
                    p.has = Has::Dense(b);
                    p.wcount = wanted_total - p.wcount;
                }
            }
        }
        self.raw_add(i, -1);
        Ok(())
    }

    /// Removes the peer's pieces from availability and leaves it with none.
    fn clear_peer(&mut self, k: usize) {
        let Some(p) = self.peers[k].as_mut() else {
            return;
        };
        let has = std::mem::replace(&mut p.has, Has::empty());
        p.wcount = 0;
        self.retract(&has);
    }

    /// Takes a peer's pieces out of availability, in whichever style is cheaper.
    fn retract(&mut self, has: &Has) {
        match has {
            Has::Sparse(list) => {
                for &i in list {
                    self.raw_add(i, -1);
                }
            }
            Has::Dense(b) => {
                if u64::from(b.count_ones()) * 2 <= u64::from(self.layout.pieces) {
                    for i in b.iter_ones() {
                        self.raw_add(i, -1);
                    }
                } else {
                    self.base -= 1;
                    for j in b.iter_zeros() {
                        self.raw_add(j, 1);
                    }
                }
            }
            Has::AllBut(missing) => {
                self.base -= 1;
                for &j in missing {
                    self.raw_add(j, 1);
                }
            }
        }
    }

    /// Recomputes every peer's wanted-count (after a bulk change of what we want).
    pub(super) fn recount_all(&mut self) {
        let Picker {
            peers,
            live,
            wanted,
            ..
        } = self;
        for &k in live.iter() {
            let Some(p) = peers[k as usize].as_mut() else {
                continue;
            };
            p.wcount = match &p.has {
                Has::Sparse(list) => list.iter().filter(|&&i| wanted.get(i)).count() as u32,
                Has::Dense(b) => b.count_ones_and(wanted),
                Has::AllBut(missing) => missing.iter().filter(|&&j| wanted.get(j)).count() as u32,
            };
        }
    }
}
