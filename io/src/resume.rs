//! Resume records: which pieces a download had verified, and the state of its files then.
//!
//! A restarted download trusts a record only if it wrote it itself and the files are as it
//! left them: the same info-hash and piece count, and for every file that holds piece data
//! the same on-disk name (final or `.part`), size and modification time (seconds and
//! nanoseconds). Anything else — no record, a corrupt or foreign one, a file touched,
//! truncated, renamed or deleted — and the data on disk is hashed again
//! ([`check_existing`]). Either way a verified piece is never downloaded twice.
//!
//! The record is `DIR/.shoal/<info-hash hex>.resume`, bencoded (keys sorted):
//!
//! ```text
//! d
//!   6:record d
//!     5:files l                       one entry per file with piece data, torrent order
//!       d 5:index i<file index>e      (padding and zero-length files hold none: left out)
//!         5:mtime i<seconds>e  8:mtime-ns i<nanoseconds>e
//!         4:path l <on-disk path components below DIR, the last with .part if so> e
//!         4:size i<bytes>e
//!       e …
//!     e
//!     9:info-hash 20:<info-hash>
//!     6:pieces i<piece count>e
//!     8:verified <bitfield, wire form: high bit of byte 0 is piece 0>
//!     7:version i1e
//!   e
//!   4:sha1 20:<SHA-1 of the `record` value's bytes as they stand in the file>
//! e
//! ```
//!
//! The checksum is there because a record is trusted without looking at the data: a flipped
//! bit in `verified` would otherwise claim a piece we never had. A record that is not
//! well-formed bencode, whose checksum does not match, or that is larger than this torrent's
//! record can be (so reading it is bounded) is ignored, never trusted, never a panic.
//!
//! It is written atomically: to a temporary file in the same folder, fsynced, renamed over
//! the old record, then the folder fsynced. A crash leaves the old record or the new one.
//!
//! Writing data changes modification times, so a record is only right about files that
//! are not written after it is saved, and only if the data it vouches for is on disk:
//! take the verified bitfield first, then `Storage::sync`, then [`save`] (which syncs again
//! itself, so calling it alone is also safe). A piece verified after the bitfield was taken
//! is simply not in the record. The runtime saves on exit, after flushing, and periodically.
//! A file written after the last save has a new mtime, so its record is rejected and the
//! data re-verified: the safe direction.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bendy::encoding::{Encoder, SingleItemEncoder};
use sha1::{Digest, Sha1};
use shoal_core::bencode::{self, Limits, Value};
use shoal_core::bitfield::Bitfield;
use shoal_core::metainfo::Metainfo;
use shoal_core::InfoHash;

use crate::storage::Storage;
use crate::Error;

/// The record format's version; a record of another version is ignored.
pub const RECORD_VERSION: i64 = 1;

/// The folder, inside the download folder, that holds shoal's resume records.
pub const RECORD_DIR: &str = ".shoal";

/// Where the resume record of a torrent lives.
pub fn record_path(dir: &Path, info_hash: &InfoHash) -> PathBuf {
    dir.join(RECORD_DIR)
        .join(format!("{}.resume", info_hash.to_hex()))
}

/// Where the `.torrent` of a torrent fetched from a magnet link is kept, beside its resume
/// record, so a restart with the same link does not fetch the metadata again.
pub fn torrent_path(dir: &Path, info_hash: &InfoHash) -> PathBuf {
    dir.join(RECORD_DIR)
        .join(format!("{}.torrent", info_hash.to_hex()))
}

/// Saves `meta` as `DIR/.shoal/<info-hash>.torrent`, atomically (a crash leaves no file
/// or the whole one).
pub fn save_torrent(dir: &Path, meta: &Metainfo) -> Result<(), Error> {
    let folder = dir.join(RECORD_DIR);
    fs::create_dir_all(&folder).map_err(|source| Error::Io {
        path: folder.clone(),
        source,
    })?;
    let path = torrent_path(dir, &meta.info_hash);
    let tmp = folder.join(format!(
        "{}.torrent.{}.tmp",
        meta.info_hash.to_hex(),
        std::process::id()
    ));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(&meta.to_torrent_bytes())?;
        f.sync_all()
    });
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io { path: tmp, source });
    }
    fs::rename(&tmp, &path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        Error::Io { path, source }
    })
}

