//! The bencoded answers of HTTP trackers: announce (BEP 3, 7, 23) and scrape (BEP 48),
//! read for the client and written for the server.
//!
//! Reading goes through the zero-copy [`crate::bencode`] reader with tight [`Limits`]
//! (never `bendy`'s decoder, which reserves ~147 KB per call). What is strict and what is
//! lenient, and why:
//!
//! - A `failure reason` wins over everything else in the dictionary.
//! - `interval` is required and must be a non-negative integer: without it we would not know
//!   when to come back, and BEP 3 makes it mandatory. Everything else is informational, so
//!   an ill-typed `min interval`, `tracker id`, `complete`, `incomplete` or `warning
//!   message` is ignored rather than costing us the peers.
//! - `peers` may be a compact string of 6-byte IPv4 entries (BEP 23) or a list of
//!   dictionaries with `ip` and `port` (BEP 3); `peers6` a compact string of 18-byte IPv6
//!   entries (BEP 7). A `peers` of another type is an error. Within a list, entries that are
//!   not usable (a host name instead of an address, port 0, missing fields) are skipped one
//!   by one; a compact string's trailing partial entry is ignored.
//! - At most [`MAX_PEERS`] peers are kept (those first in the answer). Together with the
//!   reader's value limit and the HTTP body limit this bounds what an answer can cost.
//!
//! Writing is by hand, canonical (keys sorted, no duplicates), so that the tracker server's
//! answers are byte-identical for the same state and cheap to produce.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::{message_text, AnnounceResponse, ScrapeStats, TrackerError};
use crate::bencode::{self, put_bytes, put_int, Dict, Limits, Value};
use crate::types::InfoHash;

/// The most peers kept from one announce answer. Clients ask for 50 to 200; a tracker that
/// sends thousands gets the first 1,000 used.
pub const MAX_PEERS: usize = 1000;

/// Announce answers are shallow; 65,536 values is room for 16,000 dictionary peers while
/// keeping the decoded tree of a hostile body to a few megabytes.
const ANNOUNCE_LIMITS: Limits = Limits {
    max_depth: 16,
    max_values: 1 << 16,
};

/// A scrape answer has 4 values per torrent: room for 16,000 torrents, far more than we
/// ask about, with the same bound on memory as an announce answer.
const SCRAPE_LIMITS: Limits = ANNOUNCE_LIMITS;

fn decode_dict(body: &[u8], limits: Limits) -> Result<Value<'_>, TrackerError> {
    let value = bencode::decode_with(body, limits)?;
    if value.as_dict().is_none() {
        return Err(TrackerError::MalformedResponse("not a dictionary"));
    }
    Ok(value)
}

fn check_failure(dict: &Dict<'_>) -> Result<(), TrackerError> {
    match dict.get(b"failure reason") {
        None => Ok(()),
        Some(Value::Bytes(reason)) => Err(TrackerError::Failure(message_text(reason))),
        Some(_) => Err(TrackerError::MalformedResponse(
            "failure reason is not a string",
        )),
    }
}

/// The `failure reason` of a body, if it is a bencoded dictionary with one (used for
/// non-2xx HTTP answers, which some trackers send with a reason).
pub(crate) fn failure_reason(body: &[u8]) -> Option<String> {
    let value = bencode::decode_with(body, ANNOUNCE_LIMITS).ok()?;
    let reason = value.as_dict()?.get(b"failure reason")?.as_bytes()?;
    Some(message_text(reason))
}

fn seconds(value: &Value<'_>) -> Option<Duration> {
    let secs = u64::try_from(value.as_int()?).ok()?;
    Some(Duration::from_secs(secs))
}

fn count(value: Option<&Value<'_>>) -> Option<u32> {
    u32::try_from(value?.as_int()?).ok()
}

