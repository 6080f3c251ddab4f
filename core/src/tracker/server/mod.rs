//! The tracker's server side, sans-IO: the swarm table, announces and scrapes over HTTP and
//! UDP.
//!
//! [`TrackerServer`] is a state machine like the engine: the runtime hands it a request and
//! `now`, and gets the answer's bytes back; it never reads a clock, opens a socket or draws
//! from global randomness (peer selection comes from [`ServerConfig::rng_seed`], connection
//! ids and map keys from [`ServerConfig::secret`]). The same config and the same calls give
//! the same answers, byte for byte.
//!
//! - [`request`]: an HTTP announce or scrape query read into an [`AnnounceRequest`] or a
//!   list of info-hashes, with [`Failure`]s that name the missing or malformed field; and
//!   the bencoded answers (compact BEP 23 with BEP 7 `peers6`, or dictionaries).
//! - [`http`]: HTTP/1.1 request heads read with `httparse` (bounded), responses written,
//!   and the routing of `/announce` and `/scrape`.
//! - [`udp`]: the BEP 15 server side, with connection ids that are derived, not stored.
//!
//! # The swarm table
//!
//! One swarm per info-hash; a peer is identified by its address and port (as opentracker
//! does), so a client can only ever change the entry of the address it announces from (the
//! `ip` parameter is ignored unless [`ServerConfig::allow_ip_param`]). Per peer: its peer
//! id, address, port, `left`, when it was last seen, and whether its `completed` was
//! counted.
//!
//! - `started` and regular announces add or refresh the peer; `left == 0` makes it a seed.
//!   `completed` counts one download per peer (a second `completed` from the same peer
//!   counts nothing). `stopped` removes the peer and answers with counts only.
//! - Answers carry up to `numwant` peers (default [`ServerConfig::default_numwant`], capped
//!   at [`ServerConfig::max_numwant`]) chosen pseudo-randomly, never the requester, and
//!   only leechers when the requester is a seed (a seed has nothing to get from a seed).
//!   Counts (`complete`, `incomplete`, `downloaded`) are taken after the announce.
//! - A peer not heard from for [`ServerConfig::peer_timeout`] (by default twice the
//!   interval and five minutes of grace) expires. Expiry never scans the table: each swarm
//!   keeps its peers least recently seen first, so an announce or scrape of a swarm first
//!   drops the expired prefix of its list; and the swarms themselves are kept least
//!   recently announced to first, so [`TrackerServer::handle_timeout`] drops whole dead
//!   swarms from the front, a bounded number of peers per call, and
//!   [`TrackerServer::poll_timeout`] says when the next one dies.
//! - Memory is bounded by [`ServerConfig::max_swarms`], [`ServerConfig::max_peers_per_swarm`]
//!   and [`ServerConfig::max_peers`]. At a cap the stalest goes first: a new swarm evicts the
//!   swarm announced to least recently, a new peer in a full swarm evicts that swarm's
//!   least recently seen peer, and a new peer past the total evicts the least recently seen
//!   peer of the least recently active swarm.
//! - With `open` off, only info-hashes on the allow-list are tracked; others get a failure
//!   naming the reason, and never take a slot.
//! - One host (an IPv4 address, or an IPv6 /64: one subscriber's block) holds at most
//!   [`ServerConfig::max_peers_per_host_in_swarm`] peers in a swarm and
//!   [`ServerConfig::max_peers_per_host`] in all; past them a new peer of its gets
//!   [`Failure::HostFull`] and nothing is created. A host cannot fill a swarm with ports
//!   of its own, and announcing then stopping in a loop cannot cycle the table's swarms
//!   out: a new swarm evicts empty swarms before any with peers. Loopback is exempt.
//!
//! # What differs from opentracker, deliberately
//!
//! opentracker (the reference the interop tests compare with) returns the requester among
//! its own peers and gives seeds to seeds; both are useless to the client, so shoal leaves
//! them out. opentracker accepts an announce without a port (recording port 0) and
//! refuses dictionary (non-compact) answers; shoal refuses the first and gives the second.