/// The `.torrent` saved by [`save_torrent`] for `info_hash`, if there is one that parses
/// and is of that torrent (anything else is ignored: the metadata is fetched again).
pub fn load_torrent(dir: &Path, info_hash: &InfoHash) -> Option<Metainfo> {
    let path = torrent_path(dir, info_hash);
    // A saved torrent is never larger than the metadata bound and its trackers.
    let len = fs::metadata(&path).ok()?.len();
    if len > shoal_core::metadata::DEFAULT_MAX_METADATA_SIZE + (1 << 20) {
        return None;
    }
    let meta = Metainfo::parse(&fs::read(&path).ok()?).ok()?;
    (meta.info_hash == *info_hash).then_some(meta)
}

/// What a record notes of one file.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    index: usize,
    path: Vec<String>,
    size: u64,
    mtime: i64,
    mtime_ns: i64,
}

/// The stamps of the files holding piece data, as they are on disk now.
fn stamps(storage: &Storage) -> Result<Vec<Stamp>, Error> {
    storage
        .data_files()
        .map(|(index, path, full)| {
            let m = fs::metadata(&full).map_err(|source| Error::Io {
                path: full.clone(),
                source,
            })?;
            Ok(Stamp {
                index,
                path,
                size: m.len(),
                mtime: m.mtime(),
                mtime_ns: m.mtime_nsec(),
            })
        })
        .collect()
}

fn encode(info_hash: &InfoHash, verified: &Bitfield, files: &[Stamp]) -> Vec<u8> {
    let record = |e: SingleItemEncoder| encode_record(e, info_hash, verified, files);
    // Encoding is deterministic: the bytes hashed here are the bytes that stand under
    // `record` in the output.
    let mut inner = Encoder::new();
    let checksum = inner
        .emit_with(record)
        .and_then(|()| inner.get_output())
        .map(|bytes| <[u8; 20]>::from(Sha1::digest(&bytes)));
    let mut e = Encoder::new();
    checksum
        .and_then(|checksum| {
            e.emit_dict(|mut d| {
                d.emit_pair_with(b"record", record)?;
                d.emit_pair_with(b"sha1", |e| e.emit_bytes(&checksum))
            })
        })
        .and_then(|()| e.get_output())
        // Fixed, sorted keys, depth 5: the structure cannot be refused.
        .expect("resume record encoding is well-formed by construction")
}

fn encode_record(
    e: SingleItemEncoder,
    info_hash: &InfoHash,
    verified: &Bitfield,
    files: &[Stamp],
) -> Result<(), bendy::encoding::Error> {
    e.emit_dict(|mut d| {
        d.emit_pair_with(b"files", |e| {
            e.emit_list(|e| {
                for f in files {
                    e.emit_dict(|mut d| {
                        d.emit_pair(b"index", f.index as u64)?;
                        d.emit_pair(b"mtime", f.mtime)?;
                        d.emit_pair(b"mtime-ns", f.mtime_ns)?;
                        d.emit_pair_with(b"path", |e| {
                            e.emit_list(|e| {
                                for c in &f.path {
                                    e.emit_str(c)?;
                                }
                                Ok(())
                            })
                        })?;
                        d.emit_pair(b"size", f.size)
                    })?;
                }
                Ok(())
            })
        })?;
        d.emit_pair_with(b"info-hash", |e| e.emit_bytes(&info_hash.0))?;
        d.emit_pair(b"pieces", verified.len())?;
        d.emit_pair_with(b"verified", |e| e.emit_bytes(&verified.to_wire()))?;
        d.emit_pair(b"version", RECORD_VERSION)
    })
}

/// Writes the resume record of `storage`'s torrent: `verified` (a snapshot the caller took
/// before this call) and the files' names, sizes and modification times. Syncs the storage
/// first, so the data the record vouches for is on disk. Atomic: a crash leaves the old
/// record or the new one, never a mix.
///
/// `meta` must be the torrent `storage` was opened with (checked: anything else is a bug).
pub fn save(
    dir: &Path,
    meta: &Metainfo,
    verified: &Bitfield,
    storage: &Storage,
) -> Result<(), Error> {
    assert_eq!(
        meta.info_hash,
        storage.meta().info_hash,
        "resume::save called with another torrent's storage"
    );
    storage.sync()?;
    let bytes = encode(&meta.info_hash, verified, &stamps(storage)?);
    let path = record_path(dir, &meta.info_hash);
    let folder = dir.join(RECORD_DIR);
    fs::create_dir_all(&folder).map_err(|source| Error::Io {
        path: folder.clone(),
        source,
    })?;
    // One temporary name per save (the process and a count within it), so neither two
    // shoal processes nor two saves of one process (a periodic one on a worker, the
    // final one at shutdown) ever write into the same temporary file.
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = folder.join(format!(
        "{}.resume.{}.{serial}.tmp",
        meta.info_hash.to_hex(),
        std::process::id()
    ));
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io { path: tmp, source });
    }
    if let Err(source) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io { path, source });
    }
    // Best effort: the rename is done; this only makes it survive a power cut.
    if let Ok(d) = File::open(&folder) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Why a resume record was not trusted.
