//! The piece picker: which block to request from which peer.
//!
//! # Policy
//!
//! For a peer, [`Picker::pick`] proposes blocks in this order:
//!
//! 1. free blocks of the pieces this peer is already downloading (a peer *sticks* to its
//!    pieces, so a piece usually comes from one peer: it completes sooner, and a hash
//!    failure points at one culprit);
//! 2. free blocks of abandoned partial pieces the peer has (no owner any more: the peer
//!    that started them left, was choked, or timed out) — *partial pieces are finished
//!    first*, so few pieces are half done at any time;
//! 3. new pieces, whole: High priority before Normal regardless of rarity, Skip never; within
//!    a priority class
//!    - *rarest first* by availability (the number of connected peers that have the piece,
//!      counted from bitfields, have-all and haves), ties broken at random;
//!    - or, until [`PickerConfig::random_first_pieces`] pieces are verified, *random*
//!      pieces (rare pieces are slow to get, and a new peer needs something to trade soon);
//!    - or, in *sequential* mode (streaming), lowest index first;
//! 4. free blocks of partial pieces other peers are downloading (the peer has nothing
//!    better to do);
//! 5. in *endgame* (entered by itself once every wanted block is requested or received),
//!    blocks already requested from another peer, up to
//!    [`PickerConfig::endgame_requests`] requests per block; when one copy arrives,
//!    [`Picker::block_received`] names the duplicates to cancel.
//!
//! `pick` only proposes; the caller sends the requests it wants and reports each with
//! [`Picker::mark_requested`], then [`Picker::block_received`] or [`Picker::abort_request`]
//! (timeout, choke, reject). Verified pieces (resume, or [`Picker::piece_verified`]) are
//! never picked again; a [`Picker::hash_failed`] piece goes back to missing.
//!
//! # Where things are
//!
//! This file holds the [`Picker`], its settings, its queries and the record of our own
//! pieces; the design of each part lies with its module: `layout` (piece and block
//! sizes), `order` (the bucketed order of new pieces, availability), `has` (each peer's
//! pieces and what joining and leaving cost), `partial` (pieces in progress and
//! requests), `select` (picking, and the walk that finds new pieces) and, for the tests,
//! `invariants`.
//!
//! # Costs (n pieces, k pieces of the peer, P peers)
//!
//! | operation | cost |
//! | --- | --- |
//! | `pick`, partial pieces (steps 1, 2, 4) | O(pieces the peer is downloading + partials with free blocks) |
//! | `pick`, new pieces (step 3) | O(pieces asked) expected, O(k) for a sparse peer; worst case an O(n/64) word scan |
//! | `pick`, endgame (step 5) | O(partials × blocks per piece) |
//! | `peer_have`, `peer_dont_have`, `peer_have_all` | O(1): a bit, or a binary search and a move within a list of ≤ 4096 (one O(n/64) change of form per peer) |
//! | `peer_bitfield` | O(n/64) word scan + O(min(k, n−k)) |
//! | `remove_peer` | O(min(k, n−k) + its requests); O(1) for a seed |
//! | `mark_requested`, `abort_request`, `block_received` | O(1) (+ the piece's blocks when it is dropped) |
//! | `piece_verified`, a priority change | O(P) (the peers' wanted-counts) |
//!
//! Remote-driven calls with a bad piece index or block return an error and change nothing;
//! no public method panics on its arguments.

mod has;
#[cfg(test)]
mod invariants;
mod layout;
mod order;
mod partial;
mod select;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;

use smallvec::SmallVec;

use crate::bitfield::Bitfield;
use crate::rng::Rng;
use crate::{BlockRequest, PeerKey, PieceIndex};

use has::{Has, Peer};
use layout::Layout;
use order::{Order, PieceState};
use partial::Partial;

const NONE: u32 = u32::MAX;

/// Peer keys must be below this (they index a table).
pub const MAX_PEER_KEY: u32 = 1 << 20;

/// A piece's download priority (file priorities map to the pieces of the file).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Priority {
    /// Never picked.
    Skip,
    #[default]
    /// Picked by rarity (the default).
    Normal,
    /// Picked before any Normal piece, whatever its rarity.
    High,
}

/// The index of a priority class in `Picker::order` / `fresh` / `cursor`: High first.
fn class_of(p: Priority) -> usize {
    match p {
        Priority::High => 0,
        Priority::Normal | Priority::Skip => 1,
    }
}

