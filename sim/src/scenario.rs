//! Scenarios as data: who joins the swarm when, with which links, doing what.
//!
//! A [`Scenario`] is a plain struct that deserializes from TOML (the files in
//! `sim/scenarios/`) and can as well be built in Rust ([`Scenario::flash_crowd`] and the
//! struct's public fields). Sizes and rates are numbers of bytes (per second) or strings
//! with a unit: `"64MiB"`, `"256KiB"`, `"1MiB/s"`, `"8Mbit/s"`, `"unlimited"`.
//!
//! ```toml
//! name = "flash crowd"
//! seed = 1
//!
//! [torrent]
//! size = "64MiB"
//! piece_length = "256KiB"
//!
//! [[groups]]
//! name = "seed"
//! count = 1
//! seed = true
//! upload = "4MiB/s"
//!
//! [[groups]]
//! name = "leechers"
//! count = 1000
//! upload = "1MiB/s"
//! download = "8MiB/s"
//! arrival = { kind = "flash", at_s = 0.0, spread_s = 1.0 }
//! ```

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A whole simulation: the torrent, the network, the tracker, the engines' settings and
/// the groups of nodes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Seed of every random choice: the engines', the network's, the tracker's, arrivals.
    #[serde(default)]
    pub seed: u64,
    pub torrent: TorrentSpec,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub tracker: TrackerSpec,
    #[serde(default)]
    pub engine: EngineSpec,
    #[serde(default)]
    pub run: RunSpec,
    /// A web server that is the torrent's web seed (BEP 19), if any.
    #[serde(default)]
    pub web_server: Option<WebServerSpec>,
    pub groups: Vec<Group>,
}

/// The swarm's web server: an HTTP source named in the torrent's `url-list` (see
/// [`crate::web`]).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebServerSpec {
    /// Its uplink.
    pub upload: Rate,
    /// One-way latency between it and any node.
    #[serde(default = "default_web_latency_ms")]
    pub latency_ms: f64,
}

fn default_web_latency_ms() -> f64 {
    20.0
}

/// The one torrent of the swarm.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TorrentSpec {
    pub size: ByteSize,
    pub piece_length: ByteSize,
    /// Real content and real SHA-1 (a torrent made with core's `TorrentBuilder`, every
    /// node holding a copy of what it downloaded). For small swarms: it costs the file size
    /// in memory per leecher and a hash per piece. Off, blocks are a shared zero-filled
    /// buffer and the simulator answers hash checks itself.
    #[serde(default)]
    pub real_data: bool,
}

/// What the network adds to the nodes' own links.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// Up to this much is added to a link's one-way latency, fixed per pair of nodes
    /// (a hash of the pair), so links differ but each stays in order.
    pub jitter_ms: f64,
    /// Probability that a connection attempt to a reachable node fails (reset).
    pub connect_failure: f64,
    /// Mean lifetime of an established connection before the network resets it
    /// (exponentially distributed); none: connections live until a side closes them.
    pub mean_connection_lifetime_s: Option<f64>,
    /// Round trip of an announce to the tracker.
    pub tracker_rtt_ms: f64,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            jitter_ms: 0.0,
            connect_failure: 0.0,
            mean_connection_lifetime_s: None,
            tracker_rtt_ms: 100.0,
        }
    }
}

/// The swarm's tracker.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerSpec {
    /// `core`: core's tracker server; `simple`: the simulator's minimal random tracker.
    pub kind: TrackerKind,
    /// The announce interval the tracker asks for.
    pub interval_s: u64,
    /// Peers a node asks for in each announce (the engine's `numwant`).
    pub numwant: u32,
}

impl Default for TrackerSpec {
    fn default() -> Self {
        TrackerSpec {
            kind: TrackerKind::Core,
            interval_s: 1800,
            numwant: 50,
        }
    }
}

/// Which tracker answers the announces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackerKind {
    #[default]
    Core,
    Simple,
    /// No tracker: the torrent names none, and the nodes find each other through the DHT
    /// (`engine.dht = true`) and PEX alone.
    None,
}