#[derive(Debug)]
pub enum Rejected {
    /// There is no record.
    Missing,
    /// The record could not be read.
    Unreadable(io::Error),
    /// The record is not one this version of shoal wrote (corrupt, truncated, too large,
    /// checksum mismatch, another version, or a field missing).
    Corrupt(&'static str),
    /// The record is of another torrent, or another piece count.
    OtherTorrent,
    /// A file's name, size or modification time differs from the record's.
    FileChanged { path: PathBuf },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Missing => f.write_str("no resume record"),
            Rejected::Unreadable(e) => write!(f, "resume record unreadable: {e}"),
            Rejected::Corrupt(why) => write!(f, "resume record ignored: {why}"),
            Rejected::OtherTorrent => f.write_str("resume record is for another torrent"),
            Rejected::FileChanged { path } => {
                write!(f, "{} changed since the resume record", path.display())
            }
        }
    }
}

impl std::error::Error for Rejected {}

/// The record's verified pieces, if it can be trusted (see the module docs); `None` for a
/// missing, corrupt, foreign or out-of-date record. Never panics on any record content.
pub fn load(dir: &Path, meta: &Metainfo, storage: &Storage) -> Option<Bitfield> {
    check(dir, meta, storage).ok()
}

/// [`load`], saying why a record was not trusted (for the runtime's messages).
pub fn check(dir: &Path, meta: &Metainfo, storage: &Storage) -> Result<Bitfield, Rejected> {
    if meta.info_hash != storage.meta().info_hash {
        return Err(Rejected::OtherTorrent);
    }
    let path = record_path(dir, &meta.info_hash);
    let expected = stamps(storage).map_err(|e| match e {
        Error::Io { path, .. } => Rejected::FileChanged { path },
        _ => Rejected::Corrupt("unexpected error"),
    })?;
    let bytes = read_bounded(&path, size_bound(meta, &expected))?;
    let record = parse(&bytes, &expected)?;
    if record.info_hash != meta.info_hash.0 || record.pieces != meta.info.piece_count() {
        return Err(Rejected::OtherTorrent);
    }
    if record.files.len() != expected.len() {
        return Err(Rejected::Corrupt("file list does not fit the torrent"));
    }
    for (got, now) in record.files.iter().zip(&expected) {
        if got != now {
            return Err(Rejected::FileChanged {
                path: storage.dir().join(now.path.iter().collect::<PathBuf>()),
            });
        }
    }
    Bitfield::from_wire(record.verified, record.pieces)
        .map_err(|_| Rejected::Corrupt("bitfield does not fit the piece count"))
}

/// The largest record this torrent can have, generously: a larger file is not ours.
fn size_bound(meta: &Metainfo, files: &[Stamp]) -> u64 {
    record_bound(meta, files.iter().map(|f| f.path.as_slice()))
}

/// [`size_bound`] for files with these on-disk paths.
fn record_bound<'a>(meta: &Metainfo, paths: impl Iterator<Item = &'a [String]>) -> u64 {
    let per_file: u64 = paths
        .map(|path| {
            // Numbers (≤ 20 digits each, four of them) and keys, plus each component with
            // its length prefix; `.part` adds five bytes.
            160 + path.iter().map(|c| c.len() as u64 + 16).sum::<u64>()
        })
        .sum();
    4096 + u64::from(meta.info.piece_count()) / 8 + per_file
}

/// The bencode limits of a record of files whose paths have `components` components in all.
fn record_limits(files: usize, components: usize) -> Limits {
    // Depth: dict > dict > list > dict > list. Values (keys count as values): the top
    // level with its two keys and values, the record's keys and fields, and per file a
    // dict, five keys and five values, and its path components.
    Limits {
        max_depth: 5,
        max_values: 32 + 12 * files + components,
    }
}

fn read_bounded(path: &Path, bound: u64) -> Result<Vec<u8>, Rejected> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Rejected::Missing),
        Err(e) => return Err(Rejected::Unreadable(e)),
    };
    let mut bytes = Vec::new();
    file.take(bound + 1)
        .read_to_end(&mut bytes)
        .map_err(Rejected::Unreadable)?;
    if bytes.len() as u64 > bound {
        return Err(Rejected::Corrupt("larger than any record of this torrent"));
    }
    Ok(bytes)
}

