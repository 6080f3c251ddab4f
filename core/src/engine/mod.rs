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
//! - [`Output::TrackerHttp`], [`Output::WebSeedRequest`], [`Output::UdpSend`]: HTTP
//!   exchanges with trackers and web seeds (the engine builds the requests and reads the
//!   answers), datagrams to UDP trackers and, once [`Engine::start_dht`] is called, to DHT
//!   nodes (one socket for both: [`Input::UdpReceived`] carries either).
//! - [`Output::Event`]: things a user wants to know.
//!
//! # Determinism
//!
//! All randomness comes from [`EngineConfig::rng_seed`]; all collections iterate in an
//! order fixed by the inputs. The same seed and the same inputs give the same outputs.
//!
//! # Where things are
//!
//! This file holds the [`Engine`] and its entry points; each concern has a module of its
//! own, whose methods are `impl Engine` blocks of their own: `api` (the public types),
//! `torrent` (adding, removing and describing torrents), `conn` (connection slots,
//! dialling, closing, flushing), `receive` (bytes to messages to their effects),
//! `transfer` (requests, blocks, serving, hashing), `encryption` (message stream
//! encryption: each connection's stream, RC4 on its bytes), `choke` (running the choker),
//! `trackers` (announces over HTTP and UDP), `magnet` (torrents added from a magnet
//! link, until their metadata is fetched), `pex` (peer exchange), `lsd` (local service
//! discovery), `dht` (the Mainline DHT node on the UDP socket), `webseeds` (BEP 19 web seeds as peers of the picker), `bandwidth` (rate
//! limits) and `timers` (the tick and connection deadlines). `peer` is one connection's
//! state, `policy` the rules for when to stop
//! seeding and when trackers that never answer mean trouble.

mod api;
mod bandwidth;
mod bans;
mod blame;
mod candidates;
mod choke;
mod conn;
mod dht;
mod encryption;
mod extension;
mod keys;
mod lsd;
mod magnet;
mod peer;
mod pex;
mod policy;
mod receive;
mod serve;
#[cfg(test)]
mod tests;
mod timers;
mod torrent;
mod trackers;
mod transfer;
mod webseeds;

pub use crate::IoError;
pub use api::{
    internal_error_message, AddTorrentError, CloseReason, ConnId, Encryption, EngineConfig, Event,
    Input, Output, PeerStream, ProtocolError, TorrentId, TorrentOptions, TorrentStats,
    WebSeedRequestId,
};
pub use bandwidth::RateLimits;
pub use dht::{DhtStats, ANNOUNCE_EVERY as DHT_ANNOUNCE_EVERY, RETRY_FIRST as DHT_RETRY_FIRST};
pub use lsd::{ANNOUNCE_EVERY as LSD_ANNOUNCE_EVERY, RECEIVE_PER_SECOND as LSD_RECEIVE_PER_SECOND};
pub use magnet::{FetchingStats, MAX_EARLY_HAVES};
pub use policy::{SeedLimit, TrackerWatch};
pub use trackers::STOP_GRACE;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use crate::choker::PeerInfo;
use crate::rng::Rng;
use crate::{BlockRequest, InfoHash};

use bandwidth::Bandwidth;
use conn::Slot;
use peer::Peer;
use timers::Timers;
use torrent::Torrent;
use trackers::Trackers;

/// The torrents (those fetching their metadata too) by info-hash, and by the name an MSE
/// initiator gives one, `HASH('req2', info-hash)`: an incoming encrypted connection finds
/// its torrent in one lookup, where hashing each info-hash in turn cost a thousand SHA-1s
/// per connection in a daemon with 1,000 torrents.
#[derive(Default)]
struct ByInfoHash {
    ids: BTreeMap<InfoHash, TorrentId>,
    req2: BTreeMap<[u8; 20], InfoHash>,
}

impl ByInfoHash {
    fn get(&self, info_hash: &InfoHash) -> Option<&TorrentId> {
        self.ids.get(info_hash)
    }

    fn insert(&mut self, info_hash: InfoHash, id: TorrentId) {
        self.ids.insert(info_hash, id);
        self.req2.insert(crate::mse::req2(&info_hash), info_hash);
    }

