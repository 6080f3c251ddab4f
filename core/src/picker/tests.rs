use std::collections::BTreeSet;

use quickcheck::{QuickCheck, TestResult};

use super::*;
use crate::BLOCK_SIZE;

const B: u32 = BLOCK_SIZE;

fn config(seed: u64) -> PickerConfig {
    PickerConfig {
        seed,
        random_first_pieces: 0,
        ..PickerConfig::default()
    }
}

/// `n` pieces of `bpp` full blocks each.
fn picker(n: u32, bpp: u32, seed: u64) -> Picker {
    let pl = bpp * B;
    Picker::new(n, pl, u64::from(n) * u64::from(pl), config(seed)).unwrap()
}

fn pk(k: u32) -> PeerKey {
    PeerKey(k)
}

fn pi(i: u32) -> PieceIndex {
    PieceIndex(i)
}

fn bits(n: u32, ones: impl IntoIterator<Item = u32>) -> Bitfield {
    let mut b = Bitfield::new(n);
    for i in ones {
        b.set(i);
    }
    b
}

fn pick(p: &mut Picker, k: u32, max: u32) -> Vec<BlockRequest> {
    let mut out = Vec::new();
    p.pick(pk(k), max, &mut out);
    p.check_invariants();
    out
}

/// The distinct pieces of `blocks`, in order of first appearance.
fn pieces(blocks: &[BlockRequest]) -> Vec<u32> {
    let mut v: Vec<u32> = Vec::new();
    for b in blocks {
        if !v.contains(&b.piece.0) {
            v.push(b.piece.0);
        }
    }
    v
}

fn request(p: &mut Picker, k: u32, blocks: &[BlockRequest]) {
    for &b in blocks {
        p.mark_requested(pk(k), b).unwrap();
    }
    p.check_invariants();
}

fn blk(piece: u32, b: u32) -> BlockRequest {
    BlockRequest {
        piece: pi(piece),
        begin: b * B,
        length: B,
    }
}

/// Every shape a peer can take, by shrinking the form thresholds.
fn with_shapes(n: u32, bpp: u32, seed: u64, f: impl Fn(&mut Picker)) {
    for (sparse, allbut, slack) in [(32, 16, 64), (2, 1, 1), (4, 2, 0)] {
        let mut p = picker(n, bpp, seed);
        p.set_caps(sparse, allbut, slack);
        f(&mut p);
    }
}

#[test]
fn layout_and_block_validation() {
    // 3 pieces of 4 blocks; the last piece is 1 block and 100 bytes.
    let total = 2 * 4 * u64::from(B) + u64::from(B) + 100;
    let mut p = Picker::new(3, 4 * B, total, config(1)).unwrap();
    assert_eq!(p.blocks_in_piece(pi(0)), 4);
    assert_eq!(p.blocks_in_piece(pi(2)), 2);
    assert_eq!(p.blocks_in_piece(pi(3)), 0);
    assert_eq!(
        p.block(pi(2), 1),
        Some(BlockRequest {
            piece: pi(2),
            begin: B,
            length: 100
        })
    );
    assert_eq!(p.block(pi(2), 2), None);
    p.add_peer(pk(0)).unwrap();
    p.peer_have_all(pk(0)).unwrap();
    let out = pick(&mut p, 0, 100);
    assert_eq!(out.len(), 10);
    assert!(out.contains(&BlockRequest {
        piece: pi(2),
        begin: B,
        length: 100
    }));
    for bad in [
        BlockRequest {
            piece: pi(2),
            begin: B,
            length: B,
        },
        BlockRequest {
            piece: pi(0),
            begin: 1,
            length: B,
        },
        BlockRequest {
            piece: pi(0),
            begin: 4 * B,
            length: B,
        },
        BlockRequest {
            piece: pi(3),
            begin: 0,
            length: B,
        },
        BlockRequest {
            piece: pi(u32::MAX),
            begin: u32::MAX,
            length: 0,
        },
    ] {
        assert_eq!(
            p.mark_requested(pk(0), bad),
            Err(PickerError::InvalidBlock(bad))
        );
        assert_eq!(
            p.abort_request(pk(0), bad),
            Err(PickerError::InvalidBlock(bad))
        );
        assert_eq!(
            p.block_received(pk(0), bad),
            Err(PickerError::InvalidBlock(bad))
        );
    }
    for (n, pl, total) in [
        (0, B, 0),
        (1, 0, 1),
        (2, B, u64::from(B)),
        (2, B, 2 * u64::from(B) + 1),
    ] {
        assert_eq!(
            Picker::new(n, pl, total, config(0)).err(),
            Some(PickerError::InvalidLayout)
        );
    }
    // Pieces smaller than a block: one short block each.
    let p = Picker::new(4, 1000, 3500, config(0)).unwrap();
    assert_eq!(p.block(pi(0), 0).unwrap().length, 1000);
    assert_eq!(p.block(pi(3), 0).unwrap().length, 500);
    p.check_invariants();
}

