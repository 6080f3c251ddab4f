//! Torrents added from a magnet link, before their metainfo is known: a [`Fetching`]
//! torrent dials the link's peers (`x.pe`) and its trackers' (`tr`), does the handshakes,
//! fetches the `info` dictionary with `ut_metadata` (BEP 9) through a
//! [`MetadataFetch`], and then becomes a normal torrent in place, keeping its connections.
//!
//! The steps, and who takes them:
//!
//! 1. [`Engine::add_magnet`]: the torrent gets its [`TorrentId`] at once (its slot in the
//!    engine's torrent list stays empty until step 3) and announces with `left` = 1 (the
//!    size is unknown; 0 would say "seed").
//! 2. Peers whose extended handshake has `ut_metadata` and a `metadata_size` become sources
//!    of the fetch. Whatever they send that needs the piece count (bitfield, haves,
//!    have-all) is kept on the connection, bounded ([`MAX_EARLY_HAVES`]); data and rejects
//!    go to the fetch; a peer the fetch finds lying is closed
//!    ([`CloseReason::BadMetadata`]). When the metadata hashes to the info-hash,
//!    [`Event::MetadataReceived`] carries it (its `info_bytes` are the `.torrent`'s).
//! 3. The runtime opens storage for it (it may find pieces already on disk) and calls
//!    [`Engine::attach_metainfo`] with what it verified. The torrent becomes a normal one
//!    under the same id: the same connections, candidates and trackers; each connection's
//!    kept bitfield and haves are checked against the real piece count (a peer whose
//!    bitfield does not fit is closed) and given to the picker, a second extended handshake
//!    tells it our `metadata_size`, and requests start.
//!
//! Invariants: a torrent id is either in `Engine::torrents` or in `Engine::fetching`,
//! never both; every connection of a fetching torrent is in its `peers`; the fetch knows
//! only connections that are still open (a closed one is removed from it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::magnet::Magnet;
use crate::metadata::{Action, FetchConfig, MessageError, MetadataFetch, MetadataMessage};
use crate::metainfo::Metainfo;
use crate::tracker::Announcer;
use crate::wire::{ExtendedHandshake, Message};
use crate::PieceIndex;

use super::bans::Bans;
use super::candidates::Candidates;
use super::extension::{self, UT_METADATA_ID};
use super::peer::{Peer, Phase};
use super::trackers::Trackers;
use super::{
    consistent, AddTorrentError, CloseReason, ConnId, Engine, Event, ProtocolError, TorrentId,
    TorrentOptions,
};

/// Haves a peer may send before the metadata is in; one more closes it (it is dialled
/// again later, and then sends its bitfield anew). Real peers send a few while a fetch
/// takes seconds.
pub const MAX_EARLY_HAVES: usize = 4096;

/// A torrent whose metainfo is being fetched from its peers.
pub(super) struct Fetching {
    pub(super) magnet: Magnet,
    pub(super) fetch: MetadataFetch<ConnId>,
    pub(super) peers: Vec<ConnId>,
    pub(super) candidates: Candidates,
    pub(super) bans: Bans,
    pub(super) trackers: Trackers,
    pub(super) wake: Option<Instant>,
    /// The verified metainfo, once the fetch is done (and reported).
    pub(super) meta: Option<Arc<Metainfo>>,
    /// The fetch ended in metadata that hashes right but is not a usable torrent.
    pub(super) failed: bool,
}

/// What a peer said it has before the piece count was known.
#[derive(Default, Debug)]
pub(crate) struct EarlyHaves {
    bitfield: Option<Bytes>,
    have_all: bool,
    haves: Vec<u32>,
}

/// A fetching torrent's figures, as in [`Event::FetchingMetadata`] and
/// [`Engine::fetching`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchingStats {
    /// Connections (handshake done or not).
    pub peers: usize,
    /// Peers that offered the metadata and can still be asked.
    pub sources: usize,
    /// Bytes of the metadata in.
    pub received: u64,
    /// The metadata's size, once a source said.
    pub size: Option<u64>,
}

