//! The DHT (BEP 5) in the engine: torrents announce themselves and find peers through
//! the node on the engine's UDP socket, with nothing else to go on; private torrents
//! never touch it.

mod support;

use std::time::Duration;

use shoal_core::engine::{Event, DHT_RETRY_FIRST};
use support::{make_torrent, Swarm};

fn dht_answers(swarm: &Swarm, i: usize) -> Vec<(usize, usize)> {
    swarm.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::DhtAnswer {
                peers, announced, ..
            } => Some((*peers, *announced)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_magnet_link_finds_its_seed_through_the_dht_alone() {
    let (meta, data) = make_torrent(&[("a", 300_000), ("b", 70_000)], 32768);
    let (other, other_data) = make_torrent(&[("other", 50_000)], 16384);
    let mut swarm = Swarm::new();
    // A node of an unrelated torrent that both know: the only way they can meet.
    let router = swarm.add_seed(&other, &other_data, 1 << 20, 1);
    let seed = swarm.add_seed(&meta, &data, 1 << 20, 2);
    let leech = swarm.add_magnet_node(&meta, 1 << 20, 3);
    swarm.start_dht(router, &[]);
    swarm.start_dht(seed, &[router]);
    swarm.start_dht(leech, &[router]);
    let done = swarm.run_until(Duration::from_secs(300), |s| s.is_complete(leech));
    assert!(done, "the magnet's torrent did not complete");
    assert_eq!(&swarm.nodes[leech].data, &data);
    // The seed announced itself to a node that gave it a token, and the router kept it.
    assert!(
        dht_answers(&swarm, seed).iter().any(|&(_, a)| a > 0),
        "{:?}",
        dht_answers(&swarm, seed)
    );
    assert!(swarm.nodes[router].engine.dht_stats().unwrap().stored.1 >= 1);
    assert!(
        dht_answers(&swarm, leech).iter().any(|&(p, _)| p > 0),
        "{:?}",
        dht_answers(&swarm, leech)
    );
}

#[test]
fn a_lookup_that_finds_nothing_is_tried_again_after_a_growing_wait() {
    let (meta, data) = make_torrent(&[("a", 100_000)], 16384);
    let mut swarm = Swarm::new();
    let lonely = swarm.add_seed(&meta, &data, 1 << 20, 1);
    swarm.start_dht(lonely, &[]);
    swarm.run_until(Duration::from_secs(200), |_| false);
    // No node at all: every lookup ends empty, 15 s, 30 s, 60 s apart, then 120 s.
    let answers = dht_answers(&swarm, lonely);
    assert!(
        answers.len() >= 3 && answers.len() <= 5,
        "{answers:?} lookups in 200 s (first retry after {DHT_RETRY_FIRST:?})"
    );
    assert!(
        answers.iter().all(|&(p, a)| p == 0 && a == 0),
        "{answers:?}"
    );
}

#[test]
fn private_torrents_never_use_the_dht() {
    let (meta, data) = make_torrent(&[("a", 100_000)], 16384);
    let mut info = meta.info_bytes.clone();
    let at = info.len() - 1;
    info.splice(at..at, b"7:privatei1e".iter().copied());
    let private =
        std::sync::Arc::new(shoal_core::metainfo::Metainfo::from_info_bytes(&info).unwrap());
    assert!(private.info.private);
    let (other, other_data) = make_torrent(&[("other", 50_000)], 16384);
    let mut swarm = Swarm::new();
    let router = swarm.add_seed(&other, &other_data, 1 << 20, 1);
    let seed = swarm.add_seed(&private, &data, 1 << 20, 2);
    swarm.start_dht(router, &[]);
    swarm.start_dht(seed, &[router]);
    swarm.run_until(Duration::from_secs(120), |_| false);
    assert!(dht_answers(&swarm, seed).is_empty());
    // The private seed's node still serves the DHT (it answered the router's lookups),
    // but nothing of its own was announced.
    assert!(swarm.nodes[seed].engine.dht_stats().unwrap().node.answered > 0);
    assert_eq!(
        swarm.nodes[router].engine.dht_stats().unwrap().stored,
        (0, 0)
    );
}
