//! Making new `.torrent` files.
//!
//! The core does no IO, so creation is split the sans-IO way: a [`TorrentBuilder`] is told
//! the layout (names and lengths of the files, trackers, options), then [`PieceHasher`] is
//! fed the files' bytes in order, in chunks of any size, by whoever reads the files, and
//! [`PieceHasher::finish`] returns the bencoded torrent. The hasher never holds more than
//! one piece of data.
//!
//! Unless told, the piece length is chosen by [`auto_piece_length`]: the smallest power of
//! two from 16 KiB to 16 MiB that keeps the torrent at or under 2,000 pieces, which lands
//! between 1,000 and 2,000 pieces for anything between 16 MiB and 32 GiB.
//!
//! Output is canonical bencode written by `bendy` (keys sorted), so the torrent parses back
//! with [`crate::metainfo::Metainfo::parse`] and every client computes the same info-hash.

use std::fmt;

use bendy::encoding::{Encoder, SingleItemEncoder};
use sha1::{Digest, Sha1};

use crate::metainfo::{check_component, MetainfoError, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH};

/// Smallest piece length [`auto_piece_length`] picks.
pub const AUTO_MIN_PIECE_LENGTH: u32 = 16 * 1024;
/// Largest piece length [`auto_piece_length`] picks.
pub const AUTO_MAX_PIECE_LENGTH: u32 = 16 * 1024 * 1024;
/// [`auto_piece_length`] keeps the piece count at or under this.
pub const AUTO_TARGET_PIECES: u64 = 2000;

/// The piece length for `total_length` bytes when the user names none.
pub fn auto_piece_length(total_length: u64) -> u32 {
    let mut len = AUTO_MIN_PIECE_LENGTH;
    while len < AUTO_MAX_PIECE_LENGTH && total_length.div_ceil(u64::from(len)) > AUTO_TARGET_PIECES
    {
        len *= 2;
    }
    len
}

/// Why a torrent could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateError {
    /// A name or path that a parsed torrent would refuse (see [`crate::metainfo`]).
    Metainfo(MetainfoError),
    /// A piece length outside what parsing accepts.
    PieceLength(u32),
    /// No files, or only empty ones.
    Empty,
    /// The bytes fed differ from the declared lengths.
    LengthMismatch {
        /// The files' total length as declared.
        declared: u64,
        /// Bytes fed.
        fed: u64,
    },
    /// A multi-file torrent given a file with no path.
    EmptyPath,
    /// [`PieceHasher::hashed_piece`] given something other than the next whole piece.
    NotAPiece {
        /// Where in the data it would have started.
        at: u64,
        /// Its length.
        len: u32,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::Metainfo(e) => e.fmt(f),
            CreateError::PieceLength(n) => write!(
                f,
                "piece length {n} is outside {MIN_PIECE_LENGTH}..={MAX_PIECE_LENGTH} bytes"
            ),
            CreateError::Empty => f.write_str("nothing to share: every file is empty"),
            CreateError::LengthMismatch { declared, fed } => write!(
                f,
                "the files changed while being read: expected {declared} bytes, got {fed}"
            ),
            CreateError::EmptyPath => f.write_str("a file has an empty path"),
            CreateError::NotAPiece { at, len } => write!(
                f,
                "{len} bytes at {at} are not the next whole piece of the torrent"
            ),
        }
    }
}

impl std::error::Error for CreateError {}

impl From<MetainfoError> for CreateError {
    fn from(e: MetainfoError) -> Self {
        CreateError::Metainfo(e)
    }
}

#[derive(Clone, Debug)]
struct FileSpec {
    /// Components below the torrent's folder (empty for a single-file torrent).
    path: Vec<String>,
    length: u64,
}

/// Describes a torrent to be made. See the module docs.
#[derive(Clone, Debug)]
pub struct TorrentBuilder {
    name: String,
    single: bool,
    files: Vec<FileSpec>,
    piece_length: Option<u32>,
    trackers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    private: bool,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
}

impl TorrentBuilder {
    /// A torrent of one file called `name`.
    pub fn single_file(name: impl Into<String>, length: u64) -> Self {
        let mut b = Self::new(name.into(), true);
        b.files.push(FileSpec {
            path: Vec::new(),
            length,
        });
        b
    }

    /// A torrent of a folder called `name`; add its files with [`TorrentBuilder::add_file`]
    /// in the order their bytes will be fed.
    pub fn multi_file(name: impl Into<String>) -> Self {
        Self::new(name.into(), false)
    }

