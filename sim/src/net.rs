//! The network model: connections between nodes, and how fast their bytes go.
//!
//! # Flows, not packets
//!
//! A [`Link`] is one TCP connection: two ends and two [`Pipe`]s, one per direction. What an
//! engine hands over in `Output::Send` goes into the pipe as a [`Unit`] (the simulator
//! groups the sends of one engine call that belong together — a piece header and its
//! block — into one unit, and never puts two blocks in one, so a unit is at most one block
//! plus the small messages before it). A pipe with units waiting is an active **flow**:
//! it transmits its head unit at the flow's rate; when the unit is through, it travels
//! for the link's latency and arrives whole at the other end.
//!
//! # Rates: each node's capacity shared equally among its active flows
//!
//! Node `i` has an uplink of `U_i` and a downlink of `D_j` bytes per second. A flow from
//! `i` to `j` runs at
//!
//! ```text
//!     r(i→j) = min( U_i / up_flows(i),  D_j / down_flows(j) )
//! ```
//!
//! recomputed whenever a flow starts or stops, with one delay: a sender learns of a change
//! in its receiver's count of download flows at the next [settling](Net::settle), which
//! the simulator does at the end of each window of virtual time, at most one link
//! latency after the change (the time the news would take over the link). A flow that
//! starts counts the receiver's flows as last settled. Why this model:
//!
//! - It is **max-min fair whenever uplinks are the bottleneck** — the normal case for
//!   BitTorrent, where access links are asymmetric and the Kumar–Ross bound is about
//!   upload capacity: with `D_j / down_flows(j) ≥ U_i / up_flows(i)` every uplink is fully
//!   and equally shared, exactly what TCP's fair share converges to. When a downlink is the
//!   narrower one it gives each flow its bottleneck's equal share, a lower bound of its
//!   max-min rate (the capacity a receiver-limited flow leaves unused on its sender's
//!   uplink is not handed to the sender's other flows). Scenarios where downlinks bind
//!   are therefore slightly pessimistic.
//! - It is **local**: a flow starting or stopping between `i` and `j` changes the rates of
//!   `i`'s upload flows at once and `j`'s download flows at the next settling — O(flows of
//!   the two nodes), a dozen or so — where global max-min (progressive filling) touches
//!   every flow of the connected component at every change, which thousands of nodes
//!   cannot afford. The delay at the receiver keeps a node's events within a window its
//!   own: nothing another node does in the window moves them.
//! - Between changes every rate is constant, so a unit's finishing time is exact: one
//!   event per unit, rescheduled (lazily, by version number) only when its rate changes.
//!
//! TCP's own dynamics (slow start, congestion window, losses recovered by retransmission)
//! are below this model's resolution: a connection is at its fair share from its first
//! byte.
//!
//! # Small messages
//!
//! Protocol messages (`have`, `request`, `interested`, …) sent on a pipe that is idle do
//! not become a flow: they leave at once and arrive after the latency plus their
//! serialisation time at the sender's full uplink rate. Making each 9-byte `have` a flow
//! would cost two rate recomputations on both nodes for a transfer of microseconds; tens
//! of millions of them go through a thousand-node swarm. Behind a busy pipe they wait
//! their turn like any byte (TCP's head-of-line order).
//!
//! # Latency and order
//!
//! A link's one-way latency is the sum of its ends' access latencies plus a fixed
//! per-pair jitter. Arrivals on a pipe are kept in order (a unit never arrives before the
//! one sent before it), and so is a close behind the data sent before it.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use shoal_core::engine::ConnId;

use crate::sched::Nanos;

/// Index of a link in the [`Net`]'s slab.
pub type LinkId = u32;

/// One direction of one link: `dir` 0 carries end 0's bytes to end 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub link: LinkId,
    pub dir: u8,
}

/// Bytes the sender handed over in one go, travelling as one: protocol messages,
/// possibly ending in one block's data.
#[derive(Debug, Default)]
pub struct Unit {
    /// The protocol bytes, copied in when sent (while the sender's buffer is still in
    /// cache; the unit is read again only on arrival, thousands of events later).
    pub head: SmallVec<[u8; 48]>,
    /// The block data that ends the unit, as the sender's engine handed it over.
    pub block: Option<Bytes>,
    pub len: u32,
    /// Of `len`, the bytes of block data.
    pub payload: u32,
    /// The simulator's drain in which the unit was made (only sends of one drain merge).
    pub batch: u64,
}

