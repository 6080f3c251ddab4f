//! The DHT node: the composition of the routing table, lookups, tokens and peer store under
//! the engine's contract (see the [module docs](super)).
//!
//! What it does on its own:
//! - **Answers** `ping`, `find_node`, `get_peers` and `announce_peer` (checking the token,
//!   honouring `implied_port`); malformed queries get error 203, unknown methods 204.
//!   Queries are rate-limited per source IP in fixed windows ([`RateLimit`]); the table of
//!   sources is bounded, and when it is full, new sources wait for the next window.
//! - **Bootstraps** with a lookup for its own id from the saved table and the bootstrap
//!   addresses (again whenever the table runs empty), then one lookup in the range of
//!   every other bucket (Kademlia's join).
//! - **Refreshes** every bucket that has not changed for [`Config::refresh`] with a lookup
//!   for a random id in its range.
//! - **Learns** every node that queries it (as questionable) or answers it (as good);
//!   failing nodes go bad and are replaced (see [`table`](super::table)).
//!
//! What it does on request: [`Node::get_peers`] and [`Node::announce`] start lookups whose
//! peers come out as [`Event::Peers`] and whose end is [`Event::LookupDone`].
//!
//! Every request carries a 2-byte transaction id and a deadline; an answer is accepted only
//! from the address the request went to. At most [`Config::max_pending`] requests are in
//! flight and [`Config::max_lookups`] lookups run at once; every collection is bounded.

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::id::NodeId;
use super::krpc::{self, code, Body, Contact, DecodeErrorKind, Message, Query, Response, Tid};
use super::lookup::{Lookup, LookupId, LookupKind, LookupStats};
use super::secure;
use super::store::{Store, StoreLimits};
use super::table::{Insert, Table};
use super::tokens::Tokens;
use crate::rng::Rng;
use crate::InfoHash;

/// Most bootstrap addresses a node keeps ([`Node::add_bootstrap`]).
pub const MAX_BOOTSTRAP: usize = 64;

/// Per-source limits on the queries we answer.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Queries answered per source IP per window; more are dropped unanswered.
    pub queries: u32,
    /// The window's length.
    pub window: Duration,
    /// Most sources counted in one window.
    pub sources: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            queries: 250,
            window: Duration::from_secs(10),
            sources: 8192,
        }
    }
}

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Our id (a saved one, so the network keeps knowing us); if `None`, made from
    /// `external_ip` (BEP 42) when given, drawn from `seed` otherwise.
    pub id: Option<NodeId>,
    /// Our address as the Internet sees it, if known: makes a BEP 42 id.
    pub external_ip: Option<Ipv4Addr>,
    /// Keep out of the routing table the nodes whose id does not match their address
    /// (BEP 42; local addresses exempt). They are still answered and may still serve a
    /// lookup.
    pub enforce_node_ids: bool,
    /// Seed of every random choice.
    pub seed: u64,
    /// Secret key of announce tokens: the caller draws it from the OS.
    pub token_key: [u8; 20],
    /// Addresses to bootstrap from (well-known routers or any node).
    pub bootstrap: Vec<SocketAddrV4>,
    /// A saved routing table ([`Node::export_table`]), tried before `bootstrap`.
    pub saved_nodes: Vec<Contact>,
    /// Bucket size and the number of closest nodes a lookup finds (BEP 5: 8).
    pub k: usize,
    /// Requests in flight per lookup (Kademlia's α: 3).
    pub alpha: usize,
    /// How long to wait for an answer.
    pub request_timeout: Duration,
    /// How long a lookup waits for an answer before it sends one more request in its
    /// place (the late answer still counts).
    pub stall_timeout: Duration,
    /// Most requests in flight.
    pub max_pending: usize,
    /// Most lookups running at once.
    pub max_lookups: usize,
    /// A bucket unchanged this long is refreshed.
    pub refresh: Duration,
    /// Peers returned per `get_peers` answer.
    pub max_values: usize,
    /// Bounds of the peer store.
    pub store: StoreLimits,
    /// Per-source query limits.
    pub rate: RateLimit,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: None,
            external_ip: None,
            enforce_node_ids: false,
            seed: 0,
            token_key: [0; 20],
            bootstrap: Vec::new(),
            saved_nodes: Vec::new(),
            k: 8,
            alpha: 3,
            request_timeout: Duration::from_secs(2),
            stall_timeout: Duration::from_millis(750),
            max_pending: 256,
            max_lookups: 32,
            refresh: Duration::from_secs(15 * 60),
            max_values: 50,
            store: StoreLimits::default(),
            rate: RateLimit::default(),
        }
    }
}

