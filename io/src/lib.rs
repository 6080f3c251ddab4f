//! shoal-io: the blocking IO that shoal's runtimes share.
//!
//! The core never touches a file; both runtimes (mio and async-std) need the same file work
//! done the same way, so it lives here once, like `quinn-udp` beside `quinn-proto`. Every
//! function here blocks: runtimes call them from a worker thread, never from their event
//! loop.
//!
//! Modules, each owning one kind of file work:
//!
//! - this root: reading `.torrent` files ([`read_torrent`]) and making them from files on
//!   disk ([`create_torrent`]), and the crate's [`Error`];
//! - [`storage`]: one torrent's files on disk ([`Storage`]): block writes and reads across
//!   file boundaries, piece hashing, `.part` names until a file is complete, padding files
//!   never written;
//! - [`resume`]: resume records, trusted only while the files are as they were left, and
//!   the startup check ([`check_existing`]) that falls back to hashing what is on disk;
//! - [`folder`]: taking a download folder ([`open_download`]: a lock, the startup check,
//!   nothing of the user's overwritten) or a seed's content ([`open_seed`]: read-only);
//! - [`budget`]: the bytes between sockets and disk ([`DiskBudget`]), bounded, and the
//!   back-pressure they give (a runtime stops reading sockets while it says so);
//! - [`writeback`] and [`jobs`]: downloaded blocks held until their piece is hashed, and
//!   the disk and hashing jobs both runtimes hand their workers;
//! - [`lanes`]: SHA-1 of up to 16 pieces at once in AVX-512 lanes, the `sha1` crate where
//!   the processor has none;
//! - [`dispatch`]: the one [`Dispatcher`] of the engine's disk outputs (outputs to disk
//!   jobs, their results back to the engine, final renames, the resume-save cadence);
//! - [`readahead`]: blocks served to peers read a chunk at a time ([`ReadAhead`]);
//! - [`read_buf`]: peer connections' read buffers, recycled once the blocks sliced from
//!   them are gone ([`ReadBuffers`](read_buf::ReadBuffers));
//! - [`fetch`]: a `.torrent` by `http(s)://` URL ([`fetch_torrent`]) or path
//!   ([`load_torrent`]).
//! - [`answer_buf`]: an HTTP answer read from a socket straight into its own buffer
//!   ([`AnswerBuf`]), bounded (no IO of its own: the runtimes read into it).
//! - [`http_pool`]: idle keep-alive connections to web seeds, bounded, kept for the next
//!   request to the same server (no IO of its own: each runtime keeps its own sockets in
//!   it).
//!
//! Also here, because both runtimes print it: [`human`], a byte count for a progress line.
//!
//! Every error names what it concerns (a path or a URL) and displays as one line, e.g.
//! `/data/t/a.bin.part: No space left on device (os error 28)`, fit for the user as it is.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use shoal_core::create::{CreateError, TorrentBuilder};
use shoal_core::metainfo::{Metainfo, MetainfoError};
use shoal_core::storage::LayoutError;

pub mod answer_buf;
pub mod budget;
pub mod dht;
pub mod dispatch;
pub mod fetch;
pub mod folder;
pub mod http_pool;
pub mod jobs;
pub mod lanes;
pub mod lsd;
pub mod peers;
pub mod random;
pub mod read_buf;
pub mod readahead;
pub mod resume;
pub mod storage;
pub mod tls;
pub mod writeback;

pub use answer_buf::AnswerBuf;
pub use budget::{Charge, DiskBudget, DiskLimits, DiskStats, Stage};
pub use dispatch::{saved_pieces, DiskDone, DiskEvent, DiskJob, Dispatcher};
pub use fetch::{
    fetch_if_changed, fetch_torrent, fetch_torrent_with, is_url, load_torrent, FetchError,
    FetchOptions, Fetched,
};
pub use folder::{open_download, open_seed, Download, DownloadLock};
pub use jobs::{write_block, BlockPlan, PieceDone, PieceJob, Renames};
pub use lsd::lsd_socket;
pub use peers::resolve_peers;
pub use random::{random_peer_id, random_u64};
pub use readahead::{ReadAhead, ReadPlan};
pub use resume::check_existing;
pub use storage::{Storage, FLUSH_EVERY};
pub use tls::tls_client_config;
pub use writeback::WriteBack;