/// The picker's tunables.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PickerConfig {
    /// Seeds every random choice (tie-breaking, random first pieces).
    pub seed: u64,
    /// Pick new pieces at random until this many pieces are verified. Default 4.
    pub random_first_pieces: u32,
    /// In endgame, how many peers a block may be requested from at once. Default 2.
    pub endgame_requests: u32,
    /// Lowest index first instead of rarest first. Default off.
    pub sequential: bool,
}

impl Default for PickerConfig {
    fn default() -> Self {
        PickerConfig {
            seed: 0,
            random_first_pieces: 4,
            endgame_requests: 2,
            sequential: false,
        }
    }
}

/// What [`Picker::block_received`] tells the caller.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BlockReceived {
    /// Every block of the piece is now here: hash it, then call
    /// [`Picker::piece_verified`] or [`Picker::hash_failed`].
    pub piece_complete: bool,
    /// The block was already here (or the piece verified): drop the data.
    pub duplicate: bool,
    /// Endgame duplicates: send `cancel` for each of these other peers' requests.
    pub cancel: SmallVec<[(PeerKey, BlockRequest); 2]>,
}

/// Why the picker refused a call. Nothing changed when it returns one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PickerError {
    /// The piece count, piece length and total length don't describe a torrent.
    InvalidLayout,
    /// A piece index at or past the piece count.
    PieceOutOfRange(PieceIndex),
    /// A block that isn't one of the piece's 16 KiB blocks (offset, length or piece).
    InvalidBlock(BlockRequest),
    /// A range of pieces that isn't within the torrent.
    InvalidRange {
        /// The first piece of the range.
        start: u32,
        /// The piece after the last.
        end: u32,
    },
    /// A bitfield whose length isn't the piece count.
    BitfieldLength {
        /// The piece count.
        expected: u32,
        /// The bitfield's length.
        got: u32,
    },
    /// A peer key that was never added, or was removed.
    UnknownPeer(PeerKey),
    /// `add_peer` with a key in use.
    PeerExists(PeerKey),
    /// A peer key at or above [`MAX_PEER_KEY`].
    PeerKeyTooLarge(PeerKey),
    /// The piece is verified already.
    AlreadyHave(PieceIndex),
    /// The block is here already.
    AlreadyReceived(BlockRequest),
    /// This peer has this block requested already.
    AlreadyRequested(BlockRequest),
    /// This peer has no request for this block.
    NotRequested(BlockRequest),
}

impl fmt::Display for PickerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickerError::InvalidLayout => f.write_str("invalid piece layout"),
            PickerError::PieceOutOfRange(p) => write!(f, "piece {p} out of range"),
            PickerError::InvalidBlock(b) => write!(f, "invalid block {b:?}"),
            PickerError::InvalidRange { start, end } => {
                write!(f, "invalid piece range {start}..{end}")
            }
            PickerError::BitfieldLength { expected, got } => {
                write!(f, "bitfield of {got} pieces, expected {expected}")
            }
            PickerError::UnknownPeer(k) => write!(f, "unknown peer {}", k.0),
            PickerError::PeerExists(k) => write!(f, "peer {} already added", k.0),
            PickerError::PeerKeyTooLarge(k) => write!(f, "peer key {} too large", k.0),
            PickerError::AlreadyHave(p) => write!(f, "piece {p} already verified"),
            PickerError::AlreadyReceived(b) => write!(f, "block {b:?} already received"),
            PickerError::AlreadyRequested(b) => write!(f, "block {b:?} already requested"),
            PickerError::NotRequested(b) => write!(f, "block {b:?} not requested"),
        }
    }
}

impl std::error::Error for PickerError {}

/// Decides which block to request from which peer. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Picker {
    layout: Layout,
    config: PickerConfig,
    rng: Rng,

    /// Availability of piece `i` is `base + pieces[i].raw`.
    base: i32,
    pieces: Vec<PieceState>,
    have: Bitfield,
    have_count: u32,
    /// Not verified and not Skip.
    wanted: Bitfield,
    /// The order members of each class (High, Normal), as bits.
    fresh: [Bitfield; 2],
    order: [Order; 2],
    /// Sequential mode: no member of the class is below its cursor.
    cursor: [u32; 2],

    partials: Vec<Partial>,
    free_slots: Vec<u32>,
    partial_count: u32,
    /// Slots of partials that have a free block and a wanted piece.
    open: Vec<u32>,

    peers: Vec<Option<Peer>>,
    /// Keys of the live peers, for the O(peers) updates.
    live: Vec<u32>,

    /// Form thresholds (see `Has`); fields so tests can shrink them.
    sparse_cap: usize,
    allbut_cap: usize,
    walk_slack: u64,

    scratch: Vec<(u64, u32)>,
    collected: Vec<u32>,
}

