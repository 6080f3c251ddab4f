//! The engine serves its torrent's metadata (BEP 9): the extended handshake announces
//! `ut_metadata` and `metadata_size`, requests are answered from the torrent's own `info`
//! bytes, and a flood of requests is bounded.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use shoal_core::engine::{ConnId, Engine, EngineConfig, Input, Output, TorrentOptions};
use shoal_core::metadata::{MetadataMessage, PIECE_SIZE};
use shoal_core::metainfo::Metainfo;
use shoal_core::wire::{Decoder, DecoderConfig, ExtendedHandshake, Handshake, Message};
use shoal_core::PeerId;
use smallvec::smallvec;
use support::{full_bitfield, make_torrent};

/// The id the test peer wants ut_metadata messages under.
const THEIR_ID: u8 = 7;

/// A torrent whose metadata is four metadata pieces (2,500 piece hashes), with a seed
/// (`seed`) or an empty download.
fn engine(seed: bool, private: bool) -> (Engine, Arc<Metainfo>, Instant) {
    let (meta, _) = make_torrent(&[("f", 2500 * 16384)], 16384);
    let meta = if private {
        // The same torrent with `private` set: its info bytes change, so parse them anew.
        let mut info = meta.info_bytes.clone();
        let at = info.len() - 1;
        info.splice(at..at, b"7:privatei1e".iter().copied());
        Arc::new(Metainfo::from_info_bytes(&info).unwrap())
    } else {
        meta
    };
    assert!(meta.info_bytes.len() > 2 * PIECE_SIZE as usize);
    let now = Instant::now();
    let mut e = Engine::new(EngineConfig {
        peer_id: PeerId(*b"-SH0010-ourselves000"),
        ..EngineConfig::default()
    });
    let opts = TorrentOptions {
        verified: seed.then(|| full_bitfield(&meta)),
        ..TorrentOptions::default()
    };
    e.add_torrent(meta.clone(), opts, now).unwrap();
    (e, meta, now)
}

fn send(e: &mut Engine, conn: ConnId, messages: &[Message], now: Instant) {
    let mut data = BytesMut::new();
    for m in messages {
        m.encode(&mut data);
    }
    e.handle(Input::Received { conn, data }, now);
}