/// The latest instant the engine has seen on a connection: the time used for the fetch's
/// bookkeeping when the connection closes outside a call that has `now` at hand (it is
/// never later than `now`, so requests re-sent then time out no later than they should).
pub(super) fn now_of(p: &Peer) -> Instant {
    p.last_received.max(p.last_sent).max(p.cold.phase_since)
}

impl Engine {
    /// Adds a torrent known only by its magnet link: its peers (`x.pe`, as `ip:port`;
    /// host names are the runtime's to resolve and give with [`Engine::add_peer`]) are
    /// dialled and its trackers (`tr`, one tier each) announced to; the metadata is fetched
    /// from peers that offer it. Returns the existing id if the torrent is already added.
    /// See the module docs for what follows.
    pub fn add_magnet(&mut self, magnet: &Magnet, now: Instant) -> TorrentId {
        if let Some(&id) = self.by_info_hash.get(&magnet.info_hash) {
            return id;
        }
        let id = TorrentId(self.torrents.len() as u32);
        self.torrents.push(None);
        let announcer = Announcer::new(
            magnet.info_hash,
            self.config.peer_id,
            self.config.listen_port,
            magnet.trackers.iter().map(|t| vec![t.clone()]).collect(),
            self.config.announcer.clone(),
            self.rng.next_u64(),
            now,
        );
        let fetch = MetadataFetch::new(
            magnet,
            FetchConfig {
                max_size: self.config.max_metadata_size,
                ..FetchConfig::default()
            },
        );
        self.fetching.insert(
            id,
            Fetching {
                magnet: magnet.clone(),
                fetch,
                peers: Vec::new(),
                candidates: Candidates::new(self.config.max_candidates, self.rng.next_u64()),
                bans: Bans::default(),
                trackers: Trackers {
                    announcer,
                    udp: BTreeMap::new(),
                    udp_pending: None,
                },
                wake: None,
                meta: None,
                failed: false,
            },
        );
        self.by_info_hash.insert(magnet.info_hash, id);
        for addr in magnet.peers.iter().filter_map(|p| p.parse().ok()) {
            self.add_peer(id, addr, now);
        }
        self.arm_torrent(id, now + super::timers::TICK);
        self.announce(id, now);
        id
    }

    /// A fetching torrent's figures; `None` for a torrent whose metainfo is known (see
    /// [`Engine::stats`]) or that is gone.
    pub fn fetching(&self, id: TorrentId) -> Option<FetchingStats> {
        let f = self.fetching.get(&id)?;
        let (received, size) = f.fetch.progress();
        Some(FetchingStats {
            peers: f.peers.len(),
            sources: f.fetch.peer_count(),
            received: if f.meta.is_some() {
                size.unwrap_or(received)
            } else {
                received
            },
            size,
        })
    }

    /// Makes a fetching torrent whose metadata is in ([`Event::MetadataReceived`]) a normal
    /// one, with `opts.verified` the pieces the runtime found on disk. Its connections are
    /// kept (see the module docs). Errors if the metadata is not in yet, or as
    /// [`Engine::add_torrent`].
    pub fn attach_metainfo(
        &mut self,
        id: TorrentId,
        opts: TorrentOptions,
        now: Instant,
    ) -> Result<(), AddTorrentError> {
        let meta = match self.fetching.get(&id) {
            Some(Fetching { meta: Some(m), .. }) => m.clone(),
            _ => return Err(AddTorrentError::NoMetadata),
        };
        let mut t = self.new_torrent(id, meta.clone(), opts, now)?;
        let Some(f) = self.fetching.remove(&id) else {
            return Err(AddTorrentError::NoMetadata);
        };
        t.peers = f.peers;
        t.candidates = f.candidates;
        t.bans = f.bans;
        t.trackers = f.trackers;
        // Its timer entry stays valid: the wake-up finds the torrent under the same id.
        t.wake = f.wake;
        self.torrents[id.0 as usize] = Some(t);
        let piece_count = meta.info.piece_count();
        let conns = self
            .torrent(id)
            .map(|t| t.peers.clone())
            .unwrap_or_default();
        let mut broken = Vec::new();
        for &conn in &conns {
            if let Err(reason) = self.join_picker(conn, piece_count, now) {
                broken.push((conn, reason));
            }
        }
        for (conn, reason) in broken {
            self.close(conn, reason);
        }
        for &conn in &conns {
            // PEX with the peers that offered it, now that the torrent's privacy is known.
            self.pex_list(conn);
            if let Some(their_id) = self.peer(conn).map(|p| p.cold.ut_pex) {
                self.on_pex_offer(conn, their_id);
            }
        }
        for conn in conns {
            self.update_interest(conn);
            self.fill_requests(conn, now);
            self.mark_dirty(conn);
        }
        if !meta.url_list.is_empty() {
            self.add_webseeds(id, &meta);
            self.pump_webseeds(id, now);
        }
        if let Some(t) = self.torrent_mut(id) {
            t.rechoke_wanted = true;
        }
        self.settle(id, now);
        self.announce(id, now);
        Ok(())
    }

