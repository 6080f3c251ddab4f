//! A full disk stops that torrent with a message, not the daemon: one torrent downloads
//! into a 1 MiB tmpfs (mounted by the test: it runs as root, as the suite does), another
//! into a roomy folder. The first stops with "No space left on device" in its
//! `errorString`; the second completes with exact data; a URL that is not a torrent gets
//! a clear error and changes nothing.
//!
//! Needs python3-libtorrent, mktorrent and opentracker (`scripts/test` installs them).

mod daemon_support;
mod support;

use daemon_support::*;
use serde_json::json;
use support::*;

#[test]
fn a_full_disk_stops_its_torrent_and_the_others_go_on() {
    let scene = Scene::new();
    let other = Payload::new("other", &[("o.bin", 600_000), ("p.txt", 12_345)]);
    let other_content = other.write(&scene.src());
    let hash = info_hash(&scene.torrent(None));
    let probe = scene.path("other-probe.torrent");
    mktorrent(&other_content, &probe, 15, None);
    let other_hash = info_hash(&probe);
    let mut tracker = Tracker::start(
        &scene.path("tracker"),
        &[&hash, &other_hash],
        scene.deadline,
    );
    let torrent = scene.torrent(Some(&tracker.announce_url()));
    let other_torrent = scene.path("other.torrent");
    mktorrent(
        &other_content,
        &other_torrent,
        15,
        Some(&tracker.announce_url()),
    );
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    let mut other_seed = lt_seed(
        "other-seed",
        &other_torrent,
        &scene.src(),
        free_port(),
        &[],
        scene.dir(),
    );
    other_seed.wait_for("seeding", scene.deadline);
    tracker.wait_seeders(&hash, 1, scene.deadline);
    tracker.wait_seeders(&other_hash, 1, scene.deadline);

    let small = Tmpfs::mount(&scene.path("small"), "1m");
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let mut daemon = ShoalDaemon::start("daemon", &state, &dl, rpc, scene.dir(), scene.deadline);
    daemon.rpc(
        "torrent-add",
        json!({"filename": torrent.to_str().unwrap(), "download-dir": small.0.to_str().unwrap()}),
    );
    daemon.rpc(
        "torrent-add",
        json!({"filename": other_torrent.to_str().unwrap()}),
    );
    wait_until(
        "the full one stopped, the other complete",
        scene.deadline,
        || {
            seed.assert_not_failed();
            other_seed.assert_not_failed();
            daemon.proc.assert_not_failed();
            let ts = daemon.torrents(&["id", "status", "errorString", "percentDone"]);
            let full_stopped = ts[0]["status"] == 0
                && ts[0]["errorString"]
                    .as_str()
                    .is_some_and(|e| e.contains("No space left on device"));
            if full_stopped && ts[1]["percentDone"] == 1.0 {
                Ok(())
            } else {
                Err(format!("{ts:?}"))
            }
        },
    );
    other.assert_exact(&dl);
    // A URL that answers no torrent: a clear error, nothing added, the daemon still up.
    let (status, _, body) = post(
        rpc,
        &json!({"method": "torrent-add", "arguments": {"filename": format!("http://127.0.0.1:{}/nothing.torrent", tracker.port)}})
            .to_string(),
        &session_id(rpc),
    );
    assert_eq!(status, 200);
    assert!(body.contains("nothing.torrent"), "{body}");
    assert!(!body.contains("\"success\""), "{body}");
    assert_eq!(daemon.torrents(&["id"]).len(), 2);
    daemon.proc.assert_not_failed();
}

fn session_id(port: u16) -> String {
    let (_, head, _) = post(port, "{}", "");
    head.lines()
        .find_map(|l| l.strip_prefix("X-Transmission-Session-Id: "))
        .unwrap()
        .trim()
        .to_string()
}
