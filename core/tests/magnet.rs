//! A torrent added from a magnet link (BEP 9, fetching side): the engine fetches the
//! metadata from its peers, checks it against the info-hash, drops peers that lie, and
//! then downloads in place, keeping its connections and what they said they have.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use shoal_core::engine::{
    CloseReason, ConnId, Engine, EngineConfig, Event, Input, Output, TorrentId, TorrentOptions,
};
use shoal_core::magnet::Magnet;
use shoal_core::metadata::{MetadataMessage, PIECE_SIZE};
use shoal_core::metainfo::Metainfo;
use shoal_core::wire::{Decoder, DecoderConfig, ExtendedHandshake, Handshake, Message};
use shoal_core::PeerId;
use smallvec::smallvec;
use support::{handshake, make_torrent, Swarm};

#[test]
fn a_magnet_node_fetches_the_metadata_and_downloads_from_two_seeds() {
    let (meta, data) = make_torrent(&[("a", 3_000_000), ("b", 11_000_001)], 16384);
    assert!(
        meta.info_bytes.len() > PIECE_SIZE as usize,
        "several metadata pieces"
    );
    let mut swarm = Swarm::new();
    let s1 = swarm.add_seed(&meta, &data, 50_000_000, 1);
    let s2 = swarm.add_seed(&meta, &data, 50_000_000, 1);
    let m = swarm.add_magnet_node(&meta, 50_000_000, 1);
    assert!(swarm.nodes[m]
        .engine
        .stats(swarm.nodes[m].torrent)
        .is_none());
    swarm.introduce(m, s1);
    swarm.introduce(m, s2);
    assert!(swarm.run_until(Duration::from_secs(120), |s| s.is_complete(m)));
    assert_eq!(swarm.nodes[m].data, data);
    let got: Vec<&Arc<Metainfo>> = swarm.nodes[m]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::MetadataReceived { meta, .. } => Some(meta),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].info_bytes, meta.info_bytes);
    // Both seeds stayed connected across the switch: no connection was lost to it, and
    // both sent blocks (their bitfields, sent before the metadata, were kept).
    assert!(swarm.nodes[s1].sent_payload > 0 && swarm.nodes[s2].sent_payload > 0);
    let closed_early = swarm.nodes[m].events.iter().any(
        |e| matches!(e, Event::PeerClosed { reason, .. } if *reason != CloseReason::BothSeeds),
    );
    assert!(!closed_early, "{:?}", swarm.nodes[m].events);
}

#[test]
fn magnet_nodes_get_the_metadata_from_each_other_then_the_payload() {
    // A seed and a chain of magnet nodes: the last one can only hear of the torrent from
    // the node before it, which itself started from a magnet link.
    let (meta, data) = make_torrent(&[("f", 400_000)], 16384);
    let mut swarm = Swarm::new();
    let seed = swarm.add_seed(&meta, &data, 2_000_000, 7);
    let a = swarm.add_magnet_node(&meta, 2_000_000, 7);
    let b = swarm.add_magnet_node(&meta, 2_000_000, 7);
    swarm.introduce(a, seed);
    assert!(swarm.run_until(Duration::from_secs(60), |s| s.is_complete(a)));
    swarm.introduce(b, a);
    assert!(swarm.run_until(Duration::from_secs(120), |s| s.is_complete(b)));
    assert_eq!(swarm.nodes[b].data, data);
}

// ------------------------------------------------------------------ peers fed by hand

/// The id the hand-made peers want ut_metadata messages under.
const THEIR_ID: u8 = 3;

struct Bench {
    e: Engine,
    id: TorrentId,
    meta: Arc<Metainfo>,
    now: Instant,
    outs: Vec<Output>,
}

impl Bench {
    /// An engine with a magnet link's torrent whose metadata is three pieces.
    fn new() -> Bench {
        Bench::with_web_seeds(&[])
    }

