//! Torrents: what the engine keeps of each ([`Torrent`]: its store, picker, choker,
//! candidates, writes and hashes under way, strikes and bans, rates, trackers), adding
//! and removing one, file priorities, and the figures reported to the user.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;
use crate::choker::Choker;
use crate::metainfo::Metainfo;
use crate::picker::{Picker, PickerConfig, Priority};
use crate::rate::RateMeter;
use crate::storage::{Layout, PieceStore};
use crate::tracker::Announcer;
use crate::PieceIndex;

use super::bans::Bans;
use super::blame::Blame;
use super::candidates::Candidates;
use super::trackers::Trackers;
use super::webseeds::WebSeeds;
use super::{
    consistent, AddTorrentError, CloseReason, ConnId, Disagreements, Engine, Event, Output,
    TorrentId, TorrentOptions, TorrentStats, STOP_GRACE,
};
pub(super) struct Torrent {
    pub(super) meta: Arc<Metainfo>,
    pub(super) store: PieceStore,
    pub(super) picker: Picker,
    pub(super) choker: Choker,
    /// The keys its picker and choker know its peers and web seeds by.
    pub(super) keys: super::keys::Keys,
    pub(super) peers: Vec<ConnId>,
    /// Addresses to dial.
    pub(super) candidates: Candidates,
    /// Writes not yet confirmed, per piece.
    pub(super) pending_writes: BTreeMap<u32, u32>,
    /// Pieces whose blocks have all arrived, waiting for their writes before hashing.
    pub(super) awaiting_hash: BTreeSet<u32>,
    pub(super) hashing: BTreeSet<u32>,
    /// Who sent which blocks of each piece in progress, to blame on a hash failure.
    pub(super) blame: Blame,
    /// Strikes and bans of hosts that sent data failing its hash check.
    pub(super) bans: Bans,
    pub(super) down: RateMeter,
    pub(super) up: RateMeter,
    pub(super) completed_reported: bool,
    pub(super) storage_error: bool,
    /// Interest or a departure may have freed an unchoke slot: run the choker early.
    pub(super) rechoke_wanted: bool,
    /// Requested blocks became free (a peer left, choked us, was snubbed, or a piece
    /// failed its hash): offer them to the other peers.
    pub(super) refill_wanted: bool,
    /// The instant its timer is armed for (see `timers`).
    pub(super) wake: Option<Instant>,
    /// Its peers' comings and goings and the connections told of them (see `pex`).
    pub(super) pex: super::pex::TorrentPex,
    /// The peers interested in us, in the order they said so: with the choker's holders,
    /// all an early rechoke needs to describe (see `rechoke`).
    pub(super) interested: Vec<ConnId>,
    pub(super) trackers: Trackers,
    pub(super) webseeds: WebSeeds,
    /// When its next LSD announce is due (see `lsd`); `None`: at the next tick.
    pub(super) lsd_next: Option<Instant>,
    /// How long its peers make us wait for a block, smoothed over every block that came
    /// (see [`Torrent::stall_limit`]); `None` before the first.
    pub(super) block_wait: Option<Duration>,
    /// Picker calls refused since the last [`Event::InternalError`] (see `consistent`).
    pub(super) faults: Disagreements,
}

/// A peer that lets our requests wait this many times the torrent's usual wait for a
/// block is stalled (snubbed: its requests go to others).
const STALL_WAITS: u32 = 8;
/// Never snubbed sooner than this, however fast the others are.
const STALL_FLOOR: Duration = Duration::from_secs(3);

impl Torrent {
    pub(super) fn is_complete(&self) -> bool {
        self.store.is_complete()
    }

    /// A block came after `waited` (since our oldest request to its peer went out, or
    /// since that peer's previous block if later): folded into the usual wait (1/16 of
    /// each new one).
    pub(super) fn note_block_wait(&mut self, waited: Duration) {
        self.block_wait = Some(match self.block_wait {
            None => waited,
            Some(w) if waited >= w => w + (waited - w) / 16,
            Some(w) => w - (w - waited) / 16,
        });
    }

    /// How long a peer may let our requests wait before it is snubbed: `max` (the
    /// configuration's `request_timeout`) until blocks have come, then eight times the
    /// usual wait, at least 3 s. A peer that claims pieces and sends none (or has gone
    /// quiet) is found out in seconds where others deliver in fractions of one, rather
    /// than holding its blocks for the whole timeout; a slow but working peer sends a
    /// block every few seconds and is never near the limit.
    pub(super) fn stall_limit(&self, max: Duration) -> Duration {
        match self.block_wait {
            None => max,
            Some(w) => (w * STALL_WAITS).clamp(STALL_FLOOR.min(max), max),
        }
    }
}

