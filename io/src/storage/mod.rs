//! One torrent's files on disk: block writes and reads, piece hashing, `.part` names.
//!
//! [`Storage`] owns the files of one torrent below a download folder `DIR`: a single-file
//! torrent is `DIR/<name>`, a multi-file one `DIR/<name>/<path…>`. It maps the engine's
//! piece/offset requests onto those files through [`Layout::spans`] and does the IO with
//! positional calls (`pread`/`pwrite`), so any number of worker threads can share one
//! `Storage` (`&self` everywhere) with no seek position between them.
//!
//! Invariants and rules:
//!
//! - **Incomplete files never look finished.** A file is written under `<final name>.part`
//!   until the engine says every piece covering it is verified ([`Storage::file_completed`]);
//!   then it is fsynced and renamed. A file already present under its final name when the
//!   storage is opened (a seed's data, or a file completed in an earlier run) is used as it
//!   is, under that name. Zero-length files hold no piece data and get their final names at
//!   once.
//! - **What shoal did not create is not touched.** [`Storage::inspect`] creates nothing;
//!   [`Storage::prepare`] refuses whatever of the user's is in the way (a file of the same
//!   name whose pieces do not verify, a folder where a file goes) before creating anything,
//!   unless the caller has leave to replace it. An empty `.part` is taken as shoal's own:
//!   it holds nothing to lose, and a crash between creating a `.part` and setting its
//!   length leaves one. A seed's storage
//!   ([`Storage::inspect_read_only`]) opens every file read-only and never creates one.
//! - **Padding files (BEP 47) are never on disk.** Writes to them are dropped, reads of them
//!   give zeros, and their folders (`.pad/`) are not created.
//! - **Paths stay inside `DIR`.** The metainfo parser already refuses unsafe components;
//!   paths are still joined one checked component at a time, so a hand-built `Metainfo`
//!   cannot name `..`, an absolute path or a separator inside a component either.
//! - **Files are sparse, and at most [`DEFAULT_MAX_OPEN`] are open at once.** A missing
//!   file is created ([`Storage::create_missing`]) with `set_len` to its full length (no
//!   bytes written; the space of each [`ALLOCATE_CHUNK`] is allocated at the first write
//!   into it, see `allocate`), then closed; each file is (re)opened on its next read or
//!   write and kept open until the least recently used handle must make room for another
//!   ([`Storage::set_max_open`]), or until the process runs out of descriptors (an open
//!   failing with EMFILE closes the least recently used handle, lowers the bound and
//!   retries), so a torrent of tens of thousands of files works within any descriptor
//!   limit. A handle closed while IO through it is still running closes
//!   when that IO ends. A rename does not disturb an open handle, and opens and renames
//!   hold the same per-file lock, so a handle is never opened under a name that is being
//!   replaced. Written data lives in the page cache whether or not its handle stays open:
//!   `sync` and `file_completed` reopen a closed file to fsync it.
//! - **Data goes to disk as it comes, not all at the end.** Each time another
//!   [`FLUSH_EVERY`] bytes (or [`Storage::set_flush_every`]'s) have been written to a file, the thread whose write crossed the
//!   mark flushes the file's data (`fdatasync`). Without it the kernel holds a download of
//!   up to a tenth of RAM as dirty pages and writes nothing until the fsync before the final
//!   rename, which then waits for the whole file (a third of a warm 1 GiB download's time
//!   here); with it that fsync waits for the last few MiB, and a crash loses less.
//! - **Only real data is hashed.** [`Storage::verify_all`] skips pieces touching a file that
//!   is missing, has the wrong size, or was created empty by this `open` and not written
//!   since, so checking a fresh download does not read gigabytes of holes.
//!
//! Every method blocks on disk IO: call them from worker threads, never an event loop.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use sha1::{Digest, Sha1};
use shoal_core::bitfield::Bitfield;
use shoal_core::metainfo::Metainfo;
use shoal_core::storage::Layout;
use shoal_core::PieceIndex;

use crate::{lanes, Error};

mod allocate;
mod prepare;

pub use allocate::ALLOCATE_CHUNK;

/// The suffix an incomplete file carries on disk.
pub const PART_SUFFIX: &str = ".part";

