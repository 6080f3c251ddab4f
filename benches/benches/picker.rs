//! The piece picker under the scenarios of libtorrent's own picker benchmark
//! (`tools/bencher.cpp`; its figures on this machine are in `shared/PICKER-BENCH.md`), at
//! 1k, 10k, 100k and 1M pieces, plus the engine issue's swarm scenario (200 and 1,000
//! peers with varied availability and partial pieces).
//!
//! Common setup, as libtorrent's: N pieces of 4 blocks × 16 KiB, default priority,
//! rarest first only (no random first pieces), nothing verified, nothing in progress unless
//! the row says so, 20 connected peers: peer 0 is a seed, peer 1 has only piece N−1, peer 2
//! has every piece (a bitfield with all bits set), peers 3–19 have nothing yet.
//!
//! Each benchmark's name starts with its row number in libtorrent's table. A pick changes
//! no state (only the random generator advances), and the rows that change state undo it
//! in the same iteration (add then remove, mark then abort, as libtorrent's rows do), so
//! every iteration sees the same picker and no setup is timed.
//!
//! libtorrent's rows 5–9 change the availability of a peer that stays connected
//! (`inc_refcount*` / `dec_refcount*`); here that peer is peer 19, its pieces given with
//! `peer_have_all` / `peer_bitfield` / `peer_have` / `peer_dont_have` and taken back with
//! `peer_have_none`. `extra_connect_seed_disconnect` adds what the table doesn't have: a
//! seed registered and forgotten as a whole peer (`add_peer`, `peer_have_all`,
//! `remove_peer`).
//!
//! Rows 6 and 8 hand the picker a whole bitfield, which it must scan word by word (N/64
//! words): they grow with N by nature. Every other row does work independent of N (at 1M
//! pieces the picks of rows 2–5 also pay a cache miss: each walk starts at a random offset
//! of a 4 MB bucket).
//!
//! Run: `cargo bench -p shoal-benches --bench picker`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shoal_core::bitfield::Bitfield;
use shoal_core::picker::{Picker, PickerConfig};
use shoal_core::rng::Rng;
use shoal_core::{BlockRequest, PeerKey, PieceIndex, BLOCK_SIZE};

const SIZES: [u32; 4] = [1_000, 10_000, 100_000, 1_000_000];
const BLOCKS_PER_PIECE: u32 = 4;
const PIECE_LENGTH: u32 = BLOCKS_PER_PIECE * BLOCK_SIZE;

const SEED: PeerKey = PeerKey(0);
const SPARSE: PeerKey = PeerKey(1);
const DENSE: PeerKey = PeerKey(2);
/// The connected peer whose availability rows 5–9 change (it has nothing between
/// iterations).
const VISITOR: PeerKey = PeerKey(19);
/// A 21st peer that connects and leaves.
const NEWCOMER: PeerKey = PeerKey(20);

fn new_picker(n: u32) -> Picker {
    Picker::new(
        n,
        PIECE_LENGTH,
        u64::from(n) * u64::from(PIECE_LENGTH),
        PickerConfig {
            seed: 1,
            random_first_pieces: 0,
            ..PickerConfig::default()
        },
    )
    .expect("valid layout")
}

/// The common setup.
fn swarm_of_20(n: u32) -> Picker {
    let mut p = new_picker(n);
    for k in 0..20 {
        p.add_peer(PeerKey(k)).unwrap();
    }
    p.peer_have_all(SEED).unwrap();
    p.peer_have(SPARSE, PieceIndex(n - 1)).unwrap();
    p.peer_bitfield(DENSE, &Bitfield::full(n)).unwrap();
    p
}

fn block(piece: u32, b: u32) -> BlockRequest {
    BlockRequest {
        piece: PieceIndex(piece),
        begin: b * BLOCK_SIZE,
        length: BLOCK_SIZE,
    }
}

/// Benchmarks `op` as `name` at size `n`.
fn bench(c: &mut Criterion, name: &str, n: u32, mut op: impl FnMut()) {
    c.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| b.iter(&mut op));
}

/// A pick for `peer`, checked once before it is timed.
fn bench_pick(
    c: &mut Criterion,
    name: &str,
    n: u32,
    p: &mut Picker,
    peer: PeerKey,
    max: u32,
    expect: usize,
) {
    let mut out = Vec::with_capacity(256);
    assert_eq!(p.pick(peer, max, &mut out), expect, "{name}");
    bench(c, name, n, || {
        out.clear();
        black_box(p.pick(peer, max, &mut out));
    });
}