    fn new(name: String, single: bool) -> Self {
        TorrentBuilder {
            name,
            single,
            files: Vec::new(),
            piece_length: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
        }
    }

    /// Adds a file of a multi-file torrent, by its path components below the folder.
    pub fn add_file(&mut self, path: Vec<String>, length: u64) -> &mut Self {
        self.files.push(FileSpec { path, length });
        self
    }

    /// Sets the piece length, within what parsing accepts; unless set, it is
    /// [`auto_piece_length`] of the total size.
    pub fn piece_length(&mut self, len: u32) -> &mut Self {
        self.piece_length = Some(len);
        self
    }

    /// Adds a tracker as a tier of its own (BEP 12: tried in order).
    pub fn tracker(&mut self, url: impl Into<String>) -> &mut Self {
        self.trackers.push(vec![url.into()]);
        self
    }

    /// Adds a web seed (BEP 19).
    pub fn web_seed(&mut self, url: impl Into<String>) -> &mut Self {
        self.web_seeds.push(url.into());
        self
    }

    /// Marks the torrent private (BEP 27): peers from its trackers only.
    pub fn private(&mut self, private: bool) -> &mut Self {
        self.private = private;
        self
    }

    /// Sets the `comment`.
    pub fn comment(&mut self, comment: impl Into<String>) -> &mut Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets `created by`.
    pub fn created_by(&mut self, created_by: impl Into<String>) -> &mut Self {
        self.created_by = Some(created_by.into());
        self
    }

    /// `creation date`, seconds since the Unix epoch (the core reads no clock: pass it in).
    pub fn creation_date(&mut self, secs: i64) -> &mut Self {
        self.creation_date = Some(secs);
        self
    }

    /// The sum of the declared file lengths.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }

    /// Checks the layout and starts hashing.
    pub fn start(self) -> Result<PieceHasher, CreateError> {
        check_component(&self.name, "info.name", &self.name)?;
        for f in &self.files {
            if !self.single && f.path.is_empty() {
                return Err(CreateError::EmptyPath);
            }
            let display = f.path.join("/");
            for c in &f.path {
                check_component(c, "info.files.path", &display)?;
            }
        }
        let total = self.total_length();
        if total == 0 {
            return Err(CreateError::Empty);
        }
        let piece_length = self
            .piece_length
            .unwrap_or_else(|| auto_piece_length(total));
        if !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length) {
            return Err(CreateError::PieceLength(piece_length));
        }
        Ok(PieceHasher {
            pieces: Vec::with_capacity(total.div_ceil(u64::from(piece_length)) as usize * 20),
            current: Sha1::new(),
            in_current: 0,
            fed: 0,
            total,
            piece_length,
            builder: self,
        })
    }
}

/// Hashes a torrent's data as it is fed; see the module docs.
pub struct PieceHasher {
    builder: TorrentBuilder,
    piece_length: u32,
    pieces: Vec<u8>,
    current: Sha1,
    in_current: u32,
    fed: u64,
    total: u64,
}

impl PieceHasher {
    /// The piece length it hashes by.
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Bytes fed so far.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// Bytes to feed in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Feeds the next bytes of the files' concatenated data.
    pub fn update(&mut self, mut data: &[u8]) {
        self.fed += data.len() as u64;
        while !data.is_empty() {
            let room = (self.piece_length - self.in_current) as usize;
            let take = room.min(data.len());
            self.current.update(&data[..take]);
            self.in_current += take as u32;
            data = &data[take..];
            if self.in_current == self.piece_length {
                self.close_piece();
            }
        }
    }

    /// Feeds the next whole piece by its digest, for a caller that hashes pieces itself
    /// (several at once, or on other threads): `len` bytes, the piece length or, for the
    /// last piece, what remains. Only where a piece starts (any bytes fed with
    /// [`PieceHasher::update`] since make a whole piece), else [`CreateError::NotAPiece`].
    pub fn hashed_piece(&mut self, len: u32, digest: [u8; 20]) -> Result<(), CreateError> {
        let whole = len == self.piece_length
            || (len > 0 && len < self.piece_length && self.fed + u64::from(len) == self.total);
        if self.in_current != 0 || !whole || self.fed + u64::from(len) > self.total {
            return Err(CreateError::NotAPiece { at: self.fed, len });
        }
        self.fed += u64::from(len);
        self.pieces.extend_from_slice(&digest);
        Ok(())
    }

    fn close_piece(&mut self) {
        let digest = std::mem::replace(&mut self.current, Sha1::new()).finalize();
        self.pieces.extend_from_slice(&digest);
        self.in_current = 0;
    }