/// A fact from outside.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// A datagram arrived.
    Datagram {
        /// Its source.
        from: SocketAddr,
        /// Its payload.
        data: &'a [u8],
    },
    /// The instant from [`Node::poll_timeout`] has come.
    Timeout,
}

/// An action for outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a datagram.
    Send {
        /// Where to.
        to: SocketAddrV4,
        /// The payload.
        data: Vec<u8>,
    },
    /// Something happened.
    Event(Event),
}

/// What the node tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A `get_peers` or announce lookup found peers (each reported once per lookup).
    Peers {
        /// The lookup.
        lookup: LookupId,
        /// The torrent.
        info_hash: InfoHash,
        /// New peers.
        peers: Vec<SocketAddrV4>,
    },
    /// A lookup ended.
    LookupDone(LookupDone),
    /// The first bootstrap lookup ended; the table holds `nodes` nodes.
    Bootstrapped {
        /// Nodes in the routing table.
        nodes: usize,
    },
}

/// The end of a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupDone {
    /// The lookup.
    pub id: LookupId,
    /// What it looked for.
    pub target: NodeId,
    /// What for.
    pub kind: LookupKind,
    /// The closest nodes that answered, nearest first (at most k).
    pub closest: Vec<Contact>,
    /// Distinct peers found.
    pub peers: usize,
    /// Nodes sent an `announce_peer` (announce lookups).
    pub announced: usize,
    /// What it cost.
    pub stats: LookupStats,
    /// How long it took.
    pub elapsed: Duration,
}

/// Why a lookup was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// [`Config::max_lookups`] lookups are running.
    Busy,
}

/// Counters of what the node did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Queries answered.
    pub answered: u64,
    /// Queries dropped by the rate limit.
    pub rate_limited: u64,
    /// Datagrams that were not KRPC (or not IPv4).
    pub malformed: u64,
    /// Answers that matched no request of ours.
    pub unexpected: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Announces refused for a bad token.
    pub bad_tokens: u64,
}

#[derive(Clone, Debug)]
struct Pending {
    to: SocketAddrV4,
    /// The id we expect, when known (not for bootstrap addresses).
    id: Option<NodeId>,
    lookup: Option<LookupId>,
    deadline: Instant,
    /// When a lookup's request counts as stalled (lookup requests only).
    stall_at: Option<Instant>,
    stalled: bool,
}

/// A Mainline DHT node.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    config: Config,
    rng: Rng,
    table: Table,
    tokens: Tokens,
    store: Store,
    pending: BTreeMap<u16, Pending>,
    deadlines: BTreeSet<(Instant, u16)>,
    stalls: BTreeSet<(Instant, u16)>,
    next_tid: u16,
    lookups: BTreeMap<LookupId, Lookup>,
    next_lookup: u64,
    bootstrap: Option<LookupId>,
    bootstrapped: bool,
    sources: BTreeMap<Ipv4Addr, u32>,
    window_end: Instant,
    out: VecDeque<Output>,
    stats: NodeStats,
}

