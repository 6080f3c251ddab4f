//! `shoal tracker` over real sockets: announces and scrapes over HTTP and UDP, the torrent
//! web server, and what hostile or broken clients get (failure answers or a closed
//! connection, never a crash, and bounded memory).
//!
//! Every test starts its own tracker on 127.0.0.1 with a free port; the process is killed
//! when the test ends, and its log is shown if the test fails.

mod support;
mod tracker_support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shoal_core::tracker::udp::{IpFamily, UdpRequest, UdpResponse};
use shoal_core::tracker::{parse_announce_response, parse_scrape_response, TrackerError};
use shoal_core::InfoHash;

use support::*;
use tracker_support::*;

const HASH: [u8; 20] = [0x11; 20];

fn failure_of(body: &[u8]) -> String {
    match parse_announce_response(body) {
        Err(TrackerError::Failure(reason)) => reason,
        other => panic!(
            "expected a failure answer, got {other:?} from {:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

#[test]
fn announces_and_scrapes_over_http_and_udp() {
    let scene = Scene::new();
    let mut tracker = ShoalTracker::start(scene.dir(), &[], scene.deadline);

    let a = Ann::new(HASH, 1, 1000).event("started");
    let r = get(tracker.port, &format!("/announce?{}", a.query()));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    let answer = parse_announce_response(&r.body).unwrap();
    assert_eq!((answer.complete, answer.incomplete), (Some(0), Some(1)));
    assert!(answer.peers.is_empty());
    assert_eq!(answer.interval, Duration::from_secs(1800));

    let seed = Ann::new(HASH, 2, 0).event("started");
    let answer =
        parse_announce_response(&get(tracker.port, &format!("/announce?{}", seed.query())).body)
            .unwrap();
    assert_eq!(
        answer.peers,
        vec![SocketAddr::from(([127, 0, 0, 1], 10_001))]
    );

    // A UDP client sees both, with the same counts.
    let mut udp = UdpClient::new(tracker.addr());
    match udp.announce(&Ann::new(HASH, 3, 5)) {
        UdpResponse::Announce(r) => {
            assert_eq!((r.seeders, r.leechers), (1, 2));
            assert_eq!(r.peers.len(), 2);
        }
        other => panic!("{other:?}"),
    }

    let r = get(
        tracker.port,
        &format!(
            "/scrape?info_hash={}",
            shoal_core::tracker::percent_encode(&HASH)
        ),
    );
    let files = parse_scrape_response(&r.body).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].1.complete, files[0].1.incomplete),
        (1, 2),
        "{files:?}"
    );
    // A scrape of everything.
    assert_eq!(
        parse_scrape_response(&get(tracker.port, "/scrape").body).unwrap(),
        files
    );
    tracker.assert_running();
}

