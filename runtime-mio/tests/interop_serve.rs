//! Interop: other clients download from `shoal serve` with no other peer: the server's
//! tracker and its web seed (BEP 19) are all they have. libtorrent and Transmission, each
//! with a single-file and a multi-file torrent, fetched from the server's own `.torrent`
//! URLs.
//!
//! Needs Debian's python3-libtorrent and transmission-cli (`scripts/test` installs them).
//! A missing tool fails the test: it is never skipped.

mod support;
mod tracker_support;

use std::path::{Path, PathBuf};

use support::*;
use tracker_support::*;

const SINGLE: &str = "one file.iso";

/// A scene whose `www/` holds the standard payload (a folder) and a 6 MB single file, and
/// `shoal serve www` serving them.
fn serving() -> (Scene, ShoalServe, Vec<u8>) {
    let scene = Scene::new();
    let www = scene.path("www");
    scene.payload.write(&www);
    let data: Vec<u8> = (0..6_000_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join(SINGLE), &data).unwrap();
    let serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    (scene, serve, data)
}

/// The server's `.torrent` at `name`, fetched over HTTP into the scene as a file (the
/// clients take a path).
fn fetch_torrent(scene: &Scene, serve: &ShoalServe, name: &str) -> PathBuf {
    let r = request(serve.port, "GET", &format!("/{name}"), "");
    assert_eq!(r.status, 200, "GET /{name}: {}", r.head);
    assert_eq!(r.header("Content-Type"), Some("application/x-bittorrent"));
    let out = scene.path(&name.replace("%20", " "));
    std::fs::write(&out, &r.body).unwrap();
    out
}

fn assert_single(dir: &Path, data: &[u8]) {
    let got = std::fs::read(dir.join(SINGLE)).expect("the single file downloaded");
    assert!(got == data, "the single file's bytes differ");
}

#[test]
fn libtorrent_downloads_from_shoal_serve_alone() {
    let (scene, mut serve, data) = serving();
    let dl = scene.path("dl");
    for (name, torrent) in [
        ("libtorrent-multi", "payload.torrent"),
        ("libtorrent-single", "one%20file.iso.torrent"),
    ] {
        let torrent = fetch_torrent(&scene, &serve, torrent);
        let mut lt = lt_download(name, &torrent, &dl, free_port(), &[], false, scene.dir());
        lt.wait_success(scene.deadline);
    }
    scene.payload.assert_data(&dl);
    assert_single(&dl, &data);
    serve.assert_running();
}

#[test]
fn transmission_downloads_from_shoal_serve_alone() {
    let (scene, mut serve, data) = serving();
    let dl = scene.path("dl");
    for (name, torrent) in [
        ("transmission-multi", "payload.torrent"),
        ("transmission-single", "one%20file.iso.torrent"),
    ] {
        let torrent = fetch_torrent(&scene, &serve, torrent);
        let mut tr = transmission(name, &torrent, &dl, free_port(), false, scene.dir());
        tr.wait_for("Seeding", scene.deadline);
    }
    scene.payload.assert_data(&dl);
    assert_single(&dl, &data);
    serve.assert_running();
}
