//! The piece IO both runtimes hand to worker threads, and what it comes to.
//!
//! The engine asks for block reads, block writes and piece hashes ([`Output`]s of
//! shoal-core); a runtime wraps each as a [`PieceJob`], runs it off its event loop with
//! [`PieceJob::run`], and feeds the [`PieceDone`] back. Written once here, so the mio and
//! the async runtimes do the same thing the same way.
//!
//! [`Output`]: shoal_core::engine::Output

use std::sync::Arc;

use bytes::Bytes;
use shoal_core::engine::{ConnId, Input, TorrentId};
use shoal_core::{BlockRequest, IoError, PieceIndex};

use crate::{Storage, WriteBack};

/// A disk or hashing job for a worker thread.
pub enum PieceJob {
    /// Read a block we serve to a peer.
    Read {
        torrent: TorrentId,
        conn: ConnId,
        block: BlockRequest,
        storage: Arc<Storage>,
    },
    /// Write a downloaded block (one the write-back cache had no room for).
    Write {
        torrent: TorrentId,
        block: BlockRequest,
        data: Bytes,
        storage: Arc<Storage>,
    },
    /// Hash a piece (from the write-back cache if it holds all of it) and write it if good.
    Hash {
        torrent: TorrentId,
        piece: PieceIndex,
        expected: [u8; 20],
        storage: Arc<Storage>,
        cache: Arc<WriteBack>,
    },
}

/// What a [`PieceJob`] came to.
pub enum PieceDone {
    /// The engine's answer, as it is.
    Input(Input),
    /// A piece could not be read back or written: a storage failure to report (the piece
    /// counts as failed, so it is fetched again; see [`PieceDone::into_input`]).
    HashError {
        torrent: TorrentId,
        piece: PieceIndex,
        error: IoError,
    },
}

impl PieceJob {
    /// Does the job (blocking).
    pub fn run(self) -> PieceDone {
        match self {
            PieceJob::Read {
                torrent,
                conn,
                block,
                storage,
            } => PieceDone::Input(Input::BlockRead {
                torrent,
                conn,
                block,
                result: storage
                    .read_block(block.piece, block.begin, block.length)
                    .map(Bytes::from)
                    .map_err(IoError::from),
            }),
            PieceJob::Write {
                torrent,
                block,
                data,
                storage,
            } => PieceDone::Input(Input::BlockWritten {
                torrent,
                block,
                result: storage
                    .write_block(block.piece, block.begin, &data)
                    .map_err(IoError::from),
            }),
            PieceJob::Hash {
                torrent,
                piece,
                expected,
                storage,
                cache,
            } => match cache.hash_and_write(&storage, piece, &expected) {
                Ok(ok) => PieceDone::Input(Input::PieceHashed { torrent, piece, ok }),
                Err(e) => PieceDone::HashError {
                    torrent,
                    piece,
                    error: IoError::from(e),
                },
            },
        }
    }
}

impl PieceDone {
    /// The input for the engine, and a storage error for the user if there was one.
    pub fn into_input(self) -> (Input, Option<(TorrentId, IoError)>) {
        match self {
            PieceDone::Input(input) => (input, None),
            PieceDone::HashError {
                torrent,
                piece,
                error,
            } => (
                Input::PieceHashed {
                    torrent,
                    piece,
                    ok: false,
                },
                Some((torrent, error)),
            ),
        }
    }
}