/// The largest `.torrent` read: real ones stay under a few MiB even for 100,000 files.
pub const MAX_TORRENT_FILE: u64 = 64 * 1024 * 1024;

/// An IO or format failure, with the path (or URL) it concerns.
#[derive(Debug)]
pub enum Error {
    /// A file operation failed: a full disk on a block write comes out as
    /// `<path>: No space left on device (os error 28)`.
    Io {
        path: PathBuf,
        source: io::Error,
    },
    Metainfo {
        path: PathBuf,
        source: MetainfoError,
    },
    Create(CreateError),
    TooLarge {
        path: PathBuf,
        len: u64,
    },
    NotUtf8 {
        path: PathBuf,
    },
    /// A file path of a hand-built `Metainfo` that could leave the download folder (parsed
    /// torrents never have one).
    UnsafePath {
        path: String,
    },
    /// A hand-built `Info` whose fields disagree (parsed torrents never have one).
    Layout(LayoutError),
    /// A block or piece that is not inside the torrent (a caller's bug, never a peer's:
    /// the engine validates what peers name).
    OutOfRange {
        piece: u32,
        begin: u32,
        len: u64,
    },
    /// A file index that the torrent does not have.
    NoSuchFile {
        file: usize,
    },
    /// Fetching a `.torrent` by URL failed.
    Fetch {
        url: String,
        source: FetchError,
    },
    /// A `.torrent` fetched by URL does not parse.
    MetainfoUrl {
        url: String,
        source: MetainfoError,
    },
    /// Something of the user's is where the torrent's data goes: shoal does not overwrite,
    /// truncate or rename what it did not create (see [`Storage::prepare`]).
    InTheWay {
        path: PathBuf,
        why: String,
        /// Whether `--overwrite` would replace it (a file, yes; a folder, never).
        replaceable: bool,
    },
    /// Content given to seed that is not complete.
    Incomplete {
        path: PathBuf,
        have: u32,
        total: u32,
    },
    /// Another shoal process is downloading the same torrent into the same folder.
    Busy {
        /// The lock file.
        path: PathBuf,
        /// The other process, as it wrote itself into the lock file.
        pid: Option<u32>,
    },
    /// A magnet link where a `.torrent` was expected: its metadata comes from peers (BEP 9),
    /// which the runtimes do (`shoal download MAGNET`, `Session::add_magnet`), not this
    /// crate's loading of `.torrent` files.
    Magnet {
        link: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Metainfo { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Create(e) => e.fmt(f),
            Error::TooLarge { path, len } => write!(
                f,
                "{}: {len} bytes is too large for a torrent file (limit {MAX_TORRENT_FILE})",
                path.display()
            ),
            Error::NotUtf8 { path } => {
                write!(f, "{}: file name is not valid UTF-8", path.display())
            }
            Error::UnsafePath { path } => {
                write!(f, "{path}: unsafe file path in the torrent")
            }
            Error::Layout(e) => write!(f, "inconsistent torrent: {e}"),
            Error::OutOfRange { piece, begin, len } => write!(
                f,
                "piece {piece}, offset {begin}, length {len} is outside the torrent"
            ),
            Error::NoSuchFile { file } => write!(f, "the torrent has no file {file}"),
            Error::Fetch { url, source } => write!(f, "{url}: {source}"),
            Error::MetainfoUrl { url, source } => write!(f, "{url}: {source}"),
            Error::InTheWay {
                path,
                why,
                replaceable,
            } => {
                write!(
                    f,
                    "{}: {why}; shoal leaves it alone: move it away or choose another folder with -o",
                    path.display()
                )?;
                if *replaceable {
                    f.write_str(", or pass --overwrite to replace it")?;
                }
                Ok(())
            }
            Error::Incomplete { path, have, total } => write!(
                f,
                "{}: only {have} of {total} pieces are present and verified; nothing to seed from a partial copy (use `shoal download`)",
                path.display()
            ),
            Error::Busy { path, pid } => {
                let who = pid.map_or_else(
                    || "another shoal process".to_string(),
                    |pid| format!("another shoal process (pid {pid})"),
                );
                let dir = path.parent().and_then(Path::parent).unwrap_or(path);
                write!(
                    f,
                    "{who} is already downloading this torrent into {} (lock {})",
                    dir.display(),
                    path.display()
                )
            }
            Error::Magnet { link } => write!(
                f,
                "{link}: a magnet link, not a .torrent file or an http(s):// URL to one (add it as a magnet link)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Metainfo { source, .. } => Some(source),
            Error::Create(e) => Some(e),
            Error::Layout(e) => Some(e),
            Error::Fetch { source, .. } => Some(source),
            Error::MetainfoUrl { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What the engine is told of a failed disk job ([`Input::BlockRead`] and the like): the
/// kind of the IO error underneath, if any, and the whole text with its path.
///
/// [`Input::BlockRead`]: shoal_core::engine::Input::BlockRead
impl From<&Error> for shoal_core::IoError {
    fn from(e: &Error) -> shoal_core::IoError {
        let kind = match e {
            Error::Io { source, .. } => source.kind(),
            Error::Fetch { .. } => io::ErrorKind::Other,
            Error::OutOfRange { .. } | Error::NoSuchFile { .. } => io::ErrorKind::InvalidInput,
            Error::InTheWay { .. } => io::ErrorKind::AlreadyExists,
            _ => io::ErrorKind::InvalidData,
        };
        shoal_core::IoError::new(kind, e.to_string())
    }
}

impl From<Error> for shoal_core::IoError {
    fn from(e: Error) -> shoal_core::IoError {
        shoal_core::IoError::from(&e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and parses a `.torrent` file.
pub fn read_torrent(path: &Path) -> Result<Metainfo, Error> {
    let bytes = read_torrent_bytes(path)?;
    Metainfo::parse(&bytes).map_err(|source| Error::Metainfo {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of a `.torrent` file, at most [`MAX_TORRENT_FILE`] of them.
pub(crate) fn read_torrent_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_TORRENT_FILE {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// What [`create_torrent`] puts in the torrent besides the files.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub piece_length: Option<u32>,
    pub trackers: Vec<String>,
    pub web_seeds: Vec<String>,
    pub private: bool,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch, or none to leave `creation date` out.
    pub creation_date: Option<i64>,
}

/// Makes a `.torrent` (its bencoded bytes) of a file, or of a folder and every regular file
/// below it, in byte order of their paths. Symbolic links to folders are not followed (they
/// could loop); links to files are read as files. shoal's own working files are left out
/// of a folder: its state folders ([`resume::RECORD_DIR`], with resume records and locks)
/// and incomplete files (`*.part`, see [`Storage`]), which are never content.
pub fn create_torrent(path: &Path, opts: &CreateOptions) -> Result<Vec<u8>, Error> {
    create_torrent_with_progress(path, opts, |_, _| {})
}

/// [`create_torrent`], calling `progress(bytes_hashed, total_bytes)` as it reads.
pub fn create_torrent_with_progress(
    path: &Path,
    opts: &CreateOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<u8>, Error> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    let name = file_name(path)?;
    let (mut builder, sources) = if meta.is_dir() {
        let files = folder_files(path)?;
        let mut builder = TorrentBuilder::multi_file(name);
        let mut sources = Vec::with_capacity(files.len());
        for (components, source, len) in files {
            builder.add_file(components, len);
            sources.push((source, len));
        }
        (builder, sources)
    } else {
        (
            TorrentBuilder::single_file(name, meta.len()),
            vec![(path.to_path_buf(), meta.len())],
        )
    };
    if let Some(n) = opts.piece_length {
        builder.piece_length(n);
    }
    for t in &opts.trackers {
        builder.tracker(t.clone());
    }
    for w in &opts.web_seeds {
        builder.web_seed(w.clone());
    }
    builder.private(opts.private);
    if let Some(c) = &opts.comment {
        builder.comment(c.clone());
    }
    if let Some(c) = &opts.created_by {
        builder.created_by(c.clone());
    }
    if let Some(t) = opts.creation_date {
        builder.creation_date(t);
    }

    let mut hasher = builder.start().map_err(Error::Create)?;
    let total = hasher.total();
    let piece = hasher.piece_length() as usize;
    // Pieces are read a batch at a time (`lanes::LANES` at most, `lanes::BATCH_BYTES`
    // unless one piece is more) and each batch hashed at once.
    let batch = lanes::LANES.min(lanes::BATCH_BYTES / piece).max(1);
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); batch];
    let mut files = Concat {
        sources: sources.into_iter(),
        file: None,
    };
    let mut left = total;
    while left > 0 {
        let mut n = 0;
        while n < batch && left > 0 {
            let len = usize::try_from(left).map_or(piece, |left| left.min(piece));
            bufs[n].resize(len, 0);
            files.fill(&mut bufs[n])?;
            left -= len as u64;
            n += 1;
        }
        for (buf, digest) in bufs[..n].iter().zip(lanes::digests_of_buffers(&bufs[..n])) {
            hasher
                .hashed_piece(buf.len() as u32, digest)
                .map_err(Error::Create)?;
        }
        progress(hasher.fed(), total);
    }
    hasher.finish().map_err(Error::Create)
}

/// The torrent's files read as one stream of bytes, each up to its length when it was
/// listed.
struct Concat {
    sources: std::vec::IntoIter<(PathBuf, u64)>,
    /// The file being read and the bytes of it still to read.
    file: Option<(File, PathBuf, u64)>,
}

impl Concat {
    /// Fills `buf` with the next bytes; a file shorter than it was is an error.
    fn fill(&mut self, mut buf: &mut [u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let Some((file, path, remaining)) = &mut self.file else {
                let Some((path, len)) = self.sources.next() else {
                    return Err(Error::Io {
                        path: PathBuf::new(),
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the files ended before the torrent's length",
                        ),
                    });
                };
                let file = File::open(&path).map_err(io_err(&path))?;
                self.file = Some((file, path, len));
                continue;
            };
            if *remaining == 0 {
                self.file = None;
                continue;
            }
            let want = buf
                .len()
                .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            let n = file.read(&mut buf[..want]).map_err(io_err(path))?;
            if n == 0 {
                return Err(Error::Io {
                    path: path.clone(),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was being read",
                    ),
                });
            }
            *remaining -= n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> Result<String, Error> {
    // `canonicalize` gives `.` and `dir/..` a real last component.
    let full = fs::canonicalize(path).map_err(io_err(path))?;
    full.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| Error::NotUtf8 {
            path: path.to_path_buf(),
        })
}

/// The files a torrent of the folder `dir` would hold, as [`create_torrent`] finds them:
/// (path components below `dir`, path, length), in byte order of their paths.
pub fn folder_files(dir: &Path) -> Result<Vec<(Vec<String>, PathBuf, u64)>, Error> {
    let mut files = Vec::new();
    walk(dir, &mut Vec::new(), &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, PathBuf, u64)>,
) -> Result<(), Error> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| Error::NotUtf8 { path: path.clone() })?;
        let file_type = entry.file_type().map_err(io_err(&path))?;
        if is_shoal_working_file(&name, file_type.is_dir()) {
            continue;
        }
        if file_type.is_dir() {
            prefix.push(name);
            walk(&path, prefix, out)?;
            prefix.pop();
        } else {
            // Follows a link to a file; a link to a folder or a dangling link is skipped.
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    let mut components = prefix.clone();
                    components.push(name);
                    out.push((components, path, meta.len()));
                }
                Ok(_) => {}
                Err(e) if file_type.is_symlink() && e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
    }
    Ok(())
}

/// Whether a folder entry is one of shoal's own working files rather than content: a state
/// folder, or a file that is still being downloaded.
fn is_shoal_working_file(name: &str, is_dir: bool) -> bool {
    if is_dir {
        name == resume::RECORD_DIR
    } else {
        name.ends_with(storage::PART_SUFFIX)
    }
}

/// A byte count (or rate) for people: binary units up to GiB, one decimal, e.g.
/// `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_in_binary_units_with_one_decimal() {
        assert_eq!(human(0), "0.0 B");
        assert_eq!(human(1023), "1023.0 B");
        assert_eq!(human(1536 << 10), "1.5 MiB");
        assert_eq!(human(3 << 40), "3072.0 GiB");
    }

    #[test]
    fn folder_torrent_lists_files_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("content");
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("z.txt"), b"zzz").unwrap();
        fs::write(root.join("b/c/deep.bin"), vec![9u8; 70_000]).unwrap();
        fs::write(root.join("a.txt"), b"").unwrap();
        let bytes = create_torrent(&root, &CreateOptions::default()).unwrap();
        let m = Metainfo::parse(&bytes).unwrap();
        let paths: Vec<String> = m.info.files.iter().map(|f| f.display_path()).collect();
        assert_eq!(
            paths,
            ["content/a.txt", "content/b/c/deep.bin", "content/z.txt"]
        );
        assert_eq!(m.info.total_length, 70_003);
        let out = dir.path().join("t.torrent");
        fs::write(&out, &bytes).unwrap();
        assert_eq!(read_torrent(&out).unwrap(), m);
    }

    #[test]
    fn a_folder_torrent_hashes_its_pieces_across_files_in_batches() {
        // 16 KiB pieces over files of odd lengths: 45 pieces (batches of 16, 16, 13),
        // most spanning two files, one spanning three, the last short.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("content");
        fs::create_dir_all(&root).unwrap();
        let lengths = [300_001usize, 5, 0, 433_321];
        let mut all = Vec::new();
        for (i, len) in lengths.iter().enumerate() {
            let data: Vec<u8> = (0..*len)
                .map(|j| (j * 13 + i * 101 + j / 977) as u8)
                .collect();
            fs::write(root.join(format!("f{i}")), &data).unwrap();
            all.extend(data);
        }
        let opts = CreateOptions {
            piece_length: Some(16384),
            ..CreateOptions::default()
        };
        let mut seen = Vec::new();
        let bytes =
            create_torrent_with_progress(&root, &opts, |fed, total| seen.push((fed, total)))
                .unwrap();
        let m = Metainfo::parse(&bytes).unwrap();
        assert_eq!(m.info.piece_count(), 45);
        for (i, piece) in all.chunks(16384).enumerate() {
            let want = lanes::one(&[piece]);
            assert_eq!(m.info.pieces[i], want, "piece {i}");
        }
        let total = all.len() as u64;
        assert_eq!(
            seen,
            [(16 * 16384, total), (32 * 16384, total), (total, total)]
        );
    }

    #[test]
    fn shoal_working_files_are_left_out_of_a_folder_torrent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        fs::create_dir_all(root.join(".shoal")).unwrap();
        fs::create_dir_all(root.join("c/sub")).unwrap();
        fs::write(root.join(".shoal/0123.resume"), b"d1:ai1ee").unwrap();
        fs::write(root.join(".shoal/0123.lock"), b"42").unwrap();
        fs::write(root.join("c/sub/half.bin.part"), vec![0u8; 4096]).unwrap();
        fs::write(root.join("c/done.bin"), b"done").unwrap();
        fs::write(root.join(".hidden"), b"kept").unwrap();
        let m =
            Metainfo::parse(&create_torrent(&root, &CreateOptions::default()).unwrap()).unwrap();
        let paths: Vec<String> = m.info.files.iter().map(|f| f.display_path()).collect();
        assert_eq!(paths, ["out/.hidden", "out/c/done.bin"]);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = read_torrent(&missing).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let bad = dir.path().join("bad.torrent");
        fs::write(&bad, b"d4:infoi1ee").unwrap();
        let e = read_torrent(&bad).unwrap_err();
        assert!(matches!(e, Error::Metainfo { .. }), "{e}");
        let empty = dir.path().join("empty");
        fs::write(&empty, b"").unwrap();
        let e = create_torrent(&empty, &CreateOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Create(CreateError::Empty)), "{e}");
    }
}
