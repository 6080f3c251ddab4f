//! The one dispatcher of the engine's disk outputs, shared by both runtimes.
//!
//! The engine asks for block reads, block writes, piece hashes and, through its events,
//! for files to get their final names; a runtime owes it the answers. How each output
//! becomes disk work is the same whatever moves the bytes, so it is written once here:
//! a [`Dispatcher`] takes the engine's outputs ([`Dispatcher::carry_out`]), stages
//! downloaded blocks in each torrent's [`WriteBack`], serves reads from the
//! [`ReadAhead`], and turns the rest into [`DiskJob`]s for the runtime's workers; the
//! workers' results ([`DiskDone`]) come back through [`Dispatcher::done`]. What the
//! user should hear of (a file under its final name, the torrent complete, a storage
//! failure) comes out as [`DiskEvent`]s. It also keeps the resume-save cadence: a
//! torrent's record is saved every `resume_interval` while its verified pieces change.
//!
//! A runtime moves bytes, timers and events: it gives every output to
//! [`Dispatcher::carry_out`], carries out what comes back (connections, datagrams, HTTP,
//! user events), runs [`Dispatcher::take_jobs`] on its workers with [`DiskJob::run`],
//! and hands each result back. No IO happens here: staging is memory work, so all of this
//! runs on the runtime's event loop.
//!
//! Invariants: a torrent's write-back cache is used while the torrent is here; when a
//! torrent leaves the engine ([`Dispatcher::remove`]: removed, paused, stopped) its staged
//! blocks and read-ahead chunks leave the budget at once, even while jobs in flight still
//! hold the cache. A hash job takes its pieces' blocks out of the cache when it starts,
//! so a piece that fails its hash, or cannot be read back, leaves nothing staged.
//!
//! Hashes are asked for together. Where the processor hashes many pieces at once
//! ([`lanes`]), a torrent's hash requests wait until [`LANES`] of them are
//! here, or half the write-back bound in bytes (or the caches of all torrents are three
//! quarters full), or the oldest has waited [`HASH_GATHER`]
//! (a runtime wakes for that: [`Dispatcher::poll_timeout`], then
//! [`Dispatcher::hashes_due`]); one job hashes them all. A verified piece is announced at
//! most that much later, and its hash costs about a third of the CPU it did alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::bitfield::Bitfield;
use shoal_core::engine::{Engine, Event, Output, TorrentId};
use shoal_core::IoError;

use crate::budget::DiskBudget;
use crate::jobs::{write_block, BlockPlan, PieceDone, PieceJob, Renames};
use crate::lanes::{self, LANES};
use crate::readahead::{ReadAhead, ReadPlan};
use crate::{Storage, WriteBack};
use shoal_core::PieceIndex;

/// How often a torrent's resume record is saved while its verified pieces change.
pub const RESUME_INTERVAL: Duration = Duration::from_secs(30);

/// How long a hash request waits, at most, for others to be hashed with (see the module
/// docs). A fast download gathers [`LANES`] pieces well within it (16 pieces of 256 KiB
/// arrive in 8 ms at 500 MB/s); a slow one hashes what it has when it is up.
pub const HASH_GATHER: Duration = Duration::from_millis(20);

/// How often the dispatcher looks for records due (a look costs a pass over the
/// torrents: once a second, not every turn of a busy loop).
const SAVE_CHECK: Duration = Duration::from_secs(1);

/// Disk work for a runtime's worker thread.
pub enum DiskJob {
    /// A block read, a block write or a piece hash.
    Piece(PieceJob),
    /// Every piece of a file is verified: give it its final name.
    FileCompleted { file: usize, storage: Arc<Storage> },
    /// Sync the files, then write the resume record for `verified` in the storage's
    /// folder.
    Save {
        verified: Bitfield,
        storage: Arc<Storage>,
    },
}

/// What a [`DiskJob`] came to.
pub enum DiskDone {
    Piece(PieceDone),
    FileCompleted {
        file: usize,
        result: Result<(), IoError>,
    },
    Saved(Result<(), String>),
}