    /// Ends the data and returns the bencoded `.torrent`.
    pub fn finish(mut self) -> Result<Vec<u8>, CreateError> {
        if self.fed != self.total {
            return Err(CreateError::LengthMismatch {
                declared: self.total,
                fed: self.fed,
            });
        }
        if self.in_current > 0 {
            self.close_piece();
        }
        Ok(self.encode())
    }

    fn encode(&self) -> Vec<u8> {
        let b = &self.builder;
        let mut encoder = Encoder::new().with_max_depth(6);
        // Every key is written in sorted order, as bendy's sorted dict encoder requires.
        encoder
            .emit_dict(|mut d| {
                if let Some(first) = b.trackers.first() {
                    d.emit_pair(b"announce", first[0].as_str())?;
                }
                if b.trackers.len() > 1 {
                    d.emit_pair_with(b"announce-list", |e| {
                        e.emit_list(|e| {
                            for tier in &b.trackers {
                                e.emit_list(|e| {
                                    for url in tier {
                                        e.emit_str(url)?;
                                    }
                                    Ok(())
                                })?;
                            }
                            Ok(())
                        })
                    })?;
                }
                if let Some(c) = &b.comment {
                    d.emit_pair(b"comment", c.as_str())?;
                }
                if let Some(c) = &b.created_by {
                    d.emit_pair(b"created by", c.as_str())?;
                }
                if let Some(t) = b.creation_date {
                    d.emit_pair(b"creation date", t)?;
                }
                d.emit_pair_with(b"info", |e| self.encode_info(e))?;
                if !b.web_seeds.is_empty() {
                    d.emit_pair_with(b"url-list", |e| {
                        e.emit_list(|e| {
                            for url in &b.web_seeds {
                                e.emit_str(url)?;
                            }
                            Ok(())
                        })
                    })?;
                }
                Ok(())
            })
            .and_then(|()| encoder.get_output())
            // The structure above is fixed, sorted and within depth: it cannot fail.
            .expect("torrent encoding is well-formed by construction")
    }