impl Picker {
    /// A picker for `num_pieces` pieces of `piece_length` bytes (the last one holding what
    /// is left of `total_length`), nothing verified, no peers.
    pub fn new(
        num_pieces: u32,
        piece_length: u32,
        total_length: u64,
        config: PickerConfig,
    ) -> Result<Picker, PickerError> {
        let layout = Layout::new(num_pieces, piece_length, total_length)?;
        let n = num_pieces as usize;
        let mut rng = Rng::new(config.seed);
        let mut all: Vec<u32> = (0..num_pieces).collect();
        rng.shuffle(&mut all);
        let mut pieces = vec![
            PieceState {
                raw: 0,
                pos: 0,
                slot: NONE,
                prio: Priority::Normal,
            };
            n
        ];
        for (j, &i) in all.iter().enumerate() {
            pieces[i as usize].pos = j as u32;
        }
        let normal = Order {
            lo: 0,
            buckets: vec![all],
            len: num_pieces,
            spare: Vec::new(),
        };
        Ok(Picker {
            layout,
            config,
            rng,
            base: 0,
            pieces,
            have: Bitfield::new(num_pieces),
            have_count: 0,
            wanted: Bitfield::full(num_pieces),
            fresh: [Bitfield::new(num_pieces), Bitfield::full(num_pieces)],
            order: [Order::default(), normal],
            cursor: [0; 2],
            partials: Vec::new(),
            free_slots: Vec::new(),
            partial_count: 0,
            open: Vec::new(),
            peers: Vec::new(),
            live: Vec::new(),
            sparse_cap: (n / 64).clamp(32, 4096),
            allbut_cap: (n / 64).clamp(16, 4096),
            walk_slack: 64,
            scratch: Vec::new(),
            collected: Vec::new(),
        })
    }

    // ---------------------------------------------------------------- queries

