//! Write-back of downloaded blocks: keep a piece's blocks in memory until it is hashed.
//!
//! Written naively, every downloaded byte crosses the disk path three times: written block
//! by block, then read back whole to be hashed. [`WriteBack`] holds the blocks of pieces
//! in progress (as the `Bytes` they arrived in: no copy), hashes complete pieces from
//! memory (several at once, in [`lanes`]), and writes each only if its hash
//! matches, so a verified piece costs one write and a corrupt one costs nothing on disk.
//! Staging is only memory work, so a runtime can do it on its event loop and report the
//! block written at once.
//!
//! Memory is bounded: the caches of all torrents of a runtime share one [`DiskBudget`],
//! whose `write_back` limit they never pass together. Past it a block is refused and the
//! caller writes it to disk itself; a piece whose blocks are not all in memory is hashed
//! from disk after its staged blocks are written. Either way the hash decides what counts
//! as verified, so nothing unverified is ever trusted. Staged bytes stay charged to the
//! budget until their piece is hashed (and written, or found corrupt) or the torrent's run
//! ends ([`WriteBack::discard_all`], or the cache dropped).
//!
//! A piece is never dropped alone: the engine counts a staged block as written, so a piece
//! whose download pauses (its file set to skip, its peers gone) keeps its blocks here until
//! it completes, however long that takes. They cannot grow memory: everything staged, old
//! or new, stays within the budget's limit, and past it new blocks go to disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use shoal_core::PieceIndex;

use crate::budget::DiskBudget;
use crate::lanes;
use crate::storage::Storage;
use crate::Error;

/// Blocks of one torrent's pieces not yet hashed, bounded in bytes by a shared budget.
#[derive(Debug)]
pub struct WriteBack {
    budget: Arc<DiskBudget>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Per piece, its blocks by offset.
    pieces: BTreeMap<u32, BTreeMap<u32, Bytes>>,
    bytes: usize,
}

impl WriteBack {
    /// Holds blocks within `budget`'s write-back limit, shared with every other cache of
    /// that budget.
    pub fn new(budget: Arc<DiskBudget>) -> WriteBack {
        WriteBack {
            budget,
            state: Mutex::new(State::default()),
        }
    }

    /// The budget this cache counts its blocks in.
    pub fn budget(&self) -> &Arc<DiskBudget> {
        &self.budget
    }

    /// Keeps a block in memory until its piece is hashed. Gives the block back when that
    /// would pass the budget's write-back limit: the caller writes it to disk instead.
    pub fn stage(&self, piece: PieceIndex, begin: u32, data: Bytes) -> Result<(), Bytes> {
        let Ok(mut state) = self.state.lock() else {
            return Err(data);
        };
        if !self.budget.try_stage(data.len()) {
            return Err(data);
        }
        state.bytes += data.len();
        let old = state.pieces.entry(piece.0).or_default().insert(begin, data);
        if let Some(old) = old {
            state.bytes -= old.len();
            self.budget.unstage(old.len());
        }
        Ok(())
    }

    /// Bytes held now.
    pub fn staged_bytes(&self) -> usize {
        self.state.lock().map_or(0, |s| s.bytes)
    }

