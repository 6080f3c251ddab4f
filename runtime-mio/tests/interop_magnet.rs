//! Interop, BEP 9 fetching side: `shoal download MAGNET` and `shoal info MAGNET` given only
//! a magnet link whose one peer (`x.pe=`) is a libtorrent or Transmission seed: the
//! metadata comes from that seed over `ut_metadata`, then the payload; the copy is checked
//! byte for byte, the `.torrent` is saved in DIR/.shoal/, and a second run with the same
//! link finds it there instead of fetching it again.
//!
//! Transmission ignores 127.x peers it hears of, but serves peers that dial it: `x.pe`
//! makes shoal dial it.
//!
//! Needs Debian's python3-libtorrent, transmission-cli and mktorrent (`scripts/test`
//! installs them). A missing tool fails the test: it is never skipped.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

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
    let mut cmd = Command::new(SHOAL);
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