    fn remove(&mut self, info_hash: &InfoHash) -> Option<TorrentId> {
        self.req2.remove(&crate::mse::req2(info_hash));
        self.ids.remove(info_hash)
    }

    /// The info-hash whose `HASH('req2', …)` is `req2`, if it is one of ours.
    fn by_req2(&self, req2: &[u8; 20]) -> Option<InfoHash> {
        self.req2.get(req2).copied()
    }
}

/// The engine. See the module docs for how to drive it.
pub struct Engine {
    config: EngineConfig,
    rng: Rng,
    torrents: Vec<Option<Torrent>>,
    by_info_hash: ByInfoHash,
    /// Torrents added from a magnet link whose metainfo is not in yet (their slot in
    /// `torrents` is empty meanwhile).
    fetching: BTreeMap<TorrentId, magnet::Fetching>,
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    connections: usize,
    outputs: VecDeque<Output>,
    /// Connections with bytes in their write buffer, in the order they got them.
    dirty: Vec<ConnId>,
    /// Every connection's and torrent's next wake-up.
    timers: Timers,
    /// The rate limits' buckets and who waits for them.
    bandwidth: Bandwidth,
    scratch: Vec<BlockRequest>,
    /// Reused by `rechoke` for the choker's view of the peers, and the peers it describes.
    choke_infos: Vec<PeerInfo>,
    choke_conns: Vec<ConnId>,
    /// Local service discovery's cookie and receive budget (see `lsd`).
    lsd: lsd::LsdState,
    /// Removed torrents' trackers, kept until their `stopped` announce is done.
    stopping: Vec<(TorrentId, Trackers, Instant)>,
    /// The DHT node, once started (see `dht`).
    dht: Option<dht::DhtState>,
    /// Message stream encryption's keys and pads (a stream of its own, so encrypted
    /// connections change no other random choice).
    mse_rng: Rng,
}

impl Engine {
    /// An engine with no torrent and no connection. Every random choice it will make
    /// follows from [`EngineConfig::rng_seed`].
    pub fn new(config: EngineConfig) -> Engine {
        // A stream of its own, so turning LSD on or off changes no other random choice.
        let lsd = lsd::LsdState::new(Rng::new(config.rng_seed ^ 0x6c73_645f_636f_6f6b).next_u64());
        Engine {
            rng: Rng::new(config.rng_seed),
            bandwidth: Bandwidth::new(config.rate_limits),
            mse_rng: Rng::new(config.rng_seed ^ 0x6d73_655f_6b65_7973),
            lsd,
            config,
            torrents: Vec::new(),
            by_info_hash: ByInfoHash::default(),
            fetching: BTreeMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            connections: 0,
            outputs: VecDeque::new(),
            dirty: Vec::new(),
            timers: Timers::default(),
            scratch: Vec::new(),
            choke_infos: Vec::new(),
            choke_conns: Vec::new(),
            stopping: Vec::new(),
            dht: None,
        }
    }

