//! A `shoal daemon` killed with SIGKILL while it downloads three torrents, then started
//! again on the same state folder: every torrent completes with exact data, and no piece
//! verified before the kill is downloaded again (what the restarted daemon downloads fits
//! in what was missing at the kill, give or take the pieces that were in flight).
//!
//! The seeds are libtorrent, each held to 100 kB/s so the kill lands mid-download, found
//! through a local opentracker. Needs python3-libtorrent, mktorrent and opentracker
//! (`scripts/test` installs them); never skipped.

mod daemon_support;
mod support;

use std::time::{Duration, Instant};

use daemon_support::*;
use support::*;

const PIECE_LOG2: u32 = 15;
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
    let pid = daemon.proc.id();
    run(std::process::Command::new("kill").args(["-9", &pid.to_string()]));
    daemon
        .proc
        .wait_exit(Instant::now() + Duration::from_secs(10));

    let daemon = ShoalDaemon::start("daemon-2", &state, &dl, rpc, scene.dir(), scene.deadline);
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