    /// A connection of a torrent that just got its metainfo: what it said it has goes to
    /// the picker, and it hears what we have and our `metadata_size`.
    fn join_picker(
        &mut self,
        conn: ConnId,
        piece_count: u32,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let pex = self.config.pex;
        let client = self.config.client_name.clone();
        let port = self.config.listen_port;
        let reqq = self.config.max_serve_queue as u32;
        let Some((p, t)) = self.both(conn) else {
            return Ok(());
        };
        if p.phase != Phase::Active {
            // Its handshake, when done, starts it like any connection of a known torrent.
            return Ok(());
        }
        let key = t.keys.take_once(p.key, conn);
        p.key = key;
        p.decoder.set_piece_count(piece_count);
        consistent(&mut t.faults, t.picker.add_peer(key));
        let early = p.cold.early.take().unwrap_or_default();
        if let Some(bytes) = &early.bitfield {
            let field = crate::bitfield::Bitfield::from_wire(bytes, piece_count)
                .map_err(CloseReason::from)?;
            p.have_count = field.count_ones();
            consistent(&mut t.faults, t.picker.peer_bitfield(key, &field));
        }
        if early.have_all {
            p.have_count = piece_count;
            consistent(&mut t.faults, t.picker.peer_have_all(key));
        }
        for piece in early.haves {
            if piece >= piece_count {
                return Err(CloseReason::Protocol(ProtocolError::HaveOutOfRange(
                    PieceIndex(piece),
                )));
            }
            if t.picker.peer_have(key, PieceIndex(piece)) == Ok(true) {
                p.have_count += 1;
            }
        }
        if p.peer_interested {
            t.interested.push(conn);
        }
        // We sent no bitfield (or have-none): what we hold now goes as haves.
        for piece in t.store.verified().iter_ones() {
            p.send(&Message::Have(PieceIndex(piece)));
        }
        p.cold.metadata_budget = extension::metadata_budget(t.meta.info_bytes.len());
        if p.cold.extensions {
            let hs = ExtendedHandshake {
                extensions: extension::our_extensions(pex && !t.meta.info.private),
                listen_port: Some(port),
                client: Some(client),
                reqq: Some(reqq),
                metadata_size: Some(t.meta.info_bytes.len() as u64),
                ..ExtendedHandshake::default()
            };
            p.send(&Message::Extended {
                id: 0,
                payload: hs.encode(),
            });
        }
        p.last_sent = now;
        Ok(())
    }

    /// After both handshakes, for a fetching torrent: we have nothing to offer yet but our
    /// extended handshake (without `metadata_size`).
    pub(super) fn start_fetching_session(&mut self, conn: ConnId, now: Instant) {
        let client = self.config.client_name.clone();
        let port = self.config.listen_port;
        let reqq = self.config.max_serve_queue as u32;
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        p.cold.early = Some(Box::default());
        if p.fast {
            p.send(&Message::HaveNone);
        }
        if p.cold.extensions {
            let hs = ExtendedHandshake {
                // No PEX until the metadata says whether the torrent is private.
                extensions: extension::our_extensions(false),
                listen_port: Some(port),
                client: Some(client),
                reqq: Some(reqq),
                ..ExtendedHandshake::default()
            };
            p.send(&Message::Extended {
                id: 0,
                payload: hs.encode(),
            });
        }
        p.last_sent = now;
        self.mark_dirty(conn);
        self.arm_conn_deadline(conn);
    }

