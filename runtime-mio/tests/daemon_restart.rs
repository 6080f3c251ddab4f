//! A `shoal daemon` killed with SIGKILL while it downloads three torrents, then started
//! again on the same state folder: every torrent completes with exact data, and no piece
//! verified before the kill is downloaded again (what the restarted daemon downloads fits
//! in what was missing at the kill, give or take the pieces that were in flight).
//!
//! The seeds are libtorrent, each held to 100 kB/s so the kill lands mid-download, found
//! through a local opentracker. Needs python3-libtorrent, mktorrent and opentracker
//! (`scripts/test` installs them); never skipped.
//!
//! Also: every change of the list the daemon acknowledged before a SIGKILL (adds, a stop,
//! a removal: journal lines after the first snapshot) is there after the restart.

mod daemon_support;
mod support;

use std::time::{Duration, Instant};

use daemon_support::*;
use support::*;

const PIECE_LOG2: u32 = 15;

/// Kills `daemon` with SIGKILL, waits for it to die, then starts `daemon-2` on its state
/// folder, download folder and RPC port.
fn killed_and_started_again(mut daemon: ShoalDaemon, scene: &Scene) -> ShoalDaemon {
    let pid = daemon.proc.id();
    run(std::process::Command::new("kill").args(["-9", &pid.to_string()]));
    daemon
        .proc
        .wait_exit(Instant::now() + Duration::from_secs(10));
    let (state, dl) = (daemon.state.clone(), daemon.downloads.clone());
    ShoalDaemon::start(
        "daemon-2",
        &state,
        &dl,
        daemon.rpc_port,
        scene.dir(),
        scene.deadline,
    )
}
/// Pieces per torrent that may be fetched again: the ones in flight at the kill.
const IN_FLIGHT_SLACK: u64 = 8;

#[test]
fn a_killed_daemon_resumes_three_downloads_without_fetching_a_verified_piece_twice() {
    let scene = Scene::new();
    let payloads: Vec<Payload> = ["one", "two", "three"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Payload::new(
                name,
                &[
                    ("a.bin", 1_200_000 + i * 77_777),
                    ("b/c.bin", 700_001),
                    ("d.txt", 999),
                ],
            )
        })
        .collect();
    let mut torrents = Vec::new();
    let mut hashes = Vec::new();
    for p in &payloads {
        let content = p.write(&scene.src());
        let probe = scene.path(&format!("{}-probe.torrent", p.name));
        mktorrent(&content, &probe, PIECE_LOG2, None);
        hashes.push(info_hash(&probe));
    }
    let hash_refs: Vec<&str> = hashes.iter().map(String::as_str).collect();
    let mut tracker = Tracker::start(&scene.path("tracker"), &hash_refs, scene.deadline);
    let mut seeds = Vec::new();
    for (p, hash) in payloads.iter().zip(&hashes) {
        let torrent = scene.path(&format!("{}.torrent", p.name));
        mktorrent(
            &scene.src().join(&p.name),
            &torrent,
            PIECE_LOG2,
            Some(&tracker.announce_url()),
        );
        let mut seed = lt_seed(
            &format!("seed-{}", p.name),
            &torrent,
            &scene.src(),
            free_port(),
            &["--upload-limit", "100000"],
            scene.dir(),
        );
        seed.wait_for("seeding", scene.deadline);
        tracker.wait_seeders(hash, 1, scene.deadline);
        seeds.push(seed);
        torrents.push(torrent);
    }

    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let mut daemon = ShoalDaemon::start("daemon-1", &state, &dl, rpc, scene.dir(), scene.deadline);
    for t in &torrents {
        let out = run(support::shoal_command()
            .arg("add")
            .arg(t)
            .arg("--state")
            .arg(&state));
        assert!(out.starts_with("added "), "{out}");
    }
    // Every torrent a good way in, none complete: then SIGKILL.
    let fields = ["id", "haveValid", "sizeWhenDone", "percentDone"];
    let mut have_at_kill = Vec::new();
    wait_until("all three downloads under way", scene.deadline, || {
        daemon.proc.assert_not_failed();
        let ts = daemon.torrents(&fields);
        let pct: Vec<f64> = ts
            .iter()
            .map(|t| t["percentDone"].as_f64().unwrap())
            .collect();
        assert!(
            pct.iter().all(|&p| p < 1.0),
            "a torrent completed before the kill: {pct:?}"
        );
        if ts.len() == 3 && pct.iter().all(|&p| p >= 0.25) {
            have_at_kill = ts
                .iter()
                .map(|t| t["haveValid"].as_u64().unwrap())
                .collect();
            Ok(())
        } else {
            Err(format!("{pct:?}"))
        }
    });
    let daemon = killed_and_started_again(daemon, &scene);
    wait_until(
        "all three complete after the restart",
        scene.deadline,
        || {
            for s in &mut seeds {
                s.assert_not_failed();
            }
            let ts = daemon.torrents(&fields);
            let pct: Vec<f64> = ts
                .iter()
                .map(|t| t["percentDone"].as_f64().unwrap())
                .collect();
            if ts.len() == 3 && pct.iter().all(|&p| p >= 1.0) {
                Ok(())
            } else {
                Err(format!("{pct:?}"))
            }
        },
    );
    for p in &payloads {
        p.assert_exact(&dl);
    }
    let stats = daemon.rpc("session-stats", serde_json::json!({}));
    let downloaded = stats["current-stats"]["downloadedBytes"].as_u64().unwrap();
    let missing: u64 = payloads
        .iter()
        .zip(&have_at_kill)
        .map(|(p, have)| p.total_len() as u64 - have)
        .sum();
    let slack = 3 * IN_FLIGHT_SLACK * (1 << PIECE_LOG2);
    let total: usize = payloads.iter().map(Payload::total_len).sum();
    eprintln!(
        "total {total} bytes; verified at the kill {have_at_kill:?}; \
         downloaded after the restart {downloaded} (missing {missing}, slack {slack})"
    );
    assert!(
        downloaded <= missing + slack,
        "after the restart {downloaded} bytes were downloaded; {missing} were missing at the kill"
    );
    assert!(downloaded > 0, "the restarted daemon downloaded nothing");
}

