//! What each fuzz target does with its input: one function per parser of remote input.
//!
//! The cargo-fuzz binaries in `fuzz_targets/` call these, and the test suite replays the
//! checked-in corpora (`fuzz/corpus/<target>/`) through the same functions
//! (`core/tests/fuzz_corpora.rs` includes this file), so a crash found once fails CI from
//! then on. Each function must not panic, whatever the bytes; where a parser has an
//! encoder, what it reads must encode and read back the same.

use std::net::{IpAddr, Ipv4Addr};

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use shoal_core::magnet::Magnet;
use shoal_core::metadata::{FetchConfig, MetadataFetch, MetadataMessage};
use shoal_core::pex::{PexMessage, MAX_READ};
use shoal_core::wire::{Decoder, DecoderConfig, ExtendedHandshake, Handshake};
use shoal_core::InfoHash;

/// A target's body: takes any bytes, must not panic.
pub type Target = fn(&[u8]);

/// Every target, by name (its folder under `corpus/` and its binary).
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_stream", wire_stream),
    ("handshake", handshake),
    ("extended_handshake", extended_handshake),
    ("bencode", bencode),
    ("metainfo", metainfo),
    ("magnet", magnet),
    ("tracker_answer", tracker_answer),
    ("udp_answer", udp_answer),
    ("tracker_request", tracker_request),
    ("udp_request", udp_request),
    ("http_answer", http_answer),
    ("metadata_message", metadata_message),
    ("pex_message", pex_message),
    ("metadata_fetch", metadata_fetch_target),
    ("krpc", krpc),
    ("mse_handshake", mse_handshake),
];

