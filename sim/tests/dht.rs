//! The DHT simulation at a size a test can afford: lookups find the true k closest,
//! announced peers are found, with deaf and lying nodes; and a run is a pure function of
//! its scenario (same seed, same trace hash; another seed, another hash).

use shoal_sim::dht::{run, DhtScenario};

fn scenario(seed: u64) -> DhtScenario {
    let mut sc = DhtScenario::new(1500, seed);
    sc.lookups = 100;
    sc.announces = 20;
    sc
}

#[test]
fn fifteen_hundred_nodes_find_the_true_closest_and_announced_peers() {
    let mut sc = scenario(3);
    sc.deaf = 0.1;
    let r = run(&sc);
    eprintln!("{}", r.text());
    assert_eq!(r.lookups, 100, "every lookup ended");
    assert!(r.exact >= 95, "{} of 100 lookups exact", r.exact);
    assert!(r.found >= 19, "{} of 20 announced peers found", r.found);
    // A lookup needs about log2(N) / log2(k)-ish hops; far more means the table is poor.
    assert!(r.hops < r.log2_n, "{:.1} hops", r.hops);
}

#[test]
fn lying_nodes_slow_lookups_down_but_do_not_mislead_them() {
    let mut sc = scenario(4);
    sc.liars = 0.1;
    let r = run(&sc);
    eprintln!("{}", r.text());
    assert_eq!(r.lookups, 100);
    assert!(r.exact >= 90, "{} of 100 lookups exact", r.exact);
    assert!(r.found >= 18, "{} of 20 announced peers found", r.found);
    assert!(
        r.failures > 0.0,
        "the made-up contacts were tried and timed out"
    );
}

#[test]
fn same_seed_same_trace() {
    let mut sc = scenario(5);
    sc.nodes = 400;
    sc.churn = 0.1;
    let (a, b) = (run(&sc), run(&sc));
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.datagrams, b.datagrams);
    sc.seed = 6;
    assert_ne!(run(&sc).trace, a.trace);
}

/// A swarm of 1,000 BitTorrent nodes whose torrent names no tracker: they find each other
/// through the engines' DHT nodes (every node bootstraps from the seed's address) and
/// PEX, and every leecher completes.
#[test]
fn a_thousand_trackerless_nodes_meet_through_the_dht_and_all_complete() {
    use shoal_sim::scenario::{Scenario, TrackerKind};
    use shoal_sim::Sim;
    const MIB: u64 = 1024 * 1024;
    let mut sc = Scenario::flash_crowd(
        1000,
        4 * MIB,
        256 * 1024,
        4.0 * MIB as f64,
        MIB as f64,
        8.0 * MIB as f64,
    );
    sc.tracker.kind = TrackerKind::None;
    sc.engine.dht = Some(true);
    let r = Sim::new(sc.clone()).expect("valid scenario").run();
    println!("{}", r.text_summary());
    println!("{} datagrams", r.totals.datagrams);
    assert_eq!(r.totals.announces, 0, "no tracker was asked");
    assert!(r.totals.datagrams > 0);
    assert_eq!(r.summary.completed, 1000, "every leecher finished");
    // Without the DHT the same torrent finds nobody: the scenario is refused.
    sc.engine.dht = None;
    assert!(Sim::new(sc).is_err());
}