    /// Decides whether each piece matches its digest, and makes each that does
    /// durable-in-waiting (written to its files). The pieces whose blocks are all staged
    /// are hashed from memory, together ([`lanes`]); for any other, the staged blocks are
    /// written and the piece is hashed from disk. One answer per piece, in their order.
    pub fn hash_and_write(
        &self,
        storage: &Storage,
        pieces: &[(PieceIndex, [u8; 20])],
    ) -> Vec<Result<bool, Error>> {
        let taken: Vec<BTreeMap<u32, Bytes>> = match self.state.lock() {
            Ok(mut state) => pieces
                .iter()
                .map(|(piece, _)| {
                    let blocks = state.pieces.remove(&piece.0).unwrap_or_default();
                    state.bytes -= blocks.values().map(Bytes::len).sum::<usize>();
                    blocks
                })
                .collect(),
            Err(_) => pieces.iter().map(|_| BTreeMap::new()).collect(),
        };
        // Each piece's blocks stay charged until they are on disk (or found corrupt):
        // memory is held until then.
        let held: Vec<Unstage> = taken
            .iter()
            .map(|blocks| Unstage {
                budget: &self.budget,
                bytes: blocks.values().map(Bytes::len).sum(),
            })
            .collect();
        let whole: Vec<bool> = pieces
            .iter()
            .zip(&taken)
            .map(|((piece, _), blocks)| {
                let mut at = 0usize;
                blocks.iter().all(|(&begin, data)| {
                    let contiguous = begin as usize == at;
                    at += data.len();
                    contiguous
                }) && at == storage.layout().piece_size(*piece) as usize
            })
            .collect();
        let digests = {
            let parts: Vec<Vec<&[u8]>> = taken
                .iter()
                .zip(&whole)
                .filter(|(_, whole)| **whole)
                .map(|(blocks, _)| blocks.values().map(Bytes::as_ref).collect())
                .collect();
            let messages: Vec<&[&[u8]]> = parts.iter().map(Vec::as_slice).collect();
            lanes::digests(&messages)
        };
        let mut digests = digests.into_iter();
        pieces
            .iter()
            .zip(taken)
            .zip(whole)
            .zip(held)
            .map(|((((piece, expected), blocks), whole), _held)| {
                if whole {
                    if digests.next().as_ref() != Some(expected) {
                        return Ok(false);
                    }
                    let size = blocks.values().map(Bytes::len).sum();
                    let blocks: Vec<(u32, Bytes)> = blocks.into_iter().collect();
                    storage.write_blocks(*piece, &blocks)?;
                    self.slow_disk(size);
                    return Ok(true);
                }
                for (&begin, data) in &blocks {
                    storage.write_block(*piece, begin, data)?;
                    self.slow_disk(data.len());
                }
                Ok(&storage.hash_piece(*piece)? == expected)
            })
            .collect()
    }

    /// Tests and benchmarks: a write of `bytes` takes as long as the budget's simulated
    /// slow disk says (see [`DiskLimits::slow_disk`](crate::DiskLimits::slow_disk)).
    pub fn slow_disk(&self, bytes: usize) {
        if let Some(t) = self.budget.limits().write_time(bytes) {
            std::thread::sleep(t);
        }
    }
}

impl WriteBack {
    /// Forgets every staged block (the torrent's run ended): their bytes leave the budget
    /// now, even while jobs in flight still hold this cache.
    pub fn discard_all(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.pieces.clear();
            self.budget.unstage(std::mem::take(&mut state.bytes));
        }
    }
}

impl Drop for WriteBack {
    /// The torrent (or its run) is gone: what it still held leaves the budget.
    fn drop(&mut self) {
        let bytes = self.state.get_mut().map_or(0, |s| s.bytes);
        self.budget.unstage(bytes);
    }
}

/// Releases staged bytes from the budget when dropped (on every path out).
struct Unstage<'a> {
    budget: &'a DiskBudget,
    bytes: usize,
}