impl Unit {
    /// The unit's bytes as one buffer the receiving engine may keep.
    pub fn into_bytes_mut(self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.len as usize);
        out.extend_from_slice(&self.head);
        if let Some(b) = &self.block {
            out.extend_from_slice(b);
        }
        out
    }
}

/// One direction of a connection.
#[derive(Debug, Default)]
pub struct Pipe {
    /// Units not yet through the sender's uplink; the head is the one transmitting when
    /// `busy`.
    pub queue: VecDeque<Unit>,
    pub busy: bool,
    /// Bytes of the head unit still to transmit, as of `since`.
    head_left: f64,
    /// Bytes per nanosecond.
    pub rate: f64,
    since: Nanos,
    /// Bumped whenever the head's finishing time changes: older wake-ups are stale.
    pub version: u32,
    /// Counted among its sender's upload flows and its receiver's download flows.
    pub active: bool,
    pos_up: u32,
    pos_down: u32,
    /// Units through the uplink, travelling, with their arrival times (in order), except
    /// those small enough to travel inside their arrival event.
    pub in_flight: VecDeque<(Nanos, Unit)>,
    /// Units travelling, in `in_flight` or in their events.
    pub travelling: u32,
    /// Arrival time of the last unit sent (arrivals never overtake each other).
    pub last_arrival: Nanos,
    /// Bytes of `queue`.
    pub queued: usize,
    /// Bytes through the uplink (or sent without a flow) not yet reported to the sender's
    /// engine with `Input::Sent`.
    pub owed_sent: usize,
    /// Position + 1 in the simulator's list of pipes touched by the current drain (0: not
    /// listed).
    pub touched: u32,
}

/// One side of a connection.
#[derive(Clone, Copy, Debug)]
pub struct End {
    pub node: u32,
    /// The connection's id in that node's engine (none until the SYN is accepted).
    pub conn: Option<ConnId>,
    /// The node's engine holds the connection.
    pub open: bool,
}

/// One TCP connection between two nodes; end 0 dialled. In this order (`repr(C)`): the
/// latency shares its cache line with the ends, both read at a delivery and at a unit's
/// send.
#[derive(Debug)]
#[repr(C)]
pub struct Link {
    /// Bumped when the slot is freed, so events for a closed link are recognised.
    pub gen: u32,
    pub live: bool,
    /// One-way latency.
    pub latency: Nanos,
    pub ends: [End; 2],
    pub pipes: [Pipe; 2],
}

impl Link {
    /// Empties both pipes for the slot's next connection. Their versions keep counting: a
    /// wake-up of the old connection still in the event queue must never match a head of
    /// the new one.
    fn reset_pipes(&mut self) {
        for p in &mut self.pipes {
            let version = p.version;
            *p = Pipe::default();
            p.version = version;
        }
    }
}

/// A node as the network sees it.
#[derive(Debug, Default)]
pub struct NetNode {
    /// Uplink and downlink capacity, bytes per nanosecond.
    pub up: f64,
    pub down: f64,
    pub up_flows: Vec<Flow>,
    pub down_flows: Vec<Flow>,
    /// `down_flows.len()` as of the last settling: what the senders' rates count.
    down_seen: u32,
    /// Listed in [`Net::unsettled`].
    unsettled: bool,
}

/// Links, nodes' capacities, and the rate model.
#[derive(Default)]
pub struct Net {
    pub links: Vec<Link>,
    free: Vec<LinkId>,
    pub nodes: Vec<NetNode>,
    /// Wake-ups the simulator must schedule: (time, flow, version) of a head unit's end.
    pub wakeups: Vec<(Nanos, Flow, u32)>,
    /// Rate changes applied (for statistics).
    pub rate_updates: u64,
    /// Nodes whose download flows changed since the last settling.
    unsettled: Vec<u32>,
}

impl Net {
    pub fn add_node(&mut self, up_bytes_per_s: f64, down_bytes_per_s: f64) -> u32 {
        self.nodes.push(NetNode {
            up: up_bytes_per_s / 1e9,
            down: down_bytes_per_s / 1e9,
            ..NetNode::default()
        });
        (self.nodes.len() - 1) as u32
    }

