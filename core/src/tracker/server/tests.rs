//! The tracker server's behaviour, on virtual time.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use quickcheck::{quickcheck, TestResult};

use super::*;
use crate::tracker::answer::{parse_announce_response, parse_scrape_response};
use crate::tracker::udp::{UdpAnnounceRequest, UdpRequest, UdpResponse, PROTOCOL_ID};
use crate::tracker::{percent_encode, TrackerError};

const HASH: InfoHash = InfoHash([7; 20]);

fn config() -> ServerConfig {
    ServerConfig {
        rng_seed: 42,
        secret: [9; 32],
        ..ServerConfig::default()
    }
}

fn server() -> (TrackerServer, Instant) {
    let now = shoal_test_clock::epoch();
    (TrackerServer::new(config(), now), now)
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

/// An announce from 10.0.0.`n`:`1000 + n` with peer id `n`.
fn req(n: u8, left: u64, event: AnnounceEvent) -> AnnounceRequest {
    AnnounceRequest {
        left,
        event,
        ..AnnounceRequest::new(HASH, PeerId([n; 20]), v4(n), 1000 + u16::from(n))
    }
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::new(v4(n), 1000 + u16::from(n))
}

fn peer_set(answer: &AnnounceAnswer) -> BTreeSet<SocketAddr> {
    answer.peers.iter().copied().collect()
}

fn counts(answer: &AnnounceAnswer) -> (u32, u32, u32) {
    (answer.complete, answer.incomplete, answer.downloaded)
}

#[test]
fn announces_build_a_swarm() {
    let (mut t, now) = server();
    let a = t
        .announce(&req(1, 100, AnnounceEvent::Started), now)
        .unwrap();
    assert_eq!(counts(&a), (0, 1, 0));
    assert!(a.peers.is_empty(), "never the requester itself");
    assert_eq!(a.interval, Duration::from_secs(1800));
    assert_eq!(a.min_interval, Duration::from_secs(900));

    let a = t
        .announce(&req(2, 100, AnnounceEvent::Started), now)
        .unwrap();
    assert_eq!(peer_set(&a), [addr(1)].into());
    let a = t.announce(&req(3, 0, AnnounceEvent::Started), now).unwrap();
    assert_eq!(counts(&a), (1, 2, 0));
    assert_eq!(peer_set(&a), [addr(1), addr(2)].into());
    let a = t.announce(&req(4, 0, AnnounceEvent::Started), now).unwrap();
    // A seed gets leechers only.
    assert_eq!(peer_set(&a), [addr(1), addr(2)].into());
    // A leecher gets everyone else.
    let a = t.announce(&req(1, 50, AnnounceEvent::None), now).unwrap();
    assert_eq!(peer_set(&a), [addr(2), addr(3), addr(4)].into());
    assert_eq!(counts(&a), (2, 2, 0));
    assert_eq!((t.swarm_count(), t.peer_count()), (1, 4));
    t.check();
}

#[test]
fn completed_counts_once_per_peer_and_stopped_removes() {
    let (mut t, now) = server();
    t.announce(&req(1, 100, AnnounceEvent::Started), now)
        .unwrap();
    let a = t
        .announce(&req(1, 0, AnnounceEvent::Completed), now)
        .unwrap();
    assert_eq!(counts(&a), (1, 0, 1));
    let a = t
        .announce(&req(1, 0, AnnounceEvent::Completed), now)
        .unwrap();
    assert_eq!(counts(&a), (1, 0, 1), "a repeated completed counts nothing");
    // A peer first heard of with `completed` counts.
    let a = t
        .announce(&req(2, 0, AnnounceEvent::Completed), now)
        .unwrap();
    assert_eq!(counts(&a), (2, 0, 2));
    // A seed that loses data is a leecher again.
    let a = t.announce(&req(1, 10, AnnounceEvent::None), now).unwrap();
    assert_eq!(counts(&a), (1, 1, 2));

    let a = t
        .announce(&req(1, 10, AnnounceEvent::Stopped), now)
        .unwrap();
    assert_eq!(counts(&a), (1, 0, 2));
    assert!(a.peers.is_empty());
    // Stopping an unknown peer changes nothing.
    let a = t
        .announce(&req(9, 10, AnnounceEvent::Stopped), now)
        .unwrap();
    assert_eq!(counts(&a), (1, 0, 2));
    // Nor does a stop for an unknown torrent create one.
    let mut stop = req(9, 10, AnnounceEvent::Stopped);
    stop.info_hash = InfoHash([1; 20]);
    assert_eq!(counts(&t.announce(&stop, now).unwrap()), (0, 0, 0));
    assert_eq!(t.swarm_count(), 1);
    t.check();
}

#[test]
fn peers_are_keyed_by_address() {
    let (mut t, now) = server();
    t.announce(&req(1, 100, AnnounceEvent::Started), now)
        .unwrap();
    // Same address and port, new peer id (a restarted client): the same entry.
    let mut again = req(1, 100, AnnounceEvent::Started);
    again.peer_id = PeerId([b'z'; 20]);
    t.announce(&again, now).unwrap();
    assert_eq!(t.peer_count(), 1);
    // Peer ids come with dictionary answers only.
    let mut dictionary = req(2, 100, AnnounceEvent::None);
    dictionary.compact = false;
    let a = t.announce(&dictionary, now).unwrap();
    assert_eq!(a.peer_ids, vec![PeerId([b'z'; 20])]);
    let a = t.announce(&req(2, 100, AnnounceEvent::None), now).unwrap();
    assert!(a.peer_ids.is_empty());
    // Same address, another port: another peer.
    let mut other = req(1, 100, AnnounceEvent::None);
    other.port = 7;
    t.announce(&other, now).unwrap();
    assert_eq!(t.peer_count(), 3);
    // An IPv4-mapped IPv6 address is the IPv4 peer.
    let mut mapped = req(1, 0, AnnounceEvent::None);
    mapped.ip = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    t.announce(&mapped, now).unwrap();
    assert_eq!(t.peer_count(), 3);
    t.check();
}

#[test]
fn numwant_is_defaulted_and_capped() {
    let (mut t, now) = server();
    for n in 1..=250u8 {
        t.announce(&req(n, 1, AnnounceEvent::Started), now).unwrap();
    }
    let mut r = req(251, 1, AnnounceEvent::None);
    assert_eq!(t.announce(&r, now).unwrap().peers.len(), 50);
    r.numwant = Some(1000);
    let a = t.announce(&r, now).unwrap();
    assert_eq!(a.peers.len(), 200);
    assert_eq!(peer_set(&a).len(), 200, "no peer twice");
    assert!(!peer_set(&a).contains(&addr(251)));
    r.numwant = Some(0);
    assert!(t.announce(&r, now).unwrap().peers.is_empty());
    t.check();
}

#[test]
fn peer_choice_is_seeded_and_spread() {
    let run = |seed: u64| {
        let now = shoal_test_clock::epoch();
        let mut t = TrackerServer::new(
            ServerConfig {
                rng_seed: seed,
                ..config()
            },
            now,
        );
        for n in 1..=100u8 {
            t.announce(&req(n, 1, AnnounceEvent::Started), now).unwrap();
        }
        let mut seen = BTreeSet::new();
        let mut answers = Vec::new();
        for _ in 0..20 {
            let mut r = req(200, 1, AnnounceEvent::None);
            r.numwant = Some(10);
            let a = t.announce(&r, now).unwrap();
            seen.extend(peer_set(&a));
            answers.push(a.peers);
        }
        (answers, seen)
    };
    let (a, seen) = run(1);
    let (b, _) = run(1);
    let (c, _) = run(2);
    assert_eq!(a, b, "same seed, same answers");
    assert_ne!(a, c);
    // 20 answers of 10 out of 100 reach most of the swarm.
    assert!(
        seen.len() > 70,
        "only {} distinct peers handed out",
        seen.len()
    );
}

#[test]
fn ipv6_peers_go_to_peers6_and_udp_gets_its_family() {
    let (mut t, now) = server();
    let mut six = req(1, 1, AnnounceEvent::Started);
    six.ip = "2001:db8::1".parse().unwrap();
    t.announce(&six, now).unwrap();
    t.announce(&req(2, 1, AnnounceEvent::Started), now).unwrap();
    let r = req(3, 1, AnnounceEvent::Started);
    let a = t.announce(&r, now).unwrap();
    assert_eq!(a.peers.len(), 2);
    let body = encode_announce_answer(&a, true, false);
    assert!(body.windows(8).any(|w| w == b"6:peers6"));
    let read = parse_announce_response(&body).unwrap();
    assert_eq!(read.peers.len(), 2);
    let mut only_v4 = r.clone();
    only_v4.family = Some(IpFamily::V4);
    assert_eq!(
        peer_set(&t.announce(&only_v4, now).unwrap()),
        [addr(2)].into()
    );
}

#[test]
fn failures() {
    let (mut t, now) = server();
    let mut r = req(1, 1, AnnounceEvent::Started);
    r.port = 0;
    assert_eq!(t.announce(&r, now), Err(Failure::Invalid("port")));

    let mut closed = TrackerServer::new(
        ServerConfig {
            open: false,
            ..config()
        },
        now,
    );
    let r = req(1, 1, AnnounceEvent::Started);
    assert_eq!(closed.announce(&r, now), Err(Failure::NotAllowed));
    assert_eq!(closed.swarm_count(), 0, "a refused hash takes no slot");
    closed.allow(HASH);
    assert!(closed.announce(&r, now).is_ok());
    let mut other = r.clone();
    other.info_hash = InfoHash([1; 20]);
    closed.set_allowed([InfoHash([1; 20])]);
    assert_eq!(
        closed.swarm_count(),
        0,
        "a swarm no longer allowed is dropped"
    );
    assert!(closed.announce(&other, now).is_ok());
    assert_eq!(closed.announce(&r, now), Err(Failure::NotAllowed));
    closed.set_open(true);
    assert!(closed.announce(&r, now).is_ok());
    closed.check();
}

#[test]
fn silent_peers_expire_without_scans() {
    let (mut t, start) = server();
    let timeout = t.config().peer_timeout;
    assert_eq!(timeout, Duration::from_secs(2 * 1800 + 300));
    assert_eq!(t.poll_timeout(), None);
    t.announce(&req(1, 1, AnnounceEvent::Started), start)
        .unwrap();
    let later = start + Duration::from_secs(1800);
    t.announce(&req(2, 1, AnnounceEvent::Started), later)
        .unwrap();
    assert_eq!(t.poll_timeout(), Some(later + timeout));

    // Peer 1 is past its time when peer 3 announces: it is not handed out, nor counted.
    let a = t
        .announce(&req(3, 1, AnnounceEvent::Started), start + timeout)
        .unwrap();
    assert_eq!(peer_set(&a), [addr(2)].into());
    assert_eq!(counts(&a), (0, 2, 0));
    assert_eq!(t.peer_count(), 2);

    // A second swarm that goes silent is swept whole when its time comes, not before.
    let mut other = req(4, 1, AnnounceEvent::Started);
    other.info_hash = InfoHash([1; 20]);
    t.announce(&other, start + timeout).unwrap();
    let end = start + timeout + timeout;
    assert_eq!(t.poll_timeout(), Some(end));
    t.handle_timeout(end - Duration::from_secs(1));
    assert_eq!(t.swarm_count(), 2);
    t.handle_timeout(end);
    assert_eq!((t.swarm_count(), t.peer_count()), (0, 0));
    assert_eq!(t.poll_timeout(), None);
    t.check();
}

#[test]
fn the_sweep_is_bounded_per_call() {
    let (mut t, start) = server();
    for n in 0..(SWEEP_BUDGET as u32 * 2 + 10) {
        let mut r = req(1, 1, AnnounceEvent::Started);
        r.ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        t.announce(&r, start).unwrap();
    }
    let end = start + t.config().peer_timeout;
    t.handle_timeout(end);
    assert_eq!(t.peer_count(), SWEEP_BUDGET + 10);
    assert_eq!(t.poll_timeout(), Some(end), "more work: call again now");
    t.check();
    t.handle_timeout(end);
    t.handle_timeout(end);
    assert_eq!((t.swarm_count(), t.peer_count()), (0, 0));
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn ten_thousand_info_hashes_stay_within_the_swarm_cap() {
    let now = shoal_test_clock::epoch();
    let mut t = TrackerServer::new(
        ServerConfig {
            max_swarms: 100,
            ..config()
        },
        now,
    );
    for i in 0..10_000u32 {
        let mut hash = [0u8; 20];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        let mut r = req(1, 1, AnnounceEvent::Started);
        r.info_hash = InfoHash(hash);
        let at = now + Duration::from_millis(u64::from(i));
        assert!(t.announce(&r, at).is_ok());
        assert!(t.swarm_count() <= 100);
    }
    assert_eq!(t.swarm_count(), 100);
    assert_eq!(t.capacity(), (100, 100), "slots are reused, not grown");
    // The stalest went first: the last 100 are the ones left.
    let all = t.scrape(&[], now + Duration::from_secs(20));
    let kept: BTreeSet<u32> = all
        .iter()
        .map(|(h, _)| u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]))
        .collect();
    assert_eq!(kept, (9_900..10_000).collect());
    t.check();
}

