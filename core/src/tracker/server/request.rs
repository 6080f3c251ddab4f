//! HTTP announce and scrape queries read into requests, and announce answers written.
//!
//! Reading works on the raw query without allocating: parameters are split on `&` and `=`
//! and only the values the tracker uses are percent-decoded, into fixed buffers. It is
//! strict where a wrong guess would record a wrong peer and lenient where nothing is lost:
//!
//! - `info_hash` and `peer_id` must decode (strictly: a `%` needs two hex digits) to exactly
//!   20 bytes; `port` must be 1-65535; `left` must be there (it says seed or leecher);
//!   `uploaded` and `downloaded` default to 0 but must be numbers if given; `numwant` must
//!   be an integer (negative means the default). Each failure names its field.
//! - `event` values other than `started`, `completed` and `stopped` are a regular announce;
//!   `compact` defaults to on; `key` is read as hex if it is, and ignored otherwise; unknown
//!   parameters are ignored. When a parameter repeats, the first one counts.
//! - `ip` is read only when the server allows it, and must then be an address.
//!
//! The answers are canonical bencode (keys sorted), so the same state gives the same bytes.

use core::net::IpAddr;

use super::{AnnounceAnswer, AnnounceRequest, Failure};
use crate::bencode::{put_bytes, put_decimal, put_int};
use crate::tracker::AnnounceEvent;
use crate::types::{InfoHash, PeerId};