    /// Opens a link from `from` (whose engine calls it `conn`) to `to`.
    pub fn open(&mut self, from: u32, conn: ConnId, to: u32, latency: Nanos) -> LinkId {
        let ends = [
            End {
                node: from,
                conn: Some(conn),
                open: true,
            },
            End {
                node: to,
                conn: None,
                open: false,
            },
        ];
        match self.free.pop() {
            Some(id) => {
                let l = &mut self.links[id as usize];
                l.live = true;
                l.ends = ends;
                l.latency = latency;
                l.reset_pipes();
                id
            }
            None => {
                self.links.push(Link {
                    gen: 0,
                    live: true,
                    ends,
                    pipes: Default::default(),
                    latency,
                });
                (self.links.len() - 1) as LinkId
            }
        }
    }

    pub fn link(&self, id: LinkId) -> &Link {
        &self.links[id as usize]
    }

    pub fn link_mut(&mut self, id: LinkId) -> &mut Link {
        &mut self.links[id as usize]
    }

    pub fn pipe(&mut self, f: Flow) -> &mut Pipe {
        &mut self.links[f.link as usize].pipes[f.dir as usize]
    }

    /// Reads the fields of a pipe that queueing on it reads first, and the link's
    /// latency (a send reads it), to bring them into the cache ahead of time.
    pub fn warm(&self, f: Flow) -> usize {
        let l = &self.links[f.link as usize];
        let p = &l.pipes[f.dir as usize];
        p.queued ^ p.touched as usize ^ p.queue.len() ^ usize::from(p.active) ^ l.latency as usize
    }

    /// Sender and receiver of a flow.
    pub fn ends_of(&self, f: Flow) -> (u32, u32) {
        let l = &self.links[f.link as usize];
        (l.ends[f.dir as usize].node, l.ends[1 - f.dir as usize].node)
    }

    /// Frees the link if nothing refers to it any more: both ends closed, nothing
    /// travelling, no flow.
    pub fn maybe_free(&mut self, id: LinkId) {
        let l = &mut self.links[id as usize];
        if !l.live || l.ends[0].open || l.ends[1].open {
            return;
        }
        if l.pipes.iter().any(|p| p.travelling > 0 || p.active) {
            return;
        }
        l.live = false;
        l.gen = l.gen.wrapping_add(1);
        l.reset_pipes();
        self.free.push(id);
    }

    /// Starts transmitting the head unit of `f` at `now`: the flow joins its nodes' active
    /// flows if it was not among them, and rates are recomputed.
    pub fn start_head(&mut self, f: Flow, now: Nanos) {
        let p = self.pipe(f);
        let Some(head) = p.queue.front() else {
            return;
        };
        p.busy = true;
        p.head_left = f64::from(head.len);
        p.since = now;
        if p.active {
            // Same flow, same rate: just the new unit's end.
            let (rate, left) = (p.rate, p.head_left);
            p.version = p.version.wrapping_add(1);
            let v = p.version;
            self.wakeups.push((now + finish_after(left, rate), f, v));
            return;
        }
        p.active = true;
        p.rate = 0.0;
        let (i, j) = self.ends_of(f);
        let up = &mut self.nodes[i as usize].up_flows;
        let pos_up = up.len() as u32;
        up.push(f);
        let down = &mut self.nodes[j as usize].down_flows;
        let pos_down = down.len() as u32;
        down.push(f);
        let p = self.pipe(f);
        p.pos_up = pos_up;
        p.pos_down = pos_down;
        self.rerate_up(i, now);
        self.unsettle(j);
    }

    /// Takes the head unit off a pipe whose head is through (its wake-up came).
    pub fn finish_head(&mut self, f: Flow) -> Unit {
        let p = self.pipe(f);
        p.busy = false;
        p.head_left = 0.0;
        let unit = p.queue.pop_front().expect("a busy pipe has a head");
        p.queued -= unit.len as usize;
        unit
    }

    /// The flow stops (nothing left to send, or its end closed): it leaves its nodes'
    /// active flows and the others' rates are recomputed. Queued units stay.
    pub fn stop(&mut self, f: Flow, now: Nanos) {
        let p = self.pipe(f);
        p.busy = false;
        p.version = p.version.wrapping_add(1);
        if !p.active {
            return;
        }
        p.active = false;
        let (pos_up, pos_down) = (p.pos_up as usize, p.pos_down as usize);
        let (i, j) = self.ends_of(f);
        let up = &mut self.nodes[i as usize].up_flows;
        up.swap_remove(pos_up);
        if let Some(&moved) = up.get(pos_up) {
            self.pipe(moved).pos_up = pos_up as u32;
        }
        let down = &mut self.nodes[j as usize].down_flows;
        down.swap_remove(pos_down);
        if let Some(&moved) = down.get(pos_down) {
            self.pipe(moved).pos_down = pos_down as u32;
        }
        self.rerate_up(i, now);
        self.unsettle(j);
    }

