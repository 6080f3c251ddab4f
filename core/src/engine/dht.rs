//! The Mainline DHT (BEP 5) in the engine, once a runtime starts it with
//! [`Engine::start_dht`]: one [`dht::Node`](crate::dht::Node) shared by every torrent,
//! on the engine's UDP socket.
//!
//! - **One socket.** Datagrams that start with `d` (a bencoded dictionary: KRPC) go to the
//!   node; the others to the UDP tracker client (BEP 15 answers start with a big-endian
//!   action, so with 0). The node's datagrams leave as [`Output::UdpSend`] like a
//!   tracker's. A runtime carries them out and feeds [`Input::UdpReceived`] as before.
//! - **Peers.** Each torrent that is not private (a magnet's torrent too, while its
//!   privacy is unknown) runs an announce lookup (`get_peers`, then `announce_peer` to the
//!   closest nodes that gave a token, on [`EngineConfig::listen_port`](super::EngineConfig))
//!   at its first tick and every [`ANNOUNCE_EVERY`] after. A lookup that finds no peer is
//!   tried again sooner: [`RETRY_FIRST`], doubling up to [`ANNOUNCE_EVERY`]. Peers found
//!   become dial candidates through `add_peer`, like a tracker's; a torrent that turned
//!   out private takes none and announces no more.
//! - **Bootstrap.** The node starts from [`dht::Config::bootstrap`](crate::dht::Config)
//!   and a saved table; addresses a runtime resolves later come in with
//!   [`Engine::add_dht_node`]. [`Engine::dht_export`] gives the table to save.
//!
//! Bounds: the node bounds what it keeps (table, lookups, requests in flight, peer store,
//! per-source rate limits; see [`crate::dht`]); here one lookup runs per torrent at most,
//! and the schedule holds one entry per torrent.

use core::net::{SocketAddr, SocketAddrV4};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::dht::{self, LookupId, Node, NodeId};

use super::{Engine, Event, Output, TorrentId};

/// How often a torrent is announced on the DHT (libtorrent and Transmission: 15 min).
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(15 * 60);

/// The wait before trying again after a lookup that found no peer; it doubles each time
/// in a row, up to [`ANNOUNCE_EVERY`].
pub const RETRY_FIRST: Duration = Duration::from_secs(15);

/// What the node has done, for a user or a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhtStats {
    /// Our node id.
    pub id: NodeId,
    /// Nodes in the routing table.
    pub nodes: usize,
    /// The node's counters.
    pub node: dht::NodeStats,
    /// Peers announced to us: (info-hashes, peers).
    pub stored: (usize, usize),
}

/// One torrent's place in the DHT schedule.
struct Schedule {
    /// When its next lookup may start.
    next: Instant,
    /// Lookups in a row that found no peer.
    empty: u32,
    /// Its lookup under way, if any.
    running: Option<LookupId>,
}

/// The engine's DHT: the node, and which torrent each lookup is for.
pub(super) struct DhtState {
    node: Node,
    lookups: BTreeMap<LookupId, TorrentId>,
    schedule: BTreeMap<TorrentId, Schedule>,
}

impl Engine {
    /// Starts the DHT node (see the module docs) at `now`: every torrent, those already
    /// added too, is announced and looks for peers there from its next tick. Give
    /// `config` a secret `token_key` from the OS; its `seed` is the node's own. Calling it
    /// again replaces the node.
    pub fn start_dht(&mut self, config: dht::Config, now: Instant) {
        self.dht = Some(DhtState {
            node: Node::new(config, now),
            lookups: BTreeMap::new(),
            schedule: BTreeMap::new(),
        });
        self.pump_dht(now);
    }

    /// Whether the DHT runs.
    pub fn dht_enabled(&self) -> bool {
        self.dht.is_some()
    }

    /// Gives the DHT one more address to bootstrap from (a router whose name was resolved
    /// after the start, a node named by the user). Nothing without the DHT.
    pub fn add_dht_node(&mut self, addr: SocketAddrV4, now: Instant) {
        let Some(d) = &mut self.dht else {
            return;
        };
        let was_empty = d.node.table().is_empty();
        d.node.add_bootstrap(addr, now);
        if was_empty {
            // Lookups that found nothing for want of nodes need not wait their backoff.
            for s in d.schedule.values_mut() {
                if s.running.is_none() && s.empty > 0 {
                    s.next = now;
                }
            }
        }
        self.pump_dht(now);
    }

    /// The routing table and our id, to save and give back as
    /// [`dht::Config::id`](crate::dht::Config) and `saved_nodes` next time
    /// (compact form, 26 bytes a node: [`crate::dht::krpc::read_compact_nodes`]).
    pub fn dht_export(&self) -> Option<(NodeId, Vec<u8>)> {
        let d = self.dht.as_ref()?;
        Some((d.node.id(), d.node.export_table()))
    }