#[test]
fn bad_indexes_are_errors_not_panics() {
    let mut p = picker(10, 2, 0);
    p.add_peer(pk(1)).unwrap();
    let bad = pi(10);
    assert_eq!(
        p.peer_have(pk(1), bad),
        Err(PickerError::PieceOutOfRange(bad))
    );
    assert_eq!(
        p.peer_dont_have(pk(1), bad),
        Err(PickerError::PieceOutOfRange(bad))
    );
    assert_eq!(
        p.piece_verified(bad),
        Err(PickerError::PieceOutOfRange(bad))
    );
    assert_eq!(
        p.hash_failed(bad).err(),
        Some(PickerError::PieceOutOfRange(bad))
    );
    assert_eq!(
        p.set_piece_priority(bad, Priority::High),
        Err(PickerError::PieceOutOfRange(bad))
    );
    assert!(p.set_priority_range(5..11, Priority::Skip).is_err());
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 6..5;
    assert!(p.set_priority_range(backwards, Priority::Skip).is_err());
    assert_eq!(
        p.peer_bitfield(pk(1), &Bitfield::new(11)),
        Err(PickerError::BitfieldLength {
            expected: 10,
            got: 11
        })
    );
    assert!(p.set_have(&Bitfield::new(9)).is_err());
    assert_eq!(
        p.peer_have(pk(2), pi(0)),
        Err(PickerError::UnknownPeer(pk(2)))
    );
    assert_eq!(
        p.peer_have(pk(u32::MAX), pi(0)),
        Err(PickerError::UnknownPeer(pk(u32::MAX)))
    );
    assert_eq!(p.remove_peer(pk(7)), Err(PickerError::UnknownPeer(pk(7))));
    assert_eq!(p.add_peer(pk(1)), Err(PickerError::PeerExists(pk(1))));
    assert_eq!(
        p.add_peer(pk(MAX_PEER_KEY)),
        Err(PickerError::PeerKeyTooLarge(pk(MAX_PEER_KEY)))
    );
    assert_eq!(p.availability(bad), 0);
    assert!(!p.peer_has(pk(1), bad));
    assert!(!p.have(bad));
    assert_eq!(p.priority(bad), Priority::Skip);
    assert!(pick(&mut p, 99, 10).is_empty());
    assert_eq!(
        p.abort_request(pk(1), blk(0, 0)),
        Err(PickerError::NotRequested(blk(0, 0)))
    );
    p.check_invariants();
}

#[test]
fn rarest_first_for_every_peer_shape() {
    with_shapes(64, 1, 5, |p| {
        // Peer 0 has everything; 1 has 0..32; 2 has 0..16: pieces 32.. are the rarest (1),
        // then 16..32 (2), then 0..16 (3).
        for k in 0..3 {
            p.add_peer(pk(k)).unwrap();
        }
        p.peer_bitfield(pk(0), &Bitfield::full(64)).unwrap();
        p.peer_bitfield(pk(1), &bits(64, 0..32)).unwrap();
        for i in 0..16 {
            p.peer_have(pk(2), pi(i)).unwrap();
        }
        p.check_invariants();
        assert_eq!(p.availability(pi(0)), 3);
        assert_eq!(p.availability(pi(20)), 2);
        assert_eq!(p.availability(pi(40)), 1);
        let got = pieces(&pick(p, 0, 40));
        assert!(got[..32].iter().all(|&i| i >= 32), "{got:?}");
        assert!(got[32..].iter().all(|&i| (16..32).contains(&i)), "{got:?}");
        let got = pieces(&pick(p, 1, 20));
        assert!(got[..16].iter().all(|&i| (16..32).contains(&i)), "{got:?}");
        assert!(got[16..].iter().all(|&i| i < 16), "{got:?}");
        let got = pieces(&pick(p, 2, 100));
        assert_eq!(got.len(), 16);
        // Rarity changes move pieces: make 40..64 common.
        for k in 3..6 {
            p.add_peer(pk(k)).unwrap();
            p.peer_bitfield(pk(k), &bits(64, 40..64)).unwrap();
        }
        let got = pieces(&pick(p, 0, 8));
        assert!(got.iter().all(|&i| (32..40).contains(&i)), "{got:?}");
    });
}

#[test]
fn dense_peer_lacking_the_rarest_buckets_still_gets_its_rarest() {
    // 19 peers have the first half; peer 19 has the second half: the rarest buckets are all
    // pieces peer 0 lacks, so its walk runs out of budget and falls back to a scan.
    let n = 4096;
    let mut p = picker(n, 1, 9);
    for k in 0..20 {
        p.add_peer(pk(k)).unwrap();
        let b = if k < 19 {
            bits(n, 0..n / 2)
        } else {
            bits(n, n / 2..n)
        };
        p.peer_bitfield(pk(k), &b).unwrap();
    }
    // Make a few of the first half rarer.
    for k in 1..19 {
        p.peer_dont_have(pk(k), pi(100)).unwrap();
        p.peer_dont_have(pk(k), pi(200)).unwrap();
    }
    p.check_invariants();
    let got = pieces(&pick(&mut p, 0, 2));
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([100, 200])
    );
}

