//! One engine fed bytes by hand: handshakes, routing and hostile input.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quickcheck::quickcheck;
use shoal_core::engine::{
    CloseReason, ConnId, Engine, EngineConfig, Event, Input, Output, TorrentOptions,
};
use shoal_core::metainfo::Metainfo;
use shoal_core::tracker::TrackerError;
use shoal_core::wire::{Handshake, Message};
use shoal_core::{InfoHash, IoError, PeerId, PieceIndex};
use support::{full_bitfield, handshake, make_torrent};

const OUR_ID: PeerId = PeerId(*b"-SH0010-ourselves000");

fn engine(seed: bool) -> (Engine, Arc<Metainfo>, Instant) {
    let (meta, _) = make_torrent(&[("f", 100_000)], 16384);
    let now = Instant::now();
    let mut e = Engine::new(EngineConfig {
        peer_id: OUR_ID,
        ..EngineConfig::default()
    });
    let opts = TorrentOptions {
        verified: seed.then(|| full_bitfield(&meta)),
        ..TorrentOptions::default()
    };
    e.add_torrent(meta.clone(), opts, now).unwrap();
    (e, meta, now)
}

fn addr(n: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], n))
}

fn outputs(e: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| e.poll_output()).collect()
}

fn closed_reason(outs: &[Output], conn: ConnId) -> Option<CloseReason> {
    outs.iter().find_map(|o| match o {
        Output::Event(Event::PeerClosed {
            conn: c, reason, ..
        }) if *c == conn => Some(reason.clone()),
        _ => None,
    })
}

fn connect(
    e: &mut Engine,
    meta: &Metainfo,
    n: u16,
    peer_id: PeerId,
    now: Instant,
) -> (ConnId, Vec<Output>) {
    let conn = e.accept(addr(n), now).unwrap();
    e.handle(
        Input::Received {
            conn,
            data: handshake(meta.info_hash, peer_id),
        },
        now,
    );
    (conn, outputs(e))
}

#[test]
fn an_inbound_peer_is_answered_and_told_what_we_have() {
    let (mut e, meta, now) = engine(true);
    let (conn, outs) = connect(&mut e, &meta, 1, PeerId([7; 20]), now);
    let sent: Vec<u8> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn: c, data } if *c == conn => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut buf = BytesMut::from(&sent[..]);
    let hs = Handshake::decode(&mut buf).unwrap().unwrap();
    assert_eq!(hs.info_hash, meta.info_hash);
    assert_eq!(hs.peer_id, OUR_ID);
    let mut decoder = shoal_core::wire::Decoder::default();
    // A seed that talks the fast extension says so in one message.
    assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Message::HaveAll));
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::PeerConnected { .. }))));
}

#[test]
fn garbage_after_the_handshake_closes_with_a_reason() {
    let (mut e, meta, now) = engine(true);
    let (conn, _) = connect(&mut e, &meta, 1, PeerId([7; 20]), now);
    e.handle(
        Input::Received {
            conn,
            data: BytesMut::from(&[0, 0, 0, 3, 0xee, 1, 2][..]),
        },
        now,
    );
    let outs = outputs(&mut e);
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Close { conn: c } if *c == conn)));
    assert!(
        matches!(closed_reason(&outs, conn), Some(CloseReason::Protocol(_))),
        "{outs:?}"
    );
}

#[test]
fn unknown_torrents_ourselves_and_duplicates_are_refused() {
    let (mut e, meta, now) = engine(false);
    let conn = e.accept(addr(1), now).unwrap();
    e.handle(
        Input::Received {
            conn,
            data: handshake(InfoHash([9; 20]), PeerId([7; 20])),
        },
        now,
    );
    assert_eq!(
        closed_reason(&outputs(&mut e), conn),
        Some(CloseReason::UnknownTorrent)
    );

    let (conn, outs) = connect(&mut e, &meta, 2, OUR_ID, now);
    assert_eq!(
        closed_reason(&outs, conn),
        Some(CloseReason::SelfConnection)
    );

    let (first, outs) = connect(&mut e, &meta, 3, PeerId([5; 20]), now);
    assert_eq!(closed_reason(&outs, first), None);
    let (second, outs) = connect(&mut e, &meta, 4, PeerId([5; 20]), now);
    assert_eq!(closed_reason(&outs, second), Some(CloseReason::Duplicate));
}

