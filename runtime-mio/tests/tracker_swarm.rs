//! Real clients complete swarms whose only way to find each other is `shoal tracker`:
//! over HTTP (libtorrent, transmission, aria2 and shoal, seeds and leechers, with the
//! `.torrent` itself fetched by shoal from the tracker's web server), and over `udp://`
//! (libtorrent and shoal).
//!
//! How the HTTP swarm is built so that it completes, given what each client does on
//! loopback (INTEROP.md):
//!
//! - transmission ignores peers on 127.x it hears of from a tracker: it never dials
//!   anyone here. A transmission *seed* is still useful (the others dial it), and a
//!   transmission *leecher* gets data only from peers that dial it. So the transmission
//!   leecher starts first and waits until the tracker counts it: everyone who announces
//!   afterwards is handed its address (the swarm is far smaller than `numwant`) and dials
//!   it, and the libtorrent and shoal leechers keep seeding until it is done.
//! - aria2 takes peers only from trackers (HTTP here: it has no UDP tracker support with
//!   DHT off), which is exactly what is tested.
//! - Seeds: libtorrent, transmission and aria2. Leechers: transmission, libtorrent, aria2,
//!   and `shoal download http://127.0.0.1:PORT/payload.torrent`, which fetches the
//!   torrent from the tracker's web server. Nobody is given a `--peer`; DHT, LSD and PEX
//!   are off everywhere.
//!
//! Needs Debian's python3-libtorrent, transmission-cli, aria2 and mktorrent
//! (`scripts/test` installs them). A missing tool fails the test: it is never skipped.

mod support;
mod tracker_support;

use std::path::{Path, PathBuf};

use shoal_core::InfoHash;

use support::*;
use tracker_support::*;

/// `shoal tracker` on a free port, serving and tracking the folder `scene/served`, which
/// holds a torrent of the scene's payload announcing to it at `scheme://…/announce`
/// (`http` or `udp`; the test's own scrapes go over HTTP either way). `extra`: more
/// tracker arguments. Returns the tracker, its port, the torrent and its info-hash.
fn served_swarm(
    scene: &Scene,
    scheme: &str,
    extra: &[&str],
) -> (ShoalTracker, u16, PathBuf, InfoHash) {
    let port = free_port();
    let served = scene.path("served");
    std::fs::create_dir_all(&served).unwrap();
    let torrent = served.join("payload.torrent");
    let url = format!("{scheme}://127.0.0.1:{port}/announce");
    mktorrent(&scene.content(), &torrent, 15, Some(&url));
    let hash = InfoHash::from_hex(&info_hash(&torrent)).unwrap();
    let mut args = vec!["--torrents", served.to_str().unwrap()];
    args.extend_from_slice(extra);
    let tracker = ShoalTracker::start_on(port, scene.dir(), &args, scene.deadline);
    (tracker, port, torrent, hash)
}