/// Reads a tracker's answer to an announce (see the module docs for what is accepted).
pub fn parse_announce_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let value = decode_dict(body, ANNOUNCE_LIMITS)?;
    let Some(dict) = value.as_dict() else {
        return Err(TrackerError::MalformedResponse("not a dictionary"));
    };
    check_failure(dict)?;
    let interval = match dict.get(b"interval") {
        None => return Err(TrackerError::MissingInterval),
        Some(v) => seconds(v).ok_or(TrackerError::InvalidInterval)?,
    };
    let mut peers = Vec::new();
    match dict.get(b"peers") {
        None => {}
        Some(Value::Bytes(compact)) => compact_v4(compact, &mut peers),
        Some(Value::List(list)) => dictionary_peers(&list.items, &mut peers),
        Some(_) => {
            return Err(TrackerError::MalformedResponse(
                "peers is neither a string nor a list",
            ))
        }
    }
    match dict.get(b"peers6") {
        None => {}
        Some(Value::Bytes(compact)) => compact_v6(compact, &mut peers),
        Some(_) => return Err(TrackerError::MalformedResponse("peers6 is not a string")),
    }
    Ok(AnnounceResponse {
        interval,
        min_interval: dict.get(b"min interval").and_then(seconds),
        tracker_id: dict
            .get(b"tracker id")
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec),
        complete: count(dict.get(b"complete")),
        incomplete: count(dict.get(b"incomplete")),
        peers,
        warning: dict
            .get(b"warning message")
            .and_then(Value::as_bytes)
            .map(message_text),
    })
}

fn push_peer(peers: &mut Vec<SocketAddr>, addr: SocketAddr) {
    // Port 0 cannot be dialled; such entries are tracker bugs or probes.
    if peers.len() < MAX_PEERS && addr.port() != 0 {
        peers.push(addr);
    }
}

fn compact_v4(compact: &[u8], peers: &mut Vec<SocketAddr>) {
    for entry in compact.chunks_exact(6).take(MAX_PEERS) {
        let ip = Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]);
        let port = u16::from_be_bytes([entry[4], entry[5]]);
        push_peer(peers, SocketAddr::new(IpAddr::V4(ip), port));
    }
}

fn compact_v6(compact: &[u8], peers: &mut Vec<SocketAddr>) {
    for entry in compact.chunks_exact(18).take(MAX_PEERS) {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&entry[..16]);
        let port = u16::from_be_bytes([entry[16], entry[17]]);
        push_peer(
            peers,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port),
        );
    }
}