    /// [`Bench::new`], the link naming web seeds (`ws=`).
    fn with_web_seeds(web_seeds: &[&str]) -> Bench {
        let (meta, _) = make_torrent(&[("f", 2000 * 16384)], 16384);
        assert_eq!(meta.info_bytes.len().div_ceil(PIECE_SIZE as usize), 3);
        let now = Instant::now();
        let mut e = Engine::new(EngineConfig {
            peer_id: PeerId(*b"-SH0010-ourselves000"),
            ..EngineConfig::default()
        });
        let mut magnet = Magnet::new(meta.info_hash);
        magnet.web_seeds = web_seeds.iter().map(|s| s.to_string()).collect();
        let id = e.add_magnet(&magnet, now);
        Bench {
            e,
            id,
            meta,
            now,
            outs: Vec::new(),
        }
    }

    fn drain(&mut self) {
        self.outs
            .extend(std::iter::from_fn(|| self.e.poll_output()));
    }

    fn feed(&mut self, conn: ConnId, messages: &[Message]) {
        let mut data = BytesMut::new();
        for m in messages {
            m.encode(&mut data);
        }
        self.e.handle(Input::Received { conn, data }, self.now);
        self.drain();
    }

    /// A peer connects (fast and BEP 10 bits set) and sends its extended handshake with
    /// `size` as its metadata size.
    fn peer(&mut self, n: u8, size: Option<u64>) -> ConnId {
        let conn = self
            .e
            .accept(SocketAddr::from(([192, 0, 2, n], 6881)), self.now)
            .unwrap();
        let data = handshake(self.meta.info_hash, PeerId([n; 20]));
        self.e.handle(Input::Received { conn, data }, self.now);
        let hs = ExtendedHandshake {
            extensions: smallvec![("ut_metadata".to_owned(), THEIR_ID)],
            metadata_size: size,
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

    /// The ut_metadata requests sent to `conn` since the last look, and whether it was
    /// closed (and why).
    fn look(&mut self, conn: ConnId) -> (Vec<u32>, Option<CloseReason>) {
        let mut bytes = Vec::new();
        let mut closed = None;
        for o in self.outs.drain(..) {
            match o {
                Output::Send { conn: c, data } if c == conn => bytes.extend_from_slice(&data),
                Output::Event(Event::PeerClosed {
                    conn: c, reason, ..
                }) if c == conn => closed = Some(reason),
                _ => {}
            }
        }
        let mut buf = BytesMut::from(&bytes[..]);
        if buf.len() >= 68 && buf[0] == 19 {
            Handshake::decode(&mut buf).unwrap().unwrap();
        }
        let mut decoder = Decoder::new(DecoderConfig::default());
        let asked = std::iter::from_fn(|| decoder.decode(&mut buf).unwrap())
            .filter_map(|m| match m {
                Message::Extended {
                    id: THEIR_ID,
                    payload,
                } => match MetadataMessage::decode(&payload).unwrap() {
                    MetadataMessage::Request { piece } => Some(piece),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        (asked, closed)
    }

    fn data(&self, piece: u32, total_size: u64, bytes: &[u8]) -> Message {
        Message::Extended {
            id: 1,
            payload: MetadataMessage::Data {
                piece,
                total_size,
                data: Bytes::copy_from_slice(bytes),
            }
            .encode(),
        }
    }

    fn honest(&self, piece: u32) -> Message {
        let info = &self.meta.info_bytes;
        let start = piece as usize * PIECE_SIZE as usize;
        let end = (start + PIECE_SIZE as usize).min(info.len());
        self.data(piece, info.len() as u64, &info[start..end])
    }

    fn received(&self) -> Option<Arc<Metainfo>> {
        self.outs.iter().find_map(|o| match o {
            Output::Event(Event::MetadataReceived { meta, .. }) => Some(meta.clone()),
            _ => None,
        })
    }
}

#[test]
fn liars_are_dropped_and_an_honest_peer_gives_the_right_metadata() {
    let mut b = Bench::new();
    let size = b.meta.info_bytes.len() as u64;
    // 4 GB announced: never asked, but kept (it may still have the payload).
    let huge = b.peer(1, Some(4 << 30));
    let (asked, closed) = b.look(huge);
    assert!(asked.is_empty() && closed.is_none());
    // Wrong bytes of the right lengths, all from one peer: dropped at the hash check.
    let liar = b.peer(2, Some(size));
    let (asked, _) = b.look(liar);
    assert_eq!(asked.len(), 3);
    for piece in asked {
        let len = (size - u64::from(piece) * u64::from(PIECE_SIZE)).min(u64::from(PIECE_SIZE));
        let m = b.data(piece, size, &vec![b'x'; len as usize]);
        b.feed(liar, &[m]);
    }
    assert_eq!(b.look(liar).1, Some(CloseReason::BadMetadata));
    // A piece it was not asked for, out of range: ignored. A data message longer than a
    // metadata piece: closed.
    let wild = b.peer(3, Some(size));
    let (asked, _) = b.look(wild);
    assert_eq!(asked.len(), 3);
    let m = b.data(99, size, b"zz");
    b.feed(wild, &[m]);
    assert_eq!(b.look(wild).1, None);
    let m = b.data(0, size, &vec![0; PIECE_SIZE as usize + 1]);
    b.feed(wild, &[m]);
    assert_eq!(b.look(wild).1, Some(CloseReason::BadMetadata));
    // A peer whose data contradicts its own handshake's size.
    let short = b.peer(4, Some(size));
    let (asked, _) = b.look(short);
    let m = b.data(asked[0], size + 1, b"y");
    b.feed(short, &[m]);
    assert_eq!(b.look(short).1, Some(CloseReason::BadMetadata));
    assert!(b.received().is_none());
    // A reject sidelines a peer; the honest one then gives it all.
    let shy = b.peer(5, Some(size));
    let (asked, _) = b.look(shy);
    assert_eq!(asked.len(), 3);
    let rejects: Vec<Message> = asked
        .iter()
        .map(|&piece| Message::Extended {
            id: 1,
            payload: MetadataMessage::Reject { piece }.encode(),
        })
        .collect();
    b.feed(shy, &rejects);
    assert_eq!(b.look(shy).1, None, "a reject is no reason to close");
    let honest = b.peer(6, Some(size));
    let mut asked = b.look(honest).0;
    while let Some(piece) = asked.pop() {
        let m = b.honest(piece);
        b.feed(honest, &[m]);
        if b.received().is_some() {
            break;
        }
        asked.extend(b.look(honest).0);
    }
    let got = b.received().expect("the metadata");
    assert_eq!(got.info_bytes, b.meta.info_bytes);
    assert_eq!(got.info_hash, b.meta.info_hash);
    assert!(b.e.stats(b.id).is_none(), "not attached yet");
}

#[test]
fn what_peers_have_before_the_metadata_is_kept_and_checked_after() {
    let mut b = Bench::new();
    let size = b.meta.info_bytes.len() as u64;
    let pieces = b.meta.info.piece_count();
    // A peer with a bitfield of the right size, sent before we know the size.
    let good = b.peer(1, Some(size));
    let mut asked = b.look(good).0;
    assert_eq!(asked.len(), 3);
    let mut field = vec![0u8; pieces.div_ceil(8) as usize];
    field[0] = 0b1000_0000;
    b.feed(
        good,
        &[Message::Bitfield(Bytes::from(field)), Message::Unchoke],
    );
    // One with a bitfield too long for the torrent, and one with a have past the end.
    let long = b.peer(2, None);
    b.feed(long, &[Message::Bitfield(Bytes::from(vec![0xff; 2000]))]);
    let far = b.peer(3, None);
    b.feed(far, &[Message::Have(shoal_core::PieceIndex(pieces + 5))]);
    // A flood of haves is bounded.
    let flood = b.peer(4, None);
    let haves: Vec<Message> = (0..=shoal_core::engine::MAX_EARLY_HAVES as u32)
        .map(|i| Message::Have(shoal_core::PieceIndex(i % pieces)))
        .collect();
    b.feed(flood, &haves);
    assert!(matches!(b.look(flood).1, Some(CloseReason::Protocol(_))));
    // The metadata from the first.
    while let Some(piece) = asked.pop() {
        let m = b.honest(piece);
        b.feed(good, &[m]);
    }
    assert!(b.received().is_some());
    b.e.attach_metainfo(b.id, TorrentOptions::default(), b.now)
        .unwrap();
    b.drain();
    let outs = std::mem::take(&mut b.outs);
    let closed = |conn: ConnId| {
        outs.iter().find_map(|o| match o {
            Output::Event(Event::PeerClosed {
                conn: c, reason, ..
            }) if *c == conn => Some(reason.clone()),
            _ => None,
        })
    };
    assert!(matches!(closed(long), Some(CloseReason::Protocol(_))));
    assert!(matches!(closed(far), Some(CloseReason::Protocol(_))));
    assert_eq!(closed(good), None);
    // The good peer: interested, and asked for blocks of piece 0, the one it has.
    let mut bytes = Vec::new();
    for o in &outs {
        if let Output::Send { conn, data } = o {
            if *conn == good {
                bytes.extend_from_slice(data);
            }
        }
    }
    let mut buf = BytesMut::from(&bytes[..]);
    let mut decoder = Decoder::new(DecoderConfig::default());
    decoder.set_piece_count(pieces);
    let sent: Vec<Message> = std::iter::from_fn(|| decoder.decode(&mut buf).unwrap()).collect();
    assert!(sent.contains(&Message::Interested), "{sent:?}");
    let requests: Vec<_> = sent
        .iter()
        .filter_map(|m| match m {
            Message::Request(r) => Some(r.piece.0),
            _ => None,
        })
        .collect();
    assert!(
        !requests.is_empty() && requests.iter().all(|&p| p == 0),
        "{sent:?}"
    );
    let stats = b.e.stats(b.id).unwrap();
    assert_eq!(stats.piece_count, pieces);
    assert!(b.e.fetching(b.id).is_none());
}

#[test]
fn a_magnet_torrent_can_be_removed_while_fetching() {
    let mut b = Bench::new();
    let conn = b.peer(1, Some(b.meta.info_bytes.len() as u64));
    assert_eq!(b.e.fetching(b.id).unwrap().peers, 1);
    assert!(b.e.remove_torrent(b.id, b.now).is_none());
    b.drain();
    assert_eq!(b.look(conn).1, Some(CloseReason::TorrentRemoved));
    assert!(b.e.fetching(b.id).is_none());
    // It can be added again.
    let again = b.e.add_magnet(&Magnet::new(b.meta.info_hash), b.now);
    assert_ne!(again, b.id);
    assert!(b.e.fetching(again).is_some());
}

#[test]
fn the_links_web_seeds_serve_once_the_metadata_is_in() {
    let mut b = Bench::with_web_seeds(&["http://192.0.2.80/files/"]);
    let size = b.meta.info_bytes.len() as u64;
    let peer = b.peer(1, Some(size));
    let mut asked = b.look(peer).0;
    while let Some(piece) = asked.pop() {
        let m = b.honest(piece);
        b.feed(peer, &[m]);
    }
    let meta = b.received().expect("the metadata");
    assert_eq!(meta.url_list, vec!["http://192.0.2.80/files/".to_string()]);
    // No web seed request before the metadata is attached, one after.
    assert!(!b
        .outs
        .iter()
        .any(|o| matches!(o, Output::WebSeedRequest { .. })));
    b.e.attach_metainfo(b.id, TorrentOptions::default(), b.now)
        .unwrap();
    b.drain();
    let urls: Vec<String> = b
        .outs
        .iter()
        .filter_map(|o| match o {
            Output::WebSeedRequest { url, .. } => Some(url.as_str().to_string()),
            _ => None,
        })
        .collect();
    assert!(
        !urls.is_empty()
            && urls
                .iter()
                .all(|u| u.starts_with("http://192.0.2.80/files/")),
        "{urls:?}"
    );
}
