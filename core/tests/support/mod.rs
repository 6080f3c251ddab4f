//! An in-memory swarm harness: engines wired together on virtual time, no sockets.
//!
//! Each node is an [`Engine`] with a listen address, an in-memory copy of the torrent's
//! bytes and an upload capacity. The harness plays the runtime: it carries out every
//! [`Output`] (connections between nodes, sends, disk reads and writes, hashing) and feeds
//! the answers back as [`Input`]s, delivering bytes after a latency and no faster than the
//! sender's upload capacity allows (one FIFO uplink per node). Time jumps to the next
//! delivery or engine timeout, so a swarm that would take minutes runs in milliseconds.

#![allow(dead_code)] // each test file uses a different part

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sha1::{Digest, Sha1};
use shoal_core::create::TorrentBuilder;
use shoal_core::engine::{
    ConnId, Engine, EngineConfig, Event, Input, Output, TorrentId, TorrentOptions,
};
use shoal_core::metainfo::Metainfo;
use shoal_core::wire::{Handshake, Reserved};
use shoal_core::{InfoHash, PeerId, PieceIndex};

/// Makes a torrent of `files` (name, length) with deterministic content; returns the
/// metainfo and the content.
pub fn make_torrent(files: &[(&str, u64)], piece_length: u32) -> (Arc<Metainfo>, Vec<u8>) {
    make_torrent_with_web_seeds(files, piece_length, &[])
}

/// [`make_torrent`], with a `url-list`.
pub fn make_torrent_with_web_seeds(
    files: &[(&str, u64)],
    piece_length: u32,
    web_seeds: &[&str],
) -> (Arc<Metainfo>, Vec<u8>) {
    let total: u64 = files.iter().map(|f| f.1).sum();
    let data: Vec<u8> = (0..total)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut b = TorrentBuilder::multi_file("swarm");
    for (name, len) in files {
        b.add_file(vec![name.to_string()], *len);
    }
    b.piece_length(piece_length);
    for url in web_seeds {
        b.web_seed(*url);
    }
    let mut h = b.start().unwrap();
    h.update(&data);
    let meta = Metainfo::parse(&h.finish().unwrap()).unwrap();
    (Arc::new(meta), data)
}

/// What a node does with the data it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Serves blocks with every byte flipped.
    Corrupt,
}

pub struct Node {
    pub engine: Engine,
    pub addr: SocketAddr,
    pub torrent: TorrentId,
    pub data: Vec<u8>,
    pub meta: Arc<Metainfo>,
    /// Upload capacity, bytes per second.
    pub upload: u64,
    uplink_free: Instant,
    pub behaviour: Behaviour,
    pub events: Vec<Event>,
    pub completed_at: Option<Instant>,
    pub sent_payload: u64,
}

/// How the swarm's web server answers range requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebMode {
    Honest,
    /// A 206 as asked, with every byte flipped.
    WrongBytes,
    /// The whole file with a 200, whatever the range.
    Whole200,
    /// A 206 whose body stops halfway, then the connection closes.
    Short,
    NotFound,
}

/// A web seed of the swarm's torrent: answers `Output::WebSeedRequest` from `data`.
pub struct WebServer {
    pub base: String,
    pub data: Vec<u8>,
    pub meta: Arc<Metainfo>,
    pub mode: WebMode,
    /// Body bytes sent.
    pub served: u64,
    pub requests: u64,
}

impl WebServer {
    /// The raw answer to `request` for `url`.
    fn answer(&mut self, url: &shoal_core::tracker::TrackerUrl, request: &[u8]) -> Vec<u8> {
        self.requests += 1;
        let text = String::from_utf8_lossy(request);
        let urls = shoal_core::webseed::file_urls(&self.base, &self.meta.info).unwrap();
        let Some(file) = urls.iter().position(|u| {
            u.as_ref()
                .is_some_and(|u| u.path_and_query() == url.path_and_query())
        }) else {
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec();
        };
        let f = &self.meta.info.files[file];
        let range = text
            .lines()
            .find_map(|l| l.strip_prefix("Range: bytes="))
            .and_then(|r| r.split_once('-'))
            .map(|(a, b)| (a.parse::<u64>().unwrap(), b.trim().parse::<u64>().unwrap()))
            .unwrap();
        let slice =
            |a: u64, b: u64| self.data[(f.offset + a) as usize..=(f.offset + b) as usize].to_vec();
        let (first, last) = range;
        let len = last - first + 1;
        let mut out;
        match self.mode {
            WebMode::NotFound => {
                return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
            WebMode::Whole200 => {
                out =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", f.length).into_bytes();
                out.extend(slice(0, f.length - 1));
            }
            WebMode::Honest | WebMode::WrongBytes | WebMode::Short => {
                out = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{}\r\nContent-Length: {len}\r\n\r\n",
                    f.length
                )
                .into_bytes();
                let mut body = slice(first, last);
                if self.mode == WebMode::WrongBytes {
                    for b in &mut body {
                        *b = !*b;
                    }
                }
                if self.mode == WebMode::Short {
                    body.truncate(body.len() / 2);
                }
                out.extend(body);
            }
        }
        self.served += len;
        out
    }
}