#[test]
fn a_silent_connection_times_out() {
    let (mut e, _meta, now) = engine(false);
    let conn = e.accept(addr(1), now).unwrap();
    let mut t = now;
    let mut reason = None;
    for _ in 0..60 {
        t += Duration::from_secs(1);
        if e.poll_timeout().is_some_and(|at| at <= t) {
            e.handle(Input::Timer, t);
        }
        if let Some(r) = closed_reason(&outputs(&mut e), conn) {
            reason = Some(r);
            break;
        }
    }
    assert_eq!(reason, Some(CloseReason::Timeout("handshake")));
}

#[test]
fn requests_from_a_choked_peer_are_rejected_and_have_out_of_range_closes() {
    let (mut e, meta, now) = engine(true);
    let (conn, _) = connect(&mut e, &meta, 1, PeerId([7; 20]), now);
    let block = shoal_core::BlockRequest {
        piece: PieceIndex(0),
        begin: 0,
        length: 16384,
    };
    let mut b = BytesMut::new();
    Message::Request(block).encode(&mut b);
    e.handle(Input::Received { conn, data: b }, now);
    let outs = outputs(&mut e);
    assert!(
        !outs.iter().any(|o| matches!(o, Output::ReadBlock { .. })),
        "served while choked"
    );
    // The peer talks the fast extension (BEP 6): it is told, with a reject of that block.
    let sent: Vec<u8> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn: c, data } if *c == conn => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut buf = BytesMut::from(&sent[..]);
    let mut decoder = shoal_core::wire::Decoder::default();
    let mut messages = Vec::new();
    while let Some(m) = decoder.decode(&mut buf).unwrap() {
        messages.push(m);
    }
    assert_eq!(messages, vec![Message::Reject(block)]);
    let mut b = BytesMut::new();
    Message::Have(PieceIndex(meta.info.piece_count())).encode(&mut b);
    e.handle(Input::Received { conn, data: b }, now);
    assert!(matches!(
        closed_reason(&outputs(&mut e), conn),
        Some(CloseReason::Protocol(_))
    ));
}

quickcheck! {
    fn arbitrary_bytes_never_panic_the_engine(chunks: Vec<Vec<u8>>, after_handshake: bool) -> bool {
        let (mut e, meta, now) = engine(after_handshake);
        let conn = e.accept(addr(1), now).unwrap();
        if after_handshake {
            e.handle(Input::Received { conn, data: handshake(meta.info_hash, PeerId([3; 20])) }, now);
        }
        for c in chunks {
            e.handle(Input::Received { conn, data: BytesMut::from(&c[..]) }, now);
            outputs(&mut e);
        }
        e.handle(Input::Timer, now + Duration::from_secs(5));
        outputs(&mut e);
        true
    }

    fn arbitrary_messages_never_panic_the_engine(messages: Vec<(u8, u32, u32, u32)>, seed: bool) -> bool {
        let (mut e, meta, now) = engine(seed);
        let conn = e.accept(addr(1), now).unwrap();
        e.handle(Input::Received { conn, data: handshake(meta.info_hash, PeerId([3; 20])) }, now);
        let pieces = meta.info.piece_count();
        for (kind, a, b, c) in messages {
            let block = shoal_core::BlockRequest { piece: PieceIndex(a % (pieces + 1)), begin: b % 40_000, length: c % 20_000 + 1 };
            let m = match kind % 12 {
                0 => Message::Choke,
                1 => Message::Unchoke,
                2 => Message::Interested,
                3 => Message::NotInterested,
                4 => Message::Have(block.piece),
                5 => Message::Request(block),
                6 => Message::Cancel(block),
                7 => Message::Reject(block),
                8 => Message::HaveAll,
                9 => Message::HaveNone,
                10 => Message::AllowedFast(block.piece),
                _ => Message::Piece { piece: block.piece, begin: block.begin, data: bytes::Bytes::from(vec![0u8; block.length as usize]) },
            };
            let mut buf = BytesMut::new();
            m.encode(&mut buf);
            e.handle(Input::Received { conn, data: buf }, now);
            outputs(&mut e);
        }
        true
    }
}

