//! Whole swarms on virtual time: completion, byte accounting, determinism, and each
//! scenario feature doing what it says.
//!
//! These run real engines by the thousand: give shoal-core and shoal-sim `opt-level = 3`
//! in the dev profile (see the README of sim), or run with `--release`.

use shoal_sim::report::Report;
use shoal_sim::scenario::{Arrival, Group, Scenario};
use shoal_sim::Sim;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn run(sc: Scenario) -> Report {
    Sim::new(sc).expect("valid scenario").run()
}

/// Σ up == Σ down + what is still travelling, for all bytes and for block data; every
/// leecher that finished received at least the file.
fn assert_accounted(r: &Report) {
    let s = &r.summary;
    assert_eq!(r.totals.internal_errors, 0, "engine and picker disagreed");
    assert_eq!(
        r.totals.late_events, 0,
        "an event for another node within a window"
    );
    assert_eq!(s.bytes_up, s.bytes_down + r.totals.bytes_in_flight);
    assert_eq!(s.payload_up, s.payload_down + r.totals.payload_in_flight);
    for n in r
        .nodes
        .iter()
        .filter(|n| !n.seed && n.completed_s.is_some())
    {
        assert!(
            n.payload_down >= r.file_bytes,
            "node {}: {}",
            n.id,
            n.payload_down
        );
        assert!(n.engine_downloaded >= r.file_bytes, "node {}", n.id);
        assert_eq!(n.pieces, r.piece_count, "node {}", n.id);
    }
}

#[test]
fn a_thousand_peer_flash_crowd_completes_with_every_byte_accounted_for() {
    let sc = Scenario::flash_crowd(
        1000,
        4 * MIB,
        256 * KIB as u32,
        4.0 * MIB as f64,
        MIB as f64,
        8.0 * MIB as f64,
    );
    let r = run(sc);
    println!("{}", r.text_summary());
    assert_eq!(r.summary.leechers, 1000);
    assert_eq!(r.summary.completed, 1000, "every leecher finishes");
    assert_accounted(&r);
    // The seed sent at least one copy of every piece.
    let seed = r.nodes.iter().find(|n| n.seed).unwrap();
    assert!(seed.payload_up >= r.file_bytes);
    assert_eq!(r.totals.hash_failures, 0);
    // The nodes' events ran a window at a time (50 ms, two 25 ms access latencies), many
    // to a window: one per event would be the old global order.
    assert!(
        r.totals.windows * 100 < r.totals.events,
        "{} windows for {} events",
        r.totals.windows,
        r.totals.events
    );
}

/// A small swarm that uses every feature at once: churn, NAT, a corrupt node, free
/// riders, connection failures and resets, two bandwidth classes.
fn busy_scenario(seed: u64) -> Scenario {
    let mut sc = Scenario::flash_crowd(
        40,
        2 * MIB,
        64 * KIB as u32,
        2.0 * MIB as f64,
        256.0 * KIB as f64,
        2.0 * MIB as f64,
    );
    sc.seed = seed;
    sc.network.connect_failure = 0.05;
    sc.network.mean_connection_lifetime_s = Some(60.0);
    sc.network.jitter_ms = 20.0;
    sc.groups[1].nat = 0.3;
    sc.groups[1].seed_time_s = Some(5.0);
    let mut fast = Group::leechers("fast", 10, 2.0 * MIB as f64, 8.0 * MIB as f64);
    fast.arrival = Arrival::Poisson {
        start_s: 0.0,
        rate_per_s: 1.0,
    };
    let mut bad = Group::leechers("corrupt", 1, MIB as f64, 8.0 * MIB as f64);
    bad.seed = true;
    bad.corrupt = true;
    let mut riders = Group::leechers("free riders", 3, MIB as f64, 8.0 * MIB as f64);
    riders.free_rider = true;
    sc.groups.extend([fast, bad, riders]);
    sc
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let a = run(busy_scenario(7));
    let b = run(busy_scenario(7));
    let c = run(busy_scenario(8));
    assert!(a.totals.events > 10_000, "{}", a.totals.events);
    assert_eq!(a.totals.trace_hash, b.totals.trace_hash);
    assert_eq!(a.totals.events, b.totals.events);
    // Not only the hash: every figure of every node.
    assert_eq!(a.nodes_csv(), b.nodes_csv());
    assert_eq!(a.timeline_csv(), b.timeline_csv());
    assert_ne!(a.totals.trace_hash, c.totals.trace_hash);
}

