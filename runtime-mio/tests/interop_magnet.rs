//! Interop, BEP 9 fetching side: `shoal download MAGNET` and `shoal info MAGNET` given only
//! a magnet link whose one peer (`x.pe=`) is a libtorrent or Transmission seed: the
//! metadata comes from that seed over `ut_metadata`, then the payload; the copy is checked
//! byte for byte, the `.torrent` is saved in DIR/.shoal/, and a second run with the same
//! link finds it there instead of fetching it again.
//!
//! Transmission ignores 127.x peers it hears of, but serves peers that dial it: `x.pe`
//! makes shoal dial it. A link whose only source is its tracker (`tr=`) works too, and a
//! link with neither tracker nor peer is refused at once when the DHT is off or knows no
//! node (a link found through the DHT: `interop_dht.rs`).
//!
//! Needs Debian's python3-libtorrent, transmission-cli and mktorrent (`scripts/test`
//! installs them). A missing tool fails the test: it is never skipped.

mod support;
mod tracker_support;

use std::path::Path;

use shoal_core::InfoHash;
use support::*;
use tracker_support::ShoalTracker;

fn magnet_of(torrent: &Path, port: u16) -> String {
    format!(
        "magnet:?xt=urn:btih:{}&dn=payload&x.pe=127.0.0.1:{port}",
        info_hash(torrent)
    )
}

fn shoal_downloads_a_magnet_link_from(seeder: Seeder) {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(seeder, &torrent, port);
    let magnet = magnet_of(&torrent, port);
    let dl = scene.path("dl");
    let mut leech = shoal_download(
        "shoal-magnet",
        Path::new(&magnet),
        &dl,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    leech.wait_for("fetching metadata from", scene.deadline);
    leech.wait_for("metadata received", scene.deadline);
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_data(&dl);
    // The .torrent is kept beside the resume record, with the seed's info-hash.
    let hash = info_hash(&torrent);
    let saved = dl.join(".shoal").join(format!("{hash}.torrent"));
    assert_eq!(info_hash(&saved), hash);
    // A second run with the same link does not fetch the metadata again.
    let mut again = shoal_download(
        "shoal-magnet-again",
        Path::new(&magnet),
        &dl,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    again.wait_success(scene.deadline);
    assert!(again.said("already complete"), "{}", again.tail(20));
    assert!(!again.said("fetching metadata"), "{}", again.tail(20));
    assert!(seed.try_status().is_none(), "the seed stopped on its own");
}

#[test]
fn shoal_downloads_a_magnet_link_from_libtorrent() {
    shoal_downloads_a_magnet_link_from(Seeder::Libtorrent);
}

#[test]
fn shoal_downloads_a_magnet_link_from_transmission() {
    shoal_downloads_a_magnet_link_from(Seeder::Transmission);
}

#[test]
fn shoal_info_prints_the_metadata_of_a_magnet_link_from_libtorrent() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    let mut cmd = support::shoal_command();
    cmd.arg("info").arg(magnet_of(&torrent, port));
    let mut info = Proc::spawn("shoal-info", cmd, scene.dir());
    info.wait_success_watching(&mut seed, scene.deadline);
    let hash = info_hash(&torrent);
    assert!(
        info.said(&format!("info-hash:    {hash}")),
        "{}",
        info.tail(20)
    );
    assert!(
        info.said(&format!("name:         {}", scene.payload.name)),
        "{}",
        info.tail(20)
    );
    let files = scene.payload.files.len();
    assert!(
        info.said(&format!("files:        {files}")),
        "{}",
        info.tail(20)
    );
}

#[test]
fn shoal_downloads_a_magnet_link_whose_only_source_is_its_tracker() {
    let scene = Scene::new();
    let mut tracker = ShoalTracker::start(scene.dir(), &["--open"], scene.deadline);
    let torrent = scene.path("tracked.torrent");
    mktorrent(
        &scene.content(),
        &torrent,
        15,
        Some(&tracker.announce_url()),
    );
    let hash = info_hash(&torrent);
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    tracker.wait_for_peers(&InfoHash::from_hex(&hash).unwrap(), 1, 0, scene.deadline);
    let magnet = format!(
        "magnet:?xt=urn:btih:{hash}&tr={}",
        tracker
            .announce_url()
            .replace(':', "%3A")
            .replace('/', "%2F")
    );
    let dl = scene.path("dl");
    let mut leech = shoal_download(
        "shoal-magnet",
        Path::new(&magnet),
        &dl,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    leech.wait_for("metadata received", scene.deadline);
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_data(&dl);
    tracker.assert_running();
}

#[test]
fn a_magnet_link_with_no_tracker_and_no_peer_is_refused_at_once_without_the_dht() {
    // With --no-dht, or a DHT that knows no node to start from (the helpers leave it
    // none), nothing could ever answer the link.
    let scene = Scene::new();
    let link = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
    for (extra, why) in [
        (&["--no-dht"][..], "the DHT is off (--no-dht)"),
        (&[][..], "the DHT knows no node to start from"),
    ] {
        let mut leech = shoal_download(
            "shoal-magnet",
            Path::new(link),
            &scene.path("dl"),
            free_port(),
            &[],
            extra,
            scene.dir(),
        );
        let status = leech.wait_exit(scene.deadline);
        assert_eq!(status.code(), Some(1), "{}", leech.tail(10));
        assert!(leech.said("no way to find peers"), "{}", leech.tail(10));
        assert!(leech.said(why), "{}", leech.tail(10));
    }
}