    /// The settings the engine was made with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The next action for the caller to carry out, in order; `None` when there is none
    /// left. Call it until it returns `None` after every call that changes the engine:
    /// outputs are produced by those calls, never by time passing on its own.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            self.flush_all();
        }
        self.outputs.pop_front()
    }

    /// When to give the engine [`Input::Timer`] if nothing else happens first; `None`
    /// while nothing needs timing. Ask again after every call that changes
    /// the engine: the answer may move either way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.next(), self.dht_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes one fact from outside at time `now`, which must not be earlier than the
    /// `now` of any earlier call. Input about a connection or torrent that is gone is
    /// ignored. Then drain [`poll_output`](Self::poll_output).
    pub fn handle(&mut self, input: Input, now: Instant) {
        // The torrent the input concerns: what it changes (interest, departures, freed
        // blocks) is settled for that torrent alone once the input is handled.
        let of_conn = |e: &Engine, conn: ConnId| e.peer(conn).and_then(|p| p.torrent);
        let torrent = match &input {
            Input::Connected { conn }
            | Input::ConnectFailed { conn }
            | Input::Received { conn, .. }
            | Input::Closed { conn }
            | Input::Sent { conn, .. } => of_conn(self, *conn),
            Input::BlockRead { torrent, .. }
            | Input::BlockWritten { torrent, .. }
            | Input::PieceHashed { torrent, .. }
            | Input::PieceUnreadable { torrent, .. }
            | Input::TrackerHttp { torrent, .. }
            | Input::WebSeedResponse { torrent, .. } => Some(*torrent),
            Input::UdpReceived { .. } | Input::LsdReceived { .. } | Input::Timer => None,
        };
        match input {
            Input::Connected { conn } => self.on_connected(conn, now),
            Input::ConnectFailed { conn } => self.close(conn, CloseReason::ConnectFailed),
            Input::Received { conn, data } => self.on_received(conn, data, now),
            Input::Closed { conn } => {
                if self.peer(conn).is_some() {
                    self.close_inner(conn, CloseReason::Remote, false);
                }
            }
            Input::Sent { conn, bytes } => {
                if let Some(p) = self.peer_mut(conn) {
                    p.unsent = p.unsent.saturating_sub(bytes);
                    self.pump_reads(conn, now);
                }
            }
            Input::BlockRead {
                torrent,
                conn,
                block,
                result,
            } => self.on_block_read(torrent, conn, block, result, now),
            Input::BlockWritten {
                torrent,
                block,
                result,
            } => self.on_block_written(torrent, block, result),
            Input::PieceHashed { torrent, piece, ok } => {
                self.on_piece_hashed(torrent, piece, ok, now)
            }
            Input::PieceUnreadable {
                torrent,
                piece,
                error,
            } => self.on_piece_unreadable(torrent, piece, error),
            Input::TrackerHttp {
                torrent,
                id,
                result,
            } => self.on_tracker_http(torrent, id, result, now),
            Input::WebSeedResponse {
                torrent,
                id,
                result,
            } => self.on_webseed_response(torrent, id, result, now),
            Input::UdpReceived { from, data } => {
                if !self.on_dht_datagram(from, &data, now) {
                    self.on_udp(from, &data, now)
                }
            }
            Input::LsdReceived { from, data } => self.on_lsd(from, &data, now),
            Input::Timer => {
                self.run_timers(now);
                self.dht_timers(now);
            }
        }
        if let Some(id) = torrent {
            self.settle(id, now);
        }
        self.flush_all();
    }

    /// What an input left to do for torrent `id`: run the choker early if a slot may be
    /// free, offer freed blocks to the peers that can take them.
    fn settle(&mut self, id: TorrentId, now: Instant) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        let rechoke = std::mem::take(&mut t.rechoke_wanted);
        let refill = std::mem::take(&mut t.refill_wanted);
        if rechoke {
            self.rechoke(id, now);
        }
        if refill {
            let peers = self
                .torrent(id)
                .map(|t| t.peers.clone())
                .unwrap_or_default();
            for conn in peers {
                self.fill_requests(conn, now);
            }
        }
        self.pump_webseeds(id, now);
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

/// The engine keeps the picker in step with its own records, so the picker refusing a
/// call is a bug in the engine. In tests it stops the test; in release the refused call
/// changed nothing and the torrent goes on, but the refusal is counted in `faults` and
/// reported once a second as [`Event::InternalError`], so a bug is seen, not hidden.
fn consistent<T>(faults: &mut Disagreements, result: Result<T, crate::picker::PickerError>) {
    if let Err(e) = result {
        debug_assert!(false, "engine and picker disagree: {e}");
        faults.record(e);
    }
}

/// The picker calls a torrent's engine expected to succeed and that were refused (see
/// [`consistent`]): how many since the last report, and the first one's error.
#[derive(Default)]
pub(super) struct Disagreements {
    count: u32,
    first: Option<crate::picker::PickerError>,
}

impl Disagreements {
    fn record(&mut self, e: crate::picker::PickerError) {
        self.count = self.count.saturating_add(1);
        self.first.get_or_insert(e);
    }

    /// The report for an [`Event::InternalError`], if any call was refused since the last.
    fn take(&mut self) -> Option<(u32, crate::picker::PickerError)> {
        let first = self.first.take()?;
        Some((std::mem::take(&mut self.count), first))
    }
}