/// Row 1: "pick, sparse peer: one seed registered (every piece availability 1); the peer
/// has only piece N−1; ask for 200 blocks (gets the 4 of piece N−1)". libtorrent walks all
/// N pieces; shoal looks at the peer's one piece.
fn row1_sparse_peer(c: &mut Criterion, n: u32, p: &mut Picker) {
    let mut out = Vec::new();
    p.pick(SPARSE, 200, &mut out);
    assert!(out.len() == 4 && out.iter().all(|b| b.piece.0 == n - 1));
    bench_pick(c, "row01_pick_sparse_peer_200", n, p, SPARSE, 200, 4);
}

/// Row 2: "pick, dense peer: same picker; the peer has every piece; ask for 4 blocks".
fn row2_dense_peer_4(c: &mut Criterion, n: u32, p: &mut Picker) {
    bench_pick(c, "row02_pick_dense_peer_4", n, p, DENSE, 4, 4);
}

/// Row 3: "pick, dense peer, 200 blocks (50 whole pieces)".
fn row3_dense_peer_200(c: &mut Criterion, n: u32, p: &mut Picker) {
    bench_pick(c, "row03_pick_dense_peer_200", n, p, DENSE, 200, 200);
}

/// Row 4: "pick, 1 block, dense peer".
fn row4_dense_peer_1(c: &mut Criterion, n: u32, p: &mut Picker) {
    bench_pick(c, "row04_pick_dense_peer_1", n, p, DENSE, 1, 1);
}

/// Row 5: "after a bulk change: register a seed, pick 1 block, unregister the seed"
/// (libtorrent rebuilds its order, O(N); shoal's seeds don't touch the order).
fn row5_seed_pick_unseed(c: &mut Criterion, n: u32, p: &mut Picker) {
    let mut out = Vec::with_capacity(4);
    let before = p.availability(PieceIndex(0));
    p.peer_have_all(VISITOR).unwrap();
    assert_eq!(p.pick(VISITOR, 1, &mut out), 1);
    p.peer_have_none(VISITOR).unwrap();
    assert_eq!(p.availability(PieceIndex(0)), before);
    bench(c, "row05_seed_pick_unseed", n, || {
        p.peer_have_all(VISITOR).unwrap();
        out.clear();
        black_box(p.pick(VISITOR, 1, &mut out));
        p.peer_have_none(VISITOR).unwrap();
    });
}

/// Row 6: "add then remove a peer bitfield with k evenly spaced bits (k = 1…200)", at
/// k = 1 and k = 200. The bitfield is scanned word by word (N/64 words), then its k pieces
/// are counted in and out.
fn row6_bitfield_k(c: &mut Criterion, n: u32, p: &mut Picker) {
    for k in [1u32, 200] {
        let mut bits = Bitfield::new(n);
        for j in 0..k {
            bits.set(j * (n / k));
        }
        assert_eq!(bits.count_ones(), k);
        bench(c, &format!("row06_add_remove_bitfield_k{k}"), n, || {
            p.peer_bitfield(VISITOR, &bits).unwrap();
            p.peer_have_none(VISITOR).unwrap();
        });
    }
}

/// Row 7: "add/remove a seed (a peer with every piece)".
fn row7_seed(c: &mut Criterion, n: u32, p: &mut Picker) {
    bench(c, "row07_add_remove_seed", n, || {
        p.peer_have_all(VISITOR).unwrap();
        p.peer_have_none(VISITOR).unwrap();
    });
}

/// Not in libtorrent's table: a seed connects and leaves, the peer registered and
/// forgotten as a whole (`add_peer`, `peer_have_all`, `remove_peer`).
fn extra_connect_seed_disconnect(c: &mut Criterion, n: u32, p: &mut Picker) {
    bench(c, "extra_connect_seed_disconnect", n, || {
        p.add_peer(NEWCOMER).unwrap();
        p.peer_have_all(NEWCOMER).unwrap();
        p.remove_peer(NEWCOMER).unwrap();
    });
}

