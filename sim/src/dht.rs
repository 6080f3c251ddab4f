//! DHT-only simulation: thousands of real [`shoal_core::dht::Node`]s on virtual time.
//!
//! A DHT node is small (a routing table of ~8·log2 N contacts, a few lookups), so this
//! runs 10,000 of them in one thread. The model is datagrams only: each one arrives after
//! a latency drawn per datagram (`latency_ms`), or never when its receiver is deaf or gone.
//!
//! A run ([`run`]) has four phases:
//! 1. **Join**: nodes start one every `join_every`, each bootstrapping from node 0, then
//!    the network settles for `settle`.
//! 2. **Lookups**: `lookups` `find_node` lookups, one started every 100 ms from a random
//!    honest node towards a random id; each result is compared, when it ends, with the
//!    true k closest honest nodes online at that moment (the sorted list). With churn, a
//!    share of the nodes leaves and as many newcomers join during this phase.
//! 3. **Announces**: `announces` honest nodes each announce their own info-hash.
//! 4. **Searches**: as many other honest nodes run `get_peers` for those info-hashes; a
//!    search succeeds when it reports the announcer.
//!
//! Misbehaving nodes: a *deaf* node drops every datagram it receives (it still sends its
//! own queries, so it enters routing tables and must be timed out). A *liar* answers
//! every `find_node` and `get_peers` with 8 made-up contacts whose ids are as close to
//! the target as can be and whose addresses lead nowhere, the most attractive lie; it
//! answers pings truthfully, so it stays in tables. "Honest" means neither.
//!
//! Every datagram (time, both ends, bytes) and every node event goes into a [`TraceHash`]:
//! the same scenario and seed give the same hash.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use shoal_core::dht::krpc::{Body, Message, Query, Response};
use shoal_core::dht::{
    Config, Contact, Distance, Event, Input, LookupDone, LookupId, Node, NodeId, Output,
};
use shoal_core::rng::Rng;
use shoal_core::InfoHash;

use crate::sched::{as_secs, secs, EventQueue, Nanos};
use crate::trace::TraceHash;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct DhtScenario {
    /// Nodes at the start (joining one by one).
    pub nodes: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Time between two joins.
    pub join_every: Nanos,
    /// Quiet time after the last join.
    pub settle: Nanos,
    /// `find_node` lookups measured.
    pub lookups: usize,
    /// Announce/search pairs.
    pub announces: usize,
    /// Share of deaf nodes.
    pub deaf: f64,
    /// Share of lying nodes.
    pub liars: f64,
    /// Share of the nodes that leave during the lookup phase (as many newcomers join).
    pub churn: f64,
    /// One-way latency range, in milliseconds.
    pub latency_ms: (u32, u32),
}

impl DhtScenario {
    /// `nodes` honest nodes joining over `nodes · 5 ms`, then a minute of quiet,
    /// 500 lookups and 100 announce/search pairs.
    pub fn new(nodes: usize, seed: u64) -> DhtScenario {
        DhtScenario {
            nodes,
            seed,
            join_every: secs(0.005),
            settle: secs(60.0),
            lookups: 500,
            announces: 100,
            deaf: 0.0,
            liars: 0.0,
            churn: 0.0,
            latency_ms: (10, 100),
        }
    }
}

/// Figures of a run.
#[derive(Clone, Debug, Default)]
pub struct DhtReport {
    /// Nodes that joined in all (with newcomers of the churn).
    pub nodes: usize,
    /// log2 of the initial node count.
    pub log2_n: f64,
    /// Lookups measured, and how many found exactly the true k closest.
    pub lookups: usize,
    /// Lookups that found exactly the true k closest.
    pub exact: usize,
    /// Mean share of the true k closest found.
    pub overlap: f64,
    /// Mean hops, queries, failures and virtual seconds per lookup.
    pub hops: f64,
    /// Mean queries per lookup.
    pub queries: f64,
    /// Mean failed queries per lookup.
    pub failures: f64,
    /// Mean stalled queries per lookup (unanswered after the stall timeout).
    pub stalls: f64,
    /// Mean virtual seconds per lookup.
    pub seconds: f64,
    /// The slowest lookup, virtual seconds.
    pub seconds_max: f64,
    /// Searches that found their announcer, of `announces`.
    pub found: usize,
    /// Announce/search pairs run.
    pub announces: usize,
    /// Datagrams sent by the join phase per node.
    pub join_datagrams_per_node: f64,
    /// Routing-table size (mean, min) over honest online nodes at the end.
    pub table_mean: f64,
    /// Smallest routing table among honest online nodes.
    pub table_min: usize,
    /// Datagrams sent in all.
    pub datagrams: u64,
    /// Virtual seconds simulated.
    pub virtual_secs: f64,
    /// Wall-clock seconds of the run.
    pub wall_secs: f64,
    /// The trace hash.
    pub trace: u64,
}