    /// Recomputes the rates of `i`'s upload flows.
    fn rerate_up(&mut self, i: u32, now: Nanos) {
        let n = self.nodes[i as usize].up_flows.len();
        for k in 0..n {
            let f = self.nodes[i as usize].up_flows[k];
            self.set_rate(f, now);
        }
    }

    /// Node `j`'s download flows changed: its senders learn it at the next settling.
    fn unsettle(&mut self, j: u32) {
        let node = &mut self.nodes[j as usize];
        if !node.unsettled {
            node.unsettled = true;
            self.unsettled.push(j);
        }
    }

    /// The senders learn the download flows of the receivers whose flows changed since the
    /// last settling: their shares, and so the rates of those flows, change at `now`.
    pub fn settle(&mut self, now: Nanos) {
        let mut unsettled = std::mem::take(&mut self.unsettled);
        for &j in &unsettled {
            let node = &mut self.nodes[j as usize];
            node.unsettled = false;
            let seen = node.down_flows.len() as u32;
            if seen == node.down_seen {
                continue;
            }
            node.down_seen = seen;
            for k in 0..seen as usize {
                let f = self.nodes[j as usize].down_flows[k];
                self.set_rate(f, now);
            }
        }
        unsettled.clear();
        self.unsettled = unsettled;
    }

    fn fair_rate(&self, f: Flow) -> f64 {
        let (i, j) = self.ends_of(f);
        let (a, b) = (&self.nodes[i as usize], &self.nodes[j as usize]);
        let up = a.up / a.up_flows.len().max(1) as f64;
        let down = b.down / b.down_seen.max(1) as f64;
        up.min(down)
    }

    fn set_rate(&mut self, f: Flow, now: Nanos) {
        let rate = self.fair_rate(f);
        let p = self.pipe(f);
        if p.rate == rate {
            return;
        }
        if p.busy {
            p.head_left = (p.head_left - p.rate * (now - p.since) as f64).max(0.0);
            p.since = now;
        }
        p.rate = rate;
        if p.busy {
            p.version = p.version.wrapping_add(1);
            let (v, left) = (p.version, p.head_left);
            self.rate_updates += 1;
            self.wakeups.push((now + finish_after(left, rate), f, v));
        }
    }
}