#[test]
fn every_feature_of_the_busy_scenario_shows_and_bytes_still_add_up() {
    let r = run(busy_scenario(3));
    println!("{}", r.text_summary());
    let t = &r.totals;
    assert_accounted(&r);
    assert_eq!(r.summary.completed, r.summary.leechers, "everyone finishes");
    assert!(t.nat_drops > 0, "SYNs to NATed nodes are dropped");
    assert!(t.refused > 0, "some connects fail");
    assert!(t.resets > 0, "connections reset");
    assert!(t.hash_failures > 0, "the corrupt node's data fails");
    assert!(t.bans > 0, "and gets it banned");
    assert!(
        t.withheld_payload > 0,
        "free riders are asked and give nothing"
    );
    for n in &r.nodes {
        if n.free_rider {
            assert_eq!(n.payload_up, 0, "a free rider sends no block");
        }
        if !n.seed && n.group == "leechers" {
            // Leechers seed for 5 s after completing, then leave; only those whose 5 s
            // outlast the run (it ends when the last leecher completes) are still there.
            let c = n.completed_s.unwrap();
            match n.departed_s {
                Some(d) => assert!((d - c - 5.0).abs() < 1e-6, "{n:?}"),
                None => assert!(c + 5.0 > t.sim_time_s, "never left: {n:?}"),
            }
        }
    }
    let arrivals: Vec<f64> = r
        .nodes
        .iter()
        .filter(|n| n.group == "fast")
        .filter_map(|n| n.arrived_s)
        .collect();
    assert!(
        arrivals.windows(2).all(|w| w[0] <= w[1]),
        "Poisson arrivals in order"
    );
}

#[test]
fn seeds_that_leave_leave_and_the_swarm_finishes_without_them() {
    let mut sc = Scenario::flash_crowd(
        30,
        MIB,
        64 * KIB as u32,
        4.0 * MIB as f64,
        512.0 * KIB as f64,
        4.0 * MIB as f64,
    );
    // The only seed goes after 3 s: by then it has sent more than a copy (4 MiB/s), so
    // the leechers can finish among themselves.
    sc.groups[0].leave_after_s = Some(3.0);
    let r = run(sc);
    let seed = r.nodes.iter().find(|n| n.seed).unwrap();
    assert_eq!(seed.departed_s, Some(3.0));
    assert_eq!(r.summary.completed, 30);
    assert!(r.summary.last_download_s.unwrap() > 3.0);
    assert_accounted(&r);
    // Once it left, the seed is no longer among the online nodes.
    let later = r.timeline.iter().find(|s| s.t_s > 3.5).unwrap();
    assert_eq!(later.online, 30);
}

#[test]
fn real_data_and_real_sha1_catch_a_corrupt_peer() {
    let mut sc = Scenario::flash_crowd(
        12,
        MIB,
        32 * KIB as u32,
        2.0 * MIB as f64,
        512.0 * KIB as f64,
        4.0 * MIB as f64,
    );
    sc.torrent.real_data = true;
    let mut bad = Group::leechers("corrupt", 1, 2.0 * MIB as f64, 8.0 * MIB as f64);
    bad.seed = true;
    bad.corrupt = true;
    sc.groups.push(bad);
    let r = run(sc);
    assert_eq!(r.summary.completed, 12);
    assert!(r.totals.hash_failures > 0);
    assert_accounted(&r);
}

#[test]
fn toml_scenarios_in_the_repository_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 5, "{seen} scenarios");
}

#[test]
fn an_engine_upload_limit_holds_the_seed_below_its_link() {
    let mut sc = Scenario::flash_crowd(
        20,
        2 * MIB,
        64 * KIB as u32,
        4.0 * MIB as f64,
        1.0 * MIB as f64,
        4.0 * MIB as f64,
    );
    // The seed's link carries 4 MiB/s; its engine is told 256 KiB/s.
    let limit = 256.0 * KIB as f64;
    sc.groups[0].upload_limit = Some(shoal_sim::scenario::Rate(limit));
    sc.run.stop_when_done = false;
    sc.run.max_time_s = 10.0;
    let r = run(sc);
    let seed = r.nodes.iter().find(|n| n.seed).unwrap();
    // At most 10 s of the limit, its burst (a fifth of a second) and a block of debt.
    let most = (limit * 10.2) as u64 + 16 * KIB;
    assert!(
        seed.engine_uploaded <= most,
        "the seed sent {} bytes, more than {most}",
        seed.engine_uploaded
    );
    // And it did use what it was allowed: the leechers wanted more than it could give.
    assert!(
        seed.engine_uploaded as f64 >= limit * 8.0,
        "the seed sent only {} bytes",
        seed.engine_uploaded
    );
    assert_accounted(&r);
}

