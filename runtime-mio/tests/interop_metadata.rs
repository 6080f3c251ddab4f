//! Interop, BEP 9: libtorrent given only a magnet link (no trackers, no metadata) and
//! told to dial a `shoal seed` gets the torrent's metadata from shoal over `ut_metadata`,
//! then downloads the payload; its copy is checked byte for byte.
//!
//! Needs Debian's python3-libtorrent and mktorrent (`scripts/test` installs them). A
//! missing tool fails the test: it is never skipped.

mod support;

use support::*;

fn libtorrent_fetches_metadata_from_shoal(scene: &Scene, torrent: &std::path::Path) {
    let magnet = format!("magnet:?xt=urn:btih:{}", info_hash(torrent));
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Shoal, torrent, port);
    let dl = scene.path("dl");
    let mut leech = lt_download(
        "libtorrent-leech",
        std::path::Path::new(&magnet),
        &dl,
        free_port(),
        &[port],
        false,
        scene.dir(),
    );
    // The only peer libtorrent knows is shoal: the metadata can come from nowhere else.
    leech.wait_for("metadata received", scene.deadline);
    leech.wait_success_watching(&mut seed, scene.deadline);
    scene.payload.assert_data(&dl);
    assert!(seed.try_status().is_none(), "shoal seed stopped on its own");
}

/// The standard payload in 32 KiB pieces: metadata of one ut_metadata piece.
#[test]
fn libtorrent_downloads_a_magnet_link_from_shoal() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    libtorrent_fetches_metadata_from_shoal(&scene, &torrent);
}

/// 40 MB in 16 KiB pieces: 2,442 piece hashes, metadata of four ut_metadata pieces, the
/// last one short.
#[test]
fn libtorrent_fetches_metadata_of_several_pieces_from_shoal() {
    let scene = Scene::with_payload(Payload::new("many-pieces", &[("data.bin", 40_000_000)]));
    let torrent = scene.path("many.torrent");
    lt_make(&scene.content(), &torrent, 16384, true);
    libtorrent_fetches_metadata_from_shoal(&scene, &torrent);
}