/// How many files of one torrent a [`Storage`] keeps open by default, at most a quarter of
/// the process's descriptor limit (the rest is for sockets and other torrents): far above
/// what a download touches at once (the pieces in flight span a few files each).
pub const DEFAULT_MAX_OPEN: usize = 128;

/// [`DEFAULT_MAX_OPEN`], or a quarter of the soft `RLIMIT_NOFILE` if that is less (at
/// least 4).
fn default_max_open() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    limit.map_or(DEFAULT_MAX_OPEN, |l| {
        usize::try_from(l / 4).map_or(DEFAULT_MAX_OPEN, |q| q.clamp(4, DEFAULT_MAX_OPEN))
    })
}

/// Raises the process's soft descriptor limit to its hard limit (what a program serving
/// many peers and files wants; the usual soft limit is 1,024). Returns the new soft limit.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
        if soft < hard {
            limit.current = Some(hard);
            // Refused by a sandbox: keep the limit there is.
            let _ = setrlimit(Resource::Nofile, limit);
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The files of one torrent on disk. `Send + Sync`: share it between worker threads behind
/// an `Arc`.
#[derive(Debug)]
pub struct Storage {
    /// The download folder (where the resume record's folder goes).
    dir: PathBuf,
    /// Where the torrent's name maps to: `dir/<name>` unless a seed was given its content
    /// directly.
    content: PathBuf,
    /// Opened for seeding: no file is ever written, created or renamed.
    read_only: bool,
    meta: Arc<Metainfo>,
    layout: Layout,
    files: Vec<Slot>,
    /// The files holding a handle, and the bound on their number.
    open: Mutex<OpenSet>,
    /// Ticks on every handle use; a slot's `used` is the tick of its last use.
    clock: AtomicU64,
    /// A file's data is flushed each time this many more bytes were written to it (0:
    /// never before `sync`); [`FLUSH_EVERY`] unless set.
    flush_every: AtomicU64,
    /// How many such flushes there were.
    flushes: AtomicU64,
    /// Tests: reads still to fail as a failing disk's would ([`Storage::fail_reads`]).
    read_faults: AtomicU32,
    /// Whether the startup check trusted a resume record ([`Storage::record_vouched`]).
    vouched: AtomicBool,
}

#[derive(Debug)]
struct OpenSet {
    files: Vec<usize>,
    max: usize,
}

/// One entry of `Info::files`.
#[derive(Debug)]
struct Slot {
    final_path: PathBuf,
    part_path: PathBuf,
    length: u64,
    padding: bool,
    /// Whether the file is under its final name. The lock also serialises opens with the
    /// rename, so an open never looks for a name that has just gone.
    is_final: Mutex<bool>,
    /// The open handle, if any. Locked only for a moment (to clone or replace it), never
    /// across IO.
    handle: Mutex<Option<Arc<Handle>>>,
    /// `Storage::clock` at the last use of the handle (for closing the least recent).
    used: AtomicU64,
    /// Created empty by `open` and not written since: it holds no data yet.
    fresh: AtomicBool,
    /// Written since the last `sync`.
    dirty: AtomicBool,
    /// Bytes written since its data was last flushed (see [`FLUSH_EVERY`]).
    unflushed: AtomicU64,
    /// Its chunks whose space was allocated (see `allocate`).
    chunks: allocate::Chunks,
}

/// A file's data is flushed each time this many more bytes have been written to it (see
/// the module doc): large enough that the flushes cost little (a few per GiB), small enough
/// that the final fsync is short and a disk is kept busy while the download runs.
pub const FLUSH_EVERY: u64 = 32 << 20;

#[derive(Debug)]
struct Handle {
    file: File,
    /// False when the file could only be opened read-only (a seed's data on a read-only
    /// folder or file): seeding works, a write reports the path and "permission denied".
    writable: bool,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, bool> {
        // The guarded bool is written only after the rename succeeded; a panic elsewhere
        // cannot leave it half-changed.
        self.is_final.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handle_slot(&self) -> MutexGuard<'_, Option<Arc<Handle>>> {
        // Holds an Option replaced whole: never half-changed either.
        self.handle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self) -> Option<Arc<Handle>> {
        self.handle_slot().clone()
    }

    fn path_for(&self, is_final: bool) -> &Path {
        if is_final {
            &self.final_path
        } else {
            &self.part_path
        }
    }

    /// The file's name on disk right now.
    fn current_path(&self) -> PathBuf {
        self.path_for(*self.lock()).to_path_buf()
    }

    fn io_error(&self, source: io::Error) -> Error {
        Error::Io {
            path: self.current_path(),
            source,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a file for reading and writing, or for reading only where writing is refused (a
/// seed's data on a read-only folder or file: seeding works, a write reports the path and
/// "permission denied").
fn open_handle(path: &Path, read_only: bool) -> Result<Handle, Error> {
    if read_only {
        let file = File::open(path).map_err(io_at(path))?;
        return Ok(Handle {
            file,
            writable: false,
        });
    }
    let handle = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => Handle {
            file,
            writable: true,
        },
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            let file = File::open(path).map_err(io_at(path))?;
            Handle {
                file,
                writable: false,
            }
        }
        Err(e) => return Err(io_at(path)(e)),
    };
    Ok(handle)
}

/// EMFILE or ENFILE: the process or the system has no descriptor left.
fn is_out_of_descriptors(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::MFILE.raw_os_error())
        || code == Some(rustix::io::Errno::NFILE.raw_os_error())
}

/// Whether something exists at `path` (following links); other errors than "not found"
/// (permission, IO) are errors, not absence.
fn exists(path: &Path) -> Result<bool, Error> {
    Ok(!matches!(kind(path)?, Kind::Missing))
}

/// What is at a path (following links).
enum Kind {
    Missing,
    /// A regular file of this length.
    File(u64),
    /// Anything else, described for a message ("a folder", "a special file").
    Other(&'static str),
}

fn kind(path: &Path) -> Result<Kind, Error> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Kind::File(m.len())),
        Ok(m) if m.is_dir() => Ok(Kind::Other("a folder")),
        Ok(_) => Ok(Kind::Other("a special file")),
        // A component of the path is a file: nothing can be at the path itself.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(Kind::Missing)
        }
        Err(e) => Err(io_at(path)(e)),
    }
}

