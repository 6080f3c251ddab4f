//! The engine: every torrent and every peer connection of one client, as one sans-IO state
//! machine.
//!
//! # The loop
//!
//! Whoever embeds the engine (a runtime, the simulator, a test) runs one loop:
//!
//! ```text
//! engine.handle(input, now)            for every fact from outside
//! while let Some(out) = engine.poll_output() { carry it out }
//! sleep until engine.poll_timeout(), then engine.handle(Input::Timer, now)
//! ```
//!
//! The rule: after every call that changes the engine (`handle`, `add_torrent`,
//! `add_peer`, `accept`, …), drain [`Engine::poll_output`] until it returns `None`, then
//! ask [`Engine::poll_timeout`] again. Nothing happens between calls; time passes only
//! through the `now` arguments, which must never go backwards.
//!
//! # What the engine asks of its runtime
//!
//! - [`Output::Connect`]: open a TCP connection, answer [`Input::Connected`] or
//!   [`Input::ConnectFailed`]. Inbound connections are announced with [`Engine::accept`].
//! - [`Output::Send`]: write bytes in order; report progress with [`Input::Sent`] (the
//!   engine stops reading blocks for a peer whose unsent bytes pass
//!   [`EngineConfig::send_buffer`]). [`Output::Close`]: close; no input for that connection
//!   is expected afterwards (late ones are ignored).
//! - [`Output::ReadBlock`], [`Output::WriteBlock`], [`Output::HashPiece`]: disk and SHA-1
//!   work, answered with [`Input::BlockRead`], [`Input::BlockWritten`],
//!   [`Input::PieceHashed`]. A piece is hashed only after all its writes are reported done.
//! - [`Output::Event`]: things a user wants to know.
//!
//! # Determinism
//!
//! All randomness comes from [`EngineConfig::rng_seed`]; all collections iterate in an
//! order fixed by the inputs. The same seed and the same inputs give the same outputs.

mod api;
mod choke;
mod conn;
mod peer;
mod policy;
mod receive;
#[cfg(test)]
mod tests;
mod timers;
mod trackers;
mod transfer;

pub use api::{
    AddTorrentError, CloseReason, ConnId, EngineConfig, Event, Input, Output, TorrentId,
    TorrentOptions, TorrentStats,
};
pub use policy::{SeedLimit, TrackerWatch};
pub use trackers::STOP_GRACE;

use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use smallvec::SmallVec;

use crate::bitfield::Bitfield;
use crate::choker::{Choker, PeerInfo};
use crate::metainfo::Metainfo;
use crate::picker::{Picker, PickerConfig, Priority};
use crate::rate::RateMeter;
use crate::rng::Rng;
use crate::storage::{Layout, PieceStore};
use crate::tracker::Announcer;
use crate::{BlockRequest, InfoHash, PieceIndex};

use conn::Slot;
use peer::Peer;
use timers::TICK;
use trackers::Trackers;

/// What the engine remembers about an address it may dial.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    connected: bool,
    failed_at: Option<Instant>,
}

struct Torrent {
    meta: Arc<Metainfo>,
    store: PieceStore,
    picker: Picker,
    choker: Choker,
    peers: Vec<ConnId>,
    /// Addresses to dial, in the order they were learnt.
    candidates: BTreeMap<SocketAddr, Candidate>,
    dial_queue: VecDeque<SocketAddr>,
    /// Writes not yet confirmed, per piece.
    pending_writes: BTreeMap<u32, u32>,
    /// Pieces whose blocks have all arrived, waiting for their writes before hashing.
    awaiting_hash: BTreeSet<u32>,
    hashing: BTreeSet<u32>,
    /// Who sent blocks of each piece in progress (for strikes on a hash failure).
    contributors: BTreeMap<u32, SmallVec<[IpAddr; 4]>>,
    strikes: BTreeMap<IpAddr, u32>,
    banned: BTreeSet<IpAddr>,
    down: RateMeter,
    up: RateMeter,
    completed_reported: bool,
    storage_error: bool,
    /// Interest or a departure may have freed an unchoke slot: run the choker early.
    rechoke_wanted: bool,
    /// The peers interested in us, in the order they said so: with the choker's holders,
    /// all an early rechoke needs to describe (see `rechoke`).
    interested: Vec<ConnId>,
    trackers: Trackers,
}