#[test]
fn libtorrent_transmission_aria2_and_shoal_complete_a_swarm_over_http() {
    let scene = Scene::new();
    // The tracker serves the folder's torrents and tracks only them.
    let (mut tracker, port, torrent, hash) = served_swarm(&scene, "http", &["--interval", "5"]);

    let tr_leech_dir = scene.path("transmission-leech");
    let mut tr_leech = transmission(
        "transmission-leech",
        &torrent,
        &tr_leech_dir,
        free_port(),
        scene.dir(),
    );
    tracker.wait_for_peers(&hash, 0, 1, scene.deadline);

    let mut lt_seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        free_port(),
        &[],
        scene.dir(),
    );
    let mut tr_seed = transmission(
        "transmission-seed",
        &torrent,
        &scene.src(),
        free_port(),
        scene.dir(),
    );
    let mut aria_seed = aria2_seed(
        "aria2-seed",
        &torrent,
        &scene.src(),
        free_port(),
        scene.dir(),
    );
    lt_seed.wait_for("seeding", scene.deadline);
    // The three seeds and the transmission leecher, which may have finished already (from
    // the libtorrent seed, in a second on loopback) and count as a fourth seed.
    tracker.wait_for_swarm(&hash, 3, 4, 0, scene.deadline);

    let lt_dir = scene.path("libtorrent-leech");
    let mut lt_leech = lt_download(
        "libtorrent-leech",
        &torrent,
        &lt_dir,
        free_port(),
        &[],
        true,
        scene.dir(),
    );
    let aria_dir = scene.path("aria2-leech");
    let mut aria_leech =
        aria2_download("aria2-leech", &torrent, &aria_dir, free_port(), scene.dir());
    let shoal_dir = scene.path("shoal-leech");
    let served_url = format!("http://127.0.0.1:{port}/payload.torrent");
    let mut shoal_leech = shoal_download(
        "shoal-leech",
        Path::new(&served_url),
        &shoal_dir,
        free_port(),
        &[],
        &["--seed-ratio", "0"],
        scene.dir(),
    );

    let payload = &scene.payload;
    let mut aria_done = false;
    wait_until("every leecher complete", scene.deadline, || {
        tracker.assert_running();
        for p in [
            &mut lt_seed,
            &mut tr_seed,
            &mut aria_seed,
            &mut tr_leech,
            &mut lt_leech,
        ] {
            p.assert_not_failed();
        }
        shoal_leech.assert_not_failed();
        if !aria_done {
            match aria_leech.try_status() {
                None => return Err("aria2 leecher still downloading".into()),
                Some(s) if s.success() => aria_done = true,
                Some(s) => panic!("aria2 leecher failed ({s})\n{}", aria_leech.tail(40)),
            }
        }
        payload
            .check_data(&aria_dir)
            .map_err(|e| format!("aria2: {e}"))?;
        if !lt_leech.said("complete") {
            return Err("libtorrent leecher not complete".into());
        }
        payload
            .check_data(&lt_dir)
            .map_err(|e| format!("libtorrent: {e}"))?;
        payload
            .check_exact(&shoal_dir)
            .map_err(|e| format!("shoal: {e}"))?;
        payload
            .check_data(&tr_leech_dir)
            .map_err(|e| format!("transmission: {e}"))?;
        Ok(())
    });
    // The tracker saw the downloads through: completed events counted, finished leechers
    // counted as seeds.
    let (seeders, _, downloads) = tracker.scrape(&hash);
    assert!(seeders >= 3, "{seeders} seeders at the end");
    assert!(downloads >= 2, "{downloads} downloads counted");
    println!("scrape at the end: {seeders} seeders, {downloads} downloads");
}

#[test]
fn libtorrent_and_shoal_complete_a_swarm_over_udp() {
    let scene = Scene::new();
    // The clients know the udp:// URL alone.
    let (mut tracker, _, torrent, hash) = served_swarm(&scene, "udp", &[]);
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    tracker.wait_for_peers(&hash, 1, 0, scene.deadline);

    let lt_dir = scene.path("libtorrent-leech");
    let mut lt_leech = lt_download(
        "libtorrent-leech",
        &torrent,
        &lt_dir,
        free_port(),
        &[],
        false,
        scene.dir(),
    );
    let shoal_dir = scene.path("shoal-leech");
    let mut shoal_leech = shoal_download(
        "shoal-leech",
        &torrent,
        &shoal_dir,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    wait_until("both leechers complete", scene.deadline, || {
        tracker.assert_running();
        seed.assert_not_failed();
        if lt_leech.try_status().is_none() || shoal_leech.try_status().is_none() {
            return Err("still downloading".into());
        }
        Ok(())
    });
    lt_leech.wait_success(scene.deadline);
    shoal_leech.wait_success(scene.deadline);
    scene.payload.assert_data(&lt_dir);
    scene.payload.assert_exact(&shoal_dir);
    // libtorrent's `completed` went over UDP too.
    let (_, _, downloads) = tracker.scrape(&hash);
    assert!(downloads >= 1, "{downloads} downloads counted");
}
