//! Local service discovery (BEP 14) in the engine, when `EngineConfig::lsd` is on: each
//! torrent that is not private announces itself to the multicast group
//! (`Output::LsdSend`) at its first tick and every [`ANNOUNCE_EVERY`] after, and the
//! announces the runtime receives (`Input::LsdReceived`) give dial candidates for the
//! torrents they name, through `add_peer` like any other source.
//!
//! Bounds: at most [`RECEIVE_PER_SECOND`] announces are read a second, whoever sends
//! them (a flood costs at most that); our own announces, looped back by the group, are
//! recognised by the engine's cookie and ignored. Private torrents (BEP 27) neither
//! announce nor take peers from LSD, and neither do magnet links' torrents until their
//! metadata says whether they are private.

use core::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::lsd::LsdAnnounce;

use super::{Engine, Output, TorrentId};

/// How often a torrent announces itself (BEP 14 asks for no more than once a minute;
/// libtorrent announces every five).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5 * 60);

/// Announces read per second at most.
pub const RECEIVE_PER_SECOND: u32 = 20;

/// The engine's LSD state: its cookie and the receive budget.
pub(super) struct LsdState {
    cookie: String,
    window: Option<Instant>,
    read_in_window: u32,
}

impl LsdState {
    pub(super) fn new(cookie: u64) -> LsdState {
        LsdState {
            cookie: format!("{cookie:016x}"),
            window: None,
            read_in_window: 0,
        }
    }
}

impl Engine {
    fn lsd_allowed(&self, id: TorrentId) -> bool {
        self.config.lsd && self.torrent(id).is_some_and(|t| !t.meta.info.private)
    }

    /// A torrent's announce, when one is due.
    pub(super) fn lsd_tick(&mut self, id: TorrentId, now: Instant) {
        if !self.lsd_allowed(id) {
            return;
        }
        let port = self.config.listen_port;
        let cookie = self.lsd.cookie.clone();
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        if t.lsd_next.is_some_and(|at| now < at) {
            return;
        }
        t.lsd_next = Some(now + ANNOUNCE_EVERY);
        let data = LsdAnnounce {
            port,
            info_hashes: vec![t.meta.info_hash],
            cookie: Some(cookie),
        }
        .encode();
        self.outputs.push_back(Output::LsdSend { data });
    }

    /// An announce from the local network.
    pub(super) fn on_lsd(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        if !self.config.lsd {
            return;
        }
        let s = &mut self.lsd;
        if s.window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1))
        {
            s.window = Some(now);
            s.read_in_window = 0;
        }
        if s.read_in_window >= RECEIVE_PER_SECOND {
            return;
        }
        s.read_in_window += 1;
        let Ok(announce) = LsdAnnounce::decode(data) else {
            return;
        };
        if announce.cookie.as_deref() == Some(self.lsd.cookie.as_str()) {
            return;
        }
        let addr = SocketAddr::new(from.ip(), announce.port);
        for hash in announce.info_hashes {
            if let Some(&id) = self.by_info_hash.get(&hash) {
                if self.lsd_allowed(id) {
                    self.add_peer(id, addr, now);
                }
            }
        }
    }
}
