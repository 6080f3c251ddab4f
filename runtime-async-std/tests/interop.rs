//! Interop: a [`Session`] downloads a multi-file torrent from a libtorrent seed and from a
//! transmission seed, and libtorrent and transmission download it from a session seed, on
//! loopback; the data is checked byte for byte. The sessions find libtorrent through a
//! local opentracker too, over HTTP and over UDP, so the tracker transports are covered.
//!
//! The helpers and the payload are the mio runtime's (`runtime-mio/tests/support`): the
//! same real clients, started and checked the same way. The shoal side is a session in this
//! process instead of the `shoal` binary. Scenarios run under async-std and under smol.
//!
//! Needs Debian's python3-libtorrent, transmission-cli, mktorrent and opentracker
//! (`scripts/test` installs them). A missing tool fails the test: it is never skipped.

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::path::Path;

use common::*;
use shoal_async_std::{AddOptions, Event};
use shoal_core::engine::PeerStream;
use support::*;

/// A session downloads `torrent` into `scene/dl`, dialing `peers` (ports on 127.0.0.1);
/// asserts the exact files (the empty one too, no `.part` left).
fn session_downloads<E: Exec>(scene: &Scene, torrent: &Path, peers: &[u16], seed: &mut Proc) {
    let dl = scene.path("dl");
    E::block_on(async {
        let session = session::<E>();
        let events = session.events();
        let mut seen = Seen::default();
        let options = AddOptions {
            peers: peers.iter().map(|&p| common::local(p)).collect(),
            ..AddOptions::default()
        };
        let t = session.add_torrent(torrent, &dl, options).await.unwrap();
        wait_complete(&events, &mut seen, t, scene.deadline, || {
            seed.assert_not_failed()
        })
        .await;
        session.shutdown().await;
    });
    scene.payload.assert_exact(&dl);
}

fn downloads_from_libtorrent<E: Exec>() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, port);
    session_downloads::<E>(&scene, &torrent, &[port], &mut seed);
}

#[test]
fn downloads_from_libtorrent_under_async_std() {
    downloads_from_libtorrent::<AsyncStd>();
}

#[test]
fn downloads_from_libtorrent_under_smol() {
    downloads_from_libtorrent::<Smol>();
}

/// The session finds the seed only through opentracker: `http://` or `udp://`.
fn downloads_through_opentracker<E: Exec>(udp: bool) {
    let scene = Scene::new();
    let hash = info_hash(&scene.torrent(None));
    let mut tracker = Tracker::start(&scene.path("tracker"), &[&hash], scene.deadline);
    let url = if udp {
        tracker.udp_announce_url()
    } else {
        tracker.announce_url()
    };
    let torrent = scene.torrent(Some(&url));
    assert_eq!(info_hash(&torrent), hash);
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    tracker.wait_seeders(&hash, 1, scene.deadline);
    session_downloads::<E>(&scene, &torrent, &[], &mut seed);
}

#[test]
fn downloads_from_libtorrent_found_through_an_http_tracker_under_async_std() {
    downloads_through_opentracker::<AsyncStd>(false);
}

#[test]
fn downloads_from_libtorrent_found_through_a_udp_tracker_under_smol() {
    downloads_through_opentracker::<Smol>(true);
}

/// transmission serves only peers that dial it: the session is given its address.
fn downloads_from_transmission<E: Exec>() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Transmission, &torrent, port);
    session_downloads::<E>(&scene, &torrent, &[port], &mut seed);
}

#[test]
fn downloads_from_transmission_under_async_std() {
    downloads_from_transmission::<AsyncStd>();
}

#[test]
fn downloads_from_transmission_under_smol() {
    downloads_from_transmission::<Smol>();
}

/// A session seeds `scene/src` (its data checked first) and libtorrent downloads from it,
/// dialing it with message stream encryption: with its defaults (the session selects
/// plaintext after MSE), or allowed nothing but RC4 (`rc4`: every byte encrypted).
fn libtorrent_downloads_from_a_session<E: Exec>(rc4: bool) {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let dl = scene.path("dl");
    E::block_on(async {
        let session = session::<E>();
        let events = session.events();
        let mut seen = Seen::default();
        let t = session
            .add_torrent(torrent.as_path(), scene.src(), AddOptions::default())
            .await
            .unwrap();
        assert!(session.stats(t).await.unwrap().progress.complete);
        let extra: &[&str] = if rc4 { &["--rc4-only"] } else { &[] };
        let mut leech = lt_download_with(
            "libtorrent-leech",
            &torrent,
            &dl,
            free_port(),
            &[session.local_addr().port()],
            extra,
            scene.dir(),
        );
        poll_until("libtorrent download", scene.deadline, || {
            match leech.try_status() {
                Some(_) => Ok(()),
                None => Err("libtorrent still downloading".into()),
            }
        })
        .await;
        leech.wait_success(scene.deadline);
        let up = session.stats(t).await.unwrap().progress.uploaded;
        assert!(up >= scene.payload.total_len() as u64, "uploaded {up}");
        // The seed saw its peer come, and go when libtorrent exited.
        let came = wait_event(
            &events,
            &mut seen,
            "libtorrent's connection",
            scene.deadline,
            |e| matches!(e, Event::PeerConnected { torrent, .. } if *torrent == t),
            || {},
        )
        .await;
        let Event::PeerConnected { addr, stream, .. } = came else {
            unreachable!("wait_event returns the event it waited for")
        };
        let expected = if rc4 {
            PeerStream::Rc4
        } else {
            PeerStream::MsePlaintext
        };
        assert_eq!(stream, expected);
        wait_event(
            &events,
            &mut seen,
            "libtorrent's connection closed",
            scene.deadline,
            |e| matches!(e, Event::PeerClosed { torrent, addr: a, .. } if *torrent == Some(t) && *a == addr),
            || {},
        )
        .await;
        session.shutdown().await;
    });
    scene.payload.assert_data(&dl);
}

#[test]
fn libtorrent_downloads_from_a_session_under_async_std() {
    libtorrent_downloads_from_a_session::<AsyncStd>(false);
}

#[test]
fn libtorrent_downloads_from_a_session_under_smol() {
    libtorrent_downloads_from_a_session::<Smol>(false);
}

#[test]
fn libtorrent_allowed_only_rc4_downloads_from_a_session_under_async_std() {
    libtorrent_downloads_from_a_session::<AsyncStd>(true);
}

/// transmission takes only peers that dial it: the session seed dials transmission.
#[test]
fn transmission_downloads_from_a_session_under_async_std() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let dl = scene.path("dl");
    let tr_port = free_port();
    let mut leech = scene.ready_transmission_leech(&torrent, &dl, tr_port);
    AsyncStd::block_on(async {
        let session = session::<AsyncStd>();
        let options = AddOptions {
            peers: vec![common::local(tr_port)],
            ..AddOptions::default()
        };
        session
            .add_torrent(torrent.as_path(), scene.src(), options)
            .await
            .unwrap();
        poll_until("transmission download", scene.deadline, || {
            leech.assert_not_failed();
            scene.payload.check_data(&dl)
        })
        .await;
        session.shutdown().await;
    });
}
