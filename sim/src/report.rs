//! What a run found: per-node figures, swarm samples over time, totals, and the
//! comparison with the Kumar–Ross bound; written as JSON and CSV, and drawn (see
//! [`crate::plot`]).
//!
//! Byte counts are taken on the wire. A node's `bytes_up` counts what went through its
//! uplink, `bytes_down` what arrived at its downlink (whether or not its engine still
//! wanted it: data that reaches a closed connection is counted, then dropped). So across
//! the swarm `Σ bytes_up = Σ bytes_down + bytes still travelling` holds exactly, and the
//! same for block data (`payload_*`). The engines' own counters (`engine_uploaded`,
//! `engine_downloaded`) are reported beside them: they count blocks read for sending and
//! blocks received that were asked for.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::scenario::Scenario;

/// One node's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeReport {
    pub id: u32,
    pub group: String,
    pub seed: bool,
    pub nat: bool,
    pub free_rider: bool,
    pub corrupt: bool,
    /// Bytes per second.
    pub upload_capacity: f64,
    pub download_capacity: f64,
    pub arrived_s: Option<f64>,
    pub completed_s: Option<f64>,
    pub departed_s: Option<f64>,
    /// Completion minus arrival.
    pub download_time_s: Option<f64>,
    pub first_piece_s: Option<f64>,
    /// When a node that started from a magnet link had the metadata.
    pub metadata_s: Option<f64>,
    /// When the node had all pieces but one.
    pub second_to_last_piece_s: Option<f64>,
    /// When the node had 95 % of the pieces.
    pub p95_s: Option<f64>,
    /// Completion minus `second_to_last_piece_s`: how long the last piece took.
    pub last_piece_s: Option<f64>,
    /// Completion minus `p95_s`: how long the last 5 % took.
    pub last_5pct_s: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub payload_up: u64,
    pub payload_down: u64,
    /// `payload_up` when the node completed: what it gave while it was a leecher.
    pub payload_up_leeching: Option<u64>,
    /// `payload_up / payload_down`.
    pub share_ratio: f64,
    pub engine_uploaded: u64,
    pub engine_downloaded: u64,
    pub hash_failures: u32,
    pub bans: u32,
    /// The hosts it banned, in order.
    pub banned_hosts: Vec<std::net::IpAddr>,
    pub pieces: u32,
    /// Connections the node's engine had when the run ended (if still online).
    pub final_peers: Option<u32>,
}

/// The swarm at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub t_s: f64,
    /// Block data through all uplinks since the previous sample, bytes per second.
    pub upload_rate: f64,
    /// `upload_rate` over the upload capacity of the online nodes that have something to
    /// give (at least one piece; free riders not counted): how well the swarm uses what
    /// it has.
    pub upload_utilisation: f64,
    pub online: u32,
    /// Online nodes with every piece.
    pub seeds: u32,
    /// Leechers done so far.
    pub completed: u32,
    /// Pieces held by the leechers that have arrived, as a fraction of what they need.
    pub progress: f64,
    /// Copies of the rarest, average and most common piece among online nodes.
    pub availability_min: u32,
    pub availability_mean: f64,
    pub availability_max: u32,
    /// Shannon entropy of the piece copies' distribution over pieces, normalised (1: every
    /// piece equally common; lower: some pieces are rarer).
    pub entropy: f64,
}

