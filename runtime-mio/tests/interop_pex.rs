//! Interop, BEP 11 (ut_pex), three parties on 127.0.0.1, no tracker, each told of one other
//! peer only:
//!
//! - shoal learns a libtorrent peer from another libtorrent peer's PEX: shoal and a
//!   libtorrent leecher are told of a libtorrent seed; shoal dials the leecher's
//!   listening port, which it can have heard of only by the seed's PEX (libtorrent's
//!   first message to a peer names few peers here; its once-a-minute message names those
//!   that came since, so the leecher comes after shoal);
//! - libtorrent learns a shoal peer from shoal's PEX: a libtorrent seed is told of one
//!   shoal leecher, which is told of another; libtorrent connects to the second one's
//!   listening port, which only the first one's PEX names.
//!
//! Needs Debian's python3-libtorrent and mktorrent (`scripts/test` installs them). A
//! missing tool fails the test: it is never skipped.

mod support;

use support::*;

#[test]
fn shoal_learns_a_libtorrent_peer_through_pex() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let (pl, px, ps) = (free_port(), free_port(), free_port());
    // A very slow seed: nobody completes (and leaves it) within the minute its PEX takes.
    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        pl,
        &["--upload-limit", "20000"],
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    // shoal, told of the seed only, listens on 127.0.0.2: its connections still come from
    // 127.0.0.1, so the address the seed's PEX gives others for it (127.0.0.1 and its
    // port) leads nowhere, and only shoal can make a connection to a peer it hears of.
    let dl = scene.path("dl");
    let mut cmd = support::shoal_command();
    cmd.args([
        "download",
        torrent.to_str().unwrap(),
        "-o",
        dl.to_str().unwrap(),
    ])
    .args(["--plain", "--bind", "127.0.0.2", "--port", &ps.to_string()])
    .args(["--peer", &local(pl)])
    .env("SHOAL_VERBOSE", "1");
    let mut leech = Proc::spawn("shoal", cmd, scene.dir());
    leech.wait_for(&format!("peer {} connected", local(pl)), scene.deadline);
    // Another libtorrent peer, told of the seed only, comes after shoal: the seed's next
    // PEX message (libtorrent sends what changed once a minute) names it to shoal.
    let mut other = lt_download(
        "libtorrent-other",
        &torrent,
        &scene.path("other"),
        px,
        &[pl],
        true,
        scene.dir(),
    );
    other.wait_for(&format!("connected {}", local(pl)), scene.deadline);
    leech.wait_for(&format!("peer {} connected", local(px)), scene.deadline);
    assert!(seed.try_status().is_none(), "the libtorrent seed stopped");
    assert!(
        other.try_status().is_none(),
        "the other libtorrent peer stopped"
    );
    assert!(leech.try_status().is_none(), "shoal stopped");
    leech.terminate(std::time::Duration::from_secs(10));
}

#[test]
fn libtorrent_learns_a_shoal_peer_through_shoals_pex() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let (p1, p2, pl) = (free_port(), free_port(), free_port());
    // Two shoal leechers told of each other; they stay leechers until the seed comes.
    let mut near = shoal_download(
        "shoal-near",
        &torrent,
        &scene.path("near"),
        p1,
        &[p2],
        &[],
        scene.dir(),
    );
    let mut far = shoal_download(
        "shoal-far",
        &torrent,
        &scene.path("far"),
        p2,
        &[p1],
        &[],
        scene.dir(),
    );
    near.wait_for("peer 127.0.0.1:", scene.deadline);
    // A slow libtorrent seed told of the near one only: the far one's listening port is
    // named to it by nobody but the near one's PEX.
    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        pl,
        &["--peer", &local(p1), "--upload-limit", "400000"],
        scene.dir(),
    );
    seed.wait_for(&format!("connected {}", local(p1)), scene.deadline);
    seed.wait_for(&format!("connected {}", local(p2)), scene.deadline);
    far.wait_for("download complete", scene.deadline);
    near.wait_for("download complete", scene.deadline);
    scene.payload.assert_data(&scene.path("near"));
    scene.payload.assert_data(&scene.path("far"));
    assert!(seed.try_status().is_none(), "the libtorrent seed stopped");
    near.terminate(std::time::Duration::from_secs(10));
    far.terminate(std::time::Duration::from_secs(10));
}
