//! The daemon's torrents on the loop's thread: the list, each torrent's phase, the queue,
//! and what the control interfaces see.
//!
//! A magnet link's torrent is **fetching** its metadata first (see [`super::magnets`]).
//! A torrent goes: **checking** (its folder taken through [`shoal_io::open_download`] on
//! the opener thread: the lock, the resume record or a hash of what is there, nothing of
//! the user's overwritten) → **open** (storage, lock and verified pieces held), and then
//! in the engine (downloading or seeding) or not (stopped by the user, or waiting in the
//! queue). Stopping takes it out of the engine and saves its resume record; starting puts
//! it back with the pieces it had. A failure (a full disk, files in the way) stops that
//! torrent with its message, never the daemon.
//!
//! Invariants: a torrent is in the engine only while open; the download lock is held from
//! open until removal; the list is saved after every change of it (`shoal_daemon::store`).

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shoal_core::bitfield::Bitfield;
use shoal_core::engine::{Event, TorrentId, TorrentOptions};
use shoal_core::metainfo::Metainfo;
use shoal_daemon::control::{
    AddRequest, Added, FileChange, FileView, Id, Settings, Stats, Status, TorrentView,
};
use shoal_daemon::state::{State, StateDir, TorrentRecord};
use shoal_daemon::store::Store;
use shoal_io::{DownloadLock, Storage};

use crate::runtime::Runtime;

/// What the opener thread is asked: take `dir` for `meta`.
pub struct OpenJob {
    pub id: Id,
    pub dir: PathBuf,
    pub meta: Arc<Metainfo>,
}

/// What the opener thread answers.
pub type Opened = Result<shoal_io::Download, String>;

/// How often resume records and totals are saved while torrents run.
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// How soon a list changed by a torrent opening is saved (see `Torrents::dirty`).
const DIRTY_SAVE_EVERY: Duration = Duration::from_secs(1);

pub(super) enum Phase {
    /// A magnet link's torrent whose metadata is being fetched from peers (BEP 9) while
    /// `engine` is set (not while paused); see [`super::magnets`].
    Fetching {
        magnet: Box<shoal_core::magnet::Magnet>,
        engine: Option<TorrentId>,
    },
    /// Being opened on the opener thread. `attach`: a magnet link's torrent whose
    /// metadata came in, still in the engine, given its storage once open.
    Checking { attach: Option<TorrentId> },
    /// Opened: its folder is ours.
    Open {
        storage: Arc<Storage>,
        lock: DownloadLock,
        /// The pieces verified when it last left the engine (or when opened).
        verified: Bitfield,
        engine: Option<TorrentId>,
    },
    /// Could not be opened or read: `rec.error` says why; `start` tries again.
    Failed,
}

pub(super) struct Entry {
    pub(super) rec: TorrentRecord,
    pub(super) meta: Option<Arc<Metainfo>>,
    pub(super) phase: Phase,
    /// Peers dialled whenever it enters the engine: a magnet link's `x.pe` peers,
    /// resolved when it was added (or the daemon started).
    pub(super) peers: Vec<std::net::SocketAddr>,
}

