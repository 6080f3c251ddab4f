//! End to end, in one process on 127.0.0.1: sessions seed and download a multi-file torrent
//! to each other, and the data is checked byte for byte. Each scenario runs once under
//! async-std and once under smol, the same body (see `common::Exec`).
//!
//! The payload is the interop tests' (`runtime-mio/tests/support`): odd sizes, an empty
//! file, files smaller than a piece, nesting and a space in a name, 32 KiB pieces.

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use shoal_async_std::{AddOptions, Error, Event, State, TorrentSource};
use support::Payload;

const DEADLINE: Duration = Duration::from_secs(60);

/// A folder with the payload in `src/<name>` and its torrent (32 KiB pieces, no tracker).
struct Setup {
    tmp: tempfile::TempDir,
    payload: Payload,
    torrent: Vec<u8>,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::Builder::new()
            .prefix("shoal-async-std-")
            .tempdir()
            .unwrap();
        let payload = Payload::standard();
        let content = payload.write(&tmp.path().join("src"));
        let torrent = shoal_io::create_torrent(
            &content,
            &shoal_io::CreateOptions {
                piece_length: Some(32 * 1024),
                ..Default::default()
            },
        )
        .unwrap();
        std::fs::write(tmp.path().join("payload.torrent"), &torrent).unwrap();
        Setup {
            tmp,
            payload,
            torrent,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn src(&self) -> PathBuf {
        self.path("src")
    }

    fn torrent_file(&self) -> PathBuf {
        self.path("payload.torrent")
    }

    /// Serves the torrent once over HTTP on 127.0.0.1; returns its URL.
    fn serve_torrent(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = self.torrent.clone();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-bittorrent\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        });
        format!("http://127.0.0.1:{port}/payload.torrent")
    }
}

/// A seed (its torrent fetched by URL) and a leecher (its torrent from bytes) complete the
/// torrent; the leecher's files are exact, with final names. Then a new session over the
/// leecher's folder (torrent from a file) trusts the resume record: complete at once, no
/// piece hashed.
fn seed_and_leech<E: Exec>() {
    let setup = Setup::new();
    let dl = setup.path("dl");
    E::block_on(async {
        let deadline = Instant::now() + DEADLINE;
        let seed = session::<E>();
        let leech = session::<E>();
        let events = leech.events();
        let mut seen = Seen::default();

        let url = setup.serve_torrent();
        let s = seed
            .add_torrent(url.as_str(), setup.src(), AddOptions::default())
            .await
            .unwrap();
        let st = seed.stats(s).await.unwrap();
        assert!(st.progress.complete, "the seed has every piece: {st:?}");
        assert_eq!(st.name, setup.payload.name);

        let l = leech
            .add_torrent(
                TorrentSource::Bytes(setup.torrent.clone()),
                &dl,
                AddOptions {
                    peers: vec![seed.local_addr()],
                    ..AddOptions::default()
                },
            )
            .await
            .unwrap();
        wait_complete(&events, &mut seen, l, deadline, || {}).await;
        // Told "complete", the caller finds every file under its final name at once.
        setup.payload.assert_exact(&dl);
        let st = leech.stats(l).await.unwrap();
        assert!(st.progress.complete);
        assert!(st.progress.downloaded >= st.progress.total_length, "{st:?}");
        assert_eq!(leech.torrents().await.unwrap(), vec![l]);

        leech.shutdown().await;
        // The event stream ends with the session.
        while events.recv().await.is_ok() {}
        assert!(matches!(leech.stats(l).await, Err(Error::Closed)));
        let uploaded = seed.stats(s).await.unwrap().progress.uploaded;
        assert!(
            uploaded >= st.progress.total_length,
            "seed uploaded {uploaded}"
        );
        seed.shutdown().await;
    });
    setup.payload.assert_exact(&dl);
    assert!(
        shoal_io::resume::record_path(&dl, &info_hash(&setup.torrent)).exists(),
        "a resume record is saved on shutdown"
    );

    E::block_on(async {
        let again = session::<E>();
        let events = again.events();
        let t = again
            .add_torrent(setup.torrent_file(), &dl, AddOptions::default())
            .await
            .unwrap();
        assert!(again.stats(t).await.unwrap().progress.complete);
        // One `Checking` event, already done: the record was trusted, nothing hashed.
        match events.try_recv() {
            Ok(Event::Checking { done, total, .. }) => assert_eq!(done, total),
            other => panic!("expected one finished Checking event first, got {other:?}"),
        }
        again.shutdown().await;
    });
    setup.payload.assert_exact(&dl);
}

fn info_hash(torrent: &[u8]) -> shoal_core::InfoHash {
    shoal_core::metainfo::Metainfo::parse(torrent)
        .unwrap()
        .info_hash
}

#[test]
fn seed_and_leech_under_async_std() {
    seed_and_leech::<AsyncStd>();
}

#[test]
fn seed_and_leech_under_smol() {
    seed_and_leech::<Smol>();
}

/// Copies `src/<name>` to `dir/<name>` leaving out `skip` (a path inside the content).
fn copy_without(from: &Path, to: &Path, skip: &Path) {
    for file in support::walk(from) {
        let rel = file.strip_prefix(from).unwrap();
        if rel.ends_with(skip) {
            continue;
        }
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, dest).unwrap();
    }
}