mod hash;
pub mod http;
pub mod request;
mod table;
pub mod udp;

use core::net::{IpAddr, SocketAddr};
use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use super::udp::IpFamily;
use super::{AnnounceEvent, ScrapeStats};
use crate::rng::Rng;
use crate::types::{host_of, InfoHash, PeerId};
use hash::KeyedState;
use table::{SwarmId, Table};

pub use http::{parse_request_head, HeadError, Method, RequestHead, MAX_REQUEST_HEAD};
pub use request::{encode_announce_answer, parse_announce_query, parse_scrape_query};

/// Most peers removed by one [`TrackerServer::handle_timeout`]; more waiting makes
/// [`TrackerServer::poll_timeout`] ask to be called again at once.
const SWEEP_BUDGET: usize = 4096;

/// Settings of a [`TrackerServer`]. `Default` is a public tracker's: open, 30-minute
/// interval, room for a million peers in 250,000 torrents.
///
/// Memory: about 160 bytes per peer and 290 per swarm (on 64-bit), and up to ~70 bytes
/// more per peer for the per-host counts, so the default caps bound the table at about
/// 300 MB.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The `interval` told to clients: how often to announce.
    pub interval: Duration,
    /// The `min interval`: no announce sooner than this after the last.
    pub min_interval: Duration,
    /// A peer not heard from for this long is dropped.
    pub peer_timeout: Duration,
    /// Peers in an answer when the client does not say (`numwant` missing or negative).
    pub default_numwant: u32,
    /// Most peers in one answer, whatever the client asks.
    pub max_numwant: u32,
    /// Most swarms (info-hashes) held.
    pub max_swarms: usize,
    /// Most peers held in one swarm.
    pub max_peers_per_swarm: usize,
    /// Most peers held in all.
    pub max_peers: usize,
    /// Most peers one host (an IPv4 address, or an IPv6 /64) may hold in one swarm: many
    /// clients behind one NAT are served, one host posing as a crowd of ports is not.
    pub max_peers_per_host_in_swarm: u32,
    /// Most peers one host may hold in the whole table (a seedbox's thousands of torrents
    /// fit; one host filling the table to evict real swarms does not).
    pub max_peers_per_host: u32,
    /// Most torrents in one scrape answer (a scrape of everything, or of a long list).
    pub max_scrape: usize,
    /// Track any info-hash; when off, only those of the allow-list.
    pub open: bool,
    /// Use the address a client names (HTTP `ip`, UDP `ip` field) instead of the one its
    /// packets come from. Off by default: it lets anyone announce someone else.
    pub allow_ip_param: bool,
    /// Seed of the peer selection.
    pub rng_seed: u64,
    /// The secret behind UDP connection ids and the table's hash keys. Give 32 random bytes:
    /// whoever knows it can forge connection ids.
    pub secret: [u8; 32],
    /// The time window of a UDP connection id; one is accepted in its window and the next
    /// (BEP 15: clients use one for a minute, servers accept it for two).
    pub connection_window: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let interval = Duration::from_secs(1800);
        ServerConfig {
            interval,
            min_interval: interval / 2,
            peer_timeout: interval * 2 + Duration::from_secs(300),
            default_numwant: 50,
            max_numwant: 200,
            max_swarms: 250_000,
            max_peers_per_swarm: 100_000,
            max_peers: 1_000_000,
            max_peers_per_host_in_swarm: 16,
            max_peers_per_host: 10_000,
            max_scrape: 1000,
            open: true,
            allow_ip_param: false,
            rng_seed: 0,
            secret: [0; 32],
            connection_window: Duration::from_secs(60),
        }
    }
}