impl DhtReport {
    /// A human-readable summary.
    pub fn text(&self) -> String {
        format!(
            "nodes {} (log2 N = {:.1})\n\
             lookups: {}/{} exact, {:.1} % of the true 8 closest found on average\n\
             per lookup: {:.2} hops, {:.1} queries ({:.1} stalled, {:.1} failed), {:.3} s virtual (max {:.3} s)\n\
             announce then get_peers from another node: {}/{} found\n\
             join: {:.0} datagrams per node; routing tables: mean {:.0}, min {} nodes\n\
             {} datagrams, {:.0} s virtual, {:.2} s wall\n\
             trace hash {:016x}",
            self.nodes,
            self.log2_n,
            self.exact,
            self.lookups,
            self.overlap * 100.0,
            self.hops,
            self.queries,
            self.stalls,
            self.failures,
            self.seconds,
            self.seconds_max,
            self.found,
            self.announces,
            self.join_datagrams_per_node,
            self.table_mean,
            self.table_min,
            self.datagrams,
            self.virtual_secs,
            self.wall_secs,
            self.trace,
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Honest,
    Deaf,
    Liar,
}

enum Ev {
    Deliver { to: u32, from: u32, data: Vec<u8> },
    Timer { node: u32 },
    Join(u32),
    Leave(u32),
    Lookup,
    Announce(u32),
    Search(u32),
}

struct World {
    base: Instant,
    now: Nanos,
    rng: Rng,
    queue: EventQueue<Ev>,
    nodes: Vec<Option<Node>>,
    roles: Vec<Role>,
    timers: Vec<Option<Nanos>>,
    trace: TraceHash,
    datagrams: u64,
    latency: (u32, u32),
    /// Lookups being measured: (node, lookup).
    measured: Vec<(u32, LookupId)>,
    done: Vec<(u32, LookupDone, Vec<Contact>)>,
    /// Announcer of each announce/search pair, and the searches' results.
    announcers: Vec<u32>,
    searches: Vec<(u32, LookupId, usize)>,
    found: Vec<bool>,
}

const BASE_IP: u32 = 0x0a00_0001;

fn addr_of(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(BASE_IP + i), 6881)
}

fn index_of(addr: &SocketAddrV4) -> Option<u32> {
    u32::from(*addr.ip()).checked_sub(BASE_IP)
}

fn hash_of_pair(pair: usize) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(
        &(pair as u64 + 1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .to_be_bytes(),
    );
    h[8..16].copy_from_slice(&(pair as u64).to_le_bytes());
    InfoHash(h)
}

impl World {
    fn at(&self) -> Instant {
        self.base + Duration::from_nanos(self.now)
    }

    fn start(&mut self, i: u32) {
        let config = Config {
            seed: self.rng.next_u64(),
            token_key: {
                let mut k = [0u8; 20];
                k[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
                k
            },
            bootstrap: if i == 0 { vec![] } else { vec![addr_of(0)] },
            ..Config::default()
        };
        self.nodes[i as usize] = Some(Node::new(config, self.at()));
        self.drain(i);
    }

    fn send(&mut self, from: u32, to: SocketAddrV4, data: Vec<u8>) {
        self.datagrams += 1;
        self.trace.word(self.now);
        self.trace.word(u64::from(from));
        self.trace.word(u64::from(u32::from(*to.ip())));
        self.trace.bytes(&data);
        let Some(j) = index_of(&to) else {
            return;
        };
        if j as usize >= self.nodes.len() || to.port() != 6881 {
            return;
        }
        let (lo, hi) = self.latency;
        let ms = lo + self.rng.below(hi - lo + 1);
        let at = self.now + u64::from(ms) * 1_000_000;
        self.queue.push(at, Ev::Deliver { to: j, from, data });
    }

    fn drain(&mut self, i: u32) {
        while let Some(out) = self.nodes[i as usize].as_mut().and_then(Node::poll_output) {
            match out {
                Output::Send { to, data } => self.send(i, to, data),
                Output::Event(event) => self.event(i, event),
            }
        }
        let wake = self.nodes[i as usize]
            .as_ref()
            .and_then(Node::poll_timeout)
            .map(|t| (t.saturating_duration_since(self.base).as_nanos() as Nanos).max(self.now));
        if wake != self.timers[i as usize] {
            self.timers[i as usize] = wake;
            if let Some(at) = wake {
                self.queue.push(at, Ev::Timer { node: i });
            }
        }
    }

    fn event(&mut self, i: u32, event: Event) {
        self.trace.word(u64::from(i) | 1 << 40);
        match event {
            Event::LookupDone(done) => {
                self.trace.word(done.id.0);
                self.trace.word(u64::from(done.stats.queries));
                if let Some(pos) = self.measured.iter().position(|m| *m == (i, done.id)) {
                    self.measured.swap_remove(pos);
                    let truth = self.true_closest(&done.target);
                    self.done.push((i, done, truth));
                }
            }
            Event::Peers { lookup, peers, .. } => {
                self.trace.word(peers.len() as u64);
                for (node, id, pair) in &self.searches {
                    if *node == i && *id == lookup {
                        let wanted = *addr_of(self.announcers[*pair]).ip();
                        if peers.iter().any(|p| *p.ip() == wanted && p.port() == 51413) {
                            self.found[*pair] = true;
                        }
                    }
                }
            }
            Event::Bootstrapped { nodes } => self.trace.word(nodes as u64),
        }
    }

    /// The 8 honest online nodes closest to `target`, nearest first.
    fn true_closest(&self, target: &NodeId) -> Vec<Contact> {
        let mut all: Vec<(Distance, Contact)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.roles[*i] == Role::Honest)
            .filter_map(|(i, n)| {
                n.as_ref().map(|n| {
                    let c = Contact {
                        id: n.id(),
                        addr: addr_of(i as u32),
                    };
                    (c.id.distance(target), c)
                })
            })
            .collect();
        if all.len() > 8 {
            all.select_nth_unstable_by_key(7, |(d, _)| *d);
            all.truncate(8);
        }
        all.sort_unstable_by_key(|(d, _)| *d);
        all.into_iter().map(|(_, c)| c).collect()
    }