/// A web server as the only source (the torrent's web seed, no peer seed): `n` leechers
/// in a flash crowd.
fn web_served(n: u32, server_up: f64) -> Scenario {
    let mut sc = Scenario::flash_crowd(n, 4 * MIB, 256 * KIB as u32, 1.0, 0.0, 0.0);
    sc.groups = vec![Group::leechers(
        "leechers",
        n,
        512.0 * KIB as f64,
        4.0 * MIB as f64,
    )];
    sc.web_server = Some(shoal_sim::scenario::WebServerSpec {
        upload: shoal_sim::scenario::Rate(server_up),
        latency_ms: 20.0,
    });
    sc
}

#[test]
fn one_downloader_gets_everything_from_the_web_server() {
    let r = run(web_served(1, 2.0 * MIB as f64));
    assert_eq!(r.summary.completed, 1);
    // Nobody else to get it from: the server sent the file, once.
    assert_eq!(r.totals.web_payload_sent, r.file_bytes);
    assert_eq!(r.totals.hash_failures, 0);
}

#[test]
fn with_no_latency_anywhere_a_window_is_one_instant_and_the_crowd_completes() {
    let mut sc = web_served(20, 2.0 * MIB as f64);
    for g in &mut sc.groups {
        g.latency_ms = 0.0;
    }
    if let Some(w) = sc.web_server.as_mut() {
        w.latency_ms = 0.0;
    }
    let r = run(sc);
    assert_eq!(r.summary.completed, 20, "every leecher finishes");
    assert_eq!(r.totals.late_events, 0);
    assert_eq!(r.totals.internal_errors, 0);
    let s = &r.summary;
    assert_eq!(s.bytes_up, s.bytes_down + r.totals.bytes_in_flight);
    for node in &r.nodes {
        assert!(node.engine_downloaded >= r.file_bytes, "node {}", node.id);
    }
    assert!(r.totals.web_payload_sent > 0);
}

#[test]
fn a_crowd_spares_its_web_server() {
    let n = 50;
    let r = run(web_served(n, 2.0 * MIB as f64));
    println!("{}", r.text_summary());
    assert_eq!(r.summary.completed, n, "every leecher finishes");
    for node in &r.nodes {
        assert!(node.engine_downloaded >= r.file_bytes, "node {}", node.id);
    }
    let plain_http = u64::from(n) * r.file_bytes;
    // The server sent every piece at least once, and far less than to each downloader.
    assert!(r.totals.web_payload_sent >= r.file_bytes);
    assert!(
        r.totals.web_payload_sent * 4 < plain_http,
        "the server sent {} of {plain_http}",
        r.totals.web_payload_sent
    );
}

#[test]
fn leechers_that_start_from_a_magnet_link_fetch_the_metadata_then_complete() {
    let mut sc = Scenario::flash_crowd(
        100,
        4 * MIB,
        16 * KIB as u32, // 256 pieces: metadata of one ut_metadata piece and a bit
        4.0 * MIB as f64,
        MIB as f64,
        8.0 * MIB as f64,
    );
    // Half of them from the magnet link.
    let mut magnets = sc.groups[1].clone();
    magnets.name = "magnet".into();
    magnets.count = 50;
    magnets.magnet = true;
    sc.groups[1].count = 50;
    sc.groups.push(magnets);
    let r = run(sc);
    println!("{}", r.text_summary());
    assert_eq!(r.summary.completed, 100, "every leecher finishes");
    assert_accounted(&r);
    for n in r.nodes.iter().filter(|n| !n.seed) {
        let magnet = n.group == "magnet";
        assert_eq!(n.metadata_s.is_some(), magnet, "node {}", n.id);
        if magnet {
            assert!(n.metadata_s <= n.first_piece_s, "node {}", n.id);
        }
    }
}
