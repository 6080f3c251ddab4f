//! Read-ahead for serving peers: one disk read per chunk of a piece, not one per block.
//!
//! The engine asks for the blocks it serves one at a time (16 KiB each); a peer downloading
//! a piece asks for all of them, in order, within milliseconds. Reading each on a worker
//! costs a job, a `pread` and a wake-up of the event loop per block. [`ReadAhead`] turns
//! the first block read of a chunk (an aligned [`CHUNK`] of a piece) into one worker read of
//! the whole chunk, keeps the chunk in memory, and answers that block and every later one
//! of the chunk from it: on the event loop, at once, as slices of the chunk (no copy).
//! Blocks asked for while their chunk is being read wait for it.
//!
//! It lives on a runtime's event loop (`&mut self`, no locks), one per runtime, shared by
//! all torrents. Invariants:
//!
//! - Memory is bounded: at most [`ReadAhead::new`]'s limit of chunks is kept (oldest
//!   dropped first; a chunk still being sent lives on in its slices until sent), plus the
//!   chunks being read, at most [`MAX_PENDING`] of them.
//! - Only data the engine serves is read, so only verified pieces, whose bytes never
//!   change while the torrent runs: a kept chunk is never stale. A torrent removed is
//!   [`forget`](ReadAhead::forget)-ten (its engine id is never reused anyway).
//! - A block that does not lie within one chunk, or one asked for when too many chunks are
//!   being read already, is read alone, as before.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use shoal_core::engine::{ConnId, Input, TorrentId};
use shoal_core::{BlockRequest, IoError, PieceIndex};

use crate::jobs::PieceJob;
use crate::Storage;

/// The unit read ahead: aligned within its piece (the last one of a piece may be shorter).
pub const CHUNK: u32 = 256 * 1024;
/// Chunk reads under way at once, at most; past it blocks are read one by one.
pub const MAX_PENDING: usize = 64;

/// A chunk: its torrent, piece, and offset in the piece.
type Key = (TorrentId, u32, u32);

/// What to do with the engine's `ReadBlock`.
pub enum ReadPlan {
    /// Answered from memory: hand this input to the engine now.
    Ready(Input),
    /// Its chunk is being read; the answer comes with [`ReadAhead::chunk_read`].
    Waiting,
    /// A job for a worker (a chunk read, or the block alone).
    Job(PieceJob),
}

/// Chunks read for serving, and the blocks waiting for chunks; see the module docs.
#[derive(Debug)]
pub struct ReadAhead {
    limit: usize,
    chunks: BTreeMap<Key, Bytes>,
    /// Kept chunks, oldest first (keys may be stale after `forget`).
    order: VecDeque<Key>,
    bytes: usize,
    /// Chunks being read, and the blocks waiting for each.
    pending: BTreeMap<Key, Vec<(ConnId, BlockRequest)>>,
}

impl ReadAhead {
    /// Keeps at most `limit` bytes of chunks.
    pub fn new(limit: usize) -> ReadAhead {
        ReadAhead {
            limit,
            chunks: BTreeMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            pending: BTreeMap::new(),
        }
    }

    /// Bytes of chunks kept now.
    pub fn kept_bytes(&self) -> usize {
        self.bytes
    }

    /// Carries out the engine's `ReadBlock` of `block` for `conn`.
    pub fn read_block(
        &mut self,
        torrent: TorrentId,
        conn: ConnId,
        block: BlockRequest,
        storage: &Arc<Storage>,
    ) -> ReadPlan {
        let start = block.begin - block.begin % CHUNK;
        let piece_size = storage.layout().piece_size(block.piece);
        let end = start.saturating_add(CHUNK).min(piece_size);
        let within = block.length > 0
            && block
                .begin
                .checked_add(block.length)
                .is_some_and(|e| e <= end);
        let key = (torrent, block.piece.0, start);
        if within {
            if let Some(chunk) = self.chunks.get(&key) {
                let at = (block.begin - start) as usize;
                return ReadPlan::Ready(Input::BlockRead {
                    torrent,
                    conn,
                    block,
                    result: Ok(chunk.slice(at..at + block.length as usize)),
                });
            }
            if let Some(waiting) = self.pending.get_mut(&key) {
                waiting.push((conn, block));
                return ReadPlan::Waiting;
            }
            if self.pending.len() < MAX_PENDING && end - start > block.length {
                self.pending.insert(key, vec![(conn, block)]);
                return ReadPlan::Job(PieceJob::ReadChunk {
                    torrent,
                    piece: block.piece,
                    begin: start,
                    length: end - start,
                    storage: storage.clone(),
                });
            }
        }
        ReadPlan::Job(PieceJob::Read {
            torrent,
            conn,
            block,
            storage: storage.clone(),
        })
    }