#[test]
fn ties_are_random_but_seeded() {
    let first = |seed| {
        let mut p = picker(1000, 1, seed);
        p.add_peer(pk(0)).unwrap();
        p.peer_have_all(pk(0)).unwrap();
        pick(&mut p, 0, 3)
    };
    assert_eq!(first(42), first(42));
    let distinct: BTreeSet<Vec<BlockRequest>> = (0..10).map(first).collect();
    assert!(distinct.len() > 5);
    // A sparse peer's equally rare pieces too.
    let sparse = |seed| {
        let mut p = picker(1000, 1, seed);
        p.add_peer(pk(0)).unwrap();
        for i in [3, 30, 300, 900, 901, 902] {
            p.peer_have(pk(0), pi(i)).unwrap();
        }
        pieces(&pick(&mut p, 0, 1))
    };
    assert_eq!(sparse(1), sparse(1));
    let distinct: BTreeSet<Vec<u32>> = (0..20).map(sparse).collect();
    assert!(distinct.len() > 2);
}

#[test]
fn random_first_pieces_then_rarest() {
    // Pieces 0..50 are rare (only the seed), 50..100 common: rarest first would only ever
    // pick below 50.
    let setup = |seed| {
        let mut p = Picker::new(
            100,
            B,
            100 * u64::from(B),
            PickerConfig {
                seed,
                random_first_pieces: 4,
                ..PickerConfig::default()
            },
        )
        .unwrap();
        p.add_peer(pk(0)).unwrap();
        p.peer_have_all(pk(0)).unwrap();
        for k in 1..4 {
            p.add_peer(pk(k)).unwrap();
            p.peer_bitfield(pk(k), &bits(100, 50..100)).unwrap();
        }
        p
    };
    let mut above = 0;
    for seed in 0..20 {
        let mut p = setup(seed);
        above += pieces(&pick(&mut p, 0, 4))
            .iter()
            .filter(|&&i| i >= 50)
            .count();
    }
    assert!(above > 10, "random first pieces look rarest-first: {above}");
    let mut p = setup(7);
    for i in 90..94 {
        p.piece_verified(pi(i)).unwrap();
    }
    for _ in 0..10 {
        assert!(pieces(&pick(&mut p, 0, 4)).iter().all(|&i| i < 50));
    }
}

#[test]
fn partial_pieces_are_finished_first() {
    let mut p = picker(50, 4, 3);
    for k in 0..3 {
        p.add_peer(pk(k)).unwrap();
        p.peer_have_all(pk(k)).unwrap();
    }
    // Peer 0 starts piece 7, gets one block and is choked: piece 7 is abandoned.
    request(&mut p, 0, &[blk(7, 0), blk(7, 1)]);
    p.block_received(pk(0), blk(7, 0)).unwrap();
    p.abort_request(pk(0), blk(7, 1)).unwrap();
    p.check_invariants();
    let out = pick(&mut p, 1, 5);
    assert_eq!(&out[..3], &[blk(7, 1), blk(7, 2), blk(7, 3)]);
    assert_ne!(out[3].piece, pi(7));
    // A peer lacking piece 7 doesn't get it.
    p.add_peer(pk(9)).unwrap();
    p.peer_have(pk(9), pi(8)).unwrap();
    assert_eq!(pieces(&pick(&mut p, 9, 10)), [8]);
}

#[test]
fn a_peer_sticks_to_its_pieces() {
    let mut p = picker(50, 4, 3);
    for k in 0..2 {
        p.add_peer(pk(k)).unwrap();
        p.peer_have_all(pk(k)).unwrap();
    }
    let first = pick(&mut p, 0, 2);
    assert_eq!(pieces(&first).len(), 1);
    let x = first[0].piece;
    request(&mut p, 0, &first);
    // The owner continues its piece, even after the first blocks arrived.
    p.block_received(pk(0), first[0]).unwrap();
    let next = pick(&mut p, 0, 3);
    assert_eq!(next[0].piece, x);
    assert_eq!(next[1].piece, x);
    assert_ne!(next[2].piece, x);
    // Another peer leaves it alone while there are other pieces.
    assert!(pick(&mut p, 1, 40).iter().all(|b| b.piece != x));
    // … but helps when there is nothing else.
    let mut q = picker(1, 4, 3);
    for k in 0..2 {
        q.add_peer(pk(k)).unwrap();
        q.peer_have_all(pk(k)).unwrap();
    }
    request(&mut q, 0, &[blk(0, 0)]);
    assert_eq!(pick(&mut q, 1, 10), [blk(0, 1), blk(0, 2), blk(0, 3)]);
}

