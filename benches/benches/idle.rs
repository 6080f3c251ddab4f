//! What an engine full of idle connections costs: one engine with 100 torrents and N
//! connected peers that send nothing (handshakes done, nobody interested), and the cost of
//! advancing virtual time by one minute (every wake-up `poll_timeout` asks for, handled
//! with `Input::Timer`, outputs drained). The minute measured runs from 100 s to 160 s
//! after the connections were made: past their first keep-alive (90 s), before their idle
//! timeout (180 s), so no connection has a deadline in it. A design that sweeps every
//! connection on a schedule costs in proportion to N there; one that wakes each
//! connection only at its own deadlines costs per torrent, the same for any N.
//!
//! `cargo bench -p shoal-benches --bench idle` prints, for N = 500, 1,000 and 2,000, the
//! time per simulated minute and the wake-ups it took (from a counting run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use shoal_core::create::TorrentBuilder;
use shoal_core::engine::{Engine, EngineConfig, Input, TorrentOptions};
use shoal_core::metainfo::Metainfo;
use shoal_core::wire::Handshake;
use shoal_core::{InfoHash, PeerId};

const TORRENTS: usize = 100;

fn metainfo(i: usize) -> Arc<Metainfo> {
    let mut b = TorrentBuilder::single_file(format!("t{i}"), 4 << 20);
    b.piece_length(256 << 10);
    let mut h = b.start().expect("a valid torrent");
    h.update(&vec![i as u8; 4 << 20]);
    Arc::new(Metainfo::parse(&h.finish().expect("hashed")).expect("parses"))
}

/// An engine seeding 100 torrents with `peers` inbound connections spread over them, each
/// past its handshake, and the time it was built at.
fn idle_engine(metas: &[Arc<Metainfo>], peers: usize) -> (Engine, Instant) {
    let start = Instant::now();
    let mut engine = Engine::new(EngineConfig {
        max_connections: peers + 10,
        max_peers_per_torrent: peers,
        ..EngineConfig::default()
    });
    let ids: Vec<_> = metas
        .iter()
        .map(|m| {
            let full = shoal_core::bitfield::Bitfield::full(m.info.piece_count());
            engine
                .add_torrent(
                    m.clone(),
                    TorrentOptions {
                        verified: Some(full),
                        sequential: false,
                    },
                    start,
                )
                .expect("added")
        })
        .collect();
    assert_eq!(ids.len(), TORRENTS);
    for n in 0..peers {
        let addr = ([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 6881).into();
        let conn = engine.accept(addr, start).expect("room for it");
        let meta = &metas[n % TORRENTS];
        let mut hs = BytesMut::new();
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        Handshake::new(InfoHash(meta.info_hash.0), PeerId(id)).encode(&mut hs);
        engine.handle(Input::Received { conn, data: hs }, start);
        while engine.poll_output().is_some() {}
    }
    (engine, start)
}

/// Advances `engine` from `from` by one minute; returns how many wake-ups that took.
fn one_minute(engine: &mut Engine, from: Instant) -> u32 {
    advance(engine, from, Duration::from_secs(60))
}

/// Advances `engine` from `from` by `by`; returns how many wake-ups that took.
fn advance(engine: &mut Engine, from: Instant, by: Duration) -> u32 {
    let end = from + by;
    let mut wakeups = 0;
    while let Some(at) = engine.poll_timeout() {
        if at > end {
            break;
        }
        engine.handle(Input::Timer, at);
        while engine.poll_output().is_some() {}
        wakeups += 1;
    }
    wakeups
}

fn bench(c: &mut Criterion) {
    let metas: Vec<_> = (0..TORRENTS).map(metainfo).collect();
    let mut group = c.benchmark_group("idle_minute");
    group.sample_size(10);
    for peers in [500, 1000, 2000] {
        // Start 100 s in: past the first keep-alives (see the module docs).
        let warm = |metas: &[Arc<Metainfo>]| {
            let (mut e, start) = idle_engine(metas, peers);
            advance(&mut e, start, Duration::from_secs(100));
            (e, start + Duration::from_secs(100))
        };
        let (mut e, at) = warm(&metas);
        let wakeups = one_minute(&mut e, at);
        println!("idle_minute/{peers}: {wakeups} wake-ups in one simulated minute");
        group.bench_function(format!("{peers}_peers"), |b| {
            b.iter_batched(
                || warm(&metas),
                // The engine is returned, so its drop is not timed.
                |(mut e, at)| {
                    let wakeups = one_minute(&mut e, at);
                    (e, wakeups)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