fn rank(p: Priority) -> u8 {
    match p {
        Priority::Skip => 0,
        Priority::Normal => 1,
        Priority::High => 2,
    }
}

impl Engine {
    /// Adds a torrent. Its data must already be checked: `opts.verified` says which pieces
    /// are on disk and good. Returns the existing id if the torrent is already added.
    pub fn add_torrent(
        &mut self,
        meta: Arc<Metainfo>,
        opts: TorrentOptions,
        now: Instant,
    ) -> Result<TorrentId, AddTorrentError> {
        if let Some(&id) = self.by_info_hash.get(&meta.info_hash) {
            return Ok(id);
        }
        let id = TorrentId(self.torrents.len() as u32);
        let torrent = self.new_torrent(id, meta.clone(), opts, now)?;
        self.torrents.push(Some(torrent));
        self.by_info_hash.insert(meta.info_hash, id);
        if !meta.url_list.is_empty() {
            self.add_webseeds(id, &meta);
            self.pump_webseeds(id, now);
        }
        self.arm_torrent(id, now + super::timers::TICK);
        self.announce(id, now);
        Ok(id)
    }

    /// A torrent's state, to be put under id `id`, with its trackers from the metainfo; no
    /// peer yet, no timer armed. Reports the files complete from the start.
    pub(super) fn new_torrent(
        &mut self,
        id: TorrentId,
        meta: Arc<Metainfo>,
        opts: TorrentOptions,
        now: Instant,
    ) -> Result<Torrent, AddTorrentError> {
        let layout = Layout::new(&meta.info).map_err(AddTorrentError::Layout)?;
        let piece_count = meta.info.piece_count();
        let verified = match opts.verified {
            Some(b) if b.len() != piece_count => {
                return Err(AddTorrentError::ResumeLength {
                    got: b.len(),
                    expected: piece_count,
                })
            }
            Some(b) => b,
            None => Bitfield::new(piece_count),
        };
        let mut picker = Picker::new(
            piece_count,
            meta.info.piece_length,
            meta.info.total_length,
            PickerConfig {
                seed: self.rng.next_u64(),
                sequential: opts.sequential,
                ..PickerConfig::default()
            },
        )
        .map_err(AddTorrentError::Picker)?;
        picker
            .set_have(&verified)
            .map_err(AddTorrentError::Picker)?;
        let store = PieceStore::from_resume(layout, verified.iter_ones().map(PieceIndex));
        let choker = Choker::new(self.config.choker.clone(), self.rng.next_u64(), now);
        let announcer = Announcer::new(
            meta.info_hash,
            self.config.peer_id,
            self.config.listen_port,
            meta.trackers(),
            self.config.announcer.clone(),
            self.rng.next_u64(),
            now,
        );
        let complete = store.is_complete();
        // Zero-length files, and after a resume whole files, are complete from the start:
        // report them, so the runtime can give them their final names.
        for file in store.complete_files() {
            self.outputs
                .push_back(Output::Event(Event::FileCompleted { torrent: id, file }));
        }
        Ok(Torrent {
            meta: meta.clone(),
            store,
            picker,
            choker,
            keys: Default::default(),
            peers: Vec::new(),
            candidates: Candidates::new(self.config.max_candidates, self.rng.next_u64()),
            pending_writes: BTreeMap::new(),
            awaiting_hash: BTreeSet::new(),
            hashing: BTreeSet::new(),
            blame: Blame::default(),
            bans: Bans::default(),
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            completed_reported: complete,
            storage_error: false,
            rechoke_wanted: false,
            refill_wanted: false,
            wake: None,
            pex: Default::default(),
            interested: Vec::new(),
            trackers: Trackers {
                announcer,
                udp: BTreeMap::new(),
                udp_pending: None,
            },
            webseeds: WebSeeds::default(),
            lsd_next: None,
            block_wait: None,
            faults: Disagreements::default(),
        })
    }

