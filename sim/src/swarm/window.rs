//! The run loop: virtual time in windows, each node's events of a window run together.
//!
//! Every event happens at one node (a delivery at its receiver, a unit through the uplink
//! at its sender, a timer at its owner), or at the swarm itself (a sample, the web
//! server's next answer). Whatever a node does reaches another node at least one link
//! latency later: bytes, connections and closes travel the link, datagrams too, and the
//! network model lets a receiver's share of its downlink reach its senders' rates only at
//! the end of a window ([`Net::settle`](crate::net::Net::settle)). So within a window no
//! longer than the shortest latency, the nodes' events are independent of each other, and
//! the simulator may run them node by node instead of in one global time order: each node's
//! events in its own time order, then the next node's. Its engine, its connections and
//! its picker are loaded into the cache once for the window's dozen or so events, instead
//! of once for each event among a thousand nodes' interleaved ones.
//!
//! A window starts at the earliest pending event and ends a shortest latency later, or at
//! the swarm's next own event, which runs between windows. A node's events scheduled for
//! itself within the window (a timer, a unit through its uplink) join its run in time
//! order. The order in which nodes run is the order of their first events in the window:
//! the run stays a pure function of the scenario. With no latency to rely on (a latency of
//! 0, or a web server, which answers requests as they come) a window holds one instant.

use std::cmp::Reverse;

use super::*;

/// The node of events that are the swarm's own.
pub(super) const SWARM: u32 = u32::MAX;

/// An event and the node it happens at ([`SWARM`] for the swarm's own).
#[derive(Clone, Copy, Debug)]
pub(super) struct Item {
    pub node: u32,
    pub ev: Ev,
}

/// What the run loop keeps between and within windows.
#[derive(Default)]
pub(super) struct Windows {
    /// The longest window: the shortest link latency (0: one instant per window).
    pub span: Nanos,
    /// The end of the running window (exclusive).
    pub end: Nanos,
    /// The node whose events are running (`SWARM` between nodes).
    pub node: u32,
    /// Per node, its events of the running window in time order.
    pub buckets: Vec<Vec<(Nanos, Ev)>>,
    /// The nodes with events in the running window, by their first event.
    pub order: Vec<u32>,
    /// The running node's events scheduled during its run for within the window: time,
    /// a sequence number (ties in push order), the event.
    pub local: std::collections::BinaryHeap<Reverse<(Nanos, u64, LocalEv)>>,
    pub seq: u64,
}

/// An event in the running node's own heap (ordered by time and sequence only).
#[derive(Clone, Copy, Debug)]
pub(super) struct LocalEv(pub Ev);

impl PartialEq for LocalEv {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for LocalEv {}
impl PartialOrd for LocalEv {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for LocalEv {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl Sim {
    /// The longest window the scenario allows: the shortest latency between two nodes, or
    /// 0 where something answers without one (a web server).
    pub(super) fn window_span(sc: &Scenario) -> Nanos {
        if sc.web_server.is_some() {
            return 0;
        }
        let least = sc
            .groups
            .iter()
            .map(|g| g.latency_ms)
            .fold(f64::INFINITY, f64::min);
        if least.is_finite() {
            // As `latency` computes it for two nodes of the least latency, jitter aside.
            secs((least + least) / 1000.0)
        } else {
            0
        }
    }

    /// Where an event happens.
    pub(super) fn node_of(&self, ev: &Ev) -> u32 {
        match *ev {
            Ev::Arrive(i) | Ev::Depart(i) | Ev::Timer(i) => i,
            Ev::Sample | Ev::WebDone(_) => SWARM,
            Ev::PipeDone { flow, .. } | Ev::Ack(flow) => {
                self.net.link(flow.link).ends[flow.dir as usize].node
            }
            Ev::Deliver(flow, _) => self.net.link(flow.link).ends[1 - flow.dir as usize].node,
            Ev::Syn { link, .. } => self.net.link(link).ends[1].node,
            Ev::Connected { link, .. } | Ev::Refused { link, .. } => {
                self.net.link(link).ends[0].node
            }
            Ev::Fin { link, to, .. } | Ev::Reset { link, to, .. } => {
                self.net.link(link).ends[to as usize].node
            }
            Ev::TrackerAnswer(slot) => self.answers[slot as usize].as_ref().map_or(SWARM, |a| a.0),
            Ev::Datagram(slot) => self.datagrams[slot as usize]
                .as_ref()
                .map_or(SWARM, |d| d.0),
            Ev::WebAnswer(slot) => self.web_answers[slot as usize]
                .as_ref()
                .map_or(SWARM, |a| a.0),
        }
    }