#[test]
fn endgame_requests_twice_and_cancels_on_arrival() {
    let mut p = picker(2, 2, 0);
    for k in 0..3 {
        p.add_peer(pk(k)).unwrap();
        p.peer_have_all(pk(k)).unwrap();
    }
    let all = pick(&mut p, 0, 10);
    assert_eq!(all.len(), 4);
    assert!(!p.in_endgame());
    request(&mut p, 0, &all);
    assert!(p.in_endgame());
    // Peer 1 may duplicate every block; peer 0 has them all already.
    let dup = pick(&mut p, 1, 10);
    assert_eq!(
        dup.iter().copied().collect::<BTreeSet<_>>(),
        all.iter().copied().collect()
    );
    assert!(pick(&mut p, 0, 10).is_empty());
    request(&mut p, 1, &dup);
    // Two requests per block at most.
    assert!(pick(&mut p, 2, 10).is_empty());
    // The first copy to arrive cancels the other.
    let r = p.block_received(pk(1), blk(0, 0)).unwrap();
    assert_eq!(r.cancel.as_slice(), &[(pk(0), blk(0, 0))]);
    assert!(!r.piece_complete && !r.duplicate);
    let r = p.block_received(pk(0), blk(0, 1)).unwrap();
    assert_eq!(r.cancel.as_slice(), &[(pk(1), blk(0, 1))]);
    assert!(r.piece_complete);
    // A late copy is a duplicate, with nothing to cancel.
    let r = p.block_received(pk(0), blk(0, 0)).unwrap();
    assert!(r.duplicate && r.cancel.is_empty());
    p.check_invariants();
    // A peer that leaves gives its requests up: peer 2 may now take them.
    p.remove_peer(pk(1)).unwrap();
    p.check_invariants();
    let got = pick(&mut p, 2, 10);
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([blk(1, 0), blk(1, 1)])
    );
}

#[test]
fn priorities_skip_and_high() {
    with_shapes(40, 1, 11, |p| {
        for k in 0..3 {
            p.add_peer(pk(k)).unwrap();
        }
        p.peer_have_all(pk(0)).unwrap();
        p.peer_bitfield(pk(1), &bits(40, 0..40)).unwrap();
        p.peer_bitfield(pk(2), &bits(40, 30..40)).unwrap();
        // 0..30 are rarer than 30..40; make 35 High: it comes first anyway.
        p.set_piece_priority(pi(35), Priority::High).unwrap();
        assert_eq!(pieces(&pick(p, 0, 1)), [35]);
        assert_eq!(pieces(&pick(p, 2, 1)), [35]);
        // Skip everything but 3 and 35.
        p.set_priority_range(0..40, Priority::Skip).unwrap();
        p.set_piece_priority(pi(3), Priority::Normal).unwrap();
        p.set_piece_priority(pi(35), Priority::High).unwrap();
        p.check_invariants();
        assert_eq!(pieces(&pick(p, 0, 100)), [35, 3]);
        assert_eq!(pieces(&pick(p, 2, 100)), [35]);
        assert!(p.is_interesting(pk(2)));
        p.set_piece_priority(pi(35), Priority::Skip).unwrap();
        assert!(!p.is_interesting(pk(2)));
        assert!(pick(p, 2, 100).is_empty());
        assert_eq!(p.wanted_count(), 1);
        p.set_priority_range(10..20, Priority::Normal).unwrap();
        p.check_invariants();
        assert_eq!(pieces(&pick(p, 0, 100)).len(), 11);
    });
}

#[test]
fn sequential_mode_picks_lowest_index_first() {
    with_shapes(200, 2, 4, |p| {
        p.set_sequential(true);
        for k in 0..3 {
            p.add_peer(pk(k)).unwrap();
        }
        p.peer_have_all(pk(0)).unwrap();
        p.peer_bitfield(pk(1), &bits(200, (0..200).filter(|i| i % 3 != 0)))
            .unwrap();
        for i in [150, 7, 90] {
            p.peer_have(pk(2), pi(i)).unwrap();
        }
        assert_eq!(pieces(&pick(p, 0, 6)), [0, 1, 2]);
        assert_eq!(pieces(&pick(p, 1, 6)), [1, 2, 4]);
        assert_eq!(pieces(&pick(p, 2, 6)), [7, 90, 150]);
        let first = pick(p, 0, 4);
        request(p, 0, &first);
        assert_eq!(pieces(&pick(p, 1, 2)), [2]);
        assert_eq!(pieces(&pick(p, 1, 4)), [2, 4]);
        p.piece_verified(pi(2)).unwrap();
        p.set_piece_priority(pi(120), Priority::High).unwrap();
        assert_eq!(pieces(&pick(p, 0, 6)), [120, 3, 4]);
        // A piece that comes back (hash failure) below the cursor is first again.
        p.set_piece_priority(pi(120), Priority::Normal).unwrap();
        for b in &first {
            p.block_received(pk(0), *b).unwrap();
        }
        p.hash_failed(pi(0)).unwrap();
        assert_eq!(pieces(&pick(p, 0, 4)), [0, 3]);
        p.check_invariants();
    });
}

#[test]
fn resumed_pieces_are_never_picked() {
    with_shapes(30, 2, 8, |p| {
        let have = bits(30, (0..30).filter(|i| i % 2 == 0));
        p.add_peer(pk(0)).unwrap();
        p.peer_have_all(pk(0)).unwrap();
        p.add_peer(pk(1)).unwrap();
        p.peer_bitfield(pk(1), &bits(30, [0, 2, 4, 5])).unwrap();
        assert!(p.is_interesting(pk(1)));
        p.set_have(&have).unwrap();
        p.check_invariants();
        assert_eq!(p.have_count(), 15);
        let got = pieces(&pick(p, 0, 100));
        assert_eq!(got.len(), 15);
        assert!(got.iter().all(|i| i % 2 == 1));
        assert_eq!(pieces(&pick(p, 1, 100)), [5]);
        p.piece_verified(pi(5)).unwrap();
        assert!(!p.is_interesting(pk(1)));
        assert!(pick(p, 1, 100).is_empty());
        assert!(p.is_interesting(pk(0)));
        // Blocks of a verified piece are duplicates.
        let r = p.block_received(pk(0), blk(0, 0)).unwrap();
        assert!(r.duplicate);
        assert_eq!(
            p.mark_requested(pk(0), blk(0, 0)),
            Err(PickerError::AlreadyHave(pi(0)))
        );
    });
}

