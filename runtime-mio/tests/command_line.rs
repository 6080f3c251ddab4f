//! The `shoal` command's edges as a new user meets them: a port that is taken, output
//! that nobody reads any more (a closed pipe), values that make no sense, and what
//! `create` takes from a download folder.

mod support;

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::*;

/// `shoal download TORRENT -o DIR --no-seed --plain --bind 127.0.0.1` with `extra`.
fn download(torrent: &Path, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = support::shoal_command();
    cmd.arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(dir)
        .args(["--no-seed", "--plain", "--bind", "127.0.0.1"])
        .args(extra);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Holds 127.0.0.1:`port`, or leaves it be if another program already does: either way
/// it is taken.
fn take_port(port: u16) -> Option<TcpListener> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => None,
        Err(e) => panic!("127.0.0.1:{port}: {e}"),
    }
}

#[test]
fn with_the_default_port_taken_the_download_takes_the_next_one_and_says_so() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let seed_port = free_port();
    let mut seed = scene.ready_seed(Seeder::Shoal, &torrent, seed_port);
    let _held = take_port(6881);
    let out = scene.path("out");
    // No --port: 6881 is taken, so another one of 6882-6889.
    let result = download(&torrent, &out, &["--peer", &local(seed_port)])
        .output()
        .unwrap();
    let err = stderr(&result);
    assert_eq!(result.status.code(), Some(0), "{err}");
    scene.payload.assert_exact(&out);
    assert!(err.contains("port 6881") && err.contains("in use"), "{err}");
    let listening = err
        .lines()
        .find_map(|l| l.strip_prefix("listening on 127.0.0.1:"))
        .expect("a listening line");
    let port: u16 = listening.parse().unwrap();
    assert!((6882..=6889).contains(&port), "{err}");
    seed.assert_not_failed();
}

#[test]
fn a_port_given_and_taken_fails_before_any_file_is_made() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let out = scene.path("out");
    let result = download(&torrent, &out, &["--port", &port, "--peer", "127.0.0.1:9"])
        .output()
        .unwrap();
    let err = stderr(&result);
    assert_eq!(result.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on port {port}: it is in use")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!out.exists(), "{err}\n{:?}", walk(&out));
}

/// `cmd` with stdout and stderr a pipe whose read end is already closed, as
/// `cmd 2>&1 | head -0` leaves them: every write fails with EPIPE.
fn with_output_closed(cmd: &mut Command) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    cmd.status().unwrap().code()
}

#[test]
fn a_closed_stderr_never_makes_shoal_panic() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let seed_port = free_port();
    let mut seed = scene.ready_seed(Seeder::Shoal, &torrent, seed_port);
    let out = scene.path("out");

    // A download that talks all along (progress lines, then `download complete`).
    let code = with_output_closed(&mut download(
        &torrent,
        &out,
        &["--port", "0", "--peer", &local(seed_port)],
    ));
    assert_eq!(code, Some(0));
    scene.payload.assert_exact(&out);
    // A failure, whose message is lost: still 1, not 101.
    let code = with_output_closed(&mut download(
        &scene.path("missing.torrent"),
        &out,
        &["--port", "0"],
    ));
    assert_eq!(code, Some(1));
    // The commands that write to stdout.
    let code = with_output_closed(support::shoal_command().arg("info").arg(&torrent));
    assert_eq!(code, Some(0));
    let code = with_output_closed(
        support::shoal_command()
            .arg("create")
            .arg(scene.content())
            .arg("-o")
            .arg(scene.path("again.torrent")),
    );
    assert_eq!(code, Some(0));
    seed.assert_not_failed();
}

#[test]
fn nonsense_values_are_refused_by_name() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    for ratio in ["-1", "NaN", "inf"] {
        let result = download(
            &torrent,
            &scene.path("out"),
            &[&format!("--seed-ratio={ratio}")],
        )
        .output()
        .unwrap();
        let err = stderr(&result);
        // A usage error, as clap reports them (exit code 2), before anything runs.
        assert_eq!(result.status.code(), Some(2), "{err}");
        assert!(err.contains("--seed-ratio"), "{err}");
        assert!(!scene.path("out").exists());
    }
    for tracker in [
        "notaurl",
        "ftp://t.example/announce",
        "http://",
        "t.example:80",
    ] {
        let result = support::shoal_command()
            .arg("create")
            .arg(scene.content())
            .arg("-o")
            .arg(scene.path("x.torrent"))
            .args(["-t", tracker])
            .output()
            .unwrap();
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{tracker}: {err}");
        assert!(err.contains("http://, https://, udp://"), "{err}");
        assert!(!scene.path("x.torrent").exists());
    }
}

#[test]
fn create_leaves_out_shoals_working_files() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let out = scene.path("out");
    // An interrupted download's folder: .part files and a .shoal state folder.
    let mut first = shoal_download(
        "first",
        &torrent,
        &out,
        free_port(),
        &[free_port()],
        &[],
        scene.dir(),
    );
    first.wait_for(SHOAL_READY, scene.deadline);
    assert!(first
        .terminate(std::time::Duration::from_secs(10))
        .is_some());
    assert!(out.join(".shoal").is_dir());
    assert!(walk(&out)
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".part")));
    fs::write(out.join("notes.txt"), b"mine").unwrap();
    let made = scene.path("out.torrent");
    let result = support::shoal_command()
        .arg("create")
        .arg(&out)
        .arg("-o")
        .arg(&made)
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", stderr(&result));
    let info = run(support::shoal_command().arg("info").arg(&made));
    // Only what the user put there, and whatever shoal had finished: no state, no `.part`.
    assert!(info.contains("  out/notes.txt\n"), "{info}");
    assert!(
        !info.contains(".part") && !info.contains(".shoal"),
        "{info}"
    );
}

#[test]
fn the_demo_downloads_from_a_web_server_and_the_leechers_spare_it() {
    let out = support::shoal_command()
        .args(["demo", "--size", "8", "--leechers", "4"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let last = err.lines().last().unwrap_or_default();
    // Every leecher's files are checked, those of the one that started from a bare magnet
    // link (peers from the DHT alone, metadata from them) and of the daemon (handed the
    // server's magnet link over RPC, stopped with session-close) too.
    assert!(
        last.contains("all 4 leechers and the daemon completed")
            && last.contains("every file checked byte for byte"),
        "{err}"
    );
    assert!(
        err.contains("leecher 4 starts from a bare magnet link") && err.contains("(DHT): 100.0%"),
        "{err}"
    );
    assert!(
        err.contains("the daemon's page: http://127.0.0.1:"),
        "{err}"
    );
    // "The web server sent X MiB where 4 plain downloads would take 32.0 MiB (N %)": the
    // leechers took the rest from each other.
    let pct: f64 = last
        .rsplit_once('(')
        .and_then(|(_, r)| r.split_once(" %"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no share in {last:?}"));
    assert!(pct < 100.0, "{last}");
}
