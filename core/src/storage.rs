//! Storage bookkeeping: where each piece's bytes live in the torrent's files, and which
//! pieces are verified. It computes; it never reads or writes a file (the runtime does,
//! from the [`FileSpan`]s this module hands out).
//!
//! A torrent's data is its files laid end to end, padding files included; pieces cut that
//! stream into `piece_length` chunks, the last one shorter. [`Layout`] maps between the two:
//!
//! - pieces to 16 KiB blocks ([`BLOCK_SIZE`], the last block of a piece shorter) and back,
//!   refusing any block a peer names that is not exactly one of them ([`Layout::block_index`]);
//! - a byte range of a piece to the file spans it covers ([`Layout::spans`]), found by binary
//!   search over the file offsets, so a lookup costs O(log files + spans) even in a torrent
//!   of 100,000 files. Zero-length files never appear in a span. Padding files (BEP 47) do,
//!   flagged, so the runtime writes nothing for them and reads zeros;
//! - pieces to the files they touch and files to the pieces that cover them.
//!
//! [`PieceStore`] owns a layout and the set of verified pieces, and says when a file becomes
//! complete. Its invariants:
//!
//! - for every file, `missing[file]` is the number of pieces covering it that are not yet
//!   verified, so a verified piece completes its files in O(files it touches), with no scan;
//! - a file is complete when that number is zero. Zero-length files are complete from the
//!   start (the runtime learns them from [`PieceStore::complete_files`]), and
//!   [`PieceStore::mark_verified`] reports every other file exactly once, when its last
//!   missing piece is verified. Padding files are never reported: they are not on disk;
//! - `bytes_verified` is the sum of the verified pieces' sizes (the short last piece counted
//!   at its real size, padding bytes included, as in `Info::total_length`).
//!
//! Nothing here panics on a piece, block or file index that is out of range: the answers are
//! empty, zero or `None`, because such indexes arrive from peers.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;

use smallvec::SmallVec;

use crate::bitfield::Bitfield;
use crate::metainfo::Info;
use crate::{BlockRequest, PieceIndex, BLOCK_SIZE};

/// The piece ↔ file geometry of one torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    piece_length: u32,
    piece_count: u32,
    total_length: u64,
    files: Vec<LayoutFile>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LayoutFile {
    offset: u64,
    length: u64,
    padding: bool,
}

impl LayoutFile {
    fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// A contiguous run of a piece's bytes inside one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// Index into `Info::files`.
    pub file: usize,
    /// Where the run starts within the file.
    pub file_offset: u64,
    /// Never zero.
    pub len: u32,
    /// A BEP 47 padding file: write nothing, read zeros.
    pub padding: bool,
}