impl DiskJob {
    /// Does the job (blocking).
    pub fn run(self) -> DiskDone {
        match self {
            DiskJob::Piece(job) => DiskDone::Piece(job.run()),
            DiskJob::FileCompleted { file, storage } => DiskDone::FileCompleted {
                file,
                result: storage.file_completed(file).map_err(IoError::from),
            },
            DiskJob::Save { verified, storage } => {
                DiskDone::Saved(save_record(&storage, &verified).map_err(|e| e.to_string()))
            }
        }
    }
}

/// Syncs a torrent's files, then writes its resume record for `verified` (blocking).
pub fn save_record(storage: &Storage, verified: &Bitfield) -> Result<(), crate::Error> {
    storage.sync()?;
    crate::resume::save(storage.dir(), storage.meta(), verified, storage)
}

/// What the user hears of from the disk side, under the runtime's key `K`.
#[derive(Debug)]
pub enum DiskEvent<K> {
    /// A file has its final name.
    FileCompleted { torrent: K, file: usize },
    /// The torrent is complete and every file has its final name.
    Completed { torrent: K },
    /// A file could not be written, read back or renamed.
    StorageError { torrent: K, error: IoError },
    /// A resume record was saved, or why not.
    Saved {
        torrent: K,
        result: Result<(), String>,
    },
}

/// One torrent's disk side.
struct Disk<K> {
    key: K,
    storage: Arc<Storage>,
    cache: Arc<WriteBack>,
    /// When its record was last saved, and with how many pieces.
    last_save: Instant,
    saved_pieces: Option<u32>,
    /// Hash requests waiting to be hashed together, and their bytes.
    hashes: Vec<(PieceIndex, [u8; 20])>,
    hash_bytes: usize,
}

/// The pieces of the resume record a torrent starts from (`verified`), for
/// [`Dispatcher::add`]: their count if a record vouched for them at the startup check
/// ([`Storage::record_vouched`]), else `None`, so that a record is saved once the resume
/// interval has passed (the pieces found by a full check are on record then, and a torrent
/// that starts from its record is not saved again for nothing).
pub fn saved_pieces(storage: &Storage, verified: Option<&Bitfield>) -> Option<u32> {
    verified
        .filter(|_| storage.record_vouched())
        .map(Bitfield::count_ones)
}

/// Engine outputs to disk jobs, for every torrent of one engine; see the module docs.
/// `K` is what the runtime names torrents by.
pub struct Dispatcher<K> {
    budget: Arc<DiskBudget>,
    read_ahead: ReadAhead,
    renames: Renames<K>,
    torrents: BTreeMap<TorrentId, Disk<K>>,
    jobs: Vec<(K, DiskJob)>,
    events: Vec<DiskEvent<K>>,
    resume_interval: Option<Duration>,
    next_save_check: Option<Instant>,
    /// How long hash requests wait for others; `None`: not at all.
    hash_gather: Option<Duration>,
    /// The torrents with hash requests waiting, and since when the oldest has: a turn of
    /// the loop looks at these (few, usually none), not at every torrent.
    gathering: BTreeMap<TorrentId, Instant>,
}

impl<K: Copy + Eq + std::hash::Hash> Dispatcher<K> {
    /// Bytes on their way to disk count in `budget`; `read_ahead` bytes at most are kept
    /// of chunks read ahead for peers; records are saved every [`RESUME_INTERVAL`].
    pub fn new(budget: Arc<DiskBudget>, read_ahead: usize) -> Dispatcher<K> {
        Dispatcher {
            budget,
            read_ahead: ReadAhead::new(read_ahead),
            renames: Renames::default(),
            torrents: BTreeMap::new(),
            jobs: Vec::new(),
            events: Vec::new(),
            resume_interval: Some(RESUME_INTERVAL),
            next_save_check: None,
            hash_gather: lanes::lanes_available().then_some(HASH_GATHER),
            gathering: BTreeMap::new(),
        }
    }

    /// How long a hash request may wait for others to be hashed with; `None`: each is
    /// hashed at once. [`HASH_GATHER`] where the processor has the lanes, else `None`.
    pub fn set_hash_gather(&mut self, wait: Option<Duration>) {
        self.hash_gather = wait;
    }