#[test]
fn malformed_queries_get_failure_answers_naming_the_field() {
    let scene = Scene::new();
    let mut tracker = ShoalTracker::start(scene.dir(), &[], scene.deadline);
    let ok = Ann::new(HASH, 1, 10).query();
    let cases = [
        ("/announce".to_string(), "missing info_hash"),
        (
            format!("/announce?{}", ok.replace("info_hash", "x")),
            "missing info_hash",
        ),
        (
            format!("/announce?{}", ok.replace("peer_id", "x")),
            "missing peer_id",
        ),
        (
            format!("/announce?{}", ok.replace("port", "x")),
            "missing port",
        ),
        (
            format!("/announce?{}", ok.replace("left", "x")),
            "missing left",
        ),
        ("/announce?info_hash=%zz".to_string(), "invalid info_hash"),
        ("/announce?info_hash=abc".to_string(), "invalid info_hash"),
        (
            format!("/announce?{}", ok.replace("port=10001", "port=99999")),
            "invalid port",
        ),
        (
            format!("/announce?{}", ok.replace("left=10", "left=-1")),
            "invalid left",
        ),
        (format!("/announce?{ok}&numwant=lots"), "invalid numwant"),
        ("/scrape?info_hash=short".to_string(), "invalid info_hash"),
        (
            format!("/announce?{}", "&".repeat(2000)),
            "missing info_hash",
        ),
    ];
    for (target, reason) in cases {
        let r = get(tracker.port, &target);
        assert_eq!(r.status, 200, "{target}");
        let body_reason = match parse_scrape_response(&r.body) {
            Err(TrackerError::Failure(f)) => f,
            _ => failure_of(&r.body),
        };
        assert_eq!(body_reason, reason, "{target}");
    }
    // Not HTTP at all, a method other than GET, a path that is not there.
    let raw = raw_exchange(
        tracker.port,
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    );
    assert_eq!(split_response(&raw).map(|r| r.status), Some(400));
    let raw = raw_exchange(
        tracker.port,
        b"POST /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(split_response(&raw).map(|r| r.status), Some(405));
    assert_eq!(get(tracker.port, "/nothing/here").status, 404);
    // HEAD gets the head only.
    let raw = raw_exchange(tracker.port, b"HEAD /scrape HTTP/1.1\r\n\r\n");
    let r = split_response(&raw).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    tracker.assert_running();
}

#[test]
fn oversized_requests_get_431_or_a_closed_connection() {
    let scene = Scene::new();
    let mut tracker = ShoalTracker::start(scene.dir(), &[], scene.deadline);
    // A request line far past 8 KiB, never finished.
    let mut huge = b"GET /announce?".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, tracker.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close while we still write: that is an acceptable end too.
    let _ = s.write_all(&huge);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    if let Some(r) = split_response(&raw) {
        assert_eq!(r.status, 431);
    }
    // Too many headers, within the size limit.
    let many = format!(
        "GET /announce HTTP/1.1\r\n{}\r\n",
        (0..100).map(|i| format!("x{i}: y\r\n")).collect::<String>()
    );
    let raw = raw_exchange(tracker.port, many.as_bytes());
    assert_eq!(split_response(&raw).map(|r| r.status), Some(431));
    // A complete head just over the limit.
    let long = format!("GET /announce?x={} HTTP/1.1\r\n\r\n", "b".repeat(8 * 1024));
    let raw = raw_exchange(tracker.port, long.as_bytes());
    assert!(split_response(&raw).is_none_or(|r| r.status == 431));
    tracker.assert_running();
    assert_eq!(get(tracker.port, "/scrape").status, 200);
}

#[test]
fn slow_and_silent_clients_are_closed_after_the_timeout() {
    let scene = Scene::new();
    let mut tracker = ShoalTracker::start(
        scene.dir(),
        &["--http-timeout", "1", "--max-connections", "4"],
        scene.deadline,
    );
    let start = Instant::now();
    let mut slow = Vec::new();
    for i in 0..4 {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, tracker.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if i % 2 == 0 {
            // Half a request, and then nothing.
            s.write_all(b"GET /announce?info_hash=").unwrap();
        }
        slow.push(s);
    }
    // The connection limit is reached: one more is told so and closed at once.
    let raw = raw_exchange(tracker.port, b"GET /scrape HTTP/1.1\r\n\r\n");
    assert_eq!(split_response(&raw).map(|r| r.status), Some(503));
    // Each of the four is closed by the server, without an answer, about a second in.
    for mut s in slow {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(buf.is_empty(), "{:?}", String::from_utf8_lossy(&buf));
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    // And the tracker serves again.
    assert_eq!(get(tracker.port, "/scrape").status, 200);
    // A client that sends its request a byte at a time, but in time, is answered.
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, tracker.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for b in b"GET /scrape HTTP/1.1\r\n\r\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert_eq!(split_response(&raw).map(|r| r.status), Some(200));
    tracker.assert_running();
}

/// With the swarm cap at 100, 10,000 distinct info-hashes (over UDP and HTTP) leave at
/// most 100 swarms and no lasting growth in memory; garbage datagrams get no answer.
#[test]
fn ten_thousand_info_hashes_and_garbage_keep_memory_bounded() {
    let scene = Scene::new();
    let mut tracker = ShoalTracker::start(
        scene.dir(),
        &["--max-torrents", "100", "--max-peers", "1000"],
        scene.deadline,
    );
    let hash = |i: u32| {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&i.to_be_bytes());
        h[19] = 0xee;
        h
    };
    let mut udp = UdpClient::new(tracker.addr());
    let rss_start = tracker.rss_kib();
    for i in 0..9_000u32 {
        match udp.announce(&Ann::new(hash(i), (i % 1000) as u16, 1)) {
            UdpResponse::Announce(_) => {}
            other => panic!("{other:?}"),
        }
    }
    for i in 9_000..10_000u32 {
        let r = get(
            tracker.port,
            &format!("/announce?{}", Ann::new(hash(i), 1, 1).query()),
        );
        assert!(parse_announce_response(&r.body).is_ok());
    }
    let files = parse_scrape_response(&get(tracker.port, "/scrape").body).unwrap();
    assert_eq!(files.len(), 100);
    // The survivors are the last hundred announced.
    assert!(files
        .iter()
        .all(|(h, _)| u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]) >= 9_900));

    // Garbage of every size: no answer, no crash.
    let mut x = 0x1234_5678_u32;
    for len in 0..1500usize {
        let datagram: Vec<u8> = (0..len % 300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        udp.socket.send_to(&datagram, tracker.addr()).unwrap();
    }
    // A forged connection id gets nothing either.
    let mut forged =
        UdpRequest::Announce(shoal_core::tracker::udp::UdpAnnounceRequest::from_params(
            0xdead_beef,
            1,
            &Ann::new(hash(1), 1, 1).udp_params(),
        ))
        .encode();
    forged.truncate(98);
    assert_eq!(udp.exchange(&forged), None);
    // Still answering, with a fresh connection.
    let mut fresh = UdpClient::new(tracker.addr());
    assert!(matches!(
        fresh.announce(&Ann::new(hash(1), 1, 1)),
        UdpResponse::Announce(_)
    ));
    let rss_end = tracker.rss_kib();
    // Measured: ~1.1 MiB of growth (buffers, the 100 swarms). Uncapped, the 10,000
    // swarms and their peers would take ~5 MB more (`ServerConfig`'s estimate): 4 MiB
    // tells the two apart.
    assert!(
        rss_end < rss_start + 4 * 1024,
        "memory grew from {rss_start} KiB to {rss_end} KiB"
    );
    tracker.assert_running();
    // UDP answers to a garbage-free scrape still carry one entry per hash.
    let id = fresh.connect();
    let scrape = UdpRequest::Scrape {
        connection_id: id,
        transaction_id: 9,
        info_hashes: vec![InfoHash(hash(9_999)), InfoHash(hash(1))],
    };
    let answer = fresh.exchange(&scrape.encode()).unwrap();
    match UdpResponse::decode(&answer, IpFamily::V4).unwrap() {
        UdpResponse::Scrape { stats, .. } => assert_eq!(stats.len(), 2),
        other => panic!("{other:?}"),
    }
}

