//! `shoal serve DIR` over real sockets: shoal downloads from it with the server as the
//! only source (its web seed, a single-file and a multi-file torrent); the content is
//! served as HTTP/1.1 says (ranges, 416, HEAD, If-Modified-Since, keep-alive); and what
//! hostile clients get: paths that try to leave the folder (404, nothing of the file
//! outside), odd ranges, a head that never ends, a client that never finishes its head,
//! more connections than an address may hold.
//!
//! Every test starts its own server on 127.0.0.1 with a free port; the process is killed
//! when the test ends, and its log is shown if the test fails.

mod support;
mod tracker_support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;
use tracker_support::*;

const SINGLE: &str = "one file.iso";

/// A scene whose `www/` holds the standard payload (a folder) and one 6 MB file with a
/// space in its name: what `shoal serve www` serves.
fn served_scene() -> (Scene, PathBuf, Vec<u8>) {
    let scene = Scene::new();
    let www = scene.path("www");
    scene.payload.write(&www);
    let data = noise(77, 6_000_001);
    std::fs::write(www.join(SINGLE), &data).unwrap();
    (scene, www, data)
}

/// Pseudo-random bytes, different for each seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn shoal_downloads_from_shoal_serve_as_its_only_source() {
    let (scene, www, data) = served_scene();
    let mut serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    let dl = scene.path("dl");
    for (name, torrent) in [
        ("shoal-multi", serve.url("payload.torrent")),
        ("shoal-single", serve.url("one%20file.iso.torrent")),
    ] {
        let mut shoal = shoal_download(
            name,
            Path::new(&torrent),
            &dl,
            free_port(),
            &[],
            &["--no-seed"],
            scene.dir(),
        );
        shoal.wait_success(scene.deadline);
    }
    scene.payload.assert_exact(&dl);
    assert!(std::fs::read(dl.join(SINGLE)).unwrap() == data);
    serve.assert_running();
}