#[test]
fn every_change_of_the_list_acknowledged_before_a_kill_is_there_after_the_restart() {
    let scene = Scene::new();
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let daemon = ShoalDaemon::start("daemon-1", &state, &dl, rpc, scene.dir(), scene.deadline);
    let names: Vec<String> = (1..=12).map(|i| format!("t{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        let p = Payload::new(name, &[("a.bin", 40_000 + i)]);
        let content = p.write(&scene.src());
        let torrent = scene.path(&format!("{name}.torrent"));
        mktorrent(&content, &torrent, PIECE_LOG2, None);
        let out = run(support::shoal_command()
            .arg("add")
            .arg(&torrent)
            .arg("--state")
            .arg(&state));
        assert!(out.starts_with("added "), "{out}");
    }
    daemon.rpc("torrent-stop", serde_json::json!({ "ids": [5] }));
    daemon.rpc("torrent-remove", serde_json::json!({ "ids": [7] }));
    let journal = std::fs::read_to_string(state.join("state.journal")).unwrap();
    assert!(
        journal.lines().count() > 12,
        "the adds were not journalled:\n{journal}"
    );
    let before = daemon.torrents(&["id", "name", "status"]);
    assert_eq!(before.len(), 11);
    let daemon = killed_and_started_again(daemon, &scene);
    let after = daemon.torrents(&["id", "name", "status"]);
    let listed = |ts: &[serde_json::Value]| -> Vec<(u64, String, bool)> {
        ts.iter()
            .map(|t| {
                (
                    t["id"].as_u64().unwrap(),
                    t["name"].as_str().unwrap().to_string(),
                    t["status"].as_u64() == Some(0),
                )
            })
            .collect()
    };
    let want: Vec<(u64, String, bool)> = (1..=12u64)
        .filter(|&id| id != 7)
        .map(|id| (id, names[id as usize - 1].clone(), id == 5))
        .collect();
    assert_eq!(listed(&before), want);
    assert_eq!(listed(&after), want);
}