/// The torrents and the runtime that runs them.
pub struct Torrents {
    pub rt: Runtime,
    pub(super) dir: StateDir,
    /// Where the list is saved (`state.json` and its journal).
    store: std::sync::Mutex<Store>,
    settings: Settings,
    pub(super) next_id: Id,
    pub(super) entries: Vec<Entry>,
    opener: Sender<OpenJob>,
    started: Instant,
    last_save: Instant,
    /// The list changed in a way worth saving soon but not at once (a torrent opened):
    /// saved by [`Torrents::tick`] at most every [`DIRTY_SAVE_EVERY`], so a start that
    /// opens 1,000 torrents writes the list a few times, not 1,000.
    dirty: bool,
    last_dirty_save: Instant,
    /// Payload moved by torrents since the daemon started (closed runs only; running
    /// ones are added when asked).
    session_down: u64,
    session_up: u64,
    pub(super) files_added: u64,
    /// The feeds followed (see [`super::feeds`]).
    pub(super) feeds: Vec<shoal_daemon::feed::FeedRecord>,
    pub(super) next_feed_id: u32,
    /// When each feed is polled next; a feed being polled has none.
    pub(super) feed_due: std::collections::BTreeMap<u32, Instant>,
    feed_interval: Duration,
    /// Torrents removed while the opener had them: (id, delete their data, metainfo).
    removed_while_checking: Vec<(Id, bool, Arc<Metainfo>)>,
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Torrents {
    /// The list of `state`, every torrent sent to be opened (its `.torrent` read from the
    /// state folder; one that cannot be read shows as failed).
    pub fn new(
        rt: Runtime,
        dir: StateDir,
        store: Store,
        state: State,
        opener: Sender<OpenJob>,
    ) -> Torrents {
        let mut t = Torrents {
            rt,
            dir,
            store: std::sync::Mutex::new(store),
            settings: state.settings,
            next_id: state.next_id,
            entries: Vec::new(),
            opener,
            started: Instant::now(),
            last_save: Instant::now(),
            dirty: false,
            last_dirty_save: Instant::now(),
            session_down: 0,
            session_up: 0,
            files_added: 0,
            feed_due: state.feeds.iter().map(|f| (f.id, Instant::now())).collect(),
            feeds: state.feeds,
            next_feed_id: state.next_feed_id,
            feed_interval: Duration::from_secs(900),
            removed_while_checking: Vec::new(),
        };
        t.apply_rate_limits();
        for mut rec in state.torrents {
            let path = t.dir.torrent_file(&rec.info_hash);
            let meta = std::fs::read(&path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|b| Metainfo::parse(&b).map_err(|e| format!("{}: {e}", path.display())));
            match meta {
                Ok(meta) => {
                    let meta = Arc::new(meta);
                    t.open(rec.id, &rec.download_dir, &meta);
                    let peers = super::magnets::link_peers(rec.magnet.as_deref());
                    t.entries.push(Entry {
                        rec,
                        meta: Some(meta),
                        phase: Phase::Checking { attach: None },
                        peers,
                    });
                }
                Err(_) if rec.magnet.is_some() => t.restore_magnet(rec),
                Err(e) => {
                    rec.error = Some(e);
                    t.entries.push(Entry {
                        rec,
                        meta: None,
                        phase: Phase::Failed,
                        peers: Vec::new(),
                    });
                }
            }
        }
        t
    }

    pub(super) fn open(&self, id: Id, dir: &str, meta: &Arc<Metainfo>) {
        let _ = self.opener.send(OpenJob {
            id,
            dir: PathBuf::from(dir),
            meta: meta.clone(),
        });
    }

    /// How often feeds are polled (when they answer).
    pub fn set_feed_interval(&mut self, every: Duration) {
        self.feed_interval = every;
    }

    pub fn feed_interval(&self) -> Duration {
        self.feed_interval
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
        self.apply_rate_limits();
        self.save_state();
        self.schedule();
    }

    /// Hands the session's rate limits to the engine (through the runtime): the one place
    /// they go.
    fn apply_rate_limits(&mut self) {
        let (upload, download) = self.settings.rate_limits();
        self.rt
            .set_rate_limits(shoal_core::engine::RateLimits { upload, download });
    }

    pub(super) fn entry(&mut self, id: Id) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.rec.id == id)
    }

    /// What adding the torrent of info-hash `hash` as `req` asks comes to before anything
    /// is made: `Err` with the entry already there (a duplicate is answered with it, as
    /// Transmission does), or `Ok` with the download folder to use, which must be absolute.
    pub(super) fn admit(
        &self,
        hash: &str,
        req: &AddRequest,
    ) -> Result<Result<String, Added>, String> {
        if let Some(e) = self.entries.iter().find(|e| e.rec.info_hash == hash) {
            return Ok(Err(Added {
                id: e.rec.id,
                name: e.rec.name.clone(),
                hash: hash.to_string(),
                duplicate: true,
            }));
        }
        let dir = req
            .download_dir
            .clone()
            .unwrap_or_else(|| self.settings.download_dir.clone());
        if !Path::new(&dir).is_absolute() {
            return Err(format!("download folder {dir:?} is not an absolute path"));
        }
        Ok(Ok(dir))
    }

    /// Adds a parsed torrent (its `.torrent` bytes are kept in the state folder).
    pub fn add(&mut self, meta: Metainfo, bytes: &[u8], req: &AddRequest) -> Result<Added, String> {
        let hash = meta.info_hash.to_hex();
        let dir = match self.admit(&hash, req)? {
            Ok(dir) => dir,
            Err(duplicate) => return Ok(duplicate),
        };
        let files = meta.info.files.len();
        let mut state = self.state();
        let id = state.take_id();
        let mut rec = TorrentRecord::new(id, hash.clone(), meta.info.name.clone(), dir, files);
        rec.paused = req.paused;
        rec.added_date = unix_now();
        rec.sequential = req.sequential;
        rec.apply(&FileChange {
            unwanted: req.unwanted.clone(),
            high: req.priority_high.clone(),
            low: req.priority_low.clone(),
            ..FileChange::default()
        })?;
        shoal_daemon::state::write_atomic(&self.dir.torrent_file(&hash), bytes)
            .map_err(|e| format!("cannot keep the .torrent in the state folder: {e}"))?;
        self.next_id = state.next_id;
        let meta = Arc::new(meta);
        self.open(id, &rec.download_dir, &meta);
        let added = Added {
            id,
            name: rec.name.clone(),
            hash,
            duplicate: false,
        };
        self.entries.push(Entry {
            rec,
            meta: Some(meta),
            phase: Phase::Checking { attach: None },
            peers: Vec::new(),
        });
        self.files_added += 1;
        self.save_state();
        Ok(added)
    }

    /// The opener thread's answer for `id`.
    pub fn opened(&mut self, id: Id, result: Opened) {
        if let Some(at) = self.removed_while_checking.iter().position(|r| r.0 == id) {
            // Removed meanwhile: its files go now if that was asked; dropping the
            // download releases its lock.
            let (_, delete, meta) = self.removed_while_checking.swap_remove(at);
            if let (true, Ok(d)) = (delete, result) {
                let dir = d.storage.dir().to_path_buf();
                let lock_path = d.lock.path().to_path_buf();
                let storage = d.storage.clone();
                drop(d);
                delete_data_files(&dir, &meta, &storage);
                let _ = std::fs::remove_file(lock_path);
            }
            return;
        }
        let Some(i) = self.entries.iter().position(|e| e.rec.id == id) else {
            return;
        };
        if let Phase::Checking { attach: Some(tid) } = self.entries[i].phase {
            self.attach(i, tid, result);
            return;
        }
        let e = &mut self.entries[i];
        match result {
            Ok(d) => {
                e.rec.error = None;
                e.phase = Phase::Open {
                    storage: d.storage,
                    lock: d.lock,
                    verified: d.verified,
                    engine: None,
                };
            }
            Err(why) => {
                e.rec.error = Some(why);
                e.phase = Phase::Failed;
            }
        }
        self.dirty = true;
        self.schedule();
    }

    /// Puts into the engine every open torrent that is not paused, downloads first come
    /// first served within the queue's size; complete ones (seeds) always.
    pub fn schedule(&mut self) {
        self.start_fetches();
        let mut downloading = self
            .entries
            .iter()
            .filter(|e| in_engine(e).is_some() && !self.is_done(e))
            .count();
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.rec.paused || !matches!(e.phase, Phase::Open { engine: None, .. }) {
                continue;
            }
            let done = self.is_done(e);
            if !done
                && self.settings.download_queue_enabled
                && downloading >= self.settings.download_queue_size
            {
                continue;
            }
            if self.start_engine(i) && !done {
                downloading += 1;
            }
        }
    }

    /// Whether the download queue is full: another download waits.
    pub(super) fn queue_full(&self) -> bool {
        let downloading = self
            .entries
            .iter()
            .filter(|e| in_engine(e).is_some() && !self.is_done(e))
            .count();
        self.settings.download_queue_enabled && downloading >= self.settings.download_queue_size
    }

    fn start_engine(&mut self, i: usize) -> bool {
        let e = &mut self.entries[i];
        let (
            Some(meta),
            Phase::Open {
                storage, verified, ..
            },
        ) = (&e.meta, &e.phase)
        else {
            return false;
        };
        let opts = TorrentOptions {
            verified: Some(verified.clone()),
            sequential: e.rec.sequential,
        };
        match self
            .rt
            .add_torrent_with(meta.clone(), storage.clone(), opts)
        {
            Ok(tid) => {
                self.rt.set_file_priorities(tid, &e.rec.engine_priorities());
                for &peer in &e.peers {
                    self.rt.add_peer(tid, peer);
                }
                if let Phase::Open { engine, .. } = &mut e.phase {
                    *engine = Some(tid);
                }
                true
            }
            Err(err) => {
                e.rec.error = Some(err.to_string());
                e.rec.paused = true;
                false
            }
        }
    }

    /// Takes torrent `i` out of the engine, keeping its pieces and totals, and saves its
    /// resume record (on a worker).
    fn stop_engine(&mut self, i: usize) {
        if self.stop_fetch(i) {
            return;
        }
        let e = &mut self.entries[i];
        let Phase::Open {
            storage,
            verified,
            engine,
            ..
        } = &mut e.phase
        else {
            return;
        };
        let Some(tid) = engine.take() else { return };
        if let Some(s) = self.rt.stats(tid) {
            e.rec.downloaded_ever += s.downloaded;
            e.rec.uploaded_ever += s.uploaded;
            self.session_down += s.downloaded;
            self.session_up += s.uploaded;
        }
        if let Some(v) = self.rt.remove_torrent(tid) {
            *verified = v;
        }
        let (dir, meta, storage, verified) = (
            PathBuf::from(&e.rec.download_dir),
            e.meta.clone(),
            storage.clone(),
            verified.clone(),
        );
        if let Some(meta) = meta {
            self.rt.spawn(move || {
                shoal_io::resume::save(&dir, &meta, &verified, &storage).map_err(|e| e.to_string())
            });
        }
    }

    pub fn start(&mut self, ids: &[Id]) {
        for &id in ids {
            let Some(e) = self.entry(id) else { continue };
            e.rec.paused = false;
            if matches!(e.phase, Phase::Failed) {
                // Try again from the start: the user may have made room or moved a file.
                if let Some(meta) = e.meta.clone() {
                    e.phase = Phase::Checking { attach: None };
                    e.rec.error = None;
                    let dir = e.rec.download_dir.clone();
                    self.open(id, &dir, &meta);
                }
            } else if !matches!(e.phase, Phase::Checking { .. }) {
                e.rec.error = None;
            }
        }
        self.save_state();
        self.schedule();
    }

    pub fn stop(&mut self, ids: &[Id]) {
        for &id in ids {
            let Some(i) = self.entries.iter().position(|e| e.rec.id == id) else {
                continue;
            };
            self.entries[i].rec.paused = true;
            self.stop_engine(i);
        }
        self.save_state();
        self.schedule();
    }

    pub fn remove(&mut self, ids: &[Id], delete_data: bool) {
        for &id in ids {
            let Some(i) = self.entries.iter().position(|e| e.rec.id == id) else {
                continue;
            };
            self.stop_engine(i);
            let e = self.entries.remove(i);
            let _ = std::fs::remove_file(self.dir.torrent_file(&e.rec.info_hash));
            if let Phase::Checking { attach: Some(tid) } = e.phase {
                self.rt.remove_torrent(tid);
            }
            if let (Phase::Checking { .. }, Some(meta)) = (&e.phase, &e.meta) {
                self.removed_while_checking
                    .push((e.rec.id, delete_data, meta.clone()));
                continue;
            }
            if let (true, Some(meta), Phase::Open { storage, lock, .. }) =
                (delete_data, &e.meta, e.phase)
            {
                let dir = PathBuf::from(&e.rec.download_dir);
                let meta = meta.clone();
                let lock_path = lock.path().to_path_buf();
                drop(lock);
                // On a worker, behind the torrent's queued writes as far as the pool
                // orders them; a file a late write brings back is a `.part` of ours.
                self.rt.spawn(move || {
                    delete_data_files(&dir, &meta, &storage);
                    let _ = std::fs::remove_file(lock_path);
                    Ok(())
                });
            }
        }
        self.save_state();
        self.schedule();
    }

    pub fn set_files(&mut self, id: Id, change: &FileChange) -> Result<(), String> {
        let Some(i) = self.entries.iter().position(|e| e.rec.id == id) else {
            return Err(format!("no torrent {id}"));
        };
        let e = &mut self.entries[i];
        let sequential_before = e.rec.sequential;
        e.rec.apply(change)?;
        let priorities = e.rec.engine_priorities();
        let restart = e.rec.sequential != sequential_before;
        if let Some(tid) = in_engine(e) {
            if restart {
                // The engine takes sequential mode when a torrent is added.
                self.stop_engine(i);
            } else {
                self.rt.set_file_priorities(tid, &priorities);
            }
        }
        self.save_state();
        self.schedule();
        Ok(())
    }

    /// Reacts to the runtime's events.
    pub fn event(&mut self, event: Event) {
        match event {
            Event::Completed { torrent } => {
                let Some(i) = self.index_of(torrent) else {
                    return;
                };
                self.entries[i].rec.done_date = unix_now();
                self.save_resume(i);
                self.save_state();
                // A finished download frees a place in the queue.
                self.schedule();
            }
            Event::StorageError { torrent, error } => {
                let Some(i) = self.index_of(torrent) else {
                    return;
                };
                crate::say::err_line(&format!("{}: stopped: {error}", self.entries[i].rec.name));
                self.stop_engine(i);
                let rec = &mut self.entries[i].rec;
                rec.paused = true;
                rec.error = Some(format!("stopped: {error}"));
                self.save_state();
                self.schedule();
            }
            Event::InternalError {
                torrent,
                refused,
                first,
            } => {
                if let Some(i) = self.index_of(torrent) {
                    crate::say::err_line(&format!(
                        "{}: {}",
                        self.entries[i].rec.name,
                        shoal_core::engine::internal_error_message(refused, &first)
                    ));
                }
            }
            Event::MetadataReceived { torrent, meta } => self.metadata_received(torrent, meta),
            Event::MetadataFailed { torrent, error } => {
                if let Some(e) = self
                    .entries
                    .iter_mut()
                    .find(|e| fetching(e) == Some(torrent))
                {
                    e.rec.error = Some(format!(
                        "the metadata a peer sent is not a usable torrent: {error}; \
                         still asking other peers"
                    ));
                }
            }
            _ => {}
        }
    }

    fn index_of(&self, tid: TorrentId) -> Option<usize> {
        self.entries.iter().position(|e| in_engine(e) == Some(tid))
    }

    /// Saves torrent `i`'s resume record now, if it runs (on a worker).
    fn save_resume(&mut self, i: usize) {
        if let Some(tid) = in_engine(&self.entries[i]) {
            self.rt.save_resume(tid);
        }
    }

    /// Saves the totals every [`SAVE_EVERY`], and a changed list within
    /// [`DIRTY_SAVE_EVERY`] (the runtime saves resume records while their torrents' pieces
    /// change).
    pub fn tick(&mut self) {
        let due = self.last_save.elapsed() >= SAVE_EVERY
            || (self.dirty && self.last_dirty_save.elapsed() >= DIRTY_SAVE_EVERY);
        if !due {
            return;
        }
        self.last_save = Instant::now();
        self.last_dirty_save = self.last_save;
        self.dirty = false;
        self.save_state();
    }

    /// Stops everything (trackers told, writes finished) and saves every resume record and
    /// the list: a clean exit.
    pub fn shutdown(mut self) {
        let ids: Vec<usize> = (0..self.entries.len()).collect();
        let mut engine_ids = Vec::new();
        for &i in &ids {
            if let Some(tid) = in_engine(&self.entries[i]) {
                if let Some(s) = self.rt.stats(tid) {
                    self.entries[i].rec.downloaded_ever += s.downloaded;
                    self.entries[i].rec.uploaded_ever += s.uploaded;
                }
                engine_ids.push((i, tid));
            }
        }
        let verified = self.rt.shutdown(Duration::from_secs(5)).unwrap_or_default();
        for (i, tid) in engine_ids {
            if let Some((_, v)) = verified.iter().find(|(t, _)| *t == tid) {
                if let Phase::Open { verified, .. } = &mut self.entries[i].phase {
                    *verified = v.clone();
                }
            }
        }
        self.save_state();
        let Torrents { rt, entries, .. } = self;
        drop(rt); // joins the workers once their queued writes are done
        for e in entries {
            if let (
                Some(meta),
                Phase::Open {
                    storage, verified, ..
                },
            ) = (&e.meta, &e.phase)
            {
                let dir = PathBuf::from(&e.rec.download_dir);
                if let Err(err) = shoal_io::resume::save(&dir, meta, verified, storage) {
                    crate::say::err_line(&format!(
                        "{}: resume record not saved: {err}",
                        e.rec.name
                    ));
                }
            }
        }
    }

    fn state(&self) -> State {
        State {
            next_id: self.next_id,
            settings: self.settings.clone(),
            torrents: self.entries.iter().map(|e| self.record_now(e)).collect(),
            next_feed_id: self.next_feed_id,
            feeds: self.feeds.clone(),
        }
    }

    /// The record with the running totals added in.
    fn record_now(&self, e: &Entry) -> TorrentRecord {
        let mut rec = e.rec.clone();
        if let Some(s) = in_engine(e).and_then(|t| self.rt.stats(t)) {
            rec.downloaded_ever += s.downloaded;
            rec.uploaded_ever += s.uploaded;
        }
        rec
    }

    pub(super) fn save_state(&self) {
        let saved = match self.store.lock() {
            Ok(mut store) => store.save(&self.state()),
            Err(_) => Err(std::io::Error::other("an earlier save panicked")),
        };
        if let Err(e) = saved {
            crate::say::err_line(&format!(
                "{}: cannot save the torrent list: {e}",
                self.dir.state_file().display()
            ));
        }
    }

    /// Whether nothing the user wants of `e` is left to download (a view's
    /// `left_until_done == 0`, without making the view: `schedule` asks it of every
    /// torrent).
    fn is_done(&self, e: &Entry) -> bool {
        let Some(meta) = &e.meta else {
            return true;
        };
        let verified = match (&e.phase, in_engine(e)) {
            (_, Some(t)) => self.rt.verified(t),
            (Phase::Open { verified, .. }, None) => Some(verified),
            _ => None,
        };
        if verified.is_some_and(Bitfield::is_full) {
            return true;
        }
        let info = &meta.info;
        info.files.iter().enumerate().all(|(i, f)| {
            f.attr.padding
                || !e.rec.wanted.get(i).copied().unwrap_or(true)
                || f.length == verified.map_or(0, |v| file_verified_bytes(info, f, v))
        })
    }

    /// What the interfaces see of every torrent.
    pub fn views(&self) -> Vec<TorrentView> {
        let mut queue = 0;
        self.entries
            .iter()
            .map(|e| {
                let v = self.view(e, queue);
                if v.status == Status::DownloadWait {
                    queue += 1;
                }
                v
            })
            .collect()
    }

    fn view(&self, e: &Entry, queue_position: usize) -> TorrentView {
        let rec = self.record_now(e);
        let tid = in_engine(e);
        let stats = tid.and_then(|t| self.rt.stats(t));
        let fetch = fetching(e).and_then(|t| self.rt.fetching(t));
        let verified = match (&e.phase, tid) {
            (_, Some(t)) => self.rt.verified(t),
            (Phase::Open { verified, .. }, None) => Some(verified),
            _ => None,
        };
        let mut files = Vec::new();
        let (mut size_when_done, mut left, mut have, mut total) = (0, 0, 0, 0);
        if let Some(meta) = &e.meta {
            let info = &meta.info;
            total = info.total_length;
            for (i, f) in info.files.iter().enumerate() {
                if f.attr.padding {
                    continue;
                }
                let completed = verified.map_or(0, |v| file_verified_bytes(info, f, v));
                let wanted = rec.wanted.get(i).copied().unwrap_or(true);
                if wanted {
                    size_when_done += f.length;
                    left += f.length - completed;
                }
                files.push(FileView {
                    name: f.path.join("/"),
                    length: f.length,
                    completed,
                    wanted,
                    priority: rec.priorities.get(i).copied().unwrap_or(0),
                });
            }
            have = verified.map_or(0, |v| {
                v.iter_ones()
                    .map(|p| u64::from(info.piece_size(shoal_core::PieceIndex(p))))
                    .sum()
            });
        }
        if tid.is_some_and(|t| self.rt.renaming(t)) {
            // Every piece verified, but a file is still `.part` until its sync and rename
            // end: not done yet (a client polling for 100 % opens the file at once).
            left = left.max(1);
        }
        let status = match (&e.phase, tid) {
            (Phase::Checking { .. }, _) => Status::Checking,
            (
                Phase::Fetching {
                    engine: Some(_), ..
                },
                _,
            ) => Status::Downloading,
            (Phase::Fetching { .. }, _) => Status::Stopped,
            (Phase::Failed, _) => Status::Stopped,
            (_, Some(_)) if left == 0 => Status::Seeding,
            (_, Some(_)) => Status::Downloading,
            _ if rec.paused => Status::Stopped,
            _ if left == 0 => Status::SeedWait,
            _ => Status::DownloadWait,
        };
        let meta = e.meta.as_deref();
        TorrentView {
            id: rec.id,
            name: rec.name.clone(),
            hash: rec.info_hash.clone(),
            status,
            error: rec.error.clone(),
            download_dir: rec.download_dir.clone(),
            total_size: total,
            size_when_done,
            left_until_done: left,
            have_valid: have,
            rate_download: stats.as_ref().map_or(0, |s| s.download_rate),
            rate_upload: stats.as_ref().map_or(0, |s| s.upload_rate),
            downloaded_ever: rec.downloaded_ever,
            uploaded_ever: rec.uploaded_ever,
            peers_connected: stats
                .as_ref()
                .map(|s| s.peers)
                .or(fetch.as_ref().map(|f| f.peers))
                .unwrap_or(0),
            piece_count: meta.map_or(0, |m| m.info.piece_count()),
            piece_size: meta.map_or(0, |m| m.info.piece_length),
            added_date: rec.added_date,
            done_date: rec.done_date,
            queue_position,
            sequential: rec.sequential,
            files,
            comment: meta.and_then(|m| m.comment.clone()).unwrap_or_default(),
            private: meta.is_some_and(|m| m.info.private),
            magnet: meta
                .map(|m| m.magnet().to_uri())
                .or_else(|| rec.magnet.clone())
                .unwrap_or_default(),
            metadata_percent: match (&e.phase, fetch) {
                (Phase::Fetching { .. }, Some(f)) => match f.size {
                    Some(size) if size > 0 => (f.received as f64 / size as f64).min(1.0),
                    _ => 0.0,
                },
                (Phase::Fetching { .. }, None) => 0.0,
                _ => 1.0,
            },
        }
    }

    pub fn stats(&self) -> Stats {
        let views = self.views();
        let running: Vec<_> = self
            .entries
            .iter()
            .filter_map(|e| in_engine(e).and_then(|t| self.rt.stats(t)))
            .collect();
        Stats {
            download_speed: running.iter().map(|s| s.download_rate).sum(),
            upload_speed: running.iter().map(|s| s.upload_rate).sum(),
            torrent_count: views.len(),
            active_torrent_count: running.len(),
            paused_torrent_count: views.iter().filter(|v| v.status == Status::Stopped).count(),
            downloaded: self.session_down + running.iter().map(|s| s.downloaded).sum::<u64>(),
            uploaded: self.session_up + running.iter().map(|s| s.uploaded).sum::<u64>(),
            seconds_active: self.started.elapsed().as_secs(),
            files_added: self.files_added,
        }
    }
}

