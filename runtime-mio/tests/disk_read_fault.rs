//! Our own disk failing to read a piece back while hashing it is a storage fault, not a
//! failed hash: the torrent stops with a `StorageError` that says what failed, and the
//! peer that sent the whole piece is not banned for it.
//!
//! The fault is injected through the storage layer's test hook (`Storage::fail_reads`:
//! the next read fails with EIO, as a failing disk's would). With no room in the
//! write-back cache (`DiskLimits::write_back` = 0), every block goes to disk and every
//! piece is hashed by reading it back, so the first piece the leech completes is the one
//! whose read fails. The seed is `shoal seed`, the only peer: the sole sender of every
//! piece, which a failed hash would get banned (see core's `engine::blame`).
//!
//! Needs mktorrent (`scripts/test` installs it). A missing tool fails the test.

mod support;

use std::sync::Arc;
use std::time::Duration;

use shoal_core::engine::{EngineConfig, Event};
use shoal_io::DiskLimits;
use shoal_mio::{Runtime, RuntimeConfig};
use support::*;

#[test]
fn a_piece_our_disk_cannot_read_back_stops_the_torrent_and_bans_no_peer() {
    let payload = Payload::new("unreadable", &[("a.bin", 2 << 20)]);
    let scene = Scene::with_payload(payload);
    let torrent = scene.path("unreadable.torrent");
    mktorrent(&scene.content(), &torrent, 16, None);
    let port = free_port();
    let mut seed = scene.ready_seed(Seeder::Shoal, &torrent, port);

    let mut leech = Runtime::new(RuntimeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        engine: EngineConfig {
            peer_id: shoal_core::PeerId([9; 20]),
            rng_seed: 9,
            ..Default::default()
        },
    })
    .unwrap();
    leech.set_disk_limits(DiskLimits {
        write_back: 0,
        ..DiskLimits::default()
    });
    let meta = Arc::new(shoal_io::read_torrent(&torrent).unwrap());
    let d = shoal_io::open_download(&scene.path("dl"), meta.clone(), false, |_, _| {}).unwrap();
    let storage = d.storage.clone();
    storage.fail_reads(1);
    let id = leech.add_torrent(meta, d.storage, d.verified).unwrap();
    leech.add_peer(id, format!("127.0.0.1:{port}").parse().unwrap());

    // A ban would be told in the same turn as the failure (one engine input does both).
    let events = 'fault: loop {
        assert!(
            std::time::Instant::now() < scene.deadline,
            "no StorageError in time"
        );
        seed.assert_not_failed();
        let events = leech.turn(Some(Duration::from_millis(20))).unwrap();
        for event in &events {
            assert!(
                !matches!(event, Event::Completed { .. }),
                "completed: the injected read failure never happened"
            );
        }
        if events
            .iter()
            .any(|e| matches!(e, Event::StorageError { .. }))
        {
            break 'fault events;
        }
    };
    let error = events
        .iter()
        .find_map(|e| match e {
            Event::StorageError { torrent, error } if *torrent == id => Some(error.to_string()),
            _ => None,
        })
        .expect("the StorageError is the torrent's");
    assert!(
        error.contains("a.bin") && error.contains("os error 5"),
        "the error names the file and the fault: {error}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::PeerBanned { .. } | Event::HashFailed { .. })),
        "a read failure is not a failed hash: {events:?}"
    );
    let stats = leech.stats(id).expect("the torrent is still there");
    assert!(
        stats.pieces_verified < stats.piece_count,
        "the unreadable piece does not count as verified: {stats:?}"
    );
}
