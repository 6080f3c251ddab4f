//! Magnet links in `shoal daemon`: Debian's transmission-remote adds a magnet link whose
//! one peer (`x.pe=`) is a libtorrent seed; the daemon fetches the metadata from it (BEP
//! 9), keeps the `.torrent` in its state folder and downloads the payload to 100 % with
//! exact data. A link no peer answers shows as Transmission shows one: its `dn=` name,
//! downloading, 0 % done, no metadata yet. The same info-hash again is a
//! `torrent-duplicate`. A daemon killed after the metadata came and started again while
//! the link's one peer is down shows the torrent with its real name and size (it read the
//! metadata, no one could have sent it) and, the seed back, completes it.
//!
//! Needs transmission-cli, python3-libtorrent and mktorrent (`scripts/test` installs
//! them). A missing tool fails the test: it is never skipped.

mod daemon_support;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use daemon_support::*;
use serde_json::json;
use support::*;

/// Transmission's `TR_STATUS_DOWNLOAD`.
const DOWNLOADING: u64 = 4;

fn magnet_of(torrent: &Path, port: u16) -> String {
    format!(
        "magnet:?xt=urn:btih:{}&dn=from-the-link&x.pe=127.0.0.1:{port}",
        info_hash(torrent)
    )
}

/// The torrent of `hash` in `torrent-get` of `fields`.
fn torrent_of(daemon: &ShoalDaemon, hash: &str, fields: &[&str]) -> Option<serde_json::Value> {
    let mut all = vec!["hashString"];
    all.extend_from_slice(fields);
    daemon
        .torrents(&all)
        .into_iter()
        .find(|t| t["hashString"] == hash)
}

#[test]
fn transmission_remote_adds_a_magnet_link_that_downloads_to_the_end() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let hash = info_hash(&torrent);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let mut daemon = ShoalDaemon::start(
        "shoal-daemon",
        &state,
        &dl,
        rpc,
        scene.dir(),
        scene.deadline,
    );

    // A link no one answers: shown by its dn= name, downloading, nothing known yet.
    let silent = format!(
        "magnet:?xt=urn:btih:{}&dn=nobody-answers&x.pe=127.0.0.1:{}",
        "ab".repeat(20),
        free_port()
    );
    let out = transmission_remote(rpc, &["-a", &silent]);
    assert!(out.contains("success"), "{out}");
    let fields = [
        "name",
        "status",
        "percentDone",
        "metadataPercentComplete",
        "totalSize",
    ];
    let t = torrent_of(&daemon, &"ab".repeat(20), &fields).expect("listed");
    assert_eq!(t["name"], "nobody-answers", "{t}");
    assert_eq!(t["status"], DOWNLOADING, "{t}");
    assert_eq!(t["percentDone"], 0.0, "{t}");
    assert_eq!(t["metadataPercentComplete"], 0.0, "{t}");
    assert_eq!(t["totalSize"], 0, "{t}");

    let magnet = magnet_of(&torrent, port);
    let out = transmission_remote(rpc, &["-a", &magnet]);
    assert!(out.contains("success"), "{out}");
    wait_until("the magnet's torrent at 100 %", scene.deadline, || {
        seed.assert_not_failed();
        daemon.proc.assert_not_failed();
        let t = torrent_of(&daemon, &hash, &["percentDone", "name", "error"]);
        match t {
            // Files are renamed from `.part` just after the last piece is verified.
            Some(t) if t["percentDone"] == 1.0 => scene.payload.check_exact(&dl),
            other => Err(format!("{other:?}")),
        }
    });
    scene.payload.assert_exact(&dl);
    let t = torrent_of(&daemon, &hash, &fields).unwrap();
    assert_eq!(t["name"].as_str(), Some(scene.payload.name.as_str()), "{t}");
    assert_eq!(t["metadataPercentComplete"], 1.0, "{t}");
    assert_eq!(
        t["totalSize"].as_u64(),
        Some(scene.payload.total_len() as u64),
        "{t}"
    );
    // Its .torrent is kept in the state folder like an added file's.
    let kept = state.join("torrents").join(format!("{hash}.torrent"));
    assert_eq!(info_hash(&kept), hash);
    // The same link again, over the RPC as Transmission answers it.
    let again = daemon.rpc("torrent-add", json!({ "filename": magnet }));
    assert_eq!(again["torrent-duplicate"]["hashString"], hash, "{again}");
    assert!(again.get("torrent-added").is_none(), "{again}");
    assert_eq!(daemon.torrents(&["id"]).len(), 2);
}