/// Overrides of the engines' defaults (`EngineConfig::default()`); absent fields keep them.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSpec {
    pub max_peers_per_torrent: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_pipeline: Option<u32>,
    pub unchoke_slots: Option<usize>,
    pub rechoke_interval_s: Option<f64>,
    pub optimistic_interval_s: Option<f64>,
    pub request_timeout_s: Option<f64>,
    pub send_buffer: Option<ByteSize>,
    pub max_reads_per_peer: Option<usize>,
    /// Peer exchange (BEP 11); on unless `false`.
    pub pex: Option<bool>,
    /// Every node runs the engine's DHT node (BEP 5), bootstrapping from the first node;
    /// their datagrams travel the simulated network. Off unless `true`.
    pub dht: Option<bool>,
}

/// How long to run and what to record.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// Virtual time after which the run stops whatever the state.
    pub max_time_s: f64,
    /// Stop as soon as every leecher that will ever arrive has arrived and finished or
    /// left (otherwise run to `max_time_s`).
    pub stop_when_done: bool,
    /// Period of the swarm samples (availability, entropy, progress).
    pub sample_interval_s: f64,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            max_time_s: 3600.0,
            stop_when_done: true,
            sample_interval_s: 1.0,
        }
    }
}

/// A group of alike nodes: a bandwidth class and a behaviour.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub count: u32,
    /// Starts with every piece.
    #[serde(default)]
    pub seed: bool,
    /// Uplink capacity.
    pub upload: Rate,
    /// Downlink capacity (default unlimited).
    #[serde(default = "Rate::unlimited")]
    pub download: Rate,
    /// One-way latency of the node's access link; a link's latency is the sum of both
    /// ends' plus the network's jitter.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: f64,
    #[serde(default)]
    pub arrival: Arrival,
    /// Leaves this long after arriving, done or not (a seed that leaves after a while).
    #[serde(default)]
    pub leave_after_s: Option<f64>,
    /// Leaves this long after completing (0: at once); none: stays.
    #[serde(default)]
    pub seed_time_s: Option<f64>,
    /// Fraction of the group behind a NAT: connections to them are never answered.
    #[serde(default)]
    pub nat: f64,
    /// Never delivers a block: speaks the protocol, even unchokes, but the block data it
    /// is asked for never leaves (see the crate docs for why this model).
    #[serde(default)]
    pub free_rider: bool,
    /// Serves corrupt data: every piece its blocks go into fails its hash check.
    #[serde(default)]
    pub corrupt: bool,
    /// Floods its peers with requests: once a second, on every connection it has,
    /// [`FLOOD_REQUESTS`](crate::hostile::FLOOD_REQUESTS) requests for random blocks on
    /// top of what its engine asks for.
    #[serde(default)]
    pub flood: bool,
    /// The whole group is one host: every node has the same address, each listening on
    /// its own port (a Sybil attack from one machine).
    #[serde(default)]
    pub sybil: bool,
    /// The engine's own upload limit (`EngineConfig::rate_limits`), below the link's
    /// capacity: what a user's setting does to the swarm.
    #[serde(default)]
    pub upload_limit: Option<Rate>,
    /// The engine's own download limit.
    #[serde(default)]
    pub download_limit: Option<Rate>,
    /// Starts from the torrent's magnet link (its trackers, no metadata): the metadata
    /// comes from peers (BEP 9) before the download starts. Not for seeds.
    #[serde(default)]
    pub magnet: bool,
}

fn default_latency_ms() -> f64 {
    25.0
}

impl Group {
    /// `count` leechers with the given upload and download capacity (bytes per second),
    /// arriving as a flash crowd over the first second, with the defaults for the rest.
    pub fn leechers(name: &str, count: u32, up: f64, down: f64) -> Group {
        Group {
            name: name.into(),
            count,
            seed: false,
            upload: Rate(up),
            download: Rate(down),
            latency_ms: default_latency_ms(),
            arrival: Arrival::Flash {
                at_s: 0.0,
                spread_s: 1.0,
            },
            leave_after_s: None,
            seed_time_s: None,
            nat: 0.0,
            free_rider: false,
            corrupt: false,
            flood: false,
            sybil: false,
            upload_limit: None,
            download_limit: None,
            magnet: false,
        }
    }
}

