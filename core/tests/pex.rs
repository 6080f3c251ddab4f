//! Peer exchange (BEP 11) in the engine: a node learns a peer only through another's
//! `ut_pex` and downloads from it; a private torrent never speaks PEX; hostile PEX
//! messages (thousands of peers, malformed lists, a flood, our own address) cost a
//! bounded amount and break nothing.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use shoal_core::engine::{CloseReason, ConnId, Engine, EngineConfig, Event, Input, Output};
use shoal_core::metainfo::Metainfo;
use shoal_core::pex::{PexFlags, PexMessage, PexPeer};
use shoal_core::wire::{ExtendedHandshake, Message};
use shoal_core::PeerId;
use smallvec::smallvec;
use support::{handshake, make_torrent, Swarm};

/// The same torrent with `private` set (its info bytes, and so its info-hash, change).
fn private(meta: &Metainfo) -> Arc<Metainfo> {
    let mut info = meta.info_bytes.clone();
    let at = info.len() - 1;
    info.splice(at..at, b"7:privatei1e".iter().copied());
    Arc::new(Metainfo::from_info_bytes(&info).unwrap())
}

/// A seed, a leecher that knows the seed, and a leecher that knows only the first
/// leecher. Returns whether the last one connected to the seed, and completed.
fn third_party(meta: &Arc<Metainfo>, data: &[u8]) -> (bool, bool) {
    let mut swarm = Swarm::new();
    // A slow seed: the first leecher is still downloading (still connected to the seed)
    // when the second one comes.
    let seed = swarm.add_seed(meta, data, 200_000, 3);
    let a = swarm.add_node(meta, vec![0; data.len()], None, 1_000_000, 3, |_| {});
    let b = swarm.add_node(meta, vec![0; data.len()], None, 1_000_000, 3, |_| {});
    swarm.introduce(a, seed);
    swarm.run_until(Duration::from_secs(1), |_| false);
    assert!(!swarm.is_complete(a));
    swarm.introduce(b, a);
    // Either end may have dialled (the seed hears of the newcomer by PEX too).
    let seed_ip = swarm.nodes[seed].addr.ip();
    let met = |s: &Swarm| {
        s.nodes[b]
            .events
            .iter()
            .any(|e| matches!(e, Event::PeerConnected { addr, .. } if addr.ip() == seed_ip))
    };
    let done = swarm.run_until(Duration::from_secs(120), |s| met(s) && s.is_complete(b));
    (met(&swarm), done && swarm.nodes[b].data == data)
}

#[test]
fn a_peer_learned_only_through_pex_is_dialled_and_serves() {
    let (meta, data) = make_torrent(&[("f", 2_000_000)], 32768);
    assert_eq!(third_party(&meta, &data), (true, true));
}

#[test]
fn a_private_torrent_never_uses_pex() {
    let (meta, data) = make_torrent(&[("f", 2_000_000)], 32768);
    let meta = private(&meta);
    assert!(meta.info.private);
    let (met, _) = third_party(&meta, &data);
    assert!(!met, "a private torrent's peer was found through PEX");
}

// ------------------------------------------------------------------ peers fed by hand

const THEIR_PEX: u8 = 9;

struct Bench {
    e: Engine,
    meta: Arc<Metainfo>,
    now: Instant,
}

impl Bench {
    fn new() -> Bench {
        let (meta, _) = make_torrent(&[("f", 1_000_000)], 32768);
        let now = Instant::now();
        let mut e = Engine::new(EngineConfig {
            peer_id: PeerId(*b"-SH0010-ourselves000"),
            ..EngineConfig::default()
        });
        e.add_torrent(meta.clone(), Default::default(), now)
            .unwrap();
        let _: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
        Bench { e, meta, now }
    }

