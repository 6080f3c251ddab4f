//! The engine's rate limits, on virtual time: a limited engine moves no more than its
//! limit (plus one burst) over a measured span, still moves close to it, completes with
//! exact data, and goes at full speed again once the limit is lifted.

mod support;

use std::sync::Arc;
use std::time::Duration;

use shoal_core::create::TorrentBuilder;
use shoal_core::engine::RateLimits;
use shoal_core::metainfo::Metainfo;
use support::{make_torrent, Swarm, WebMode, WebServer};

const MB: u64 = 1 << 20;
const BLOCK: u64 = 16 * 1024;

/// The most a bucket of `rate` lets through in `span`: the rate, its burst (a fifth of a
/// second's worth) and one block of debt.
fn most(rate: u64, span: Duration) -> u64 {
    at_rate(rate, span) + (rate / 5).max(2 * BLOCK) + BLOCK
}

/// `rate` bytes a second over `span`.
fn at_rate(rate: u64, span: Duration) -> u64 {
    (rate as f64 * span.as_secs_f64()) as u64
}

fn downloaded(s: &Swarm, i: usize) -> u64 {
    s.nodes[i]
        .engine
        .stats(s.nodes[i].torrent)
        .unwrap()
        .downloaded
}

fn uploaded(s: &Swarm, i: usize) -> u64 {
    s.nodes[i]
        .engine
        .stats(s.nodes[i].torrent)
        .unwrap()
        .uploaded
}

#[test]
fn a_download_limit_holds_the_leecher_to_its_rate_and_it_still_completes() {
    let (meta, data) = make_torrent(&[("a.bin", 6 * MB)], 256 * 1024);
    let mut s = Swarm::new();
    let seed = s.add_seed(&meta, &data, 50 * MB, 1);
    let seed2 = s.add_seed(&meta, &data, 50 * MB, 2);
    let rate = MB;
    let leech = s.add_node(&meta, vec![0; data.len()], None, 50 * MB, 3, |c| {
        c.rate_limits.download = Some(rate)
    });
    s.introduce(leech, seed);
    s.introduce(leech, seed2);
    let start = s.now;
    assert!(!s.run_until(Duration::from_secs(4), |_| false));
    let span = s.now - start;
    let got = downloaded(&s, leech);
    assert!(got <= most(rate, span), "{got} bytes in {span:?}");
    // Two seeds at 50 MB/s would give it all in well under a second: what it got is
    // the limit's doing, and the limit is used (the first round trips aside).
    assert!(
        got >= at_rate(rate, span - Duration::from_secs(1)),
        "only {got} bytes in {span:?}"
    );
    assert!(s.run_until(Duration::from_secs(60), |s| s.is_complete(leech)));
    assert_eq!(s.nodes[leech].data, data);
    let took = s.nodes[leech].completed_at.unwrap() - start;
    assert!(
        took >= Duration::from_secs(5),
        "6 MiB at 1 MiB/s took only {took:?}"
    );
}

#[test]
fn an_upload_limit_holds_a_seed_to_its_rate_over_all_its_peers() {
    let (meta, data) = make_torrent(&[("a.bin", 8 * MB)], 256 * 1024);
    let mut s = Swarm::new();
    let rate = 512 * 1024;
    let seed = s.add_node(
        &meta,
        data.clone(),
        Some(support::full_bitfield(&meta)),
        50 * MB,
        1,
        |c| c.rate_limits.upload = Some(rate),
    );
    let leechers: Vec<usize> = (0..3)
        .map(|i| s.add_node(&meta, vec![0; data.len()], None, 50 * MB, 10 + i, |_| {}))
        .collect();
    for &l in &leechers {
        s.introduce(l, seed);
    }
    let start = s.now;
    assert!(!s.run_until(Duration::from_secs(6), |_| false));
    let span = s.now - start;
    let sent = uploaded(&s, seed);
    assert!(sent <= most(rate, span), "{sent} bytes in {span:?}");
    assert!(
        sent >= at_rate(rate, span - Duration::from_secs(1)),
        "only {sent} bytes in {span:?}"
    );
    // The leechers shared it among themselves meanwhile; lifting the limit lets the
    // seed finish them quickly.
    let now = s.now;
    s.nodes[seed]
        .engine
        .set_rate_limits(RateLimits::default(), now);
    assert_eq!(s.nodes[seed].engine.rate_limits(), RateLimits::default());
    let lifted = s.now;
    assert!(s.run_until(Duration::from_secs(60), |s| leechers
        .iter()
        .all(|&l| s.is_complete(l))));
    for &l in &leechers {
        assert_eq!(s.nodes[l].data, data);
    }
    assert!(
        s.now - lifted < Duration::from_secs(5),
        "after the limit was lifted the rest took {:?}",
        s.now - lifted
    );
}

#[test]
fn a_limit_set_while_running_takes_effect_and_a_web_seed_honours_it() {
    let len = 4 * MB;
    let data: Vec<u8> = (0..len).map(|i| (i * 13 + i / 509) as u8).collect();
    let base = "http://web.example/files/";
    let mut b = TorrentBuilder::single_file("w.bin", len);
    b.piece_length(64 * 1024).web_seed(base);
    let mut h = b.start().unwrap();
    h.update(&data);
    let meta = Arc::new(Metainfo::parse(&h.finish().unwrap()).unwrap());
    let mut s = Swarm::new();
    s.web = Some(WebServer {
        base: base.to_string(),
        data: data.clone(),
        meta: meta.clone(),
        mode: WebMode::Honest,
        served: 0,
        requests: 0,
    });
    let leech = s.add_node(&meta, vec![0; len as usize], None, 50 * MB, 1, |c| {
        c.webseed.max_job_bytes = 256 * 1024
    });
    let rate = 256 * 1024;
    let now = s.now;
    s.nodes[leech].engine.set_rate_limits(
        RateLimits {
            upload: None,
            download: Some(rate),
        },
        now,
    );
    let start = s.now;
    assert!(!s.run_until(Duration::from_secs(8), |_| false));
    let span = s.now - start;
    let served = s.web.as_ref().unwrap().served;
    // A web seed is charged a job at a time: one job of debt on top.
    assert!(
        served <= most(rate, span) + 256 * 1024,
        "{served} bytes in {span:?}"
    );
    assert!(
        served >= at_rate(rate, span - Duration::from_secs(2)),
        "only {served} bytes in {span:?}"
    );
    assert!(s.run_until(Duration::from_secs(60), |s| s.is_complete(leech)));
    assert_eq!(s.nodes[leech].data, data);
}
