//! Pieces in progress: their blocks, who requested and who delivered each, and the
//! requests a caller reports.
//!
//! *Blocks* are tracked only for pieces in progress, in a slab of partial pieces found
//! from the piece in O(1): per block its requesters and who delivered it; per partial the
//! owner (the sticky peer) and a link per peer that owns it or has requests in it, each
//! link knowing its place in that peer's list of pieces, so removing a peer or a request
//! is O(links), never a scan of all partials. Partials with free blocks are also in an
//! `open` list for steps 2 and 4.

use smallvec::SmallVec;

use crate::{BlockRequest, PeerKey};

use super::{BlockReceived, Picker, PickerError, NONE};

/// One block of a partial piece.
#[derive(Clone, Debug)]
pub(super) struct Block {
    /// Peers with an outstanding request for it (more than one only in endgame).
    pub(super) requesters: SmallVec<[u32; 2]>,
    /// The peer that delivered it, or NONE.
    pub(super) from: u32,
}

impl Block {
    pub(super) fn new() -> Block {
        Block {
            requesters: SmallVec::new(),
            from: NONE,
        }
    }
}

/// A peer's tie to a partial piece: it owns the piece or has requests in it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    pub(super) peer: u32,
    pub(super) outstanding: u32,
    /// The position of this piece in the peer's `links` list.
    pub(super) idx: u32,
}

/// A piece in progress.
#[derive(Clone, Debug)]
pub(super) struct Partial {
    /// NONE while the slot is free.
    pub(super) piece: u32,
    pub(super) blocks: Vec<Block>,
    pub(super) free: u32,
    pub(super) received: u32,
    /// The peer this piece sticks to, or NONE when abandoned.
    pub(super) owner: u32,
    /// Position in `Picker::open`, or NONE.
    pub(super) open_pos: u32,
    pub(super) links: SmallVec<[Link; 2]>,
}