/// Counts over the whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Events taken from the queue (stale ones included).
    pub events: u64,
    /// Calls into engines (`handle` and `accept`), in all.
    pub engine_calls: u64,
    /// The same by kind of input.
    pub calls: CallCounts,
    /// Outputs the engines produced.
    pub outputs: u64,
    pub announces: u64,
    pub connections: u64,
    /// Connections closed, by the reason the closing engine gave (each connection counts
    /// once per end: the end that closed gives its reason, the other says `Remote` or
    /// the like).
    pub closes: std::collections::BTreeMap<String, u64>,
    pub refused: u64,
    pub nat_drops: u64,
    pub resets: u64,
    pub hash_failures: u64,
    pub bans: u64,
    /// Picker calls the engines refused (`Event::InternalError`): a bug in the engine,
    /// always 0 in a correct run (the simulator builds in release, where the engine
    /// reports these instead of stopping).
    pub internal_errors: u64,
    /// Requests flooders added on top of their engines' (see `hostile`).
    pub flood_requests: u64,
    /// Datagrams sent (the DHT's).
    pub datagrams: u64,
    /// Block data free riders were asked for and never sent.
    pub withheld_payload: u64,
    /// Block data that arrived at a connection its receiver had already closed.
    pub payload_to_closed: u64,
    pub rate_updates: u64,
    /// Windows of virtual time the run went through (see the simulator's `window`
    /// module).
    pub windows: u64,
    /// Events scheduled for another node within the running window, put off to its end:
    /// 0 in a correct run (every path between nodes takes at least a window's span).
    pub late_events: u64,
    /// Body bytes the web server sent (its answers whose last byte left), if there is one.
    pub web_payload_sent: u64,
    /// Requests the web server answered.
    pub web_requests: u64,
    pub bytes_in_flight: u64,
    pub payload_in_flight: u64,
    pub sim_time_s: f64,
    pub wall_s: f64,
    pub events_per_s: f64,
    pub trace_hash: String,
    #[serde(skip)]
    pub tracker_announces: u64,
}

/// Engine calls by kind of input.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CallCounts {
    pub received: u64,
    pub sent: u64,
    pub timer: u64,
    pub block_read: u64,
    pub block_written: u64,
    pub piece_hashed: u64,
    pub connection: u64,
    pub tracker: u64,
    pub accept: u64,
}

impl CallCounts {
    pub fn count(&mut self, input: &shoal_core::engine::Input) {
        use shoal_core::engine::Input;
        match input {
            Input::Received { .. } => self.received += 1,
            Input::Sent { .. } => self.sent += 1,
            Input::Timer => self.timer += 1,
            Input::BlockRead { .. } => self.block_read += 1,
            Input::BlockWritten { .. } => self.block_written += 1,
            Input::PieceHashed { .. } => self.piece_hashed += 1,
            Input::Connected { .. } | Input::ConnectFailed { .. } | Input::Closed { .. } => {
                self.connection += 1
            }
            Input::TrackerHttp { .. } | Input::UdpReceived { .. } => self.tracker += 1,
            // The simulator gives no other input; one it starts giving gets a counter here.
            _ => {}
        }
    }

    pub fn total(&self) -> u64 {
        self.received
            + self.sent
            + self.timer
            + self.block_read
            + self.block_written
            + self.piece_hashed
            + self.connection
            + self.tracker
            + self.accept
    }
}

/// The Kumar–Ross minimum distribution time of a file of `F` bytes from seeds of total
/// upload `u_s` to `N` leechers of total upload `Σu_i` and slowest download `d_min`:
/// `max(F/u_s, N·F/(u_s + Σu_i), F/d_min)` (fluid model, everyone present from the start).
#[derive(Clone, Debug, Serialize)]
pub struct KumarRoss {
    pub file_bytes: u64,
    pub leechers: u32,
    pub seed_upload: f64,
    pub leecher_upload_sum: f64,
    pub min_download: f64,
    /// `F / u_s`: the seed must send every byte once.
    pub seed_term_s: f64,
    /// `N·F / (u_s + Σu_i)`: all `N·F` bytes through everyone's uplinks.
    pub swarm_term_s: f64,
    /// `F / d_min`: the slowest downlink.
    pub download_term_s: f64,
    pub bound_s: f64,
}