#[test]
fn hash_failure_puts_the_piece_back() {
    let mut p = picker(3, 2, 1);
    for k in 0..2 {
        p.add_peer(pk(k)).unwrap();
        p.peer_have_all(pk(k)).unwrap();
    }
    request(&mut p, 0, &[blk(1, 0)]);
    request(&mut p, 1, &[blk(1, 1)]);
    assert!(!p.block_received(pk(0), blk(1, 0)).unwrap().piece_complete);
    assert!(p.block_received(pk(1), blk(1, 1)).unwrap().piece_complete);
    assert!(pick(&mut p, 0, 10).iter().all(|b| b.piece != pi(1)));
    let senders = p.hash_failed(pi(1)).unwrap();
    assert_eq!(
        senders.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([pk(0), pk(1)])
    );
    p.check_invariants();
    assert!(pieces(&pick(&mut p, 0, 10)).contains(&1));
    assert!(p.hash_failed(pi(1)).unwrap().is_empty());
}

#[test]
fn failing_an_incomplete_piece_keeps_its_outstanding_requests() {
    // A storage error on one block: the piece is failed before it is complete.
    let mut p = picker(3, 3, 1);
    for k in 0..2 {
        p.add_peer(pk(k)).unwrap();
        p.peer_have_all(pk(k)).unwrap();
    }
    request(&mut p, 0, &[blk(1, 0), blk(1, 1)]);
    request(&mut p, 1, &[blk(1, 2)]);
    p.block_received(pk(0), blk(1, 0)).unwrap();
    assert_eq!(p.hash_failed(pi(1)).unwrap().as_slice(), &[pk(0)]);
    p.check_invariants();
    // Block 0 is free again; blocks 1 and 2 are still requested.
    let got = pick(&mut p, 0, 1);
    assert_eq!(got, [blk(1, 0)]);
    p.abort_request(pk(0), blk(1, 1)).unwrap();
    let r = p.block_received(pk(1), blk(1, 2)).unwrap();
    assert!(!r.duplicate && !r.piece_complete);
    p.check_invariants();
    // Once verified, aborting what was in flight is a no-op, not an error.
    request(&mut p, 1, &[blk(2, 0)]);
    for b in 0..3 {
        p.block_received(pk(0), blk(2, b)).unwrap();
    }
    p.piece_verified(pi(2)).unwrap();
    assert_eq!(p.abort_request(pk(1), blk(2, 0)), Ok(()));
    p.check_invariants();
}

#[test]
fn seeds_and_near_seeds_join_and_leave() {
    with_shapes(100, 1, 2, |p| {
        p.add_peer(pk(0)).unwrap();
        p.peer_bitfield(pk(0), &bits(100, 10..60)).unwrap();
        p.add_peer(pk(1)).unwrap();
        p.peer_have_all(pk(1)).unwrap();
        p.add_peer(pk(2)).unwrap();
        let mut near = Bitfield::full(100);
        near.clear(0);
        near.clear(50);
        p.peer_bitfield(pk(2), &near).unwrap();
        p.check_invariants();
        assert_eq!(p.availability(pi(0)), 1);
        assert_eq!(p.availability(pi(50)), 2);
        assert_eq!(p.availability(pi(20)), 3);
        assert_eq!(p.availability(pi(99)), 2);
        // Near-seed completes, then loses a piece (BEP 54), then leaves.
        p.peer_have(pk(2), pi(0)).unwrap();
        p.peer_have(pk(2), pi(50)).unwrap();
        p.check_invariants();
        assert_eq!(p.availability(pi(0)), 2);
        p.peer_dont_have(pk(2), pi(7)).unwrap();
        assert_eq!(p.availability(pi(7)), 1);
        p.check_invariants();
        p.remove_peer(pk(2)).unwrap();
        p.check_invariants();
        assert_eq!(p.availability(pi(50)), 2);
        assert_eq!(p.availability(pi(7)), 1);
        p.remove_peer(pk(1)).unwrap();
        p.check_invariants();
        assert_eq!(p.availability(pi(50)), 1);
        assert_eq!(p.availability(pi(99)), 0);
        // A peer that had grown from nothing into a seed, then left.
        p.add_peer(pk(1)).unwrap();
        for i in 0..100 {
            p.peer_have(pk(1), pi(i)).unwrap();
        }
        p.check_invariants();
        assert_eq!(p.availability(pi(20)), 2);
        p.remove_peer(pk(1)).unwrap();
        p.peer_have_none(pk(0)).unwrap();
        p.check_invariants();
        assert!((0..100).all(|i| p.availability(pi(i)) == 0));
    });
}