#[test]
fn full_swarms_and_a_full_table_evict_the_stalest_peer() {
    let now = shoal_test_clock::epoch();
    let mut t = TrackerServer::new(
        ServerConfig {
            max_peers_per_swarm: 10,
            max_peers: 25,
            ..config()
        },
        now,
    );
    for n in 1..=30u8 {
        t.announce(
            &req(n, 1, AnnounceEvent::Started),
            now + Duration::from_secs(n.into()),
        )
        .unwrap();
        assert!(t.peer_count() <= 10);
    }
    let mut r = req(100, 1, AnnounceEvent::None);
    r.numwant = Some(100);
    let a = t.announce(&r, now + Duration::from_secs(40)).unwrap();
    // Peer 100 evicted peer 21, the stalest; 22..=30 are left.
    assert_eq!(peer_set(&a), (22..=30).map(addr).collect());

    // Fill other swarms until the total cap bites: the stalest swarm loses peers first.
    for s in 1..=3u8 {
        for n in 1..=10u8 {
            let mut r = req(n, 1, AnnounceEvent::Started);
            r.info_hash = InfoHash([s; 20]);
            t.announce(
                &r,
                now + Duration::from_secs(100 + u64::from(s) * 20 + u64::from(n)),
            )
            .unwrap();
            assert!(t.peer_count() <= 25);
        }
    }
    assert_eq!(t.peer_count(), 25);
    // The first swarm (HASH) was the stalest: it is gone, and swarm 1 lost its first peers.
    assert_eq!(t.stats(&HASH), ScrapeStats::default());
    assert_eq!(t.stats(&InfoHash([1; 20])).incomplete, 5);
    assert!(t.capacity().1 <= 25);
    t.check();
}