impl KumarRoss {
    /// The bound for a scenario's initial seeds and its leechers (free riders upload
    /// nothing).
    pub fn of(sc: &Scenario) -> KumarRoss {
        let f = sc.torrent.size.0;
        let (mut n, mut us, mut sum, mut dmin) = (0u32, 0.0, 0.0, f64::INFINITY);
        for g in &sc.groups {
            if g.seed {
                us += g.upload.0 * f64::from(g.count);
            } else {
                n += g.count;
                if !g.free_rider {
                    sum += g.upload.0 * f64::from(g.count);
                }
                dmin = dmin.min(g.download.0);
            }
        }
        // The web server is a seed that never leaves.
        if let Some(w) = &sc.web_server {
            us += w.upload.0;
        }
        let ff = f as f64;
        let seed_term = ff / us;
        let swarm_term = f64::from(n) * ff / (us + sum);
        let down_term = ff / dmin;
        KumarRoss {
            file_bytes: f,
            leechers: n,
            seed_upload: us,
            leecher_upload_sum: sum,
            min_download: dmin,
            seed_term_s: seed_term,
            swarm_term_s: swarm_term,
            download_term_s: down_term,
            bound_s: seed_term.max(swarm_term).max(down_term),
        }
    }
}

/// The headline figures.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub leechers: u32,
    pub completed: u32,
    pub mean_download_s: Option<f64>,
    pub median_download_s: Option<f64>,
    pub p90_download_s: Option<f64>,
    /// The last leecher's download time.
    pub last_download_s: Option<f64>,
    pub kumar_ross: KumarRoss,
    /// `mean_download_s / bound` and `last_download_s / bound` (meaningful for a flash
    /// crowd: every leecher present from the start, no churn).
    pub mean_over_bound: Option<f64>,
    pub last_over_bound: Option<f64>,
    pub mean_last_piece_s: Option<f64>,
    pub max_last_piece_s: Option<f64>,
    pub mean_last_5pct_s: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub payload_up: u64,
    pub payload_down: u64,
    /// Block data received beyond what the leechers needed (endgame duplicates, pieces
    /// refetched after a hash failure, blocks arriving after a close), over the file size
    /// times the leechers that completed.
    pub payload_overhead: Option<f64>,
    /// Block data the leechers' engines did not count as downloaded (not, or no longer,
    /// asked for: endgame duplicates whose cancel came too late, blocks after a timeout
    /// or a close), over the file size times the leechers.
    pub payload_unwanted: Option<f64>,
    /// Share of the seeds' upload capacity used while leechers were downloading.
    pub seed_utilisation: Option<f64>,
    /// Share of the leechers' upload capacity used while they were downloading.
    pub leecher_utilisation: Option<f64>,
}

/// A run's whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub file_bytes: u64,
    pub piece_count: u32,
    pub summary: Summary,
    pub totals: Totals,
    pub timeline: Vec<Sample>,
    pub nodes: Vec<NodeReport>,
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The `q` quantile of sorted `xs` (nearest rank).
fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    Some(xs[rank - 1])
}