    fn outs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.e.poll_output()).collect()
    }

    fn feed(&mut self, conn: ConnId, messages: &[Message]) -> Vec<Output> {
        let mut data = BytesMut::new();
        for m in messages {
            m.encode(&mut data);
        }
        self.e.handle(Input::Received { conn, data }, self.now);
        self.outs()
    }

    /// An inbound peer that offers ut_pex.
    fn peer(&mut self) -> ConnId {
        let conn = self
            .e
            .accept(SocketAddr::from(([192, 0, 2, 1], 50000)), self.now)
            .unwrap();
        let data = handshake(self.meta.info_hash, PeerId([1; 20]));
        self.e.handle(Input::Received { conn, data }, self.now);
        let hs = ExtendedHandshake {
            extensions: smallvec![("ut_pex".to_owned(), THEIR_PEX)],
            listen_port: Some(6881),
            ..ExtendedHandshake::default()
        };
        self.feed(
            conn,
            &[Message::Extended {
                id: 0,
                payload: hs.encode(),
            }],
        );
        conn
    }

    fn tick(&mut self, by: Duration) -> Vec<Output> {
        self.now += by;
        self.e.handle(Input::Timer, self.now);
        self.outs()
    }
}

fn pex(payload: Bytes) -> Message {
    Message::Extended { id: 2, payload }
}

fn connects(outs: &[Output]) -> Vec<SocketAddr> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Connect { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect()
}