fn dictionary_peers(items: &[Value<'_>], peers: &mut Vec<SocketAddr>) {
    for item in items {
        if peers.len() >= MAX_PEERS {
            return;
        }
        let Some(peer) = item.as_dict() else { continue };
        let ip = peer
            .get(b"ip")
            .and_then(Value::as_str)
            .map(|s| s.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|s| s.parse::<IpAddr>().ok());
        let port = peer
            .get(b"port")
            .and_then(Value::as_int)
            .and_then(|p| u16::try_from(p).ok());
        if let (Some(ip), Some(port)) = (ip, port) {
            push_peer(peers, SocketAddr::new(ip, port));
        }
    }
}

/// Reads a tracker's answer to a scrape: each torrent it knows with its counts, in the
/// answer's order. Entries whose key is not a 20-byte info-hash or whose value is not a
/// dictionary are skipped; a missing or ill-typed count is 0.
pub fn parse_scrape_response(body: &[u8]) -> Result<Vec<(InfoHash, ScrapeStats)>, TrackerError> {
    let value = decode_dict(body, SCRAPE_LIMITS)?;
    let Some(dict) = value.as_dict() else {
        return Err(TrackerError::MalformedResponse("not a dictionary"));
    };
    check_failure(dict)?;
    let files = dict
        .get(b"files")
        .and_then(Value::as_dict)
        .ok_or(TrackerError::MalformedResponse("no files dictionary"))?;
    let mut out = Vec::with_capacity(files.entries.len());
    for (key, stats) in &files.entries {
        let (Ok(hash), Some(stats)) = (<[u8; 20]>::try_from(*key), stats.as_dict()) else {
            continue;
        };
        out.push((
            InfoHash(hash),
            ScrapeStats {
                complete: count(stats.get(b"complete")).unwrap_or(0),
                downloaded: count(stats.get(b"downloaded")).unwrap_or(0),
                incomplete: count(stats.get(b"incomplete")).unwrap_or(0),
            },
        ));
    }
    Ok(out)
}

/// Writes an announce answer, canonical (keys sorted). With `compact`, IPv4 peers go into
/// `peers` (BEP 23) and IPv6 peers into `peers6` (BEP 7, only when there are any); IPv4
/// addresses mapped into IPv6 count as IPv4. Without, `peers` is a list of `ip`/`port`
/// dictionaries holding both families.
pub fn encode_announce_response(response: &AnnounceResponse, compact: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + response.peers.len() * 18);
    out.push(b'd');
    if let Some(complete) = response.complete {
        put_bytes(&mut out, b"complete");
        put_int(&mut out, complete.into());
    }
    if let Some(incomplete) = response.incomplete {
        put_bytes(&mut out, b"incomplete");
        put_int(&mut out, incomplete.into());
    }
    put_bytes(&mut out, b"interval");
    put_int(&mut out, response.interval.as_secs());
    if let Some(min) = response.min_interval {
        put_bytes(&mut out, b"min interval");
        put_int(&mut out, min.as_secs());
    }
    if compact {
        let mut v4 = Vec::with_capacity(response.peers.len() * 6);
        let mut v6 = Vec::new();
        for peer in &response.peers {
            match peer.ip().to_canonical() {
                IpAddr::V4(ip) => {
                    v4.extend_from_slice(&ip.octets());
                    v4.extend_from_slice(&peer.port().to_be_bytes());
                }
                IpAddr::V6(ip) => {
                    v6.extend_from_slice(&ip.octets());
                    v6.extend_from_slice(&peer.port().to_be_bytes());
                }
            }
        }
        put_bytes(&mut out, b"peers");
        put_bytes(&mut out, &v4);
        if !v6.is_empty() {
            put_bytes(&mut out, b"peers6");
            put_bytes(&mut out, &v6);
        }
    } else {
        put_bytes(&mut out, b"peers");
        out.push(b'l');
        for peer in &response.peers {
            out.push(b'd');
            put_bytes(&mut out, b"ip");
            put_bytes(&mut out, peer.ip().to_canonical().to_string().as_bytes());
            put_bytes(&mut out, b"port");
            put_int(&mut out, peer.port().into());
            out.push(b'e');
        }
        out.push(b'e');
    }
    if let Some(id) = &response.tracker_id {
        put_bytes(&mut out, b"tracker id");
        put_bytes(&mut out, id);
    }
    if let Some(warning) = &response.warning {
        put_bytes(&mut out, b"warning message");
        put_bytes(&mut out, warning.as_bytes());
    }
    out.push(b'e');
    out
}

/// Writes a refusal: `d14:failure reason…e`.
pub fn encode_failure_response(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + reason.len());
    out.push(b'd');
    put_bytes(&mut out, b"failure reason");
    put_bytes(&mut out, reason.as_bytes());
    out.push(b'e');
    out
}