    /// The budget of bytes on their way to disk.
    pub fn budget(&self) -> &Arc<DiskBudget> {
        &self.budget
    }

    /// A new budget, for torrents added from now on.
    pub fn set_budget(&mut self, budget: Arc<DiskBudget>) {
        self.budget = budget;
    }

    /// How often records are saved while pieces change; `None`: only when asked
    /// ([`Dispatcher::save`]).
    pub fn set_resume_interval(&mut self, interval: Option<Duration>) {
        self.resume_interval = interval;
    }

    /// Engine torrent `id` (the runtime's `key`) has its files in `storage`; it starts
    /// from a record of `saved` verified pieces (none: no record), saved `now`.
    pub fn add(
        &mut self,
        id: TorrentId,
        key: K,
        storage: Arc<Storage>,
        saved: Option<u32>,
        now: Instant,
    ) {
        let cache = Arc::new(WriteBack::new(self.budget.clone()));
        self.torrents.insert(
            id,
            Disk {
                key,
                storage,
                cache,
                last_save: now,
                saved_pieces: saved,
                hashes: Vec::new(),
                hash_bytes: 0,
            },
        );
    }

    /// Torrent `id` left the engine: its staged blocks and read-ahead chunks are dropped
    /// (jobs in flight finish, and their answers are ignored by the engine). Renames under
    /// way still end with their events ([`Dispatcher::forget_renames`] drops them).
    pub fn remove(&mut self, id: TorrentId) -> Option<Arc<Storage>> {
        self.read_ahead.forget(id);
        self.gathering.remove(&id);
        let disk = self.torrents.remove(&id)?;
        // Jobs in flight may hold the cache a while: what it staged leaves the budget now.
        disk.cache.discard_all();
        Some(disk.storage)
    }

    /// Nothing more is told of `key`'s renames under way.
    pub fn forget_renames(&mut self, key: K) {
        self.renames.forget(key);
    }

    /// Whether files of `key` are being given their final names (see [`Renames::pending`]).
    pub fn renaming(&self, key: K) -> bool {
        self.renames.pending(key)
    }

    /// The storage of torrent `id`.
    pub fn storage(&self, id: TorrentId) -> Option<&Arc<Storage>> {
        self.torrents.get(&id).map(|d| &d.storage)
    }

    /// Carries out `out` if it is the disk's (answering the engine at once where it can);
    /// gives it back otherwise: connections, datagrams, HTTP and user events are the
    /// runtime's.
    pub fn carry_out(&mut self, engine: &mut Engine, out: Output, now: Instant) -> Option<Output> {
        match out {
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => {
                let disk = self.torrents.get(&torrent)?;
                match self
                    .read_ahead
                    .read_block(torrent, conn, block, &disk.storage)
                {
                    ReadPlan::Ready(input) => engine.handle(input, now),
                    ReadPlan::Waiting => {}
                    ReadPlan::Job(job) => self.jobs.push((disk.key, DiskJob::Piece(job))),
                }
            }
            Output::WriteBlock {
                torrent,
                block,
                data,
            } => {
                let disk = self.torrents.get(&torrent)?;
                // Staged in memory until the piece is hashed: no disk work on the loop,
                // and the block counts as written at once. Past the cache's limit, a
                // worker writes it.
                match write_block(torrent, block, data, &disk.storage, &disk.cache) {
                    BlockPlan::Staged(input) => engine.handle(input, now),
                    BlockPlan::Job(job) => self.jobs.push((disk.key, DiskJob::Piece(job))),
                }
            }
            Output::HashPiece {
                torrent,
                piece,
                expected,
            } => {
                let disk = self.torrents.get_mut(&torrent)?;
                disk.hashes.push((piece, expected));
                self.gathering.entry(torrent).or_insert(now);
                disk.hash_bytes += disk.storage.layout().piece_size(piece) as usize;
                // Waiting pieces hold their staged blocks: past half the write-back bound
                // for one torrent, or with the caches of all three-quarters full, hashing
                // them now makes room sooner than their company would pay for.
                let write_back = disk.cache.budget().limits().write_back;
                if self.hash_gather.is_none()
                    || disk.hashes.len() >= LANES
                    || disk.hash_bytes >= write_back / 2
                    || disk.cache.budget().stats().staged >= write_back / 4 * 3
                {
                    self.hash_now(torrent);
                }
            }
            Output::Event(Event::FileCompleted { torrent, file }) => {
                // The final rename happens on a worker (it syncs the file first); the
                // event goes out once the file has its final name.
                let Some(disk) = self.torrents.get(&torrent) else {
                    return Some(Output::Event(Event::FileCompleted { torrent, file }));
                };
                self.renames.started(disk.key);
                let job = DiskJob::FileCompleted {
                    file,
                    storage: disk.storage.clone(),
                };
                self.jobs.push((disk.key, job));
            }
            Output::Event(Event::Completed { torrent }) => {
                let Some(key) = self.key_of(torrent) else {
                    return Some(Output::Event(Event::Completed { torrent }));
                };
                // Told once every file has its final name (see `renames`).
                if self.renames.completed(key) {
                    self.events.push(DiskEvent::Completed { torrent: key });
                }
            }
            other => return Some(other),
        }
        None
    }