    fn random_honest(&mut self) -> u32 {
        loop {
            let i = self.rng.below(self.nodes.len() as u32);
            if self.roles[i as usize] == Role::Honest && self.nodes[i as usize].is_some() {
                return i;
            }
        }
    }

    /// A liar's answer to a query, or `None` to let the node answer.
    fn lie(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let message = Message::decode(data).ok()?;
        let Body::Query { query, .. } = message.body else {
            return None;
        };
        let (target, token) = match query {
            Query::FindNode { target } => (target, None),
            Query::GetPeers { info_hash } => (NodeId(info_hash.0), Some(b"liarliar".to_vec())),
            _ => return None,
        };
        let nodes = (0..8)
            .map(|_| {
                let mut id = target.0;
                id[12..20].copy_from_slice(&self.rng.next_u64().to_be_bytes());
                Contact {
                    id: NodeId(id),
                    // 11/8 holds no node: these lead nowhere.
                    addr: SocketAddrV4::new(
                        Ipv4Addr::from(0x0b00_0000 | self.rng.below(1 << 24)),
                        6881,
                    ),
                }
            })
            .collect();
        let reply = Message {
            tid: message.tid,
            body: Body::Response(Response {
                id: NodeId::random(&mut self.rng),
                nodes,
                values: Vec::new(),
                token,
            }),
        };
        Some(reply.encode())
    }

    fn step(&mut self, event: Ev) {
        let now = self.at();
        match event {
            Ev::Deliver { to, from, data } => {
                let role = self.roles[to as usize];
                if role == Role::Deaf || self.nodes[to as usize].is_none() {
                    return;
                }
                if role == Role::Liar {
                    if let Some(lie) = self.lie(&data) {
                        self.send(to, addr_of(from), lie);
                        return;
                    }
                }
                if let Some(node) = self.nodes[to as usize].as_mut() {
                    let from = SocketAddr::V4(addr_of(from));
                    node.handle(Input::Datagram { from, data: &data }, now);
                    self.drain(to);
                }
            }
            Ev::Timer { node } => {
                if self.timers[node as usize] != Some(self.now) {
                    return;
                }
                self.timers[node as usize] = None;
                if let Some(n) = self.nodes[node as usize].as_mut() {
                    n.handle(Input::Timeout, now);
                    self.drain(node);
                }
            }
            Ev::Join(i) => self.start(i),
            Ev::Leave(i) => {
                self.nodes[i as usize] = None;
                self.timers[i as usize] = None;
            }
            Ev::Lookup => {
                let from = self.random_honest();
                let target = NodeId::random(&mut self.rng);
                if let Some(node) = self.nodes[from as usize].as_mut() {
                    if let Ok(id) = node.find_node(target, now) {
                        self.measured.push((from, id));
                    }
                    self.drain(from);
                }
            }
            Ev::Announce(pair) => {
                let a = self.announcers[pair as usize];
                if let Some(node) = self.nodes[a as usize].as_mut() {
                    let _ = node.announce(hash_of_pair(pair as usize), 51413, false, now);
                    self.drain(a);
                }
            }
            Ev::Search(pair) => {
                let from = loop {
                    let b = self.random_honest();
                    if b != self.announcers[pair as usize] {
                        break b;
                    }
                };
                if let Some(node) = self.nodes[from as usize].as_mut() {
                    if let Ok(id) = node.get_peers(hash_of_pair(pair as usize), now) {
                        self.searches.push((from, id, pair as usize));
                    }
                    self.drain(from);
                }
            }
        }
    }