/// The wire decoder fed a stream cut into chunks: the first byte gives the piece count,
/// the second the chunk size; every message it yields encodes again.
pub fn wire_stream(data: &[u8]) {
    let [count, chunk, rest @ ..] = data else {
        return;
    };
    let mut decoder = Decoder::new(DecoderConfig::default());
    decoder.set_piece_count(u32::from(*count) * 7);
    let mut buf = BytesMut::new();
    for part in rest.chunks(usize::from(*chunk).max(1)) {
        buf.extend_from_slice(part);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(message)) => {
                    let mut out = BytesMut::new();
                    message.encode(&mut out);
                    assert!(out.len() >= 4, "a message encodes to at least its length");
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// The BEP 3 handshake, then whatever follows it left in the buffer.
pub fn handshake(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    if let Ok(Some(hs)) = Handshake::decode(&mut buf) {
        let mut out = BytesMut::new();
        hs.encode(&mut out);
        let again = Handshake::decode(&mut out).expect("our own handshake reads back");
        assert_eq!(again.map(|h| h.info_hash), Some(hs.info_hash));
    }
}

/// The BEP 10 extended handshake's payload.
pub fn extended_handshake(data: &[u8]) {
    let _ = ExtendedHandshake::decode(data);
}

/// The bencode reader; what it accepts re-encodes canonically and reads again.
pub fn bencode(data: &[u8]) {
    if let Ok(value) = shoal_core::bencode::decode(data) {
        let canonical = value.to_canonical();
        let again = shoal_core::bencode::decode(&canonical).expect("canonical output reads");
        assert!(again.is_canonical());
    }
}

/// A `.torrent` file, and the info dictionary alone (as ut_metadata delivers it).
pub fn metainfo(data: &[u8]) {
    let _ = shoal_core::metainfo::Metainfo::parse(data);
    let _ = shoal_core::metainfo::Metainfo::from_info_bytes(data);
}

/// A magnet link.
pub fn magnet(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shoal_core::magnet::Magnet::parse(text);
    }
}

/// An HTTP tracker's announce and scrape answers (the body).
pub fn tracker_answer(data: &[u8]) {
    let _ = shoal_core::tracker::parse_announce_response(data);
    let _ = shoal_core::tracker::parse_scrape_response(data);
}

/// A UDP tracker's answers, over IPv4 and IPv6.
pub fn udp_answer(data: &[u8]) {
    use shoal_core::tracker::udp::{IpFamily, UdpResponse};
    let _ = UdpResponse::decode(data, IpFamily::V4);
    let _ = UdpResponse::decode(data, IpFamily::V6);
    let _ = shoal_core::tracker::udp::response_transaction_id(data);
}

/// What the tracker server reads: a request head, then its query as an announce and as a
/// scrape.
pub fn tracker_request(data: &[u8]) {
    use shoal_core::tracker::server::{http, request};
    let _ = http::parse_request_head(data, 8192);
    let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let _ = request::parse_announce_query(data, remote, true);
    let _ = request::parse_scrape_query(data, 64);
}

/// The UDP tracker server's requests.
pub fn udp_request(data: &[u8]) {
    let _ = shoal_core::tracker::udp::UdpRequest::decode(data);
}

/// An HTTP answer (trackers', web seeds') fed in pieces: the first byte gives the size of
/// each piece.
pub fn http_answer(data: &[u8]) {
    let [chunk, rest @ ..] = data else {
        return;
    };
    let mut reader = shoal_core::tracker::HttpResponseReader::with_max_body(1 << 16);
    for part in rest.chunks(usize::from(*chunk).max(1)) {
        if reader.feed(part).is_err() {
            return;
        }
    }
    let _ = reader.finish();
}

/// A `ut_metadata` message: what decodes encodes back to itself.
pub fn metadata_message(data: &[u8]) {
    if let Ok(m) = MetadataMessage::decode(&Bytes::copy_from_slice(data)) {
        assert_eq!(MetadataMessage::decode(&m.encode()), Ok(m));
    }
}

/// A `ut_pex` message: at most [`MAX_READ`] entries of each of the two lists of a kind,
/// and no entry anyone could not dial.
pub fn pex_message(data: &[u8]) {
    if let Ok(m) = PexMessage::decode(data) {
        assert!(m.added.len() <= 2 * MAX_READ);
        assert!(m.dropped.len() <= 2 * MAX_READ);
        for p in &m.added {
            assert_ne!(p.addr.port(), 0);
            assert!(!p.addr.ip().is_unspecified());
        }
    }
}

/// A metadata fetch driven by a script: each step is a byte saying what happens
/// (`% 5`: a peer joins with a size from the next 3 bytes, a message from a peer made of
/// the next bytes up to a 0xff, a peer leaves, time passes, the fetch's timeout), with
/// peers named by the byte after. Whatever happens, a finished fetch holds metadata whose
/// SHA-1 is the info-hash. The info-hash is that of a tiny real `info`, so an honest
/// script can finish. Returns whether it did.
pub fn metadata_fetch(data: &[u8]) -> bool {
    let info: &[u8] =
        b"d6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    let hash = InfoHash(sha1_smol(info));
    let mut fetch: MetadataFetch<u8> = MetadataFetch::new(
        &Magnet::new(hash),
        FetchConfig {
            max_size: 1 << 20,
            ..FetchConfig::default()
        },
    );
    let mut now = Instant::now();
    let mut rest = data;
    while let [op, peer, tail @ ..] = rest {
        rest = tail;
        match op % 5 {
            0 => {
                let size = rest
                    .iter()
                    .take(3)
                    .fold(0u64, |a, &b| a << 8 | u64::from(b));
                rest = rest.get(3..).unwrap_or(&[]);
                let _ = fetch.add_peer(*peer, size, now);
            }
            1 => {
                let end = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
                let (body, after) = rest.split_at(end);
                rest = after.get(1..).unwrap_or(&[]);
                if let Ok(m) = MetadataMessage::decode(&Bytes::copy_from_slice(body)) {
                    fetch.on_message(*peer, &m, now);
                }
            }
            2 => fetch.remove_peer(*peer, now),
            3 => now += Duration::from_secs(u64::from(*peer)),
            _ => {
                if fetch.poll_timeout().is_some_and(|t| t <= now) {
                    fetch.handle_timeout(now);
                }
            }
        }
        while fetch.poll_action().is_some() {}
        if let Some(Ok(meta)) = fetch.outcome() {
            assert_eq!(meta.info_hash, hash);
            assert_eq!(meta.info_bytes, info);
        }
    }
    matches!(fetch.outcome(), Some(Ok(_)))
}

/// SHA-1 of `data`, by the core's own route (a `Metainfo` made from it).
fn sha1_smol(data: &[u8]) -> [u8; 20] {
    shoal_core::metainfo::Metainfo::from_info_bytes(data)
        .expect("a valid info")
        .info_hash
        .0
}

/// [`metadata_fetch`] as a target (its outcome is checked by the replay test).
fn metadata_fetch_target(data: &[u8]) {
    metadata_fetch(data);
}

/// A KRPC datagram (BEP 5): what reads encodes and reads back the same; then a DHT node
/// takes it as a datagram from a stranger and must answer, or not, without panicking.
pub fn krpc(data: &[u8]) {
    use shoal_core::dht::krpc::Message;
    use shoal_core::dht::{Config, Input, Node};
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode()).expect("our encoding reads back");
        assert_eq!(again, message);
    }
    // The fuzz bodies have no virtual clock to start from; the node only compares instants.
    let now = std::time::Instant::now();
    let config = Config {
        bootstrap: vec!["127.0.0.1:6881".parse().expect("an address")],
        ..Config::default()
    };
    let mut node = Node::new(config, now);
    while node.poll_output().is_some() {}
    let from = std::net::SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 6881));
    node.handle(Input::Datagram { from, data }, now);
    while node.poll_output().is_some() {}
}