    /// A worker's result for the runtime's torrent `key`: answers for the engine, events
    /// for the user.
    pub fn done(&mut self, engine: &mut Engine, key: K, done: DiskDone, now: Instant) {
        match done {
            DiskDone::Piece(done) => {
                for input in done.into_inputs(&mut self.read_ahead) {
                    engine.handle(input, now);
                }
            }
            DiskDone::FileCompleted { file, result } => {
                let ok = result.is_ok();
                self.events.push(match result {
                    Ok(()) => DiskEvent::FileCompleted { torrent: key, file },
                    Err(error) => DiskEvent::StorageError {
                        torrent: key,
                        error,
                    },
                });
                if self.renames.finished(key, ok) {
                    self.events.push(DiskEvent::Completed { torrent: key });
                }
            }
            DiskDone::Saved(result) => self.events.push(DiskEvent::Saved {
                torrent: key,
                result,
            }),
        }
    }

    /// One job for the hash requests torrent `id` has gathered.
    fn hash_now(&mut self, id: TorrentId) {
        let Some(disk) = self.torrents.get_mut(&id) else {
            return;
        };
        self.gathering.remove(&id);
        disk.hash_bytes = 0;
        if disk.hashes.is_empty() {
            return;
        }
        let job = PieceJob::Hash {
            torrent: id,
            pieces: std::mem::take(&mut disk.hashes),
            storage: disk.storage.clone(),
            cache: disk.cache.clone(),
        };
        self.jobs.push((disk.key, DiskJob::Piece(job)));
    }