/// An `Info` that no validated torrent has (only code can build one; `Metainfo::parse` and
/// `create` never do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// `piece_length` is 0.
    ZeroPieceLength,
    /// The file lengths add up past `u64::MAX`.
    LengthOverflow,
    /// A file's `offset` is not the sum of the lengths before it.
    BadOffset {
        /// The file's index.
        file: usize,
    },
    /// The hash list has `hashes` entries; the file lengths make `pieces` pieces.
    PieceCount {
        /// Entries in the hash list.
        hashes: usize,
        /// Pieces the file lengths make.
        pieces: u64,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::ZeroPieceLength => f.write_str("piece length is 0"),
            LayoutError::LengthOverflow => f.write_str("file lengths overflow"),
            LayoutError::BadOffset { file } => write!(f, "file {file} has a wrong offset"),
            LayoutError::PieceCount { hashes, pieces } => {
                write!(f, "{hashes} piece hashes for {pieces} pieces")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

impl Layout {
    /// The layout of a torrent. Every `Info` that `Metainfo::parse` or `create` produce is
    /// accepted; an error means a hand-built `Info` whose fields disagree with each other.
    pub fn new(info: &Info) -> Result<Layout, LayoutError> {
        if info.piece_length == 0 {
            return Err(LayoutError::ZeroPieceLength);
        }
        let mut files = Vec::with_capacity(info.files.len());
        let mut offset: u64 = 0;
        for (i, f) in info.files.iter().enumerate() {
            if f.offset != offset {
                return Err(LayoutError::BadOffset { file: i });
            }
            files.push(LayoutFile {
                offset,
                length: f.length,
                padding: f.attr.padding,
            });
            offset = offset
                .checked_add(f.length)
                .ok_or(LayoutError::LengthOverflow)?;
        }
        let pieces = offset.div_ceil(u64::from(info.piece_length));
        // The hash list bounds the piece count, and a Vec of 20-byte hashes cannot hold
        // 2^32 of them on any real machine; still, refuse rather than truncate.
        if pieces != info.pieces.len() as u64 || pieces > u64::from(u32::MAX) {
            return Err(LayoutError::PieceCount {
                hashes: info.pieces.len(),
                pieces,
            });
        }
        Ok(Layout {
            piece_length: info.piece_length,
            piece_count: pieces as u32,
            total_length: offset,
            files,
        })
    }

    /// How many pieces the torrent has.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// The nominal piece length (every piece but the last has exactly this size).
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Bytes covered by the pieces, padding included.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// The number of files, padding and zero-length files included (as in `Info::files`).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The byte offset of a piece in the torrent's data, if the piece exists.
    fn piece_start(&self, piece: PieceIndex) -> Option<u64> {
        (piece.0 < self.piece_count).then(|| u64::from(piece.0) * u64::from(self.piece_length))
    }

    /// The size of a piece: `piece_length`, less for the last piece; 0 for a piece that
    /// does not exist.
    pub fn piece_size(&self, piece: PieceIndex) -> u32 {
        match self.piece_start(piece) {
            Some(start) => (self.total_length - start).min(u64::from(self.piece_length)) as u32,
            None => 0,
        }
    }

    /// The number of blocks in a piece (0 for a piece that does not exist).
    pub fn blocks_in_piece(&self, piece: PieceIndex) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_SIZE)
    }

    /// Block `index` of `piece`, for `index < blocks_in_piece(piece)`. Past the end (the
    /// engine's mistake, never a peer's) the request has length 0 rather than panicking.
    pub fn block(&self, piece: PieceIndex, index: u32) -> BlockRequest {
        let begin = index.saturating_mul(BLOCK_SIZE);
        let length = self.piece_size(piece).saturating_sub(begin).min(BLOCK_SIZE);
        BlockRequest {
            piece,
            begin,
            length,
        }
    }

    /// The index of the block a peer's `request`, `cancel`, `reject` or `piece` names, or
    /// `None` unless it is exactly one of this torrent's blocks: an existing piece, `begin`
    /// a multiple of [`BLOCK_SIZE`] inside it, and `length` the size of that block.
    pub fn block_index(&self, block: &BlockRequest) -> Option<u32> {
        let size = self.piece_size(block.piece);
        let index = block.begin / BLOCK_SIZE;
        if index * BLOCK_SIZE != block.begin || block.begin >= size {
            return None;
        }
        let expected = (size - block.begin).min(BLOCK_SIZE);
        (block.length == expected).then_some(index)
    }

    /// The index of the first file whose bytes reach past `pos` (the file holding byte
    /// `pos`: zero-length files hold no byte and are passed over). `files.len()` if none.
    fn file_at(&self, pos: u64) -> usize {
        self.files.partition_point(|f| f.end() <= pos)
    }

    /// The file spans holding bytes `begin..begin + len` of `piece`, in order. The range is
    /// clipped to the piece: nothing for a piece that does not exist or a range past its end.
    pub fn spans(&self, piece: PieceIndex, begin: u32, len: u32) -> Spans<'_> {
        let (pos, end) = match self.piece_start(piece) {
            Some(start) => {
                let size = self.piece_size(piece);
                let from = begin.min(size);
                let to = begin.saturating_add(len).min(size);
                (start + u64::from(from), start + u64::from(to))
            }
            None => (0, 0),
        };
        Spans {
            files: &self.files,
            next: self.file_at(pos),
            pos,
            end,
        }
    }

    /// The files holding bytes of `piece`: the first and last of the range hold some of its
    /// bytes; zero-length files can only sit strictly inside it (they hold nothing). Empty
    /// for a piece that does not exist.
    pub fn files_of_piece(&self, piece: PieceIndex) -> Range<usize> {
        match self.piece_start(piece) {
            Some(start) => {
                let last_byte = start + u64::from(self.piece_size(piece)) - 1;
                self.file_at(start)..self.file_at(last_byte) + 1
            }
            None => 0..0,
        }
    }

    /// The pieces holding bytes of `file`. Empty for a zero-length file or one that does
    /// not exist.
    pub fn pieces_of_file(&self, file: usize) -> Range<u32> {
        match self.files.get(file) {
            Some(f) if f.length > 0 => {
                let plen = u64::from(self.piece_length);
                // Both fit in u32: the last byte lies in a piece below piece_count.
                let first = (f.offset / plen) as u32;
                let last = ((f.end() - 1) / plen) as u32;
                first..last + 1
            }
            _ => 0..0,
        }
    }

    /// Whether `file` is a BEP 47 padding file (`false` if it does not exist).
    pub fn is_padding(&self, file: usize) -> bool {
        self.files.get(file).is_some_and(|f| f.padding)
    }
}