/// Everything the engine sent `conn`, decoded (after its handshake, if `handshake`).
fn sent(e: &mut Engine, conn: ConnId, handshake: bool) -> Vec<Message> {
    let bytes: Vec<u8> = std::iter::from_fn(|| e.poll_output())
        .filter_map(|o| match o {
            Output::Send { conn: c, data } if c == conn => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut buf = BytesMut::from(&bytes[..]);
    if handshake {
        Handshake::decode(&mut buf).unwrap().unwrap();
    }
    let mut decoder = Decoder::new(DecoderConfig::default());
    decoder.set_piece_count(2500);
    std::iter::from_fn(|| decoder.decode(&mut buf).unwrap()).collect()
}

/// Accepts a peer and hands the engine its handshake (BEP 10 bit set).
fn accept_peer(e: &mut Engine, meta: &Metainfo, now: Instant) -> ConnId {
    let conn = e
        .accept(SocketAddr::from(([192, 0, 2, 1], 6881)), now)
        .unwrap();
    let mut data = BytesMut::new();
    Handshake::new(meta.info_hash, PeerId([9; 20])).encode(&mut data);
    e.handle(Input::Received { conn, data }, now);
    conn
}

/// Connects a peer that speaks BEP 10 and announces ut_metadata; returns our extended
/// handshake.
fn connect(e: &mut Engine, meta: &Metainfo, now: Instant) -> (ConnId, ExtendedHandshake) {
    let conn = accept_peer(e, meta, now);
    let ours = sent(e, conn, true)
        .into_iter()
        .find_map(|m| match m {
            Message::Extended { id: 0, payload } => ExtendedHandshake::decode(&payload).ok(),
            _ => None,
        })
        .expect("an extended handshake");
    let theirs = ExtendedHandshake {
        extensions: smallvec![("ut_metadata".to_owned(), THEIR_ID)],
        ..ExtendedHandshake::default()
    };
    send(
        e,
        conn,
        &[Message::Extended {
            id: 0,
            payload: theirs.encode(),
        }],
        now,
    );
    let _ = sent(e, conn, false);
    (conn, ours)
}

fn request(ours: &ExtendedHandshake, piece: u32) -> Message {
    Message::Extended {
        id: ours.extension_id("ut_metadata").unwrap(),
        payload: MetadataMessage::Request { piece }.encode(),
    }
}

/// The ut_metadata messages among `messages`, decoded.
fn metadata_replies(messages: Vec<Message>) -> Vec<MetadataMessage> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            Message::Extended { id, payload } => {
                assert_eq!(id, THEIR_ID, "sent under the peer's id");
                Some(MetadataMessage::decode(&payload).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn serves_its_metadata(seed: bool, private: bool) {
    let (mut e, meta, now) = engine(seed, private);
    assert_eq!(meta.info.private, private);
    let (conn, ours) = connect(&mut e, &meta, now);
    assert!(ours.extension_id("ut_metadata").is_some());
    assert_eq!(ours.metadata_size, Some(meta.info_bytes.len() as u64));
    let pieces = meta.info_bytes.len().div_ceil(PIECE_SIZE as usize) as u32;
    let asked: Vec<Message> = (0..=pieces).rev().map(|p| request(&ours, p)).collect();
    send(&mut e, conn, &asked, now);
    let replies = metadata_replies(sent(&mut e, conn, false));
    assert_eq!(replies.len() as u32, pieces + 1);
    assert_eq!(replies[0], MetadataMessage::Reject { piece: pieces });
    let mut got = Vec::new();
    for (reply, piece) in replies[1..].iter().rev().zip(0..) {
        match reply {
            MetadataMessage::Data {
                piece: p,
                total_size,
                data,
            } => {
                assert_eq!(*p, piece);
                assert_eq!(*total_size, meta.info_bytes.len() as u64);
                got.extend_from_slice(data);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, meta.info_bytes);
}

#[test]
fn a_seed_serves_its_metadata() {
    serves_its_metadata(true, false);
}

#[test]
fn a_downloader_serves_its_metadata_too() {
    serves_its_metadata(false, false);
}

#[test]
fn a_private_torrent_serves_its_metadata() {
    serves_its_metadata(true, true);
}

#[test]
fn a_flood_of_requests_is_rejected_past_the_budget() {
    let (mut e, meta, now) = engine(true, false);
    let (conn, ours) = connect(&mut e, &meta, now);
    let mut data = 0;
    let mut rejects = 0;
    for _ in 0..20 {
        let asked: Vec<Message> = (0..10).map(|_| request(&ours, 0)).collect();
        send(&mut e, conn, &asked, now);
        for reply in metadata_replies(sent(&mut e, conn, false)) {
            match reply {
                MetadataMessage::Data { .. } => data += 1,
                MetadataMessage::Reject { .. } => rejects += 1,
                MetadataMessage::Request { .. } => panic!("we asked for something"),
            }
        }
    }
    // Twice the piece count plus eight answered, the rest rejected.
    let pieces = meta.info_bytes.len().div_ceil(PIECE_SIZE as usize);
    assert_eq!(data, 2 * pieces + 8);
    assert_eq!(rejects, 200 - data);
}

#[test]
fn a_peer_without_ut_metadata_or_with_garbage_gets_nothing() {
    let (mut e, meta, now) = engine(true, false);
    let conn = accept_peer(&mut e, &meta, now);
    let _ = sent(&mut e, conn, true);
    // No extended handshake from it: it has no id to be answered under.
    send(
        &mut e,
        conn,
        &[Message::Extended {
            id: 1,
            payload: MetadataMessage::Request { piece: 0 }.encode(),
        }],
        now,
    );
    assert!(metadata_replies(sent(&mut e, conn, false)).is_empty());
    // Garbage under our id is ignored, the connection kept.
    send(
        &mut e,
        conn,
        &[Message::Extended {
            id: 1,
            payload: Bytes::from_static(b"d8:msg_typei0e5:piece"),
        }],
        now,
    );
    let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Close { .. })),
        "{outs:?}"
    );
}