    fn encode_info(&self, e: SingleItemEncoder) -> Result<(), bendy::encoding::Error> {
        let b = &self.builder;
        e.emit_dict(|mut d| {
            if b.single {
                d.emit_pair(b"length", self.total)?;
            } else {
                d.emit_pair_with(b"files", |e| {
                    e.emit_list(|e| {
                        for f in &b.files {
                            e.emit_dict(|mut d| {
                                d.emit_pair(b"length", f.length)?;
                                d.emit_pair_with(b"path", |e| {
                                    e.emit_list(|e| {
                                        for c in &f.path {
                                            e.emit_str(c)?;
                                        }
                                        Ok(())
                                    })
                                })
                            })?;
                        }
                        Ok(())
                    })
                })?;
            }
            d.emit_pair(b"name", b.name.as_str())?;
            d.emit_pair(b"piece length", self.piece_length)?;
            d.emit_pair_with(b"pieces", |e| e.emit_bytes(&self.pieces))?;
            if b.private {
                d.emit_pair(b"private", 1)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;
    use crate::PieceIndex;
    use quickcheck::quickcheck;

    #[test]
    fn auto_piece_length_aims_at_1000_to_2000_pieces() {
        assert_eq!(auto_piece_length(1), 16 * 1024);
        assert_eq!(auto_piece_length(1 << 30), 1 << 20);
        assert_eq!(auto_piece_length(1 << 50), 16 << 20);
        // From 16 MiB up to 32 GiB (where the 16 MiB cap takes over).
        for shift in 23..=33 {
            let total = 3u64 << shift;
            let pieces = total.div_ceil(u64::from(auto_piece_length(total)));
            assert!((1000..=2000).contains(&pieces), "{total}: {pieces} pieces");
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn multi_file_round_trip() {
        let mut b = TorrentBuilder::multi_file("folder");
        b.add_file(vec!["a.txt".into()], 1000)
            .add_file(vec!["sub".into(), "empty".into()], 0)
            .add_file(vec!["sub".into(), "b.bin".into()], 40_000)
            .piece_length(16384)
            .tracker("http://t1/announce")
            .tracker("udp://t2:80")
            .web_seed("http://ws/")
            .private(true)
            .comment("c")
            .created_by("shoal")
            .creation_date(1_700_000_000);
        let bytes = data(41_000);
        let mut h = b.start().unwrap();
        for chunk in bytes.chunks(777) {
            h.update(chunk);
        }
        let torrent = h.finish().unwrap();
        let m = Metainfo::parse(&torrent).unwrap();
        assert_eq!(m.info.name, "folder");
        assert_eq!(m.info.total_length, 41_000);
        assert_eq!(m.info.piece_count(), 3);
        assert!(m.info.private && m.info.multi_file);
        assert_eq!(m.info.files[2].path, vec!["folder", "sub", "b.bin"]);
        assert_eq!(m.info.files[2].offset, 1000);
        assert_eq!(m.announce.as_deref(), Some("http://t1/announce"));
        assert_eq!(
            m.announce_list,
            vec![vec!["http://t1/announce"], vec!["udp://t2:80"]]
        );
        assert_eq!(m.url_list, vec!["http://ws/"]);
        assert_eq!(m.creation_date, Some(1_700_000_000));
        for (i, piece) in bytes.chunks(16384).enumerate() {
            let expected: [u8; 20] = Sha1::digest(piece).into();
            assert_eq!(m.info.piece_hash(PieceIndex(i as u32)), Some(&expected));
        }
        // The output is canonical: bendy's strict decoder accepts it.
        assert!(bendy::decoding::Decoder::new(&torrent)
            .tokens()
            .all(|t| t.is_ok()));
    }

    #[test]
    fn errors() {
        let b = TorrentBuilder::single_file("x", 0);
        assert_eq!(b.start().err(), Some(CreateError::Empty));
        let b = TorrentBuilder::single_file("../x", 5);
        assert!(matches!(b.start().err(), Some(CreateError::Metainfo(_))));
        let mut b = TorrentBuilder::multi_file("x");
        b.add_file(vec![], 5);
        assert_eq!(b.start().err(), Some(CreateError::EmptyPath));
        let mut b = TorrentBuilder::single_file("x", 5);
        b.piece_length(1);
        assert_eq!(b.start().err(), Some(CreateError::PieceLength(1)));
        let mut h = TorrentBuilder::single_file("x", 5).start().unwrap();
        h.update(b"1234");
        assert_eq!(
            h.finish().err(),
            Some(CreateError::LengthMismatch {
                declared: 5,
                fed: 4
            })
        );
    }

    #[test]
    fn pieces_hashed_by_the_caller_give_the_same_torrent_and_only_whole_ones_are_taken() {
        let bytes = data(3 * 1024 + 100);
        let start = || {
            let mut b = TorrentBuilder::single_file("f", bytes.len() as u64);
            b.piece_length(1024);
            b.start().unwrap()
        };
        let mut fed = start();
        fed.update(&bytes);
        let want = fed.finish().unwrap();
        // The first piece fed as bytes, the rest by digest.
        let mut h = start();
        h.update(&bytes[..1024]);
        for piece in bytes[1024..].chunks(1024) {
            let digest: [u8; 20] = Sha1::digest(piece).into();
            h.hashed_piece(piece.len() as u32, digest).unwrap();
        }
        assert_eq!(h.finish().unwrap(), want);
        // Not at a piece's start, not whole, past the end: refused, nothing taken.
        let mut h = start();
        h.update(&bytes[..10]);
        let refused = Err(CreateError::NotAPiece { at: 10, len: 1024 });
        assert_eq!(h.hashed_piece(1024, [0; 20]), refused);
        let mut h = start();
        assert_eq!(
            h.hashed_piece(100, [0; 20]),
            Err(CreateError::NotAPiece { at: 0, len: 100 }),
            "a short piece only at the end"
        );
        for _ in 0..3 {
            h.hashed_piece(1024, [0; 20]).unwrap();
        }
        assert_eq!(
            h.hashed_piece(1024, [0; 20]),
            Err(CreateError::NotAPiece {
                at: 3072,
                len: 1024
            })
        );
        h.hashed_piece(100, [0; 20]).unwrap();
        assert_eq!(h.fed(), h.total());
    }

    quickcheck! {
        fn any_chunking_gives_the_same_torrent(len: u16, cuts: Vec<u16>) -> bool {
            let len = usize::from(len) + 1;
            let bytes = data(len);
            let make = |chunks: &[&[u8]]| {
                let mut b = TorrentBuilder::single_file("f", len as u64);
                b.piece_length(1024);
                let mut h = b.start().unwrap();
                for c in chunks {
                    h.update(c);
                }
                h.finish().unwrap()
            };
            let whole = make(&[&bytes]);
            let mut points: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % len).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for p in points {
                chunks.push(&bytes[at..p]);
                at = p;
            }
            chunks.push(&bytes[at..]);
            make(&chunks) == whole && Metainfo::parse(&whole).is_ok()
        }
    }
}
