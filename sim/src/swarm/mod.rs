//! The simulator proper: nodes running real engines, driven by the event queue over the
//! network model.
//!
//! The simulator is the engines' runtime. It carries out every output of every engine:
//! connections and sends go into the [network model](crate::net); disk reads, writes and
//! piece hashes are answered at once, inside the same drain (there is no disk); tracker
//! announces go to the swarm's [`Tracker`] and are answered a round trip later; events
//! are recorded. Every engine call gets the virtual `now`: a fixed base `Instant` plus the
//! virtual time.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sha1::{Digest, Sha1};

use shoal_core::bitfield::Bitfield;
use shoal_core::create::TorrentBuilder;
use shoal_core::engine::{
    ConnId, Engine, EngineConfig, Event, Input, Output, TorrentId, TorrentOptions,
};
use shoal_core::metainfo::Metainfo;
use shoal_core::rng::Rng;
use shoal_core::{BlockRequest, PeerId, PieceIndex, BLOCK_SIZE};

use crate::hostile::{self, Flood};
use crate::net::{Flow, LinkId, Net, Unit};
use crate::prefetch::prefetch;
use crate::report::{NodeReport, Report, Sample, Totals};
use crate::scenario::{Arrival, Rate, Scenario, TrackerKind};
use crate::sched::{as_secs, secs, EventQueue, Nanos};
use crate::trace::TraceHash;
use crate::tracker::{CoreTracker, SwarmTracker, Tracker};
use crate::web::WebServer;

mod links;
mod node;
mod results;
mod web_node;
mod window;

use window::{Item, Windows};

/// The tracker URL in every simulated torrent (the simulator routes it; nothing resolves).
pub const TRACKER_URL: &str = "http://tracker.sim/announce";

/// The web seed URL of every simulated torrent with a web server (the file's URL is this
/// and the torrent's name, `sim`).
pub const WEB_URL: &str = "http://web.sim/";

/// The port every node listens on.
const LISTEN_PORT: u16 = 6881;

/// Block data for the zero-payload mode: honest nodes serve slices of `ZEROS`, corrupt
/// ones slices of `CORRUPT`; a receiver's written block tells which by its first byte.
/// 128 KiB covers the largest request an engine accepts.
static ZEROS: [u8; 128 * 1024] = [0; 128 * 1024];
static CORRUPT: [u8; 128 * 1024] = [0xA5; 128 * 1024];

/// How close to its `send_buffer` an engine's count of unsent bytes may come before the
/// simulator reports what was sent (two blocks: the engine reads one block at a time).
const ACK_MARGIN: usize = 2 * 16384 + 64;

/// Length of a `piece` message header (length prefix, id, index, begin).
const PIECE_HEADER_LEN: usize = 13;

/// Most block buffers kept for reuse, per fill byte.
const POOL_MAX: usize = 4096;

/// Protocol bytes that travel inside their arrival event, up to [`Small::CAP`]: the
/// `have`s, `request`s and `interested`s that are most of a swarm's deliveries. Kept in
/// the pipe's `in_flight` queue instead, such a unit would cost a cache miss when sent and
/// another when it arrives, thousands of events later; the event queue is read front to
/// back. Left out of the trace hash, as the unit in `in_flight` is: the sender's `Send`
/// output hashed the bytes.
#[derive(Clone, Copy, Debug)]
struct Small {
    len: u8,
    bytes: [u8; Small::CAP],
}

impl Small {
    /// A `have` is 9 bytes, two 18, a `request` 17, `interested` and a request 22; longer
    /// units (a have and a request, 26; two requests, 34) are rarer than a larger event
    /// would cost (every event in the queue has the size of the largest).
    const CAP: usize = 22;
    const NONE: Small = Small {
        len: 0,
        bytes: [0; Small::CAP],
    };

    fn of(unit: &Unit) -> Option<Small> {
        let len = unit.head.len();
        if unit.block.is_some() || len == 0 || len > Small::CAP {
            return None;
        }
        let mut bytes = [0; Small::CAP];
        bytes[..len].copy_from_slice(&unit.head);
        Some(Small {
            len: len as u8,
            bytes,
        })
    }
}