#[test]
fn removing_a_peer_frees_its_blocks_for_others() {
    let mut p = picker(4, 4, 1);
    for k in 0..2 {
        p.add_peer(pk(k)).unwrap();
        p.peer_have_all(pk(k)).unwrap();
    }
    let mine = pick(&mut p, 0, 16);
    request(&mut p, 0, &mine);
    p.block_received(pk(0), mine[0]).unwrap();
    assert_eq!(pick(&mut p, 1, 16).len(), 15); // endgame duplicates
    p.remove_peer(pk(0)).unwrap();
    p.check_invariants();
    assert!(!p.in_endgame());
    let got = pick(&mut p, 1, 16);
    assert_eq!(got.len(), 15);
    assert!(!got.contains(&mine[0]));
}

#[test]
fn peer_key_reuse() {
    let mut p = picker(8, 1, 1);
    p.add_peer(pk(3)).unwrap();
    p.peer_have_all(pk(3)).unwrap();
    request(&mut p, 3, &[blk(0, 0)]);
    p.remove_peer(pk(3)).unwrap();
    p.add_peer(pk(3)).unwrap();
    assert!(!p.is_interesting(pk(3)));
    assert_eq!(p.availability(pi(0)), 0);
    p.check_invariants();
}

// ------------------------------------------------------------------ property test

const PEERS: u32 = 6;

struct Model {
    n: u32,
    peers: Vec<Option<BTreeSet<u32>>>,
    /// (peer, block) requests we marked and that are still outstanding.
    outstanding: Vec<(u32, BlockRequest)>,
}

impl Model {
    fn has(&self, k: u32, i: u32) -> bool {
        self.peers[k as usize]
            .as_ref()
            .is_some_and(|s| s.contains(&i))
    }
}

fn random_bits(n: u32, seed: u64, density: u8) -> Bitfield {
    let mut r = Rng::new(seed);
    let pct = [0, 10, 50, 90, 100][density as usize % 5];
    bits(n, (0..n).filter(|_| r.below(100) < pct))
}

/// What a run exercised, so the tests can tell they reached the interesting states.
#[derive(Default, Debug)]
struct Coverage {
    picked: u32,
    endgame_picks: u32,
    cancels: u32,
    verified: u32,
    hash_failed: u32,
    dense: u32,
    allbut: u32,
}