/// Writes a scrape answer, canonical: torrents sorted by info-hash, each once (the first
/// entry for a hash wins).
pub fn encode_scrape_response(files: &[(InfoHash, ScrapeStats)]) -> Vec<u8> {
    let mut sorted: Vec<&(InfoHash, ScrapeStats)> = files.iter().collect();
    // A stable sort keeps the first of equal hashes first, which dedup keeps.
    sorted.sort_by_key(|(hash, _)| *hash);
    sorted.dedup_by_key(|(hash, _)| *hash);
    let mut out = Vec::with_capacity(16 + sorted.len() * 80);
    out.push(b'd');
    put_bytes(&mut out, b"files");
    out.push(b'd');
    for (hash, stats) in sorted {
        put_bytes(&mut out, &hash.0);
        out.push(b'd');
        put_bytes(&mut out, b"complete");
        put_int(&mut out, stats.complete.into());
        put_bytes(&mut out, b"downloaded");
        put_int(&mut out, stats.downloaded.into());
        put_bytes(&mut out, b"incomplete");
        put_int(&mut out, stats.incomplete.into());
        out.push(b'e');
    }
    out.push(b'e');
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::MAX_MESSAGE_LEN;
    use quickcheck::{quickcheck, TestResult};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn compact_v4_and_v6() {
        let mut body =
            b"d8:completei5e10:incompletei7e8:intervali1800e12:min intervali60e5:peers12:".to_vec();
        body.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80]);
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0xe1,
        ]);
        body.extend_from_slice(b"10:tracker id3:abce");
        let r = parse_announce_response(&body).unwrap();
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!(r.min_interval, Some(Duration::from_secs(60)));
        assert_eq!((r.complete, r.incomplete), (Some(5), Some(7)));
        assert_eq!(r.tracker_id.as_deref(), Some(&b"abc"[..]));
        assert_eq!(
            r.peers,
            vec![
                addr("10.0.0.1:6881"),
                addr("192.168.1.2:80"),
                addr("[2001:db8::1]:6881")
            ]
        );
        assert_eq!(r.warning, None);
        // The same answer written back is canonical and reads the same.
        let written = encode_announce_response(&r, true);
        assert_eq!(written, body);
        assert!(bencode::decode(&written).unwrap().is_canonical());
    }

    #[test]
    fn dictionary_peers_skip_what_is_unusable() {
        let body = b"d8:intervali900e5:peersl\
            d2:ip8:10.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee\
            d2:ip11:2001:db8::24:porti1ee\
            d2:ip7:[::1]ab4:porti2ee\
            d2:ip5:[::3]4:porti3ee\
            d2:ip15:tracker.example4:porti4ee\
            d2:ip7:1.2.3.44:porti0ee\
            d2:ip7:1.2.3.44:porti65536ee\
            d2:ip7:1.2.3.44:port1:5e\
            d4:porti5ee\
            i42e\
            ee";
        let r = parse_announce_response(body).unwrap();
        assert_eq!(
            r.peers,
            vec![
                addr("10.0.0.1:6881"),
                addr("[2001:db8::2]:1"),
                addr("[::3]:3")
            ]
        );
        let written = encode_announce_response(&r, false);
        assert_eq!(parse_announce_response(&written).unwrap(), r);
        assert!(bencode::decode(&written).unwrap().is_canonical());
    }

    #[test]
    fn failure_and_warning() {
        assert_eq!(
            parse_announce_response(b"d14:failure reason12:unregisterede"),
            Err(TrackerError::Failure("unregistered".into()))
        );
        // A failure reason wins even over a valid answer.
        assert_eq!(
            parse_announce_response(b"d14:failure reason1:x8:intervali5ee"),
            Err(TrackerError::Failure("x".into()))
        );
        assert_eq!(
            parse_announce_response(b"d14:failure reasoni1ee"),
            Err(TrackerError::MalformedResponse(
                "failure reason is not a string"
            ))
        );
        assert_eq!(
            encode_failure_response("unregistered"),
            b"d14:failure reason12:unregisterede"
        );
        let r = parse_announce_response(b"d8:intervali60e15:warning message4:slowe").unwrap();
        assert_eq!(r.warning.as_deref(), Some("slow"));
        assert!(r.peers.is_empty());
        let long = format!(
            "d8:intervali60e15:warning message{}:{}e",
            100_000,
            "w".repeat(100_000)
        );
        let r = parse_announce_response(long.as_bytes()).unwrap();
        assert_eq!(r.warning.unwrap().len(), MAX_MESSAGE_LEN);
    }

    #[test]
    fn interval_is_required() {
        assert_eq!(
            parse_announce_response(b"d5:peers0:e"),
            Err(TrackerError::MissingInterval)
        );
        for bad in [
            &b"d8:intervali-1ee"[..],
            b"d8:interval4:1800e",
            b"d8:intervalle5:peers0:e",
        ] {
            assert_eq!(
                parse_announce_response(bad),
                Err(TrackerError::InvalidInterval)
            );
        }
    }

    #[test]
    fn bad_types_and_bad_bencode() {
        assert!(matches!(
            parse_announce_response(b"d8:intervali60e"),
            Err(TrackerError::Bencode(_))
        ));
        assert!(matches!(
            parse_announce_response(b"<html>"),
            Err(TrackerError::Bencode(_))
        ));
        assert_eq!(
            parse_announce_response(b"l8:intervale"),
            Err(TrackerError::MalformedResponse("not a dictionary"))
        );
        assert!(matches!(
            parse_announce_response(b"d8:intervali60e5:peersi3ee"),
            Err(TrackerError::MalformedResponse(_))
        ));
        assert!(matches!(
            parse_announce_response(b"d8:intervali60e6:peers6le e"),
            Err(TrackerError::Bencode(_))
        ));
        assert!(matches!(
            parse_announce_response(b"d8:intervali60e6:peers6lee"),
            Err(TrackerError::MalformedResponse(_))
        ));
        // Informational fields of the wrong type are ignored.
        let r = parse_announce_response(
            b"d8:completei-1e10:incomplete1:x8:intervali60e12:min interval1:x10:tracker idi1e15:warning messagei1ee",
        )
        .unwrap();
        assert_eq!(r, AnnounceResponse::new(Duration::from_secs(60)));
    }

    #[test]
    fn hostile_sizes_are_bounded() {
        // 5,000 compact peers and a trailing partial entry: the first MAX_PEERS are kept.
        let mut compact = Vec::new();
        for i in 0..5000u32 {
            compact.extend_from_slice(&i.to_be_bytes());
            compact.extend_from_slice(&1u16.to_be_bytes());
        }
        compact.extend_from_slice(&[1, 2, 3]);
        let mut body = format!("d8:intervali60e5:peers{}:", compact.len()).into_bytes();
        body.extend_from_slice(&compact);
        body.push(b'e');
        let r = parse_announce_response(&body).unwrap();
        assert_eq!(r.peers.len(), MAX_PEERS);
        assert_eq!(r.peers[999], addr("0.0.3.231:1"));

        // Dictionary peers past the limit are not kept either.
        let many = "d2:ip7:1.2.3.44:porti1ee".repeat(3000);
        let body = format!("d8:intervali60e5:peersl{many}ee");
        assert_eq!(
            parse_announce_response(body.as_bytes())
                .unwrap()
                .peers
                .len(),
            MAX_PEERS
        );

        // Too many values for the reader's limits: refused, not decoded.
        let body = format!("d8:intervali60e5:peersl{}ee", "i1e".repeat(70_000));
        assert!(matches!(
            parse_announce_response(body.as_bytes()),
            Err(TrackerError::Bencode(_))
        ));
        let deep = format!("d8:intervali60e1:x{}{}e", "l".repeat(100), "e".repeat(100));
        assert!(parse_announce_response(deep.as_bytes()).is_err());
    }

    #[test]
    fn scrape_answers() {
        let a = InfoHash([b'a'; 20]);
        let b = InfoHash([b'b'; 20]);
        let stats = ScrapeStats {
            complete: 3,
            downloaded: 10,
            incomplete: 2,
        };
        let written =
            encode_scrape_response(&[(b, ScrapeStats::default()), (a, stats), (b, stats)]);
        let expected = format!(
            "d5:filesd20:{}d8:completei3e10:downloadedi10e10:incompletei2ee20:{}d8:completei0e10:downloadedi0e10:incompletei0eeee",
            "a".repeat(20),
            "b".repeat(20)
        );
        assert_eq!(String::from_utf8(written.clone()).unwrap(), expected);
        assert_eq!(
            parse_scrape_response(&written).unwrap(),
            vec![(a, stats), (b, ScrapeStats::default())]
        );
        let odd = format!(
            "d5:filesd3:abcd8:completei1ee20:{}i5e20:{}d8:completei-4e10:downloaded1:xeee",
            "a".repeat(20),
            "b".repeat(20)
        );
        assert_eq!(
            parse_scrape_response(odd.as_bytes()).unwrap(),
            vec![(b, ScrapeStats::default())]
        );
        assert_eq!(
            parse_scrape_response(b"d14:failure reason4:nopee"),
            Err(TrackerError::Failure("nope".into()))
        );
        assert_eq!(
            parse_scrape_response(b"d5:filesi1ee"),
            Err(TrackerError::MalformedResponse("no files dictionary"))
        );
    }

    fn arbitrary_response(
        interval: u32,
        min_interval: Option<u32>,
        counts: (Option<u32>, Option<u32>),
        v4: Vec<(u32, u16)>,
        v6: Vec<(u128, u16)>,
        tracker_id: Option<Vec<u8>>,
        warning: Option<String>,
    ) -> AnnounceResponse {
        let mut peers: Vec<SocketAddr> = v4
            .into_iter()
            .map(|(ip, port)| SocketAddr::new(Ipv4Addr::from(ip).into(), port))
            .chain(
                v6.into_iter()
                    .map(|(ip, port)| SocketAddr::new(Ipv6Addr::from(ip).to_canonical(), port)),
            )
            .filter(|a| a.port() != 0)
            .collect();
        peers.truncate(MAX_PEERS);
        AnnounceResponse {
            interval: Duration::from_secs(interval.into()),
            min_interval: min_interval.map(|s| Duration::from_secs(s.into())),
            tracker_id,
            complete: counts.0,
            incomplete: counts.1,
            peers,
            warning: warning.map(|w| message_text(w.as_bytes())),
        }
    }

    quickcheck! {
        fn arbitrary_bytes_never_panic_the_parsers(body: Vec<u8>) -> bool {
            let _ = parse_announce_response(&body);
            let _ = parse_scrape_response(&body);
            let _ = failure_reason(&body);
            true
        }

        fn arbitrary_dictionaries_never_panic(keys: Vec<(u8, Vec<u8>)>) -> bool {
            // Well-formed dictionaries with announce keys and random values.
            let names: [&[u8]; 9] = [b"interval", b"peers", b"peers6", b"complete",
                b"min interval", b"tracker id", b"failure reason", b"warning message", b"files"];
            let mut body = b"d".to_vec();
            let mut entries: Vec<(&[u8], Vec<u8>)> = keys.into_iter()
                .map(|(k, v)| (names[usize::from(k) % names.len()], v)).collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries.dedup_by(|a, b| a.0 == b.0);
            for (k, v) in entries {
                put_bytes(&mut body, k);
                put_bytes(&mut body, &v);
            }
            body.push(b'e');
            let _ = parse_announce_response(&body);
            let _ = parse_scrape_response(&body);
            true
        }

        fn announce_answers_round_trip(
            interval: u32,
            min_interval: Option<u32>,
            counts: (Option<u32>, Option<u32>),
            v4: Vec<(u32, u16)>,
            v6: Vec<(u128, u16)>,
            ids: (Option<Vec<u8>>, Option<String>),
            compact: bool
        ) -> TestResult {
            let r = arbitrary_response(interval, min_interval, counts, v4, v6, ids.0, ids.1);
            let read = match parse_announce_response(&encode_announce_response(&r, compact)) {
                Ok(read) => read,
                Err(e) => return TestResult::error(e.to_string()),
            };
            let mut expected = r;
            if compact {
                // Compact answers carry IPv4 first, then IPv6.
                expected.peers.sort_by_key(|p| p.is_ipv6());
            }
            TestResult::from_bool(read == expected)
        }

        fn scrape_answers_round_trip(files: Vec<(u8, u32, u32, u32)>) -> bool {
            let files: Vec<(InfoHash, ScrapeStats)> = files.into_iter()
                .map(|(h, complete, downloaded, incomplete)| {
                    (InfoHash([h; 20]), ScrapeStats { complete, downloaded, incomplete })
                })
                .collect();
            let mut expected = files.clone();
            expected.sort_by_key(|(h, _)| *h);
            expected.dedup_by_key(|(h, _)| *h);
            parse_scrape_response(&encode_scrape_response(&files)) == Ok(expected)
        }
    }
}
