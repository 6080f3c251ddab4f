//! Piece and block sizes: how many blocks a piece has, how long each is, and which block
//! a request names.

use crate::{BlockRequest, PieceIndex, BLOCK_SIZE};

use super::PickerError;

/// Piece and block sizes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    pub(super) pieces: u32,
    pub(super) piece_length: u32,
    pub(super) last_length: u32,
    pub(super) blocks_per_piece: u32,
    pub(super) last_blocks: u32,
}

impl Layout {
    pub(super) fn new(
        pieces: u32,
        piece_length: u32,
        total_length: u64,
    ) -> Result<Layout, PickerError> {
        if pieces == 0 || piece_length == 0 {
            return Err(PickerError::InvalidLayout);
        }
        let before_last = u64::from(pieces - 1) * u64::from(piece_length);
        if total_length <= before_last || total_length - before_last > u64::from(piece_length) {
            return Err(PickerError::InvalidLayout);
        }
        let last_length = (total_length - before_last) as u32;
        Ok(Layout {
            pieces,
            piece_length,
            last_length,
            blocks_per_piece: piece_length.div_ceil(BLOCK_SIZE),
            last_blocks: last_length.div_ceil(BLOCK_SIZE),
        })
    }

    #[inline]
    pub(super) fn blocks(&self, piece: u32) -> u32 {
        if piece + 1 == self.pieces {
            self.last_blocks
        } else {
            self.blocks_per_piece
        }
    }

    pub(super) fn piece_len(&self, piece: u32) -> u32 {
        if piece + 1 == self.pieces {
            self.last_length
        } else {
            self.piece_length
        }
    }

    #[inline]
    pub(super) fn block(&self, piece: u32, b: u32) -> BlockRequest {
        let begin = b * BLOCK_SIZE;
        BlockRequest {
            piece: PieceIndex(piece),
            begin,
            length: (self.piece_len(piece) - begin).min(BLOCK_SIZE),
        }
    }

    /// The piece and block number of `r`, if it is exactly one of the torrent's blocks.
    pub(super) fn locate(&self, r: BlockRequest) -> Result<(u32, usize), PickerError> {
        let piece = r.piece.0;
        let b = r.begin / BLOCK_SIZE;
        if piece >= self.pieces
            || b * BLOCK_SIZE != r.begin
            || b >= self.blocks(piece)
            || self.block(piece, b).length != r.length
        {
            return Err(PickerError::InvalidBlock(r));
        }
        Ok((piece, b as usize))
    }
}
