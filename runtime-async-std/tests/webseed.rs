//! A session downloads from a web seed alone (BEP 19): Debian's nginx, started with a
//! config of our own on 127.0.0.1, serves the interop payload; the torrent names it in its
//! `url-list` and has no tracker; no peer is given. Under async-std and under smol.
//! And the connections: jobs share keep-alive connections, and a server that closes each
//! connection after its answer without saying so still serves.
//!
//! Needs Debian's nginx (`scripts/test` installs it). A missing tool fails the test.

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::*;
use shoal_async_std::{AddOptions, TorrentSource};
use support::{counting_server, Nginx, Payload, Reuse};

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

/// A session downloads a 6 MB file (several web seed jobs) from a [`counting_server`]
/// alone: exact data, no web seed event; returns (connections, requests) it saw.
fn download_counted(reuse: Reuse) -> (usize, usize) {
    let tmp = tempfile::Builder::new()
        .prefix("shoal-async-std-webseed-")
        .tempdir()
        .unwrap();
    let content = tmp.path().join("file.bin");
    let data: Vec<u8> = (0..6_000_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&content, &data).unwrap();
    let (url, served) = counting_server(data.clone(), reuse);
    let torrent = shoal_io::create_torrent(
        &content,
        &shoal_io::CreateOptions {
            piece_length: Some(64 * 1024),
            web_seeds: vec![url],
            ..Default::default()
        },
    )
    .unwrap();
    let dl = tmp.path().join("dl");
    AsyncStd::block_on(async {
        let deadline = Instant::now() + DEADLINE;
        let leech = session::<AsyncStd>();
        let events = leech.events();
        let mut seen = Seen::default();
        let t = leech
            .add_torrent(TorrentSource::Bytes(torrent), &dl, AddOptions::default())
            .await
            .unwrap();
        wait_complete(&events, &mut seen, t, deadline, || {}).await;
        assert!(
            !seen.any("WebSeed"),
            "the web seed failed:\n{}",
            seen.tail()
        );
        leech.shutdown().await;
        while events.recv().await.is_ok() {}
    });
    assert!(std::fs::read(dl.join("file.bin")).unwrap() == data);
    served.get()
}

#[test]
fn jobs_share_keep_alive_connections() {
    let (connections, requests) = download_counted(Reuse::KeepAlive);
    // As in runtime-mio's test: two jobs under way at most, on connections kept alive.
    assert!(requests >= 6, "{requests} requests");
    assert!(
        connections <= 2,
        "{connections} connections for {requests} requests"
    );
}

#[test]
fn a_server_that_closes_idle_connections_unannounced_still_serves() {
    let (connections, requests) = download_counted(Reuse::CloseSilently);
    assert!(requests >= 6, "{requests} requests");
    assert_eq!(connections, requests);
}

#[test]
fn a_connection_close_mid_way_is_heeded() {
    let (connections, requests) = download_counted(Reuse::CloseSecond);
    assert!(requests >= 6, "{requests} requests");
    assert!(
        connections < requests && connections * 2 >= requests,
        "{connections} connections for {requests} requests"
    );
}
