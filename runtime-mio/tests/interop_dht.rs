//! Interop, the DHT (BEP 5) against libtorrent's: trackerless magnet links, both ways.
//!
//! Every node is on 127.0.0.1 and knows only the ones the test names: a libtorrent DHT
//! node serves as the router where two clients must meet, and shoal's node is the router
//! where two libtorrent sessions must meet. The magnet links name no tracker and no peer
//! (`magnet:?xt=urn:btih:HASH`): the DHT is the only way. libtorrent runs with the loopback
//! settings it needs (see `support/lt.py`); its router prints the `get_peers` and
//! `announce_peer` queries it accepted, which is how the tests check shoal's from
//! libtorrent's side.
//!
//! `shoal daemon` runs one DHT node for all its torrents: a bare magnet given over its
//! Transmission RPC completes from a libtorrent seed met on the router, and the table is in
//! the state folder after a clean stop.
//!
//! Needs Debian's python3-libtorrent and mktorrent (`scripts/test` installs them). A
//! missing tool fails the test: it is never skipped.

mod daemon_support;
mod support;

use std::path::Path;

use daemon_support::ShoalDaemon;
use support::*;

fn bare_magnet(torrent: &Path) -> String {
    format!("magnet:?xt=urn:btih:{}", info_hash(torrent))
}

#[test]
fn shoal_downloads_a_trackerless_magnet_from_libtorrent_found_on_the_dht() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let hash = info_hash(&torrent);
    let router_port = free_port();
    let mut router = lt_dht_router("libtorrent-router", router_port, scene.dir());
    let seed_port = free_port();
    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        seed_port,
        &["--dht", &local(router_port)],
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    // The seed is announced on the router before shoal starts looking.
    router.wait_for(
        &format!("dht announce {} {hash}", local(seed_port)),
        scene.deadline,
    );
    let dl = scene.path("dl");
    let shoal_port = free_port();
    // It seeds once complete, so it is still there when its lookup ends: the download
    // can finish (from the first peer the lookup names) before the lookup has.
    let mut leech = shoal_download(
        "shoal-dht",
        Path::new(&bare_magnet(&torrent)),
        &dl,
        shoal_port,
        &[],
        &["--dht-bootstrap", &local(router_port)],
        scene.dir(),
    );
    leech.wait_for("metadata received", scene.deadline);
    leech.wait_for("download complete", scene.deadline);
    scene.payload.assert_exact(&dl);
    leech.wait_for("DHT: 1 peers", scene.deadline);
    // libtorrent took shoal's get_peers and, with the token it gave, its announce_peer.
    assert!(router.said(&format!("dht get_peers {hash}")));
    router.wait_for(
        &format!("dht announce {} {hash}", local(shoal_port)),
        scene.deadline,
    );
    // Stopped as Ctrl-C would: it saves its table.
    assert!(
        leech
            .terminate(std::time::Duration::from_secs(20))
            .is_some(),
        "shoal did not stop on SIGTERM"
    );
    // The routing table is kept for the next run, beside the resume record.
    let state = std::fs::read(dl.join(".shoal").join("dht.state")).unwrap();
    assert!(
        state.len() >= 20 + 26 && (state.len() - 20).is_multiple_of(26),
        "{}",
        state.len()
    );
    // A later run into another folder holding only that table, with no bootstrap node
    // (the helpers leave SHOAL_DHT_BOOTSTRAP empty), starts from it and finds the seed.
    let dl2 = scene.path("dl2");
    std::fs::create_dir_all(dl2.join(".shoal")).unwrap();
    std::fs::write(dl2.join(".shoal").join("dht.state"), &state).unwrap();
    let mut again = shoal_download(
        "shoal-dht-restarted",
        Path::new(&bare_magnet(&torrent)),
        &dl2,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    again.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_exact(&dl2);
}

