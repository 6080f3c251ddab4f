//! Interop: `shoal download` gets a multi-file torrent from a libtorrent seed, a
//! transmission seed and an aria2 seed, on loopback, and leaves exactly the right bytes.
//!
//! The torrent (made by mktorrent) has odd file sizes, an empty file, files smaller than a
//! piece and 32 KiB pieces, so there are about 140 of them. Peers are given with `--peer`,
//! and once the seed is found through a local opentracker instead.
//!
//! Needs Debian's python3-libtorrent, transmission-cli, aria2, mktorrent and opentracker
//! (`scripts/test` installs them). A missing tool fails the test: it is never skipped.

mod support;

use std::path::Path;

use support::*;

/// `shoal download --no-seed` into `scene/dl`, dialing `peers`; asserts exit 0 and the
/// exact files (the empty one too, no `.part` left).
fn shoal_downloads(scene: &Scene, torrent: &Path, peers: &[u16], seed: &mut Proc) {
    let dl = scene.path("dl");
    let mut shoal = shoal_download(
        "shoal",
        torrent,
        &dl,
        free_port(),
        peers,
        &["--no-seed"],
        scene.dir(),
    );
    shoal.wait_success_watching(seed, scene.deadline);
    scene.payload.assert_exact(&dl);
}

#[test]
fn shoal_downloads_from_libtorrent() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    shoal_downloads(&scene, &torrent, &[port], &mut seed);
}

#[test]
fn shoal_downloads_from_libtorrent_found_through_opentracker() {
    through_opentracker(Tracker::announce_url);
}

/// The same through opentracker's UDP side (BEP 15): shoal's UDP tracker client finds the
/// libtorrent seed (which announces over UDP too).
#[test]
fn shoal_downloads_from_libtorrent_found_through_a_udp_tracker() {
    through_opentracker(Tracker::udp_announce_url);
}

/// A libtorrent seed and shoal find each other only through opentracker, at the URL
/// `url` gives (HTTP or UDP).
fn through_opentracker(url: fn(&Tracker) -> String) {
    let scene = Scene::new();
    // The torrent names the tracker, so make it with the tracker's port known.
    let hash = {
        let probe = scene.torrent(None);
        info_hash(&probe)
    };
    let mut tracker = Tracker::start(&scene.path("tracker"), &[&hash], scene.deadline);
    let torrent = scene.torrent(Some(&url(&tracker)));
    assert_eq!(info_hash(&torrent), hash);
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    tracker.wait_seeders(&hash, 1, scene.deadline);
    shoal_downloads(&scene, &torrent, &[], &mut seed);
}

/// libtorrent 2's default torrent: hybrid v1+v2, whose v1 side has BEP 47 padding files
/// aligning every file to a piece. shoal downloads it as v1 and writes no padding file.
#[test]
fn shoal_downloads_a_hybrid_torrent_with_padding_files_from_libtorrent() {
    let scene = Scene::new();
    let torrent = scene.path("hybrid.torrent");
    lt_make(&scene.content(), &torrent, 32 * 1024, false);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    shoal_downloads(&scene, &torrent, &[port], &mut seed);
}

/// transmission ignores loopback peers it hears of from trackers and serves only peers that
/// dial it: shoal is given its address.
#[test]
fn shoal_downloads_from_transmission() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Transmission, &torrent, port);
    shoal_downloads(&scene, &torrent, &[port], &mut seed);
}

#[test]
fn shoal_downloads_from_aria2() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Aria2, &torrent, port);
    shoal_downloads(&scene, &torrent, &[port], &mut seed);
}