    /// Whether `conn` belongs to a torrent whose metainfo is being fetched.
    pub(super) fn is_fetching_peer(&self, conn: ConnId) -> bool {
        self.peer(conn)
            .and_then(|p| p.torrent)
            .is_some_and(|id| self.fetching.contains_key(&id))
    }

    /// One message on a connection of a fetching torrent; `Err` closes it.
    pub(super) fn on_fetching_message(
        &mut self,
        conn: ConnId,
        message: Message,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let p = self.peer_mut(conn).ok_or(CloseReason::Remote)?;
        let first = !p.got_message;
        if !matches!(message, Message::Extended { .. } | Message::KeepAlive) {
            p.got_message = true;
        }
        let fast_only = |p: &Peer, what: &'static str| {
            if p.fast {
                Ok(())
            } else {
                Err(CloseReason::Protocol(ProtocolError::NotFast(what)))
            }
        };
        match message {
            Message::KeepAlive | Message::Port(_) | Message::Cancel(_) => {}
            // Never asked for: we have requested nothing.
            Message::Piece { .. } => {}
            Message::Choke => p.peer_choking = true,
            Message::Unchoke => p.peer_choking = false,
            Message::Interested => p.peer_interested = true,
            Message::NotInterested => p.peer_interested = false,
            Message::Have(piece) => {
                let early = p.cold.early.get_or_insert_with(Box::default);
                if early.haves.len() >= MAX_EARLY_HAVES {
                    return Err(CloseReason::Protocol(ProtocolError::TooManyEarlyHaves));
                }
                early.haves.push(piece.0);
            }
            Message::Bitfield(bytes) => {
                let early = p.cold.early.get_or_insert_with(Box::default);
                if first || early.bitfield.is_none() {
                    early.bitfield = Some(bytes);
                } else if let Some(old) = &early.bitfield {
                    // A late bitfield (aria2) adds to what it had, as for a known torrent.
                    let mut merged = old.to_vec();
                    merged.resize(merged.len().max(bytes.len()), 0);
                    for (m, b) in merged.iter_mut().zip(bytes.iter()) {
                        *m |= b;
                    }
                    early.bitfield = Some(Bytes::from(merged));
                }
            }
            Message::HaveAll => {
                fast_only(p, "have all")?;
                p.cold.early.get_or_insert_with(Box::default).have_all = true;
            }
            Message::HaveNone => fast_only(p, "have none")?,
            // We choke everyone while we have nothing; a fast peer hears so.
            Message::Request(block) => {
                if p.fast {
                    p.send(&Message::Reject(block));
                    self.mark_dirty(conn);
                }
            }
            Message::Reject(_) => fast_only(p, "reject")?,
            Message::AllowedFast(_) => fast_only(p, "allowed fast")?,
            Message::Suggest(_) => fast_only(p, "suggest")?,
            Message::Extended { id: 0, payload } => {
                if let Ok(hs) = ExtendedHandshake::decode(&payload) {
                    self.on_extended_handshake(conn, &hs);
                    self.offer_metadata_source(conn, hs.metadata_size, now);
                }
            }
            Message::Extended { id, payload } => {
                if id == UT_METADATA_ID {
                    self.on_fetching_metadata_message(conn, &payload, now)?;
                }
            }
        }
        Ok(())
    }

    /// A peer's extended handshake named a metadata size: it becomes a source, if the size
    /// is one we accept and it speaks `ut_metadata`.
    fn offer_metadata_source(&mut self, conn: ConnId, size: Option<u64>, now: Instant) {
        let Some(p) = self.peer(conn) else {
            return;
        };
        let (Some(id), Some(size)) = (p.torrent, size) else {
            return;
        };
        if p.cold.ut_metadata == 0 {
            return;
        }
        let Some(f) = self.fetching.get_mut(&id) else {
            return;
        };
        // A size out of bounds, or a second handshake: the peer stays, for the payload.
        let _ = f.fetch.add_peer(conn, size, now);
        self.pump_fetch(id, now);
    }

    fn on_fetching_metadata_message(
        &mut self,
        conn: ConnId,
        payload: &Bytes,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let Some((id, their_id)) = self
            .peer(conn)
            .and_then(|p| Some((p.torrent?, p.cold.ut_metadata)))
        else {
            return Ok(());
        };
        let message = match MetadataMessage::decode(payload) {
            Ok(m) => m,
            // More than a piece in one message: the peer cannot be serving right.
            Err(MessageError::DataTooLong(_)) => return Err(CloseReason::BadMetadata),
            Err(_) => return Ok(()),
        };
        if let MetadataMessage::Request { piece } = message {
            // We have none to give yet.
            if their_id != 0 {
                if let Some(p) = self.peer_mut(conn) {
                    p.send(&Message::Extended {
                        id: their_id,
                        payload: MetadataMessage::Reject { piece }.encode(),
                    });
                }
                self.mark_dirty(conn);
            }
            return Ok(());
        }
        if let Some(f) = self.fetching.get_mut(&id) {
            f.fetch.on_message(conn, &message, now);
        }
        self.pump_fetch(id, now);
        Ok(())
    }

    /// A closed connection of torrent `id` is no longer a source.
    pub(super) fn forget_metadata_source(&mut self, id: TorrentId, conn: ConnId, now: Instant) {
        if let Some(f) = self.fetching.get_mut(&id) {
            f.fetch.remove_peer(conn, now);
            self.pump_fetch(id, now);
        }
    }

    /// Carries out what the fetch asks (requests, drops) and reports its end.
    pub(super) fn pump_fetch(&mut self, id: TorrentId, now: Instant) {
        loop {
            let Some(f) = self.fetching.get_mut(&id) else {
                return;
            };
            let Some(action) = f.fetch.poll_action() else {
                break;
            };
            match action {
                Action::Request { peer, piece } => {
                    if let Some(p) = self.peer_mut(peer) {
                        if p.cold.ut_metadata != 0 {
                            p.send(&Message::Extended {
                                id: p.cold.ut_metadata,
                                payload: MetadataMessage::Request { piece }.encode(),
                            });
                            p.last_sent = now;
                            self.mark_dirty(peer);
                        }
                    }
                }
                Action::Drop { peer, .. } => self.close(peer, CloseReason::BadMetadata),
            }
        }
        let Some(f) = self.fetching.get_mut(&id) else {
            return;
        };
        if f.meta.is_some() || f.failed {
            return;
        }
        let event = match f.fetch.outcome() {
            None => return,
            Some(Ok(meta)) => {
                let meta = Arc::new(meta.clone());
                f.meta = Some(meta.clone());
                Event::MetadataReceived { torrent: id, meta }
            }
            Some(Err(error)) => {
                f.failed = true;
                Event::MetadataFailed {
                    torrent: id,
                    error: error.clone(),
                }
            }
        };
        self.outputs.push_back(super::Output::Event(event));
    }

    /// A fetching torrent's periodic work: the fetch's timeouts, dialling, announcing,
    /// and a progress event.
    pub(super) fn on_fetching_timer(&mut self, id: TorrentId, now: Instant) {
        let Some(f) = self.fetching.get_mut(&id) else {
            return;
        };
        if f.fetch.poll_timeout().is_some_and(|at| at <= now) {
            f.fetch.handle_timeout(now);
        }
        self.pump_fetch(id, now);
        self.dial(id, now);
        self.udp_timeouts(id, now);
        self.announce(id, now);
        self.dht_tick(id, now);
        if let Some(stats) = self.fetching(id) {
            self.outputs
                .push_back(super::Output::Event(Event::FetchingMetadata {
                    torrent: id,
                    stats,
                }));
        }
        self.arm_torrent(id, now + super::timers::TICK);
    }

    /// Removes a fetching torrent: its connections closed, its trackers told `stopped`.
    pub(super) fn remove_fetching(&mut self, id: TorrentId, now: Instant) -> bool {
        let Some(mut f) = self.fetching.remove(&id) else {
            return false;
        };
        self.by_info_hash.remove(&f.magnet.info_hash);
        for conn in std::mem::take(&mut f.peers) {
            self.close(conn, CloseReason::TorrentRemoved);
        }
        f.trackers.announcer.stop(now);
        self.stopping
            .push((id, f.trackers, now + super::STOP_GRACE));
        true
    }
}