/// Runs `ops` against a picker and a brute-force model; returns an error message on the
/// first disagreement or invalid pick.
fn run(
    seed: u64,
    shape: (u8, u8, u8),
    ops: &[(u8, u8, u8, u8)],
    max_n: u32,
) -> Result<Coverage, String> {
    let mut cov = Coverage::default();
    let n = 1 + u32::from(shape.0) % max_n;
    let bpp = 1 + u32::from(shape.1 % 3);
    let pl = bpp * B;
    let short = if shape.2 & 1 == 1 { B + 7 } else { 0 };
    let total = u64::from(n) * u64::from(pl) - u64::from(short.min(pl - 1));
    let mut p = Picker::new(
        n,
        pl,
        total,
        PickerConfig {
            seed,
            random_first_pieces: u32::from(shape.2 >> 4) % 3,
            endgame_requests: 2,
            sequential: shape.2 & 2 != 0,
        },
    )
    .map_err(|e| format!("{e}"))?;
    match (shape.2 >> 2) & 3 {
        0 => {}
        1 => p.set_caps(2, 1, 0),
        2 => p.set_caps(3, 2, 1),
        _ => p.set_caps(8, 3, 2),
    }
    let mut m = Model {
        n,
        peers: vec![None; PEERS as usize],
        outstanding: Vec::new(),
    };
    for (step, &(op, a, b, c)) in ops.iter().enumerate() {
        let k = u32::from(a) % PEERS;
        let i = u32::from(b) % n;
        let known = m.peers[k as usize].is_some();
        match op % 17 {
            0 => {
                let r = p.add_peer(pk(k));
                if known != r.is_err() {
                    return Err(format!("add_peer {k}: {r:?}"));
                }
                m.peers[k as usize].get_or_insert_with(BTreeSet::new);
            }
            1 => {
                let r = p.remove_peer(pk(k));
                if known == r.is_err() {
                    return Err(format!("remove_peer {k}: {r:?}"));
                }
                m.peers[k as usize] = None;
                m.outstanding.retain(|&(q, _)| q != k);
            }
            2 => {
                let bf = random_bits(n, u64::from(b) << 8 | u64::from(c), c);
                let r = p.peer_bitfield(pk(k), &bf);
                if known == r.is_err() {
                    return Err(format!("peer_bitfield: {r:?}"));
                }
                if let Some(s) = m.peers[k as usize].as_mut() {
                    *s = bf.iter_ones().collect();
                }
            }
            3 | 4 => {
                let r = p.peer_have(pk(k), pi(i));
                if known == r.is_err() {
                    return Err(format!("peer_have: {r:?}"));
                }
                if let Some(s) = m.peers[k as usize].as_mut() {
                    s.insert(i);
                }
            }
            5 => {
                let _ = p.peer_have_all(pk(k));
                if let Some(s) = m.peers[k as usize].as_mut() {
                    *s = (0..n).collect();
                }
            }
            6 => {
                let _ = p.peer_have_none(pk(k));
                if let Some(s) = m.peers[k as usize].as_mut() {
                    s.clear();
                }
            }
            7 => {
                let _ = p.peer_dont_have(pk(k), pi(i));
                if let Some(s) = m.peers[k as usize].as_mut() {
                    s.remove(&i);
                }
            }
            8..=10 => {
                let max = 1 + u32::from(c % 9);
                let mut out = Vec::new();
                let got = p.pick(pk(k), max, &mut out);
                if got != out.len() || got > max as usize {
                    return Err(format!("pick count {got} of {max}"));
                }
                let distinct: BTreeSet<_> = out.iter().collect();
                if distinct.len() != out.len() {
                    return Err(format!("duplicate blocks in a pick: {out:?}"));
                }
                for &blk in &out {
                    let pc = blk.piece.0;
                    if p.layout.locate(blk).is_err() {
                        return Err(format!("invalid block {blk:?}"));
                    }
                    if !m.has(k, pc) {
                        return Err(format!("step {step}: peer {k} lacks piece {pc}"));
                    }
                    if p.have(blk.piece) || p.priority(blk.piece) == Priority::Skip {
                        return Err(format!("picked unwanted piece {pc}"));
                    }
                    let others = m.outstanding.iter().filter(|&&(_, x)| x == blk).count();
                    if m.outstanding.contains(&(k, blk)) || others >= 2 {
                        return Err(format!("picked a block requested already {blk:?}"));
                    }
                    if others > 0 && !p.in_endgame() {
                        return Err(format!("duplicate request outside endgame {blk:?}"));
                    }
                }
                cov.picked += out.len() as u32;
                if p.in_endgame() && !out.is_empty() {
                    cov.endgame_picks += 1;
                }
                for &blk in &out {
                    p.mark_requested(pk(k), blk)
                        .map_err(|e| format!("mark_requested of a picked block: {e}"))?;
                    m.outstanding.push((k, blk));
                }
            }
            11 | 12 => {
                if m.outstanding.is_empty() {
                    continue;
                }
                let (q, blk) = m.outstanding[usize::from(b) % m.outstanding.len()];
                let r = p
                    .block_received(pk(q), blk)
                    .map_err(|e| format!("block_received: {e}"))?;
                let expect: BTreeSet<(PeerKey, BlockRequest)> = m
                    .outstanding
                    .iter()
                    .filter(|&&(o, x)| x == blk && o != q)
                    .map(|&(o, x)| (pk(o), x))
                    .collect();
                if r.cancel.iter().copied().collect::<BTreeSet<_>>() != expect || r.duplicate {
                    return Err(format!("block_received {r:?}, expected cancels {expect:?}"));
                }
                m.outstanding.retain(|&(_, x)| x != blk);
                cov.cancels += r.cancel.len() as u32;
                if r.piece_complete {
                    if c & 1 == 0 {
                        p.piece_verified(blk.piece).map_err(|e| e.to_string())?;
                        cov.verified += 1;
                    } else {
                        p.hash_failed(blk.piece).map_err(|e| e.to_string())?;
                        cov.hash_failed += 1;
                    }
                    m.outstanding.retain(|&(_, x)| x.piece != blk.piece);
                }
            }
            13 => {
                if m.outstanding.is_empty() {
                    continue;
                }
                let at = usize::from(b) % m.outstanding.len();
                let (q, blk) = m.outstanding.swap_remove(at);
                p.abort_request(pk(q), blk)
                    .map_err(|e| format!("abort: {e}"))?;
            }
            14 if c & 1 == 0 => {
                p.piece_verified(pi(i)).map_err(|e| e.to_string())?;
                m.outstanding.retain(|&(_, x)| x.piece.0 != i);
            }
            14 => {
                // A storage failure: the piece is failed whether complete or not; its
                // outstanding requests stay.
                if !p.have(pi(i)) {
                    p.hash_failed(pi(i)).map_err(|e| e.to_string())?;
                    cov.hash_failed += 1;
                }
            }
            15 => {
                let prio = [Priority::Skip, Priority::Normal, Priority::High][usize::from(c % 3)];
                if c & 4 == 0 {
                    p.set_piece_priority(pi(i), prio)
                        .map_err(|e| e.to_string())?;
                } else {
                    let end = (i + u32::from(c >> 3)).min(n);
                    p.set_priority_range(i..end, prio)
                        .map_err(|e| e.to_string())?;
                }
            }
            _ => {
                // Hostile or mistaken input: errors, no panics, no change.
                let bad = pi(n + u32::from(c));
                if p.peer_have(pk(k), bad).is_ok()
                    || p.piece_verified(bad).is_ok()
                    || p.hash_failed(bad).is_ok()
                    || p.peer_dont_have(pk(k), bad).is_ok()
                {
                    return Err("bad index accepted".into());
                }
                let odd = BlockRequest {
                    piece: pi(i),
                    begin: u32::from(c),
                    length: B + 1,
                };
                if p.mark_requested(pk(k), odd).is_ok() || p.block_received(pk(k), odd).is_ok() {
                    return Err("bad block accepted".into());
                }
                p.set_sequential(c & 1 == 1);
            }
        }
        p.check_invariants();
        for i in 0..n {
            let count = (0..PEERS).filter(|&q| m.has(q, i)).count() as u32;
            if p.availability(pi(i)) != count {
                return Err(format!(
                    "step {step}: availability({i}) {} != {count}",
                    p.availability(pi(i))
                ));
            }
        }
        for q in 0..PEERS {
            let interesting = (0..n)
                .any(|i| m.has(q, i) && !p.have(pi(i)) && p.priority(pi(i)) != Priority::Skip);
            if p.is_interesting(pk(q)) != interesting {
                return Err(format!("is_interesting({q})"));
            }
        }
        for q in p.peers.iter().flatten() {
            match q.has {
                Has::Dense(_) => cov.dense += 1,
                Has::AllBut(_) => cov.allbut += 1,
                Has::Sparse(_) => {}
            }
        }
        let _ = m.n;
    }
    Ok(cov)
}