#[test]
fn scrapes() {
    let (mut t, now) = server();
    t.announce(&req(1, 0, AnnounceEvent::Completed), now)
        .unwrap();
    t.announce(&req(2, 5, AnnounceEvent::Started), now).unwrap();
    let mut other = req(3, 5, AnnounceEvent::Started);
    other.info_hash = InfoHash([1; 20]);
    t.announce(&other, now).unwrap();
    let stats = ScrapeStats {
        complete: 1,
        downloaded: 1,
        incomplete: 1,
    };
    assert_eq!(
        t.scrape(&[HASH, InfoHash([3; 20])], now),
        vec![(HASH, stats)]
    );
    assert_eq!(t.scrape(&[], now).len(), 2);
    assert_eq!(
        t.scrape_one(&InfoHash([3; 20]), now),
        ScrapeStats::default()
    );

    let body = t.http_scrape(
        format!("info_hash={}", percent_encode(&HASH.0)).as_bytes(),
        now,
    );
    assert_eq!(parse_scrape_response(&body).unwrap(), vec![(HASH, stats)]);
    let body = t.http_scrape(b"info_hash=short", now);
    assert_eq!(
        parse_scrape_response(&body),
        Err(TrackerError::Failure("invalid info_hash".into()))
    );

    let mut small = TrackerServer::new(
        ServerConfig {
            max_scrape: 1,
            ..config()
        },
        now,
    );
    small
        .announce(&req(1, 0, AnnounceEvent::None), now)
        .unwrap();
    small.announce(&other, now).unwrap();
    assert_eq!(small.scrape(&[], now).len(), 1);
}

