//! A session downloads from a web seed alone (BEP 19): Debian's nginx, started with a
//! config of our own on 127.0.0.1, serves the interop payload; the torrent names it in its
//! `url-list` and has no tracker; no peer is given. Under async-std and under smol.
//!
//! Needs Debian's nginx (`scripts/test` installs it). A missing tool fails the test.

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::*;
use shoal_async_std::{AddOptions, TorrentSource};
use support::{Nginx, Payload};

const DEADLINE: Duration = Duration::from_secs(60);

fn download_from_nginx<E: Exec>() {
    let tmp = tempfile::Builder::new()
        .prefix("shoal-async-std-webseed-")
        .tempdir()
        .unwrap();
    let payload = Payload::standard();
    let content = payload.write(&tmp.path().join("www"));
    let nginx = Nginx::start(
        &tmp.path().join("www"),
        &tmp.path().join("nginx"),
        Instant::now() + DEADLINE,
    );
    let torrent = shoal_io::create_torrent(
        &content,
        &shoal_io::CreateOptions {
            piece_length: Some(32 * 1024),
            web_seeds: vec![nginx.url()],
            ..Default::default()
        },
    )
    .unwrap();
    let dl = tmp.path().join("dl");
    E::block_on(async {
        let deadline = Instant::now() + DEADLINE;
        let leech = session::<E>();
        let events = leech.events();
        let mut seen = Seen::default();
        let t = leech
            .add_torrent(TorrentSource::Bytes(torrent), &dl, AddOptions::default())
            .await
            .unwrap();
        wait_complete(&events, &mut seen, t, deadline, || {}).await;
        let st = leech.stats(t).await.unwrap();
        assert!(st.progress.complete);
        assert!(
            !seen.any("WebSeed"),
            "the web seed failed:\n{}",
            seen.tail()
        );
        assert!(!seen.any("PeerConnected"), "{}", seen.tail());
        leech.shutdown().await;
        while events.recv().await.is_ok() {}
    });
    payload.assert_exact(&dl);
}

#[test]
fn session_downloads_from_nginx_alone_under_async_std() {
    download_from_nginx::<AsyncStd>();
}

#[test]
fn session_downloads_from_nginx_alone_under_smol() {
    download_from_nginx::<Smol>();
}
