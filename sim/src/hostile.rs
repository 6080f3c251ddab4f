//! Hostile nodes' own doings, beyond what a group's flags change in the simulator's
//! handling of an honest engine's outputs (`free_rider` withholds blocks, `corrupt`
//! serves flipped data):
//!
//! - a **flooder** adds requests for random blocks to every connection it has, once a
//!   second, written between two of its engine's drains (so always on a message
//!   boundary of the stream);
//! - a **Sybil** group is one host: one address for all, a port each, so a tracker's
//!   per-host limit and an engine's per-host bans see them for what they are.
//!
//! A node that lies in its bitfield is a `seed` that is a `free_rider`: it claims every
//! piece and delivers none.

use bytes::{Bytes, BytesMut};
use shoal_core::engine::ConnId;
use shoal_core::rng::Rng;
use shoal_core::wire::Message;
use shoal_core::{BlockRequest, PieceIndex, BLOCK_SIZE};

/// Requests a flooder adds to each of its connections, once a second.
pub const FLOOD_REQUESTS: usize = 64;

/// What a flooding node keeps: the connections it may flood (their handshakes are done),
/// and when it floods next.
#[derive(Debug, Default)]
pub(crate) struct Flood {
    pub(crate) conns: Vec<ConnId>,
    pub(crate) next: u64,
}

impl Flood {
    pub(crate) fn connected(&mut self, conn: ConnId) {
        if !self.conns.contains(&conn) {
            self.conns.push(conn);
        }
    }

    pub(crate) fn closed(&mut self, conn: ConnId) {
        self.conns.retain(|&c| c != conn);
    }
}

/// [`FLOOD_REQUESTS`] requests for random whole blocks of the pieces before the last
/// (whose blocks all have the full size), encoded back to back.
pub(crate) fn flood_requests(rng: &mut Rng, piece_count: u32, piece_length: u64) -> Bytes {
    let pieces = u64::from(piece_count.saturating_sub(1).max(1));
    let blocks = (piece_length / u64::from(BLOCK_SIZE)).max(1);
    let mut out = BytesMut::with_capacity(FLOOD_REQUESTS * 17);
    for _ in 0..FLOOD_REQUESTS {
        Message::Request(BlockRequest {
            piece: PieceIndex(rng.below_u64(pieces) as u32),
            begin: rng.below_u64(blocks) as u32 * BLOCK_SIZE,
            length: BLOCK_SIZE,
        })
        .encode(&mut out);
    }
    out.freeze()
}