/// The engine's id of a magnet link's torrent still fetching its metadata.
pub(super) fn fetching(e: &Entry) -> Option<TorrentId> {
    match e.phase {
        Phase::Fetching { engine, .. } => engine,
        _ => None,
    }
}

fn in_engine(e: &Entry) -> Option<TorrentId> {
    match e.phase {
        Phase::Open { engine, .. } => engine,
        _ => None,
    }
}

/// Bytes of `file` inside verified pieces.
fn file_verified_bytes(
    info: &shoal_core::metainfo::Info,
    file: &shoal_core::metainfo::FileEntry,
    verified: &Bitfield,
) -> u64 {
    if file.length == 0 {
        return 0;
    }
    let plen = u64::from(info.piece_length);
    let (start, end) = (file.offset, file.offset + file.length);
    let (first, last) = (start / plen, (end - 1) / plen);
    (first..=last)
        .filter(|&p| u32::try_from(p).is_ok_and(|p| verified.get(p)))
        .map(|p| {
            let (ps, pe) = (p * plen, (p + 1) * plen);
            pe.min(end) - ps.max(start)
        })
        .sum()
}

/// Deletes a removed torrent's files (final and `.part` names), its resume record, and the
/// folders of its content left empty. Nothing else: a file of another name in its folder
/// stays, and so does the folder.
fn delete_data_files(dir: &Path, meta: &Metainfo, storage: &Storage) {
    let mut folders = Vec::new();
    for (i, f) in meta.info.files.iter().enumerate() {
        if f.attr.padding {
            continue;
        }
        let Some(current) = storage.path(i) else {
            continue;
        };
        let s = current.to_string_lossy();
        let final_path = PathBuf::from(s.strip_suffix(".part").unwrap_or(&s).to_string());
        let part = PathBuf::from(format!("{}.part", final_path.display()));
        let _ = std::fs::remove_file(&final_path);
        let _ = std::fs::remove_file(&part);
        let mut parent = final_path.parent();
        while let Some(p) = parent {
            if p == dir || !p.starts_with(dir) {
                break;
            }
            folders.push(p.to_path_buf());
            parent = p.parent();
        }
    }
    // Deepest first; `remove_dir` leaves a folder that still holds something.
    folders.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    folders.dedup();
    for f in folders {
        let _ = std::fs::remove_dir(f);
    }
    let _ = std::fs::remove_file(shoal_io::resume::record_path(dir, &meta.info_hash));
}