#[test]
fn http_requests_are_answered() {
    let (mut t, now) = server();
    let query = |n: u8| {
        format!(
            "info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left=5&compact=1",
            percent_encode(&HASH.0),
            percent_encode(&[n; 20]),
            1000 + u16::from(n)
        )
    };
    let remote = v4(1);
    let head = format!("GET /announce?{} HTTP/1.1\r\nHost: x\r\n\r\n", query(1));
    let head = parse_request_head(head.as_bytes(), MAX_REQUEST_HEAD)
        .unwrap()
        .unwrap();
    let response = t.serve_http(&head, remote, now).unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let answer = parse_announce_response(&response[body_at..]).unwrap();
    assert_eq!((answer.complete, answer.incomplete), (Some(0), Some(1)));

    let body = t.http_announce(query(2).as_bytes(), v4(2), now);
    assert_eq!(parse_announce_response(&body).unwrap().peers, vec![addr(1)]);
    let body = t.http_announce(b"peer_id=-XX0001-abcdefghijkl&port=1&left=0", remote, now);
    assert_eq!(
        parse_announce_response(&body),
        Err(TrackerError::Failure("missing info_hash".into()))
    );
    let other = parse_request_head(b"GET /index.html HTTP/1.1\r\n\r\n", 100)
        .unwrap()
        .unwrap();
    assert_eq!(t.serve_http(&other, remote, now), None);
    let post = parse_request_head(b"POST /announce HTTP/1.1\r\n\r\n", 100)
        .unwrap()
        .unwrap();
    assert!(t
        .serve_http(&post, remote, now)
        .unwrap()
        .starts_with(b"HTTP/1.1 405"));
}

