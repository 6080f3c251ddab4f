//! Taking a folder for a download, or content for a seed: the startup sequence both
//! runtimes run before a torrent reaches the engine.
//!
//! The rule it keeps: **shoal never overwrites, truncates or renames a file or folder it did
//! not create, unless its pieces verify or the user says so.**
//!
//! - [`open_download`] takes the download folder for one torrent: a lock first
//!   ([`DownloadLock`]: one process per torrent and folder), then the startup check (the
//!   resume record, or hashing what is there), then [`Storage::prepare`], which refuses
//!   anything in the way *before* creating a single file, adopts what verifies, and repairs
//!   only files shoal's own resume record names (or everything, with `overwrite`).
//! - [`open_seed`] opens complete content read-only and creates nothing: not a folder, not a
//!   `.part`, not a resume record. It takes the folder holding the content or the content
//!   itself.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shoal_core::bitfield::Bitfield;
use shoal_core::metainfo::Metainfo;

use crate::resume::{self, RECORD_DIR};
use crate::{Error, Storage};

/// An exclusive claim on one torrent in one download folder, held while the process lives
/// (an advisory `flock` on `DIR/.shoal/<info-hash>.lock`, released by the kernel when the
/// process ends, however it ends, so a crash never leaves a stale lock). The file holds the
/// owner's process id, for the message a second process gets.
#[derive(Debug)]
pub struct DownloadLock {
    _file: File,
    path: PathBuf,
}

impl DownloadLock {
    /// Takes the lock of `meta`'s torrent in `dir`, or fails with [`Error::Busy`] naming the
    /// process that holds it. Creates `DIR/.shoal/` if needed.
    pub fn acquire(dir: &Path, meta: &Metainfo) -> Result<DownloadLock, Error> {
        let folder = dir.join(RECORD_DIR);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        fs::create_dir_all(&folder).map_err(io(&folder))?;
        let path = folder.join(format!("{}.lock", meta.info_hash.to_hex()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Busy {
                    path,
                    pid: text.trim().parse().ok(),
                });
            }
            Err(e) => return Err(io(&path)(e.into())),
        }
        let noted = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        noted.map_err(io(&path))?;
        Ok(DownloadLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A download folder taken for one torrent by [`open_download`].
#[derive(Debug)]
pub struct Download {
    pub storage: Arc<Storage>,
    /// The pieces found verified on disk.
    pub verified: Bitfield,
    /// Held until the download ends: drop it after the last write and resume save.
    pub lock: DownloadLock,
}

/// Takes `dir` (created if missing) for downloading `meta`: the lock, the startup check
/// (`progress(done, total)` while hashing), then [`Storage::prepare`]. With `overwrite`,
/// files of the torrent's names that are in the way are replaced (the user said so);
/// without it they are an [`Error::InTheWay`] and nothing is created.
pub fn open_download(
    dir: &Path,
    meta: Arc<Metainfo>,
    overwrite: bool,
    progress: impl FnMut(u32, u32),
) -> Result<Download, Error> {
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let lock = DownloadLock::acquire(dir, &meta)?;
    let storage = Storage::inspect(dir, meta.clone())?;
    let verified = resume::check_existing(dir, &meta, &storage, progress);
    let ours = resume::recorded_paths(dir, &meta);
    storage.prepare(&verified, |path| {
        overwrite || ours.iter().any(|p| p == path)
    })?;
    Ok(Download {
        storage: Arc::new(storage),
        verified,
        lock,
    })
}

/// Where a seed's content is, given `path`: the folder holding it (`path/<name>`, as
/// `download -o` leaves it) or the content itself (the torrent's file, or its folder under
/// any name). `None` if neither is there.
pub fn seed_content(path: &Path, meta: &Metainfo) -> Option<PathBuf> {
    let inside = path.join(&meta.info.name);
    if inside.exists() {
        return Some(inside);
    }
    let first = meta.info.files.iter().find(|f| !f.attr.padding)?;
    let rest = first.path.get(1..).unwrap_or(&[]);
    let is_content = if rest.is_empty() {
        path.is_file()
    } else {
        path.is_dir() && path.join(rest.iter().collect::<PathBuf>()).exists()
    };
    is_content.then(|| path.to_path_buf())
}

/// Opens `meta`'s content for seeding, read-only, creating nothing (see [`seed_content`]
/// for what `path` may be), and checks it (the resume record beside it if one is there and
/// still right, else every piece hashed; `progress(done, total)`). Fails unless every piece
/// verifies: a seed of a partial copy is a download.
pub fn open_seed(
    path: &Path,
    meta: Arc<Metainfo>,
    progress: impl FnMut(u32, u32),
) -> Result<(Arc<Storage>, Bitfield), Error> {
    let Some(content) = seed_content(path, &meta) else {
        return Err(Error::Io {
            path: path.join(&meta.info.name),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "not found (give the folder holding {:?} or the content itself)",
                    meta.info.name
                ),
            ),
        });
    };
    let storage = Storage::inspect_read_only(&content, meta.clone())?;
    let verified = resume::check_existing(storage.dir(), &meta, &storage, progress);
    let have = verified.count_ones();
    if have < meta.info.piece_count() {
        return Err(Error::Incomplete {
            path: content,
            have,
            total: meta.info.piece_count(),
        });
    }
    Ok((Arc::new(storage), verified))
}