/// One announce, whichever protocol carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer's id.
    pub peer_id: PeerId,
    /// The address to record: the connection's source, or the `ip` parameter when the
    /// config allows it.
    pub ip: IpAddr,
    /// The port it accepts peer connections on.
    pub port: u16,
    /// Bytes it has sent, as it says.
    pub uploaded: u64,
    /// Bytes it has received, as it says.
    pub downloaded: u64,
    /// Bytes it still misses; 0 makes it a seed.
    pub left: u64,
    /// Why it announces now; `stopped` removes it from the swarm.
    pub event: AnnounceEvent,
    /// Peers wanted; `None` for the tracker's default.
    pub numwant: Option<u32>,
    /// A compact answer (BEP 23) rather than a list of dictionaries (HTTP only).
    pub compact: bool,
    /// Leave peer ids out of a dictionary answer.
    pub no_peer_id: bool,
    /// The `key` a client sends to be recognised across address changes.
    pub key: Option<u32>,
    /// Only peers of this address family (a UDP answer carries one family).
    pub family: Option<IpFamily>,
}

impl AnnounceRequest {
    /// A regular announce from `ip:port` with nothing downloaded and nothing left.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, ip: IpAddr, port: u16) -> Self {
        AnnounceRequest {
            info_hash,
            peer_id,
            ip,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::None,
            numwant: None,
            compact: true,
            no_peer_id: false,
            key: None,
            family: None,
        }
    }
}

/// The tracker's answer to an announce, before encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceAnswer {
    /// Seconds until the peer should announce again.
    pub interval: Duration,
    /// The least time a peer should leave between announces.
    pub min_interval: Duration,
    /// Seeds in the swarm, after the announce.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    /// `completed` events counted.
    pub downloaded: u32,
    /// Peers for the client, IPv4 ones as `V4`.
    pub peers: Vec<SocketAddr>,
    /// The peers' ids, in the same order, when the answer carries them (a dictionary
    /// answer without `no_peer_id`); empty otherwise.
    pub peer_ids: Vec<PeerId>,
}

/// Why an announce or scrape is refused. Its text (`Display`) is the `failure reason`,
/// naming the field at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// A required parameter is missing.
    Missing(&'static str),
    /// A parameter is there but cannot be read (malformed escape, wrong length, not a
    /// number, out of range).
    Invalid(&'static str),
    /// The info-hash is not on this tracker's allow-list.
    NotAllowed,
    /// The announcing host holds as many peers as it may, in this torrent
    /// (`in_swarm`) or on the whole tracker; a new one from it is not recorded.
    HostFull {
        /// The limit reached is the one per torrent.
        in_swarm: bool,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing(field) => write!(f, "missing {field}"),
            Failure::Invalid(field) => write!(f, "invalid {field}"),
            Failure::NotAllowed => f.write_str("unregistered torrent: info_hash not tracked here"),
            Failure::HostFull { in_swarm: true } => {
                f.write_str("too many peers from your address in this torrent")
            }
            Failure::HostFull { in_swarm: false } => {
                f.write_str("too many peers from your address on this tracker")
            }
        }
    }
}

impl std::error::Error for Failure {}

/// The tracker; see the module docs.
#[derive(Debug)]
pub struct TrackerServer {
    config: ServerConfig,
    table: Table,
    allowed: HashSet<InfoHash, KeyedState>,
    rng: Rng,
    /// The start of UDP connection-id windows.
    epoch: Instant,
    /// The latest `now` seen: time never goes back inside the server.
    last_now: Instant,
    /// The last sweep stopped at its budget with dead swarms left.
    sweep_pending: bool,
    /// The key of connection ids, derived from the secret.
    id_key: [u8; 16],
}

impl TrackerServer {
    /// A tracker with no swarm yet; `now` starts its clock (peer expiry, connection ids).
    pub fn new(config: ServerConfig, now: Instant) -> TrackerServer {
        let mut config = config;
        config.max_swarms = config.max_swarms.max(1);
        config.max_peers_per_swarm = config.max_peers_per_swarm.max(1);
        config.max_peers = config.max_peers.max(1);
        config.max_numwant = config.max_numwant.max(1);
        config.default_numwant = config.default_numwant.min(config.max_numwant);
        config.connection_window = config.connection_window.max(Duration::from_secs(1));
        // The map keys come from the secret, but not as the secret itself: a key that leaked
        // through timing would then not give away connection ids.
        let mut h = Sha1::new();
        h.update(b"shoal tracker table keys");
        h.update(config.secret);
        let d = h.finalize();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let hasher = KeyedState::new(word(0), word(8));
        // 16 bytes of key keep the id's input (key, address, port, window: 42 bytes) within
        // one SHA-1 block: one compression per id.
        let mut h = Sha1::new();
        h.update(b"shoal tracker connection ids");
        h.update(config.secret);
        let mut id_key = [0u8; 16];
        id_key.copy_from_slice(&h.finalize()[..16]);
        TrackerServer {
            rng: Rng::new(config.rng_seed),
            config,
            table: Table::new(hasher),
            allowed: HashSet::with_hasher(hasher),
            epoch: now,
            last_now: now,
            sweep_pending: false,
            id_key,
        }
    }