fn udp_connect(t: &mut TrackerServer, from: SocketAddr, now: Instant) -> u64 {
    let out = t
        .handle_udp(
            from,
            &UdpRequest::Connect { transaction_id: 5 }.encode(),
            now,
        )
        .unwrap();
    match UdpResponse::decode(&out, IpFamily::V4).unwrap() {
        UdpResponse::Connect {
            transaction_id: 5,
            connection_id,
        } => connection_id,
        other => panic!("{other:?}"),
    }
}

fn udp_announce(n: u8, connection_id: u64) -> Vec<u8> {
    let mut params =
        crate::tracker::AnnounceParams::new(HASH, PeerId([n; 20]), 1000 + u16::from(n));
    params.left = 5;
    UdpRequest::Announce(UdpAnnounceRequest::from_params(connection_id, 77, &params)).encode()
}

#[test]
fn udp_exchanges() {
    let (mut t, now) = server();
    let a = addr(1);
    let id = udp_connect(&mut t, a, now);
    let out = t.handle_udp(a, &udp_announce(1, id), now).unwrap();
    let UdpResponse::Announce(r) = UdpResponse::decode(&out, IpFamily::V4).unwrap() else {
        panic!("not an announce answer");
    };
    assert_eq!(
        (r.transaction_id, r.interval, r.leechers, r.seeders),
        (77, 1800, 1, 0)
    );

    let b = addr(2);
    let id_b = udp_connect(&mut t, b, now);
    assert_ne!(id, id_b, "ids differ per address");
    let out = t.handle_udp(b, &udp_announce(2, id_b), now).unwrap();
    let UdpResponse::Announce(r) = UdpResponse::decode(&out, IpFamily::V4).unwrap() else {
        panic!("not an announce answer");
    };
    assert_eq!(r.peers, vec![a]);

    // Someone else's id, a made-up id, garbage: no answer at all.
    assert_eq!(t.handle_udp(b, &udp_announce(2, id), now), None);
    assert_eq!(t.handle_udp(b, &udp_announce(2, 12345), now), None);
    assert_eq!(t.handle_udp(b, b"hello", now), None);
    assert_eq!(t.handle_udp(b, &[0; 200], now), None);
    let mut wrong_port = b;
    wrong_port.set_port(9);
    assert_eq!(t.handle_udp(wrong_port, &udp_announce(2, id_b), now), None);

    // An id lives through the next window, not the one after.
    let window = t.config().connection_window;
    assert!(t
        .handle_udp(a, &udp_announce(1, id), now + window)
        .is_some());
    assert_eq!(
        t.handle_udp(a, &udp_announce(1, id), now + window * 2),
        None
    );

    // Scrapes answer by position; unknown torrents are zeros; past 74 are cut.
    let later = now + window * 2;
    let id = udp_connect(&mut t, a, later);
    let mut hashes = vec![HASH, InfoHash([3; 20])];
    hashes.extend(std::iter::repeat_n(InfoHash([4; 20]), 100));
    let scrape = UdpRequest::Scrape {
        connection_id: id,
        transaction_id: 8,
        info_hashes: hashes,
    };
    let out = t.handle_udp(a, &scrape.encode(), later).unwrap();
    let UdpResponse::Scrape { stats, .. } = UdpResponse::decode(&out, IpFamily::V4).unwrap() else {
        panic!("not a scrape answer");
    };
    assert_eq!(stats.len(), 74);
    assert_eq!((stats[0].incomplete, stats[1].incomplete), (2, 0));

    // A refused announce is an error packet.
    let mut closed = TrackerServer::new(
        ServerConfig {
            open: false,
            ..config()
        },
        now,
    );
    let id = udp_connect(&mut closed, a, now);
    let out = closed.handle_udp(a, &udp_announce(1, id), now).unwrap();
    assert!(matches!(
        UdpResponse::decode(&out, IpFamily::V4),
        Ok(UdpResponse::Error {
            transaction_id: 77,
            ..
        })
    ));
}

