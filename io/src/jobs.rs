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

use crate::budget::{Charge, Stage};
use crate::{ReadAhead, Storage, WriteBack};

/// A disk or hashing job for a worker thread.
pub enum PieceJob {
    /// Read a block we serve to a peer.
    Read {
        torrent: TorrentId,
        conn: ConnId,
        block: BlockRequest,
        storage: Arc<Storage>,
    },
    /// Read a chunk of a piece ahead of the blocks peers will ask for (see
    /// [`ReadAhead`]).
    ReadChunk {
        torrent: TorrentId,
        piece: PieceIndex,
        begin: u32,
        length: u32,
        storage: Arc<Storage>,
    },
    /// Write a downloaded block (one the write-back cache had no room for). Made by
    /// [`write_block`]; its bytes count in the disk budget until it is done.
    Write {
        torrent: TorrentId,
        block: BlockRequest,
        data: Bytes,
        storage: Arc<Storage>,
        cache: Arc<WriteBack>,
        charge: Charge,
    },
    /// Hash pieces (from the write-back cache where it holds all of one, several at once
    /// in [`lanes`](crate::lanes)) and write each that is good.
    Hash {
        torrent: TorrentId,
        /// Each piece with the digest it must have.
        pieces: Vec<(PieceIndex, [u8; 20])>,
        storage: Arc<Storage>,
        cache: Arc<WriteBack>,
    },
}

/// What a [`PieceJob`] came to.
pub enum PieceDone {
    /// The engine's answer, as it is.
    Input(Input),
    /// A chunk read for [`ReadAhead`]: the blocks that wait for it get
    /// their answers from [`PieceDone::into_inputs`].
    Chunk {
        torrent: TorrentId,
        piece: PieceIndex,
        begin: u32,
        result: Result<Bytes, IoError>,
    },
    /// What each piece of a [`PieceJob::Hash`] came to: whether it matched, or the
    /// storage failure (it could not be read back or written) that the engine hears of as
    /// [`Input::PieceUnreadable`] (no peer blamed).
    Hashed {
        torrent: TorrentId,
        pieces: Vec<(PieceIndex, Result<bool, IoError>)>,
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
            PieceJob::ReadChunk {
                torrent,
                piece,
                begin,
                length,
                storage,
            } => PieceDone::Chunk {
                torrent,
                piece,
                begin,
                result: storage
                    .read_block(piece, begin, length)
                    .map(Bytes::from)
                    .map_err(IoError::from),
            },
            PieceJob::Write {
                torrent,
                block,
                data,
                storage,
                cache,
                charge,
            } => {
                let result = storage
                    .write_block(block.piece, block.begin, &data)
                    .map_err(IoError::from);
                cache.slow_disk(data.len());
                // Released before the answer goes back, so the runtime that reads it
                // sees the budget as it now is.
                drop((data, charge));
                PieceDone::Input(Input::BlockWritten {
                    torrent,
                    block,
                    result,
                })
            }
            PieceJob::Hash {
                torrent,
                pieces,
                storage,
                cache,
            } => {
                let results = cache.hash_and_write(&storage, &pieces);
                PieceDone::Hashed {
                    torrent,
                    pieces: pieces
                        .iter()
                        .zip(results)
                        .map(|(&(piece, _), result)| (piece, result.map_err(IoError::from)))
                        .collect(),
                }
            }
        }
    }
}

/// What becomes of a downloaded block ([`write_block`]).
pub enum BlockPlan {
    /// Staged in the write-back cache: the engine is told at once that it is written.
    Staged(Input),
    /// No room in the cache: a worker writes it.
    Job(PieceJob),
}

/// Carries out the engine's `WriteBlock`: stages the block in `cache` (memory only, so a
/// runtime may do this on its event loop), or, past the cache's bound, makes the write job
/// for a worker, its bytes charged to the disk budget until the write is done.
pub fn write_block(
    torrent: TorrentId,
    block: BlockRequest,
    data: Bytes,
    storage: &Arc<Storage>,
    cache: &Arc<WriteBack>,
) -> BlockPlan {
    match cache.stage(block.piece, block.begin, data) {
        Ok(()) => BlockPlan::Staged(Input::BlockWritten {
            torrent,
            block,
            result: Ok(()),
        }),
        Err(data) => BlockPlan::Job(PieceJob::Write {
            torrent,
            block,
            charge: cache.budget().charge(Stage::Writing, data.len()),
            data,
            storage: storage.clone(),
            cache: cache.clone(),
        }),
    }
}