/// The iterator of [`Layout::spans`].
#[derive(Clone, Debug)]
pub struct Spans<'a> {
    files: &'a [LayoutFile],
    /// The file holding byte `pos`, or one of the zero-length files just before it.
    next: usize,
    pos: u64,
    end: u64,
}

impl Iterator for Spans<'_> {
    type Item = FileSpan;

    fn next(&mut self) -> Option<FileSpan> {
        while self.pos < self.end {
            let file = self.next;
            let f = self.files.get(file)?;
            self.next += 1;
            if f.length == 0 {
                continue;
            }
            let to = f.end().min(self.end);
            let span = FileSpan {
                file,
                file_offset: self.pos - f.offset,
                // At most a piece's length, which is a u32.
                len: (to - self.pos) as u32,
                padding: f.padding,
            };
            self.pos = to;
            return Some(span);
        }
        None
    }
}

impl FusedIterator for Spans<'_> {}

/// A torrent's verified pieces and the completeness of its files.
#[derive(Clone, Debug)]
pub struct PieceStore {
    layout: Layout,
    verified: Bitfield,
    /// Per file: pieces covering it that are not verified yet.
    missing: Vec<u32>,
    bytes_verified: u64,
}

impl PieceStore {
    /// No piece verified yet.
    pub fn new(layout: Layout) -> PieceStore {
        let missing = (0..layout.files.len())
            .map(|f| layout.pieces_of_file(f).len() as u32)
            .collect();
        PieceStore {
            verified: Bitfield::new(layout.piece_count),
            layout,
            missing,
            bytes_verified: 0,
        }
    }

    /// Resumes with `verified` already checked (indexes out of range and repeats are
    /// ignored: a resume record is old data). Files already complete are then in
    /// [`complete_files`](Self::complete_files), not reported again by `mark_verified`.
    pub fn from_resume(
        layout: Layout,
        verified: impl IntoIterator<Item = PieceIndex>,
    ) -> PieceStore {
        let mut store = PieceStore::new(layout);
        for piece in verified {
            store.mark_verified(piece);
        }
        store
    }

    /// Where each piece and block lies.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Records a piece whose hash matched. Returns the files that this piece completed
    /// (every piece covering them now verified), padding files left out. Nothing for a
    /// piece already verified or one that does not exist.
    pub fn mark_verified(&mut self, piece: PieceIndex) -> SmallVec<[usize; 2]> {
        let mut completed = SmallVec::new();
        if !self.verified.set(piece.0) {
            return completed;
        }
        self.bytes_verified += u64::from(self.layout.piece_size(piece));
        for file in self.layout.files_of_piece(piece) {
            let f = &self.layout.files[file];
            if f.length == 0 {
                continue;
            }
            // Cannot underflow: each covering piece is counted once and set once.
            self.missing[file] -= 1;
            if self.missing[file] == 0 && !f.padding {
                completed.push(file);
            }
        }
        completed
    }

    /// Whether piece `piece` is verified.
    pub fn is_verified(&self, piece: PieceIndex) -> bool {
        self.verified.get(piece.0)
    }

