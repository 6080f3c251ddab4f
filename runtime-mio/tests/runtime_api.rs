//! The mio `Runtime` as a library user drives it, in one process: a seed and a leech, each
//! its own `Runtime`, turned in turn on 127.0.0.1. What a caller is promised: when
//! `Event::Completed` reaches it, every file is under its final name already (the renames
//! run on workers; the word waits for them).
//!
//! Needs mktorrent (`scripts/test` installs it). A missing tool fails the test.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::engine::{EngineConfig, Event};
use shoal_mio::{Runtime, RuntimeConfig};
use support::*;

fn runtime(peer_id: u8) -> Runtime {
    Runtime::new(RuntimeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        engine: EngineConfig {
            peer_id: shoal_core::PeerId([peer_id; 20]),
            rng_seed: u64::from(peer_id),
            ..Default::default()
        },
    })
    .unwrap()
}

#[test]
fn completed_reaches_the_caller_after_every_file_has_its_final_name() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let meta = Arc::new(shoal_io::read_torrent(&torrent).unwrap());

    let mut seed = runtime(1);
    let (storage, verified) = shoal_io::open_seed(&scene.src(), meta.clone(), |_, _| {}).unwrap();
    seed.add_torrent(meta.clone(), storage, verified).unwrap();

    let dl = scene.path("dl");
    let mut leech = runtime(2);
    let d = shoal_io::open_download(&dl, meta.clone(), false, |_, _| {}).unwrap();
    let id = leech.add_torrent(meta, d.storage, d.verified).unwrap();
    leech.add_peer(id, seed.local_addr());

    loop {
        assert!(Instant::now() < scene.deadline, "no Completed in time");
        seed.turn(Some(Duration::from_millis(5))).unwrap();
        let events = leech.turn(Some(Duration::from_millis(5))).unwrap();
        for event in events {
            if let Event::StorageError { error, .. } = &event {
                panic!("storage error: {error}");
            }
            if matches!(event, Event::Completed { torrent } if torrent == id) {
                // Checked before anything else runs: no `.part`, every file final.
                scene.payload.assert_exact(&dl);
                return;
            }
        }
    }
}