#[test]
fn connection_ids_depend_on_the_secret() {
    let now = shoal_test_clock::epoch();
    let a = TrackerServer::new(config(), now);
    let b = TrackerServer::new(
        ServerConfig {
            secret: [8; 32],
            ..config()
        },
        now,
    );
    assert_ne!(a.connection_id(addr(1), now), b.connection_id(addr(1), now));
    assert_ne!(a.connection_id(addr(1), now), PROTOCOL_ID);
}

/// One step of a random workload.
#[derive(Clone, Debug)]
struct Op {
    hash: u8,
    peer: u8,
    left: u8,
    event: u8,
    advance_secs: u16,
    sweep: bool,
}

impl quickcheck::Arbitrary for Op {
    fn arbitrary(g: &mut quickcheck::Gen) -> Self {
        Op {
            hash: u8::arbitrary(g) % 8,
            peer: u8::arbitrary(g) % 32,
            left: u8::arbitrary(g) % 3,
            event: u8::arbitrary(g) % 4,
            advance_secs: u16::arbitrary(g) % 1200,
            sweep: u8::arbitrary(g) % 8 == 0,
        }
    }
}

quickcheck! {
    fn random_workloads_keep_the_table_consistent_and_bounded(ops: Vec<Op>) -> TestResult {
        let start = shoal_test_clock::epoch();
        let mut t = TrackerServer::new(
            ServerConfig {
                max_swarms: 5,
                max_peers_per_swarm: 6,
                max_peers: 20,
                ..config()
            },
            start,
        );
        let mut now = start;
        for op in ops {
            now += Duration::from_secs(op.advance_secs.into());
            let mut r = req(op.peer, u64::from(op.left), AnnounceEvent::from_udp_code(op.event.into()));
            r.info_hash = InfoHash([op.hash; 20]);
            let answer = t.announce(&r, now).unwrap();
            let me = SocketAddr::new(r.ip, r.port);
            if answer.peers.contains(&me) {
                return TestResult::error("the requester got itself");
            }
            if op.sweep {
                t.handle_timeout(now);
            }
            t.check();
            let (swarms, peers) = t.capacity();
            if t.swarm_count() > 5 || t.peer_count() > 20 || swarms > 5 || peers > 20 {
                return TestResult::error("over a cap");
            }
        }
        TestResult::passed()
    }

    fn arbitrary_datagrams_never_panic_the_server(buf: Vec<u8>, action: u8) -> bool {
        let (mut t, now) = server();
        let _ = t.handle_udp(addr(1), &buf, now);
        // With a valid connection id in front, the rest is arbitrary.
        let id = t.connection_id(addr(1), now);
        let mut packet = id.to_be_bytes().to_vec();
        packet.extend_from_slice(&u32::from(action % 4).to_be_bytes());
        packet.extend_from_slice(&buf);
        let _ = t.handle_udp(addr(1), &packet, now);
        true
    }
}

/// An announce for swarm `swarm` from `ip`:`port`.
fn from(swarm: u8, ip: IpAddr, port: u16) -> AnnounceRequest {
    AnnounceRequest {
        left: 1,
        event: AnnounceEvent::Started,
        ..AnnounceRequest::new(InfoHash([swarm; 20]), PeerId([port as u8; 20]), ip, port)
    }
}