/// When a group's nodes arrive.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrival {
    /// All at one moment.
    At { time_s: f64 },
    /// A flash crowd: uniformly spread over `[at_s, at_s + spread_s)`.
    Flash { at_s: f64, spread_s: f64 },
    /// A Poisson process of `rate_per_s` from `start_s` on (until the group's `count`).
    Poisson { start_s: f64, rate_per_s: f64 },
}

impl Default for Arrival {
    fn default() -> Self {
        Arrival::At { time_s: 0.0 }
    }
}

impl Scenario {
    /// Parses a scenario from TOML text and checks it.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    /// A flash crowd: one seed of upload `seed_up`, `leechers` leechers arriving within
    /// the first second, each with `up`/`down`, staying once done. The shape of the
    /// Kumar–Ross bound.
    pub fn flash_crowd(
        leechers: u32,
        size: u64,
        piece_length: u32,
        seed_up: f64,
        up: f64,
        down: f64,
    ) -> Scenario {
        Scenario {
            name: format!("flash crowd of {leechers}"),
            seed: 1,
            torrent: TorrentSpec {
                size: ByteSize(size),
                piece_length: ByteSize(u64::from(piece_length)),
                real_data: false,
            },
            network: NetworkSpec::default(),
            tracker: TrackerSpec::default(),
            engine: EngineSpec::default(),
            run: RunSpec::default(),
            web_server: None,
            groups: vec![
                Group {
                    name: "seed".into(),
                    count: 1,
                    seed: true,
                    upload: Rate(seed_up),
                    download: Rate::unlimited(),
                    latency_ms: default_latency_ms(),
                    arrival: Arrival::At { time_s: 0.0 },
                    leave_after_s: None,
                    seed_time_s: None,
                    nat: 0.0,
                    free_rider: false,
                    corrupt: false,
                    flood: false,
                    sybil: false,
                    upload_limit: None,
                    download_limit: None,
                    magnet: false,
                },
                Group::leechers("leechers", leechers, up, down),
            ],
        }
    }

    /// Checks what serde cannot: positive sizes and rates, fractions in range.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.torrent;
        if t.size.0 == 0 {
            return Err("torrent.size must be positive".into());
        }
        if t.piece_length.0 < 16384 || t.piece_length.0 > (1 << 26) {
            return Err("torrent.piece_length must be between 16KiB and 64MiB".into());
        }
        if !t.piece_length.0.is_power_of_two() {
            return Err("torrent.piece_length must be a power of two".into());
        }
        if t.real_data && t.size.0 > (1 << 30) {
            return Err("real_data is for small torrents (at most 1 GiB)".into());
        }
        if let Some(w) = &self.web_server {
            if w.upload.0.is_nan() || w.upload.0 <= 0.0 || w.latency_ms < 0.0 {
                return Err("web_server: upload must be positive, latency_ms not negative".into());
            }
        }
        if self.groups.is_empty() {
            return Err("a scenario needs at least one group".into());
        }
        if self.tracker.kind == TrackerKind::None && self.engine.dht != Some(true) {
            return Err(
                "tracker.kind = \"none\" needs engine.dht = true: nodes would find nobody".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.network.connect_failure) {
            return Err("network.connect_failure must be in [0, 1]".into());
        }
        if self.run.sample_interval_s <= 0.0 || self.run.max_time_s <= 0.0 {
            return Err("run.sample_interval_s and run.max_time_s must be positive".into());
        }
        for g in &self.groups {
            let name = &g.name;
            let positive = |x: f64| x > 0.0; // false for NaN too
            if !positive(g.upload.0) || !positive(g.download.0) {
                return Err(format!(
                    "group {name}: upload and download must be positive (a free rider is \
                     `free_rider = true`, not a zero uplink)"
                ));
            }
            if g.sybil && g.count > 10_000 {
                return Err(format!(
                    "group {name}: a Sybil group is one host: at most 10000 nodes (a port each)"
                ));
            }
            if !(0.0..=1.0).contains(&g.nat) {
                return Err(format!("group {name}: nat must be a fraction in [0, 1]"));
            }
            if g.latency_ms < 0.0 {
                return Err(format!("group {name}: latency_ms must not be negative"));
            }
            if let Arrival::Poisson { rate_per_s, .. } = g.arrival {
                if rate_per_s.is_nan() || rate_per_s <= 0.0 {
                    return Err(format!("group {name}: poisson rate_per_s must be positive"));
                }
            }
            if let Arrival::Flash { spread_s, .. } = g.arrival {
                if spread_s < 0.0 {
                    return Err(format!("group {name}: spread_s must not be negative"));
                }
            }
        }
        Ok(())
    }