/// A leecher gets what a partial seed has, is paused (keeping its pieces, no peers), is
/// resumed (the same pieces, nothing checked again), then completes from a full seed given
/// with `add_peer`, and is removed (files kept, record saved, key gone).
fn pause_resume_remove<E: Exec>() {
    let setup = Setup::new();
    let partial = setup.path("partial");
    let name = &setup.payload.name;
    copy_without(
        &setup.src().join(name),
        &partial.join(name),
        Path::new("sub/deeper/odd.bin"),
    );
    let dl = setup.path("dl");
    E::block_on(async {
        let deadline = Instant::now() + DEADLINE;
        let part_seed = session::<E>();
        let leech = session::<E>();
        let events = leech.events();
        let mut seen = Seen::default();

        let p = part_seed
            .add_torrent(setup.torrent_file(), &partial, AddOptions::default())
            .await
            .unwrap();
        let has = part_seed.stats(p).await.unwrap().progress;
        assert!(has.pieces_verified > 0 && !has.complete, "{has:?}");

        let l = leech
            .add_torrent(
                setup.torrent_file(),
                &dl,
                AddOptions {
                    peers: vec![part_seed.local_addr()],
                    ..AddOptions::default()
                },
            )
            .await
            .unwrap();
        let again = leech
            .add_torrent(
                setup.torrent_file(),
                setup.path("elsewhere"),
                AddOptions::default(),
            )
            .await;
        assert!(
            matches!(again, Err(Error::AlreadyAdded(k)) if k == l),
            "{again:?}"
        );

        wait_event(
            &events,
            &mut seen,
            "every piece of the partial seed",
            deadline,
            |e| {
                matches!(e, Event::Progress { torrent, stats }
                if *torrent == l && stats.pieces_verified == has.pieces_verified)
            },
            || {},
        )
        .await;

        leech.pause(l).await.unwrap();
        leech.pause(l).await.unwrap(); // twice: nothing more
        let st = leech.stats(l).await.unwrap();
        assert_eq!(st.state, State::Paused);
        assert_eq!(st.progress.pieces_verified, has.pieces_verified);
        assert_eq!(st.progress.peers, 0);
        assert!(st.progress.downloaded > 0, "totals survive a pause: {st:?}");
        wait_event(
            &events,
            &mut seen,
            "Paused",
            deadline,
            |e| matches!(e, Event::Paused { torrent } if *torrent == l),
            || {},
        )
        .await;

        leech.resume(l).await.unwrap();
        let st = leech.stats(l).await.unwrap();
        assert_eq!(st.state, State::Running);
        assert_eq!(st.progress.pieces_verified, has.pieces_verified);

        let full_seed = session::<E>();
        full_seed
            .add_torrent(setup.torrent_file(), setup.src(), AddOptions::default())
            .await
            .unwrap();
        leech.add_peer(l, full_seed.local_addr()).await.unwrap();
        wait_complete(&events, &mut seen, l, deadline, || {}).await;
        let st = leech.stats(l).await.unwrap();
        // What the partial seed gave was never fetched again: at most the missing part
        // (and a little: blocks in flight at the pause) comes from the full seed.
        let missing = st.progress.total_length - has.bytes_verified;
        assert!(
            st.progress.downloaded <= has.bytes_verified + missing + 2 * 32 * 1024,
            "downloaded {} of {}: pieces were fetched twice",
            st.progress.downloaded,
            st.progress.total_length
        );

        leech.remove(l).await.unwrap();
        assert!(matches!(leech.stats(l).await, Err(Error::NoSuchTorrent(k)) if k == l));
        assert!(matches!(
            leech.resume(l).await,
            Err(Error::NoSuchTorrent(_))
        ));
        assert!(leech.torrents().await.unwrap().is_empty());
        wait_event(
            &events,
            &mut seen,
            "Removed",
            deadline,
            |e| matches!(e, Event::Removed { torrent } if *torrent == l),
            || {},
        )
        .await;
        for s in [&leech, &part_seed, &full_seed] {
            s.shutdown().await;
        }
    });
    setup.payload.assert_exact(&dl);
    assert!(shoal_io::resume::record_path(&dl, &info_hash(&setup.torrent)).exists());
}

#[test]
fn pause_resume_remove_under_async_std() {
    pause_resume_remove::<AsyncStd>();
}

#[test]
fn pause_resume_remove_under_smol() {
    pause_resume_remove::<Smol>();
}

/// Dropping every handle shuts the session down like `shutdown`: the resume record is
/// written, the port is released.
fn drop_shuts_down<E: Exec>() {
    let setup = Setup::new();
    let (addr, events) = E::block_on(async {
        let s = session::<E>();
        s.add_torrent(setup.torrent_file(), setup.src(), AddOptions::default())
            .await
            .unwrap();
        (s.local_addr(), s.events())
    });
    E::block_on(async {
        let deadline = Instant::now() + DEADLINE;
        poll_until("the dropped session's events end", deadline, || loop {
            match events.try_recv() {
                Ok(_) => {}
                Err(async_channel::TryRecvError::Closed) => return Ok(()),
                Err(async_channel::TryRecvError::Empty) => return Err("still open".into()),
            }
        })
        .await;
    });
    assert!(shoal_io::resume::record_path(&setup.src(), &info_hash(&setup.torrent)).exists());
    TcpListener::bind(addr).expect("the port is free again");
}

#[test]
fn drop_shuts_down_under_async_std() {
    drop_shuts_down::<AsyncStd>();
}

#[test]
fn drop_shuts_down_under_smol() {
    drop_shuts_down::<Smol>();
}
