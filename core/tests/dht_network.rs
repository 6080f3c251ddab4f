//! A thousand DHT nodes in memory: a map from address to node, datagrams delivered after a
//! per-pair latency on virtual time, each node's timer an event. The nodes are the real
//! [`shoal_core::dht::Node`]; the harness only carries datagrams and time.
//!
//! Checked: everyone bootstraps from one node; lookups from random nodes find the true k
//! closest live nodes (the sorted list of every live id); a peer announced by one node is
//! found by `get_peers` from another; and the same with 10 % of the nodes dropping every
//! packet they receive (they still send their own queries, so they get into routing
//! tables and must be timed out).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use shoal_core::dht::{
    Config, Contact, Event, Input, LookupDone, LookupKind, Node, NodeId, Output,
};
use shoal_core::rng::Rng;
use shoal_core::InfoHash;

enum What {
    Deliver {
        to: usize,
        from: SocketAddrV4,
        data: Vec<u8>,
    },
    Timer {
        node: usize,
    },
}

struct Net {
    base: Instant,
    now: Duration,
    rng: Rng,
    nodes: Vec<Option<Node>>,
    addrs: Vec<SocketAddrV4>,
    index: BTreeMap<SocketAddrV4, usize>,
    /// Nodes that drop every datagram they receive.
    deaf: Vec<bool>,
    timers: Vec<Option<Instant>>,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    events: BTreeMap<u64, What>,
    seq: u64,
    done: Vec<(usize, LookupDone)>,
    peers: Vec<(usize, InfoHash, SocketAddrV4)>,
    datagrams: u64,
}

impl Net {
    fn new(count: usize, seed: u64, deaf_share: f64) -> Net {
        let mut rng = Rng::new(seed);
        let addrs: Vec<SocketAddrV4> = (0..count as u32)
            .map(|n| SocketAddrV4::new(Ipv4Addr::from(0x0a00_0001 + n), 6881))
            .collect();
        let deaf = (0..count)
            .map(|n| n > 0 && f64::from(rng.below(1000)) < deaf_share * 1000.0)
            .collect();
        Net {
            base: shoal_test_clock::epoch(),
            now: Duration::ZERO,
            rng,
            nodes: (0..count).map(|_| None).collect(),
            index: addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect(),
            addrs,
            deaf,
            timers: vec![None; count],
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            done: Vec::new(),
            peers: Vec::new(),
            datagrams: 0,
        }
    }

    fn at(&self) -> Instant {
        self.base + self.now
    }

    fn push(&mut self, when: Duration, what: What) {
        let key = match &what {
            What::Deliver { to, .. } => *to,
            What::Timer { node } => *node,
        };
        self.seq += 1;
        self.events.insert(self.seq, what);
        self.queue.push(Reverse((when, self.seq, key)));
    }

    /// Starts node `i`, bootstrapping from node 0.
    fn start(&mut self, i: usize) {
        let config = Config {
            seed: i as u64 * 7919 + 1,
            token_key: [i as u8; 20],
            bootstrap: if i == 0 { vec![] } else { vec![self.addrs[0]] },
            ..Config::default()
        };
        self.nodes[i] = Some(Node::new(config, self.at()));
        self.drain(i);
    }

    /// Carries out node `i`'s outputs and schedules its timer.
    fn drain(&mut self, i: usize) {
        let now = self.at();
        loop {
            let Some(node) = self.nodes[i].as_mut() else {
                return;
            };
            let Some(out) = node.poll_output() else {
                break;
            };
            match out {
                Output::Send { to, data } => {
                    self.datagrams += 1;
                    if let Some(&j) = self.index.get(&to) {
                        // 10-60 ms one way, drawn per datagram.
                        let latency = Duration::from_millis(10 + u64::from(self.rng.below(50)));
                        let from = self.addrs[i];
                        self.push(self.now + latency, What::Deliver { to: j, from, data });
                    }
                }
                Output::Event(Event::LookupDone(done)) => self.done.push((i, done)),
                Output::Event(Event::Peers {
                    info_hash, peers, ..
                }) => {
                    for p in peers {
                        self.peers.push((i, info_hash, p));
                    }
                }
                Output::Event(_) => {}
            }
        }
        let wake = self.nodes[i].as_ref().and_then(Node::poll_timeout);
        if wake != self.timers[i] {
            self.timers[i] = wake;
            if let Some(at) = wake {
                let when = at.saturating_duration_since(self.base).max(self.now);
                self.push(when, What::Timer { node: i });
            }
        }
        let _ = now;
    }

    /// Runs events until virtual time `until`.
    fn run_until(&mut self, until: Duration) {
        while let Some(Reverse((when, seq, _))) = self.queue.peek().copied() {
            if when > until {
                break;
            }
            self.queue.pop();
            self.now = when;
            let Some(what) = self.events.remove(&seq) else {
                continue;
            };
            let now = self.at();
            match what {
                What::Deliver { to, from, data } => {
                    if self.deaf[to] {
                        continue;
                    }
                    if let Some(node) = self.nodes[to].as_mut() {
                        let from = SocketAddr::V4(from);
                        node.handle(Input::Datagram { from, data: &data }, now);
                        self.drain(to);
                    }
                }
                What::Timer { node } => {
                    if self.timers[node] != Some(now) && self.timers[node].is_none_or(|t| t > now) {
                        continue;
                    }
                    self.timers[node] = None;
                    if let Some(n) = self.nodes[node].as_mut() {
                        n.handle(Input::Timeout, now);
                        self.drain(node);
                    }
                }
            }
        }
        self.now = until;
    }