impl PieceDone {
    /// The inputs for the engine (a chunk read answers every block that waited for it in
    /// `read_ahead`).
    pub fn into_inputs(self, read_ahead: &mut ReadAhead) -> Vec<Input> {
        match self {
            PieceDone::Input(input) => vec![input],
            PieceDone::Chunk {
                torrent,
                piece,
                begin,
                result,
            } => read_ahead.chunk_read(torrent, piece, begin, result),
            PieceDone::Hashed { torrent, pieces } => pieces
                .into_iter()
                .map(|(piece, result)| match result {
                    Ok(ok) => Input::PieceHashed { torrent, piece, ok },
                    Err(error) => Input::PieceUnreadable {
                        torrent,
                        piece,
                        error,
                    },
                })
                .collect(),
        }
    }
}

/// The final renames a runtime has handed to workers, per torrent, and the engine's
/// "complete" held back until they are done: whoever is told a torrent is complete finds
/// every file under its final name, never a `.part`. Keyed by whatever the runtime names
/// torrents by.
#[derive(Debug)]
pub struct Renames<K> {
    /// Per torrent: renames not finished yet, and whether a "complete" waits for them.
    pending: std::collections::HashMap<K, (usize, bool)>,
}

impl<K> Default for Renames<K> {
    fn default() -> Self {
        Renames {
            pending: std::collections::HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy> Renames<K> {
    /// A rename of one of `torrent`'s files went to a worker.
    pub fn started(&mut self, torrent: K) {
        self.pending.entry(torrent).or_insert((0, false)).0 += 1;
    }

    /// The engine says `torrent` is complete: true if the caller may be told now, false if
    /// it is held until the renames under way end (see [`finished`](Self::finished)).
    pub fn completed(&mut self, torrent: K) -> bool {
        match self.pending.get_mut(&torrent) {
            Some(entry) => {
                entry.1 = true;
                false
            }
            None => true,
        }
    }

    /// A rename of `torrent`'s ended, `ok` or not: true when a held "complete" is due now.
    /// After a failed rename the held "complete" is dropped: the torrent is not complete
    /// on disk, and the storage error says why.
    pub fn finished(&mut self, torrent: K, ok: bool) -> bool {
        let Some(entry) = self.pending.get_mut(&torrent) else {
            return false;
        };
        if !ok {
            entry.1 = false;
        }
        entry.0 = entry.0.saturating_sub(1);
        if entry.0 > 0 {
            return false;
        }
        let held = entry.1;
        self.pending.remove(&torrent);
        held
    }

    /// Whether renames of `torrent`'s files are under way (its last verified files do not
    /// have their final names yet).
    pub fn pending(&self, torrent: K) -> bool {
        self.pending.get(&torrent).is_some_and(|e| e.0 > 0)
    }

    /// `torrent` is gone: nothing is held for it any more.
    pub fn forget(&mut self, torrent: K) {
        self.pending.remove(&torrent);
    }
}

#[cfg(test)]
mod tests {
    use super::Renames;

    #[test]
    fn complete_passes_at_once_when_no_rename_is_under_way() {
        let mut r = Renames::default();
        assert!(r.completed(1u32));
    }

    #[test]
    fn complete_waits_for_the_last_rename() {
        let mut r = Renames::default();
        r.started(1u32);
        r.started(1);
        r.started(2);
        assert!(!r.completed(1));
        assert!(r.pending(1) && r.pending(2) && !r.pending(3));
        assert!(!r.finished(2, true), "nothing was held for torrent 2");
        assert!(!r.pending(2));
        assert!(
            !r.finished(1, true),
            "one rename of torrent 1 is still under way"
        );
        assert!(r.pending(1));
        assert!(r.finished(1, true));
        assert!(!r.pending(1), "every file of torrent 1 has its final name");
        // Later files complete (and are renamed) without any "complete" held.
        r.started(1);
        assert!(!r.finished(1, true));
    }

    #[test]
    fn a_failed_rename_drops_the_held_complete() {
        let mut r = Renames::default();
        r.started(7u32);
        r.started(7);
        assert!(!r.completed(7));
        assert!(!r.finished(7, false));
        assert!(!r.finished(7, true));
        // A torrent forgotten holds nothing.
        r.started(8);
        assert!(!r.completed(8));
        r.forget(8);
        assert!(!r.finished(8, true));
    }
}