#[derive(Debug)]
enum Delivery {
    Input { node: usize, input: Input },
}

pub struct Swarm {
    pub nodes: Vec<Node>,
    pub now: Instant,
    pub start: Instant,
    pub latency: Duration,
    /// How long hashing a piece takes (zero: at once; a runtime hashes on a worker thread,
    /// so blocks keep arriving while a piece is hashed).
    pub hash_delay: Duration,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    pending: BTreeMap<u64, Delivery>,
    seq: u64,
    /// (node, conn) -> (node, conn) of the other end.
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    /// A running hash of every output, for determinism checks.
    pub trace: Sha1,
    pub outputs: u64,
    /// The web seed of the torrent, if any.
    pub web: Option<WebServer>,
    /// Every byte any node sent on a connection, in order, when set (tests of what the
    /// wire carries).
    pub wire: Option<Vec<u8>>,
}

impl Swarm {
    pub fn new() -> Swarm {
        let start = Instant::now();
        Swarm {
            nodes: Vec::new(),
            now: start,
            start,
            latency: Duration::from_millis(20),
            hash_delay: Duration::ZERO,
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            trace: Sha1::new(),
            outputs: 0,
            web: None,
            wire: None,
        }
    }

    /// Adds a node holding `data` (all of it for a seed, zeros for a leecher) with the
    /// pieces in `verified` already checked.
    pub fn add_node(
        &mut self,
        meta: &Arc<Metainfo>,
        data: Vec<u8>,
        verified: Option<shoal_core::bitfield::Bitfield>,
        upload: u64,
        seed: u64,
        config: impl FnOnce(&mut EngineConfig),
    ) -> usize {
        let index = self.nodes.len();
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(
                10,
                0,
                (index / 250) as u8,
                (index % 250) as u8 + 1,
            )),
            6881,
        );
        let mut peer_id = *b"-SH0010-000000000000";
        peer_id[8..].copy_from_slice(format!("{index:012}").as_bytes());
        let mut cfg = EngineConfig {
            peer_id: PeerId(peer_id),
            listen_port: 6881,
            rng_seed: seed.wrapping_mul(1_000_003).wrapping_add(index as u64),
            ..EngineConfig::default()
        };
        config(&mut cfg);
        let mut engine = Engine::new(cfg);
        let torrent = engine
            .add_torrent(
                meta.clone(),
                TorrentOptions {
                    verified,
                    ..TorrentOptions::default()
                },
                self.now,
            )
            .unwrap();
        self.nodes.push(Node {
            engine,
            addr,
            torrent,
            data,
            meta: meta.clone(),
            upload,
            uplink_free: self.now,
            behaviour: Behaviour::Honest,
            events: Vec::new(),
            completed_at: None,
            sent_payload: 0,
        });
        self.drain(index);
        index
    }

    /// Adds a node that knows only the torrent's magnet link (no peers in it: introduce
    /// them). When its metadata is in, the harness attaches it with nothing verified, as a
    /// runtime would after opening empty storage; `data` is zeros of the torrent's size.
    pub fn add_magnet_node(&mut self, meta: &Arc<Metainfo>, upload: u64, seed: u64) -> usize {
        let index = self.nodes.len();
        self.add_node(
            meta,
            vec![0; meta.info.total_length as usize],
            None,
            upload,
            seed,
            |_| {},
        );
        let node = &mut self.nodes[index];
        let mut cfg = node.engine.config().clone();
        cfg.rng_seed ^= 0x6d61_676e;
        node.engine = Engine::new(cfg);
        node.events.clear();
        node.torrent = node
            .engine
            .add_magnet(&shoal_core::magnet::Magnet::new(meta.info_hash), self.now);
        self.drain(index);
        index
    }

    /// Adds a seed: all of `data`, every piece verified, default settings.
    pub fn add_seed(&mut self, meta: &Arc<Metainfo>, data: &[u8], upload: u64, seed: u64) -> usize {
        self.add_node(
            meta,
            data.to_vec(),
            Some(full_bitfield(meta)),
            upload,
            seed,
            |_| {},
        )
    }

    /// Starts node `i`'s DHT node, bootstrapping from the nodes `bootstrap`.
    pub fn start_dht(&mut self, i: usize, bootstrap: &[usize]) {
        let bootstrap = bootstrap
            .iter()
            .map(|&j| match self.nodes[j].addr {
                SocketAddr::V4(a) => a,
                SocketAddr::V6(_) => unreachable!("nodes have IPv4 addresses"),
            })
            .collect();
        let config = shoal_core::dht::Config {
            seed: 0xd47 + i as u64,
            token_key: [i as u8; 20],
            bootstrap,
            ..Default::default()
        };
        let now = self.now;
        self.nodes[i].engine.start_dht(config, now);
        self.drain(i);
    }

    /// Tells node `from` about node `to`'s address.
    pub fn introduce(&mut self, from: usize, to: usize) {
        let (id, addr) = (self.nodes[from].torrent, self.nodes[to].addr);
        let now = self.now;
        self.nodes[from].engine.add_peer(id, addr, now);
        self.drain(from);
    }

    fn schedule(&mut self, at: Instant, node: usize, input: Input) {
        self.seq += 1;
        self.pending
            .insert(self.seq, Delivery::Input { node, input });
        self.queue.push(Reverse((at, self.seq, node)));
    }

    /// Carries out everything node `i` has to say.
    fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].engine.poll_output() {
            self.outputs += 1;
            // Payload bytes go into the trace raw: formatting them would dominate the run.
            match &out {
                Output::Send { conn, data } => {
                    self.trace.update(format!("{i}:send:{conn}:").as_bytes());
                    self.trace.update(data);
                }
                Output::WriteBlock { block, data, .. } => {
                    self.trace
                        .update(format!("{i}:write:{block:?}:").as_bytes());
                    self.trace.update(data);
                }
                other => self.trace.update(format!("{i}:{other:?}").as_bytes()),
            }
            self.carry_out(i, out);
        }
    }

    fn carry_out(&mut self, i: usize, out: Output) {
        let now = self.now;
        match out {
            Output::Connect { conn, addr } => {
                let target = self.nodes.iter().position(|n| n.addr == addr);
                match target {
                    Some(j) if j != i => {
                        let from_addr =
                            SocketAddr::new(self.nodes[i].addr.ip(), 40000 + conn.key().0 as u16);
                        match self.nodes[j].engine.accept(from_addr, now) {
                            Some(remote) => {
                                self.links.insert((i, conn), (j, remote));
                                self.links.insert((j, remote), (i, conn));
                                self.schedule(now + self.latency, i, Input::Connected { conn });
                                self.drain(j);
                            }
                            None => {
                                self.schedule(now + self.latency, i, Input::ConnectFailed { conn })
                            }
                        }
                    }
                    _ => self.schedule(now + self.latency, i, Input::ConnectFailed { conn }),
                }
            }
            Output::Send { conn, data } => {
                if let Some(wire) = self.wire.as_mut() {
                    wire.extend_from_slice(&data);
                }
                let len = data.len();
                let node = &mut self.nodes[i];
                let start = node.uplink_free.max(now);
                let wire_time =
                    Duration::from_nanos(len as u64 * 1_000_000_000 / node.upload.max(1));
                node.uplink_free = start + wire_time;
                let sent_at = node.uplink_free;
                self.schedule(sent_at, i, Input::Sent { conn, bytes: len });
                if let Some(&(j, remote)) = self.links.get(&(i, conn)) {
                    self.schedule(
                        sent_at + self.latency,
                        j,
                        Input::Received {
                            conn: remote,
                            data: BytesMut::from(&data[..]),
                        },
                    );
                }
            }
            Output::Close { conn } => {
                if let Some((j, remote)) = self.links.remove(&(i, conn)) {
                    self.links.remove(&(j, remote));
                    self.schedule(now + self.latency, j, Input::Closed { conn: remote });
                }
            }
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => {
                let node = &mut self.nodes[i];
                let offset = u64::from(block.piece.0) * u64::from(node.meta.info.piece_length)
                    + u64::from(block.begin);
                let range = offset as usize..offset as usize + block.length as usize;
                let mut bytes = node.data[range].to_vec();
                if node.behaviour == Behaviour::Corrupt {
                    for b in &mut bytes {
                        *b = !*b;
                    }
                }
                node.sent_payload += u64::from(block.length);
                self.schedule(
                    now,
                    i,
                    Input::BlockRead {
                        torrent,
                        conn,
                        block,
                        result: Ok(Bytes::from(bytes)),
                    },
                );
            }
            Output::WriteBlock {
                torrent,
                block,
                data,
            } => {
                let node = &mut self.nodes[i];
                let offset = u64::from(block.piece.0) * u64::from(node.meta.info.piece_length)
                    + u64::from(block.begin);
                node.data[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
                self.schedule(
                    now,
                    i,
                    Input::BlockWritten {
                        torrent,
                        block,
                        result: Ok(()),
                    },
                );
            }
            Output::HashPiece {
                torrent,
                piece,
                expected,
            } => {
                let node = &self.nodes[i];
                let plen = u64::from(node.meta.info.piece_length);
                let start = u64::from(piece.0) * plen;
                let end = (start + plen).min(node.meta.info.total_length);
                let digest: [u8; 20] =
                    Sha1::digest(&node.data[start as usize..end as usize]).into();
                self.schedule(
                    now + self.hash_delay,
                    i,
                    Input::PieceHashed {
                        torrent,
                        piece,
                        ok: digest == expected,
                    },
                );
            }
            Output::Event(e) => {
                if matches!(e, Event::Completed { .. }) {
                    self.nodes[i].completed_at = Some(now);
                }
                if let Event::MetadataReceived { torrent, .. } = &e {
                    self.nodes[i]
                        .engine
                        .attach_metainfo(*torrent, TorrentOptions::default(), now)
                        .unwrap();
                }
                self.nodes[i].events.push(e);
            }
            Output::WebSeedRequest {
                torrent,
                id,
                url,
                request,
                ..
            } => {
                let result = match self.web.as_mut() {
                    Some(web) => Ok(web.answer(&url, &request)),
                    None => Err(shoal_core::IoError::new(
                        std::io::ErrorKind::ConnectionRefused,
                        format!("{}: no web server", url.as_str()),
                    )),
                };
                self.schedule(
                    now + self.latency,
                    i,
                    Input::WebSeedResponse {
                        torrent,
                        id,
                        result,
                    },
                );
            }
            // Datagrams between nodes (the DHT: each node's UDP socket has its TCP address).
            Output::UdpSend { to, data } => {
                if let Some(j) = self.nodes.iter().position(|n| n.addr == to) {
                    let from = self.nodes[i].addr;
                    self.schedule(now + self.latency, j, Input::UdpReceived { from, data });
                }
            }
            // The in-memory swarm has no tracker (peers are introduced directly) and nothing
            // else outside the peers: `TrackerHttp`, datagrams to anyone but a node, and
            // whatever comes go nowhere.
            _ => {}
        }
    }

    /// Runs until `done` holds or virtual time passes `limit`. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Swarm) -> bool) -> bool {
        let deadline = self.start + limit;
        loop {
            if done(self) {
                return true;
            }
            // The next moment anything happens: a delivery or an engine timeout.
            let next_delivery = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.engine.poll_timeout().map(|t| (t, i)))
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => return done(self),
            };
            if next > deadline {
                return done(self);
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let Reverse((_, seq, node)) = self.queue.pop().unwrap();
                let Some(Delivery::Input { input, .. }) = self.pending.remove(&seq) else {
                    continue;
                };
                self.nodes[node].engine.handle(input, self.now);
                self.drain(node);
            } else if let Some((_, i)) = next_timer {
                self.nodes[i].engine.handle(Input::Timer, self.now);
                self.drain(i);
            }
        }
    }

    pub fn is_complete(&self, i: usize) -> bool {
        self.nodes[i]
            .engine
            .stats(self.nodes[i].torrent)
            .is_some_and(|s| s.complete)
    }

    pub fn piece_count(&self) -> u32 {
        self.nodes[0].meta.info.piece_count()
    }
}

impl Default for Swarm {
    fn default() -> Self {
        Swarm::new()
    }
}

/// All pieces verified.
pub fn full_bitfield(meta: &Metainfo) -> shoal_core::bitfield::Bitfield {
    shoal_core::bitfield::Bitfield::full(meta.info.piece_count())
}

pub fn piece(i: u32) -> PieceIndex {
    PieceIndex(i)
}

/// The BitTorrent handshake a shoal peer sends for `info_hash`, as bytes on the wire.
pub fn handshake(info_hash: InfoHash, peer_id: PeerId) -> BytesMut {
    let mut b = BytesMut::new();
    Handshake {
        reserved: Reserved::ours(),
        info_hash,
        peer_id,
    }
    .encode(&mut b);
    b
}