/// `dir` joined with `components`, each of which must be one plain file name.
fn join_safe(dir: &Path, components: &[String]) -> Result<PathBuf, Error> {
    let mut path = dir.to_path_buf();
    for c in components {
        let mut parts = Path::new(c).components();
        let plain = matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(n)), None) if n == OsStr::new(c)
        );
        if !plain || c.contains('\0') {
            return Err(Error::UnsafePath {
                path: components.join("/"),
            });
        }
        path.push(c);
    }
    Ok(path)
}

fn part_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(PART_SUFFIX);
    PathBuf::from(name)
}

/// fsyncs a folder so a rename or a creation inside it survives a crash. Best effort: some
/// file systems refuse to fsync folders, and the data itself is already safe.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `pwritev` until every slice is written (a short write is resumed, not an error).
fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [IoSlice<'_>],
    mut offset: u64,
) -> io::Result<()> {
    while !slices.is_empty() {
        match rustix::io::pwritev(file, slices, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Storage {
    /// Opens the files of `meta` below `dir`, creating the folders and the `.part` files
    /// of those missing under both names: [`inspect`](Self::inspect), then
    /// [`create_missing`](Self::create_missing). A file found under its final name is used
    /// as it is; nothing is renamed or truncated. For a folder shoal owns (tests, the demo);
    /// a user's download goes through [`prepare`](Self::prepare), which first makes sure
    /// nothing of the user's is in the way.
    pub fn open(dir: &Path, meta: Arc<Metainfo>) -> Result<Storage, Error> {
        let storage = Storage::inspect(dir, meta)?;
        storage.create_missing()?;
        Ok(storage)
    }

    /// Looks at the files of `meta` below `dir` and creates nothing: a file is under its
    /// final name if something is there, else under its `.part` name (which may not
    /// exist yet). Reads of missing files fail; [`verify_all`](Self::verify_all) skips them.
    pub fn inspect(dir: &Path, meta: Arc<Metainfo>) -> Result<Storage, Error> {
        let content = join_safe(dir, std::slice::from_ref(&meta.info.name))?;
        Storage::build(dir, &content, meta, false)
    }

    /// A seed's view of content that is already complete at `content` (the torrent's file,
    /// or its folder, whatever its own name): every file is opened read-only and nothing is
    /// ever created, renamed or written. Files missing or of the wrong size just do not
    /// verify.
    pub fn inspect_read_only(content: &Path, meta: Arc<Metainfo>) -> Result<Storage, Error> {
        let dir = content.parent().unwrap_or(Path::new("."));
        Storage::build(dir, content, meta, true)
    }

    fn build(
        dir: &Path,
        content: &Path,
        meta: Arc<Metainfo>,
        read_only: bool,
    ) -> Result<Storage, Error> {
        let layout = Layout::new(&meta.info).map_err(Error::Layout)?;
        let mut files = Vec::with_capacity(meta.info.files.len());
        for entry in &meta.info.files {
            // The first component is the torrent's name: `content` stands for it.
            let final_path = join_safe(content, entry.path.get(1..).unwrap_or(&[]))?;
            let part_path = part_name(&final_path);
            let padding = entry.attr.padding;
            let is_final = !padding && exists(&final_path)?;
            files.push(Slot {
                final_path,
                part_path,
                length: entry.length,
                padding,
                is_final: Mutex::new(is_final),
                handle: Mutex::new(None),
                used: AtomicU64::new(0),
                fresh: AtomicBool::new(false),
                dirty: AtomicBool::new(false),
                unflushed: AtomicU64::new(0),
                chunks: allocate::Chunks::new(entry.length, ALLOCATE_CHUNK),
            });
        }
        Ok(Storage {
            dir: dir.to_path_buf(),
            content: content.to_path_buf(),
            read_only,
            meta,
            layout,
            files,
            open: Mutex::new(OpenSet {
                files: Vec::new(),
                max: default_max_open(),
            }),
            clock: AtomicU64::new(0),
            flush_every: AtomicU64::new(FLUSH_EVERY),
            flushes: AtomicU64::new(0),
            read_faults: AtomicU32::new(0),
            vouched: AtomicBool::new(false),
        })
    }

    /// Sets how many of the torrent's files may be open at once (at least 1). Handles
    /// beyond the new bound close as other files are opened.
    pub fn set_max_open(&self, max: usize) {
        self.open_set().max = max.max(1);
    }

    /// Sets after how many bytes written to a file its data is flushed (see
    /// [`FLUSH_EVERY`], the default); 0 leaves everything to `sync` and `file_completed`.
    pub fn set_flush_every(&self, bytes: u64) {
        self.flush_every.store(bytes, Ordering::Relaxed);
    }

    /// Sets how many bytes of a file are allocated at the first write into them (see
    /// [`ALLOCATE_CHUNK`], the default); 0 leaves every file sparse.
    pub fn set_allocate_chunk(&mut self, bytes: u64) {
        for slot in &mut self.files {
            slot.chunks = allocate::Chunks::new(slot.length, bytes);
        }
    }

    /// How many times a file's data was flushed because another `flush_every` bytes had
    /// been written to it.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// How many files hold an open handle now.
    pub fn open_files(&self) -> usize {
        self.open_set().files.len()
    }

    fn open_set(&self) -> MutexGuard<'_, OpenSet> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The download folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the torrent's content is: its single file, or its folder.
    pub fn content(&self) -> &Path {
        &self.content
    }

    /// Whether the storage was opened for seeding only ([`inspect_read_only`](Self::inspect_read_only)).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn meta(&self) -> &Arc<Metainfo> {
        &self.meta
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where `file` lives on disk now: its final name or its `.part` name. `None` for a
    /// padding file (never on disk) or a file the torrent does not have.
    pub fn path(&self, file: usize) -> Option<PathBuf> {
        self.files
            .get(file)
            .filter(|s| !s.padding)
            .map(Slot::current_path)
    }

    /// Whether `file` is under its final name (`false` for padding and unknown files).
    pub fn is_file_final(&self, file: usize) -> bool {
        self.files
            .get(file)
            .is_some_and(|s| !s.padding && *s.lock())
    }

    /// The file's handle, opened if it is not (closing the least recently used one if
    /// that makes one too many).
    fn handle(&self, file: usize) -> Result<Arc<Handle>, Error> {
        let slot = &self.files[file];
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        slot.used.store(tick, Ordering::Relaxed);
        if let Some(h) = slot.cached() {
            return Ok(h);
        }
        let is_final = slot.lock();
        self.handle_locked(file, *is_final)
    }

    /// [`handle`](Self::handle) for a caller holding the file's name lock (`is_final` is
    /// what it guards).
    fn handle_locked(&self, file: usize, is_final: bool) -> Result<Arc<Handle>, Error> {
        let slot = &self.files[file];
        if let Some(h) = slot.cached() {
            return Ok(h);
        }
        let path = slot.path_for(is_final);
        let handle = loop {
            match open_handle(path, self.read_only) {
                // The process is out of descriptors (a low `ulimit -n`, or other torrents
                // and sockets hold them): give back one of ours and lower our bound.
                Err(Error::Io { source, .. })
                    if is_out_of_descriptors(&source) && self.close_one(file) => {}
                result => break Arc::new(result?),
            }
        };
        *slot.handle_slot() = Some(handle.clone());
        self.opened(file);
        Ok(handle)
    }

    /// Closes the least recently used handle other than `file`'s and bounds the open set
    /// to what is left. False when there is none to close.
    fn close_one(&self, file: usize) -> bool {
        let mut set = self.open_set();
        let closed = self.close_least_recent(&mut set, file);
        set.max = set.files.len().max(1);
        closed
    }

    /// Closes the handle of the file in `set` used least recently, `except` aside (lock
    /// order: the open set, then a slot's handle; `handle_locked` never holds a slot's
    /// handle lock while it takes the open set's). False when there is none.
    fn close_least_recent(&self, set: &mut OpenSet, except: usize) -> bool {
        let victim = set
            .files
            .iter()
            .enumerate()
            .filter(|&(_, &f)| f != except)
            .min_by_key(|&(_, &f)| self.files[f].used.load(Ordering::Relaxed))
            .map(|(at, _)| at);
        let Some(at) = victim else {
            return false;
        };
        let file = set.files.swap_remove(at);
        self.files[file].handle_slot().take();
        true
    }

    /// Notes that `file` holds a handle now, and closes the least recently used others
    /// beyond the bound.
    fn opened(&self, file: usize) {
        let mut set = self.open_set();
        set.files.push(file);
        while set.files.len() > set.max && self.close_least_recent(&mut set, file) {}
    }

    /// Refuses a range that is not inside one existing piece.
    fn check_range(&self, piece: PieceIndex, begin: u32, len: usize) -> Result<u32, Error> {
        let size = self.layout.piece_size(piece);
        let ok =
            piece.0 < self.layout.piece_count() && u64::from(begin) + len as u64 <= u64::from(size);
        if ok {
            // Inside a piece, so it fits a u32.
            Ok(len as u32)
        } else {
            Err(Error::OutOfRange {
                piece: piece.0,
                begin,
                len: len as u64,
            })
        }
    }

    /// Writes `data` at byte `begin` of `piece`, across as many files as it covers. The
    /// range must lie inside the piece. Bytes that fall in padding files are dropped.
    pub fn write_block(&self, piece: PieceIndex, begin: u32, data: &[u8]) -> Result<(), Error> {
        let len = self.check_range(piece, begin, data.len())?;
        let mut at = 0usize;
        for span in self.layout.spans(piece, begin, len) {
            let chunk = &data[at..at + span.len as usize];
            at += span.len as usize;
            if span.padding {
                continue;
            }
            self.write_file(span.file, span.file_offset, u64::from(span.len), |f| {
                f.write_all_at(chunk, span.file_offset)
            })?;
        }
        Ok(())
    }

    /// One write of `len` bytes at `offset` of `file` (through `write`), with the
    /// bookkeeping every write needs: refused on a read-only handle, the space of the chunks
    /// it reaches allocated (see `allocate`), the file no longer fresh, marked for
    /// `sync`, and its data flushed each time another [`FLUSH_EVERY`] bytes have been
    /// written to it.
    fn write_file(
        &self,
        file: usize,
        offset: u64,
        len: u64,
        write: impl FnOnce(&File) -> io::Result<()>,
    ) -> Result<(), Error> {
        let slot = &self.files[file];
        let h = self.handle(file)?;
        if !h.writable {
            return Err(slot.io_error(io::Error::from(io::ErrorKind::PermissionDenied)));
        }
        slot.chunks.reach(&h.file, slot.length, offset, len);
        // Cleared before the write: a concurrent verify must not skip a file that may
        // already hold data.
        slot.fresh.store(false, Ordering::Relaxed);
        let written = write(&h.file);
        // Marked after the write: a `sync` that clears the mark before this point leaves
        // it set for the next one, so no write is ever missed.
        slot.dirty.store(true, Ordering::Release);
        written.map_err(|e| slot.io_error(e))?;
        // The write that crosses the mark flushes; the count starts again before the
        // flush, so writes landing during it count towards the next one.
        let every = self.flush_every.load(Ordering::Relaxed);
        let before = slot.unflushed.fetch_add(len, Ordering::Relaxed);
        if every > 0 && before < every && before + len >= every {
            slot.unflushed.store(0, Ordering::Relaxed);
            self.flushes.fetch_add(1, Ordering::Relaxed);
            h.file.sync_data().map_err(|e| slot.io_error(e))?;
        }
        Ok(())
    }

    /// Writes consecutive blocks of `piece` (sorted, each starting where the previous
    /// ended) with one vectored write per file they span, instead of one write per block.
    pub fn write_blocks(&self, piece: PieceIndex, blocks: &[(u32, Bytes)]) -> Result<(), Error> {
        let Some(&(start, _)) = blocks.first() else {
            return Ok(());
        };
        let total: usize = blocks.iter().map(|(_, b)| b.len()).sum();
        let len = self.check_range(piece, start, total)?;
        let contiguous = blocks
            .windows(2)
            .all(|w| w[0].0 as usize + w[0].1.len() == w[1].0 as usize);
        if !contiguous {
            for (begin, data) in blocks {
                self.write_block(piece, *begin, data)?;
            }
            return Ok(());
        }
        // `cursor` walks the blocks as the spans consume them: (block index, offset in it).
        let mut cursor = (0usize, 0usize);
        for span in self.layout.spans(piece, start, len) {
            let mut slices: Vec<IoSlice<'_>> = Vec::new();
            let mut need = span.len as usize;
            while need > 0 {
                let data = &blocks[cursor.0].1;
                let take = need.min(data.len() - cursor.1);
                slices.push(IoSlice::new(&data[cursor.1..cursor.1 + take]));
                need -= take;
                cursor.1 += take;
                if cursor.1 == data.len() {
                    cursor = (cursor.0 + 1, 0);
                }
            }
            if span.padding {
                continue;
            }
            self.write_file(span.file, span.file_offset, u64::from(span.len), |f| {
                write_all_vectored_at(f, &mut slices, span.file_offset)
            })?;
        }
        Ok(())
    }

    /// Whether the startup check ([`check_existing`](crate::check_existing)) took the
    /// verified pieces from a resume record it trusted, hashing nothing: then that record
    /// need not be written again until pieces change.
    pub fn record_vouched(&self) -> bool {
        self.vouched.load(Ordering::Relaxed)
    }

    pub(crate) fn set_record_vouched(&self) {
        self.vouched.store(true, Ordering::Relaxed);
    }

    /// Tests: the next `count` reads from a file fail with an IO error (EIO), as a
    /// failing disk's would.
    pub fn fail_reads(&self, count: u32) {
        self.read_faults.store(count, Ordering::Relaxed);
    }

    /// Reads `buf.len()` bytes at byte `begin` of `piece` into `buf` (zeros for padding).
    /// The range must lie inside the piece.
    pub fn read_block_into(
        &self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<(), Error> {
        let len = self.check_range(piece, begin, buf.len())?;
        let mut at = 0usize;
        for span in self.layout.spans(piece, begin, len) {
            let chunk = &mut buf[at..at + span.len as usize];
            at += span.len as usize;
            if span.padding {
                chunk.fill(0);
                continue;
            }
            let slot = &self.files[span.file];
            if self.read_faults.load(Ordering::Relaxed) > 0
                && self
                    .read_faults
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                const EIO: i32 = 5;
                return Err(slot.io_error(io::Error::from_raw_os_error(EIO)));
            }
            let h = self.handle(span.file)?;
            h.file.read_exact_at(chunk, span.file_offset).map_err(|e| {
                slot.io_error(if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(e.kind(), "the file is shorter than the torrent says")
                } else {
                    e
                })
            })?;
        }
        Ok(())
    }

    /// Reads `len` bytes at byte `begin` of `piece` (`bytes::Bytes::from` takes the vector
    /// without copying).
    pub fn read_block(&self, piece: PieceIndex, begin: u32, len: u32) -> Result<Vec<u8>, Error> {
        self.check_range(piece, begin, len as usize)?;
        let mut buf = vec![0u8; len as usize];
        self.read_block_into(piece, begin, &mut buf)?;
        Ok(buf)
    }

    /// The SHA-1 of a piece as it is on disk now.
    pub fn hash_piece(&self, piece: PieceIndex) -> Result<[u8; 20], Error> {
        let mut buf = Vec::new();
        self.hash_piece_with(piece, &mut buf)
    }

    /// Whether the piece on disk matches the torrent's hash for it.
    pub fn verify_piece(&self, piece: PieceIndex) -> Result<bool, Error> {
        let hash = self.hash_piece(piece)?;
        Ok(self.meta.info.piece_hash(piece) == Some(&hash))
    }

    fn hash_piece_with(&self, piece: PieceIndex, buf: &mut Vec<u8>) -> Result<[u8; 20], Error> {
        let size = self.layout.piece_size(piece);
        self.check_range(piece, 0, size as usize)?;
        buf.resize(size as usize, 0);
        self.read_block_into(piece, 0, buf)?;
        Ok(Sha1::digest(&buf[..]).into())
    }

    /// Whether a non-padding `file` can hold its data: it exists with exactly its length and
    /// is not one this storage created empty.
    fn holds_data(&self, file: usize) -> bool {
        let slot = &self.files[file];
        if slot.padding || slot.length == 0 {
            return true;
        }
        if slot.fresh.load(Ordering::Relaxed) {
            return false;
        }
        fs::metadata(slot.current_path()).is_ok_and(|m| m.len() == slot.length)
    }

    /// Hashes every piece whose files are all present with the right sizes and returns the
    /// pieces that match the torrent. Pieces touching a missing, wrongly sized or freshly
    /// created file, and pieces that cannot be read, are simply not in the result: missing
    /// data is never an error here. `progress(done, total)` is called after each piece.
    ///
    /// Pieces are read a batch at a time (up to [`lanes::LANES`] of them,
    /// [`lanes::BATCH_BYTES`] at most unless one piece is larger) and each batch hashed at
    /// once ([`lanes`]).
    pub fn verify_all(&self, mut progress: impl FnMut(u32, u32)) -> Bitfield {
        let total = self.layout.piece_count();
        let mut verified = Bitfield::new(total);
        let usable: Vec<bool> = (0..self.files.len()).map(|f| self.holds_data(f)).collect();
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        let mut piece = 0;
        while piece < total {
            // The next batch: each piece, and whether it could be read (into `bufs`, at its
            // place in the batch).
            let mut batch: Vec<(u32, bool)> = Vec::new();
            let mut bytes = 0;
            while piece < total && batch.len() < lanes::LANES {
                let size = self.layout.piece_size(PieceIndex(piece)) as usize;
                if !batch.is_empty() && bytes + size > lanes::BATCH_BYTES {
                    break;
                }
                let p = PieceIndex(piece);
                if bufs.len() <= batch.len() {
                    bufs.push(Vec::new());
                }
                let buf = &mut bufs[batch.len()];
                let read = self.layout.files_of_piece(p).all(|f| usable[f]) && {
                    buf.resize(size, 0);
                    self.read_block_into(p, 0, buf).is_ok()
                };
                batch.push((piece, read));
                bytes += size;
                piece += 1;
            }
            let (pieces, read): (Vec<u32>, Vec<&[u8]>) = batch
                .iter()
                .zip(&bufs)
                .filter(|((_, read), _)| *read)
                .map(|((piece, _), buf)| (*piece, buf.as_slice()))
                .unzip();
            for (piece, hash) in pieces.into_iter().zip(lanes::digests_of_buffers(&read)) {
                if self.meta.info.piece_hash(PieceIndex(piece)) == Some(&hash) {
                    verified.set(piece);
                }
            }
            for (piece, _) in &batch {
                progress(piece + 1, total);
            }
        }
        verified
    }

    /// Makes a complete file final: fsyncs its data, gives it the exact length, renames it
    /// from `.part` to its final name and fsyncs the folder. Call it when every piece
    /// covering the file is verified (the engine's FileCompleted). A file already final is
    /// only fsynced; padding files are ignored.
    pub fn file_completed(&self, file: usize) -> Result<(), Error> {
        let Some(slot) = self.files.get(file) else {
            return Err(Error::NoSuchFile { file });
        };
        if slot.padding {
            return Ok(());
        }
        let mut is_final = slot.lock();
        if *is_final && !slot.dirty.load(Ordering::Acquire) && slot.cached().is_none() {
            // Complete under its name when opened, not written since (a seed's file): no
            // reason to open it now.
            return Ok(());
        }
        let path = slot.path_for(*is_final).to_path_buf();
        // Written in this run or an earlier one, through a handle still open or since
        // closed: the data must be durable before the name says it is complete.
        let h = self.handle_locked(file, *is_final)?;
        // Cleared before the fsync, as in `sync`: a write landing meanwhile keeps it set.
        slot.dirty.store(false, Ordering::Release);
        if let Err(e) = h.file.sync_all() {
            slot.dirty.store(true, Ordering::Release);
            return Err(io_at(&path)(e));
        }
        if h.writable {
            // A final-named file found at open may have been longer than the torrent
            // says; its verified content is exactly the first `length` bytes.
            let len = h.file.metadata().map_err(io_at(&path))?.len();
            if len != slot.length {
                h.file.set_len(slot.length).map_err(io_at(&path))?;
                h.file.sync_all().map_err(io_at(&path))?;
            }
        }
        if *is_final {
            return Ok(());
        }
        fs::rename(&slot.part_path, &slot.final_path).map_err(io_at(&slot.part_path))?;
        *is_final = true;
        if let Some(parent) = slot.final_path.parent() {
            sync_dir(parent);
        }
        Ok(())
    }

    /// fsyncs every file written since the last `sync` (data and metadata, so the sizes and
    /// modification times a resume record notes are the ones on disk).
    pub fn sync(&self) -> Result<(), Error> {
        for (file, slot) in self.files.iter().enumerate() {
            if !slot.dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            // Its handle may have been closed since the write; the data is in the page
            // cache all the same, and an fsync through a new handle flushes it.
            let synced = slot
                .cached()
                .map_or_else(
                    || {
                        let is_final = slot.lock();
                        self.handle_locked(file, *is_final)
                    },
                    Ok,
                )
                .and_then(|h| h.file.sync_all().map_err(|e| slot.io_error(e)));
            if let Err(e) = synced {
                slot.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The files as the resume record notes them: index, on-disk path relative to
    /// [`dir`](Self::dir) (final or `.part`), the full path, for every file that holds
    /// piece data (not padding, not zero-length).
    pub(crate) fn data_files(&self) -> impl Iterator<Item = (usize, Vec<String>, PathBuf)> + '_ {
        self.meta
            .info
            .files
            .iter()
            .zip(&self.files)
            .enumerate()
            .filter(|(_, (_, s))| !s.padding && s.length > 0)
            .map(|(i, (entry, slot))| {
                let mut path = entry.path.clone();
                let is_final = *slot.lock();
                if !is_final {
                    if let Some(last) = path.last_mut() {
                        last.push_str(PART_SUFFIX);
                    }
                }
                (i, path, slot.path_for(is_final).to_path_buf())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Storage>();
    }

    #[test]
    fn unsafe_components_are_refused() {
        let dir = Path::new("/tmp/x");
        for bad in ["..", ".", "", "a/b", "/etc", "a\0b"] {
            let e = join_safe(dir, &["t".into(), bad.into()]).unwrap_err();
            assert!(matches!(e, Error::UnsafePath { .. }), "{bad:?}: {e}");
        }
        assert_eq!(
            join_safe(dir, &["t".into(), "a b".into(), "c.txt".into()]).unwrap(),
            Path::new("/tmp/x/t/a b/c.txt")
        );
    }
}