    /// What the DHT has done so far; `None` without it.
    pub fn dht_stats(&self) -> Option<DhtStats> {
        let d = self.dht.as_ref()?;
        Some(DhtStats {
            id: d.node.id(),
            nodes: d.node.table().len(),
            node: d.node.stats(),
            stored: d.node.stored(),
        })
    }

    /// When the node next needs [`Engine::handle`] with `Input::Timer`.
    pub(super) fn dht_timeout(&self) -> Option<Instant> {
        self.dht.as_ref()?.node.poll_timeout()
    }

    /// The node's timers, when due.
    pub(super) fn dht_timers(&mut self, now: Instant) {
        let Some(d) = &mut self.dht else {
            return;
        };
        if d.node.poll_timeout().is_some_and(|at| at <= now) {
            d.node.handle(dht::Input::Timeout, now);
        }
        self.pump_dht(now);
    }

    /// A datagram on the shared socket: KRPC goes to the node (true), the rest is not ours.
    pub(super) fn on_dht_datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) -> bool {
        let Some(d) = &mut self.dht else {
            return false;
        };
        if data.first() != Some(&b'd') {
            return false;
        }
        d.node.handle(dht::Input::Datagram { from, data }, now);
        self.pump_dht(now);
        true
    }

    /// Whether torrent `id` may use the DHT: not private (a magnet's torrent whose
    /// metadata is not in yet may).
    fn dht_allowed(&self, id: TorrentId) -> bool {
        match self.torrent(id) {
            Some(t) => !t.meta.info.private,
            None => self.fetching.contains_key(&id),
        }
    }

    /// A torrent's tick: its announce lookup, when due.
    pub(super) fn dht_tick(&mut self, id: TorrentId, now: Instant) {
        if self.dht.is_none() || !self.dht_allowed(id) {
            return;
        }
        let info_hash = match self.torrent(id) {
            Some(t) => t.meta.info_hash,
            None => match self.fetching.get(&id) {
                Some(f) => f.magnet.info_hash,
                None => return,
            },
        };
        let port = self.config.listen_port;
        let Some(d) = &mut self.dht else {
            return;
        };
        let s = d.schedule.entry(id).or_insert(Schedule {
            next: now,
            empty: 0,
            running: None,
        });
        if s.running.is_some() || now < s.next {
            return;
        }
        match d.node.announce(info_hash, port, false, now) {
            Ok(lookup) => {
                s.running = Some(lookup);
                d.lookups.insert(lookup, id);
            }
            // Too many lookups at once: the next tick tries again.
            Err(dht::node::LookupError::Busy) => return,
        }
        self.pump_dht(now);
    }

    /// Forgets a removed torrent (its lookup may run on; its peers go nowhere).
    pub(super) fn dht_forget(&mut self, id: TorrentId) {
        if let Some(d) = &mut self.dht {
            d.schedule.remove(&id);
        }
    }

    /// Carries the node's outputs: datagrams out, peers to their torrents.
    fn pump_dht(&mut self, now: Instant) {
        loop {
            let Some(out) = self.dht.as_mut().and_then(|d| d.node.poll_output()) else {
                return;
            };
            match out {
                dht::Output::Send { to, data } => self.outputs.push_back(Output::UdpSend {
                    to: SocketAddr::V4(to),
                    data,
                }),
                dht::Output::Event(dht::Event::Peers { lookup, peers, .. }) => {
                    let torrent = self
                        .dht
                        .as_ref()
                        .and_then(|d| d.lookups.get(&lookup).copied());
                    let Some(id) = torrent.filter(|&id| self.dht_allowed(id)) else {
                        continue;
                    };
                    for peer in peers {
                        self.add_peer(id, SocketAddr::V4(peer), now);
                    }
                }
                dht::Output::Event(dht::Event::LookupDone(done)) => self.dht_lookup_done(done, now),
                dht::Output::Event(dht::Event::Bootstrapped { .. }) => {}
            }
        }
    }

    fn dht_lookup_done(&mut self, done: dht::LookupDone, now: Instant) {
        let Some(d) = &mut self.dht else {
            return;
        };
        let Some(id) = d.lookups.remove(&done.id) else {
            return;
        };
        let Some(s) = d.schedule.get_mut(&id) else {
            return;
        };
        s.running = None;
        if done.peers > 0 {
            s.empty = 0;
            s.next = now + ANNOUNCE_EVERY;
        } else {
            let wait = RETRY_FIRST
                .saturating_mul(1 << s.empty.min(16))
                .min(ANNOUNCE_EVERY);
            s.empty = s.empty.saturating_add(1);
            s.next = now + wait;
        }
        self.outputs.push_back(Output::Event(Event::DhtAnswer {
            torrent: id,
            peers: done.peers,
            nodes: done.closest.len(),
            announced: done.announced,
        }));
    }
}