struct Record<'a> {
    info_hash: &'a [u8],
    pieces: u32,
    verified: &'a [u8],
    files: Vec<Stamp>,
}

fn parse<'a>(bytes: &'a [u8], expected: &[Stamp]) -> Result<Record<'a>, Rejected> {
    let components: usize = expected.iter().map(|f| f.path.len()).sum();
    parse_with(bytes, record_limits(expected.len(), components))
}

fn parse_with<'a>(bytes: &'a [u8], limits: Limits) -> Result<Record<'a>, Rejected> {
    let corrupt = Rejected::Corrupt;
    let top = bencode::decode_with(bytes, limits).map_err(|_| corrupt("not bencode"))?;
    let top = top.as_dict().ok_or(corrupt("not a dictionary"))?;
    let root = top
        .get(b"record")
        .and_then(Value::as_dict)
        .ok_or(corrupt("no record"))?;
    let checksum = top
        .get(b"sha1")
        .and_then(Value::as_bytes)
        .ok_or(corrupt("no checksum"))?;
    if Sha1::digest(root.raw).as_slice() != checksum {
        return Err(corrupt("checksum mismatch"));
    }
    let int = |d: &bencode::Dict<'_>, key: &'static str| {
        d.get(key.as_bytes())
            .and_then(Value::as_int)
            .ok_or(corrupt("an integer field is missing"))
    };
    let raw = |d: &bencode::Dict<'a>, key: &'static str| {
        d.get(key.as_bytes())
            .and_then(Value::as_bytes)
            .ok_or(corrupt("a string field is missing"))
    };
    if int(root, "version")? != RECORD_VERSION {
        return Err(corrupt("another record version"));
    }
    let pieces = u32::try_from(int(root, "pieces")?).map_err(|_| corrupt("bad piece count"))?;
    let mut files = Vec::new();
    let list = root
        .get(b"files")
        .and_then(Value::as_list)
        .ok_or(corrupt("no file list"))?;
    for item in list {
        let d = item
            .as_dict()
            .ok_or(corrupt("a file entry is not a dictionary"))?;
        let mut path = Vec::new();
        for c in d
            .get(b"path")
            .and_then(Value::as_list)
            .ok_or(corrupt("a file has no path"))?
        {
            let c = c.as_str().ok_or(corrupt("a path component is not UTF-8"))?;
            path.push(c.to_string());
        }
        files.push(Stamp {
            index: usize::try_from(int(d, "index")?).map_err(|_| corrupt("bad file index"))?,
            path,
            size: u64::try_from(int(d, "size")?).map_err(|_| corrupt("bad file size"))?,
            mtime: int(d, "mtime")?,
            mtime_ns: int(d, "mtime-ns")?,
        });
    }
    Ok(Record {
        info_hash: raw(root, "info-hash")?,
        pieces,
        verified: raw(root, "verified")?,
        files,
    })
}

/// The startup check of a download or a seed: the resume record's pieces if it can be
/// trusted, else every piece on disk hashed ([`Storage::verify_all`], which reports
/// `progress(done, total)`). With a trusted record `progress(total, total)` is called once.
pub fn check_existing(
    dir: &Path,
    meta: &Metainfo,
    storage: &Storage,
    mut progress: impl FnMut(u32, u32),
) -> Bitfield {
    match check(dir, meta, storage) {
        Ok(verified) => {
            let n = verified.len();
            progress(n, n);
            storage.set_record_vouched();
            verified
        }
        Err(_) => storage.verify_all(progress),
    }
}

/// The files (full paths, final or `.part` names) that this torrent's resume record in
/// `dir` names, whether or not they have changed since: shoal made them, so they are its
/// own to repair. Empty when there is no record, or it is corrupt or another torrent's.
pub fn recorded_paths(dir: &Path, meta: &Metainfo) -> Vec<PathBuf> {
    let files = &meta.info.files;
    // As `check` bounds it, from the torrent's files instead of those on disk (a `.part`
    // suffix fits the bound's margin).
    let bound = record_bound(meta, files.iter().map(|f| f.path.as_slice()));
    let Ok(bytes) = read_bounded(&record_path(dir, &meta.info_hash), bound) else {
        return Vec::new();
    };
    let components: usize = files.iter().map(|f| f.path.len()).sum();
    match parse_with(&bytes, record_limits(files.len(), components)) {
        Ok(record) if record.info_hash == meta.info_hash.0 => record
            .files
            .into_iter()
            .map(|f| dir.join(f.path.iter().collect::<PathBuf>()))
            .collect(),
        _ => Vec::new(),
    }
}