    /// A chunk read ended: keeps the chunk (if it was read) and answers the blocks that
    /// waited for it, in the order they were asked for.
    pub fn chunk_read(
        &mut self,
        torrent: TorrentId,
        piece: PieceIndex,
        begin: u32,
        result: Result<Bytes, IoError>,
    ) -> Vec<Input> {
        let key = (torrent, piece.0, begin);
        let waiting = self.pending.remove(&key).unwrap_or_default();
        let inputs = waiting
            .into_iter()
            .map(|(conn, block)| {
                let at = (block.begin - begin) as usize;
                let result = match &result {
                    Ok(chunk) if at + block.length as usize <= chunk.len() => {
                        Ok(chunk.slice(at..at + block.length as usize))
                    }
                    Ok(_) => Err(IoError::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "short read".to_string(),
                    )),
                    Err(e) => Err(e.clone()),
                };
                Input::BlockRead {
                    torrent,
                    conn,
                    block,
                    result,
                }
            })
            .collect();
        if let Ok(chunk) = result {
            self.keep(key, chunk);
        }
        inputs
    }

    /// Drops what is kept of `torrent` (it was removed).
    pub fn forget(&mut self, torrent: TorrentId) {
        let gone: Vec<Key> = self
            .chunks
            .range((torrent, 0, 0)..=(torrent, u32::MAX, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            if let Some(chunk) = self.chunks.remove(&key) {
                self.bytes -= chunk.len();
            }
        }
        self.pending.retain(|&(t, _, _), _| t != torrent);
        self.order.retain(|&(t, _, _)| t != torrent);
    }

    fn keep(&mut self, key: Key, chunk: Bytes) {
        if chunk.len() > self.limit {
            return;
        }
        self.bytes += chunk.len();
        if let Some(old) = self.chunks.insert(key, chunk) {
            self.bytes -= old.len();
        } else {
            self.order.push_back(key);
        }
        while self.bytes > self.limit {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(chunk) = self.chunks.remove(&oldest) {
                self.bytes -= chunk.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::PieceDone;
    use shoal_core::create::TorrentBuilder;
    use shoal_core::metainfo::Metainfo;

    const PIECE: u32 = 512 * 1024;

    /// A seed's storage of 1.25 MiB of numbered bytes, 512 KiB pieces (two chunks each).
    fn seed(dir: &std::path::Path) -> (Vec<u8>, Arc<Storage>) {
        let data: Vec<u8> = (0..1_310_720u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut b = TorrentBuilder::single_file("f.bin", data.len() as u64);
        b.piece_length(PIECE);
        let mut h = b.start().unwrap();
        h.update(&data);
        let meta = Arc::new(Metainfo::parse(&h.finish().unwrap()).unwrap());
        std::fs::write(dir.join("f.bin"), &data).unwrap();
        let storage = Storage::inspect_read_only(&dir.join("f.bin"), meta).unwrap();
        (data, Arc::new(storage))
    }

    fn conn() -> ConnId {
        // Any id: the read-ahead only carries it back.
        let mut engine = shoal_core::engine::Engine::new(Default::default());
        engine
            .accept("127.0.0.1:1".parse().unwrap(), std::time::Instant::now())
            .unwrap()
    }

    fn block(piece: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            piece: PieceIndex(piece),
            begin,
            length,
        }
    }

    /// The bytes of an answer, checked against the file.
    fn answer(input: &Input, data: &[u8]) -> BlockRequest {
        let Input::BlockRead { block, result, .. } = input else {
            panic!("not a block read: {input:?}");
        };
        let at = (block.piece.0 * PIECE + block.begin) as usize;
        assert_eq!(
            result.as_ref().unwrap()[..],
            data[at..at + block.length as usize]
        );
        *block
    }

    #[test]
    fn one_read_per_chunk_answers_every_block_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let (data, storage) = seed(dir.path());
        let mut ra = ReadAhead::new(1 << 20);
        let (t, c) = (TorrentId(0), conn());
        let ReadPlan::Job(job) = ra.read_block(t, c, block(1, 16384, 16384), &storage) else {
            panic!("the first block of a chunk reads the chunk");
        };
        assert!(matches!(job, PieceJob::ReadChunk { begin: 0, length, .. } if length == CHUNK));
        assert!(matches!(
            ra.read_block(t, c, block(1, 0, 16384), &storage),
            ReadPlan::Waiting
        ));
        let inputs = job.run().into_inputs(&mut ra);
        let answered: Vec<BlockRequest> = inputs.iter().map(|i| answer(i, &data)).collect();
        assert_eq!(answered, [block(1, 16384, 16384), block(1, 0, 16384)]);
        // Later blocks of the chunk: from memory, at once.
        let ReadPlan::Ready(input) = ra.read_block(t, c, block(1, CHUNK - 100, 100), &storage)
        else {
            panic!("a block of a kept chunk is answered at once");
        };
        answer(&input, &data);
        assert_eq!(ra.kept_bytes(), CHUNK as usize);
        // The last piece is shorter (256 KiB): its chunk ends with it.
        let ReadPlan::Job(job) = ra.read_block(t, c, block(2, 0, 16384), &storage) else {
            panic!("a new chunk");
        };
        assert!(matches!(job, PieceJob::ReadChunk { length, .. } if length == 262_144));
        let inputs = job.run().into_inputs(&mut ra);
        answer(&inputs[0], &data);
    }

    #[test]
    fn blocks_across_chunks_are_read_alone_and_memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (data, storage) = seed(dir.path());
        let mut ra = ReadAhead::new(CHUNK as usize);
        let (t, c) = (TorrentId(0), conn());
        let across = block(0, CHUNK - 10, 20);
        let ReadPlan::Job(job) = ra.read_block(t, c, across, &storage) else {
            panic!("a job");
        };
        assert!(matches!(job, PieceJob::Read { .. }));
        let PieceDone::Input(input) = job.run() else {
            panic!("a block read");
        };
        answer(&input, &data);
        for piece in 0..2 {
            let ReadPlan::Job(job) = ra.read_block(t, c, block(piece, 0, 16384), &storage) else {
                panic!("a chunk read");
            };
            job.run().into_inputs(&mut ra);
            assert!(ra.kept_bytes() <= CHUNK as usize);
        }
        // Piece 0's chunk made room for piece 1's.
        assert!(matches!(
            ra.read_block(t, c, block(0, 0, 16384), &storage),
            ReadPlan::Job(_)
        ));
        assert!(matches!(
            ra.read_block(t, c, block(1, 16384, 16384), &storage),
            ReadPlan::Ready(_)
        ));
        ra.forget(t);
        assert_eq!(ra.kept_bytes(), 0);
    }
}
