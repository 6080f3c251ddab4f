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

mod web_node;

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
    /// The network resets a connection.
    Reset {
        link: LinkId,
        gen: u32,
    },
    /// A tracker answer reaches its node.
    TrackerAnswer(u32),
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
    queue: EventQueue<Ev>,
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
fn fake_metainfo(size: u64, piece_length: u32, web_seed: Option<&str>) -> Metainfo {
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
    let mut t = format!("d8:announce{}:{}4:info", TRACKER_URL.len(), TRACKER_URL).into_bytes();
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
                TrackerKind::Core => Box::new(CoreTracker::new(seed, interval, base)),
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
            b.piece_length(piece_length).tracker(TRACKER_URL);
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
            (fake_metainfo(size, piece_length, web), None)
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
                self.queue.push(at, Ev::Arrive(i));
                if let Some(after) = g.leave_after_s {
                    self.queue.push(at + secs(after), Ev::Depart(i));
                }
            }
        }
        self.queue.push(0, Ev::Sample);
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
        while let Some((at, ev)) = self.queue.pop() {
            if at > limit {
                break;
            }
            self.now = at;
            self.t.events += 1;
            self.trace.word(at);
            std::hash::Hash::hash(&ev, &mut self.trace);
            // Reading ahead in two stages, one event apart: the link of the event after
            // next, and through the next event's link (loaded as this stage a round ago)
            // the engine state it will read. Each then has an event's time to arrive.
            let (next, after) = self.queue.peek_two_cheap();
            if let Some(after) = after {
                self.read_ahead(after);
            }
            if let Some(next) = next {
                self.read_ahead(next);
                self.warm_next(next);
            }
            self.dispatch(ev);
            if self.done {
                break;
            }
        }
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
            Ev::Timer(i) => prefetch(&self.nodes[*i as usize]),
            _ => {}
        }
    }

    /// Starts loading the state the next event will read beyond its link: the unit it
    /// carries or finishes; for a flow's end the sending node (its report and its
    /// uplink's flows); for a delivery the receiving node.
    fn warm_next(&self, ev: &Ev) {
        match ev {
            Ev::PipeDone { flow, .. } => {
                let l = self.net.link(flow.link);
                if let Some(front) = l.pipes[flow.dir as usize].queue.front() {
                    prefetch(front);
                }
                let from = l.ends[flow.dir as usize].node as usize;
                prefetch(&self.nodes[from]);
                prefetch(&self.net.nodes[from]);
            }
            Ev::Deliver(flow, small) => {
                let l = self.net.link(flow.link);
                let to = &l.ends[1 - flow.dir as usize];
                if small.len == 0 {
                    if let Some(front) = l.pipes[flow.dir as usize].in_flight.front() {
                        prefetch(front);
                    }
                }
                prefetch(&self.nodes[to.node as usize]);
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
                    self.queue.push(next, Ev::Sample);
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
                    self.queue
                        .push(self.now + secs(life), Ev::Reset { link, gen });
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
            Ev::Reset { link, gen } => {
                for side in 0..2u8 {
                    let l = self.net.link(link);
                    if !l.live || l.gen != gen || !l.ends[side as usize].open {
                        continue;
                    }
                    let end = l.ends[side as usize];
                    self.t.resets += 1;
                    self.detach(link, side);
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

    // ---- carrying out outputs ----

    /// Carries out everything node `i` has to say, then starts the flows it fed and
    /// reschedules its timer.
    fn drain(&mut self, i: u32) {
        self.batch += 1;
        if self.nodes[i as usize].flood.is_some() {
            self.flood(i);
        }
        let mut outs = std::mem::take(&mut self.outs);
        while let Some(e) = self.nodes[i as usize].engine.as_mut() {
            outs.extend(std::iter::from_fn(|| e.poll_output()));
            if outs.is_empty() {
                break;
            }
            self.warm_links(i, &outs);
            for out in outs.drain(..) {
                self.t.outputs += 1;
                let payload = matches!(&out, Output::Send { data, .. } if self.is_payload(data));
                self.trace.output(i, &out, payload);
                self.carry_out(i, out, payload);
            }
        }
        self.outs = outs;
        self.flush_touched(i);
        let timeout = self.nodes[i as usize]
            .engine
            .as_ref()
            .and_then(|e| e.poll_timeout());
        if let Some(t) = timeout {
            let t = self.nanos(t).max(self.now);
            let node = &mut self.nodes[i as usize];
            if node.timer != Some(t) {
                node.timer = Some(t);
                self.queue.push(t, Ev::Timer(i));
            }
        }
    }

    /// A flooder's requests, at most once a second, on the connections whose handshakes
    /// are done. Called before the node's engine is drained: its streams are between two
    /// messages.
    fn flood(&mut self, i: u32) {
        let node = &mut self.nodes[i as usize];
        let Some(flood) = node.flood.as_mut() else {
            return;
        };
        if node.state != State::Online || self.now < flood.next {
            return;
        }
        flood.next = self.now + secs(1.0);
        let conns = flood.conns.clone();
        for conn in conns {
            let Some(c) = self.conn_entry(i, conn) else {
                continue;
            };
            let data = hostile::flood_requests(
                &mut self.flood_rng,
                self.piece_count,
                self.sc.torrent.piece_length.0,
            );
            self.t.flood_requests += hostile::FLOOD_REQUESTS as u64;
            self.enqueue(
                Flow {
                    link: c.link,
                    dir: c.side,
                },
                data,
                false,
            );
        }
    }

    /// Reads the pipe of every `Send` in `outs` before any is carried out. Each is
    /// usually a cache miss (a node's connections are scattered over the link table);
    /// loads that do not depend on each other overlap, where carrying the sends out one
    /// by one would wait for each in turn.
    fn warm_links(&self, i: u32, outs: &[Output]) {
        let mut acc = 0usize;
        for out in outs {
            if let Output::Send { conn, .. } = out {
                if let Some(c) = self.conn_entry(i, *conn) {
                    acc ^= self.net.warm(Flow {
                        link: c.link,
                        dir: c.side,
                    });
                }
            }
        }
        std::hint::black_box(acc);
    }

    /// Whether a `Send` carries block data: it is then a slice of one of the simulator's
    /// block sources (the shared zero or corrupt buffer, or the content or its corrupt
    /// copy), which the engine hands on without copying.
    fn is_payload(&self, data: &Bytes) -> bool {
        let p = data.as_ptr() as usize;
        let within = |s: &[u8]| {
            let a = s.as_ptr() as usize;
            p >= a && p < a + s.len()
        };
        within(&ZEROS)
            || within(&CORRUPT)
            || self.content.as_ref().is_some_and(|c| within(c))
            || self.corrupt_content.as_ref().is_some_and(|c| within(c))
    }

    fn carry_out(&mut self, i: u32, out: Output, payload: bool) {
        let now_i = self.instant(self.now);
        match out {
            Output::Connect { conn, addr } => self.connect(i, conn, addr),
            Output::Send { conn, data } => {
                let Some(c) = self.conn_entry(i, conn) else {
                    return;
                };
                let flow = Flow {
                    link: c.link,
                    dir: c.side,
                };
                if payload && self.nodes[i as usize].free_rider {
                    self.withhold(flow, data.len());
                    return;
                }
                self.enqueue(flow, data, payload);
            }
            Output::Close { conn } => {
                if let Some(c) = self.conn_entry(i, conn) {
                    self.close_end(c.link, c.side);
                }
            }
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => {
                let data = self.read_block(i, block);
                self.t.calls.block_read += 1;
                let e = self.nodes[i as usize].engine.as_mut().unwrap();
                e.handle(
                    Input::BlockRead {
                        torrent,
                        conn,
                        block,
                        result: Ok(data),
                    },
                    now_i,
                );
            }
            Output::WriteBlock {
                torrent,
                block,
                data,
            } => {
                let node = &mut self.nodes[i as usize];
                if self.content.is_some() {
                    let off = u64::from(block.piece.0) * self.sc.torrent.piece_length.0
                        + u64::from(block.begin);
                    node.data[off as usize..off as usize + data.len()].copy_from_slice(&data);
                } else if data.first().is_some_and(|&b| b != 0) {
                    node.tainted.set(block.piece.0);
                }
                if self.content.is_none() {
                    self.recycle(data);
                } else {
                    drop(data);
                }
                self.t.calls.block_written += 1;
                let e = self.nodes[i as usize].engine.as_mut().unwrap();
                e.handle(
                    Input::BlockWritten {
                        torrent,
                        block,
                        result: Ok(()),
                    },
                    now_i,
                );
            }
            Output::HashPiece {
                torrent,
                piece,
                expected,
            } => {
                let ok = self.check_piece(i, piece, &expected);
                self.t.calls.piece_hashed += 1;
                let e = self.nodes[i as usize].engine.as_mut().unwrap();
                e.handle(Input::PieceHashed { torrent, piece, ok }, now_i);
            }
            Output::TrackerHttp {
                torrent,
                id,
                request,
                ..
            } => {
                let from = self.nodes[i as usize].addr.ip();
                let response = self.tracker.http(from, &request, now_i);
                self.t.announces += 1;
                let slot = match self.free_answers.pop() {
                    Some(s) => {
                        self.answers[s as usize] = Some((i, torrent, id, response));
                        s
                    }
                    None => {
                        self.answers.push(Some((i, torrent, id, response)));
                        (self.answers.len() - 1) as u32
                    }
                };
                let rtt = secs(self.sc.network.tracker_rtt_ms / 1000.0);
                self.queue.push(self.now + rtt, Ev::TrackerAnswer(slot));
            }
            Output::WebSeedRequest {
                torrent,
                id,
                request,
                ..
            } => self.web_request(i, torrent, id, &request),
            // The simulated torrents name an HTTP tracker only.
            Output::UdpSend { .. } => {}
            Output::Event(e) => self.on_event(i, e),
            // Outputs the simulator does not model yet go nowhere.
            _ => {}
        }
    }

    fn read_block(&mut self, i: u32, block: BlockRequest) -> Bytes {
        let node = &self.nodes[i as usize];
        let len = block.length as usize;
        match &self.content {
            None => {
                let src: &'static [u8] = if node.corrupt { &CORRUPT } else { &ZEROS };
                Bytes::from_static(&src[..len.min(src.len())])
            }
            Some(content) => {
                let off = (u64::from(block.piece.0) * self.sc.torrent.piece_length.0
                    + u64::from(block.begin)) as usize;
                let end = (off + len).min(content.len());
                if node.corrupt {
                    let corrupt = self
                        .corrupt_content
                        .as_ref()
                        .expect("made for corrupt nodes");
                    corrupt.slice(off..end)
                } else {
                    // A verified piece holds exactly the content: serve the shared copy.
                    content.slice(off..end)
                }
            }
        }
    }

    fn check_piece(&mut self, i: u32, piece: PieceIndex, expected: &[u8; 20]) -> bool {
        let node = &mut self.nodes[i as usize];
        match &self.content {
            None => !node.tainted.clear(piece.0),
            Some(_) => {
                let pl = self.sc.torrent.piece_length.0;
                let start = (u64::from(piece.0) * pl) as usize;
                let end = (start + pl as usize).min(node.data.len());
                let digest: [u8; 20] = Sha1::digest(&node.data[start..end]).into();
                &digest == expected
            }
        }
    }

    fn on_event(&mut self, i: u32, e: Event) {
        let now = self.now;
        match e {
            Event::MetadataReceived { torrent, .. } => {
                // A runtime would open storage here; the simulator's is in memory.
                let at = self.instant(now);
                let node = &mut self.nodes[i as usize];
                node.r.metadata_s = Some(as_secs(now));
                if let Some(e) = node.engine.as_mut() {
                    e.attach_metainfo(torrent, TorrentOptions::default(), at)
                        .expect("the simulator's torrent is valid");
                }
            }
            Event::PieceVerified { piece, .. } => {
                let node = &mut self.nodes[i as usize];
                if node.have.set(piece.0) {
                    self.avail[piece.0 as usize] += 1;
                    let n = node.have.count_ones();
                    let p = self.piece_count;
                    if n + 1 == p {
                        node.r.second_to_last_piece_s = Some(as_secs(now));
                    }
                    if node.r.p95_s.is_none() && u64::from(n) * 20 >= u64::from(p) * 19 {
                        node.r.p95_s = Some(as_secs(now));
                    }
                    if n == 1 {
                        node.r.first_piece_s = Some(as_secs(now));
                    }
                }
            }
            Event::Completed { .. } => {
                let node = &mut self.nodes[i as usize];
                if node.r.completed_s.is_none() && !node.seed {
                    node.r.completed_s = Some(as_secs(now));
                    node.r.payload_up_leeching = Some(node.r.payload_up);
                    self.completed += 1;
                    self.pending_leechers -= 1;
                    let g = &self.sc.groups[node.group as usize];
                    if let Some(st) = g.seed_time_s {
                        self.queue.push(now + secs(st), Ev::Depart(i));
                    }
                    self.check_done();
                }
            }
            Event::HashFailed { .. } => {
                self.nodes[i as usize].r.hash_failures += 1;
                self.t.hash_failures += 1;
            }
            Event::PeerBanned { ip, .. } => {
                self.nodes[i as usize].r.banned_hosts.push(ip);
                self.nodes[i as usize].r.bans += 1;
                self.t.bans += 1;
            }
            Event::PeerConnected { conn, .. } => {
                self.t.connections += 1;
                if let Some(flood) = self.nodes[i as usize].flood.as_mut() {
                    flood.connected(conn);
                }
            }
            Event::PeerClosed { conn, .. } => {
                if let Some(flood) = self.nodes[i as usize].flood.as_mut() {
                    flood.closed(conn);
                }
            }
            Event::Progress { stats, .. } => {
                let r = &mut self.nodes[i as usize].r;
                r.engine_downloaded = stats.downloaded;
                r.engine_uploaded = stats.uploaded;
            }
            _ => {}
        }
    }

    fn conn_entry(&self, i: u32, conn: ConnId) -> Option<ConnEntry> {
        if let Some((node, c)) = self.replying {
            if node == i && c.conn == conn {
                return Some(c);
            }
        }
        let c = (*self.nodes[i as usize].conns.get(conn.key().0 as usize)?)?;
        (c.conn == conn).then_some(c)
    }

    fn set_conn(&mut self, i: u32, conn: ConnId, entry: Option<ConnEntry>) {
        if self
            .replying
            .is_some_and(|(node, c)| node == i && c.conn == conn)
        {
            self.replying = None;
        }
        let conns = &mut self.nodes[i as usize].conns;
        let k = conn.key().0 as usize;
        if conns.len() <= k {
            conns.resize(k + 1, None);
        }
        conns[k] = entry;
    }

    fn latency(&self, a: u32, b: u32) -> Nanos {
        let ga = &self.sc.groups[self.nodes[a as usize].group as usize];
        let gb = &self.sc.groups[self.nodes[b as usize].group as usize];
        let mut ms = ga.latency_ms + gb.latency_ms;
        let jitter = self.sc.network.jitter_ms;
        if jitter > 0.0 {
            let (lo, hi) = (a.min(b), a.max(b));
            let h = mix(self.sc.seed ^ (u64::from(lo) << 32 | u64::from(hi)));
            ms += jitter * ((h >> 11) as f64 / (1u64 << 53) as f64);
        }
        secs(ms / 1000.0)
    }

    fn connect(&mut self, i: u32, conn: ConnId, addr: SocketAddr) {
        let target = self.sybil_addrs.get(&addr).copied().or_else(|| {
            node_of_ip(addr.ip())
                .filter(|&j| (j as usize) < self.nodes.len() && addr.port() == LISTEN_PORT)
        });
        let (j, lat) = match target {
            Some(j) => (j, self.latency(i, j)),
            // Nobody there: the network answers with a reset after a nominal delay.
            None => (i, secs(0.05)),
        };
        let link = self.net.open(i, conn, j, lat);
        self.set_conn(
            i,
            conn,
            Some(ConnEntry {
                conn,
                link,
                side: 0,
            }),
        );
        let gen = self.net.link(link).gen;
        if target.is_none() || j == i {
            self.queue
                .push(self.now + 2 * lat, Ev::Refused { link, gen });
        } else {
            self.queue.push(self.now + lat, Ev::Syn { link, gen });
        }
    }

    fn syn(&mut self, link: LinkId, gen: u32) {
        let l = self.net.link(link);
        if !l.live || l.gen != gen || !l.ends[0].open {
            return;
        }
        let (i, j, lat) = (l.ends[0].node, l.ends[1].node, l.latency);
        let conn_i = l.ends[0].conn.unwrap();
        let target = &self.nodes[j as usize];
        if target.state == State::Online && target.nat {
            // Behind a NAT: the SYN is dropped and the dialler's engine times out.
            self.t.nat_drops += 1;
            return;
        }
        let fail = self.sc.network.connect_failure > 0.0
            && unit_f64(&mut self.rng) < self.sc.network.connect_failure;
        let accepted = if target.state == State::Online && !fail {
            let from = SocketAddr::new(
                self.nodes[i as usize].addr.ip(),
                10_000 + (conn_i.key().0 % 50_000) as u16,
            );
            let now = self.instant(self.now);
            self.t.calls.accept += 1;
            self.nodes[j as usize]
                .engine
                .as_mut()
                .unwrap()
                .accept(from, now)
        } else {
            None
        };
        match accepted {
            Some(rc) => {
                let l = self.net.link_mut(link);
                l.ends[1].conn = Some(rc);
                l.ends[1].open = true;
                self.set_conn(
                    j,
                    rc,
                    Some(ConnEntry {
                        conn: rc,
                        link,
                        side: 1,
                    }),
                );
                self.drain(j);
                self.queue.push(self.now + lat, Ev::Connected { link, gen });
            }
            None => {
                self.t.refused += 1;
                self.queue.push(self.now + lat, Ev::Refused { link, gen });
            }
        }
    }

    /// End `side` of `link` is gone from its node (the node closed it, learnt it closed,
    /// or left): its mapping goes, its unsent bytes are dropped, its flow stops.
    fn detach(&mut self, link: LinkId, side: u8) {
        let l = self.net.link_mut(link);
        let end = l.ends[side as usize];
        l.ends[side as usize].open = false;
        if let Some(conn) = end.conn {
            if self
                .conn_entry(end.node, conn)
                .is_some_and(|c| c.link == link)
            {
                self.set_conn(end.node, conn, None);
            }
        }
        let flow = Flow { link, dir: side };
        let p = self.net.pipe(flow);
        p.queue.clear();
        p.queued = 0;
        if p.touched > 0 {
            self.touched[p.touched as usize - 1].1 = None;
        }
        self.net.stop(flow, self.now);
        // The other flows of both nodes changed rate: their new ends are due now.
        self.schedule_wakeups();
    }

    /// Node closes its end: detach it and tell the other end, behind the data already
    /// travelling to it.
    fn close_end(&mut self, link: LinkId, side: u8) {
        let l = self.net.link(link);
        if !l.live || !l.ends[side as usize].open {
            return;
        }
        let gen = l.gen;
        let other = 1 - side;
        let at = (self.now + l.latency).max(l.pipes[side as usize].last_arrival);
        let other_open = l.ends[other as usize].open;
        self.detach(link, side);
        if other_open {
            self.queue.push(
                at,
                Ev::Fin {
                    link,
                    gen,
                    to: other,
                },
            );
        }
        self.net.maybe_free(link);
    }

    // ---- bytes on the wire ----

    fn enqueue(&mut self, flow: Flow, data: Bytes, payload: bool) {
        let batch = self.batch;
        let len = data.len() as u32;
        let p = self.net.pipe(flow);
        p.queued += len as usize;
        let k = match p.touched {
            0 => {
                self.touched.push((flow, None));
                p.touched = self.touched.len() as u32;
                self.touched.len() - 1
            }
            k => k as usize - 1,
        };
        let scratch = &mut self.touched[k].1;
        if scratch.is_some() || (!payload && !p.active && p.queue.is_empty()) {
            let unit = scratch.get_or_insert_with(|| Unit {
                batch,
                ..Unit::default()
            });
            if !payload {
                unit.len += len;
                unit.head.extend_from_slice(&data);
                return;
            }
            // A block after them: they travel with it, through the pipe's queue.
            p.queue.extend(scratch.take());
        }
        let head_busy = p.busy && p.queue.len() == 1;
        let tail = match p.queue.back_mut() {
            Some(tail) if tail.batch == batch && tail.block.is_none() && !head_busy => tail,
            _ => {
                p.queue.push_back(Unit {
                    batch,
                    ..Unit::default()
                });
                p.queue.back_mut().expect("just pushed")
            }
        };
        tail.len += len;
        if payload {
            tail.payload = len;
            tail.block = Some(data);
        } else {
            tail.head.extend_from_slice(&data);
        }
    }

    /// A free rider's block leaves nothing on the wire: drop it and the piece header
    /// just before it (which would otherwise announce data that never comes).
    fn withhold(&mut self, flow: Flow, len: usize) {
        self.t.withheld_payload += len as u64;
        let batch = self.batch;
        let p = self.net.pipe(flow);
        let head_busy = p.busy && p.queue.len() == 1;
        let scratch = match p.touched {
            0 => None,
            k => self.touched[k as usize - 1].1.as_mut(),
        };
        let (tail, in_queue) = match scratch {
            Some(unit) => (unit, false),
            None => match p
                .queue
                .back_mut()
                .filter(|t| t.batch == batch && !head_busy)
            {
                Some(unit) => (unit, true),
                None => return,
            },
        };
        let n = tail.head.len();
        if n < PIECE_HEADER_LEN {
            return;
        }
        debug_assert_eq!(tail.head[n - 9], 7, "a piece header ends the unit");
        tail.head.truncate(n - PIECE_HEADER_LEN);
        tail.len -= PIECE_HEADER_LEN as u32;
        p.queued -= PIECE_HEADER_LEN;
        if tail.head.is_empty() {
            if in_queue {
                p.queue.pop_back();
            } else {
                self.touched[p.touched as usize - 1].1 = None;
            }
        }
    }

    /// After node `i`'s drain: pipes that got bytes and were idle start a flow, or, with
    /// small messages only, send them at once.
    fn flush_touched(&mut self, i: u32) {
        let mut touched = std::mem::take(&mut self.touched);
        for (flow, scratch) in touched.drain(..) {
            let p = self.net.pipe(flow);
            p.touched = 0;
            if let Some(unit) = scratch {
                self.express(i, flow, Some(unit));
                continue;
            }
            if p.active || p.queue.is_empty() {
                continue;
            }
            if p.queue.iter().all(|u| u.payload == 0) {
                self.express(i, flow, None);
            } else {
                self.net.start_head(flow, self.now);
                self.schedule_wakeups();
            }
        }
        self.touched = touched;
    }

    /// Sends an idle pipe's small messages without a flow: they arrive after the latency
    /// plus their serialisation at the sender's (node `i`'s) full uplink. `first` is the
    /// drain's unit for a pipe that had nothing queued (kept out of the queue: one cache
    /// miss less).
    fn express(&mut self, i: u32, flow: Flow, mut first: Option<Unit>) {
        let up = self.net.nodes[i as usize].up;
        let lat = self.net.link(flow.link).latency;
        let now = self.now;
        let mut sent = 0;
        while let Some(unit) = first
            .take()
            .or_else(|| self.net.pipe(flow).queue.pop_front())
        {
            let len = unit.len;
            let p = self.net.pipe(flow);
            p.queued -= len as usize;
            p.owed_sent += len as usize;
            let ser = (f64::from(len) / up).ceil() as Nanos;
            self.dispatch_unit(flow, now + ser + lat, unit);
            sent += u64::from(len);
        }
        let p = self.net.pipe(flow);
        if p.owed_sent + p.queued + ACK_MARGIN >= self.send_buffer {
            // Only small messages, megabytes of them: rare enough for an event of its own.
            self.queue.push(self.now, Ev::Ack(flow));
        }
        self.in_flight_bytes += sent;
        self.nodes[i as usize].r.bytes_up += sent;
    }

    /// Sends a unit through the uplink on its way: it arrives at `at`, or after the unit
    /// sent before it on the pipe.
    fn dispatch_unit(&mut self, flow: Flow, at: Nanos, unit: Unit) {
        let p = self.net.pipe(flow);
        let at = at.max(p.last_arrival);
        p.last_arrival = at;
        p.travelling += 1;
        let small = match Small::of(&unit) {
            Some(small) => small,
            None => {
                p.in_flight.push_back((at, unit));
                Small::NONE
            }
        };
        self.queue.push(at, Ev::Deliver(flow, small));
    }

    /// Tells the sender's engine how much of what it handed over has left, if it needs to
    /// know: the engine uses `Sent` only to stop reading blocks for a connection whose
    /// unsent bytes pass its `send_buffer`. Reporting each unit would cost an engine call
    /// per block; reporting when the engine's count nears that bound changes nothing it
    /// does. (It models a socket buffer as large as the engine allows.)
    fn ack(&mut self, flow: Flow, force: bool) {
        let l = self.net.link(flow.link);
        if !l.live {
            return;
        }
        let end = l.ends[flow.dir as usize];
        let p = &l.pipes[flow.dir as usize];
        if p.owed_sent == 0 || !end.open {
            return;
        }
        if force || p.owed_sent + p.queued + ACK_MARGIN >= self.send_buffer {
            let bytes = std::mem::take(&mut self.net.pipe(flow).owed_sent);
            self.call(
                end.node,
                Input::Sent {
                    conn: end.conn.unwrap(),
                    bytes,
                },
            );
        }
    }

    fn schedule_wakeups(&mut self) {
        for (at, flow, version) in self.net.wakeups.drain(..) {
            self.queue.push(at, Ev::PipeDone { flow, version });
        }
    }

    fn pipe_done(&mut self, flow: Flow, version: u32) {
        let l = self.net.link(flow.link);
        let p = &l.pipes[flow.dir as usize];
        if !l.live || p.version != version || !p.busy {
            return;
        }
        let lat = l.latency;
        let (i, _) = self.net.ends_of(flow);
        let unit = self.net.finish_head(flow);
        let (len, payload) = (unit.len, unit.payload);
        self.net.pipe(flow).owed_sent += len as usize;
        self.dispatch_unit(flow, self.now + lat, unit);
        self.in_flight_bytes += u64::from(len);
        self.in_flight_payload += u64::from(payload);
        let r = &mut self.nodes[i as usize].r;
        r.bytes_up += u64::from(len);
        r.payload_up += u64::from(payload);
        self.payload_sent += u64::from(payload);
        self.ack(flow, false);
        // The engine may have queued more on this pipe, or closed it.
        let p = self.net.pipe(flow);
        if p.active && !p.busy {
            if p.queue.is_empty() {
                self.net.stop(flow, self.now);
            } else {
                self.net.start_head(flow, self.now);
            }
            self.schedule_wakeups();
        }
    }

    fn deliver(&mut self, flow: Flow, small: Small) {
        let l = self.net.link_mut(flow.link);
        let to = l.ends[1 - flow.dir as usize];
        let p = &mut l.pipes[flow.dir as usize];
        p.travelling -= 1;
        let unit = if small.len > 0 {
            None
        } else {
            let (at, unit) = p.in_flight.pop_front().expect("a delivery has its unit");
            debug_assert_eq!(at, self.now);
            Some(unit)
        };
        let (len, payload) = match &unit {
            Some(u) => (u.len, u.payload),
            None => (u32::from(small.len), 0),
        };
        self.in_flight_bytes -= u64::from(len);
        self.in_flight_payload -= u64::from(payload);
        let r = &mut self.nodes[to.node as usize].r;
        r.bytes_down += u64::from(len);
        r.payload_down += u64::from(payload);
        if to.open && self.nodes[to.node as usize].state == State::Online {
            let conn = to.conn.unwrap();
            let entry = ConnEntry {
                conn,
                link: flow.link,
                side: 1 - flow.dir,
            };
            self.replying = Some((to.node, entry));
            match unit {
                Some(unit) if payload > 0 && self.content.is_none() => {
                    self.deliver_block(to.node, conn, unit)
                }
                unit => {
                    let data = match unit {
                        Some(unit) => unit.into_bytes_mut(),
                        None => BytesMut::from(&small.bytes[..usize::from(small.len)]),
                    };
                    self.call(to.node, Input::Received { conn, data });
                }
            }
            self.replying = None;
        } else {
            self.t.payload_to_closed += u64::from(payload);
        }
        self.net.maybe_free(flow.link);
    }

    /// Hands a unit ending in a block to its receiver as two reads: the messages before
    /// the block's data, then the data in a buffer of the pool (the same bytes: zeros, or
    /// the corrupt byte). The engine takes the data without copying it (the header ended
    /// the first read), and the buffer comes back to the pool with the engine's write.
    fn deliver_block(&mut self, node: u32, conn: ConnId, mut unit: Unit) {
        let block = unit.block.take().expect("a unit with a payload ends in it");
        let head = BytesMut::from(&unit.head[..]);
        let fill = usize::from(block.first().is_some_and(|&b| b != 0));
        let pooled = if block.len() == BLOCK_SIZE as usize {
            self.pools[fill].pop()
        } else {
            None
        };
        let data = pooled.unwrap_or_else(|| BytesMut::from(&block[..]));
        let now = self.instant(self.now);
        let Some(e) = self.nodes[node as usize].engine.as_mut() else {
            return;
        };
        for data in [head, data] {
            if data.is_empty() {
                continue;
            }
            let input = Input::Received { conn, data };
            self.t.calls.count(&input);
            e.handle(input, now);
        }
        self.drain(node);
    }

    /// Takes a written block's buffer back into the pool if nothing else holds it.
    fn recycle(&mut self, data: Bytes) {
        if data.len() != BLOCK_SIZE as usize {
            return;
        }
        let fill = usize::from(data[0] != 0);
        if self.pools[fill].len() < POOL_MAX {
            if let Ok(buf) = data.try_into_mut() {
                self.pools[fill].push(buf);
            }
        }
    }

    // ---- results ----

    fn take_sample(&mut self) {
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

    fn finish(self, wall: Duration) -> Report {
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
