//! Faults a user's machine throws at a download, each ending with the exact data:
//!
//! - `shoal download` killed with SIGKILL (no chance to save anything) at three points,
//!   restarted each time, never downloads again a piece it had verified before the kill;
//! - a disk that fills midway stops the download with the disk's error; once there is
//!   room, the same command completes;
//! - a tracker that answers garbage, one that answers a byte at a time, and one that never
//!   answers: none stops the download (the slow one's answer is the only way to the seed);
//! - a peer that sends half a block and vanishes costs that block only.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;

const PIECE: u64 = 32 * 1024;

/// The pieces verified in a plain progress line (`… 12.5% of 8.0 MiB …, 32/256 pieces`;
/// not the `checking existing data` lines).
fn verified(line: &str) -> Option<u64> {
    if !line.contains("% of ") {
        return None;
    }
    let count = line.strip_suffix(" pieces")?.rsplit(' ').next()?;
    count.split('/').next()?.parse().ok()
}

/// `downloaded N bytes` of the summary line.
fn downloaded(line: &str) -> Option<u64> {
    line.strip_prefix("summary: downloaded ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_download_killed_three_times_resumes_each_time_and_completes_exactly() {
    let scene = Scene::with_payload(Payload::new("content", &[("data.bin", 8 << 20)]));
    let torrent = scene.torrent(None);
    let pieces = (8 << 20) / PIECE;
    let seed_port = free_port();
    let _seed = scene.ready_seed(Seeder::Libtorrent, &torrent, seed_port);
    let out = scene.path("dl");
    let part = out.join("content/data.bin.part");
    let mut seen = 0;
    for round in 1..=3u64 {
        // Held to 1 MiB/s (~8 s for all of it), so each kill finds it part of the way.
        let mut dl = shoal_download(
            &format!("shoal-{round}"),
            &torrent,
            &out,
            free_port(),
            &[seed_port],
            &["--no-seed", "--download-limit", "1M"],
            scene.dir(),
        );
        let goal = round * pieces / 4;
        let line = dl.wait_for_line(
            &format!("progress past {goal} pieces"),
            scene.deadline,
            |l| verified(l).is_some_and(|v| v >= goal),
        );
        seen = verified(&line).unwrap();
        dl.kill_now();
        assert!(part.exists(), "round {round}: the .part file is gone");
        assert!(
            !out.join("content/data.bin").exists(),
            "round {round}: an unfinished file has its final name"
        );
    }
    let mut last = shoal_download(
        "shoal-last",
        &torrent,
        &out,
        free_port(),
        &[seed_port],
        &["--no-seed"],
        scene.dir(),
    );
    last.wait_success(scene.deadline);
    scene.payload.assert_exact(&out);
    let summary = last.wait_for_line("a summary", scene.deadline, |l| downloaded(l).is_some());
    let fetched = downloaded(&summary).unwrap();
    let left = (pieces - seen) * PIECE;
    assert!(
        fetched <= left,
        "the last run fetched {fetched} bytes; only {left} were not verified before the \
         last kill\n{}",
        last.tail(30)
    );
}

#[test]
fn a_disk_that_fills_midway_then_gets_room_lets_the_same_command_complete() {
    let scene = Scene::with_payload(Payload::new("content", &[("data.bin", 4 << 20)]));
    let torrent = scene.torrent(None);
    let seed_port = free_port();
    let _seed = scene.ready_seed(Seeder::Libtorrent, &torrent, seed_port);
    // 1 MiB cannot hold the 4 MiB download: it stops with the disk's error.
    let disk = Tmpfs::mount(&scene.path("disk"), "1m");
    let download = |name: &str| {
        shoal_download(
            name,
            &torrent,
            &disk.0,
            free_port(),
            &[seed_port],
            &["--no-seed"],
            scene.dir(),
        )
    };
    let mut full = download("shoal-full");
    let status = full.wait_exit(scene.deadline);
    assert_eq!(status.code(), Some(1), "{}", full.tail(20));
    assert!(
        full.said("No space left on device"),
        "no word of the full disk:\n{}",
        full.tail(20)
    );
    assert!(!disk.0.join("content/data.bin").exists());
    // Room made, the same command again: it completes, exactly.
    disk.grow("16m");
    let mut again = download("shoal-again");
    again.wait_success(scene.deadline);
    scene.payload.assert_exact(&disk.0);
}

/// An HTTP tracker on 127.0.0.1 that reads each request and then answers `answer`, a byte
/// at a time every `gap` (`None`: never answers, and holds the connection open). Returns
/// its announce URL and how many requests it read. Its thread ends with the test process.
fn bad_tracker(answer: Option<Vec<u8>>, gap: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else {
                continue;
            };
            let mut request = [0u8; 4096];
            if !matches!(stream.read(&mut request), Ok(n) if n > 0) {
                continue;
            }
            count.fetch_add(1, Ordering::SeqCst);
            match &answer {
                Some(bytes) => {
                    for b in bytes {
                        if stream.write_all(&[*b]).is_err() {
                            break;
                        }
                        // The slowness of this tracker, not a wait for anything.
                        std::thread::sleep(gap);
                    }
                }
                None => held.push(stream),
            }
        }
    });
    (url, asked)
}

