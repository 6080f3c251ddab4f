//! `shoal daemon`'s control rules over a real socket, with no peer at all: the queue, the
//! per-file choices and sequential mode, settings kept across a restart, and the
//! security checks (Host, Origin, session id, GET).

mod daemon_support;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use daemon_support::*;
use serde_json::json;
use support::*;

/// Two torrents of two payloads in `scene/src`, naming a tracker nobody answers.
fn two_torrents(scene: &Scene) -> Vec<std::path::PathBuf> {
    ["first", "second"]
        .iter()
        .map(|name| {
            let p = Payload::new(name, &[("a.bin", 100_000), ("b.bin", 50_000)]);
            let content = p.write(&scene.src());
            let t = scene.path(&format!("{name}.torrent"));
            mktorrent(&content, &t, 15, Some("http://127.0.0.1:1/announce"));
            t
        })
        .collect()
}

fn statuses(d: &ShoalDaemon) -> Vec<u64> {
    d.torrents(&["status"])
        .iter()
        .map(|t| t["status"].as_u64().unwrap())
        .collect()
}

#[test]
fn the_queue_files_and_settings_follow_the_rpc_and_survive_a_restart() {
    let scene = Scene::new();
    let torrents = two_torrents(&scene);
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let mut d = ShoalDaemon::start("daemon-1", &state, &dl, rpc, scene.dir(), scene.deadline);
    d.rpc(
        "session-set",
        json!({"download-queue-size": 1, "speed-limit-down": 2048, "speed-limit-down-enabled": true}),
    );
    for t in &torrents {
        d.rpc("torrent-add", json!({ "filename": t.to_str().unwrap() }));
    }
    // One downloads (4), the other waits in the queue (3).
    wait_until(
        "one downloading, one queued",
        scene.deadline,
        || match statuses(&d).as_slice() {
            [4, 3] => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    d.rpc("torrent-stop", json!({"ids": [1]}));
    assert_eq!(
        statuses(&d),
        vec![0, 4],
        "stopping the first lets the second in"
    );

    d.rpc(
        "torrent-set",
        json!({"ids": [2], "files-unwanted": [1], "priority-high": [0], "sequentialDownload": true}),
    );
    let t = &d.torrents(&["fileStats", "sizeWhenDone", "sequentialDownload", "status"])[0..2];
    assert_eq!(t[1]["fileStats"][1]["wanted"], false);
    assert_eq!(t[1]["fileStats"][0]["priority"], 1);
    assert_eq!(t[1]["sizeWhenDone"], 100_000);
    assert_eq!(t[1]["sequentialDownload"], true);
    assert_eq!(t[1]["status"], 4);
    let bad = post(
        rpc,
        r#"{"method":"torrent-set","arguments":{"ids":[2],"files-wanted":[9]}}"#,
        &session(rpc),
    );
    assert!(bad.2.contains("out of range"), "{}", bad.2);

    // A clean stop (SIGTERM) and a new start: the list, the choices, the settings.
    let pid = d.proc.id().to_string();
    run(std::process::Command::new("kill").args(["-TERM", &pid]));
    let status = d.proc.wait_exit(Instant::now() + Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(
        !state.join("rpc-address").exists(),
        "a stopped daemon leaves no address"
    );
    let d = ShoalDaemon::start("daemon-2", &state, &dl, rpc, scene.dir(), scene.deadline);
    let s = d.rpc("session-get", json!({}));
    assert_eq!(s["download-queue-size"], 1);
    assert_eq!(s["speed-limit-down"], 2048);
    assert_eq!(s["speed-limit-down-enabled"], true);
    wait_until(
        "the same list after the restart",
        scene.deadline,
        || match statuses(&d).as_slice() {
            [0, 4] => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let t = d.torrents(&["id", "name", "fileStats", "sequentialDownload"]);
    assert_eq!(
        (t[0]["id"].clone(), t[1]["id"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(t[1]["name"], "second");
    assert_eq!(t[1]["fileStats"][1]["wanted"], false);
    assert_eq!(t[1]["sequentialDownload"], true);

    // The same choices from the command line.
    let shoal = |args: &[&str]| {
        run(support::shoal_command()
            .args(args)
            .arg("--state")
            .arg(&state))
    };
    let files = shoal(&["files", "2"]);
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(lines.len(), 4, "{files}");
    assert!(
        lines[1].contains("yes") && lines[1].contains("high") && lines[1].ends_with("second/a.bin"),
        "{files}"
    );
    assert!(
        lines[2].contains("no") && lines[2].ends_with("second/b.bin"),
        "{files}"
    );
    assert_eq!(lines[3], "sequential: pieces are downloaded in order");
    shoal(&[
        "set",
        "2",
        "--want",
        "1",
        "--low",
        "0,1",
        "--sequential",
        "false",
    ]);
    let t = &d.torrents(&["fileStats", "sequentialDownload"])[1];
    assert_eq!(t["fileStats"][1]["wanted"], true);
    assert_eq!(t["fileStats"][0]["priority"], -1);
    assert_eq!(t["fileStats"][1]["priority"], -1);
    assert_eq!(t["sequentialDownload"], false);
    let bad = support::shoal_command()
        .args(["set", "2", "--skip", "7", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("out of range"));
}

/// The session id the daemon hands out.
fn session(port: u16) -> String {
    let (status, head, _) = post(port, "{}", "");
    assert_eq!(status, 409);
    head.lines()
        .find_map(|l| l.strip_prefix("X-Transmission-Session-Id: "))
        .unwrap()
        .trim()
        .to_string()
}

/// A raw request; the status code.
fn raw(port: u16, request: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn foreign_hosts_origins_and_requests_without_the_session_id_change_nothing() {
    let scene = Scene::new();
    let torrents = two_torrents(&scene);
    let rpc = free_port();
    let d = ShoalDaemon::start(
        "daemon",
        &scene.path("state"),
        &scene.path("dl"),
        rpc,
        scene.dir(),
        scene.deadline,
    );
    let sid = session(rpc);
    let add =
        json!({"method": "torrent-add", "arguments": {"filename": torrents[0].to_str().unwrap()}})
            .to_string();
    let request = |host: &str, extra: &str, method: &str| {
        format!(
            "{method} /transmission/rpc HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\
             Content-Length: {}\r\n\r\n{add}",
            add.len()
        )
    };
    let ours = local(rpc);
    let with_sid = format!("X-Transmission-Session-Id: {sid}\r\n");
    // DNS rebinding: a page at evil.example whose name now points to 127.0.0.1.
    assert_eq!(
        raw(
            rpc,
            &request(&format!("evil.example:{rpc}"), &with_sid, "POST")
        ),
        421
    );
    // A foreign page posting through the visitor's browser.
    let origin = format!("{with_sid}Origin: http://evil.example\r\n");
    assert_eq!(raw(rpc, &request(&ours, &origin, "POST")), 403);
    // No session id, or a wrong one.
    assert_eq!(raw(rpc, &request(&ours, "", "POST")), 409);
    let wrong = "X-Transmission-Session-Id: 0000\r\n";
    assert_eq!(raw(rpc, &request(&ours, wrong, "POST")), 409);
    // GET never changes anything.
    assert_eq!(raw(rpc, &request(&ours, &with_sid, "GET")), 405);
    assert!(d.torrents(&["id"]).is_empty(), "nothing was added");
    // The page itself is there for our own host.
    let page = format!("GET / HTTP/1.1\r\nHost: {ours}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(rpc, &page), 200);
    // And the right request is taken.
    assert_eq!(raw(rpc, &request(&ours, &with_sid, "POST")), 200);
    assert_eq!(d.torrents(&["id"]).len(), 1);
}

/// Kills a process by id when dropped (a daemon `shoal add` started, not a child of ours).
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &self.0])
            .status();
    }
}

#[test]
fn shoal_add_starts_a_daemon_when_none_runs_on_the_address_it_was_last_given() {
    let scene = Scene::new();
    let torrents = two_torrents(&scene);
    let state = scene.path("state");
    let rpc = free_port();
    // A first daemon, told its address, then stopped cleanly.
    let mut d = ShoalDaemon::start(
        "daemon",
        &state,
        &scene.path("dl"),
        rpc,
        scene.dir(),
        scene.deadline,
    );
    run(std::process::Command::new("kill").args(["-TERM", &d.proc.id().to_string()]));
    d.proc.wait_exit(Instant::now() + Duration::from_secs(20));

    let out = support::shoal_command()
        .arg("add")
        .arg(&torrents[0])
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let pid = std::fs::read_to_string(state.join("daemon.lock"))
        .unwrap()
        .trim()
        .to_string();
    let _guard = KillOnDrop(pid.clone());
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("started a shoal daemon"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "added 1: first"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("rpc-address"))
            .unwrap()
            .trim(),
        local(rpc)
    );
    let list = run(support::shoal_command()
        .arg("list")
        .arg("--state")
        .arg(&state));
    assert!(list.lines().nth(1).unwrap().ends_with("first"), "{list}");
    // It stops cleanly on SIGTERM, taking its address away.
    run(std::process::Command::new("kill").args(["-TERM", &pid]));
    wait_until("the started daemon stopped", scene.deadline, || {
        if state.join("rpc-address").exists() {
            Err("its address is still there".into())
        } else {
            Ok(())
        }
    });
}