/// The web server: an index page of the folder (names escaped), each `.torrent` by its
/// exact name with the right content type, nothing else; and the folder is the allow-list.
#[test]
fn torrent_files_index_page_and_allow_list() {
    let scene = Scene::new();
    let content = scene.path("content");
    std::fs::create_dir_all(&content).unwrap();
    let odd_name = "a <b> & \"c\".bin";
    std::fs::write(content.join(odd_name), vec![7u8; 100_000]).unwrap();
    std::fs::write(content.join("plain.bin"), vec![9u8; 5_000]).unwrap();
    let dir = scene.path("torrents");
    std::fs::create_dir_all(&dir).unwrap();
    mktorrent(
        &content.join(odd_name),
        &dir.join("odd one.torrent"),
        15,
        None,
    );
    mktorrent(
        &content.join("plain.bin"),
        &dir.join("plain.torrent"),
        15,
        None,
    );
    std::fs::write(dir.join("notes.txt"), b"not a torrent").unwrap();
    std::fs::write(dir.join("broken.torrent"), b"d4:infoi1ee").unwrap();
    let odd_hash = InfoHash::from_hex(&info_hash(&dir.join("odd one.torrent"))).unwrap();

    let mut tracker = ShoalTracker::start(
        scene.dir(),
        &["--torrents", dir.to_str().unwrap()],
        scene.deadline,
    );
    let page = get(tracker.port, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        html.contains("a &lt;b&gt; &amp; &quot;c&quot;.bin"),
        "{html}"
    );
    assert!(!html.contains(odd_name));
    assert!(html.contains("href=\"/odd%20one.torrent\""), "{html}");
    assert!(html.contains(&format!("magnet:?xt=urn:btih:{}", odd_hash.to_hex())));
    assert!(html.contains("97.7 KiB"), "{html}");
    assert!(html.contains("plain.bin"));
    assert!(!html.contains("broken"));

    let file = get(tracker.port, "/odd%20one.torrent");
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("Content-Type"),
        Some("application/x-bittorrent")
    );
    assert_eq!(
        file.body,
        std::fs::read(dir.join("odd one.torrent")).unwrap()
    );
    for bad in [
        "/odd one.torrent",
        "/notes.txt",
        "/broken.torrent",
        "/../torrents/plain.torrent",
        "/%2e%2e/torrents/plain.torrent",
        "/torrents/plain.torrent",
        "//etc/passwd",
        "/plain.torrent/",
        "/PLAIN.torrent",
    ] {
        let r = raw_exchange(
            tracker.port,
            format!("GET {bad} HTTP/1.1\r\n\r\n").as_bytes(),
        );
        let status = split_response(&r).map(|r| r.status);
        assert!(matches!(status, Some(404) | Some(400)), "{bad}: {status:?}");
    }

    // Only the folder's torrents are tracked.
    let r = get(
        tracker.port,
        &format!("/announce?{}", Ann::new(odd_hash.0, 1, 0).query()),
    );
    assert!(parse_announce_response(&r.body).is_ok());
    let r = get(
        tracker.port,
        &format!("/announce?{}", Ann::new(HASH, 1, 0).query()),
    );
    assert!(failure_of(&r.body).starts_with("unregistered torrent"));
    let mut udp = UdpClient::new(tracker.addr());
    assert!(matches!(
        udp.announce(&Ann::new(HASH, 1, 0)),
        UdpResponse::Error { .. }
    ));
    // The page counts the seed that announced.
    let html = String::from_utf8(get(tracker.port, "/").body).unwrap();
    assert!(html.contains("<td class=\"n\">1</td>"), "{html}");

    // With --open, anything is tracked, and the files are still served.
    let open = ShoalTracker::start(
        scene.dir(),
        &["--torrents", dir.to_str().unwrap(), "--open"],
        scene.deadline,
    );
    let r = get(
        open.port,
        &format!("/announce?{}", Ann::new(HASH, 1, 0).query()),
    );
    assert!(parse_announce_response(&r.body).is_ok());
    assert_eq!(get(open.port, "/plain.torrent").status, 200);
    tracker.assert_running();
}