    /// The settings the tracker was made with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Swarms held (some may hold only expired peers not yet swept).
    pub fn swarm_count(&self) -> usize {
        self.table.swarm_count()
    }

    /// Peers held.
    pub fn peer_count(&self) -> usize {
        self.table.peer_count()
    }

    /// Slots allocated for swarms and peers (live or free for reuse): what memory use is
    /// proportional to. Never above the caps.
    pub fn capacity(&self) -> (usize, usize) {
        self.table.capacity()
    }

    // ---- the allow-list ----

    /// Whether announces for `info_hash` are accepted.
    pub fn is_allowed(&self, info_hash: &InfoHash) -> bool {
        self.config.open || self.allowed.contains(info_hash)
    }

    /// Adds one info-hash to the allow-list.
    pub fn allow(&mut self, info_hash: InfoHash) {
        self.allowed.insert(info_hash);
    }

    /// Replaces the allow-list. Unless the tracker is open, swarms no longer allowed are
    /// dropped.
    pub fn set_allowed(&mut self, info_hashes: impl IntoIterator<Item = InfoHash>) {
        self.allowed.clear();
        self.allowed.extend(info_hashes);
        self.drop_disallowed();
    }

    /// Opens or closes the tracker to info-hashes off the allow-list; closing drops the
    /// swarms not on it.
    pub fn set_open(&mut self, open: bool) {
        self.config.open = open;
        self.drop_disallowed();
    }

    fn drop_disallowed(&mut self) {
        if self.config.open {
            return;
        }
        let gone: Vec<SwarmId> = self
            .table
            .swarm_ids()
            .filter(|&s| !self.allowed.contains(&self.table.info_hash(s)))
            .collect();
        for s in gone {
            self.table.remove_swarm(s);
        }
    }