fn engine_with_tracker(url: &str) -> (Engine, Arc<Metainfo>, Instant) {
    let mut b = shoal_core::create::TorrentBuilder::single_file("f", 50_000);
    b.piece_length(16384).tracker(url);
    let mut h = b.start().unwrap();
    h.update(&[1u8; 50_000]);
    let meta = Arc::new(Metainfo::parse(&h.finish().unwrap()).unwrap());
    let now = Instant::now();
    let mut e = Engine::new(EngineConfig {
        peer_id: OUR_ID,
        listen_port: 7000,
        ..EngineConfig::default()
    });
    e.add_torrent(meta.clone(), TorrentOptions::default(), now)
        .unwrap();
    (e, meta, now)
}

fn connects(outs: &[Output]) -> Vec<SocketAddr> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Connect { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect()
}

#[test]
fn http_announces_start_then_stop_and_dial_the_peers_they_return() {
    let (mut e, meta, now) = engine_with_tracker("http://127.0.0.1:6969/announce");
    let outs = outputs(&mut e);
    let (torrent, id, request) = outs
        .iter()
        .find_map(|o| match o {
            Output::TrackerHttp {
                torrent,
                id,
                url,
                request,
            } => {
                assert_eq!((url.host(), url.port()), ("127.0.0.1", 6969));
                Some((*torrent, *id, String::from_utf8_lossy(request).into_owned()))
            }
            _ => None,
        })
        .expect("an announce on start");
    assert!(request.starts_with("GET /announce?"), "{request}");
    assert!(
        request.contains("event=started") && request.contains("port=7000"),
        "{request}"
    );
    assert!(request.contains(&format!(
        "info_hash={}",
        shoal_core::tracker::percent_encode(&meta.info_hash.0)
    )));
    // A compact answer with two peers.
    let mut body = b"d8:intervali1800e5:peers12:".to_vec();
    body.extend([127, 0, 0, 1, 0x1b, 0x58, 127, 0, 0, 2, 0x1b, 0x59]);
    body.push(b'e');
    let mut answer =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    answer.extend(body);
    e.handle(
        Input::TrackerHttp {
            torrent,
            id,
            result: Ok(answer),
        },
        now,
    );
    let outs = outputs(&mut e);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Event(Event::TrackerAnswer { peers: 2, .. }))),
        "{outs:?}"
    );
    assert_eq!(
        connects(&outs),
        [
            SocketAddr::from(([127, 0, 0, 1], 7000)),
            SocketAddr::from(([127, 0, 0, 2], 7001))
        ]
    );
    // Removal says `stopped`.
    e.remove_torrent(torrent, now);
    let outs = outputs(&mut e);
    let stopped = outs.iter().any(|o| matches!(o, Output::TrackerHttp { request, .. } if String::from_utf8_lossy(request).contains("event=stopped")));
    assert!(stopped, "{outs:?}");
}

#[test]
fn a_failing_http_tracker_is_reported_and_retried_later() {
    let (mut e, _meta, now) = engine_with_tracker("http://127.0.0.1:6969/announce");
    let outs = outputs(&mut e);
    let (torrent, id) = outs
        .iter()
        .find_map(|o| match o {
            Output::TrackerHttp { torrent, id, .. } => Some((*torrent, *id)),
            _ => None,
        })
        .unwrap();
    e.handle(
        Input::TrackerHttp {
            torrent,
            id,
            result: Err(IoError::new(
                std::io::ErrorKind::ConnectionRefused,
                "http://t/announce: connection refused",
            )),
        },
        now,
    );
    let outs = outputs(&mut e);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::Event(Event::TrackerError {
                failures: 1,
                error: error @ TrackerError::Transport(cause),
                ..
            }) if cause.kind == std::io::ErrorKind::ConnectionRefused
                && error.to_string()
                    == "cannot reach the tracker: http://t/announce: connection refused"
        )),
        "{outs:?}"
    );
    assert!(
        !outs.iter().any(|o| matches!(o, Output::TrackerHttp { .. })),
        "retried at once"
    );
    // The backoff (15 s) passes, one tick at a time.
    let mut t = now;
    let mut retried = false;
    for _ in 0..20 {
        t += Duration::from_secs(1);
        e.handle(Input::Timer, t);
        retried |= outputs(&mut e)
            .iter()
            .any(|o| matches!(o, Output::TrackerHttp { .. }));
    }
    assert!(retried);
}