fn closed(outs: &[Output], conn: ConnId) -> Option<CloseReason> {
    outs.iter().find_map(|o| match o {
        Output::Event(Event::PeerClosed {
            conn: c, reason, ..
        }) if *c == conn => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn thousands_of_peers_in_one_message_are_bounded_and_dialled_within_limits() {
    let mut b = Bench::new();
    let conn = b.peer();
    let added = (0..5000u32)
        .map(|i| PexPeer {
            addr: SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881)),
            flags: PexFlags(PexFlags::CONNECTABLE),
        })
        .collect();
    let outs = b.feed(
        conn,
        &[pex(PexMessage {
            added,
            dropped: vec![],
        }
        .encode())],
    );
    let dialled = connects(&outs);
    let limit = b.e.config().max_peers_per_torrent;
    assert_eq!(dialled.len(), limit - 1, "one slot is the PEX peer's own");
    assert_eq!(closed(&outs, conn), None);
    // A second message within the minute is ignored, whatever it says.
    let more = PexMessage {
        added: vec![PexPeer {
            addr: "10.9.9.9:6881".parse().unwrap(),
            flags: PexFlags(0),
        }],
        dropped: vec![],
    };
    let outs = b.feed(conn, &[pex(more.encode())]);
    assert!(connects(&outs).is_empty() && closed(&outs, conn).is_none());
}

#[test]
fn malformed_pex_is_ignored_and_the_connection_kept() {
    let mut b = Bench::new();
    let conn = b.peer();
    for garbage in [
        &b"d5:added5:12345e"[..], // not a whole entry
        b"d5:addedi3ee",          // not a string
        b"l1:xe",                 // not a dictionary
        b"d5:added6:",            // cut short
        b"\xff\xff\xff",
    ] {
        let outs = b.feed(conn, &[pex(Bytes::from_static(garbage))]);
        assert!(connects(&outs).is_empty(), "{garbage:?}");
        assert_eq!(closed(&outs, conn), None, "{garbage:?}");
        b.now += Duration::from_secs(61);
    }
}

#[test]
fn our_own_address_is_dialled_once_at_most() {
    let mut b = Bench::new();
    let conn = b.peer();
    let ours: SocketAddr = "10.1.1.1:6881".parse().unwrap();
    let outs = b.feed(
        conn,
        &[pex(PexMessage {
            added: vec![PexPeer {
                addr: ours,
                flags: PexFlags(0),
            }],
            dropped: vec![],
        }
        .encode())],
    );
    let dial = outs
        .iter()
        .find_map(|o| match o {
            Output::Connect { conn, addr } if *addr == ours => Some(*conn),
            _ => None,
        })
        .expect("dialled");
    // It answers with our own peer id: that was us.
    b.e.handle(Input::Connected { conn: dial }, b.now);
    let _ = b.outs();
    let data = handshake(b.meta.info_hash, PeerId(*b"-SH0010-ourselves000"));
    b.e.handle(Input::Received { conn: dial, data }, b.now);
    let outs = b.outs();
    assert_eq!(closed(&outs, dial), Some(CloseReason::SelfConnection));
    // Never again, however long we wait.
    for _ in 0..10 {
        let outs = b.tick(Duration::from_secs(60));
        assert!(!connects(&outs).contains(&ours));
    }
}

#[test]
fn we_tell_a_pex_peer_of_the_others_once_a_minute_at_most() {
    let mut b = Bench::new();
    let conn = b.peer();
    // Two outbound peers, connected.
    for port in [7001u16, 7002] {
        b.e.add_peer(
            shoal_core::engine::TorrentId(0),
            SocketAddr::from(([10, 0, 0, 7], port)),
            b.now,
        );
    }
    let dials: Vec<ConnId> = b
        .outs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Connect { conn, .. } => Some(conn),
            _ => None,
        })
        .collect();
    for (i, d) in dials.iter().enumerate() {
        b.e.handle(Input::Connected { conn: *d }, b.now);
        let data = handshake(b.meta.info_hash, PeerId([10 + i as u8; 20]));
        b.e.handle(Input::Received { conn: *d, data }, b.now);
    }
    let _ = b.outs();
    // The second is a seed: its bitfield says so before anyone is told of it.
    let pieces = b.meta.info.piece_count();
    let mut full = vec![0xffu8; pieces.div_ceil(8) as usize];
    if !pieces.is_multiple_of(8) {
        *full.last_mut().unwrap() = 0xffu8 << (8 - pieces % 8);
    }
    b.feed(dials[1], &[Message::Bitfield(Bytes::from(full))]);
    let told = |outs: &[Output]| -> Vec<PexMessage> {
        let mut bytes = Vec::new();
        for o in outs {
            if let Output::Send { conn: c, data } = o {
                if *c == conn {
                    bytes.extend_from_slice(data);
                }
            }
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let mut d = shoal_core::wire::Decoder::new(Default::default());
        std::iter::from_fn(|| d.decode(&mut buf).unwrap())
            .filter_map(|m| match m {
                Message::Extended {
                    id: THEIR_PEX,
                    payload,
                } => PexMessage::decode(&payload).ok(),
                _ => None,
            })
            .collect()
    };
    let first = told(&b.tick(Duration::from_secs(1)));
    assert_eq!(first.len(), 1);
    let mut addrs: Vec<SocketAddr> = first[0].added.iter().map(|p| p.addr).collect();
    addrs.sort();
    assert_eq!(
        addrs,
        vec![
            "10.0.0.7:7001".parse().unwrap(),
            "10.0.0.7:7002".parse().unwrap()
        ],
        "the others, not itself"
    );
    assert!(first[0]
        .added
        .iter()
        .all(|p| p.flags.has(PexFlags::CONNECTABLE)));
    let seeds: Vec<SocketAddr> = first[0]
        .added
        .iter()
        .filter(|p| p.flags.has(PexFlags::SEED))
        .map(|p| p.addr)
        .collect();
    assert_eq!(seeds, vec!["10.0.0.7:7002".parse::<SocketAddr>().unwrap()]);
    // One leaves: said within the next minute, not before.
    b.e.handle(Input::Closed { conn: dials[0] }, b.now);
    let mut later = Vec::new();
    for _ in 0..59 {
        later.extend(told(&b.tick(Duration::from_secs(1))));
    }
    assert!(later.is_empty(), "{later:?}");
    let last = told(&b.tick(Duration::from_secs(2)));
    assert_eq!(last.len(), 1);
    assert_eq!(
        last[0].dropped,
        vec!["10.0.0.7:7001".parse::<SocketAddr>().unwrap()]
    );
}
