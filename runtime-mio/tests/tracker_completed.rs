//! A download is counted: `shoal download --no-seed` that finishes well within the
//! tracker's `min interval` still sends `completed` (then `stopped`), so shoal's tracker
//! and opentracker both count one download in their scrape.

mod support;
mod tracker_support;

use std::path::Path;

use shoal_core::InfoHash;

use support::*;
use tracker_support::*;

/// A shoal seed and a `--no-seed` shoal download of the scene's payload, both announcing
/// to `announce`; returns once the download has exited successfully.
fn download_through(scene: &Scene, torrent: &Path) {
    let seed_port = free_port();
    let mut seed = scene.ready_seed(Seeder::Shoal, torrent, seed_port);
    // The download is told where the seed is, so it does not wait for the tracker's next
    // answer; it still announces `started`, `completed` and `stopped` to the tracker.
    let out = scene.path("out");
    let mut download = shoal_download(
        "shoal-download",
        torrent,
        &out,
        free_port(),
        &[seed_port],
        &["--no-seed"],
        scene.dir(),
    );
    download.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_exact(&out);
}

#[test]
fn shoal_tracker_counts_a_download_that_ends_within_its_min_interval() {
    let scene = Scene::new();
    let port = free_port();
    let torrent = scene.path("payload.torrent");
    // An interval of 30 min: the min interval is 15 min, far beyond the download.
    mktorrent(
        &scene.content(),
        &torrent,
        15,
        Some(&format!("http://127.0.0.1:{port}/announce")),
    );
    let hash = InfoHash::from_hex(&info_hash(&torrent)).unwrap();
    let mut tracker = ShoalTracker::start_on(port, scene.dir(), &[], scene.deadline);
    assert_eq!(tracker.scrape(&hash).2, 0);
    download_through(&scene, &torrent);
    tracker.assert_running();
    assert_eq!(tracker.scrape(&hash).2, 1);
}

#[test]
fn opentracker_counts_a_download_that_ends_within_its_min_interval() {
    let scene = Scene::new();
    let content_torrent = scene.path("probe.torrent");
    mktorrent(&scene.content(), &content_torrent, 15, None);
    let hex = info_hash(&content_torrent);
    let tracker = Tracker::start(&scene.path("opentracker"), &[&hex], scene.deadline);
    let torrent = scene.path("payload.torrent");
    mktorrent(
        &scene.content(),
        &torrent,
        15,
        Some(&tracker.announce_url()),
    );
    let hash = InfoHash::from_hex(&info_hash(&torrent)).unwrap();
    assert_eq!(info_hash(&torrent), hex);
    assert_eq!(scrape_http(tracker.port, &hash).2, 0);
    download_through(&scene, &torrent);
    assert_eq!(scrape_http(tracker.port, &hash).2, 1);
}