#[test]
fn udp_announces_connect_then_announce() {
    use shoal_core::tracker::udp::{IpFamily, UdpAnnounceResponse, UdpRequest, UdpResponse};
    let (mut e, _meta, now) = engine_with_tracker("udp://127.0.0.1:6969");
    let tracker = SocketAddr::from(([127, 0, 0, 1], 6969));
    let datagram = |outs: &[Output]| {
        outs.iter()
            .find_map(|o| match o {
                Output::UdpSend { to, data } if *to == tracker => Some(data.clone()),
                _ => None,
            })
            .expect("a datagram to the tracker")
    };
    let connect = UdpRequest::decode(&datagram(&outputs(&mut e))).unwrap();
    let UdpRequest::Connect { transaction_id } = connect else {
        panic!("{connect:?}")
    };
    let reply = UdpResponse::Connect {
        transaction_id,
        connection_id: 0xfeed,
    };
    e.handle(
        Input::UdpReceived {
            from: tracker,
            data: reply.encode(IpFamily::V4),
        },
        now,
    );
    let announce = UdpRequest::decode(&datagram(&outputs(&mut e))).unwrap();
    let UdpRequest::Announce(a) = announce else {
        panic!("{announce:?}")
    };
    assert_eq!(a.connection_id, 0xfeed);
    let reply = UdpResponse::Announce(UdpAnnounceResponse {
        transaction_id: a.transaction_id,
        interval: 1800,
        leechers: 3,
        seeders: 1,
        peers: vec![SocketAddr::from(([127, 0, 0, 9], 7009))],
    });
    // A forged answer from elsewhere is ignored.
    e.handle(
        Input::UdpReceived {
            from: SocketAddr::from(([127, 0, 0, 66], 6969)),
            data: reply.encode(IpFamily::V4),
        },
        now,
    );
    assert!(connects(&outputs(&mut e)).is_empty());
    e.handle(
        Input::UdpReceived {
            from: tracker,
            data: reply.encode(IpFamily::V4),
        },
        now,
    );
    let outs = outputs(&mut e);
    assert_eq!(connects(&outs), [SocketAddr::from(([127, 0, 0, 9], 7009))]);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Event(Event::TrackerAnswer {
            seeders: Some(1),
            leechers: Some(3),
            ..
        })
    )));
}

#[test]
fn an_address_that_keeps_failing_is_dialled_five_times_then_forgotten() {
    let (mut e, _, mut now) = engine(false);
    let id = shoal_core::engine::TorrentId(0);
    e.add_peer(id, addr(7), now);
    let mut dials = 0;
    for _ in 0..20 {
        for out in outputs(&mut e) {
            if let Output::Connect { conn, addr: a } = out {
                assert_eq!(a, addr(7));
                dials += 1;
                e.handle(Input::ConnectFailed { conn }, now);
            }
        }
        // Past the pause before a redial, with the engine's timers run.
        now += e.config().redial_after + Duration::from_secs(1);
        e.handle(Input::Timer, now);
    }
    assert_eq!(dials, 5);
    // Forgotten, so learning it again starts afresh.
    e.add_peer(id, addr(7), now);
    assert_eq!(connects(&outputs(&mut e)), vec![addr(7)]);
}

#[test]
fn a_flood_of_addresses_is_held_to_the_candidate_bound() {
    let (mut e, _, mut now) = engine(false);
    let id = shoal_core::engine::TorrentId(0);
    for i in 0..20_000u32 {
        let a = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881));
        e.add_peer(id, a, now);
    }
    // The first max_peers_per_torrent are dialled; as they fail, the next ones come up
    // at the next second's tick; only the first max_candidates were kept. (The failed
    // ones wait a minute before another try: the loop ends before.)
    let mut dialled = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let conns: Vec<_> = outputs(&mut e)
            .into_iter()
            .filter_map(|o| match o {
                Output::Connect { conn, addr } => Some((conn, addr)),
                _ => None,
            })
            .collect();
        for (conn, a) in conns {
            assert!(dialled.insert(a), "{a} dialled twice");
            e.handle(Input::ConnectFailed { conn }, now);
        }
        now += Duration::from_secs(1);
        e.handle(Input::Timer, now);
    }
    assert_eq!(dialled.len(), e.config().max_candidates);
}