/// Message stream encryption's handshake (MSE/PE), answering end. The first byte is the
/// chunk size, the second the policies (bits 0-1: what the dialler offers, 2-3: what the
/// answerer accepts, 4: it prefers RC4, 5: the dialler sends a BitTorrent handshake as its
/// initial payload, 7: the rest is fed raw to the answerer). Otherwise
/// an honest dialler and answerer meet while the rest is XORed onto what the dialler sends
/// (the part past its bytes is appended), so the fuzzer reaches every field behind the
/// sync marker it could never guess. Must end in an error or a handshake, never a panic;
/// two ends that both finish carry a payload both ways.
pub fn mse_handshake(data: &[u8]) {
    use shoal_core::mse::{Handshake, Methods, Prefer, Progress};
    use shoal_core::rng::Rng;
    let [chunk, mode, rest @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk).max(1);
    let torrent = InfoHash([7; 20]);
    let find = |h: &[u8; 20]| (*h == shoal_core::mse::req2(&torrent)).then_some(torrent);
    let offer = Methods(u32::from(mode & 3));
    let accept = Methods(u32::from((mode >> 2) & 3));
    let prefer = if mode & 0x10 != 0 {
        Prefer::Rc4
    } else {
        Prefer::Plaintext
    };
    let mut rng = Rng::new(u64::from(*mode));
    let mut b = Handshake::responder(accept, prefer, &mut rng);
    let mut to_a = BytesMut::new();
    if mode & 0x80 != 0 {
        for part in rest.chunks(chunk) {
            if b.feed(part, &mut to_a, find).is_err() {
                return;
            }
        }
        return;
    }
    let mut to_b = BytesMut::new();
    let initial = if mode & 0x20 != 0 {
        let mut h = BytesMut::new();
        shoal_core::wire::Handshake {
            reserved: shoal_core::wire::Reserved::ours(),
            info_hash: torrent,
            peer_id: shoal_core::PeerId([5; 20]),
        }
        .encode(&mut h);
        h.freeze()
    } else {
        Bytes::new()
    };
    let mut a = Handshake::initiator(torrent, offer, initial, &mut rng, &mut to_b);
    let mut tamper = rest.iter().copied();
    let (mut done_a, mut done_b) = (None, None);
    for _ in 0..10_000 {
        if !to_b.is_empty() && done_b.is_none() {
            let mut part = to_b.split_to(chunk.min(to_b.len()));
            for (byte, t) in part.iter_mut().zip(&mut tamper) {
                *byte ^= t;
            }
            match b.feed(&part, &mut to_a, find) {
                Ok(Progress::Done(o)) => done_b = Some(o),
                Ok(Progress::Pending) => {}
                Err(_) => return,
            }
        } else if !to_a.is_empty() && done_a.is_none() {
            let part = to_a.split_to(chunk.min(to_a.len()));
            match a.feed(&part, &mut to_b, |_| None) {
                Ok(Progress::Done(o)) => done_a = Some(o),
                Ok(Progress::Pending) => {}
                Err(_) => return,
            }
        } else {
            break;
        }
    }
    let extra: Vec<u8> = tamper.collect();
    if done_b.is_none() && !extra.is_empty() {
        match b.feed(&extra, &mut to_a, find) {
            Ok(Progress::Done(o)) => done_b = Some(o),
            _ => return,
        }
    }
    if let (Some(mut a), Some(mut b)) = (done_a, done_b) {
        assert_eq!(
            a.ciphers.is_some(),
            b.ciphers.is_some(),
            "both ends chose alike"
        );
        let mut text = *b"payload";
        if let (Some(ca), Some(cb)) = (a.ciphers.as_mut(), b.ciphers.as_mut()) {
            ca.send.apply(&mut text);
            cb.recv.apply(&mut text);
            assert_eq!(&text, b"payload");
            cb.send.apply(&mut text);
            ca.recv.apply(&mut text);
            assert_eq!(&text, b"payload");
        }
    }
}
