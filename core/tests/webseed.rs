//! Web seeds (BEP 19) in the engine, on virtual time: the swarm harness's web server
//! answers the engine's range requests, honestly or not.

mod support;

use std::sync::Arc;
use std::time::Duration;

use shoal_core::create::TorrentBuilder;
use shoal_core::engine::Event;
use shoal_core::metainfo::Metainfo;
use shoal_core::webseed::WebSeedError;
use support::{make_torrent_with_web_seeds, Swarm, WebMode, WebServer};

fn single_file(len: u64, piece_length: u32, url: &str) -> (Arc<Metainfo>, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut b = TorrentBuilder::single_file("one file.bin", len);
    b.piece_length(piece_length).web_seed(url);
    let mut h = b.start().unwrap();
    h.update(&data);
    (
        Arc::new(Metainfo::parse(&h.finish().unwrap()).unwrap()),
        data,
    )
}

fn web(meta: &Arc<Metainfo>, data: &[u8], base: &str, mode: WebMode) -> WebServer {
    WebServer {
        base: base.to_string(),
        data: data.to_vec(),
        meta: meta.clone(),
        mode,
        served: 0,
        requests: 0,
    }
}

/// A leecher whose only source is the web seed.
fn leecher_alone(meta: &Arc<Metainfo>, data: &[u8], base: &str, mode: WebMode) -> Swarm {
    let mut s = Swarm::new();
    s.web = Some(web(meta, data, base, mode));
    let total = meta.info.total_length as usize;
    // Jobs smaller than a file, so that a 200 (the whole file) is never what was asked.
    s.add_node(meta, vec![0; total], None, 1 << 20, 1, |c| {
        c.webseed.max_job_bytes = 65536
    });
    s
}

fn web_errors(s: &Swarm) -> Vec<WebSeedError> {
    s.nodes[0]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::WebSeedError { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn single_file_from_the_web_seed_alone() {
    let (meta, data) = single_file(1_000_000, 32768, "http://web/files/");
    let mut s = leecher_alone(&meta, &data, "http://web/files/", WebMode::Honest);
    assert!(s.run_until(Duration::from_secs(600), |s| s.is_complete(0)));
    assert_eq!(s.nodes[0].data, data);
    let web = s.web.as_ref().unwrap();
    assert_eq!(web.served, data.len() as u64, "every byte once");
    // Runs, not a request per piece: 1 MB in 64 KiB jobs is 16 requests, but jobs start
    // at random pieces and end at pieces others hold, so allow some more (there are 31
    // pieces).
    assert!(web.requests < 26, "{} requests", web.requests);
    assert!(web_errors(&s).is_empty());
}

#[test]
fn multi_file_with_pieces_across_files() {
    let base = "http://web/seed";
    let (meta, data) = make_torrent_with_web_seeds(
        &[("a", 40_000), ("b", 3), ("empty", 0), ("c d", 100_001)],
        16384,
        &[base],
    );
    let mut s = leecher_alone(&meta, &data, base, WebMode::Honest);
    assert!(s.run_until(Duration::from_secs(600), |s| s.is_complete(0)));
    assert_eq!(s.nodes[0].data, data);
    assert!(web_errors(&s).is_empty());
}

#[test]
fn web_seed_and_a_peer_share_the_work_without_duplicates() {
    let base = "http://web/";
    let (meta, data) =
        make_torrent_with_web_seeds(&[("a", 3_000_000), ("b", 1_000_000)], 65536, &[base]);
    let mut s = Swarm::new();
    s.web = Some(web(&meta, &data, base, WebMode::Honest));
    let seed = s.add_seed(&meta, &data, 2 << 20, 2);
    let total = meta.info.total_length;
    let leecher = s.add_node(&meta, vec![0; total as usize], None, 1 << 20, 3, |_| {});
    s.introduce(leecher, seed);
    assert!(s.run_until(Duration::from_secs(600), |s| s.is_complete(1)));
    assert_eq!(s.nodes[1].data, data);
    let from_web = s.web.as_ref().unwrap().served;
    let from_peer = s.nodes[seed].sent_payload;
    assert!(
        from_web > 0 && from_peer > 0,
        "web {from_web}, peer {from_peer}"
    );
    // Outside endgame nothing is fetched twice; endgame duplicates are a few blocks.
    assert!(
        from_web + from_peer <= total + 64 * 16384,
        "web {from_web} + peer {from_peer} for {total}"
    );
}

fn hostile(mode: WebMode, expect: fn(&WebSeedError) -> bool) -> Swarm {
    let base = "http://web/";
    let (meta, data) = make_torrent_with_web_seeds(&[("a", 300_000), ("b", 5)], 32768, &[base]);
    let mut s = leecher_alone(&meta, &data, base, mode);
    // Long enough for every backoff: 30 s + 1 + 2 + 4 min, then dropped.
    s.run_until(Duration::from_secs(3 * 3600), |_| false);
    assert!(!s.is_complete(0));
    let events = &s.nodes[0].events;
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::PieceVerified { .. })));
    let errors = web_errors(&s);
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert!(errors.iter().all(expect), "{errors:?}");
    let dropped: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::WebSeedDropped { url, reason, .. } => Some((url.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].0, base);
    // Dropped means no more requests.
    let requests = s.web.as_ref().unwrap().requests;
    s.run_until(Duration::from_secs(6 * 3600), |_| false);
    assert_eq!(s.web.as_ref().unwrap().requests, requests);
    s
}