#[test]
fn large_requests_count_at_their_length_against_the_send_buffer() {
    let (meta, _) = make_torrent(&[("f", 4 << 20)], 1 << 20);
    let now = Instant::now();
    let mut e = Engine::new(EngineConfig {
        peer_id: OUR_ID,
        ..EngineConfig::default()
    });
    let opts = TorrentOptions {
        verified: Some(full_bitfield(&meta)),
        ..TorrentOptions::default()
    };
    e.add_torrent(meta.clone(), opts, now).unwrap();
    let (conn, _) = connect(&mut e, &meta, 1, PeerId([7; 20]), now);
    let mut b = BytesMut::new();
    Message::Interested.encode(&mut b);
    e.handle(Input::Received { conn, data: b }, now);
    let unchoked = outputs(&mut e).iter().any(|o| match o {
        Output::Send { conn: c, data } if *c == conn => data[..] == [0, 0, 0, 1, 1],
        _ => false,
    });
    assert!(unchoked, "an interested peer of an idle seed is unchoked");
    let mut b = BytesMut::new();
    for i in 0..16 {
        Message::Request(shoal_core::BlockRequest {
            piece: PieceIndex(i / 8),
            begin: (i % 8) * (128 << 10),
            length: 128 << 10,
        })
        .encode(&mut b);
    }
    e.handle(Input::Received { conn, data: b }, now);
    let reads = outputs(&mut e)
        .iter()
        .filter(|o| matches!(o, Output::ReadBlock { .. }))
        .count();
    let budget = e.config().send_buffer / (128 << 10);
    assert!(reads >= 1, "nothing read");
    assert!(
        reads <= budget,
        "{reads} reads of 128 KiB for a {} byte send buffer",
        e.config().send_buffer
    );
}

#[test]
fn a_peer_that_floods_choked_requests_and_never_reads_is_closed() {
    let (mut e, meta, now) = engine(true);
    let (conn, _) = connect(&mut e, &meta, 1, PeerId([7; 20]), now);
    let limit = 4 * e.config().send_buffer;
    let mut sent = 0;
    let mut reason = None;
    // Requests while choked: each earns a reject (the fast extension); the peer never
    // lets anything be sent (no Input::Sent).
    for round in 0..20_000 {
        let mut b = BytesMut::new();
        for i in 0..100 {
            Message::Request(shoal_core::BlockRequest {
                piece: PieceIndex(0),
                begin: (round * 100 + i) % 16 * 1024,
                length: 1024,
            })
            .encode(&mut b);
        }
        e.handle(Input::Received { conn, data: b }, now);
        let outs = outputs(&mut e);
        sent += outs
            .iter()
            .map(|o| match o {
                Output::Send { conn: c, data } if *c == conn => data.len(),
                _ => 0,
            })
            .sum::<usize>();
        reason = closed_reason(&outs, conn);
        if reason.is_some() {
            break;
        }
    }
    assert!(
        matches!(
            reason,
            Some(CloseReason::Protocol(
                shoal_core::engine::ProtocolError::NotReading { .. }
            ))
        ),
        "{reason:?} after {sent} bytes"
    );
    assert!(sent <= limit + 64 * 1024, "{sent} bytes queued");
}