impl std::hash::Hash for Small {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// Everything the simulator schedules.
#[derive(Clone, Copy, Debug, Hash)]
enum Ev {
    Arrive(u32),
    Depart(u32),
    Timer(u32),
    Sample,
    /// The head unit of a flow is through the sender's uplink.
    PipeDone {
        flow: Flow,
        version: u32,
    },
    /// A unit arrives: the one in `small`, or if that is empty the oldest in the pipe's
    /// `in_flight`.
    Deliver(Flow, Small),
    /// A connection attempt reaches its target.
    Syn {
        link: LinkId,
        gen: u32,
    },
    /// The target's accept reaches the dialler.
    Connected {
        link: LinkId,
        gen: u32,
    },
    /// The target refused (reset): the dialler learns it.
    Refused {
        link: LinkId,
        gen: u32,
    },
    /// The other end's close reaches end `to`.
    Fin {
        link: LinkId,
        gen: u32,
        to: u8,
    },
    /// The network resets a connection: end `to` learns it (the dialler first, the other
    /// end a latency later).
    Reset {
        link: LinkId,
        gen: u32,
        to: u8,
    },
    /// A tracker answer reaches its node.
    TrackerAnswer(u32),
    /// A datagram (the DHT's) reaches its node.
    Datagram(u32),
    /// Report a pipe's sent bytes to its engine.
    Ack(Flow),
    /// The web server's next answer is through (if this version is still the latest).
    WebDone(u32),
    /// A web server's answer reaches its node.
    WebAnswer(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Online,
    Gone,
}

/// One connection of a node: its link and which end the node is.
#[derive(Clone, Copy)]
struct ConnEntry {
    conn: ConnId,
    link: LinkId,
    side: u8,
}

struct Node {
    group: u16,
    engine: Option<Box<Engine>>,
    torrent: TorrentId,
    addr: SocketAddr,
    state: State,
    seed: bool,
    nat: bool,
    free_rider: bool,
    corrupt: bool,
    /// A flooder's state (see [`crate::hostile`]); boxed, as few nodes flood.
    flood: Option<Box<Flood>>,
    /// Starts from the magnet link.
    magnet: bool,
    /// By the engine's connection slot.
    conns: Vec<Option<ConnEntry>>,
    /// The time of the timer event that counts (others are stale).
    timer: Option<Nanos>,
    have: Bitfield,
    /// Pieces that received at least one corrupt block (zero-payload mode).
    tainted: Bitfield,
    /// The node's copy of the content (real-data mode, leechers).
    data: Vec<u8>,
    r: NodeReport,
}

/// A tracker answer on its way: to node, torrent, announce, HTTP bytes.
type PendingAnswer = (u32, TorrentId, shoal_core::tracker::AnnounceId, Vec<u8>);

/// A web seed answer on its way: to node, torrent, request, HTTP bytes.
type PendingWebAnswer = (
    u32,
    TorrentId,
    shoal_core::engine::WebSeedRequestId,
    Vec<u8>,
);

/// A running simulation.
pub struct Sim {
    sc: Scenario,
    base: Instant,
    now: Nanos,
    /// The nodes' events.
    queue: EventQueue<Item>,
    /// The swarm's own events (samples, the web server's): they run between windows.
    swarm_queue: EventQueue<Ev>,
    win: Windows,
    net: Net,
    nodes: Vec<Node>,
    tracker: Box<dyn Tracker>,
    meta: Arc<Metainfo>,
    /// The content, in real-data mode.
    content: Option<Bytes>,
    /// The content with every byte flipped, served by corrupt nodes in real-data mode.
    corrupt_content: Option<Bytes>,
    piece_count: u32,
    rng: Rng,
    /// The flooders' requests (a stream of its own: the others draw the same with or
    /// without flooders).
    flood_rng: Rng,
    /// The nodes of Sybil groups, by address (they share one address, a port each).
    sybil_addrs: BTreeMap<SocketAddr, u32>,
    trace: TraceHash,
    /// The engines' `send_buffer`.
    send_buffer: usize,
    /// Counts drains, so sends of one drain can merge.
    batch: u64,
    /// Pipes given bytes in the current drain, each with the unit of small messages it got
    /// while it had nothing queued (see `enqueue`).
    touched: Vec<(Flow, Option<Unit>)>,
    /// A drain's outputs (kept for its allocation).
    outs: Vec<Output>,
    /// While a delivery is handled: the receiving node and its connection's entry, which
    /// most of what the engine sends in reply goes to (saves a miss in the node's table).
    replying: Option<(u32, ConnEntry)>,
    answers: Vec<Option<PendingAnswer>>,
    free_answers: Vec<u32>,
    /// Datagrams on their way: to node, from address, bytes.
    datagrams: Vec<Option<(u32, SocketAddr, Vec<u8>)>>,
    free_datagrams: Vec<u32>,
    /// The web server, if the scenario has one.
    web: Option<WebServer>,
    /// Web answers on their way: to node, torrent, request, HTTP bytes.
    web_answers: Vec<Option<PendingWebAnswer>>,
    free_web_answers: Vec<u32>,
    /// Copies of each piece among online nodes.
    avail: Vec<u32>,
    /// Zero-payload mode: block-sized buffers of zeros (0) and of the corrupt byte (1),
    /// handed to receivers as the data of a block and taken back from their writes.
    pools: [Vec<BytesMut>; 2],
    samples: Vec<Sample>,
    /// Leechers not yet done: still to arrive, or online and incomplete.
    pending_leechers: usize,
    leechers: usize,
    completed: usize,
    online: usize,
    in_flight_bytes: u64,
    in_flight_payload: u64,
    /// Block data through all uplinks so far, and as of the last sample.
    payload_sent: u64,
    payload_sent_sampled: u64,
    last_sample: Nanos,
    t: Totals,
    done: bool,
}

fn node_ip(i: u32) -> Ipv4Addr {
    let n = i + 1;
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

fn node_of_ip(ip: IpAddr) -> Option<u32> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if o[0] != 10 {
                return None;
            }
            let n = (u32::from(o[1]) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]);
            n.checked_sub(1)
        }
        IpAddr::V6(_) => None,
    }
}