/// Row 8: "add/remove a near-seed (every piece but piece 0)", given as a bitfield: counted
/// as a seed minus piece 0, after a word scan of the bitfield to find what it lacks.
fn row8_near_seed(c: &mut Criterion, n: u32, p: &mut Picker) {
    let mut bits = Bitfield::full(n);
    bits.clear(0);
    bench(c, "row08_add_remove_near_seed", n, || {
        p.peer_bitfield(VISITOR, &bits).unwrap();
        p.peer_have_none(VISITOR).unwrap();
    });
}

/// Row 9: "break one seed: register a seed; remove availability of piece 0 alone; add it
/// back; unregister the seed" (the removal is BEP 54's `lt_donthave`).
fn row9_break_seed(c: &mut Criterion, n: u32, p: &mut Picker) {
    bench(c, "row09_break_one_seed", n, || {
        p.peer_have_all(VISITOR).unwrap();
        p.peer_dont_have(VISITOR, PieceIndex(0)).unwrap();
        p.peer_have(VISITOR, PieceIndex(0)).unwrap();
        p.peer_have_none(VISITOR).unwrap();
    });
}

/// Row 10: "mark block 0 of a piece requested, then abort, with 5,000 other pieces in
/// progress: low index / high index" (at 1k pieces, the 998 others there are). The pieces
/// in progress are 1..=5000; "low" is piece 0, "high" piece N−1.
fn row10_mark_abort(c: &mut Criterion, n: u32, p: &mut Picker) {
    let others = 5000.min(n - 2);
    for i in 1..=others {
        p.mark_requested(SEED, block(i, 0)).unwrap();
    }
    for (name, piece) in [
        ("row10_mark_abort_low", 0),
        ("row10_mark_abort_high", n - 1),
    ] {
        bench(c, name, n, || {
            p.mark_requested(DENSE, block(piece, 0)).unwrap();
            p.abort_request(DENSE, block(piece, 0)).unwrap();
        });
    }
}

/// The extra scenario (no libtorrent counterpart): `peers` peers each with a random
/// 10–90% of the pieces, 50 pieces in progress (45 owned by a peer with blocks 0–1
/// requested, 5 abandoned with block 0 received); pick 16 blocks for a random peer.
fn swarm(c: &mut Criterion, n: u32, peers: u32) {
    let mut p = new_picker(n);
    let mut rng = Rng::new(u64::from(n) ^ u64::from(peers));
    for k in 0..peers {
        p.add_peer(PeerKey(k)).unwrap();
        let pct = 10 + rng.below(81);
        let mut bits = Bitfield::new(n);
        for i in 0..n {
            if rng.below(100) < pct {
                bits.set(i);
            }
        }
        p.peer_bitfield(PeerKey(k), &bits).unwrap();
    }
    let mut started = 0;
    while started < 50 {
        let piece = rng.below(n);
        let k = PeerKey(rng.below(peers));
        if !p.peer_has(k, PieceIndex(piece)) || p.mark_requested(k, block(piece, 0)).is_err() {
            continue;
        }
        p.mark_requested(k, block(piece, 1)).unwrap();
        if started >= 45 {
            p.block_received(k, block(piece, 0)).unwrap();
            p.abort_request(k, block(piece, 1)).unwrap();
        }
        started += 1;
    }
    let mut out = Vec::new();
    assert_eq!(p.pick(PeerKey(0), 16, &mut out), 16);
    bench(c, &format!("swarm_{peers}_peers_pick_16"), n, || {
        out.clear();
        let k = PeerKey(rng.below(peers));
        black_box(p.pick(k, 16, &mut out));
    });
}

fn bench_picker(c: &mut Criterion) {
    for n in SIZES {
        let mut p = swarm_of_20(n);
        row1_sparse_peer(c, n, &mut p);
        row2_dense_peer_4(c, n, &mut p);
        row3_dense_peer_200(c, n, &mut p);
        row4_dense_peer_1(c, n, &mut p);
        row5_seed_pick_unseed(c, n, &mut p);
        row6_bitfield_k(c, n, &mut p);
        row7_seed(c, n, &mut p);
        extra_connect_seed_disconnect(c, n, &mut p);
        row8_near_seed(c, n, &mut p);
        row9_break_seed(c, n, &mut p);
        row10_mark_abort(c, n, &mut p);
    }
    for n in [10_000, 100_000] {
        for peers in [200, 1000] {
            swarm(c, n, peers);
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(10)
        .without_plots();
    targets = bench_picker
}
criterion_main!(benches);