    /// Removes a torrent: closes its connections and tells its tracker `stopped` (the
    /// announce goes out in the following outputs; its answer is awaited for
    /// [`STOP_GRACE`] at most). Its id is not reused. Returns the pieces verified by then,
    /// for a resume record (`None` for a magnet's torrent still fetching its metadata).
    pub fn remove_torrent(&mut self, id: TorrentId, now: Instant) -> Option<Bitfield> {
        self.dht_forget(id);
        if self.remove_fetching(id, now) {
            self.announce_stopping(now);
            if !self.stopping.is_empty() {
                self.arm_stopping(now + super::timers::TICK);
            }
            // Nothing verified to keep: it had no pieces yet.
            return None;
        }
        let mut t = self
            .torrents
            .get_mut(id.0 as usize)
            .and_then(Option::take)?;
        let verified = t.store.verified().clone();
        self.by_info_hash.remove(&t.meta.info_hash);
        for conn in std::mem::take(&mut t.peers) {
            self.close(conn, CloseReason::TorrentRemoved);
        }
        self.remove_webseeds(&mut t);
        t.trackers.announcer.stop(now);
        self.stopping.push((id, t.trackers, now + STOP_GRACE));
        self.announce_stopping(now);
        if !self.stopping.is_empty() {
            self.arm_stopping(now + super::timers::TICK);
        }
        Some(verified)
    }

    /// Removes every torrent (see [`Engine::remove_torrent`]): the way to shut down. Keep
    /// driving the engine until [`Engine::is_idle`] or your patience runs out. Returns each
    /// torrent's verified pieces.
    pub fn shutdown(&mut self, now: Instant) -> Vec<(TorrentId, Bitfield)> {
        (0..self.torrents.len())
            .filter_map(|i| {
                let id = TorrentId(i as u32);
                self.remove_torrent(id, now).map(|v| (id, v))
            })
            .collect()
    }

    /// No torrent, no connection, no `stopped` announce still waiting for its answer.
    pub fn is_idle(&self) -> bool {
        self.connections == 0
            && self.stopping.is_empty()
            && self.fetching.is_empty()
            && self.torrents.iter().all(Option::is_none)
            && self.outputs.is_empty()
    }

    /// Sets the download priority of each file (`priorities[i]` for file `i` of the
    /// metainfo; missing entries stay as they are). A piece shared by two files takes the
    /// higher of their priorities, so skipping a file never loses a neighbour's bytes.
    pub fn set_file_priorities(&mut self, id: TorrentId, priorities: &[Priority]) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        let layout = t.store.layout();
        let mut per_piece: BTreeMap<u32, Priority> = BTreeMap::new();
        for (file, &priority) in priorities.iter().enumerate().take(layout.file_count()) {
            for piece in layout.pieces_of_file(file) {
                let e = per_piece.entry(piece).or_insert(Priority::Skip);
                if rank(priority) > rank(*e) {
                    *e = priority;
                }
            }
        }
        for (piece, priority) in per_piece {
            consistent(
                &mut t.faults,
                t.picker.set_piece_priority(PieceIndex(piece), priority),
            );
        }
        let peers = t.peers.clone();
        for conn in peers {
            self.update_interest(conn);
        }
    }

    /// A torrent's figures now.
    pub fn stats(&self, id: TorrentId) -> Option<TorrentStats> {
        let t = self.torrent(id)?;
        Some(TorrentStats {
            pieces_verified: t.store.verified_count(),
            piece_count: t.meta.info.piece_count(),
            bytes_verified: t.store.bytes_verified(),
            total_length: t.meta.info.total_length,
            downloaded: t.down.total(),
            uploaded: t.up.total(),
            download_rate: t.down.rate(),
            upload_rate: t.up.rate(),
            peers: t.peers.len(),
            complete: t.is_complete(),
        })
    }

    /// The info-hash of torrent `id`, known or being fetched.
    pub(super) fn info_hash_of(&self, id: TorrentId) -> Option<crate::InfoHash> {
        match self.torrent(id) {
            Some(t) => Some(t.meta.info_hash),
            None => self.fetching.get(&id).map(|f| f.magnet.info_hash),
        }
    }

    /// The torrent's metainfo (`None` while a magnet's is being fetched).
    pub fn metainfo(&self, id: TorrentId) -> Option<&Arc<Metainfo>> {
        Some(&self.torrent(id)?.meta)
    }

    /// Which pieces are verified (for a resume record).
    pub fn verified(&self, id: TorrentId) -> Option<&Bitfield> {
        Some(self.torrent(id)?.store.verified())
    }
}
