//! Tracker trouble is said as it happens: a dead tracker is reported at its first failure
//! with when the next try is (not after minutes of silence), a tracker that refuses the
//! torrent is reported as refusing it (never as unreachable), by a seed too, which keeps
//! seeding; a download with nowhere else to turn gives up naming the refusal.

mod support;
mod tracker_support;

use support::*;
use tracker_support::*;

#[test]
fn a_dead_tracker_is_reported_at_its_first_failure_with_the_next_try() {
    let scene = Scene::new();
    // Nothing listens there: every announce is refused by the kernel.
    let url = format!("http://127.0.0.1:{}/announce", free_port());
    let torrent = scene.path("payload.torrent");
    mktorrent(&scene.content(), &torrent, 15, Some(&url));
    let mut download = shoal_download(
        "shoal-download",
        &torrent,
        &scene.path("out"),
        free_port(),
        &[],
        &[],
        scene.dir(),
    );
    // The default backoff is 15 s: the first failure is reported before the first retry.
    download.wait_for(&format!("tracker {url}: "), scene.deadline);
    download.wait_for("; next try in 15 s", scene.deadline);
    download.assert_not_failed();
}

#[test]
fn a_refusing_tracker_is_reported_as_refusing_by_seeds_and_downloads() {
    let scene = Scene::new();
    // A shoal tracker that tracks only the torrents of an empty folder: it refuses ours.
    let tracked = scene.path("tracked");
    std::fs::create_dir_all(&tracked).unwrap();
    let port = free_port();
    let mut tracker = ShoalTracker::start_on(
        port,
        scene.dir(),
        &["--torrents", tracked.to_str().unwrap()],
        scene.deadline,
    );
    let url = format!("http://127.0.0.1:{port}/announce");
    let torrent = scene.path("payload.torrent");
    mktorrent(&scene.content(), &torrent, 15, Some(&url));

    // A seed says so and keeps seeding.
    let mut seed = shoal_seed(
        "shoal-seed",
        &torrent,
        &scene.src(),
        free_port(),
        &[],
        scene.dir(),
    );
    seed.wait_for(
        &format!("tracker {url} refused: unregistered torrent"),
        scene.deadline,
    );
    seed.assert_not_failed();
    assert!(!seed.said("reachable"), "{}", seed.tail(20));

    // A download with no other way to find peers gives up, naming the refusal.
    let mut download = shoal_download(
        "shoal-download",
        &torrent,
        &scene.path("out"),
        free_port(),
        &[],
        &["--tracker-backoff", "1"],
        scene.dir(),
    );
    let status = download.wait_exit(scene.deadline);
    assert_eq!(status.code(), Some(1), "{}", download.tail(20));
    assert!(
        download.said("shoal: error: the tracker refused this torrent"),
        "{}",
        download.tail(20)
    );
    assert!(
        !download.said("no tracker reachable"),
        "{}",
        download.tail(20)
    );
    tracker.assert_running();
}