    /// Number of nodes in all groups.
    pub fn node_count(&self) -> usize {
        self.groups.iter().map(|g| g.count as usize).sum()
    }
}

/// A number of bytes: an integer, or a string such as `"64MiB"`, `"1.5GB"`, `"300"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ByteSize(pub u64);

/// Bytes per second: a number, or a string such as `"1MiB/s"`, `"8Mbit/s"`, `"unlimited"`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rate(pub f64);

impl Rate {
    pub fn unlimited() -> Rate {
        Rate(f64::INFINITY)
    }
}

/// Parses `"<number><unit>"` into bytes. Units: B, KB, MB, GB (powers of 1000), KiB, MiB,
/// GiB (powers of 1024), and bit units kbit, Mbit, Gbit (1000ⁿ/8).
fn parse_size(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("not a size: {s:?}"))?;
    let factor = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kbit" | "Kbit" => 1e3 / 8.0,
        "Mbit" => 1e6 / 8.0,
        "Gbit" => 1e9 / 8.0,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    Ok(num * factor)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count or a size such as \"64MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                let b = parse_size(v).map_err(E::custom)?;
                if b < 0.0 || b.fract() != 0.0 {
                    return Err(E::custom(format!("not a whole number of bytes: {v:?}")));
                }
                Ok(ByteSize(b as u64))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes per second, or a rate such as \"1MiB/s\" or \"unlimited\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Ok(Rate(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                Ok(Rate(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                Ok(Rate(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rate, E> {
                if v.trim() == "unlimited" {
                    return Ok(Rate::unlimited());
                }
                let per_s = v.trim().strip_suffix("/s").unwrap_or(v);
                parse_size(per_s).map(Rate).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64.0 * 1048576.0);
        assert_eq!(parse_size("256KiB").unwrap(), 262144.0);
        assert_eq!(parse_size("8Mbit").unwrap(), 1e6);
        assert_eq!(parse_size("1_000").unwrap(), 1000.0);
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn a_toml_scenario_reads() {
        let s = Scenario::from_toml(
            r#"
            name = "t"
            seed = 3
            [torrent]
            size = "1MiB"
            piece_length = 65536
            [[groups]]
            name = "seed"
            count = 1
            seed = true
            upload = "1MiB/s"
            [[groups]]
            name = "l"
            count = 5
            upload = 100000
            download = "unlimited"
            arrival = { kind = "poisson", start_s = 0.0, rate_per_s = 2.0 }
            seed_time_s = 10.0
            "#,
        )
        .unwrap();
        assert_eq!(s.torrent.size, ByteSize(1 << 20));
        assert_eq!(s.groups[1].download.0, f64::INFINITY);
        assert!(matches!(s.groups[1].arrival, Arrival::Poisson { .. }));
        assert_eq!(s.node_count(), 6);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let base = r#"
            name = "t"
            [torrent]
            size = "1MiB"
            piece_length = 65536
            [[groups]]
            name = "g"
            count = 1
            upload = 0
        "#;
        assert!(Scenario::from_toml(base).unwrap_err().contains("positive"));
        let typo = base.replace("upload = 0", "upload = 1\nuplaod = 2");
        assert!(Scenario::from_toml(&typo).is_err());
    }
}