impl Picker {
    fn partial_create(&mut self, i: u32) -> u32 {
        let nb = self.layout.blocks(i) as usize;
        let s = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.partials.push(Partial {
                    piece: NONE,
                    blocks: Vec::new(),
                    free: 0,
                    received: 0,
                    owner: NONE,
                    open_pos: NONE,
                    links: SmallVec::new(),
                });
                self.partials.len() as u32 - 1
            }
        };
        let part = &mut self.partials[s as usize];
        part.piece = i;
        part.blocks.clear();
        part.blocks.resize_with(nb, Block::new);
        part.free = nb as u32;
        part.received = 0;
        part.owner = NONE;
        part.open_pos = NONE;
        part.links.clear();
        self.pieces[i as usize].slot = s;
        self.partial_count += 1;
        if self.pieces[i as usize].pos != NONE {
            self.order_remove(i);
        }
        s
    }

    /// Drops a partial: its links go, and its piece returns to the order if still wanted.
    pub(super) fn partial_destroy(&mut self, s: u32) {
        let su = s as usize;
        let i = self.partials[su].piece;
        let links = std::mem::take(&mut self.partials[su].links);
        for l in &links {
            self.unlist_link(l.peer, l.idx);
        }
        self.open_remove(s);
        let part = &mut self.partials[su];
        part.piece = NONE;
        part.owner = NONE;
        part.blocks.clear();
        part.links = links;
        part.links.clear();
        self.pieces[i as usize].slot = NONE;
        self.partial_count -= 1;
        self.free_slots.push(s);
        self.sync_order(i);
    }

    /// After blocks were freed: drops a partial that has nothing requested or received,
    /// otherwise updates its place in the open list.
    pub(super) fn settle(&mut self, s: u32) {
        let part = &self.partials[s as usize];
        if part.free as usize == part.blocks.len() {
            self.partial_destroy(s);
        } else {
            self.sync_open(s);
        }
    }

    pub(super) fn sync_open(&mut self, s: u32) {
        let part = &self.partials[s as usize];
        let belongs = part.free > 0 && self.wanted.get(part.piece);
        if belongs && part.open_pos == NONE {
            self.partials[s as usize].open_pos = self.open.len() as u32;
            self.open.push(s);
        } else if !belongs {
            self.open_remove(s);
        }
    }

    fn open_remove(&mut self, s: u32) {
        let at = self.partials[s as usize].open_pos;
        if at == NONE {
            return;
        }
        self.open.swap_remove(at as usize);
        if let Some(&moved) = self.open.get(at as usize) {
            self.partials[moved as usize].open_pos = at;
        }
        self.partials[s as usize].open_pos = NONE;
    }

    /// Removes entry `idx` from peer `k`'s list of linked pieces, fixing the link of the
    /// piece moved into its place.
    fn unlist_link(&mut self, k: u32, idx: u32) {
        let Some(p) = self.peers.get_mut(k as usize).and_then(Option::as_mut) else {
            return;
        };
        p.links.swap_remove(idx as usize);
        if let Some(&moved) = p.links.get(idx as usize) {
            let ms = self.pieces[moved as usize].slot;
            if ms != NONE {
                for l in &mut self.partials[ms as usize].links {
                    if l.peer == k {
                        l.idx = idx;
                    }
                }
            }
        }
    }

    /// The index in partial `s`'s links of peer `k`'s link, created if needed.
    fn link(&mut self, s: u32, k: u32) -> usize {
        let part = &self.partials[s as usize];
        if let Some(j) = part.links.iter().position(|l| l.peer == k) {
            return j;
        }
        let piece = part.piece;
        let Some(p) = self.peers[k as usize].as_mut() else {
            return usize::MAX;
        };
        let idx = p.links.len() as u32;
        p.links.push(piece);
        let part = &mut self.partials[s as usize];
        part.links.push(Link {
            peer: k,
            outstanding: 0,
            idx,
        });
        part.links.len() - 1
    }

    /// One request of peer `k` in partial `s` is over; drops the link if it was the last
    /// and `k` doesn't own the piece.
    fn unlink_request(&mut self, s: u32, k: u32) {
        let part = &mut self.partials[s as usize];
        let Some(j) = part.links.iter().position(|l| l.peer == k) else {
            return;
        };
        let l = &mut part.links[j];
        l.outstanding = l.outstanding.saturating_sub(1);
        if l.outstanding == 0 && part.owner != k {
            let l = part.links.swap_remove(j);
            self.unlist_link(k, l.idx);
        }
    }

    /// Records that `block` was requested from `peer`. The first peer to request a block of
    /// a piece with no owner becomes its owner.
    pub fn mark_requested(
        &mut self,
        peer: PeerKey,
        block: BlockRequest,
    ) -> Result<(), PickerError> {
        let k = self.peer_index(peer)? as u32;
        let (i, b) = self.layout.locate(block)?;
        if self.have.get(i) {
            return Err(PickerError::AlreadyHave(block.piece));
        }
        let s = match self.pieces[i as usize].slot {
            NONE => self.partial_create(i),
            s => {
                let blk = &self.partials[s as usize].blocks[b];
                if blk.from != NONE {
                    return Err(PickerError::AlreadyReceived(block));
                }
                if blk.requesters.contains(&k) {
                    return Err(PickerError::AlreadyRequested(block));
                }
                s
            }
        };
        let part = &mut self.partials[s as usize];
        let blk = &mut part.blocks[b];
        if blk.requesters.is_empty() {
            part.free -= 1;
        }
        blk.requesters.push(k);
        if part.owner == NONE {
            part.owner = k;
        }
        let j = self.link(s, k);
        if let Some(l) = self.partials[s as usize].links.get_mut(j) {
            l.outstanding += 1;
        }
        self.sync_open(s);
        Ok(())
    }

    /// A request of `peer` is over without the block (timeout, choke, reject, cancel): the
    /// block is free again, and the peer no longer owns the piece. Ok (nothing to do) if
    /// the piece is verified meanwhile.
    pub fn abort_request(&mut self, peer: PeerKey, block: BlockRequest) -> Result<(), PickerError> {
        let k = self.peer_index(peer)? as u32;
        let (i, b) = self.layout.locate(block)?;
        if self.have.get(i) {
            // Requests in a piece are dropped when it is verified: nothing left to undo.
            return Ok(());
        }
        let s = self.pieces[i as usize].slot;
        if s == NONE {
            return Err(PickerError::NotRequested(block));
        }
        let part = &mut self.partials[s as usize];
        let blk = &mut part.blocks[b];
        let Some(at) = blk.requesters.iter().position(|&q| q == k) else {
            return Err(PickerError::NotRequested(block));
        };
        blk.requesters.swap_remove(at);
        if blk.requesters.is_empty() && blk.from == NONE {
            part.free += 1;
        }
        if part.owner == k {
            part.owner = NONE;
        }
        self.unlink_request(s, k);
        self.settle(s);
        Ok(())
    }

    /// A block arrived from `peer` (requested or not). Says whether the piece is now
    /// complete and which other requests for the same block to cancel (endgame).
    pub fn block_received(
        &mut self,
        peer: PeerKey,
        block: BlockRequest,
    ) -> Result<BlockReceived, PickerError> {
        let k = self.peer_index(peer)? as u32;
        let (i, b) = self.layout.locate(block)?;
        let mut out = BlockReceived::default();
        if self.have.get(i) {
            out.duplicate = true;
            return Ok(out);
        }
        let s = match self.pieces[i as usize].slot {
            NONE => self.partial_create(i),
            s => s,
        };
        let part = &mut self.partials[s as usize];
        let blk = &mut part.blocks[b];
        let requesters = std::mem::take(&mut blk.requesters);
        if blk.from != NONE {
            out.duplicate = true;
        } else {
            if requesters.is_empty() {
                part.free -= 1;
            }
            blk.from = k;
            part.received += 1;
            out.piece_complete = part.received as usize == part.blocks.len();
        }
        for &q in &requesters {
            if q != k {
                out.cancel.push((PeerKey(q), block));
            }
            self.unlink_request(s, q);
        }
        self.sync_open(s);
        Ok(out)
    }
}