#[test]
fn wrong_bytes_fail_the_hash_and_drop_the_web_seed() {
    hostile(WebMode::WrongBytes, |e| {
        matches!(e, WebSeedError::HashFailed(_))
    });
}

/// Hashing takes time (a runtime hashes on a worker thread): several jobs of wrong bytes
/// are in before the first of their pieces fails its hash. They are one failure, not one
/// each: the web seed waits out its backoff rather than being dropped in a burst.
#[test]
fn bad_jobs_already_fetched_when_a_hash_fails_are_one_failure() {
    let base = "http://web/";
    let (meta, data) = make_torrent_with_web_seeds(&[("a", 300_000), ("b", 5)], 32768, &[base]);
    let mut s = leecher_alone(&meta, &data, base, WebMode::WrongBytes);
    s.hash_delay = Duration::from_millis(500);
    // Less than the first backoff (30 s).
    s.run_until(Duration::from_secs(20), |_| false);
    let requests = s.web.as_ref().unwrap().requests;
    assert!(
        requests >= 3,
        "{requests} requests before the first hash result"
    );
    let errors = web_errors(&s);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(!s.nodes[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::WebSeedDropped { .. })));
    // Each later job is a failure of its own: the web seed is dropped after its backoffs.
    s.run_until(Duration::from_secs(3 * 3600), |_| false);
    assert_eq!(web_errors(&s).len(), 5);
    assert!(!s.is_complete(0));
}

#[test]
fn a_200_for_a_range_is_refused() {
    hostile(WebMode::Whole200, |e| *e == WebSeedError::NotPartial);
}

#[test]
fn a_short_body_is_refused() {
    hostile(WebMode::Short, |e| *e == WebSeedError::CutShort);
}

#[test]
fn not_found_is_refused() {
    hostile(WebMode::NotFound, |e| *e == WebSeedError::Status(404));
}

#[test]
fn a_bad_web_seed_does_not_stop_the_peers() {
    let base = "http://web/";
    let (meta, data) = make_torrent_with_web_seeds(&[("a", 1_000_000)], 32768, &[base]);
    let mut s = Swarm::new();
    s.web = Some(web(&meta, &data, base, WebMode::WrongBytes));
    let seed = s.add_seed(&meta, &data, 1 << 20, 2);
    let leecher = s.add_node(&meta, vec![0; data.len()], None, 1 << 20, 3, |_| {});
    s.introduce(leecher, seed);
    assert!(s.run_until(Duration::from_secs(600), |s| s.is_complete(1)));
    assert_eq!(s.nodes[1].data, data);
    assert!(s.nodes[1].events.iter().any(|e| matches!(
        e,
        Event::WebSeedError {
            reason: WebSeedError::HashFailed(_),
            ..
        }
    )));
    // The seed is not blamed for the web seed's bytes.
    assert!(!s.nodes[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerBanned { .. })));
}

#[test]
fn an_unusable_url_is_dropped_at_once() {
    let (meta, data) = single_file(1000, 16384, "ftp://web/x");
    let s = leecher_alone(&meta, &data, "ftp://web/x", WebMode::Honest);
    assert!(s.nodes[0].events.iter().any(|e| matches!(
        e,
        Event::WebSeedDropped {
            reason: WebSeedError::InvalidUrl(_),
            ..
        }
    )));
}