/// The blocks a leecher asks a seed for, answered in one stream cut at `cuts` into buffers
/// of their own (so no chunk follows the last in memory, as when a runtime starts a new
/// read buffer): every block is written once with its exact bytes, wherever the cuts fall
/// (in a length prefix, a piece header, a block's data), and a block whose message arrived
/// whole in one chunk is written from that chunk's memory, not from a copy (only a message
/// a cut falls in may be copied).
fn blocks_survive_any_cuts(cuts: &[u16]) -> bool {
    let (meta, data) = make_torrent(&[("f", 100_000)], 16384);
    let now = Instant::now();
    let mut e = Engine::new(EngineConfig {
        peer_id: OUR_ID,
        ..EngineConfig::default()
    });
    e.add_torrent(meta.clone(), TorrentOptions::default(), now)
        .unwrap();
    let conn = e.accept(addr(1), now).unwrap();
    let mut hello = handshake(meta.info_hash, PeerId([3; 20]));
    Message::HaveAll.encode(&mut hello);
    Message::Unchoke.encode(&mut hello);
    e.handle(Input::Received { conn, data: hello }, now);
    let mut asked = Vec::new();
    for o in outputs(&mut e) {
        if let Output::Send { data, .. } = o {
            let mut buf = BytesMut::from(&data[..]);
            if buf.starts_with(b"\x13BitTorrent protocol") {
                let _ = buf.split_to(68);
            }
            let mut d = shoal_core::wire::Decoder::default();
            while let Ok(Some(m)) = d.decode(&mut buf) {
                if let Message::Request(b) = m {
                    asked.push(b);
                }
            }
        }
    }
    assert!(!asked.is_empty(), "the leecher asks for blocks");
    let mut stream = BytesMut::new();
    // Where each block's data starts in the stream, after its 13-byte message head.
    let mut data_at = std::collections::BTreeMap::new();
    for b in &asked {
        data_at.insert((b.piece.0, b.begin), stream.len() + 13);
        let at = meta.info.piece_length as usize * b.piece.0 as usize + b.begin as usize;
        Message::Piece {
            piece: b.piece,
            begin: b.begin,
            data: bytes::Bytes::copy_from_slice(&data[at..at + b.length as usize]),
        }
        .encode(&mut stream);
    }
    let mut written = Vec::new();
    // (start, end) in the stream and the address of each chunk handed over.
    let mut chunks = Vec::new();
    let mut at = 0;
    let mut cuts = cuts.iter().map(|&c| 1 + c as usize % 20_000);
    while at < stream.len() {
        let end = (at + cuts.next().unwrap_or(stream.len())).min(stream.len());
        let chunk = BytesMut::from(&stream[at..end]);
        chunks.push((at, end, chunk.as_ptr() as usize));
        at = end;
        e.handle(Input::Received { conn, data: chunk }, now);
        for o in outputs(&mut e) {
            match o {
                Output::WriteBlock { block, data: d, .. } => written.push((block, d)),
                Output::Close { .. } => panic!("closed"),
                _ => {}
            }
        }
    }
    written.sort_by_key(|(b, _)| (b.piece.0, b.begin));
    asked.sort_by_key(|b| (b.piece.0, b.begin));
    for (b, d) in &written {
        let o = data_at[&(b.piece.0, b.begin)];
        // The whole message, from its length prefix, in one chunk.
        let whole_in = chunks
            .iter()
            .find(|&&(start, end, _)| start + 13 <= o && o + d.len() <= end);
        if let Some(&(start, _, ptr)) = whole_in {
            assert_eq!(
                d.as_ptr() as usize,
                ptr + (o - start),
                "{b:?} came whole in one chunk but was copied"
            );
        }
    }
    written.len() == asked.len()
        && written.iter().zip(&asked).all(|((b, d), a)| {
            let at = meta.info.piece_length as usize * a.piece.0 as usize + a.begin as usize;
            b == a && d[..] == data[at..at + a.length as usize]
        })
}

quickcheck! {
    fn blocks_cut_anywhere_into_separate_buffers_arrive_exactly(cuts: Vec<u16>) -> bool {
        blocks_survive_any_cuts(&cuts)
    }
}

#[test]
fn blocks_cut_inside_prefixes_headers_and_data_arrive_exactly() {
    // Cuts of 1, 3 and 5 bytes land in length prefixes and piece headers; 16,000 in data.
    assert!(blocks_survive_any_cuts(&[0, 2, 4, 15_999, 1, 12, 8_000, 3]));
    assert!(blocks_survive_any_cuts(&[16_388, 16_389, 5, 16_380]));
}