/// SplitMix64 of a value: derives independent seeds and per-pair constants.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1).
fn unit_f64(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The torrent of the zero-payload mode: bencoded by hand, with made-up piece hashes (the
/// simulator answers hash checks itself).
fn fake_metainfo(size: u64, piece_length: u32, web_seed: Option<&str>, tracker: bool) -> Metainfo {
    let pieces = size.div_ceil(u64::from(piece_length));
    let mut hashes = Vec::with_capacity(pieces as usize * 20);
    for p in 0..pieces {
        for k in 0..3 {
            hashes.extend_from_slice(&mix(p * 3 + k).to_le_bytes()[..if k == 2 { 4 } else { 8 }]);
        }
    }
    let mut info = Vec::new();
    info.extend_from_slice(
        format!(
            "d6:lengthi{size}e4:name3:sim12:piece lengthi{piece_length}e6:pieces{}:",
            hashes.len()
        )
        .as_bytes(),
    );
    info.extend_from_slice(&hashes);
    info.push(b'e');
    let mut t = if tracker {
        format!("d8:announce{}:{}4:info", TRACKER_URL.len(), TRACKER_URL).into_bytes()
    } else {
        b"d4:info".to_vec()
    };
    t.extend_from_slice(&info);
    if let Some(url) = web_seed {
        t.extend_from_slice(format!("8:url-list{}:{url}", url.len()).as_bytes());
    }
    t.push(b'e');
    Metainfo::parse(&t).expect("the simulator's torrent parses")
}

/// Content of the real-data mode: deterministic bytes that vary along the file.
fn real_content(size: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size as usize);
    let mut z = seed;
    while (out.len() as u64) < size {
        z = mix(z);
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(size as usize);
    out
}

impl Sim {
    /// Prepares a run of `sc` with the tracker it names (core's tracker server by
    /// default).
    pub fn new(sc: Scenario) -> Result<Sim, String> {
        let seed = mix(sc.seed ^ 0x0074_7261_636b_6572);
        let interval = Duration::from_secs(sc.tracker.interval_s);
        let kind = sc.tracker.kind;
        Sim::with_tracker(sc, move |base| -> Box<dyn Tracker> {
            match kind {
                // With no tracker in the torrent this one is never asked.
                TrackerKind::Core | TrackerKind::None => {
                    Box::new(CoreTracker::new(seed, interval, base))
                }
                TrackerKind::Simple => Box::new(SwarmTracker::new(seed, interval)),
            }
        })
    }

    /// Prepares a run of `sc` whose announces go to the tracker `make` builds (given the
    /// `Instant` of virtual time 0).
    pub fn with_tracker(
        sc: Scenario,
        make: impl FnOnce(Instant) -> Box<dyn Tracker>,
    ) -> Result<Sim, String> {
        sc.validate()?;
        let base = Instant::now();
        let tracker = make(base);
        let size = sc.torrent.size.0;
        let piece_length = u32::try_from(sc.torrent.piece_length.0).map_err(|e| e.to_string())?;
        let (meta, content) = if sc.torrent.real_data {
            let data = real_content(size, mix(sc.seed ^ 0xc0_4e_7e_47));
            let mut b = TorrentBuilder::single_file("sim", size);
            b.piece_length(piece_length);
            if sc.tracker.kind != TrackerKind::None {
                b.tracker(TRACKER_URL);
            }
            if sc.web_server.is_some() {
                b.web_seed(WEB_URL);
            }
            let mut h = b.start().map_err(|e| e.to_string())?;
            h.update(&data);
            let bytes = h.finish().map_err(|e| e.to_string())?;
            let meta = Metainfo::parse(&bytes).map_err(|e| e.to_string())?;
            (meta, Some(Bytes::from(data)))
        } else {
            let web = sc.web_server.as_ref().map(|_| WEB_URL);
            let tracker = sc.tracker.kind != TrackerKind::None;
            (fake_metainfo(size, piece_length, web, tracker), None)
        };
        let piece_count = meta.info.piece_count();
        let corrupt_content = content
            .as_ref()
            .filter(|_| sc.groups.iter().any(|g| g.corrupt))
            .map(|c| Bytes::from(c.iter().map(|b| !b).collect::<Vec<u8>>()));
        let mut sim = Sim {
            base,
            now: 0,
            queue: EventQueue::new(),
            swarm_queue: EventQueue::new(),
            win: Windows {
                span: Sim::window_span(&sc),
                node: window::SWARM,
                ..Windows::default()
            },
            net: Net::default(),
            nodes: Vec::with_capacity(sc.node_count()),
            tracker,
            meta: Arc::new(meta),
            content,
            corrupt_content,
            piece_count,
            rng: Rng::new(mix(sc.seed ^ 0x6e_65_74)),
            flood_rng: Rng::new(mix(sc.seed ^ 0x66_6c_6f)),
            sybil_addrs: BTreeMap::new(),
            trace: TraceHash::default(),
            send_buffer: sc
                .engine
                .send_buffer
                .map_or(EngineConfig::default().send_buffer, |b| b.0 as usize),
            batch: 0,
            touched: Vec::new(),
            outs: Vec::new(),
            replying: None,
            answers: Vec::new(),
            free_answers: Vec::new(),
            datagrams: Vec::new(),
            free_datagrams: Vec::new(),
            web: sc
                .web_server
                .as_ref()
                .map(|w| WebServer::new(w.upload.0, secs(w.latency_ms / 1000.0))),
            web_answers: Vec::new(),
            free_web_answers: Vec::new(),
            avail: vec![0; piece_count as usize],
            pools: [Vec::new(), Vec::new()],
            samples: Vec::new(),
            pending_leechers: 0,
            leechers: 0,
            completed: 0,
            online: 0,
            in_flight_bytes: 0,
            in_flight_payload: 0,
            payload_sent: 0,
            payload_sent_sampled: 0,
            last_sample: 0,
            t: Totals::default(),
            done: false,
            sc,
        };
        sim.populate();
        Ok(sim)
    }

    /// Creates every node and schedules its arrival (and timed departure).
    fn populate(&mut self) {
        let mut arrivals = Rng::new(mix(self.sc.seed ^ 0x61_72_72));
        let groups = self.sc.groups.clone();
        for (gi, g) in groups.iter().enumerate() {
            let mut t_poisson = 0.0;
            let first = self.nodes.len() as u32;
            for k in 0..g.count {
                let i = self.nodes.len() as u32;
                let addr = if g.sybil {
                    // One host: the group's first address, a port each.
                    let addr = SocketAddr::new(IpAddr::V4(node_ip(first)), LISTEN_PORT + k as u16);
                    self.sybil_addrs.insert(addr, i);
                    addr
                } else {
                    SocketAddr::new(IpAddr::V4(node_ip(i)), LISTEN_PORT)
                };
                let at = match g.arrival {
                    Arrival::At { time_s } => time_s,
                    Arrival::Flash { at_s, spread_s } => at_s + spread_s * unit_f64(&mut arrivals),
                    Arrival::Poisson {
                        start_s,
                        rate_per_s,
                    } => {
                        if k == 0 {
                            t_poisson = start_s;
                        }
                        t_poisson += -(1.0 - unit_f64(&mut arrivals)).ln() / rate_per_s;
                        t_poisson
                    }
                };
                let nat = g.nat > 0.0 && unit_f64(&mut arrivals) < g.nat;
                self.net.add_node(g.upload.0, g.download.0);
                let pieces = self.piece_count;
                self.nodes.push(Node {
                    group: gi as u16,
                    engine: None,
                    torrent: TorrentId(0),
                    addr,
                    state: State::Waiting,
                    seed: g.seed,
                    nat,
                    free_rider: g.free_rider,
                    corrupt: g.corrupt,
                    flood: g.flood.then(Box::default),
                    magnet: g.magnet && !g.seed,
                    conns: Vec::new(),
                    timer: None,
                    have: Bitfield::new(pieces),
                    tainted: Bitfield::new(if self.content.is_none() { pieces } else { 0 }),
                    data: Vec::new(),
                    r: NodeReport {
                        id: i,
                        group: g.name.clone(),
                        seed: g.seed,
                        nat,
                        free_rider: g.free_rider,
                        corrupt: g.corrupt,
                        upload_capacity: g.upload.0,
                        download_capacity: g.download.0,
                        ..NodeReport::default()
                    },
                });
                if !g.seed {
                    self.leechers += 1;
                    self.pending_leechers += 1;
                }
                let at = secs(at);
                self.schedule(at, Ev::Arrive(i));
                if let Some(after) = g.leave_after_s {
                    self.schedule(at + secs(after), Ev::Depart(i));
                }
            }
        }
        self.win.buckets = (0..self.nodes.len()).map(|_| Vec::new()).collect();
        self.schedule(0, Ev::Sample);
    }

    fn instant(&self, t: Nanos) -> Instant {
        self.base + Duration::from_nanos(t)
    }

    fn nanos(&self, t: Instant) -> Nanos {
        t.saturating_duration_since(self.base).as_nanos() as Nanos
    }

    fn engine_config(&self, i: u32) -> EngineConfig {
        let mut peer_id = *b"-SH0010-000000000000";
        peer_id[8..].copy_from_slice(format!("{i:012}").as_bytes());
        let mut cfg = EngineConfig {
            peer_id: PeerId(peer_id),
            listen_port: self.nodes[i as usize].addr.port(),
            rng_seed: mix(self.sc.seed.wrapping_mul(0x1000_0000_01b3) ^ u64::from(i)),
            ..EngineConfig::default()
        };
        cfg.announcer.numwant = self.sc.tracker.numwant;
        let e = &self.sc.engine;
        let d = |s: f64| Duration::from_secs_f64(s);
        if let Some(v) = e.max_peers_per_torrent {
            cfg.max_peers_per_torrent = v;
        }
        if let Some(v) = e.max_connections {
            cfg.max_connections = v;
        }
        if let Some(v) = e.max_pipeline {
            cfg.max_pipeline = v;
        }
        if let Some(v) = e.unchoke_slots {
            cfg.choker.unchoke_slots = v;
        }
        if let Some(v) = e.rechoke_interval_s {
            cfg.choker.rechoke_interval = d(v);
        }
        if let Some(v) = e.optimistic_interval_s {
            cfg.choker.optimistic_interval = d(v);
        }
        if let Some(v) = e.request_timeout_s {
            cfg.request_timeout = d(v);
        }
        if let Some(v) = e.send_buffer {
            cfg.send_buffer = v.0 as usize;
        }
        if let Some(v) = e.max_reads_per_peer {
            cfg.max_reads_per_peer = v;
        }
        let g = &self.sc.groups[self.nodes[i as usize].group as usize];
        let limit = |r: Option<Rate>| r.filter(|r| r.0.is_finite()).map(|r| r.0 as u64);
        cfg.rate_limits.upload = limit(g.upload_limit);
        cfg.rate_limits.download = limit(g.download_limit);
        if let Some(v) = e.pex {
            cfg.pex = v;
        }
        cfg
    }

    // ---- the run ----

    /// Runs to the end (every leecher done, or the scenario's time limit) and reports.
    pub fn run(mut self) -> Report {
        let wall = Instant::now();
        let limit = secs(self.sc.run.max_time_s);
        self.run_windows(limit);
        self.take_sample();
        let wall = wall.elapsed();
        self.finish(wall)
    }

    /// Starts loading the link an event will read first (see [`prefetch`]); for a timer,
    /// the node.
    fn read_ahead(&self, ev: &Ev) {
        match ev {
            Ev::Deliver(flow, _) | Ev::PipeDone { flow, .. } => {
                let link = self.net.link(flow.link);
                prefetch(&link.pipes[flow.dir as usize]);
                prefetch(&link.ends);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Arrive(i) => self.arrive(i),
            Ev::Depart(i) => self.depart(i),
            Ev::Timer(i) => {
                let n = &mut self.nodes[i as usize];
                if n.state == State::Online && n.timer == Some(self.now) {
                    n.timer = None;
                    self.call(i, Input::Timer);
                }
            }
            Ev::Sample => {
                self.take_sample();
                if !self.done {
                    let next = self.now + secs(self.sc.run.sample_interval_s);
                    self.schedule(next, Ev::Sample);
                }
            }
            Ev::PipeDone { flow, version } => self.pipe_done(flow, version),
            Ev::Deliver(flow, small) => self.deliver(flow, small),
            Ev::Ack(flow) => self.ack(flow, true),
            Ev::Syn { link, gen } => self.syn(link, gen),
            Ev::Connected { link, gen } => {
                let l = self.net.link(link);
                if !l.live || l.gen != gen || !l.ends[0].open {
                    return;
                }
                let (i, conn) = (l.ends[0].node, l.ends[0].conn.unwrap());
                if let Some(mean) = self.sc.network.mean_connection_lifetime_s {
                    let life = -(1.0 - unit_f64(&mut self.rng)).ln() * mean;
                    self.schedule(self.now + secs(life), Ev::Reset { link, gen, to: 0 });
                }
                self.call(i, Input::Connected { conn });
            }
            Ev::Refused { link, gen } => {
                let l = self.net.link(link);
                if !l.live || l.gen != gen || !l.ends[0].open {
                    return;
                }
                let (i, conn) = (l.ends[0].node, l.ends[0].conn.unwrap());
                self.detach(link, 0);
                self.call(i, Input::ConnectFailed { conn });
                self.net.maybe_free(link);
            }
            Ev::Fin { link, gen, to } => {
                let l = self.net.link(link);
                if !l.live || l.gen != gen || !l.ends[to as usize].open {
                    return;
                }
                let end = l.ends[to as usize];
                self.detach(link, to);
                self.call(
                    end.node,
                    Input::Closed {
                        conn: end.conn.unwrap(),
                    },
                );
                self.net.maybe_free(link);
            }
            Ev::Reset { link, gen, to } => {
                let l = self.net.link(link);
                if !l.live || l.gen != gen {
                    return;
                }
                let (lat, end) = (l.latency, l.ends[to as usize]);
                if to == 0 && l.ends[1].open {
                    self.schedule(self.now + lat, Ev::Reset { link, gen, to: 1 });
                }
                if end.open {
                    self.t.resets += 1;
                    self.detach(link, to);
                    self.call(
                        end.node,
                        Input::Closed {
                            conn: end.conn.unwrap(),
                        },
                    );
                }
                self.net.maybe_free(link);
            }
            Ev::WebDone(version) => self.web_done(version),
            Ev::WebAnswer(slot) => self.web_answer(slot),
            Ev::Datagram(slot) => {
                let (j, from, data) = self.datagrams[slot as usize].take().unwrap();
                self.free_datagrams.push(slot);
                if self.nodes[j as usize].state == State::Online {
                    self.call(j, Input::UdpReceived { from, data });
                }
            }
            Ev::TrackerAnswer(slot) => {
                let (i, torrent, id, bytes) = self.answers[slot as usize].take().unwrap();
                self.free_answers.push(slot);
                if self.nodes[i as usize].state == State::Online {
                    self.call(
                        i,
                        Input::TrackerHttp {
                            torrent,
                            id,
                            result: Ok(bytes),
                        },
                    );
                }
            }
        }
    }

    /// Gives node `i`'s engine one input and carries out what follows.
    fn call(&mut self, i: u32, input: Input) {
        let now = self.instant(self.now);
        let Some(e) = self.nodes[i as usize].engine.as_mut() else {
            return;
        };
        self.t.calls.count(&input);
        e.handle(input, now);
        self.drain(i);
    }

    fn arrive(&mut self, i: u32) {
        let now = self.instant(self.now);
        let cfg = self.engine_config(i);
        let mut engine = Box::new(Engine::new(cfg));
        let node = &mut self.nodes[i as usize];
        let verified = node.seed.then(|| Bitfield::full(self.piece_count));
        node.torrent = if node.magnet {
            engine.add_magnet(&self.meta.magnet(), now)
        } else {
            engine
                .add_torrent(
                    self.meta.clone(),
                    TorrentOptions {
                        verified,
                        ..TorrentOptions::default()
                    },
                    now,
                )
                .expect("the simulator's torrent is valid")
        };
        if self.sc.engine.dht == Some(true) {
            // Every node bootstraps from the first: its address is known to all, as a
            // router's is.
            let first = match self.nodes[0].addr {
                SocketAddr::V4(a) => a,
                SocketAddr::V6(_) => unreachable!("nodes have IPv4 addresses"),
            };
            let config = shoal_core::dht::Config {
                seed: mix(self.sc.seed ^ 0x0d47 ^ (u64::from(i) << 20)),
                token_key: {
                    let mut k = [0u8; 20];
                    k[..8].copy_from_slice(&mix(u64::from(i) ^ 0x70_6b).to_le_bytes());
                    k
                },
                bootstrap: if i == 0 { Vec::new() } else { vec![first] },
                ..Default::default()
            };
            engine.start_dht(config, now);
        }
        let node = &mut self.nodes[i as usize];
        node.engine = Some(engine);
        node.state = State::Online;
        node.r.arrived_s = Some(as_secs(self.now));
        if node.seed {
            node.have = Bitfield::full(self.piece_count);
            for a in &mut self.avail {
                *a += 1;
            }
        } else if self.content.is_some() {
            node.data = vec![0; self.sc.torrent.size.0 as usize];
        }
        self.online += 1;
        self.drain(i);
    }

    fn depart(&mut self, i: u32) {
        let now = self.instant(self.now);
        let node = &mut self.nodes[i as usize];
        if node.state != State::Online {
            return;
        }
        if let Some(e) = node.engine.as_mut() {
            e.shutdown(now);
        }
        self.drain(i);
        // Whatever the engine did not close (an inbound connection that never said which
        // torrent it wanted) goes with the node.
        let open: Vec<ConnEntry> = self.nodes[i as usize]
            .conns
            .iter()
            .flatten()
            .copied()
            .collect();
        for c in open {
            self.close_end(c.link, c.side);
        }
        let node = &mut self.nodes[i as usize];
        node.engine = None;
        node.state = State::Gone;
        node.timer = None;
        node.data = Vec::new();
        node.r.departed_s = Some(as_secs(self.now));
        for p in node.have.iter_ones() {
            self.avail[p as usize] -= 1;
        }
        self.online -= 1;
        if !node.seed && node.r.completed_s.is_none() {
            self.pending_leechers -= 1;
            self.check_done();
        }
    }

    fn check_done(&mut self) {
        if self.sc.run.stop_when_done && self.pending_leechers == 0 {
            self.done = true;
        }
    }
}
