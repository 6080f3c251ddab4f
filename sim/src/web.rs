//! A web server node: the simulated torrent's web seed (BEP 19), an HTTP source with its
//! own upload capacity, as `shoal serve` is for real torrents.
//!
//! # Model
//!
//! The engines ask it for byte ranges (`Output::WebSeedRequest`, real HTTP/1.1 request
//! bytes); it answers with what core's server side says for that request
//! ([`shoal_core::webseed::serve::answer_file`]): a `206` head and the bytes of the
//! range. The transfer is a flow from the server: its uplink is shared among the requests
//! it is answering, each capped by its receiver's downlink (shared equally by that
//! receiver's requests: an engine has up to two under way per web seed) — water-filling:
//! a request whose cap is below an equal share runs at its cap, the others share what is
//! left equally. Rates are recomputed when a request starts or ends; between those moments
//! every rate is constant, so each finishing time is exact. The answer reaches its
//! engine one latency after its last byte left.
//!
//! Simplification: a receiver's downlink is not shared between its web transfer and its
//! peer flows. Web transfers are therefore never slowed by a receiver's peers, which if
//! anything lets the server send more than it would: the bytes measured err against the
//! claim that a swarm spares its server.

use shoal_core::engine::{TorrentId, WebSeedRequestId};
use shoal_core::webseed::serve::BodyRange;

use crate::sched::{as_secs, secs, Nanos};

/// One request being answered.
#[derive(Debug)]
pub struct WebJob {
    /// The asking node.
    pub node: u32,
    pub torrent: TorrentId,
    pub id: WebSeedRequestId,
    /// The answer's head.
    pub head: Vec<u8>,
    /// The answer's body: a range of the file.
    pub body: Option<BodyRange>,
}

impl WebJob {
    /// Bytes on the wire: head and body.
    pub fn wire_len(&self) -> u64 {
        self.head.len() as u64 + self.body.map_or(0, |b| b.len)
    }
}

struct Active {
    job: WebJob,
    /// Bytes still to send.
    remaining: f64,
    /// The receiver's downlink, bytes per second.
    cap: f64,
    rate: f64,
}

/// The server: its uplink and the requests it is answering.
pub struct WebServer {
    upload: f64,
    /// One-way latency to any node.
    pub latency: Nanos,
    active: Vec<Active>,
    /// When `remaining` was last brought up to date.
    updated: Nanos,
    /// Numbers the scheduled finishing events: only the latest counts.
    version: u32,
    /// Body bytes sent so far (answers whose last byte has left).
    pub payload_sent: u64,
    /// Requests answered so far.
    pub requests: u64,
}

impl WebServer {
    /// A server of `upload` bytes per second, `latency` away from every node.
    pub fn new(upload: f64, latency: Nanos) -> WebServer {
        WebServer {
            upload,
            latency,
            active: Vec::new(),
            updated: 0,
            version: 0,
            payload_sent: 0,
            requests: 0,
        }
    }

    /// Starts answering `job` for a receiver of downlink `cap` at `now`. Returns when the
    /// first answer will be through and the version of that event.
    pub fn start(&mut self, now: Nanos, job: WebJob, cap: f64) -> Option<(Nanos, u32)> {
        self.advance(now);
        let remaining = job.wire_len() as f64;
        self.active.push(Active {
            job,
            remaining,
            cap,
            rate: 0.0,
        });
        self.reschedule(now)
    }

    /// The event of `version` fired at `now`: the answers whose last byte has left, and
    /// the next event (if any requests remain).
    pub fn due(&mut self, now: Nanos, version: u32) -> (Vec<WebJob>, Option<(Nanos, u32)>) {
        if version != self.version {
            return (Vec::new(), None);
        }
        self.advance(now);
        let mut done = Vec::new();
        let mut k = 0;
        while k < self.active.len() {
            // Half a byte: what floating point leaves of a transfer that is through.
            if self.active[k].remaining <= 0.5 {
                let a = self.active.swap_remove(k);
                self.payload_sent += a.job.body.map_or(0, |b| b.len);
                self.requests += 1;
                done.push(a.job);
            } else {
                k += 1;
            }
        }
        // Swap-remove changed the order: keep the answers in request order per node.
        done.sort_by_key(|j| (j.node, j.id));
        (done, self.reschedule(now))
    }

    fn advance(&mut self, now: Nanos) {
        let dt = as_secs(now.saturating_sub(self.updated));
        for a in &mut self.active {
            a.remaining -= a.rate * dt;
        }
        self.updated = now;
    }

    /// New rates (water-filling) and the next finishing time.
    fn reschedule(&mut self, now: Nanos) -> Option<(Nanos, u32)> {
        self.version = self.version.wrapping_add(1);
        // A receiver's downlink is shared by its requests.
        let mut per_node = std::collections::BTreeMap::<u32, f64>::new();
        for a in &self.active {
            *per_node.entry(a.job.node).or_default() += 1.0;
        }
        let cap = |a: &Active| a.cap / per_node.get(&a.job.node).copied().unwrap_or(1.0);
        let mut order: Vec<usize> = (0..self.active.len()).collect();
        order.sort_by(|&a, &b| cap(&self.active[a]).total_cmp(&cap(&self.active[b])));
        let mut left = self.upload;
        let mut n = order.len();
        for i in order {
            let share = left / n as f64;
            let rate = cap(&self.active[i]).min(share);
            self.active[i].rate = rate;
            left -= rate;
            n -= 1;
        }
        let soonest = self
            .active
            .iter()
            .filter(|a| a.rate > 0.0)
            .map(|a| a.remaining.max(0.0) / a.rate)
            .reduce(f64::min)?;
        // Rounded up to the next nanosecond: the transfer is through by then.
        Some((now + secs(soonest) + 1, self.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(node: u32, len: u64) -> WebJob {
        WebJob {
            node,
            torrent: TorrentId(0),
            id: WebSeedRequestId {
                seed: 0,
                serial: node,
            },
            head: Vec::new(),
            body: Some(BodyRange { offset: 0, len }),
        }
    }

    #[test]
    fn uplink_shared_and_capped() {
        // 100 B/s shared by two: one capped at 20, the other gets 80.
        let mut w = WebServer::new(100.0, 0);
        w.start(0, job(0, 20), 20.0);
        let (t, v) = w.start(0, job(1, 160), 1000.0).unwrap();
        // Both finish at 1 s and 2 s respectively; the first event is at 1 s.
        assert!((as_secs(t) - 1.0).abs() < 1e-6, "{}", as_secs(t));
        let (done, next) = w.due(t, v);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].node, 0);
        // Alone now: the other runs at 100 B/s; 80 bytes left → 0.8 s more.
        let (t2, v2) = next.unwrap();
        assert!((as_secs(t2) - 1.8).abs() < 1e-6, "{}", as_secs(t2));
        let (done, next) = w.due(t2, v2);
        assert_eq!((done.len(), next), (1, None));
        assert_eq!(w.payload_sent, 180);
        // A stale event does nothing.
        assert!(w.due(t2, v).0.is_empty());
    }

    #[test]
    fn a_receivers_requests_share_its_downlink() {
        // 1000 B/s server; node 0 (cap 20) has two requests: 10 B/s each.
        let mut w = WebServer::new(1000.0, 0);
        w.start(0, job(0, 10), 20.0);
        let mut second = job(0, 10);
        second.id.serial = 99;
        let (t, v) = w.start(0, second, 20.0).unwrap();
        assert!((as_secs(t) - 1.0).abs() < 1e-6, "{}", as_secs(t));
        let (done, next) = w.due(t, v);
        assert_eq!((done.len(), next), (2, None));
    }
}
