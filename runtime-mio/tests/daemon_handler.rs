//! The link handler under a temporary HOME with Debian's xdg-utils: `shoal
//! install-handler` makes shoal the default for `.torrent` files and magnet links
//! (`xdg-mime query default` names its entry), `xdg-open FILE.torrent` puts the torrent
//! into the running daemon, `xdg-open 'magnet:…'` (whose one peer, `x.pe=`, is a
//! libtorrent seed) becomes a torrent of the daemon that downloads to 100 % with exact
//! data, and `--uninstall` takes the entry away.
//!
//! Needs xdg-utils, mktorrent and python3-libtorrent (`scripts/test` installs them);
//! never skipped.

mod daemon_support;
mod support;

use std::path::Path;
use std::process::Command;

use daemon_support::*;
use support::*;

/// A command with HOME and the XDG folders inside `home`, and a display named (xdg-open
/// only looks up handlers when it thinks there is one; nothing is drawn).
fn desktop_cmd(program: &str, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_DATA_DIRS", "/usr/share")
        .env("DISPLAY", ":99")
        .env_remove("XDG_CURRENT_DESKTOP")
        .env_remove("BROWSER");
    cmd
}

#[test]
fn clicked_torrents_and_magnets_reach_the_daemon_through_xdg_open() {
    let scene = Scene::new();
    let home = scene.path("home");
    std::fs::create_dir_all(&home).unwrap();
    // The daemon on the state folder `shoal add` finds by default under this HOME.
    let rpc = free_port();
    let daemon = ShoalDaemon::start(
        "shoal-daemon",
        &home.join(".local/state/shoal"),
        &scene.path("dl"),
        rpc,
        scene.dir(),
        scene.deadline,
    );

    let out = run(desktop_cmd(SHOAL, &home).arg("install-handler"));
    assert!(out.contains("installed"), "{out}");
    let entry = home.join(".local/share/applications/shoal.desktop");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains(&format!("Exec={SHOAL} add %u")), "{text}");
    for mime in ["x-scheme-handler/magnet", "application/x-bittorrent"] {
        let answer = run(desktop_cmd("xdg-mime", &home).args(["query", "default", mime]));
        assert_eq!(answer.trim(), "shoal.desktop", "{mime}");
    }

    // A magnet link clicked in a browser: another payload, its one peer a libtorrent seed.
    let linked = Payload::new("linked", &[("a.bin", 300_001), ("b/c.txt", 4_321)]);
    let content = linked.write(&scene.path("linked-src"));
    let linked_torrent = scene.path("linked.torrent");
    mktorrent(&content, &linked_torrent, 15, None);
    let linked_hash = info_hash(&linked_torrent);
    let port = free_port();
    let mut seed = lt_seed(
        "linked-seed",
        &linked_torrent,
        &scene.path("linked-src"),
        port,
        &[],
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    let magnet = format!("magnet:?xt=urn:btih:{linked_hash}&dn=clicked&x.pe=127.0.0.1:{port}");
    let out = desktop_cmd("xdg-open", &home)
        .arg(&magnet)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xdg-open: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the clicked magnet link at 100 %", scene.deadline, || {
        seed.assert_not_failed();
        let ts = daemon.torrents(&["hashString", "percentDone", "name"]);
        match ts.iter().find(|t| t["hashString"] == linked_hash.as_str()) {
            // Files are renamed from `.part` just after the last piece is verified.
            Some(t) if t["percentDone"] == 1.0 => linked.check_exact(&scene.path("dl")),
            other => Err(format!("{other:?}")),
        }
    });
    // Checked before the .torrent below is added: its `.part` files will stay.
    linked.assert_exact(&scene.path("dl"));

    // A .torrent clicked in a file manager or downloaded by a browser.
    let torrent = scene.torrent(Some("http://127.0.0.1:1/announce"));
    let out = desktop_cmd("xdg-open", &home)
        .arg(&torrent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xdg-open: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = daemon
        .torrents(&["name", "hashString"])
        .iter()
        .filter(|t| t["hashString"] != linked_hash.as_str())
        .map(|t| {
            format!(
                "{} {}",
                t["name"].as_str().unwrap(),
                t["hashString"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![format!("{} {}", scene.payload.name, info_hash(&torrent))]
    );

    let out = run(desktop_cmd(SHOAL, &home).args(["install-handler", "--uninstall"]));
    assert!(out.contains("removed"), "{out}");
    assert!(!entry.exists());
}