#[test]
fn content_is_served_with_ranges_conditions_and_keep_alive() {
    let (scene, www, data) = served_scene();
    let serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    let port = serve.port;
    let file = "/files/one%20file.iso";
    let len = data.len();

    let whole = request(port, "GET", file, "");
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.header("Content-Length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(whole.header("Accept-Ranges"), Some("bytes"));
    assert!(whole.body == data, "the whole file, byte for byte");

    let head = request(port, "HEAD", file, "");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(len.to_string().as_str())
    );
    assert!(head.body.is_empty());

    let part = request(port, "GET", file, "Range: bytes=1000-1999\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("Content-Range"),
        Some(format!("bytes 1000-1999/{len}").as_str())
    );
    assert!(part.body == data[1000..2000]);

    let tail = request(port, "GET", file, "Range: bytes=-10\r\n");
    assert_eq!(tail.status, 206);
    assert!(tail.body == data[len - 10..]);

    // A file of a multi-file torrent, by its percent-encoded path.
    let nested = request(port, "GET", "/files/payload/sub/one%20piece.bin", "");
    assert_eq!(nested.status, 200);
    assert!(nested.body == scene.payload.files[Path::new("sub/one piece.bin")]);

    // Conditional: not modified since its own Last-Modified.
    let modified = whole
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    let cond = request(
        port,
        "GET",
        file,
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(cond.status, 304);
    assert!(cond.body.is_empty());

    // Two requests sent at once on one connection: both answered, in order.
    let raw = raw_exchange(
        port,
        format!(
            "GET {file} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n\
             GET {file} HTTP/1.1\r\nHost: x\r\nRange: bytes=4-7\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let first = split_response(&raw).expect("a first answer");
    assert_eq!(first.status, 206);
    assert_eq!(first.header("Connection"), Some("keep-alive"));
    let second = split_response(&first.body[4..]).expect("a second answer");
    assert_eq!(second.status, 206);
    assert!(first.body[..4] == data[..4] && second.body == data[4..8]);
}

#[test]
fn odd_ranges_get_a_sane_answer() {
    let (scene, www, data) = served_scene();
    let serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    let (port, file, len) = (serve.port, "/files/one%20file.iso", data.len());

    for past_end in [
        format!("bytes={len}-"),
        "bytes=99999999999999999999999999-".to_string(),
        "bytes=-0".to_string(),
    ] {
        let r = request(port, "GET", file, &format!("Range: {past_end}\r\n"));
        assert_eq!(r.status, 416, "{past_end}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes */{len}").as_str())
        );
        assert!(r.body.is_empty());
    }
    // Several ranges, overlapping, hundreds of them: one answer, the whole file once.
    let many = format!("bytes={}", vec!["0-4000000"; 400].join(","));
    let r = request(port, "GET", file, &format!("Range: {many}\r\n"));
    assert_eq!(r.status, 200);
    assert!(r.body == data);
    // Garbage is ignored, as RFC 9110 says: the whole file.
    for garbage in ["bytes=9-3", "pages=1-2", "bytes=x-y"] {
        let r = request(port, "GET", file, &format!("Range: {garbage}\r\n"));
        assert_eq!(r.status, 200, "{garbage}");
        assert_eq!(r.body.len(), len);
    }
    // The last position cut to the file's end.
    let r = request(
        port,
        "GET",
        file,
        "Range: bytes=5999990-99999999999999999999\r\n",
    );
    assert_eq!(r.status, 206);
    assert!(r.body == data[5_999_990..]);
}

#[test]
fn nothing_outside_the_folder_is_served() {
    let (scene, www, _) = served_scene();
    let secret = b"the secret outside the served folder";
    std::fs::write(scene.path("secret.txt"), secret).unwrap();
    // A folder with a link leading out, and a link at the top: neither is served.
    std::fs::create_dir_all(www.join("linked")).unwrap();
    std::fs::write(www.join("linked/ok.txt"), b"fine").unwrap();
    std::os::unix::fs::symlink(scene.path("secret.txt"), www.join("linked/out.txt")).unwrap();
    std::os::unix::fs::symlink(scene.path("secret.txt"), www.join("top-link")).unwrap();

    let mut serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    assert!(
        serve.proc.said("not serving linked"),
        "{}",
        serve.proc.tail(20)
    );
    assert!(
        serve.proc.said("not serving top-link"),
        "{}",
        serve.proc.tail(20)
    );
    let port = serve.port;
    for target in [
        "/files/linked/out.txt",
        "/files/linked/ok.txt",
        "/files/top-link",
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/payload/../../secret.txt",
        "/files/payload/..%2F..%2Fsecret.txt",
        "/files/payload%2F..%2F..%2Fsecret.txt",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
        "/../secret.txt",
        "/files/payload/sub",
        "/files/payload",
        "/files/.shoal-serve/stamps/payload",
        "/files/payload/tiny.txt%00.torrent",
        "/secret.txt",
    ] {
        let r = request(port, "GET", target, "");
        assert_eq!(r.status, 404, "{target}: {}", r.head);
        assert!(
            !r.body.windows(secret.len()).any(|w| w == secret),
            "{target} leaked the file"
        );
    }
    // What is served still is.
    assert_eq!(
        request(port, "GET", "/files/payload/tiny.txt", "").status,
        200
    );
    serve.assert_running();
}

#[test]
fn hostile_clients_are_bounded() {
    let (scene, www, _) = served_scene();
    let mut serve = ShoalServe::start(
        &www,
        scene.dir(),
        &["--http-timeout", "1", "--max-connections-per-address", "8"],
        scene.deadline,
    );
    let port = serve.port;
    let connect = || {
        let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    };

    // A head that never ends: refused once it passes the limit, and closed.
    let mut endless = connect();
    let mut answer = Vec::new();
    let _ = endless.write_all(b"GET /files/payload/tiny.txt HTTP/1.1\r\n");
    for _ in 0..2000 {
        if endless
            .write_all(b"X-Filler: aaaaaaaaaaaaaaaa\r\n")
            .is_err()
        {
            break;
        }
    }
    let _ = endless.read_to_end(&mut answer);
    let r = split_response(&answer).expect("an answer to the endless head");
    assert_eq!(r.status, 431);

    // A client that never finishes its head (slowloris) is closed by the server.
    let mut slow = connect();
    slow.write_all(b"GET /files/payload/tiny.txt HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut rest = Vec::new();
    match slow.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "no answer to half a head"),
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the server closes a silent client, got {e}"
        ),
    }

    // One address holds at most 8 connections; the next is refused with 503 at once.
    // (Tried again with new connections if the server's timeout closed some of the eight
    // before the ninth came: a busy machine.)
    let mut idle: Vec<TcpStream> = Vec::new();
    wait_until(
        "a connection over the share refused",
        scene.deadline,
        || {
            idle = (0..8).map(|_| connect()).collect();
            let mut extra = connect();
            let mut got = Vec::new();
            let _ = extra.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
            let _ = extra.read_to_end(&mut got);
            match split_response(&got) {
                Some(r) if r.status == 503 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    drop(idle);
    // Once they are gone (closed by the client, or by the server's timeout), it serves.
    wait_until("served again", scene.deadline, || {
        let r = request(port, "GET", "/files/payload/tiny.txt", "");
        if r.status == 200 {
            Ok(())
        } else {
            Err(r.head)
        }
    });
    serve.assert_running();
}

#[test]
fn index_magnets_carry_this_tracker_and_this_web_seed() {
    let (scene, www, _) = served_scene();
    let serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    let page = String::from_utf8(request(serve.port, "GET", "/", "").body).unwrap();
    let tr = format!("&tr=http%3A%2F%2F127.0.0.1%3A{}%2Fannounce", serve.port);
    let ws = format!("&ws=http%3A%2F%2F127.0.0.1%3A{}%2Ffiles%2F", serve.port);
    let links: Vec<&str> = page.split("href=\"magnet:").skip(1).collect();
    assert_eq!(links.len(), 2, "{page}");
    for link in links {
        let link = &link[..link.find('"').unwrap()].replace("&amp;", "&");
        assert!(link.contains(&tr) && link.contains(&ws), "{link}");
    }
}

#[test]
fn shoal_tracker_magnets_name_the_tracker_they_were_asked_from() {
    let scene = Scene::new();
    let torrents = scene.path("torrents");
    std::fs::create_dir_all(&torrents).unwrap();
    let torrent = scene.torrent(Some("http://elsewhere.example/announce"));
    std::fs::copy(&torrent, torrents.join("payload.torrent")).unwrap();
    let tracker = ShoalTracker::start(
        scene.dir(),
        &["--torrents", torrents.to_str().unwrap()],
        scene.deadline,
    );
    let page = String::from_utf8(get(tracker.port, "/").body).unwrap();
    // `get` asks for Host 127.0.0.1: this tracker first, then the torrent's own.
    let link = page.split("href=\"magnet:").nth(1).expect("a magnet link");
    let link = link[..link.find('"').unwrap()].replace("&amp;", "&");
    let m = shoal_core::magnet::Magnet::parse(&format!("magnet:{link}")).unwrap();
    assert_eq!(
        m.trackers,
        [
            "http://127.0.0.1/announce",
            "http://elsewhere.example/announce"
        ]
    );
    assert!(
        !link.contains("&ws="),
        "a tracker serves no content: {link}"
    );
}

#[test]
fn torrents_follow_the_content() {
    let (scene, www, _) = served_scene();
    let serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    let port = serve.port;
    let info_hash = |target: &str| {
        let r = request(port, "GET", target, "");
        (r.status == 200).then(|| {
            shoal_core::metainfo::Metainfo::parse(&r.body)
                .expect("a torrent")
                .info_hash
        })
    };
    let before = info_hash("/payload.torrent").expect("payload.torrent served");

    // A file of the folder grows; a new file appears; the single file goes.
    let grown = www.join("payload/tiny.txt");
    let mut data = std::fs::read(&grown).unwrap();
    data.extend_from_slice(b"more bytes");
    std::fs::write(&grown, &data).unwrap();
    std::fs::write(www.join("new.txt"), b"a new file").unwrap();
    std::fs::remove_file(www.join(SINGLE)).unwrap();

    wait_until("the torrents made again", scene.deadline, || {
        match (
            info_hash("/payload.torrent"),
            info_hash("/new.txt.torrent"),
            info_hash("/one%20file.iso.torrent"),
        ) {
            (Some(now), Some(_), None) if now != before => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    // The new torrent and the served bytes agree.
    let r = request(port, "GET", "/files/payload/tiny.txt", "");
    assert!(r.body == data);
    let r = request(port, "GET", "/payload.torrent", "");
    let meta = shoal_core::metainfo::Metainfo::parse(&r.body).unwrap();
    let tiny = meta
        .info
        .files
        .iter()
        .find(|f| f.path == ["payload", "tiny.txt"])
        .unwrap();
    assert_eq!(tiny.length, data.len() as u64);
    assert_eq!(
        request(port, "GET", "/files/one%20file.iso", "").status,
        404
    );
}

#[test]
fn a_thousand_connections_are_refused_past_the_limit_in_bounded_memory() {
    let (scene, www, _) = served_scene();
    let mut serve = ShoalServe::start(
        &www,
        scene.dir(),
        &[
            "--max-connections",
            "100",
            "--max-connections-per-address",
            "100000",
        ],
        scene.deadline,
    );
    let port = serve.port;
    let rss_before = rss_kib(serve.proc.id());
    // A thousand connections that send nothing: 100 are held (until the timeout), the
    // others answered 503 and closed at once.
    let mut conns: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut refused = vec![false; conns.len()];
    wait_until("900 refusals", scene.deadline, || {
        for (s, r) in conns.iter_mut().zip(refused.iter_mut()) {
            let mut buf = [0u8; 64];
            if !*r
                && matches!(s.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 503"))
            {
                *r = true;
            }
        }
        let n = refused.iter().filter(|r| **r).count();
        if n >= 900 {
            Ok(())
        } else {
            Err(format!("{n} refused"))
        }
    });
    assert!(
        refused.iter().filter(|r| **r).count() <= 900,
        "no more than the limit's worth is refused"
    );
    let rss_after = rss_kib(serve.proc.id());
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    drop(conns);
    wait_until("served again", scene.deadline, || {
        let r = request(port, "GET", "/files/payload/tiny.txt", "");
        if r.status == 200 {
            Ok(())
        } else {
            Err(r.head)
        }
    });
    serve.assert_running();
}

/// A process's resident memory in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