#[test]
fn a_daemon_restarted_after_the_metadata_came_does_not_fetch_it_again() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let hash = info_hash(&torrent);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let mut daemon = ShoalDaemon::start("daemon-1", &state, &dl, rpc, scene.dir(), scene.deadline);
    let magnet = magnet_of(&torrent, port);
    let out = run(support::shoal_command()
        .arg("add")
        .arg(&magnet)
        .arg("--state")
        .arg(&state));
    assert!(out.starts_with("added "), "{out}");
    let kept = state.join("torrents").join(format!("{hash}.torrent"));
    wait_until(
        "the metadata kept in the state folder",
        scene.deadline,
        || {
            daemon.proc.assert_not_failed();
            seed.assert_not_failed();
            let t = torrent_of(&daemon, &hash, &["name"]);
            match t {
                Some(t) if kept.exists() && t["name"] == scene.payload.name.as_str() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    let pid = daemon.proc.id();
    run(std::process::Command::new("kill").args(["-9", &pid.to_string()]));
    daemon
        .proc
        .wait_exit(Instant::now() + Duration::from_secs(10));
    // The only peer down: nothing could send the metadata again.
    seed.kill_now();

    let mut daemon = ShoalDaemon::start("daemon-2", &state, &dl, rpc, scene.dir(), scene.deadline);
    // Its real name and size: the metadata was read from the state folder.
    let t = torrent_of(
        &daemon,
        &hash,
        &["id", "name", "metadataPercentComplete", "totalSize"],
    )
    .expect("listed after the restart");
    assert_eq!(t["name"].as_str(), Some(scene.payload.name.as_str()), "{t}");
    assert_eq!(t["metadataPercentComplete"], 1.0, "{t}");
    assert_eq!(
        t["totalSize"].as_u64(),
        Some(scene.payload.total_len() as u64),
        "{t}"
    );
    // The seed back; a stop and start dials the link's peer again.
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    let id = t["id"].clone();
    daemon.rpc("torrent-stop", json!({ "ids": [id] }));
    daemon.rpc("torrent-start", json!({ "ids": [id] }));
    wait_until("complete after the restart", scene.deadline, || {
        daemon.proc.assert_not_failed();
        seed.assert_not_failed();
        match torrent_of(&daemon, &hash, &["percentDone"]) {
            // Files are renamed from `.part` just after the last piece is verified.
            Some(t) if t["percentDone"] == 1.0 => scene.payload.check_exact(&dl),
            other => Err(format!("{other:?}")),
        }
    });
    scene.payload.assert_exact(&dl);
}

#[test]
fn a_daemon_restarted_before_the_metadata_came_fetches_it_then() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let hash = info_hash(&torrent);
    // The link's peer is not up yet: the metadata cannot come before the restart.
    let port = free_port();
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let mut daemon = ShoalDaemon::start("daemon-1", &state, &dl, rpc, scene.dir(), scene.deadline);
    let magnet = magnet_of(&torrent, port);
    let added = daemon.rpc("torrent-add", json!({ "filename": magnet }));
    assert_eq!(added["torrent-added"]["name"], "from-the-link", "{added}");
    let pid = daemon.proc.id();
    run(std::process::Command::new("kill").args(["-9", &pid.to_string()]));
    daemon
        .proc
        .wait_exit(Instant::now() + Duration::from_secs(10));

    let mut daemon = ShoalDaemon::start("daemon-2", &state, &dl, rpc, scene.dir(), scene.deadline);
    let fields = ["id", "name", "status", "metadataPercentComplete"];
    let t = torrent_of(&daemon, &hash, &fields).expect("kept across the restart");
    assert_eq!(t["name"], "from-the-link", "{t}");
    assert_eq!(t["status"], DOWNLOADING, "{t}");
    assert_eq!(t["metadataPercentComplete"], 0.0, "{t}");
    // The seed up; a stop and start dials the link's peer again.
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    let id = t["id"].clone();
    daemon.rpc("torrent-stop", json!({ "ids": [id] }));
    daemon.rpc("torrent-start", json!({ "ids": [id] }));
    wait_until(
        "fetched and complete after the restart",
        scene.deadline,
        || {
            daemon.proc.assert_not_failed();
            seed.assert_not_failed();
            match torrent_of(&daemon, &hash, &["percentDone"]) {
                // Files are renamed from `.part` just after the last piece is verified.
                Some(t) if t["percentDone"] == 1.0 => scene.payload.check_exact(&dl),
                other => Err(format!("{other:?}")),
            }
        },
    );
    scene.payload.assert_exact(&dl);
    assert_eq!(
        info_hash(&state.join("torrents").join(format!("{hash}.torrent"))),
        hash
    );
}