impl Torrent {
    fn is_complete(&self) -> bool {
        self.store.is_complete()
    }
}

/// The engine. See the module docs for how to drive it.
pub struct Engine {
    config: EngineConfig,
    rng: Rng,
    torrents: Vec<Option<Torrent>>,
    by_info_hash: BTreeMap<InfoHash, TorrentId>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    connections: usize,
    outputs: VecDeque<Output>,
    /// Connections with bytes in their write buffer, in the order they got them.
    dirty: Vec<ConnId>,
    next_tick: Option<Instant>,
    scratch: Vec<BlockRequest>,
    /// Reused by `rechoke` for the choker's view of the peers.
    choke_infos: Vec<PeerInfo>,
    /// Removed torrents' trackers, kept until their `stopped` announce is done.
    stopping: Vec<(TorrentId, Trackers, Instant)>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            rng: Rng::new(config.rng_seed),
            config,
            torrents: Vec::new(),
            by_info_hash: BTreeMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            connections: 0,
            outputs: VecDeque::new(),
            dirty: Vec::new(),
            next_tick: None,
            scratch: Vec::new(),
            choke_infos: Vec::new(),
            stopping: Vec::new(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

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
        self.torrents.push(Some(Torrent {
            meta: meta.clone(),
            store,
            picker,
            choker,
            peers: Vec::new(),
            candidates: BTreeMap::new(),
            dial_queue: VecDeque::new(),
            pending_writes: BTreeMap::new(),
            awaiting_hash: BTreeSet::new(),
            hashing: BTreeSet::new(),
            contributors: BTreeMap::new(),
            strikes: BTreeMap::new(),
            banned: BTreeSet::new(),
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            completed_reported: complete,
            storage_error: false,
            rechoke_wanted: false,
            interested: Vec::new(),
            trackers: Trackers {
                announcer,
                udp: BTreeMap::new(),
                udp_pending: None,
            },
        }));
        self.by_info_hash.insert(meta.info_hash, id);
        self.schedule_tick(now);
        self.announce(id, now);
        Ok(id)
    }

