//! `shoal daemon` driven by the tools people already use: Debian's transmission-remote
//! adds a torrent, lists it until it is complete (downloaded from a libtorrent seed found
//! through opentracker), stops, starts and removes it; then shoal's own `add`, `list`,
//! `pause`, `resume` and `remove --delete` do the same.
//!
//! Needs transmission-cli, python3-libtorrent, mktorrent and opentracker (`scripts/test`
//! installs them). A missing tool fails the test: it is never skipped.

mod daemon_support;
mod support;

use std::process::Command;

use daemon_support::*;
use support::*;

/// A scene whose torrent names a local opentracker, with a libtorrent seed announced to it.
fn seeded_scene() -> (Scene, std::path::PathBuf, Tracker, Proc) {
    let scene = Scene::new();
    let hash = info_hash(&scene.torrent(None));
    let mut tracker = Tracker::start(&scene.path("tracker"), &[&hash], scene.deadline);
    let torrent = scene.torrent(Some(&tracker.announce_url()));
    let seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    tracker.wait_seeders(&hash, 1, scene.deadline);
    (scene, torrent, tracker, seed)
}

/// The line of torrent `id` in `transmission-remote -l`.
fn listed(port: u16, id: &str) -> Option<String> {
    transmission_remote(port, &["-l"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .map(str::to_string)
}

#[test]
fn transmission_remote_adds_lists_stops_starts_and_removes() {
    let (scene, torrent, _tracker, mut seed) = seeded_scene();
    let rpc = free_port();
    let dl = scene.path("dl");
    let mut daemon = ShoalDaemon::start(
        "shoal-daemon",
        &scene.path("state"),
        &dl,
        rpc,
        scene.dir(),
        scene.deadline,
    );
    let out = transmission_remote(rpc, &["-a", torrent.to_str().unwrap()]);
    assert!(out.contains("success"), "{out}");
    wait_until(
        "transmission-remote lists it at 100 %",
        scene.deadline,
        || {
            seed.assert_not_failed();
            daemon.proc.assert_not_failed();
            match listed(rpc, "1") {
                // Files are renamed from `.part` just after the last piece is verified.
                Some(l) if l.contains("100%") && !l.contains("Stopped") => {
                    scene.payload.check_exact(&dl)
                }
                other => Err(format!("{other:?}")),
            }
        },
    );
    scene.payload.assert_exact(&dl);
    // Its name and the figures transmission-remote shows.
    let line = listed(rpc, "1").unwrap();
    assert!(line.ends_with(&scene.payload.name), "{line}");
    let info = transmission_remote(rpc, &["-t", "1", "-i"]);
    assert!(
        info.contains(&format!("Hash: {}", info_hash(&torrent))),
        "{info}"
    );

    transmission_remote(rpc, &["-t", "1", "-S"]);
    let line = listed(rpc, "1").unwrap();
    assert!(line.contains("Stopped"), "{line}");
    transmission_remote(rpc, &["-t", "1", "-s"]);
    let line = listed(rpc, "1").unwrap();
    assert!(!line.contains("Stopped") && line.contains("100%"), "{line}");
    transmission_remote(rpc, &["-t", "1", "-r"]);
    assert_eq!(listed(rpc, "1"), None);
    // Removed without --remove-and-delete: the data stays.
    scene.payload.assert_exact(&dl);
    // A bad torrent gets a clear error and leaves the daemon running.
    let junk = scene.path("junk.torrent");
    std::fs::write(&junk, b"d4:infoi3ee").unwrap();
    let out = Command::new("transmission-remote")
        .arg(local(rpc))
        .arg("-a")
        .arg(&junk)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not a valid .torrent"), "{said}");
    daemon.proc.assert_not_failed();
    // `--exit` (session-close): the daemon answers, then stops as on SIGTERM.
    transmission_remote(rpc, &["--exit"]);
    let status = daemon.proc.wait_exit(scene.deadline);
    assert!(status.success(), "{status}: {}", daemon.proc.tail(10));
    assert!(daemon.proc.said("stopping"), "{}", daemon.proc.tail(10));
}

#[test]
fn shoal_add_list_pause_resume_and_remove_with_delete() {
    let (scene, torrent, _tracker, mut seed) = seeded_scene();
    let rpc = free_port();
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let mut daemon = ShoalDaemon::start(
        "shoal-daemon",
        &state,
        &dl,
        rpc,
        scene.dir(),
        scene.deadline,
    );
    let shoal = |args: &[&str]| {
        run(support::shoal_command()
            .args(args)
            .arg("--state")
            .arg(&state))
    };
    let out = shoal(&["add", torrent.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("added 1: {}", scene.payload.name));
    let out = shoal(&["add", torrent.to_str().unwrap()]);
    assert_eq!(
        out.trim(),
        format!("already there as 1: {}", scene.payload.name)
    );
    wait_until("shoal list shows it complete", scene.deadline, || {
        seed.assert_not_failed();
        daemon.proc.assert_not_failed();
        let out = shoal(&["list"]);
        match out.lines().nth(1) {
            // Files are renamed from `.part` just after the last piece is verified.
            Some(l) if l.contains("100.0%") && l.contains("seeding") => {
                scene.payload.check_exact(&dl)
            }
            other => Err(format!("{other:?}")),
        }
    });
    scene.payload.assert_exact(&dl);
    shoal(&["pause", "1"]);
    assert!(shoal(&["list"]).lines().nth(1).unwrap().contains("stopped"));
    shoal(&["resume", "1"]);
    assert!(shoal(&["list"]).lines().nth(1).unwrap().contains("seeding"));
    shoal(&["remove", "1", "--delete"]);
    assert_eq!(
        shoal(&["list"]).lines().count(),
        1,
        "only the heading is left"
    );
    wait_until("its files are deleted", scene.deadline, || {
        let left: Vec<_> = walk(&dl.join(&scene.payload.name));
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
}

/// Listening beyond loopback needs credentials: generated into the state folder when none
/// are given. transmission-remote without them is refused; with them (and `shoal list`,
/// which reads the state folder) it is let in.
#[test]
fn beyond_loopback_credentials_are_generated_and_required() {
    let scene = Scene::new();
    let rpc = free_port();
    let state = scene.path("state");
    let mut cmd = support::shoal_command();
    cmd.arg("daemon")
        .arg("--state")
        .arg(&state)
        .arg("--rpc")
        .arg(format!("0.0.0.0:{rpc}"))
        .arg("--download-dir")
        .arg(scene.path("dl"))
        .args(["--bind", "127.0.0.1", "--port", &free_port().to_string()]);
    let mut daemon = Proc::spawn("shoal-daemon", cmd, scene.dir());
    daemon.wait_for(DAEMON_READY, scene.deadline);
    assert!(daemon.said("credentials required"));
    let auth = std::fs::read_to_string(state.join("rpc-auth")).unwrap();
    let auth = auth.trim();
    assert!(auth.starts_with("shoal:") && auth.len() > 12, "{auth}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("rpc-auth"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "only its owner may read the credentials");

    let refused = Command::new("transmission-remote")
        .arg(local(rpc))
        .arg("-l")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    // (transmission-remote shows the 401's text.)
    assert!(said.contains("credentials needed"), "{said}");
    let wrong = Command::new("transmission-remote")
        .arg(local(rpc))
        .args(["--auth", "shoal:wrong", "-l"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&wrong.stdout).to_string()
        + &String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains("credentials needed"), "{said}");
    let listed = transmission_remote(rpc, &["--auth", auth, "-l"]);
    assert!(listed.contains("Sum:"), "{listed}");
    let list = run(support::shoal_command()
        .arg("list")
        .arg("--state")
        .arg(&state));
    assert!(list.starts_with("  id"), "{list}");
    daemon.assert_not_failed();
}