impl Drop for Unstage<'_> {
    fn drop(&mut self) {
        self.budget.unstage(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::DiskLimits;
    use shoal_core::create::TorrentBuilder;
    use shoal_core::metainfo::Metainfo;
    use std::sync::Arc;

    fn setup(dir: &std::path::Path) -> (Arc<Metainfo>, Vec<u8>, Storage) {
        setup_len(dir, 100_000)
    }

    fn setup_len(dir: &std::path::Path, len: u32) -> (Arc<Metainfo>, Vec<u8>, Storage) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut b = TorrentBuilder::single_file("f.bin", data.len() as u64);
        b.piece_length(32 * 1024);
        let mut h = b.start().unwrap();
        h.update(&data);
        let meta = Arc::new(Metainfo::parse(&h.finish().unwrap()).unwrap());
        let storage = Storage::open(dir, meta.clone()).unwrap();
        (meta, data, storage)
    }

    fn budget(write_back: usize) -> Arc<DiskBudget> {
        DiskBudget::new(DiskLimits {
            high: 4 << 20,
            low: 4 << 20,
            write_back,
            slow_disk: None,
        })
    }

    #[test]
    fn caches_of_one_budget_share_its_bound_and_give_it_back_when_dropped() {
        let b = budget(30_000);
        let (one, two) = (WriteBack::new(b.clone()), WriteBack::new(b.clone()));
        one.stage(PieceIndex(0), 0, Bytes::from(vec![0; 20_000]))
            .unwrap();
        assert!(two
            .stage(PieceIndex(0), 0, Bytes::from(vec![0; 20_000]))
            .is_err());
        two.stage(PieceIndex(0), 0, Bytes::from(vec![0; 10_000]))
            .unwrap();
        assert_eq!(b.stats().staged, 30_000);
        drop(one);
        assert_eq!(b.stats().staged, 10_000);
        two.discard_all();
        assert_eq!(b.stats().staged, 0);
    }

    fn blocks(data: &[u8], piece: u32) -> Vec<(u32, Bytes)> {
        let start = piece as usize * 32768;
        let end = (start + 32768).min(data.len());
        data[start..end]
            .chunks(16384)
            .enumerate()
            .map(|(i, c)| (i as u32 * 16384, Bytes::copy_from_slice(c)))
            .collect()
    }

    #[test]
    fn a_whole_piece_is_hashed_from_memory_and_written_only_if_good() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, data, storage) = setup(dir.path());
        let wb = WriteBack::new(budget(1 << 20));
        for piece in 0..meta.info.piece_count() {
            for (begin, b) in blocks(&data, piece).into_iter().rev() {
                wb.stage(PieceIndex(piece), begin, b).unwrap();
            }
        }
        // A corrupt piece 1: not written.
        wb.stage(PieceIndex(1), 0, Bytes::from(vec![0u8; 16384]))
            .unwrap();
        for piece in 0..meta.info.piece_count() {
            let expected = meta.info.pieces[piece as usize];
            let ok = wb.hash_and_write(&storage, &[(PieceIndex(piece), expected)]);
            assert_eq!(ok.len(), 1);
            assert_eq!(ok[0].as_ref().ok(), Some(&(piece != 1)), "piece {piece}");
        }
        assert_eq!(wb.staged_bytes(), 0);
        assert_eq!(
            wb.budget().stats().staged,
            0,
            "every staged byte is released"
        );
        let on_disk = storage.read_block(PieceIndex(1), 0, 16384).unwrap();
        assert_eq!(
            on_disk,
            vec![0u8; 16384],
            "a corrupt piece never reaches the disk"
        );
        let on_disk = storage.read_block(PieceIndex(2), 0, 16384).unwrap();
        assert_eq!(on_disk, &data[65536..65536 + 16384]);
    }

    #[test]
    fn past_the_limit_blocks_are_refused_and_the_piece_is_hashed_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, data, storage) = setup(dir.path());
        let wb = WriteBack::new(budget(16384));
        let mut bs = blocks(&data, 0).into_iter();
        let (b0, d0) = bs.next().unwrap();
        let (b1, d1) = bs.next().unwrap();
        wb.stage(PieceIndex(0), b0, d0).unwrap();
        let refused = wb.stage(PieceIndex(0), b1, d1).unwrap_err();
        storage.write_block(PieceIndex(0), b1, &refused).unwrap();
        let expected = meta.info.pieces[0];
        assert!(matches!(
            wb.hash_and_write(&storage, &[(PieceIndex(0), expected)])[..],
            [Ok(true)]
        ));
        assert_eq!(
            storage.read_block(PieceIndex(0), 0, 32768).unwrap(),
            &data[..32768]
        );
        assert_eq!(wb.staged_bytes(), 0);
    }

    #[test]
    fn a_batch_answers_each_piece_in_order_whole_corrupt_short_or_partly_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        // Eight pieces of 32 KiB and a short ninth.
        let (meta, data, storage) = setup_len(dir.path(), 8 * 32768 + 5000);
        let wb = WriteBack::new(budget(1 << 20));
        for piece in 0..9 {
            for (begin, b) in blocks(&data, piece) {
                if piece == 2 && begin > 0 {
                    // Piece 2's second block went to disk (the cache had no room).
                    storage.write_block(PieceIndex(2), begin, &b).unwrap();
                } else {
                    wb.stage(PieceIndex(piece), begin, b).unwrap();
                }
            }
        }
        wb.stage(PieceIndex(5), 16384, Bytes::from(vec![1u8; 16384]))
            .unwrap();
        let pieces: Vec<(PieceIndex, [u8; 20])> = (0..9)
            .map(|p| (PieceIndex(p), meta.info.pieces[p as usize]))
            .collect();
        let answers: Vec<bool> = wb
            .hash_and_write(&storage, &pieces)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            answers,
            [true, true, true, true, true, false, true, true, true],
            "piece 5 is corrupt"
        );
        assert_eq!(wb.budget().stats().staged, 0);
        for piece in [0, 2, 7, 8] {
            let start = piece as usize * 32768;
            let len = (data.len() - start).min(32768);
            assert_eq!(
                storage
                    .read_block(PieceIndex(piece), 0, len as u32)
                    .unwrap(),
                &data[start..start + len],
                "piece {piece}"
            );
        }
        assert_eq!(
            storage.read_block(PieceIndex(5), 16384, 16384).unwrap(),
            vec![0u8; 16384],
            "the corrupt piece is not written"
        );
    }
}