    fn node(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("started")
    }

    /// The k live (answering) nodes closest to `target`, nearest first.
    fn true_closest(&self, target: &NodeId, k: usize) -> Vec<Contact> {
        let mut all: Vec<Contact> = (0..self.nodes.len())
            .filter(|&i| !self.deaf[i])
            .filter_map(|i| {
                self.nodes[i].as_ref().map(|n| Contact {
                    id: n.id(),
                    addr: self.addrs[i],
                })
            })
            .collect();
        all.sort_by_key(|c| c.id.distance(target));
        all.truncate(k);
        all
    }

    /// Starts every node, one every 20 ms, then lets the network settle.
    fn bootstrap(&mut self) {
        for i in 0..self.nodes.len() {
            self.run_until(self.now + Duration::from_millis(20));
            self.start(i);
        }
        let settle = std::env::var("DHT_SETTLE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        self.run_until(self.now + Duration::from_secs(settle));
    }

    /// `lookups` find_node lookups from random answering nodes to random targets; returns
    /// how many found exactly the true k closest.
    fn lookups(&mut self, lookups: usize) -> (usize, Vec<LookupDone>) {
        let mut exact = 0;
        let mut results = Vec::new();
        for _ in 0..lookups {
            let from = loop {
                let i = self.rng.below(self.nodes.len() as u32) as usize;
                if !self.deaf[i] {
                    break i;
                }
            };
            let target = NodeId::random(&mut self.rng);
            let now = self.at();
            let id = self
                .node(from)
                .find_node(target, now)
                .expect("room for a lookup");
            self.drain(from);
            self.run_until(self.now + Duration::from_secs(20));
            let pos = self
                .done
                .iter()
                .position(|(i, d)| *i == from && d.id == id)
                .expect("the lookup ended within 20 s");
            let (_, done) = self.done.remove(pos);
            let truth = self.true_closest(&target, 8);
            if done.closest == truth {
                exact += 1;
            } else if std::env::var_os("DHT_DEBUG").is_some() {
                let hit = truth.iter().filter(|c| done.closest.contains(c)).count();
                eprintln!(
                    "lookup from {from}: {hit}/8 of the true closest, {:?}",
                    done.stats
                );
            }
            results.push(done);
        }
        (exact, results)
    }
}

fn announce_and_find(net: &mut Net, a: usize, b: usize) {
    let hash = InfoHash([0x5a; 20]);
    let now = net.at();
    net.node(a).announce(hash, 51413, false, now).expect("room");
    net.drain(a);
    net.run_until(net.now + Duration::from_secs(20));
    let announced = net
        .done
        .iter()
        .find(|(i, d)| *i == a && matches!(d.kind, LookupKind::Announce { .. }))
        .map(|(_, d)| d.announced)
        .expect("the announce ended");
    assert!(announced >= 6, "announced to {announced} nodes");
    let now = net.at();
    net.node(b).get_peers(hash, now).expect("room");
    net.drain(b);
    net.run_until(net.now + Duration::from_secs(20));
    let wanted = SocketAddrV4::new(*net.addrs[a].ip(), 51413);
    assert!(
        net.peers
            .iter()
            .any(|(i, h, p)| *i == b && *h == hash && *p == wanted),
        "node {b} found the peer node {a} announced"
    );
}

fn check(net: &mut Net, min_exact: usize) {
    let (exact, results) = net.lookups(40);
    let hops: u32 = results.iter().map(|d| d.stats.hops).sum();
    let queries: u32 = results.iter().map(|d| d.stats.queries).sum();
    eprintln!(
        "{exact}/40 lookups exact; per lookup {:.1} hops, {:.1} queries; {} datagrams",
        f64::from(hops) / 40.0,
        f64::from(queries) / 40.0,
        net.datagrams
    );
    assert!(
        exact >= min_exact,
        "only {exact} of 40 lookups found the true 8 closest"
    );
    for d in &results {
        assert_eq!(d.closest.len(), 8, "every lookup ends with k nodes");
    }
}

#[test]
fn a_thousand_nodes_bootstrap_from_one_and_find_the_true_closest() {
    let mut net = Net::new(1000, 1, 0.0);
    net.bootstrap();
    for i in 0..net.nodes.len() {
        let size = net.node(i).table().len();
        assert!(size >= 8, "node {i} knows {size} nodes");
    }
    check(&mut net, 38);
    announce_and_find(&mut net, 17, 923);
}

#[test]
fn a_thousand_nodes_with_a_tenth_deaf() {
    let mut net = Net::new(1000, 2, 0.1);
    let deaf = net.deaf.iter().filter(|d| **d).count();
    assert!((60..=140).contains(&deaf), "{deaf} deaf nodes");
    net.bootstrap();
    check(&mut net, 36);
    let (a, b) = (1..1000)
        .filter(|&i| !net.deaf[i])
        .fold((0, 0), |(a, _), i| if a == 0 { (i, 0) } else { (a, i) });
    announce_and_find(&mut net, a, b);
}