impl Node {
    /// A node that starts bootstrapping at `now` (its first datagrams are ready in
    /// [`Node::poll_output`]).
    pub fn new(config: Config, now: Instant) -> Node {
        let mut rng = Rng::new(config.seed);
        let id = match (config.id, config.external_ip) {
            (Some(id), _) => id,
            (None, Some(ip)) if !secure::is_exempt(ip) => {
                let last = rng.next_u32() as u8;
                secure::id_for(ip, last, &mut rng)
            }
            _ => NodeId::random(&mut rng),
        };
        let mut table = Table::new(id, config.k, now);
        for c in &config.saved_nodes {
            table.insert(*c, false, now);
        }
        let mut tokens = Tokens::new(config.token_key);
        tokens.rotate(now);
        let next_tid = rng.next_u32() as u16;
        let mut node = Node {
            id,
            store: Store::new(config.store),
            window_end: now + config.rate.window,
            config,
            rng,
            table,
            tokens,
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            stalls: BTreeSet::new(),
            next_tid,
            lookups: BTreeMap::new(),
            next_lookup: 0,
            bootstrap: None,
            bootstrapped: false,
            sources: BTreeMap::new(),
            out: VecDeque::new(),
            stats: NodeStats::default(),
        };
        node.start_bootstrap(now);
        node.drive(now);
        node
    }

    /// Our id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The routing table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// What the node did so far.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Peers announced to us: (info-hashes, peers).
    pub fn stored(&self) -> (usize, usize) {
        self.store.len()
    }

    /// The routing table in compact form (26 bytes a node), for the runtime to save and
    /// give back in [`Config::saved_nodes`] (see [`krpc::read_compact_nodes`]).
    pub fn export_table(&self) -> Vec<u8> {
        krpc::compact_nodes(&self.table.contacts())
    }

    /// Adds an address to bootstrap from (a router whose name the runtime resolved late,
    /// a node given by hand). While the table holds fewer than k nodes, a lookup for our
    /// own id starts at once through it, and the join follows as after the first
    /// bootstrap. At most [`MAX_BOOTSTRAP`] addresses are kept; more are ignored.
    pub fn add_bootstrap(&mut self, addr: SocketAddrV4, now: Instant) {
        if self.config.bootstrap.contains(&addr) || self.config.bootstrap.len() >= MAX_BOOTSTRAP {
            return;
        }
        self.config.bootstrap.push(addr);
        if self.table.len() >= self.config.k {
            return;
        }
        if self.table.is_empty() {
            // Nothing was joined yet: the join runs after this bootstrap.
            self.bootstrapped = false;
        }
        if let Ok(id) = self.start_lookup(self.id, LookupKind::FindNode, now) {
            self.bootstrap = Some(id);
        }
        self.drive(now);
    }

    /// Starts a lookup for peers of `info_hash`.
    pub fn get_peers(
        &mut self,
        info_hash: InfoHash,
        now: Instant,
    ) -> Result<LookupId, LookupError> {
        let id = self.start_lookup(info_hash.into(), LookupKind::GetPeers(info_hash), now)?;
        self.drive(now);
        Ok(id)
    }

    /// Starts a lookup for peers of `info_hash` that ends by announcing us on `port` to the
    /// closest nodes (or, with `implied_port`, on the port our datagrams come from).
    pub fn announce(
        &mut self,
        info_hash: InfoHash,
        port: u16,
        implied_port: bool,
        now: Instant,
    ) -> Result<LookupId, LookupError> {
        let kind = LookupKind::Announce {
            info_hash,
            port,
            implied_port,
        };
        let id = self.start_lookup(info_hash.into(), kind, now)?;
        self.drive(now);
        Ok(id)
    }

    /// Starts a lookup for the nodes closest to `target`.
    pub fn find_node(&mut self, target: NodeId, now: Instant) -> Result<LookupId, LookupError> {
        let id = self.start_lookup(target, LookupKind::FindNode, now)?;
        self.drive(now);
        Ok(id)
    }