#[test]
fn libtorrent_downloads_a_trackerless_magnet_from_a_shoal_seed_announced_on_the_dht() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let hash = info_hash(&torrent);
    let router_port = free_port();
    let mut router = lt_dht_router("libtorrent-router", router_port, scene.dir());
    let seed_port = free_port();
    // By name: the router's address comes from a lookup in the background (localhost is
    // in /etc/hosts: nothing leaves the machine).
    let by_name = format!("localhost:{router_port}");
    let mut seed = shoal_download(
        "shoal-seed",
        &torrent,
        &scene.src(),
        seed_port,
        &[],
        &["--seed-ratio", "0", "--dht-bootstrap", &by_name],
        scene.dir(),
    );
    seed.wait_for("already complete", scene.deadline);
    router.wait_for(
        &format!("dht announce {} {hash}", local(seed_port)),
        scene.deadline,
    );
    let dl = scene.path("dl");
    let mut leech = lt_download_by_dht(
        "libtorrent-leech",
        &bare_magnet(&torrent),
        &dl,
        free_port(),
        router_port,
        scene.dir(),
    );
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_exact(&dl);
    assert!(
        leech.said(&format!("connected {}", local(seed_port))),
        "{}",
        leech.tail(20)
    );
}

#[test]
fn two_libtorrent_sessions_meet_through_a_shoal_dht_node() {
    // shoal's node is the router: libtorrent's seed announces to it, libtorrent's leecher
    // asks it for peers. It can only work if shoal answers ping, find_node, get_peers and
    // announce_peer as libtorrent expects (tokens included).
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    // shoal seeds something else: its node knows nobody and is known by both.
    let other = scene.path("other");
    let other_payload = Payload::new("other", &[("x", 40_000)]);
    other_payload.write(&other);
    let other_torrent = scene.path("other.torrent");
    mktorrent(&other.join("other"), &other_torrent, 15, None);
    let shoal_port = free_port();
    let mut node = shoal_seed(
        "shoal-node",
        &other_torrent,
        &other,
        shoal_port,
        &[],
        scene.dir(),
    );
    node.wait_for(SHOAL_READY, scene.deadline);
    let seed_port = free_port();
    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        seed_port,
        &["--dht", &local(shoal_port)],
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    let dl = scene.path("dl");
    let mut leech = lt_download_by_dht(
        "libtorrent-leech",
        &bare_magnet(&torrent),
        &dl,
        free_port(),
        shoal_port,
        scene.dir(),
    );
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_exact(&dl);
    assert!(
        leech.said(&format!("connected {}", local(seed_port))),
        "{}",
        leech.tail(20)
    );
    node.assert_not_failed();
}

#[test]
fn the_daemon_downloads_a_trackerless_magnet_found_on_the_dht_and_keeps_its_table() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let hash = info_hash(&torrent);
    let router_port = free_port();
    let mut router = lt_dht_router("libtorrent-router", router_port, scene.dir());
    let seed_port = free_port();
    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        seed_port,
        &["--dht", &local(router_port)],
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    router.wait_for(
        &format!("dht announce {} {hash}", local(seed_port)),
        scene.deadline,
    );
    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let mut daemon = ShoalDaemon::start_with(
        "shoal-daemon",
        &state,
        &dl,
        free_port(),
        &["--dht-bootstrap", &local(router_port)],
        scene.dir(),
        scene.deadline,
    );
    let added = daemon.rpc(
        "torrent-add",
        serde_json::json!({ "filename": bare_magnet(&torrent) }),
    );
    assert_eq!(added["torrent-added"]["hashString"], hash, "{added}");
    wait_until("the magnet's torrent at 100 %", scene.deadline, || {
        seed.assert_not_failed();
        daemon.proc.assert_not_failed();
        let t = daemon.torrents(&["hashString", "percentDone"]);
        match t.iter().find(|t| t["hashString"] == hash) {
            Some(t) if t["percentDone"] == 1.0 => scene.payload.check_exact(&dl),
            other => Err(format!("{other:?}")),
        }
    });
    scene.payload.assert_exact(&dl);
    let status = daemon.proc.terminate(std::time::Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        daemon.proc.tail(20)
    );
    let table = std::fs::read(state.join("dht.state")).unwrap();
    assert!(table.len() >= 20 + 26, "{}", table.len());
}