/// Nanoseconds to send `left` bytes at `rate` bytes per nanosecond (rounded up).
fn finish_after(left: f64, rate: f64) -> Nanos {
    if left <= 0.0 {
        return 0;
    }
    let t = (left / rate).ceil();
    if t.is_finite() && t < 1e18 {
        t as Nanos
    } else {
        u64::MAX / 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnId {
        // ConnIds come from engines; any one will do for the network, which only stores it.
        let mut e = shoal_core::engine::Engine::new(Default::default());
        e.accept("10.0.0.1:1".parse().unwrap(), std::time::Instant::now())
            .unwrap()
    }

    fn unit(len: u32) -> Unit {
        Unit {
            head: SmallVec::new(),
            block: Some(Bytes::from(vec![0; len as usize])),
            len,
            payload: len,
            batch: 0,
        }
    }

    #[test]
    fn an_uplink_is_shared_equally_and_a_slow_downlink_caps_its_flow() {
        let mut net = Net::default();
        // 1000 B/s up at node 0; node 1 downloads at most 100 B/s, node 2 without limit.
        let a = net.add_node(1000.0, f64::INFINITY);
        let b = net.add_node(1000.0, 100.0);
        let c = net.add_node(1000.0, f64::INFINITY);
        let c0 = conn();
        let l1 = net.open(a, c0, b, 0);
        let l2 = net.open(a, c0, c, 0);
        let f1 = Flow { link: l1, dir: 0 };
        let f2 = Flow { link: l2, dir: 0 };
        net.pipe(f1).queue.push_back(unit(1000));
        net.pipe(f2).queue.push_back(unit(1000));
        net.start_head(f2, 0);
        // Alone: the whole uplink, 1000 bytes in 1 s.
        assert_eq!(net.wakeups.last().unwrap().0, 1_000_000_000);
        net.start_head(f1, 0);
        // Together: 500 B/s each, but b takes only 100.
        assert!((net.pipe(f1).rate * 1e9 - 100.0).abs() < 1e-6);
        assert!((net.pipe(f2).rate * 1e9 - 500.0).abs() < 1e-6);
        let due = |net: &Net, f: Flow| {
            let v = net.links[f.link as usize].pipes[f.dir as usize].version;
            net.wakeups.iter().find(|w| w.1 == f && w.2 == v).unwrap().0
        };
        assert_eq!(due(&net, f2), 2_000_000_000);
        assert_eq!(due(&net, f1), 10_000_000_000);
        // f1 stops after 0.5 s: f2 has 750 bytes left, alone again at 1000 B/s.
        net.stop(f1, 500_000_000);
        let (at, f, v) = *net.wakeups.last().unwrap();
        assert_eq!((f, v), (f2, net.pipe(f2).version));
        assert_eq!(at, 1_250_000_000);
        assert_eq!(net.nodes[a as usize].up_flows, vec![f2]);
        assert!(net.nodes[b as usize].down_flows.is_empty());
    }

    #[test]
    fn senders_learn_a_receivers_share_when_it_settles() {
        let mut net = Net::default();
        // Two fast senders into one receiver that takes 100 B/s in all.
        let a = net.add_node(1000.0, f64::INFINITY);
        let b = net.add_node(1000.0, f64::INFINITY);
        let r = net.add_node(1000.0, 100.0);
        let fa = Flow {
            link: net.open(a, conn(), r, 0),
            dir: 0,
        };
        let fb = Flow {
            link: net.open(b, conn(), r, 0),
            dir: 0,
        };
        net.pipe(fa).queue.push_back(unit(1000));
        net.pipe(fb).queue.push_back(unit(1000));
        net.start_head(fa, 0);
        net.start_head(fb, 0);
        // Until it settles, each sender counts the receiver's flows as they were: none.
        let rate = |net: &mut Net, f| net.pipe(f).rate * 1e9;
        assert!((rate(&mut net, fa) - 100.0).abs() < 1e-6);
        assert!((rate(&mut net, fb) - 100.0).abs() < 1e-6);
        // At 0.5 s the news is in: 50 B/s each, the 950 bytes left of each due 19 s later.
        net.wakeups.clear();
        net.settle(500_000_000);
        assert!((rate(&mut net, fa) - 50.0).abs() < 1e-6);
        assert!((rate(&mut net, fb) - 50.0).abs() < 1e-6);
        let mut due: Vec<_> = net.wakeups.iter().map(|w| (w.1.link, w.0)).collect();
        due.sort();
        assert_eq!(
            due,
            vec![(fa.link, 19_500_000_000), (fb.link, 19_500_000_000)]
        );
        // Settling again with nothing changed moves nothing.
        net.wakeups.clear();
        net.settle(600_000_000);
        assert!(net.wakeups.is_empty());
        // One flow stops: the other keeps 50 B/s until the next settling, then has 100.
        net.stop(fb, 1_000_000_000);
        assert!((rate(&mut net, fa) - 50.0).abs() < 1e-6);
        net.settle(1_000_000_000);
        assert!((rate(&mut net, fa) - 100.0).abs() < 1e-6);
    }

    #[test]
    fn links_are_freed_only_when_nothing_refers_to_them() {
        let mut net = Net::default();
        let a = net.add_node(1.0, 1.0);
        let b = net.add_node(1.0, 1.0);
        let l = net.open(a, conn(), b, 5);
        // One unit through the pipe: its version moves on.
        let f = Flow { link: l, dir: 0 };
        net.pipe(f).queue.push_back(unit(10));
        net.pipe(f).queued = 10;
        net.start_head(f, 0);
        net.finish_head(f);
        net.stop(f, 10);
        let version = net.pipe(f).version;
        assert!(version > 0);
        net.maybe_free(l);
        assert!(net.link(l).live);
        net.link_mut(l).ends[0].open = false;
        net.pipe(Flow { link: l, dir: 0 }).travelling = 1;
        net.maybe_free(l);
        assert!(net.link(l).live);
        net.pipe(Flow { link: l, dir: 0 }).travelling = 0;
        let gen = net.link(l).gen;
        net.maybe_free(l);
        assert!(!net.link(l).live);
        assert_eq!(net.link(l).gen, gen + 1);
        assert_eq!(net.open(b, conn(), a, 1), l);
        // The reused slot's pipes are empty, and their versions go on from the old ones.
        let p = net.pipe(Flow { link: l, dir: 0 });
        assert!(p.queue.is_empty() && p.travelling == 0 && !p.active);
        assert_eq!(p.version, version);
    }
}