#[test]
fn picker_properties_hold_under_random_operations() {
    fn prop(seed: u64, shape: (u8, u8, u8), ops: Vec<(u8, u8, u8, u8)>) -> TestResult {
        match run(seed, shape, &ops, 40) {
            Ok(_) => TestResult::passed(),
            Err(e) => TestResult::error(e),
        }
    }
    QuickCheck::new()
        .tests(400)
        .rng(quickcheck::Gen::new(200))
        .quickcheck(prop as fn(u64, (u8, u8, u8), Vec<(u8, u8, u8, u8)>) -> TestResult);
}

#[test]
fn long_random_runs_reach_completion() {
    // Longer deterministic runs that download whole torrents: many verifications, hash
    // failures, endgames and peer churn.
    let mut total = Coverage::default();
    for seed in 0..30u64 {
        let mut r = Rng::new(seed);
        let ops: Vec<(u8, u8, u8, u8)> = (0..3000)
            .map(|_| {
                let op = match r.below(200) {
                    0..=19 => r.below(8) as u8,
                    20..=109 => 8,
                    110..=179 => 11,
                    180..=189 => 13,
                    190 => 14,
                    191..=194 => 15,
                    _ => 16,
                };
                (
                    op,
                    r.below(256) as u8,
                    r.below(256) as u8,
                    r.below(256) as u8,
                )
            })
            .collect();
        let shape = (r.below(256) as u8, r.below(256) as u8, r.below(256) as u8);
        match run(seed, shape, &ops, 200) {
            Ok(c) => {
                total.picked += c.picked;
                total.endgame_picks += c.endgame_picks;
                total.cancels += c.cancels;
                total.verified += c.verified;
                total.hash_failed += c.hash_failed;
                total.dense += c.dense;
                total.allbut += c.allbut;
            }
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    // The runs must reach the states worth checking.
    assert!(total.picked > 1000, "{total:?}");
    assert!(total.endgame_picks > 10, "{total:?}");
    assert!(total.cancels > 10, "{total:?}");
    assert!(total.verified > 100, "{total:?}");
    assert!(total.hash_failed > 100, "{total:?}");
    assert!(total.dense > 100, "{total:?}");
    assert!(total.allbut > 100, "{total:?}");
}

#[test]
fn extend_run_takes_only_fresh_pieces_in_a_row() {
    let mut p = picker(10, 2, 7);
    p.add_peer(pk(0)).unwrap();
    p.peer_have_all(pk(0)).unwrap();
    p.add_peer(pk(1)).unwrap();
    p.peer_have_all(pk(1)).unwrap();
    // Peer 1 started piece 4; piece 6 is verified; piece 8 is skipped.
    let b4 = p.block(pi(4), 0).unwrap();
    request(&mut p, 1, &[b4]);
    p.piece_verified(pi(6)).unwrap();
    p.set_piece_priority(pi(8), Priority::Skip).unwrap();
    p.check_invariants();
    let run = |p: &Picker, after: u32, max: u32| {
        let mut out = Vec::new();
        p.extend_run(pk(0), pi(after), max, &mut out);
        out
    };
    assert_eq!(pieces(&run(&p, 0, 100)), vec![1, 2, 3]);
    assert_eq!(pieces(&run(&p, 0, 5)), vec![1, 2], "whole pieces only");
    assert!(run(&p, 3, 100).is_empty(), "piece 4 is someone else's");
    assert_eq!(pieces(&run(&p, 4, 100)), vec![5]);
    assert!(run(&p, 7, 100).is_empty(), "piece 8 is not wanted");
    assert!(run(&p, 9, 100).is_empty());
    // Requesting a run keeps the picker consistent, and no other peer gets its blocks.
    let blocks = run(&p, 0, 100);
    request(&mut p, 0, &blocks);
    p.check_invariants();
    let other = pick(&mut p, 1, 100);
    assert!(other.iter().all(|b| !blocks.contains(b)));
}