/// The `name=value` pairs of a query, raw (still percent-encoded), empty segments skipped.
fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &b""[..]),
        })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw` into `buf`; the decoded bytes, or `None` if an escape is malformed
/// or the result does not fit.
fn decode_into<'b>(raw: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut n = 0;
    let mut i = 0;
    while i < raw.len() {
        let b = if raw[i] == b'%' {
            let hi = hex(*raw.get(i + 1)?)?;
            let lo = hex(*raw.get(i + 2)?)?;
            i += 3;
            (hi << 4) | lo
        } else {
            i += 1;
            raw[i - 1]
        };
        *buf.get_mut(n)? = b;
        n += 1;
    }
    Some(&buf[..n])
}

fn decode_20(raw: &[u8]) -> Option<[u8; 20]> {
    let mut buf = [0u8; 21];
    let bytes = decode_into(raw, &mut buf)?;
    <[u8; 20]>::try_from(bytes).ok()
}

/// A decimal number (after percent-decoding), no sign; `None` if not one or too large.
fn decode_u64(raw: &[u8]) -> Option<u64> {
    let mut buf = [0u8; 24];
    let digits = decode_into(raw, &mut buf)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// An integer that may be negative: `Some(None)` for a negative one.
fn decode_numwant(raw: &[u8]) -> Option<Option<u64>> {
    let mut buf = [0u8; 24];
    let text = decode_into(raw, &mut buf)?;
    match text.split_first() {
        Some((b'-', digits)) if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            Some(None)
        }
        _ => decode_u64(text).map(Some),
    }
}

/// The parameter name, decoded if it has escapes (names longer than any we use are not
/// ours).
fn name<'b>(raw: &'b [u8], buf: &'b mut [u8; 16]) -> &'b [u8] {
    if !raw.contains(&b'%') {
        return raw;
    }
    decode_into(raw, buf).unwrap_or(b"")
}

/// Reads an announce query (the part of the target after `?`). `remote` is the address
/// the request came from, recorded unless `allow_ip` lets an `ip` parameter replace it.
pub fn parse_announce_query(
    query: &[u8],
    remote: IpAddr,
    allow_ip: bool,
) -> Result<AnnounceRequest, Failure> {
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut uploaded = None;
    let mut downloaded = None;
    let mut left = None;
    let mut event = None;
    let mut numwant = None;
    let mut compact = None;
    let mut no_peer_id = None;
    let mut key = None;
    let mut ip = None;
    for (raw_name, value) in pairs(query) {
        let mut buf = [0u8; 16];
        // The first of a repeated parameter counts; later ones are not even read.
        match name(raw_name, &mut buf) {
            b"info_hash" if info_hash.is_none() => {
                info_hash = Some(decode_20(value).ok_or(Failure::Invalid("info_hash"))?);
            }
            b"peer_id" if peer_id.is_none() => {
                peer_id = Some(decode_20(value).ok_or(Failure::Invalid("peer_id"))?);
            }
            b"port" if port.is_none() => {
                let p = decode_u64(value)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|&p| p != 0);
                port = Some(p.ok_or(Failure::Invalid("port"))?);
            }
            b"uploaded" if uploaded.is_none() => {
                uploaded = Some(decode_u64(value).ok_or(Failure::Invalid("uploaded"))?);
            }
            b"downloaded" if downloaded.is_none() => {
                downloaded = Some(decode_u64(value).ok_or(Failure::Invalid("downloaded"))?);
            }
            b"left" if left.is_none() => {
                left = Some(decode_u64(value).ok_or(Failure::Invalid("left"))?);
            }
            b"event" if event.is_none() => {
                let mut buf = [0u8; 16];
                event = Some(
                    decode_into(value, &mut buf)
                        .map_or(AnnounceEvent::None, AnnounceEvent::from_http_str),
                );
            }
            b"numwant" if numwant.is_none() => {
                let n = decode_numwant(value).ok_or(Failure::Invalid("numwant"))?;
                numwant = Some(n.map(|n| u32::try_from(n).unwrap_or(u32::MAX)));
            }
            b"compact" if compact.is_none() => compact = Some(value != b"0"),
            b"no_peer_id" if no_peer_id.is_none() => no_peer_id = Some(value != b"0"),
            b"key" if key.is_none() => {
                let mut buf = [0u8; 16];
                key = Some(decode_into(value, &mut buf).and_then(|k| {
                    let k = std::str::from_utf8(k).ok()?;
                    (k.len() <= 8).then(|| u32::from_str_radix(k, 16).ok())?
                }));
            }
            b"ip" if allow_ip && ip.is_none() => {
                let mut buf = [0u8; 64];
                let text = decode_into(value, &mut buf)
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .map(|t| t.trim_start_matches('[').trim_end_matches(']'));
                ip = Some(
                    text.and_then(|t| t.parse::<IpAddr>().ok())
                        .ok_or(Failure::Invalid("ip"))?,
                );
            }
            _ => {}
        }
    }
    Ok(AnnounceRequest {
        info_hash: InfoHash(info_hash.ok_or(Failure::Missing("info_hash"))?),
        peer_id: PeerId(peer_id.ok_or(Failure::Missing("peer_id"))?),
        ip: ip.unwrap_or(remote),
        port: port.ok_or(Failure::Missing("port"))?,
        uploaded: uploaded.unwrap_or(0),
        downloaded: downloaded.unwrap_or(0),
        left: left.ok_or(Failure::Missing("left"))?,
        event: event.unwrap_or_default(),
        numwant: numwant.flatten(),
        compact: compact.unwrap_or(true),
        no_peer_id: no_peer_id.unwrap_or(false),
        key: key.flatten(),
        family: None,
    })
}

/// Reads a scrape query: every `info_hash` in it, at most `max` (the rest are ignored). An
/// empty list asks for every torrent. A value that is not 20 bytes fails the scrape.
pub fn parse_scrape_query(query: &[u8], max: usize) -> Result<Vec<InfoHash>, Failure> {
    let mut out = Vec::new();
    for (raw_name, value) in pairs(query) {
        let mut buf = [0u8; 16];
        if name(raw_name, &mut buf) == b"info_hash" {
            if out.len() == max {
                break;
            }
            out.push(InfoHash(
                decode_20(value).ok_or(Failure::Invalid("info_hash"))?,
            ));
        }
    }
    Ok(out)
}

/// Writes an announce answer. `compact`: IPv4 peers in `peers` (BEP 23), IPv6 ones in
/// `peers6` (BEP 7, when there are any). Otherwise `peers` is a list of dictionaries with
/// `ip`, `port` and, unless `no_peer_id`, `peer id` (when the answer has the ids).
pub fn encode_announce_answer(answer: &AnnounceAnswer, compact: bool, no_peer_id: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(120 + answer.peers.len() * if compact { 6 } else { 64 });
    out.push(b'd');
    out.extend_from_slice(b"8:complete");
    put_int(&mut out, answer.complete.into());
    out.extend_from_slice(b"10:downloaded");
    put_int(&mut out, answer.downloaded.into());
    out.extend_from_slice(b"10:incomplete");
    put_int(&mut out, answer.incomplete.into());
    out.extend_from_slice(b"8:interval");
    put_int(&mut out, answer.interval.as_secs());
    out.extend_from_slice(b"12:min interval");
    put_int(&mut out, answer.min_interval.as_secs());
    if compact {
        let v4 = answer
            .peers
            .iter()
            .filter(|p| p.ip().to_canonical().is_ipv4())
            .count();
        let v6 = answer.peers.len() - v4;
        out.extend_from_slice(b"5:peers");
        put_decimal(&mut out, v4 as u64 * 6);
        out.push(b':');
        for p in &answer.peers {
            if let IpAddr::V4(ip) = p.ip().to_canonical() {
                out.extend_from_slice(&ip.octets());
                out.extend_from_slice(&p.port().to_be_bytes());
            }
        }
        if v6 > 0 {
            out.extend_from_slice(b"6:peers6");
            put_decimal(&mut out, v6 as u64 * 18);
            out.push(b':');
            for p in &answer.peers {
                if let IpAddr::V6(ip) = p.ip().to_canonical() {
                    out.extend_from_slice(&ip.octets());
                    out.extend_from_slice(&p.port().to_be_bytes());
                }
            }
        }
    } else {
        out.extend_from_slice(b"5:peersl");
        for (i, p) in answer.peers.iter().enumerate() {
            out.push(b'd');
            out.extend_from_slice(b"2:ip");
            put_bytes(&mut out, p.ip().to_canonical().to_string().as_bytes());
            if let Some(id) = answer.peer_ids.get(i).filter(|_| !no_peer_id) {
                out.extend_from_slice(b"7:peer id");
                put_bytes(&mut out, &id.0);
            }
            out.extend_from_slice(b"4:port");
            put_int(&mut out, p.port().into());
            out.push(b'e');
        }
        out.push(b'e');
    }
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode;
    use crate::tracker::{parse_announce_response, percent_encode};
    use quickcheck::quickcheck;
    use std::time::Duration;

    fn remote() -> IpAddr {
        "10.0.0.9".parse().unwrap()
    }

    fn query(extra: &str) -> String {
        format!(
            "info_hash={}&peer_id=-XX0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3{extra}",
            percent_encode(&[0xab; 20])
        )
    }

    #[test]
    fn a_full_announce_reads() {
        let q = query("&event=started&numwant=80&compact=0&no_peer_id=1&key=DEADBEEF&ip=1.2.3.4");
        let r = parse_announce_query(q.as_bytes(), remote(), false).unwrap();
        assert_eq!(r.info_hash, InfoHash([0xab; 20]));
        assert_eq!(&r.peer_id.0, b"-XX0001-abcdefghijkl");
        assert_eq!((r.port, r.uploaded, r.downloaded, r.left), (6881, 1, 2, 3));
        assert_eq!(r.event, AnnounceEvent::Started);
        assert_eq!(r.numwant, Some(80));
        assert!(!r.compact);
        assert!(r.no_peer_id);
        assert_eq!(r.key, Some(0xdead_beef));
        // `ip` is ignored unless allowed.
        assert_eq!(r.ip, remote());
        let r = parse_announce_query(q.as_bytes(), remote(), true).unwrap();
        assert_eq!(r.ip, "1.2.3.4".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn defaults_and_leniency() {
        let q = format!(
            "info_hash={}&peer_id={}&port=1&left=0&event=paused&numwant=-1&key=zz&&x&info_hash=1",
            percent_encode(&[0; 20]),
            percent_encode(&[0xff; 20])
        );
        let r = parse_announce_query(q.as_bytes(), remote(), false).unwrap();
        assert_eq!(r.event, AnnounceEvent::None);
        assert_eq!(r.numwant, None);
        assert_eq!(r.key, None);
        assert!(r.compact);
        assert_eq!((r.uploaded, r.downloaded), (0, 0));
        // Escaped names read too.
        let q = query("").replace("info_hash", "info%5Fhash");
        assert!(parse_announce_query(q.as_bytes(), remote(), false).is_ok());
    }

    #[test]
    fn failures_name_the_field() {
        let ok = query("");
        let cases: Vec<(String, Failure)> = vec![
            (ok.replace("info_hash", "x"), Failure::Missing("info_hash")),
            (ok.replace("peer_id", "x"), Failure::Missing("peer_id")),
            (ok.replace("port", "x"), Failure::Missing("port")),
            (ok.replace("left", "x"), Failure::Missing("left")),
            (ok.replacen("%AB", "%AG", 1), Failure::Invalid("info_hash")),
            ("info_hash=%ab".to_string(), Failure::Invalid("info_hash")),
            (
                format!("info_hash={}", "a".repeat(21)),
                Failure::Invalid("info_hash"),
            ),
            ("peer_id=short".to_string(), Failure::Invalid("peer_id")),
            (ok.replace("port=6881", "port=0"), Failure::Invalid("port")),
            (
                ok.replace("port=6881", "port=65536"),
                Failure::Invalid("port"),
            ),
            (ok.replace("port=6881", "port=-5"), Failure::Invalid("port")),
            (ok.replace("left=3", "left=3x"), Failure::Invalid("left")),
            (
                ok.replace("left=3", "left=99999999999999999999999"),
                Failure::Invalid("left"),
            ),
            (
                ok.replace("uploaded=1", "uploaded="),
                Failure::Invalid("uploaded"),
            ),
            (
                ok.replace("downloaded=2", "downloaded=%"),
                Failure::Invalid("downloaded"),
            ),
            (format!("{ok}&numwant=many"), Failure::Invalid("numwant")),
            (format!("{ok}&numwant=-"), Failure::Invalid("numwant")),
        ];
        for (q, want) in cases {
            assert_eq!(
                parse_announce_query(q.as_bytes(), remote(), false),
                Err(want),
                "{q}"
            );
        }
        assert_eq!(
            parse_announce_query(format!("{ok}&ip=nope").as_bytes(), remote(), true),
            Err(Failure::Invalid("ip"))
        );
        assert_eq!(
            parse_announce_query(b"", remote(), false),
            Err(Failure::Missing("info_hash"))
        );
        assert_eq!(
            Failure::Missing("info_hash").to_string(),
            "missing info_hash"
        );
    }

    #[test]
    fn scrape_queries() {
        let a = percent_encode(&[1; 20]);
        let b = percent_encode(&[2; 20]);
        let q = format!("info_hash={a}&x=1&info_hash={b}");
        assert_eq!(
            parse_scrape_query(q.as_bytes(), 10).unwrap(),
            vec![InfoHash([1; 20]), InfoHash([2; 20])]
        );
        assert_eq!(parse_scrape_query(q.as_bytes(), 1).unwrap().len(), 1);
        assert_eq!(parse_scrape_query(b"", 10).unwrap(), vec![]);
        assert_eq!(
            parse_scrape_query(b"info_hash=abc", 10),
            Err(Failure::Invalid("info_hash"))
        );
    }

    fn answer(peers: &[&str]) -> AnnounceAnswer {
        AnnounceAnswer {
            interval: Duration::from_secs(1800),
            min_interval: Duration::from_secs(900),
            complete: 2,
            incomplete: 3,
            downloaded: 7,
            peers: peers.iter().map(|a| a.parse().unwrap()).collect(),
            peer_ids: vec![PeerId([b'p'; 20]); peers.len()],
        }
    }

    #[test]
    fn answers_are_canonical_and_read_back() {
        let a = answer(&["1.2.3.4:5", "[::ffff:6.7.8.9]:10", "[2001:db8::1]:11"]);
        for (compact, no_peer_id) in [(true, false), (false, false), (false, true)] {
            let bytes = encode_announce_answer(&a, compact, no_peer_id);
            let value = bencode::decode(&bytes).unwrap();
            assert!(value.is_canonical(), "{}", String::from_utf8_lossy(&bytes));
            let read = parse_announce_response(&bytes).unwrap();
            assert_eq!((read.complete, read.incomplete), (Some(2), Some(3)));
            assert_eq!(read.interval, Duration::from_secs(1800));
            assert_eq!(read.min_interval, Some(Duration::from_secs(900)));
            assert_eq!(
                read.peers,
                vec![
                    "1.2.3.4:5".parse().unwrap(),
                    "6.7.8.9:10".parse().unwrap(),
                    "[2001:db8::1]:11".parse().unwrap()
                ]
            );
            let has_id = bytes.windows(7).any(|w| w == b"peer id");
            assert_eq!(has_id, !compact && !no_peer_id);
        }
        let bytes = encode_announce_answer(&answer(&["1.2.3.4:5"]), true, false);
        assert_eq!(
            bytes,
            b"d8:completei2e10:downloadedi7e10:incompletei3e8:intervali1800e12:min intervali900e5:peers6:\x01\x02\x03\x04\x00\x05e"
        );
    }

    quickcheck! {
        fn arbitrary_queries_never_panic(query: Vec<u8>, allow_ip: bool) -> bool {
            let _ = parse_announce_query(&query, remote(), allow_ip);
            parse_scrape_query(&query, 5).map_or(true, |v| v.len() <= 5)
        }

        fn arbitrary_values_never_panic(values: Vec<(u8, Vec<u8>)>) -> bool {
            let names = ["info_hash", "peer_id", "port", "uploaded", "downloaded", "left",
                "event", "numwant", "compact", "no_peer_id", "key", "ip"];
            let q: Vec<u8> = values.iter().flat_map(|(n, v)| {
                let mut s = names[usize::from(*n) % names.len()].as_bytes().to_vec();
                s.push(b'=');
                s.extend_from_slice(v);
                s.push(b'&');
                s
            }).collect();
            let _ = parse_announce_query(&q, remote(), true);
            true
        }
    }
}