    fn advance(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    /// Peers last seen at or before this have expired.
    fn cutoff(&self, now: Instant) -> Option<Instant> {
        now.checked_sub(self.config.peer_timeout)
    }

    // ---- announce ----

    /// Records an announce and answers it (see the module docs for the rules).
    pub fn announce(
        &mut self,
        req: &AnnounceRequest,
        now: Instant,
    ) -> Result<AnnounceAnswer, Failure> {
        let now = self.advance(now);
        if !self.is_allowed(&req.info_hash) {
            return Err(Failure::NotAllowed);
        }
        if req.port == 0 {
            return Err(Failure::Invalid("port"));
        }
        let addr = SocketAddr::new(req.ip.to_canonical(), req.port);
        let cutoff = self.cutoff(now);
        let mut answer = AnnounceAnswer {
            interval: self.config.interval,
            min_interval: self.config.min_interval,
            complete: 0,
            incomplete: 0,
            downloaded: 0,
            peers: Vec::new(),
            peer_ids: Vec::new(),
        };
        if req.event == AnnounceEvent::Stopped {
            // A stop creates nothing; the swarm, even if now empty, stays until it is swept
            // (its `downloaded` count with it).
            if let Some(s) = self.table.find_swarm(&req.info_hash) {
                self.table.expire(s, cutoff, usize::MAX);
                if let Some(p) = self.table.find_peer(s, addr) {
                    self.table.remove_peer(p);
                }
                self.fill_counts(s, &mut answer);
            }
            return Ok(answer);
        }

        // A peer not known yet must fit in its host's share, before anything is created.
        let known = self.table.find_swarm(&req.info_hash);
        if let Some(s) = known {
            self.table.expire(s, cutoff, usize::MAX);
        }
        // Loopback is exempt: everything on this machine is one host, and its owner's.
        let limited = !addr.ip().is_loopback();
        if limited && known.and_then(|s| self.table.find_peer(s, addr)).is_none() {
            let host = host_of(addr.ip());
            if known.is_some_and(|s| {
                self.table.host_peers_in(s, host) >= self.config.max_peers_per_host_in_swarm
            }) {
                return Err(Failure::HostFull { in_swarm: true });
            }
            if self.table.host_peers(host) >= self.config.max_peers_per_host {
                return Err(Failure::HostFull { in_swarm: false });
            }
        }
        let s = match known {
            Some(s) => s,
            None => {
                // Empty swarms go first (see `table`): a host announcing and stopping in
                // a loop evicts only those.
                while self.table.swarm_count() >= self.config.max_swarms {
                    let Some(victim) = self.table.evictable_swarm() else {
                        break;
                    };
                    self.table.remove_swarm(victim);
                }
                self.table.insert_swarm(req.info_hash, now)
            }
        };
        // Expired peers are a prefix of the swarm's list: dropping them costs what they
        // cost to add, once.
        self.table.expire(s, cutoff, usize::MAX);
        // The most recent swarm is the last to lose a peer to the global cap.
        self.table.touch_swarm(s, now);
        let p = match self.table.find_peer(s, addr) {
            Some(p) => {
                self.table.update_peer(p, req.peer_id, req.left, now);
                p
            }
            None => {
                if self.table.swarm_len(s) >= self.config.max_peers_per_swarm {
                    if let Some(stalest) = self.table.stalest_peer(s) {
                        self.table.remove_peer(stalest);
                    }
                }
                while self.table.peer_count() >= self.config.max_peers {
                    if !self.evict_one_peer(s) {
                        break;
                    }
                }
                self.table.insert_peer(s, addr, req.peer_id, req.left, now)
            }
        };
        if req.event == AnnounceEvent::Completed && self.table.mark_completed(p) {
            self.table.count_download(s);
        }
        self.fill_counts(s, &mut answer);
        let want = req
            .numwant
            .unwrap_or(self.config.default_numwant)
            .min(self.config.max_numwant) as usize;
        let seed = self.table.is_seed(p);
        let with_ids = !req.compact && !req.no_peer_id;
        self.table.sample(
            s,
            addr,
            seed,
            req.family,
            want,
            &mut self.rng,
            &mut answer.peers,
            with_ids.then_some(&mut answer.peer_ids),
        );
        Ok(answer)
    }

    /// Drops the least recently seen peer of the least recently active swarm (the total cap
    /// is full). `keep` is the swarm being announced to: it is not dropped when emptied.
    /// False if there was no peer to drop.
    fn evict_one_peer(&mut self, keep: SwarmId) -> bool {
        let Some(s) = self.table.stalest_swarm() else {
            return false;
        };
        match self.table.stalest_peer(s) {
            Some(p) => {
                self.table.remove_peer(p);
                if s != keep && self.table.swarm_len(s) == 0 {
                    self.table.remove_swarm(s);
                }
                true
            }
            None if s != keep => {
                // An empty swarm at the front holds no peer; drop it and try the next.
                self.table.remove_swarm(s);
                true
            }
            None => false,
        }
    }

    fn fill_counts(&self, s: SwarmId, answer: &mut AnnounceAnswer) {
        let stats = self.table.stats(s);
        answer.complete = stats.complete;
        answer.incomplete = stats.incomplete;
        answer.downloaded = stats.downloaded;
    }

    // ---- scrape ----

    /// Counts for the given torrents (unknown or not allowed ones are left out), or for
    /// every torrent when `info_hashes` is empty; at most [`ServerConfig::max_scrape`] of
    /// them, in the order asked (everything: in the table's order).
    pub fn scrape(
        &mut self,
        info_hashes: &[InfoHash],
        now: Instant,
    ) -> Vec<(InfoHash, ScrapeStats)> {
        let now = self.advance(now);
        let cutoff = self.cutoff(now);
        let swarms: Vec<SwarmId> = if info_hashes.is_empty() {
            self.table
                .swarm_ids()
                .take(self.config.max_scrape)
                .collect()
        } else {
            info_hashes
                .iter()
                .take(self.config.max_scrape)
                .filter(|h| self.is_allowed(h))
                .filter_map(|h| self.table.find_swarm(h))
                .collect()
        };
        swarms
            .into_iter()
            .map(|s| {
                self.table.expire(s, cutoff, usize::MAX);
                (self.table.info_hash(s), self.table.stats(s))
            })
            .collect()
    }

    /// Counts for one torrent: zeros if unknown (what a UDP scrape answers, whose entries
    /// go by position).
    pub fn scrape_one(&mut self, info_hash: &InfoHash, now: Instant) -> ScrapeStats {
        let now = self.advance(now);
        if !self.is_allowed(info_hash) {
            return ScrapeStats::default();
        }
        match self.table.find_swarm(info_hash) {
            Some(s) => {
                self.table.expire(s, self.cutoff(now), usize::MAX);
                self.table.stats(s)
            }
            None => ScrapeStats::default(),
        }
    }

    /// Counts for one torrent without changing anything (for a status page): peers that
    /// expired but were not dropped yet may still count.
    pub fn stats(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.table
            .find_swarm(info_hash)
            .map(|s| self.table.stats(s))
            .unwrap_or_default()
    }

    // ---- time ----

    /// When [`handle_timeout`](Self::handle_timeout) has work: the moment the least
    /// recently active swarm has no live peer left. `None` with no swarm.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.sweep_pending {
            return Some(self.last_now);
        }
        let s = self.table.stalest_swarm()?;
        self.table
            .last_active(s)
            .checked_add(self.config.peer_timeout)
    }

    /// Drops swarms in which every peer has expired, least recently active first, at most
    /// a bounded number of peers per call.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        self.sweep_pending = false;
        let Some(cutoff) = self.cutoff(now) else {
            return;
        };
        let mut budget = SWEEP_BUDGET;
        while let Some(s) = self.table.stalest_swarm() {
            if self.table.last_active(s) > cutoff {
                return;
            }
            // Every peer of a swarm is seen no later than the swarm's last announce.
            budget -= self.table.expire(s, Some(cutoff), budget);
            if self.table.swarm_len(s) > 0 {
                self.sweep_pending = true;
                return;
            }
            self.table.remove_swarm(s);
            budget = budget.saturating_sub(1);
            if budget == 0 {
                self.sweep_pending = self.table.stalest_swarm().is_some();
                return;
            }
        }
    }

    // ---- UDP connection ids ----

    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
            / self.config.connection_window.as_secs()
    }

    /// The connection id of `addr` in time window `window`: SHA-1 of a key derived from
    /// the secret, the address and the window, cut to 64 bits. Nothing is stored per
    /// client, and no one without the secret can make one for an address whose answers
    /// they do not receive.
    fn connection_id_in(&self, addr: SocketAddr, window: u64) -> u64 {
        let ip = match addr.ip().to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let mut h = Sha1::new();
        h.update(self.id_key);
        h.update(ip.octets());
        h.update(addr.port().to_be_bytes());
        h.update(window.to_be_bytes());
        let d = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        u64::from_be_bytes(id)
    }

    /// The connection id to give `addr` now.
    pub fn connection_id(&self, addr: SocketAddr, now: Instant) -> u64 {
        self.connection_id_in(addr, self.window(now.max(self.last_now)))
    }

    /// Whether `id` is one given to `addr` in this window or the one before.
    pub fn connection_id_valid(&self, id: u64, addr: SocketAddr, now: Instant) -> bool {
        let window = self.window(now.max(self.last_now));
        id == self.connection_id_in(addr, window)
            || (window > 0 && id == self.connection_id_in(addr, window - 1))
    }

    #[cfg(test)]
    fn check(&self) {
        self.table.check();
    }
}

#[cfg(test)]
mod tests;