    /// How many pieces are verified.
    pub fn verified_count(&self) -> u32 {
        self.verified.count_ones()
    }

    /// The verified pieces, as a bitfield (for our `bitfield` message and the picker).
    pub fn verified(&self) -> &Bitfield {
        &self.verified
    }

    /// Sum of the verified pieces' sizes; `total_length() - bytes_verified()` is what is left.
    pub fn bytes_verified(&self) -> u64 {
        self.bytes_verified
    }

    /// Every piece verified.
    pub fn is_complete(&self) -> bool {
        self.verified.is_full()
    }

    /// Whether every piece covering `file` is verified (always for a zero-length file;
    /// `false` for one that does not exist).
    pub fn is_file_complete(&self, file: usize) -> bool {
        self.missing.get(file) == Some(&0)
    }

    /// The non-padding files that are complete now: at the start, the zero-length files
    /// and, after a resume, those whose pieces were all verified. O(files).
    pub fn complete_files(&self) -> impl Iterator<Item = usize> + '_ {
        self.missing
            .iter()
            .enumerate()
            .filter(|&(f, &m)| m == 0 && !self.layout.files[f].padding)
            .map(|(f, _)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::{FileAttr, FileEntry};
    use quickcheck::{quickcheck, TestResult};

    /// An `Info` from (length, padding) pairs, as `Metainfo::parse` would build it.
    fn info(piece_length: u32, files: &[(u64, bool)]) -> Info {
        let mut offset = 0;
        let files: Vec<FileEntry> = files
            .iter()
            .enumerate()
            .map(|(i, &(length, padding))| {
                let f = FileEntry {
                    path: vec!["t".into(), format!("f{i}")],
                    length,
                    offset,
                    attr: FileAttr {
                        padding,
                        ..FileAttr::default()
                    },
                };
                offset += length;
                f
            })
            .collect();
        let pieces = offset.div_ceil(u64::from(piece_length)) as usize;
        Info {
            name: "t".into(),
            piece_length,
            pieces: vec![[0; 20]; pieces],
            private: false,
            multi_file: true,
            files,
            total_length: offset,
        }
    }

    fn layout(piece_length: u32, files: &[(u64, bool)]) -> Layout {
        Layout::new(&info(piece_length, files)).unwrap()
    }

    const K: u64 = 1024;

    /// 64 KiB pieces over: a 100,000-byte file, a 0-byte file, a 5,000-byte file (smaller
    /// than a piece), padding up to the next piece boundary, a 0-byte file, and a
    /// 70,000-byte file, so the last piece is short.
    fn sample() -> Layout {
        let pad = 3 * 64 * K - 105_000;
        layout(
            64 * 1024,
            &[
                (100_000, false),
                (0, false),
                (5_000, false),
                (pad, true),
                (0, false),
                (70_000, false),
            ],
        )
    }

    fn p(i: u32) -> PieceIndex {
        PieceIndex(i)
    }

    #[test]
    fn piece_and_block_geometry() {
        let l = sample();
        let total = 3 * 64 * K + 70_000;
        assert_eq!(l.total_length(), total);
        assert_eq!(l.piece_count(), 5);
        assert_eq!(l.piece_size(p(0)), 65536);
        assert_eq!(l.piece_size(p(4)), (total - 4 * 64 * K) as u32);
        assert_eq!(l.piece_size(p(5)), 0);
        assert_eq!(l.blocks_in_piece(p(0)), 4);
        // 4,464 bytes: one short block.
        assert_eq!(l.blocks_in_piece(p(4)), 1);
        assert_eq!(l.blocks_in_piece(p(99)), 0);
        assert_eq!(
            l.block(p(4), 0),
            BlockRequest {
                piece: p(4),
                begin: 0,
                length: 4464
            }
        );
        assert_eq!(l.block(p(1), 3).begin, 3 * BLOCK_SIZE);
        assert_eq!(l.block(p(1), 3).length, BLOCK_SIZE);
        assert_eq!(l.block(p(1), 4).length, 0);
        assert_eq!(l.block(p(1), u32::MAX).length, 0);
        assert_eq!(l.block(p(9), 0).length, 0);
    }

    #[test]
    fn block_index_accepts_exact_blocks_only() {
        let l = sample();
        for piece in 0..l.piece_count() {
            for i in 0..l.blocks_in_piece(p(piece)) {
                assert_eq!(l.block_index(&l.block(p(piece), i)), Some(i));
            }
        }
        let req = |piece, begin, length| BlockRequest {
            piece: p(piece),
            begin,
            length,
        };
        assert_eq!(l.block_index(&req(0, 1, BLOCK_SIZE)), None);
        assert_eq!(l.block_index(&req(0, 8192, 8192)), None);
        assert_eq!(l.block_index(&req(0, 0, BLOCK_SIZE - 1)), None);
        assert_eq!(l.block_index(&req(0, 0, BLOCK_SIZE + 1)), None);
        assert_eq!(l.block_index(&req(0, 0, 0)), None);
        assert_eq!(l.block_index(&req(0, 4 * BLOCK_SIZE, BLOCK_SIZE)), None);
        // The short last block must be asked for at its real size.
        assert_eq!(l.block_index(&req(4, 0, BLOCK_SIZE)), None);
        assert_eq!(l.block_index(&req(4, 0, 4464)), Some(0));
        assert_eq!(l.block_index(&req(5, 0, BLOCK_SIZE)), None);
        assert_eq!(l.block_index(&req(u32::MAX, u32::MAX, u32::MAX)), None);
        assert_eq!(
            l.block_index(&req(0, u32::MAX - u32::MAX % BLOCK_SIZE, 1)),
            None
        );
    }

    #[test]
    fn spans_cross_file_boundaries_exactly() {
        let l = sample();
        let span = |file, file_offset, len, padding| FileSpan {
            file,
            file_offset,
            len,
            padding,
        };
        // Piece 1 is bytes 65536..131072: the rest of file 0, all of file 2, padding.
        let s: Vec<_> = l.spans(p(1), 0, 65536).collect();
        assert_eq!(
            s,
            [
                span(0, 65536, 100_000 - 65536, false),
                span(2, 0, 5000, false),
                span(3, 0, (131_072 - 105_000) as u32, true),
            ]
        );
        // The block that holds the end of file 0 and the start of file 2, skipping file 1.
        let s: Vec<_> = l.spans(p(1), 2 * BLOCK_SIZE, BLOCK_SIZE).collect();
        assert_eq!(
            s,
            [
                span(0, 98304, 100_000 - 98304, false),
                span(2, 0, 5000, false),
                span(3, 0, (98304 + 16384 - 105_000) as u32, true),
            ]
        );
        // The last piece lies in file 5 alone; the zero-length file 4 before it never shows.
        let s: Vec<_> = l.spans(p(4), 0, 4464).collect();
        assert_eq!(s, [span(5, 70_000 - 4464, 4464, false)]);
        let s: Vec<_> = l.spans(p(3), 0, 65536).collect();
        assert_eq!(s, [span(5, 0, 65536, false)]);
        // Clipped to the piece; nothing outside it.
        assert_eq!(l.spans(p(4), 4000, 1000).map(|s| s.len).sum::<u32>(), 464);
        assert_eq!(l.spans(p(4), 5000, 1000).count(), 0);
        assert_eq!(l.spans(p(5), 0, 1000).count(), 0);
        assert_eq!(l.spans(p(0), u32::MAX, u32::MAX).count(), 0);
        assert_eq!(l.spans(p(0), 10, 0).count(), 0);
    }

    #[test]
    fn spans_of_every_block_sum_to_the_piece() {
        let l = sample();
        for piece in 0..l.piece_count() {
            let mut sum = 0;
            for b in 0..l.blocks_in_piece(p(piece)) {
                let block = l.block(p(piece), b);
                let len: u32 = l
                    .spans(p(piece), block.begin, block.length)
                    .map(|s| s.len)
                    .sum();
                assert_eq!(len, block.length);
                sum += len;
            }
            assert_eq!(sum, l.piece_size(p(piece)));
        }
    }

    #[test]
    fn files_and_pieces_map_both_ways() {
        let l = sample();
        assert_eq!(l.files_of_piece(p(0)), 0..1);
        assert_eq!(l.files_of_piece(p(1)), 0..4);
        assert_eq!(l.files_of_piece(p(2)), 3..4);
        // Piece 3 starts file 5: the zero-length file 4 before it is not part of the range.
        assert_eq!(l.files_of_piece(p(3)), 5..6);
        assert_eq!(l.files_of_piece(p(4)), 5..6);
        assert_eq!(l.files_of_piece(p(5)), 0..0);
        assert_eq!(l.pieces_of_file(0), 0..2);
        assert_eq!(l.pieces_of_file(1), 0..0);
        assert_eq!(l.pieces_of_file(2), 1..2);
        assert_eq!(l.pieces_of_file(3), 1..3);
        assert_eq!(l.pieces_of_file(4), 0..0);
        assert_eq!(l.pieces_of_file(5), 3..5);
        assert_eq!(l.pieces_of_file(6), 0..0);
        assert!(l.is_padding(3) && !l.is_padding(2) && !l.is_padding(99));
    }

    #[test]
    fn files_complete_when_their_last_piece_is_verified() {
        let l = sample();
        let mut s = PieceStore::new(l.clone());
        // The zero-length files are complete from the start; padding never is reported.
        assert_eq!(s.complete_files().collect::<Vec<_>>(), [1, 4]);
        assert!(s.mark_verified(p(4)).is_empty());
        assert!(s.mark_verified(p(0)).is_empty());
        assert!(!s.is_file_complete(0));
        // Piece 1 completes files 0 and 2; padding file 3 still needs piece 2.
        assert_eq!(s.mark_verified(p(1)).as_slice(), [0, 2]);
        assert!(s.is_file_complete(0) && s.is_file_complete(2));
        assert!(s.mark_verified(p(1)).is_empty(), "a repeat reports nothing");
        assert!(
            s.mark_verified(p(2)).is_empty(),
            "padding is never reported"
        );
        assert!(s.is_file_complete(3));
        assert!(!s.is_complete());
        assert_eq!(s.mark_verified(p(3)).as_slice(), [5]);
        assert!(s.is_complete());
        assert_eq!(s.verified_count(), 5);
        assert_eq!(s.bytes_verified(), l.total_length());
        assert!(s.mark_verified(p(5)).is_empty());
        assert!(s.mark_verified(p(u32::MAX)).is_empty());
        assert!(!s.is_verified(p(5)));
    }

    #[test]
    fn bytes_verified_counts_the_short_last_piece() {
        let mut s = PieceStore::new(sample());
        s.mark_verified(p(4));
        assert_eq!(s.bytes_verified(), 4464);
        s.mark_verified(p(0));
        assert_eq!(s.bytes_verified(), 4464 + 65536);
        assert_eq!(s.verified().iter_ones().collect::<Vec<_>>(), [0, 4]);
    }

    #[test]
    fn resume_restores_pieces_and_completed_files() {
        let s = PieceStore::from_resume(sample(), [p(0), p(1), p(1), p(77)]);
        assert_eq!(s.verified_count(), 2);
        assert!(s.is_verified(p(1)) && !s.is_verified(p(2)));
        assert_eq!(s.complete_files().collect::<Vec<_>>(), [0, 1, 2, 4]);
        assert_eq!(s.bytes_verified(), 2 * 65536);
    }

    #[test]
    fn inconsistent_infos_are_refused() {
        let mut i = info(16384, &[(100, false)]);
        i.piece_length = 0;
        assert_eq!(Layout::new(&i), Err(LayoutError::ZeroPieceLength));
        let mut i = info(16384, &[(100_000, false)]);
        i.pieces.pop();
        assert_eq!(
            Layout::new(&i),
            Err(LayoutError::PieceCount {
                hashes: 6,
                pieces: 7
            })
        );
        let mut i = info(16384, &[(100, false), (5, false)]);
        i.files[1].offset = 0;
        assert_eq!(Layout::new(&i), Err(LayoutError::BadOffset { file: 1 }));
        let mut j = info(16384, &[(100, false), (5, false)]);
        j.files[1].length = u64::MAX;
        assert_eq!(Layout::new(&j), Err(LayoutError::LengthOverflow));
    }

    #[test]
    fn a_torrent_of_one_small_file() {
        let l = layout(16384, &[(5, false)]);
        assert_eq!(l.piece_count(), 1);
        assert_eq!(l.block(p(0), 0).length, 5);
        assert_eq!(l.spans(p(0), 0, 5).count(), 1);
        let mut s = PieceStore::new(l);
        assert_eq!(s.mark_verified(p(0)).as_slice(), [0]);
    }

    /// Arbitrary torrents: up to 12 files of up to ~200 KiB, a tenth of them zero-length
    /// and some padding; piece lengths from 1 KiB, not always a multiple of a block.
    fn arbitrary_layout(sizes: &[(u32, bool)], plen: u32) -> Option<Layout> {
        let files: Vec<(u64, bool)> = sizes
            .iter()
            .take(12)
            .map(|&(s, pad)| {
                let len = if s % 10 == 0 {
                    0
                } else {
                    u64::from(s % 200_000)
                };
                (len, pad && s % 3 == 0)
            })
            .collect();
        let plen = 1024 + plen % (96 * 1024);
        Layout::new(&info(plen, &files)).ok()
    }

    quickcheck! {
        fn block_spans_tile_every_file_exactly_once(sizes: Vec<(u32, bool)>, plen: u32) -> TestResult {
            let Some(l) = arbitrary_layout(&sizes, plen) else {
                return TestResult::discard();
            };
            // Per file, the spans in the order they come; they must run 0..length without
            // gap or overlap, padding flagged as the file says.
            let mut next = vec![0u64; l.file_count()];
            let mut pieces_seen: Vec<Vec<u32>> = vec![Vec::new(); l.file_count()];
            for piece in 0..l.piece_count() {
                let mut piece_sum = 0;
                for b in 0..l.blocks_in_piece(p(piece)) {
                    let block = l.block(p(piece), b);
                    if l.block_index(&block) != Some(b) {
                        return TestResult::failed();
                    }
                    let mut block_sum = 0;
                    for s in l.spans(p(piece), block.begin, block.length) {
                        if s.len == 0
                            || s.file_offset != next[s.file]
                            || s.padding != l.is_padding(s.file)
                            || !l.files_of_piece(p(piece)).contains(&s.file)
                        {
                            return TestResult::failed();
                        }
                        next[s.file] += u64::from(s.len);
                        block_sum += s.len;
                        if pieces_seen[s.file].last() != Some(&piece) {
                            pieces_seen[s.file].push(piece);
                        }
                    }
                    if block_sum != block.length {
                        return TestResult::failed();
                    }
                    piece_sum += block_sum;
                }
                if piece_sum != l.piece_size(p(piece)) {
                    return TestResult::failed();
                }
            }
            let tiled = (0..l.file_count()).all(|f| {
                next[f] == l.files[f].length
                    && pieces_seen[f] == l.pieces_of_file(f).collect::<Vec<_>>()
            });
            TestResult::from_bool(tiled)
        }

        fn files_complete_exactly_when_all_their_pieces_are(
            sizes: Vec<(u32, bool)>,
            plen: u32,
            order: Vec<u32>
        ) -> TestResult {
            let Some(l) = arbitrary_layout(&sizes, plen) else {
                return TestResult::discard();
            };
            let n = l.piece_count();
            let mut s = PieceStore::new(l.clone());
            let mut reported: Vec<usize> = s.complete_files().collect();
            // Verify pieces in an arbitrary order, then the rest in index order.
            let pieces = order.iter().map(|&x| x % n.max(1)).chain(0..n);
            for piece in pieces {
                let done = s.mark_verified(p(piece));
                for &f in &done {
                    let all = l.pieces_of_file(f).all(|q| s.is_verified(p(q)));
                    if !all || l.pieces_of_file(f).all(|q| q != piece) {
                        return TestResult::failed();
                    }
                }
                reported.extend(done);
            }
            reported.sort_unstable();
            let expected: Vec<usize> = (0..l.file_count()).filter(|&f| !l.is_padding(f)).collect();
            TestResult::from_bool(
                reported == expected
                    && s.is_complete()
                    && s.bytes_verified() == l.total_length()
                    && s.verified_count() == n,
            )
        }
    }
}