#[test]
fn a_tracker_that_answers_garbage_slowly_or_never_does_not_stop_the_download() {
    let scene = Scene::new();
    let seed_port = free_port();
    let seed_torrent = scene.torrent(None);
    let _seed = scene.ready_seed(Seeder::Libtorrent, &seed_torrent, seed_port);
    let garbage = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nnot bencode".to_vec();
    // A good answer naming the seed, trickled over about two seconds.
    let mut body = b"d8:intervali1800e5:peers6:".to_vec();
    body.extend([127, 0, 0, 1]);
    body.extend(seed_port.to_be_bytes());
    body.push(b'e');
    let mut slow =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    slow.extend(body);
    let cases = [
        ("garbage", Some(garbage), Duration::ZERO, true),
        ("slow", Some(slow), Duration::from_millis(25), false),
        ("silent", None, Duration::ZERO, true),
    ];
    for (name, answer, gap, dial_the_seed) in cases {
        let (url, asked) = bad_tracker(answer, gap);
        let torrent = scene.path(&format!("{name}.torrent"));
        mktorrent(&scene.content(), &torrent, 15, Some(&url));
        let out = scene.path(&format!("dl-{name}"));
        // The slow tracker's answer is the only way to the seed; the others have it given.
        let peers: &[u16] = if dial_the_seed { &[seed_port] } else { &[] };
        let mut dl = shoal_download(
            &format!("shoal-{name}"),
            &torrent,
            &out,
            free_port(),
            peers,
            &["--no-seed", "--no-dht"],
            scene.dir(),
        );
        dl.wait_success(scene.deadline);
        scene.payload.assert_exact(&out);
        assert!(
            asked.load(Ordering::SeqCst) >= 1,
            "{name}: the tracker was never asked"
        );
        if name == "garbage" {
            assert!(
                dl.said(&format!("tracker {url}: ")) && dl.said("next try in"),
                "the garbage was not reported:\n{}",
                dl.tail(20)
            );
        }
    }
}

#[test]
fn a_peer_that_vanishes_mid_block_costs_that_block_and_nothing_else() {
    let scene = Scene::with_payload(Payload::new("content", &[("data.bin", 4 << 20)]));
    let torrent = scene.torrent(None);
    let pieces = ((4 << 20) / PIECE) as usize;
    // A seed held to 512 kB/s, so the vanishing peer is asked for blocks too.
    let seed_port = free_port();
    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        seed_port,
        &["--upload-limit", "512000"],
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    // The other peer: has every piece, unchokes at once, answers the first request with
    // a piece message of half the block, and closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let vanishing = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut handshake = [0u8; 68];
        s.read_exact(&mut handshake).unwrap();
        let mut out = vec![19];
        out.extend(b"BitTorrent protocol");
        out.extend([0u8; 8]);
        out.extend(&handshake[28..48]);
        out.extend(b"-XX0000-vanishing-01");
        let bits = pieces.div_ceil(8);
        out.extend((1 + bits as u32).to_be_bytes());
        out.push(5);
        out.extend(std::iter::repeat_n(0xff, bits));
        out.extend([0, 0, 0, 1, 1]); // unchoke
        s.write_all(&out).unwrap();
        let request = loop {
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut body).unwrap();
            if body.first() == Some(&6) {
                break body;
            }
        };
        let length = u32::from_be_bytes(request[9..13].try_into().unwrap());
        let mut piece = (9 + length).to_be_bytes().to_vec();
        piece.push(7);
        piece.extend(&request[1..9]);
        piece.extend(vec![0u8; length as usize / 2]);
        s.write_all(&piece).unwrap();
        tx.send(length).unwrap();
    });
    let out = scene.path("dl");
    let mut dl = shoal_download(
        "shoal",
        &torrent,
        &out,
        free_port(),
        &[vanishing, seed_port],
        &["--no-seed"],
        scene.dir(),
    );
    let length = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("shoal never asked the vanishing peer for a block");
    assert!(length > 0);
    dl.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_exact(&out);
    assert!(
        !dl.said("failed its hash check"),
        "the half block was used:\n{}",
        dl.tail(30)
    );
}