    /// When the oldest gathered hash request is due to be hashed, whatever else comes
    /// ([`HASH_GATHER`]): a runtime wakes by then and calls [`Dispatcher::hashes_due`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let wait = self.hash_gather?;
        self.gathering.values().min().map(|since| *since + wait)
    }

    /// Makes the jobs of the hash requests that have waited long enough.
    pub fn hashes_due(&mut self, now: Instant) {
        let Some(wait) = self.hash_gather else {
            return;
        };
        let due: Vec<TorrentId> = self
            .gathering
            .iter()
            .filter(|(_, since)| **since + wait <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.hash_now(id);
        }
    }

    fn key_of(&self, torrent: TorrentId) -> Option<K> {
        self.torrents.get(&torrent).map(|d| d.key)
    }

    /// Queues a save of torrent `id`'s record with the pieces the engine has verified.
    pub fn save(&mut self, engine: &Engine, id: TorrentId, now: Instant) {
        let (Some(disk), Some(verified)) = (self.torrents.get_mut(&id), engine.verified(id)) else {
            return;
        };
        if disk.storage.is_read_only() {
            return;
        }
        disk.last_save = now;
        disk.saved_pieces = Some(verified.count_ones());
        let job = DiskJob::Save {
            verified: verified.clone(),
            storage: disk.storage.clone(),
        };
        self.jobs.push((disk.key, job));
    }

    /// Queues the saves that are due: records older than the resume interval whose
    /// torrent has verified pieces since. Writes still queued may be left out of a record:
    /// they are fetched or verified again next time, never trusted unverified.
    pub fn saves_due(&mut self, engine: &Engine, now: Instant) {
        let Some(interval) = self.resume_interval else {
            return;
        };
        if self.next_save_check.is_some_and(|at| now < at) {
            return;
        }
        self.next_save_check = Some(now + SAVE_CHECK);
        let due: Vec<TorrentId> = self
            .torrents
            .iter()
            .filter(|(id, d)| {
                now.saturating_duration_since(d.last_save) >= interval
                    && !d.storage.is_read_only()
                    && engine
                        .verified(**id)
                        .is_some_and(|v| Some(v.count_ones()) != d.saved_pieces)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.save(engine, id, now);
        }
    }

    /// The disk jobs to run, oldest first.
    pub fn take_jobs(&mut self) -> std::vec::Drain<'_, (K, DiskJob)> {
        self.jobs.drain(..)
    }

    /// The events for the user, oldest first.
    pub fn take_events(&mut self) -> std::vec::Drain<'_, DiskEvent<K>> {
        self.events.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::DiskLimits;
    use bytes::Bytes;
    use shoal_core::create::TorrentBuilder;
    use shoal_core::engine::{EngineConfig, Input, TorrentOptions};
    use shoal_core::metainfo::Metainfo;
    use shoal_core::{BlockRequest, PieceIndex};

    fn torrent(dir: &std::path::Path) -> (Arc<Metainfo>, Arc<Storage>) {
        let (meta, storage, _) = torrent_of(dir, 4, 32 * 1024);
        (meta, storage)
    }

    /// A torrent of `count` pieces of `piece` bytes, each piece's bytes its own.
    fn torrent_of(
        dir: &std::path::Path,
        count: usize,
        piece: usize,
    ) -> (Arc<Metainfo>, Arc<Storage>, Vec<u8>) {
        let data: Vec<u8> = (0..count * piece)
            .map(|i| (i / piece * 7 + i % 251) as u8)
            .collect();
        let mut b = TorrentBuilder::single_file("f.bin", data.len() as u64);
        b.piece_length(piece as u32);
        let mut h = b.start().unwrap();
        h.update(&data);
        let meta = Arc::new(Metainfo::parse(&h.finish().unwrap()).unwrap());
        let storage = Arc::new(Storage::open(dir, meta.clone()).unwrap());
        (meta, storage, data)
    }

    fn hash_output(meta: &Metainfo, torrent: TorrentId, piece: u32) -> Output {
        Output::HashPiece {
            torrent,
            piece: PieceIndex(piece),
            expected: meta.info.pieces[piece as usize],
        }
    }

    /// The pieces of the hash jobs queued, job by job.
    fn hash_jobs(disk: &mut Dispatcher<TorrentId>) -> Vec<Vec<u32>> {
        disk.take_jobs()
            .map(|(_, job)| match job {
                DiskJob::Piece(PieceJob::Hash { pieces, .. }) => {
                    pieces.iter().map(|(p, _)| p.0).collect()
                }
                _ => panic!("not a hash job"),
            })
            .collect()
    }

    /// A dispatcher within `limits` that gathers hash requests, and an engine, both holding
    /// the torrent `meta`.
    fn gathering(
        meta: &Arc<Metainfo>,
        storage: &Arc<Storage>,
        limits: DiskLimits,
        now: Instant,
    ) -> (Dispatcher<TorrentId>, Engine, TorrentId) {
        let mut disk = Dispatcher::new(DiskBudget::new(limits), 1 << 20);
        disk.set_hash_gather(Some(HASH_GATHER));
        let mut engine = Engine::new(EngineConfig::default());
        let id = engine
            .add_torrent(meta.clone(), TorrentOptions::default(), now)
            .unwrap();
        disk.add(id, id, storage.clone(), None, now);
        (disk, engine, id)
    }

    #[test]
    fn hash_requests_wait_for_the_lanes_to_fill_or_their_time_to_be_up() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, storage, data) = torrent_of(dir.path(), 20, 16384);
        let t0 = Instant::now();
        let (mut disk, mut engine, id) = gathering(&meta, &storage, DiskLimits::default(), t0);
        for piece in 0..20u32 {
            let at = piece as usize * 16384;
            let out = Output::WriteBlock {
                torrent: id,
                block: BlockRequest {
                    piece: PieceIndex(piece),
                    begin: 0,
                    length: 16384,
                },
                data: Bytes::copy_from_slice(&data[at..at + 16384]),
            };
            assert!(disk.carry_out(&mut engine, out, t0).is_none());
        }
        assert_eq!(disk.poll_timeout(), None, "nothing waits");
        for piece in 0..3 {
            assert!(disk
                .carry_out(&mut engine, hash_output(&meta, id, piece), t0)
                .is_none());
        }
        assert!(hash_jobs(&mut disk).is_empty(), "three wait for company");
        assert_eq!(disk.poll_timeout(), Some(t0 + HASH_GATHER));
        disk.hashes_due(t0 + HASH_GATHER - Duration::from_millis(1));
        assert!(hash_jobs(&mut disk).is_empty());
        disk.hashes_due(t0 + HASH_GATHER);
        assert_eq!(hash_jobs(&mut disk), [vec![0, 1, 2]], "their time is up");
        assert_eq!(disk.poll_timeout(), None);
        let t1 = t0 + Duration::from_secs(1);
        for piece in 3..20 {
            assert!(disk
                .carry_out(&mut engine, hash_output(&meta, id, piece), t1)
                .is_none());
        }
        // The sixteenth filled the lanes: those went at once, the seventeenth waits.
        let mut queued: Vec<(TorrentId, DiskJob)> = disk.take_jobs().collect();
        assert_eq!(queued.len(), 1);
        assert_eq!(disk.poll_timeout(), Some(t1 + HASH_GATHER));
        // The one job answers for its sixteen pieces, each good and on disk.
        let (_, job) = queued.remove(0);
        let DiskDone::Piece(done) = job.run() else {
            panic!("a piece job");
        };
        let mut read_ahead = ReadAhead::new(0);
        let answers: Vec<(u32, bool)> = done
            .into_inputs(&mut read_ahead)
            .into_iter()
            .map(|input| match input {
                Input::PieceHashed { piece, ok, .. } => (piece.0, ok),
                _ => panic!("a hash answer"),
            })
            .collect();
        assert_eq!(answers, (3..19).map(|p| (p, true)).collect::<Vec<_>>());
        assert_eq!(
            storage.read_block(PieceIndex(18), 0, 16384).unwrap(),
            &data[18 * 16384..19 * 16384]
        );
        // A torrent that leaves takes its waiting requests with it.
        disk.remove(id);
        assert_eq!(disk.poll_timeout(), None);
    }

    #[test]
    fn hash_requests_go_at_once_past_half_the_write_back_bound_a_full_cache_or_without_gathering() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, storage, _) = torrent_of(dir.path(), 6, 16384);
        let limits = DiskLimits {
            write_back: 64 * 1024,
            ..DiskLimits::default()
        };
        let now = Instant::now();
        let (mut disk, mut engine, id) = gathering(&meta, &storage, limits, now);
        for piece in 0..3 {
            disk.carry_out(&mut engine, hash_output(&meta, id, piece), now);
        }
        assert_eq!(hash_jobs(&mut disk), [vec![0, 1]], "32 KiB is half of 64");
        // Another torrent's blocks fill the caches to three quarters: the next request
        // goes at once, with the one that waited.
        let other = WriteBack::new(disk.budget().clone());
        other
            .stage(PieceIndex(0), 0, Bytes::from(vec![0u8; 48 * 1024]))
            .unwrap();
        disk.carry_out(&mut engine, hash_output(&meta, id, 3), now);
        assert_eq!(hash_jobs(&mut disk), [vec![2, 3]], "48 KiB staged of 64");
        drop(other);
        disk.carry_out(&mut engine, hash_output(&meta, id, 4), now);
        assert!(hash_jobs(&mut disk).is_empty(), "room again: it waits");
        disk.set_hash_gather(None);
        disk.carry_out(&mut engine, hash_output(&meta, id, 5), now);
        assert_eq!(
            hash_jobs(&mut disk),
            [vec![4, 5]],
            "without gathering a request goes at once, with any that waited"
        );
        assert_eq!(disk.poll_timeout(), None);
    }

    #[test]
    fn only_pieces_a_record_vouched_for_count_as_saved() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, storage) = torrent(dir.path());
        let mut verified = Bitfield::new(meta.info.piece_count());
        verified.set(1);
        verified.set(2);
        // Found by a check of the data alone: on no record yet.
        assert_eq!(saved_pieces(&storage, Some(&verified)), None);
        storage.set_record_vouched();
        assert_eq!(saved_pieces(&storage, Some(&verified)), Some(2));
        assert_eq!(saved_pieces(&storage, None), None);
    }

    #[test]
    fn a_torrent_removed_with_jobs_in_flight_leaves_nothing_staged() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, storage) = torrent(dir.path());
        let budget = DiskBudget::new(DiskLimits::default());
        let mut disk = Dispatcher::new(budget.clone(), 1 << 20);
        disk.set_hash_gather(None);
        let mut engine = Engine::new(EngineConfig::default());
        let now = Instant::now();
        let id = engine
            .add_torrent(meta.clone(), TorrentOptions::default(), now)
            .unwrap();
        disk.add(id, id, storage, None, now);
        let block = BlockRequest {
            piece: PieceIndex(0),
            begin: 0,
            length: 16384,
        };
        let data = Bytes::from(vec![7u8; 16384]);
        let out = Output::WriteBlock {
            torrent: id,
            block,
            data,
        };
        assert!(disk.carry_out(&mut engine, out, now).is_none());
        assert_eq!(budget.stats().staged, 16384, "the block is staged");
        // Another piece's hash is queued (its job holds the cache) when the torrent goes.
        let hash = Output::HashPiece {
            torrent: id,
            piece: PieceIndex(1),
            expected: meta.info.pieces[1],
        };
        assert!(disk.carry_out(&mut engine, hash, now).is_none());
        let queued: Vec<(TorrentId, DiskJob)> = disk.take_jobs().collect();
        assert_eq!(queued.len(), 1);
        engine.remove_torrent(id, now);
        disk.remove(id);
        assert_eq!(
            budget.stats().staged,
            0,
            "a removed torrent's staged blocks leave the budget while its jobs are queued"
        );
        // The queued job still runs to its end without the blocks.
        for (_, job) in queued {
            assert!(matches!(job.run(), DiskDone::Piece(_)));
        }
        assert_eq!(budget.stats().staged, 0);
    }

    #[test]
    fn records_are_saved_when_due_and_only_if_pieces_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, storage) = torrent(dir.path());
        let mut disk = Dispatcher::new(DiskBudget::new(DiskLimits::default()), 1 << 20);
        disk.set_resume_interval(Some(Duration::from_secs(30)));
        let mut engine = Engine::new(EngineConfig::default());
        let t0 = Instant::now();
        let id = engine
            .add_torrent(meta, TorrentOptions::default(), t0)
            .unwrap();
        disk.add(id, id, storage, Some(0), t0);
        disk.saves_due(&engine, t0 + Duration::from_secs(31));
        assert_eq!(
            disk.take_jobs().count(),
            0,
            "no piece verified since the record it started from"
        );
        let mut fresh = Dispatcher::new(DiskBudget::new(DiskLimits::default()), 1 << 20);
        fresh.add(id, id, disk.storage(id).unwrap().clone(), None, t0);
        fresh.saves_due(&engine, t0 + Duration::from_secs(10));
        assert_eq!(fresh.take_jobs().count(), 0, "not due yet");
        fresh.saves_due(&engine, t0 + Duration::from_secs(31));
        let jobs: Vec<(TorrentId, DiskJob)> = fresh.take_jobs().collect();
        assert!(matches!(jobs.as_slice(), [(t, DiskJob::Save { .. })] if *t == id));
    }
}