    fn run_until(&mut self, until: Nanos) {
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            let Some((at, event)) = self.queue.pop() else {
                break;
            };
            self.now = at;
            self.step(event);
        }
        self.now = self.now.max(until);
    }
}

/// Runs a scenario.
pub fn run(sc: &DhtScenario) -> DhtReport {
    let wall = Instant::now();
    let mut rng = Rng::new(sc.seed);
    let churners = (sc.nodes as f64 * sc.churn).round() as usize;
    let total = sc.nodes + churners;
    let roles = (0..total)
        .map(|i| {
            let x = f64::from(rng.below(1_000_000)) / 1e6;
            if i == 0 {
                Role::Honest
            } else if x < sc.deaf {
                Role::Deaf
            } else if x < sc.deaf + sc.liars {
                Role::Liar
            } else {
                Role::Honest
            }
        })
        .collect();
    let mut w = World {
        base: Instant::now(),
        now: 0,
        rng,
        queue: EventQueue::new(),
        nodes: (0..total).map(|_| None).collect(),
        roles,
        timers: vec![None; total],
        trace: TraceHash::default(),
        datagrams: 0,
        latency: sc.latency_ms,
        measured: Vec::new(),
        done: Vec::new(),
        announcers: Vec::new(),
        searches: Vec::new(),
        found: Vec::new(),
    };
    // 1. Join.
    for i in 0..sc.nodes {
        w.queue.push(sc.join_every * i as u64, Ev::Join(i as u32));
    }
    let joined = sc.join_every * sc.nodes as u64;
    w.run_until(joined + sc.settle);
    let join_datagrams = w.datagrams;
    // 2. Lookups, with churn spread over the phase.
    let start = w.now;
    let spacing = secs(0.1);
    for l in 0..sc.lookups {
        w.queue.push(start + spacing * l as u64, Ev::Lookup);
    }
    let phase = spacing * sc.lookups as u64;
    for c in 0..churners {
        let at = start + phase * c as u64 / churners as u64;
        let leaver = loop {
            let i = w.rng.below(sc.nodes as u32);
            if i != 0 {
                break i;
            }
        };
        w.queue.push(at, Ev::Leave(leaver));
        w.queue.push(at, Ev::Join((sc.nodes + c) as u32));
    }
    w.run_until(start + phase + secs(30.0));
    // 3 and 4. Announces, then searches from other nodes.
    for pair in 0..sc.announces {
        let a = w.random_honest();
        w.announcers.push(a);
        w.found.push(false);
        w.queue
            .push(w.now + secs(0.05) * pair as u64, Ev::Announce(pair as u32));
    }
    w.run_until(w.now + secs(30.0));
    for pair in 0..sc.announces {
        w.queue
            .push(w.now + secs(0.05) * pair as u64, Ev::Search(pair as u32));
    }
    w.run_until(w.now + secs(30.0));

    let mut report = DhtReport {
        nodes: total,
        log2_n: (sc.nodes as f64).log2(),
        lookups: w.done.len(),
        announces: sc.announces,
        found: w.found.iter().filter(|f| **f).count(),
        join_datagrams_per_node: join_datagrams as f64 / sc.nodes.max(1) as f64,
        datagrams: w.datagrams,
        virtual_secs: as_secs(w.now),
        ..DhtReport::default()
    };
    let n = w.done.len().max(1) as f64;
    for (_, done, truth) in &w.done {
        if done.closest == *truth {
            report.exact += 1;
        }
        let hit = truth.iter().filter(|c| done.closest.contains(c)).count();
        report.overlap += hit as f64 / truth.len().max(1) as f64 / n;
        report.hops += f64::from(done.stats.hops) / n;
        report.queries += f64::from(done.stats.queries) / n;
        report.failures += f64::from(done.stats.failures) / n;
        report.stalls += f64::from(done.stats.stalls) / n;
        let s = done.elapsed.as_secs_f64();
        report.seconds += s / n;
        report.seconds_max = report.seconds_max.max(s);
    }
    let tables: Vec<usize> = w
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| w.roles[*i] == Role::Honest)
        .filter_map(|(_, n)| n.as_ref().map(|n| n.table().len()))
        .collect();
    report.table_mean = tables.iter().sum::<usize>() as f64 / tables.len().max(1) as f64;
    report.table_min = tables.iter().copied().min().unwrap_or(0);
    w.trace.word(report.exact as u64);
    report.trace = w.trace.value();
    report.wall_secs = wall.elapsed().as_secs_f64();
    report
}