    /// The number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.layout.pieces
    }

    /// The number of blocks of `piece` (0 for an index out of range).
    pub fn blocks_in_piece(&self, piece: PieceIndex) -> u32 {
        if piece.0 < self.layout.pieces {
            self.layout.blocks(piece.0)
        } else {
            0
        }
    }

    /// Block `b` of `piece`, if both exist.
    pub fn block(&self, piece: PieceIndex, b: u32) -> Option<BlockRequest> {
        (b < self.blocks_in_piece(piece)).then(|| self.layout.block(piece.0, b))
    }

    /// How many connected peers have `piece` (0 for an index out of range).
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        match self.pieces.get(piece.0 as usize) {
            Some(p) => (self.base + p.raw).max(0) as u32,
            None => 0,
        }
    }

    /// Whether `piece` is verified.
    pub fn have(&self, piece: PieceIndex) -> bool {
        self.have.get(piece.0)
    }

    /// The verified pieces.
    pub fn have_bitfield(&self) -> &Bitfield {
        &self.have
    }

    /// How many pieces are verified.
    pub fn have_count(&self) -> u32 {
        self.have_count
    }

    /// How many pieces are still wanted (neither verified nor Skip).
    pub fn wanted_count(&self) -> u32 {
        self.wanted.count_ones()
    }

    /// True when every wanted piece is verified.
    pub fn is_finished(&self) -> bool {
        self.wanted.is_empty()
    }

    /// The priority of `piece` (Skip for an index out of range).
    pub fn priority(&self, piece: PieceIndex) -> Priority {
        self.pieces
            .get(piece.0 as usize)
            .map_or(Priority::Skip, |p| p.prio)
    }

    /// True once every wanted block is requested or received (and something is in
    /// progress): from then on `pick` also proposes blocks requested from other peers.
    pub fn in_endgame(&self) -> bool {
        self.order[0].len == 0
            && self.order[1].len == 0
            && self.open.is_empty()
            && self.partial_count > 0
    }

    /// Whether the peer has a piece we want (not verified, not Skip). O(1).
    pub fn is_interesting(&self, peer: PeerKey) -> bool {
        match self.peer_ref(peer) {
            Some(p) => match p.has {
                Has::AllBut(_) => self.wanted.count_ones() > p.wcount,
                _ => p.wcount > 0,
            },
            None => false,
        }
    }

    /// Whether the peer has `piece` (false for unknown peers and bad indexes).
    pub fn peer_has(&self, peer: PeerKey, piece: PieceIndex) -> bool {
        piece.0 < self.layout.pieces && self.peer_ref(peer).is_some_and(|p| p.has.contains(piece.0))
    }

    /// The number of peers.
    pub fn peer_count(&self) -> usize {
        self.live.len()
    }

    fn peer_ref(&self, peer: PeerKey) -> Option<&Peer> {
        self.peers.get(peer.0 as usize)?.as_ref()
    }

    fn peer_index(&self, peer: PeerKey) -> Result<usize, PickerError> {
        match self.peers.get(peer.0 as usize) {
            Some(Some(_)) => Ok(peer.0 as usize),
            _ => Err(PickerError::UnknownPeer(peer)),
        }
    }

    fn check_piece(&self, piece: PieceIndex) -> Result<u32, PickerError> {
        if piece.0 < self.layout.pieces {
            Ok(piece.0)
        } else {
            Err(PickerError::PieceOutOfRange(piece))
        }
    }

    // ---------------------------------------------------------------- settings

    /// Lowest index first (streaming) instead of rarest first.
    pub fn set_sequential(&mut self, on: bool) {
        self.config.sequential = on;
    }

    /// Sets one piece's priority. O(peers) when it changes whether the piece is wanted.
    pub fn set_piece_priority(
        &mut self,
        piece: PieceIndex,
        priority: Priority,
    ) -> Result<(), PickerError> {
        let i = self.check_piece(piece)?;
        self.set_priority_inner(i, priority, true);
        Ok(())
    }

    /// Sets the priority of the pieces in `range` (a file's pieces). A long range recounts
    /// the peers' wanted pieces in one pass instead of piece by piece.
    pub fn set_priority_range(
        &mut self,
        range: Range<u32>,
        priority: Priority,
    ) -> Result<(), PickerError> {
        if range.start > range.end || range.end > self.layout.pieces {
            return Err(PickerError::InvalidRange {
                start: range.start,
                end: range.end,
            });
        }
        let bulk = range.len() > (self.layout.pieces as usize / 64).max(8);
        for i in range {
            self.set_priority_inner(i, priority, !bulk);
        }
        if bulk {
            self.recount_all();
        }
        Ok(())
    }

    fn set_priority_inner(&mut self, i: u32, priority: Priority, count_peers: bool) {
        let iu = i as usize;
        if self.pieces[iu].prio == priority {
            return;
        }
        if self.pieces[iu].pos != NONE {
            self.order_remove(i);
        }
        self.pieces[iu].prio = priority;
        self.refresh_wanted(i, count_peers);
        self.sync_order(i);
    }

    // ---------------------------------------------------------------- our pieces

    /// Resume: marks every piece set in `have` verified (added to what is verified already).
    pub fn set_have(&mut self, have: &Bitfield) -> Result<(), PickerError> {
        if have.len() != self.layout.pieces {
            return Err(PickerError::BitfieldLength {
                expected: self.layout.pieces,
                got: have.len(),
            });
        }
        for i in have.iter_ones() {
            self.verify(i, false);
        }
        self.recount_all();
        Ok(())
    }

    /// The piece passed its hash check: it is never picked again. O(peers).
    pub fn piece_verified(&mut self, piece: PieceIndex) -> Result<(), PickerError> {
        let i = self.check_piece(piece)?;
        self.verify(i, true);
        Ok(())
    }

    fn verify(&mut self, i: u32, count_peers: bool) {
        if !self.have.set(i) {
            return;
        }
        self.have_count += 1;
        self.refresh_wanted(i, count_peers);
        let s = self.pieces[i as usize].slot;
        if s != NONE {
            self.partial_destroy(s);
        }
    }

    /// The piece failed its hash check (or its data could not be stored): its received
    /// blocks are dropped and it is missing again. Requests still outstanding in it (only
    /// possible for a piece that wasn't complete) stay as they are. Returns the peers that
    /// delivered its blocks, for strike counting.
    pub fn hash_failed(
        &mut self,
        piece: PieceIndex,
    ) -> Result<SmallVec<[PeerKey; 4]>, PickerError> {
        let i = self.check_piece(piece)?;
        if self.have.get(i) {
            return Err(PickerError::AlreadyHave(piece));
        }
        let mut senders = SmallVec::new();
        let s = self.pieces[i as usize].slot;
        if s == NONE {
            return Ok(senders);
        }
        let part = &mut self.partials[s as usize];
        for b in &mut part.blocks {
            if b.from == NONE {
                continue;
            }
            if !senders.contains(&PeerKey(b.from)) {
                senders.push(PeerKey(b.from));
            }
            b.from = NONE;
            part.received -= 1;
            if b.requesters.is_empty() {
                part.free += 1;
            }
        }
        // Dropped (back to the order) unless requests are still out.
        self.settle(s);
        Ok(senders)
    }
}
