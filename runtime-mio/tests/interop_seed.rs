//! Interop: libtorrent, transmission and aria2 each download a multi-file torrent from
//! `shoal seed`, on loopback; their copies are checked byte for byte.
//!
//! How each finds shoal: libtorrent dials it (`lt.py download --peer`); transmission takes
//! only peers that dial it, so shoal dials transmission (`shoal seed --peer`); aria2 takes
//! peers only from trackers, so shoal and aria2 meet through a local opentracker.
//!
//! Needs Debian's python3-libtorrent, transmission-cli, aria2, mktorrent and opentracker
//! (`scripts/test` installs them). A missing tool fails the test: it is never skipped.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn libtorrent_downloads_from_shoal() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Shoal, &torrent, port);
    scene.lt_leech_from(&torrent, &mut seed, port, &[]);
    assert!(seed.try_status().is_none(), "shoal seed stopped on its own");
}

/// transmission runs until killed: the test watches its download folder until every file
/// is complete (transmission renames `.part` files when done) and right.
#[test]
fn transmission_downloads_from_shoal() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let dl = scene.path("dl");
    let tr_port = free_port();
    let mut leech = scene.ready_transmission_leech(&torrent, &dl, tr_port);
    let mut seed = shoal_seed(
        "shoal-seed",
        &torrent,
        &scene.src(),
        free_port(),
        &[tr_port],
        scene.dir(),
    );
    seed.wait_for(SHOAL_READY, scene.deadline);
    wait_until("transmission download", scene.deadline, || {
        seed.assert_not_failed();
        leech.assert_not_failed();
        scene.payload.check_data(&dl)
    });
    // A clean stop of shoal works while a peer is connected.
    let status = seed.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "shoal seed did not stop cleanly on SIGTERM: {status:?}\n{}",
        seed.tail(30)
    );
}

#[test]
fn aria2_downloads_from_shoal() {
    let scene = Scene::new();
    let hash = info_hash(&scene.torrent(None));
    let mut tracker = Tracker::start(&scene.path("tracker"), &[&hash], scene.deadline);
    let torrent = scene.torrent(Some(&tracker.announce_url()));
    let mut seed = shoal_seed(
        "shoal-seed",
        &torrent,
        &scene.src(),
        free_port(),
        &[],
        scene.dir(),
    );
    seed.wait_for(SHOAL_READY, scene.deadline);
    tracker.wait_seeders(&hash, 1, scene.deadline);
    let dl = scene.path("dl");
    let mut leech = aria2_download("aria2-leech", &torrent, &dl, free_port(), scene.dir());
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_data(&dl);
}