impl Report {
    pub fn new(
        sc: &Scenario,
        piece_count: u32,
        mut nodes: Vec<NodeReport>,
        timeline: Vec<Sample>,
        totals: Totals,
    ) -> Report {
        for n in &mut nodes {
            if let (Some(a), Some(c)) = (n.arrived_s, n.completed_s) {
                n.download_time_s = Some(c - a);
            }
            if let Some(c) = n.completed_s {
                n.last_piece_s = n.second_to_last_piece_s.map(|t| c - t);
                n.last_5pct_s = n.p95_s.map(|t| c - t);
            }
        }
        let leechers: Vec<&NodeReport> = nodes.iter().filter(|n| !n.seed).collect();
        let mut times: Vec<f64> = leechers.iter().filter_map(|n| n.download_time_s).collect();
        times.sort_by(f64::total_cmp);
        let last_pieces: Vec<f64> = leechers.iter().filter_map(|n| n.last_piece_s).collect();
        let last_5: Vec<f64> = leechers.iter().filter_map(|n| n.last_5pct_s).collect();
        let kr = KumarRoss::of(sc);
        let mean_t = mean(&times);
        let last_t = times.last().copied();
        let f = sc.torrent.size.0;
        let sum = |g: fn(&NodeReport) -> u64| nodes.iter().map(g).sum::<u64>();
        let payload_down_leechers: u64 = leechers
            .iter()
            .filter(|n| n.completed_s.is_some())
            .map(|n| n.payload_down)
            .sum();
        let completed = times.len() as u32;
        // Utilisation: bytes sent while the download phase lasted, over capacity × time.
        let end = leechers
            .iter()
            .filter_map(|n| n.completed_s)
            .fold(0.0f64, f64::max);
        let util = |seeds: bool| {
            let (mut sent, mut cap) = (0.0, 0.0);
            for n in nodes.iter().filter(|n| n.seed == seeds && !n.free_rider) {
                let start = n.arrived_s.unwrap_or(0.0);
                let stop = if seeds {
                    n.departed_s.unwrap_or(end).min(end)
                } else {
                    n.completed_s.or(n.departed_s).unwrap_or(end)
                };
                if stop > start && n.upload_capacity.is_finite() {
                    cap += n.upload_capacity * (stop - start);
                    sent += if seeds {
                        n.payload_up as f64
                    } else {
                        n.payload_up_leeching.unwrap_or(n.payload_up) as f64
                    };
                }
            }
            (cap > 0.0 && end > 0.0).then(|| sent / cap)
        };
        let summary = Summary {
            leechers: leechers.len() as u32,
            completed,
            mean_download_s: mean_t,
            median_download_s: quantile(&times, 0.5),
            p90_download_s: quantile(&times, 0.9),
            last_download_s: last_t,
            mean_over_bound: mean_t.map(|m| m / kr.bound_s),
            last_over_bound: last_t.map(|m| m / kr.bound_s),
            kumar_ross: kr,
            mean_last_piece_s: mean(&last_pieces),
            max_last_piece_s: last_pieces.iter().copied().reduce(f64::max),
            mean_last_5pct_s: mean(&last_5),
            bytes_up: sum(|n| n.bytes_up),
            bytes_down: sum(|n| n.bytes_down),
            payload_up: sum(|n| n.payload_up),
            payload_down: sum(|n| n.payload_down),
            payload_overhead: (completed > 0)
                .then(|| payload_down_leechers as f64 / (f as f64 * f64::from(completed)) - 1.0),
            payload_unwanted: (!leechers.is_empty()).then(|| {
                let unwanted: u64 = leechers
                    .iter()
                    .map(|n| n.payload_down.saturating_sub(n.engine_downloaded))
                    .sum();
                unwanted as f64 / (f as f64 * leechers.len() as f64)
            }),
            seed_utilisation: util(true),
            leecher_utilisation: util(false),
        };
        Report {
            scenario: sc.name.clone(),
            seed: sc.seed,
            file_bytes: f,
            piece_count,
            summary,
            totals,
            timeline,
            nodes,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises")
    }

    /// One line per node.
    pub fn nodes_csv(&self) -> String {
        let mut s = String::from(
            "id,group,seed,nat,free_rider,corrupt,upload_capacity,download_capacity,\
             arrived_s,completed_s,departed_s,download_time_s,last_piece_s,last_5pct_s,\
             bytes_up,bytes_down,payload_up,payload_down,share_ratio,engine_uploaded,\
             engine_downloaded,hash_failures,bans,pieces\n",
        );
        let o = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{},{},{},{}",
                n.id,
                csv_field(&n.group),
                n.seed,
                n.nat,
                n.free_rider,
                n.corrupt,
                n.upload_capacity,
                n.download_capacity,
                o(n.arrived_s),
                o(n.completed_s),
                o(n.departed_s),
                o(n.download_time_s),
                o(n.last_piece_s),
                o(n.last_5pct_s),
                n.bytes_up,
                n.bytes_down,
                n.payload_up,
                n.payload_down,
                n.share_ratio,
                n.engine_uploaded,
                n.engine_downloaded,
                n.hash_failures,
                n.bans,
                n.pieces
            );
        }
        s
    }

    /// One line per sample.
    pub fn timeline_csv(&self) -> String {
        let mut s = String::from(
            "t_s,upload_rate,upload_utilisation,online,seeds,completed,progress,\
             availability_min,availability_mean,availability_max,entropy\n",
        );
        for x in &self.timeline {
            let _ = writeln!(
                s,
                "{:.3},{:.0},{:.4},{},{},{},{:.6},{},{:.3},{},{:.6}",
                x.t_s,
                x.upload_rate,
                x.upload_utilisation,
                x.online,
                x.seeds,
                x.completed,
                x.progress,
                x.availability_min,
                x.availability_mean,
                x.availability_max,
                x.entropy
            );
        }
        s
    }

    /// A few lines for a terminal.
    pub fn text_summary(&self) -> String {
        let s = &self.summary;
        let t = &self.totals;
        let k = &s.kumar_ross;
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or("-".into());
        format!(
            "{name}: {done}/{n} leechers done in {sim:.1} s simulated\n\
             download time: mean {mean} s, median {med} s, p90 {p90} s, last {last} s\n\
             Kumar-Ross bound {kb:.2} s (seed {ks:.2}, swarm {kw:.2}, downlink {kd:.2}): \
             mean/bound {mr}, last/bound {lr}\n\
             last piece: mean {lp} s, max {lpm} s; last 5%: mean {l5} s\n\
             payload up {pu} B, down {pd} B, in flight {pf} B; overhead {ov} (unwanted {uw}); \
             utilisation seeds {us}, leechers {ul}\n\
             wall {wall:.2} s, {ev} events ({eps:.0}/s), {calls} engine calls, trace {hash}{web}",
            name = self.scenario,
            done = s.completed,
            n = s.leechers,
            sim = t.sim_time_s,
            mean = f(s.mean_download_s),
            med = f(s.median_download_s),
            p90 = f(s.p90_download_s),
            last = f(s.last_download_s),
            kb = k.bound_s,
            ks = k.seed_term_s,
            kw = k.swarm_term_s,
            kd = k.download_term_s,
            mr = f(s.mean_over_bound),
            lr = f(s.last_over_bound),
            lp = f(s.mean_last_piece_s),
            lpm = f(s.max_last_piece_s),
            l5 = f(s.mean_last_5pct_s),
            pu = s.payload_up,
            pd = s.payload_down,
            pf = t.payload_in_flight,
            ov = f(s.payload_overhead),
            uw = f(s.payload_unwanted),
            us = f(s.seed_utilisation),
            ul = f(s.leecher_utilisation),
            web = if t.web_requests > 0 {
                format!(
                    "\nweb server: sent {} B in {} answers, {:.2} % of plain HTTP (N x F)",
                    t.web_payload_sent,
                    t.web_requests,
                    100.0 * t.web_payload_sent as f64
                        / (f64::from(s.leechers) * k.file_bytes as f64)
                )
            } else {
                String::new()
            },
            wall = t.wall_s,
            ev = t.events,
            eps = t.events_per_s,
            calls = t.engine_calls,
            hash = t.trace_hash,
        )
    }

    /// Writes `report.json`, `nodes.csv`, `timeline.csv` and the plots into `dir`.
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), self.to_json())?;
        std::fs::write(dir.join("nodes.csv"), self.nodes_csv())?;
        std::fs::write(dir.join("timeline.csv"), self.timeline_csv())?;
        crate::plot::completion_cdf(self, &dir.join("completion_cdf.svg"))
            .map_err(std::io::Error::other)?;
        crate::plot::progress(self, &dir.join("progress.svg")).map_err(std::io::Error::other)?;
        crate::plot::availability(self, &dir.join("availability.svg"))
            .map_err(std::io::Error::other)?;
        Ok(())
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