    /// Removes a torrent: closes its connections and tells its tracker `stopped` (the
    /// announce goes out in the following outputs; its answer is awaited for
    /// [`STOP_GRACE`] at most). Its id is not reused. Returns the pieces verified by then,
    /// for a resume record.
    pub fn remove_torrent(&mut self, id: TorrentId, now: Instant) -> Option<Bitfield> {
        let mut t = self
            .torrents
            .get_mut(id.0 as usize)
            .and_then(Option::take)?;
        let verified = t.store.verified().clone();
        self.by_info_hash.remove(&t.meta.info_hash);
        for conn in std::mem::take(&mut t.peers) {
            self.close(conn, CloseReason::TorrentRemoved);
        }
        t.trackers.announcer.stop(now);
        self.stopping.push((id, t.trackers, now + STOP_GRACE));
        self.announce_stopping(now);
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
            consistent(t.picker.set_piece_priority(PieceIndex(piece), priority));
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

    /// The torrent's metainfo.
    pub fn metainfo(&self, id: TorrentId) -> Option<&Arc<Metainfo>> {
        Some(&self.torrent(id)?.meta)
    }

    /// Which pieces are verified (for a resume record).
    pub fn verified(&self, id: TorrentId) -> Option<&Bitfield> {
        Some(self.torrent(id)?.store.verified())
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            self.flush_all();
        }
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Connected { conn } => self.on_connected(conn, now),
            Input::ConnectFailed { conn } => {
                if let Some(p) = self.peer(conn) {
                    let (addr, torrent) = (p.addr, p.torrent);
                    if let Some(t) = torrent.and_then(|id| self.torrent_mut(id)) {
                        if let Some(c) = t.candidates.get_mut(&addr) {
                            c.failed_at = Some(now);
                        }
                    }
                    self.close(conn, CloseReason::ConnectFailed);
                }
            }
            Input::Received { conn, data } => self.on_received(conn, data, now),
            Input::Closed { conn } => {
                if self.peer(conn).is_some() {
                    self.close_inner(conn, CloseReason::Remote, false);
                }
            }
            Input::Sent { conn, bytes } => {
                if let Some(p) = self.peer_mut(conn) {
                    p.unsent = p.unsent.saturating_sub(bytes);
                    self.pump_reads(conn);
                }
            }
            Input::BlockRead {
                torrent,
                conn,
                block,
                result,
            } => self.on_block_read(torrent, conn, block, result),
            Input::BlockWritten {
                torrent,
                block,
                result,
            } => self.on_block_written(torrent, block, result),
            Input::PieceHashed { torrent, piece, ok } => {
                self.on_piece_hashed(torrent, piece, ok, now)
            }
            Input::TrackerHttp {
                torrent,
                id,
                result,
            } => self.on_tracker_http(torrent, id, result, now),
            Input::UdpReceived { from, data } => self.on_udp(from, &data, now),
            Input::Timer => {
                if self.next_tick.is_some_and(|t| now >= t) {
                    self.next_tick = Some(now + TICK);
                    self.tick(now);
                }
            }
        }
        for i in 0..self.torrents.len() {
            let id = TorrentId(i as u32);
            if let Some(t) = self.torrent_mut(id) {
                if std::mem::take(&mut t.rechoke_wanted) {
                    self.rechoke(id, now);
                }
            }
        }
        self.flush_all();
    }

    fn torrent(&self, id: TorrentId) -> Option<&Torrent> {
        self.torrents.get(id.0 as usize)?.as_ref()
    }

    fn torrent_mut(&mut self, id: TorrentId) -> Option<&mut Torrent> {
        torrent_in(&mut self.torrents, id)
    }

    fn peer(&self, conn: ConnId) -> Option<&Peer> {
        let slot = self.slots.get(conn.slot as usize)?;
        if slot.generation != conn.generation {
            return None;
        }
        slot.peer.as_ref()
    }

    fn peer_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        peer_in(&mut self.slots, conn)
    }

    /// The peer and its torrent, both mutable.
    fn both(&mut self, conn: ConnId) -> Option<(&mut Peer, &mut Torrent)> {
        let slot = self.slots.get_mut(conn.slot as usize)?;
        if slot.generation != conn.generation {
            return None;
        }
        let peer = slot.peer.as_mut()?;
        let torrent = self.torrents.get_mut(peer.torrent?.0 as usize)?.as_mut()?;
        Some((peer, torrent))
    }
}

/// The torrent `id` in `torrents` (a free function, like [`peer_in`], for callers that
/// also need the engine's other fields).
fn torrent_in(torrents: &mut [Option<Torrent>], id: TorrentId) -> Option<&mut Torrent> {
    torrents.get_mut(id.0 as usize)?.as_mut()
}

/// The live peer of `conn` in `slots` (a free function so the borrow of the slots stays
/// apart from the engine's other fields).
fn peer_in(slots: &mut [Slot], conn: ConnId) -> Option<&mut Peer> {
    let slot = slots.get_mut(conn.slot as usize)?;
    if slot.generation != conn.generation {
        return None;
    }
    slot.peer.as_mut()
}

fn rank(p: Priority) -> u8 {
    match p {
        Priority::Skip => 0,
        Priority::Normal => 1,
        Priority::High => 2,
    }
}

/// The engine keeps the picker in step with its own records, so the picker refusing a
/// call is a bug in the engine: loud in tests, harmless (the call is a no-op) in release.
fn consistent<T>(result: Result<T, crate::picker::PickerError>) {
    if let Err(e) = result {
        debug_assert!(false, "engine and picker disagree: {e}");
    }
}