    /// The next action, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`Node::handle`] with [`Input::Timeout`] if nothing arrives before.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The rate-limit window needs no wake-up: the next query to arrive after its end
        // starts a new one.
        [
            self.deadlines.first().map(|(at, _)| *at),
            self.stalls.first().map(|(at, _)| *at),
            self.tokens.next_rotation(),
            self.table
                .next_refresh(self.config.refresh)
                .map(|(_, at)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes one fact from outside.
    pub fn handle(&mut self, input: Input<'_>, now: Instant) {
        match input {
            Input::Datagram { from, data } => {
                self.stats.received += 1;
                match from {
                    SocketAddr::V4(from) => self.datagram(from, data, now),
                    SocketAddr::V6(_) => self.stats.malformed += 1,
                }
            }
            Input::Timeout => self.timers(now),
        }
        self.drive(now);
    }

    fn timers(&mut self, now: Instant) {
        while let Some(&(at, tid)) = self.stalls.first() {
            if at > now {
                break;
            }
            self.stalls.pop_first();
            if let Some(p) = self.pending.get_mut(&tid) {
                p.stalled = true;
                if let Some(l) = p.lookup.and_then(|l| self.lookups.get_mut(&l)) {
                    l.stalled(p.to);
                }
            }
        }
        while let Some(&(at, tid)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.pending.remove(&tid) {
                self.stats.timeouts += 1;
                if let Some(at) = p.stall_at {
                    self.stalls.remove(&(at, tid));
                }
                if let Some(id) = p.id {
                    self.table.failed(&id, p.to);
                }
                if let Some(l) = p.lookup.and_then(|l| self.lookups.get_mut(&l)) {
                    l.failed(p.to, p.stalled);
                }
            }
        }
        if self.tokens.next_rotation().is_some_and(|at| now >= at) {
            self.tokens.rotate(now);
            self.store.expire(now);
        }
        while let Some((bucket, at)) = self.table.next_refresh(self.config.refresh) {
            if at > now {
                break;
            }
            self.table.touch(bucket, now);
            if self.table.is_empty() {
                self.start_bootstrap(now);
            } else {
                let target = self.id.random_at_prefix(bucket, &mut self.rng);
                let _ = self.start_lookup(target, LookupKind::FindNode, now);
            }
        }
    }

    fn start_bootstrap(&mut self, now: Instant) {
        if self
            .bootstrap
            .is_some_and(|b| self.lookups.contains_key(&b))
        {
            return;
        }
        self.bootstrap = self.start_lookup(self.id, LookupKind::FindNode, now).ok();
    }

    fn start_lookup(
        &mut self,
        target: NodeId,
        kind: LookupKind,
        now: Instant,
    ) -> Result<LookupId, LookupError> {
        if self.lookups.len() >= self.config.max_lookups {
            return Err(LookupError::Busy);
        }
        let start = self.table.closest(&target, self.config.k * 2);
        // Bootstrap addresses join when the table cannot fill a lookup by itself.
        let bootstrap: &[SocketAddrV4] = if start.len() < self.config.k {
            &self.config.bootstrap
        } else {
            &[]
        };
        let lookup = Lookup::new(
            target,
            kind,
            &start,
            bootstrap,
            self.config.k,
            self.config.alpha,
            now,
        );
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        self.lookups.insert(id, lookup);
        Ok(id)
    }

    /// Sends what the lookups want to send and ends those that are done.
    fn drive(&mut self, now: Instant) {
        // A lookup that ends may start others (the join's refreshes): go round again.
        let mut from = LookupId(0);
        while from.0 < self.next_lookup {
            let ids: Vec<LookupId> = self.lookups.range(from..).map(|(id, _)| *id).collect();
            from = LookupId(self.next_lookup);
            for id in ids {
                self.drive_one(id, now);
            }
        }
    }

    fn drive_one(&mut self, id: LookupId, now: Instant) {
        let room = self.config.max_pending.saturating_sub(self.pending.len());
        let Some(lookup) = self.lookups.get_mut(&id) else {
            return;
        };
        let asks = lookup.next(room);
        let target = lookup.target;
        let kind = lookup.kind;
        for (addr, known) in asks {
            let query = match kind {
                LookupKind::FindNode => Query::FindNode { target },
                LookupKind::GetPeers(info_hash) | LookupKind::Announce { info_hash, .. } => {
                    Query::GetPeers { info_hash }
                }
            };
            self.request(addr, known, Some(id), query, now);
        }
        if self.lookups.get(&id).is_some_and(Lookup::is_done) {
            self.finish(id, now);
        }
    }

    fn finish(&mut self, id: LookupId, now: Instant) {
        let Some(mut lookup) = self.lookups.remove(&id) else {
            return;
        };
        lookup.finish();
        let closest = lookup.closest();
        let mut announced = 0;
        if let LookupKind::Announce {
            info_hash,
            port,
            implied_port,
        } = lookup.kind
        {
            let sends: Vec<(Contact, Vec<u8>)> = closest
                .iter()
                .filter_map(|(c, t)| t.map(|t| (*c, t.to_vec())))
                .collect();
            for (c, token) in sends {
                let query = Query::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port,
                    token,
                };
                if self.request(c.addr, Some(c.id), None, query, now) {
                    announced += 1;
                }
            }
        }
        let done = LookupDone {
            id,
            target: lookup.target,
            kind: lookup.kind,
            closest: closest.iter().map(|(c, _)| *c).collect(),
            peers: lookup.peer_count(),
            announced,
            stats: lookup.stats,
            elapsed: now.saturating_duration_since(lookup.started),
        };
        self.out.push_back(Output::Event(Event::LookupDone(done)));
        if self.bootstrap == Some(id) {
            self.bootstrap = None;
            if !self.bootstrapped {
                self.bootstrapped = true;
                // Kademlia's join: a lookup in the range of every bucket but the deepest
                // (which the lookup for our own id just filled) fills our table, and
                // introduces us to nodes all over the id space, which only learn of a
                // newcomer when it queries them.
                let buckets = self.table.bucket_count();
                for bucket in 0..buckets.saturating_sub(1) {
                    let target = self.id.random_at_prefix(bucket, &mut self.rng);
                    if self
                        .start_lookup(target, LookupKind::FindNode, now)
                        .is_err()
                    {
                        break;
                    }
                    self.table.touch(bucket, now);
                }
                self.out.push_back(Output::Event(Event::Bootstrapped {
                    nodes: self.table.len(),
                }));
            }
        }
    }

    /// Sends a query with a fresh transaction id; false when too many are in flight.
    fn request(
        &mut self,
        to: SocketAddrV4,
        id: Option<NodeId>,
        lookup: Option<LookupId>,
        query: Query,
        now: Instant,
    ) -> bool {
        if self.pending.len() >= self.config.max_pending {
            return false;
        }
        let mut tid = self.next_tid;
        while self.pending.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.next_tid = tid.wrapping_add(1);
        let deadline = now + self.config.request_timeout;
        let stall_at = lookup.map(|_| now + self.config.stall_timeout);
        self.pending.insert(
            tid,
            Pending {
                to,
                id,
                lookup,
                deadline,
                stall_at,
                stalled: false,
            },
        );
        self.deadlines.insert((deadline, tid));
        if let Some(at) = stall_at {
            self.stalls.insert((at, tid));
        }
        let message = Message {
            tid: Tid::from_slice(&tid.to_be_bytes()),
            body: Body::Query {
                id: self.id,
                query,
                read_only: false,
            },
        };
        self.send(to, &message);
        true
    }

    fn send(&mut self, to: SocketAddrV4, message: &Message) {
        self.stats.sent += 1;
        self.out.push_back(Output::Send {
            to,
            data: message.encode(),
        });
    }

    fn datagram(&mut self, from: SocketAddrV4, data: &[u8], now: Instant) {
        let message = match Message::decode(data) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                if let (true, Some(tid)) = (e.query, e.tid) {
                    if self.admit(from, now) {
                        let (code, text) = match e.kind {
                            DecodeErrorKind::UnknownMethod => {
                                (code::METHOD_UNKNOWN, "Method Unknown")
                            }
                            _ => (code::PROTOCOL, "Protocol Error"),
                        };
                        self.send(from, &Message::error(tid, code, text));
                    }
                }
                return;
            }
        };
        match message.body {
            Body::Query {
                id,
                query,
                read_only,
            } => {
                if !self.admit(from, now) {
                    return;
                }
                self.answer(from, message.tid, id, query, now);
                if !read_only {
                    let contact = Contact { id, addr: from };
                    self.learn(contact, false, now);
                }
            }
            Body::Response(response) => self.response(from, &message.tid, response, now),
            Body::Error { .. } => {
                let Some(p) = self.take_pending(from, &message.tid) else {
                    return;
                };
                if let Some(l) = p.lookup.and_then(|l| self.lookups.get_mut(&l)) {
                    l.failed(from, p.stalled);
                }
            }
        }
    }

    /// Counts a query from `from` against its window; false when over the limit.
    fn admit(&mut self, from: SocketAddrV4, now: Instant) -> bool {
        if now >= self.window_end {
            self.sources.clear();
            self.window_end = now + self.config.rate.window;
        }
        let limit = self.config.rate;
        let ip = *from.ip();
        if !self.sources.contains_key(&ip) && self.sources.len() >= limit.sources {
            self.stats.rate_limited += 1;
            return false;
        }
        let count = self.sources.entry(ip).or_insert(0);
        *count += 1;
        if *count > limit.queries {
            self.stats.rate_limited += 1;
            return false;
        }
        true
    }

    fn answer(
        &mut self,
        from: SocketAddrV4,
        tid: Tid,
        _querier: NodeId,
        query: Query,
        now: Instant,
    ) {
        let mut r = Response {
            id: self.id,
            ..Response::default()
        };
        match query {
            Query::Ping => {}
            Query::FindNode { target } => r.nodes = self.table.closest(&target, self.config.k),
            Query::GetPeers { info_hash } => {
                r.token = Some(self.tokens.make(*from.ip()).to_vec());
                r.values = self
                    .store
                    .peers(&info_hash, self.config.max_values, now, &mut self.rng);
                r.nodes = self.table.closest(&info_hash.into(), self.config.k);
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.check(*from.ip(), &token) {
                    self.stats.bad_tokens += 1;
                    self.send(from, &Message::error(tid, code::PROTOCOL, "Bad Token"));
                    return;
                }
                let port = if implied_port { from.port() } else { port };
                self.store
                    .announce(info_hash, SocketAddrV4::new(*from.ip(), port), now);
            }
        }
        self.stats.answered += 1;
        self.send(
            from,
            &Message {
                tid,
                body: Body::Response(r),
            },
        );
    }

    fn take_pending(&mut self, from: SocketAddrV4, tid: &[u8]) -> Option<Pending> {
        let key = match tid {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => {
                self.stats.unexpected += 1;
                return None;
            }
        };
        match self.pending.get(&key) {
            Some(p) if p.to == from => {}
            _ => {
                self.stats.unexpected += 1;
                return None;
            }
        }
        let p = self.pending.remove(&key)?;
        self.deadlines.remove(&(p.deadline, key));
        if let Some(at) = p.stall_at {
            self.stalls.remove(&(at, key));
        }
        Some(p)
    }

    fn response(&mut self, from: SocketAddrV4, tid: &[u8], r: Response, now: Instant) {
        let Some(p) = self.take_pending(from, tid) else {
            return;
        };
        if r.id == self.id {
            // Someone answering with our own id is either us or lying; neither helps.
            if let Some(l) = p.lookup.and_then(|l| self.lookups.get_mut(&l)) {
                l.failed(from, p.stalled);
            }
            return;
        }
        if p.id.is_none_or(|id| id == r.id) {
            self.learn(
                Contact {
                    id: r.id,
                    addr: from,
                },
                true,
                now,
            );
        }
        let Some(lookup_id) = p.lookup else {
            return;
        };
        let Some(lookup) = self.lookups.get_mut(&lookup_id) else {
            return;
        };
        let fresh = lookup.answered(
            from, p.stalled, r.id, &r.nodes, &r.values, r.token, &self.id,
        );
        if fresh.is_empty() {
            return;
        }
        if let LookupKind::GetPeers(info_hash) | LookupKind::Announce { info_hash, .. } =
            lookup.kind
        {
            self.out.push_back(Output::Event(Event::Peers {
                lookup: lookup_id,
                info_hash,
                peers: fresh,
            }));
        }
    }

    fn learn(&mut self, contact: Contact, answered: bool, now: Instant) {
        if self.config.enforce_node_ids && !secure::is_valid(&contact.id, *contact.addr.ip()) {
            return;
        }
        if let Insert::Cached { ping: Some(old) } = self.table.insert(contact, answered, now) {
            self.request(old.addr, Some(old.id), None, Query::Ping, now);
        }
    }
}

#[cfg(test)]
mod tests;