#[test]
fn one_host_holds_a_bounded_share_of_a_swarm() {
    let (mut t, now) = server();
    let cap = t.config().max_peers_per_host_in_swarm;
    for port in 0..cap as u16 {
        t.announce(&from(1, v4(1), 2000 + port), now).unwrap();
    }
    let refused = t.announce(&from(1, v4(1), 9999), now).unwrap_err();
    assert_eq!(refused, Failure::HostFull { in_swarm: true });
    assert_eq!(
        refused.to_string(),
        "too many peers from your address in this torrent"
    );
    assert_eq!(
        t.peer_count(),
        cap as usize,
        "the refused one is not recorded"
    );
    // Its peers already there still announce; another host and another swarm are served.
    t.announce(&from(1, v4(1), 2000), now).unwrap();
    t.announce(&from(1, v4(2), 9999), now).unwrap();
    t.announce(&from(2, v4(1), 9999), now).unwrap();
    // A stop gives the place back.
    let mut stop = from(1, v4(1), 2001);
    stop.event = AnnounceEvent::Stopped;
    t.announce(&stop, now).unwrap();
    t.announce(&from(1, v4(1), 9999), now).unwrap();
    // So does expiry.
    let later = now + t.config().peer_timeout + Duration::from_secs(1);
    t.announce(&from(1, v4(1), 7777), later).unwrap();
    t.check();
}

#[test]
fn an_ipv6_host_is_its_64_and_loopback_is_exempt() {
    let (mut t, now) = server();
    let cap = t.config().max_peers_per_host_in_swarm;
    // Addresses that differ below the /64 are one host.
    let v6 = |low: u16| IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 7, low));
    for n in 0..cap as u16 {
        t.announce(&from(1, v6(n), 3000), now).unwrap();
    }
    assert_eq!(
        t.announce(&from(1, v6(999), 3000), now),
        Err(Failure::HostFull { in_swarm: true })
    );
    // The next /64 is another host.
    let other = IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
    t.announce(&from(1, other, 3000), now).unwrap();
    // Every client on this machine is one host, its owner's: not limited.
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for port in 0..(cap as u16 * 4) {
        t.announce(&from(1, lo, 4000 + port), now).unwrap();
    }
    t.check();
}

#[test]
fn one_host_holds_a_bounded_share_of_the_table() {
    let now = shoal_test_clock::epoch();
    let mut t = TrackerServer::new(
        ServerConfig {
            max_peers_per_host: 5,
            ..config()
        },
        now,
    );
    for swarm in 1..=5 {
        t.announce(&from(swarm, v4(1), 2000), now).unwrap();
    }
    let refused = t.announce(&from(6, v4(1), 2000), now).unwrap_err();
    assert_eq!(refused, Failure::HostFull { in_swarm: false });
    assert_eq!(
        refused.to_string(),
        "too many peers from your address on this tracker"
    );
    assert_eq!(t.swarm_count(), 5, "a refused announce creates no swarm");
    t.announce(&from(6, v4(2), 2000), now).unwrap();
    t.check();
}

#[test]
fn announcing_and_stopping_in_a_loop_cannot_evict_swarms_in_use() {
    let now = shoal_test_clock::epoch();
    let mut t = TrackerServer::new(
        ServerConfig {
            max_swarms: 10,
            ..config()
        },
        now,
    );
    // Nine swarms in use, by nine hosts, announced to long ago.
    for swarm in 1..=9 {
        t.announce(&from(swarm, v4(swarm), 2000), now).unwrap();
    }
    // One host creates a thousand swarms, stopping each at once.
    let later = now + Duration::from_secs(60);
    for n in 0..1000u32 {
        let hash = {
            let mut h = [0xAA; 20];
            h[..4].copy_from_slice(&n.to_be_bytes());
            InfoHash(h)
        };
        let mut r = from(0, v4(200), 5000);
        r.info_hash = hash;
        t.announce(&r, later).unwrap();
        r.event = AnnounceEvent::Stopped;
        t.announce(&r, later).unwrap();
        assert!(t.swarm_count() <= 10);
    }
    for swarm in 1..=9 {
        assert_eq!(
            t.stats(&InfoHash([swarm; 20])).incomplete,
            1,
            "swarm {swarm} in use was evicted"
        );
    }
    t.check();
}
