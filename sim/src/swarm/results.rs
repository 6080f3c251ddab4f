//! The swarm's samples while it runs and its report at the end.

use super::*;

impl Sim {
    // ---- results ----

    pub(super) fn take_sample(&mut self) {
        let p = self.piece_count as usize;
        let total: u64 = self.avail.iter().map(|&a| u64::from(a)).sum();
        let (min, max) = self
            .avail
            .iter()
            .fold((u32::MAX, 0), |(lo, hi), &a| (lo.min(a), hi.max(a)));
        // Shannon entropy of where the swarm's piece copies are, normalised to 1 for a
        // perfectly even spread: low means some pieces are much rarer than others.
        let entropy = if total == 0 || p < 2 {
            0.0
        } else {
            let t = total as f64;
            let h: f64 = self
                .avail
                .iter()
                .filter(|&&a| a > 0)
                .map(|&a| {
                    let q = f64::from(a) / t;
                    -q * q.ln()
                })
                .sum();
            h / (p as f64).ln()
        };
        let (mut arrived, mut pieces_held) = (0u64, 0u64);
        let mut seeds = 0;
        let mut capacity = 0.0;
        for (k, n) in self.nodes.iter().enumerate() {
            if n.state == State::Online && n.have.is_full() {
                seeds += 1;
            }
            if n.state == State::Online && !n.free_rider && n.have.count_ones() > 0 {
                capacity += self.net.nodes[k].up * 1e9;
            }
            if !n.seed && n.state != State::Waiting {
                arrived += 1;
                pieces_held += u64::from(n.have.count_ones());
            }
        }
        let progress = if arrived == 0 {
            0.0
        } else {
            pieces_held as f64 / (arrived as f64 * p as f64)
        };
        let dt = as_secs(self.now - self.last_sample);
        let upload_rate = if dt > 0.0 {
            (self.payload_sent - self.payload_sent_sampled) as f64 / dt
        } else {
            0.0
        };
        self.last_sample = self.now;
        self.payload_sent_sampled = self.payload_sent;
        self.samples.push(Sample {
            t_s: as_secs(self.now),
            upload_rate,
            upload_utilisation: if capacity > 0.0 {
                upload_rate / capacity
            } else {
                0.0
            },
            online: self.online as u32,
            seeds,
            completed: self.completed as u32,
            progress,
            availability_min: if p == 0 { 0 } else { min },
            availability_mean: total as f64 / p.max(1) as f64,
            availability_max: max,
            entropy,
        });
    }

    pub(super) fn finish(self, wall: Duration) -> Report {
        let mut t = self.t;
        t.sim_time_s = as_secs(self.now);
        t.wall_s = wall.as_secs_f64();
        t.events_per_s = t.events as f64 / t.wall_s.max(1e-9);
        t.trace_hash = format!("{:016x}", self.trace.value());
        t.bytes_in_flight = self.in_flight_bytes;
        t.payload_in_flight = self.in_flight_payload;
        t.rate_updates = self.net.rate_updates;
        if let Some(w) = &self.web {
            t.web_payload_sent = w.payload_sent;
            t.web_requests = w.requests;
        }
        t.engine_calls = t.calls.total();
        t.tracker_announces = t.announces;
        let nodes: Vec<NodeReport> = self
            .nodes
            .into_iter()
            .map(|mut n| {
                n.r.pieces = n.have.count_ones();
                if let Some(stats) = n.engine.as_ref().and_then(|e| e.stats(n.torrent)) {
                    n.r.engine_downloaded = stats.downloaded;
                    n.r.engine_uploaded = stats.uploaded;
                    n.r.final_peers = Some(stats.peers as u32);
                }
                n.r.share_ratio = if n.r.payload_down > 0 {
                    n.r.payload_up as f64 / n.r.payload_down as f64
                } else {
                    0.0
                };
                n.r
            })
            .collect();
        Report::new(&self.sc, self.piece_count, nodes, self.samples, t)
    }
}