    /// Schedules `ev` at `at`: into the running node's own heap if it is that node's and
    /// falls within the window, else into the queue. (Between windows, when the swarm's
    /// own events run, the last window is over: anything goes into the queue, at or after
    /// the time of its last event.)
    pub(super) fn schedule(&mut self, at: Nanos, ev: Ev) {
        let node = self.node_of(&ev);
        if node == SWARM {
            self.swarm_queue.push(at, ev);
            return;
        }
        let w = &mut self.win;
        let mut at = at;
        if at < w.end && w.node != SWARM {
            if node == w.node {
                w.seq += 1;
                w.local.push(Reverse((at, w.seq, LocalEv(ev))));
                return;
            }
            // Another node's event within the window. In a window of one instant (no
            // latency to rely on) it is that instant's: it runs in the next window, at the
            // same time. In a longer one, every path between nodes takes at least the
            // window's span, so this is a bug of the model's.
            if w.span > 0 {
                debug_assert!(false, "{ev:?} for node {node} at {at} within the window");
                self.t.late_events += 1;
                at = w.end;
            }
        }
        self.queue.push(at, Item { node, ev });
    }

    /// Runs windows and the swarm's own events in time order until every leecher is done,
    /// the queues are empty, or the next event is past `limit`.
    pub(super) fn run_windows(&mut self, limit: Nanos) {
        loop {
            let next = self.queue.peek_time();
            let swarm = self.swarm_queue.peek_time();
            let Some(start) = [next, swarm].into_iter().flatten().min() else {
                return;
            };
            if start > limit {
                return;
            }
            if swarm.is_some_and(|s| next.is_none_or(|n| s <= n)) {
                let (at, ev) = self.swarm_queue.pop().expect("peeked");
                self.now = at;
                self.t.events += 1;
                self.trace.word(at);
                std::hash::Hash::hash(&ev, &mut self.trace);
                self.dispatch(ev);
            } else {
                let end = (start + self.win.span.max(1))
                    .min(swarm.unwrap_or(Nanos::MAX))
                    .min(limit + 1);
                self.run_window(end);
            }
            if self.done {
                return;
            }
        }
    }

    /// Runs every node's events before `end`, node by node; then the senders learn the
    /// receivers' shares as of `end`.
    fn run_window(&mut self, end: Nanos) {
        self.win.end = end;
        self.t.windows += 1;
        while let Some((at, item)) = self.queue.pop_before(end) {
            let bucket = &mut self.win.buckets[item.node as usize];
            if bucket.is_empty() {
                self.win.order.push(item.node);
            }
            bucket.push((at, item.ev));
        }
        let order = std::mem::take(&mut self.win.order);
        for &node in &order {
            if !self.done {
                self.run_node(node);
            }
            self.win.buckets[node as usize].clear();
        }
        self.win.order = order;
        self.win.order.clear();
        self.win.node = SWARM;
        self.net.settle(end);
        self.schedule_wakeups();
    }

    /// Runs node `i`'s events of the window in time order: those queued before it, and
    /// those it schedules for itself as it goes.
    fn run_node(&mut self, i: u32) {
        self.win.node = i;
        let bucket = std::mem::take(&mut self.win.buckets[i as usize]);
        let mut k = 0;
        loop {
            // Queued events first on a tie: they were scheduled before the window began.
            let local_first = match (bucket.get(k), self.win.local.peek()) {
                (Some(&(at, _)), Some(Reverse((t, _, _)))) => *t < at,
                (None, Some(_)) => true,
                (_, None) => false,
            };
            let (at, ev) = if local_first {
                let Reverse((at, _, LocalEv(ev))) = self.win.local.pop().expect("peeked");
                (at, ev)
            } else if let Some(&(at, ev)) = bucket.get(k) {
                k += 1;
                if let Some((_, next)) = bucket.get(k) {
                    self.read_ahead(next);
                }
                (at, ev)
            } else {
                break;
            };
            self.now = at;
            self.t.events += 1;
            self.trace.word(at);
            std::hash::Hash::hash(&ev, &mut self.trace);
            self.dispatch(ev);
            if self.done {
                self.win.local.clear();
                break;
            }
        }
        self.win.buckets[i as usize] = bucket;
    }
}
