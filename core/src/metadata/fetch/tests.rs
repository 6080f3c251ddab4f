use super::*;
use crate::metadata::{answer, PIECE_SIZE};
use crate::rng::Rng;
use quickcheck::{quickcheck, Arbitrary, Gen};

/// A valid `info` dictionary of `pieces` pieces of 16 KiB: 20 bytes of metadata a piece,
/// so 820 pieces make a bit over one metadata piece.
fn info(pieces: u32, salt: u8) -> Vec<u8> {
    let mut out = format!(
        "d6:lengthi{}e4:name5:a.bin12:piece lengthi16384e6:pieces{}:",
        u64::from(pieces) * 16384,
        pieces * 20
    )
    .into_bytes();
    out.extend((0..pieces * 20).map(|i| (i as u8).wrapping_mul(31) ^ salt));
    out.push(b'e');
    out
}

fn magnet_for(info: &[u8]) -> Magnet {
    let mut m = Magnet::new(InfoHash(Sha1::digest(info).into()));
    m.trackers = vec!["http://a/announce".into(), "udp://b:1".into()];
    m
}

fn t0() -> Instant {
    shoal_test_clock::epoch()
}

fn actions(f: &mut MetadataFetch<u32>) -> Vec<Action<u32>> {
    std::iter::from_fn(|| f.poll_action()).collect()
}

fn data(info: &[u8], piece: u32) -> MetadataMessage {
    answer(info, piece)
}

#[test]
fn fetches_from_one_peer() {
    let info = info(2000, 0); // 40,000+ bytes: 3 metadata pieces
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&info), FetchConfig::default());
    f.add_peer(1, info.len() as u64, now).unwrap();
    let asked = actions(&mut f);
    assert_eq!(
        asked,
        (0..3)
            .map(|piece| Action::Request { peer: 1, piece })
            .collect::<Vec<_>>()
    );
    for piece in [2, 0, 1] {
        assert!(f.outcome().is_none());
        f.on_message(1, &data(&info, piece), now);
    }
    let meta = f.outcome().unwrap().unwrap();
    assert_eq!(meta.info_bytes, info);
    assert_eq!(meta.info.piece_count(), 2000);
    assert_eq!(
        meta.trackers(),
        vec![
            vec!["http://a/announce".to_owned()],
            vec!["udp://b:1".to_owned()]
        ]
    );
    assert_eq!(f.poll_timeout(), None);
    assert_eq!(
        f.add_peer(2, info.len() as u64, now),
        Err(AddPeerError::Finished)
    );
}

#[test]
fn spreads_requests_over_peers() {
    let info = info(8000, 1); // 160,000+ bytes: 10 pieces
    let now = t0();
    let config = FetchConfig {
        requests_per_peer: 2,
        ..FetchConfig::default()
    };
    let mut f = MetadataFetch::new(&magnet_for(&info), config);
    for peer in 0..3 {
        f.add_peer(peer, info.len() as u64, now).unwrap();
    }
    let asked = actions(&mut f);
    assert_eq!(asked.len(), 6);
    for peer in 0..3 {
        let n = asked
            .iter()
            .filter(|a| matches!(a, Action::Request { peer: p, .. } if *p == peer))
            .count();
        assert_eq!(n, 2, "peer {peer}");
    }
    // Answer whatever is asked until done.
    let mut queue = asked;
    while let Some(Action::Request { peer, piece }) = queue.pop() {
        f.on_message(peer, &data(&info, piece), now);
        queue.extend(actions(&mut f));
    }
    assert_eq!(f.outcome().unwrap().unwrap().info_bytes, info);
}

#[test]
fn refuses_sizes_out_of_bounds_and_known_peers() {
    let info = info(10, 2);
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&info), FetchConfig::default());
    assert_eq!(f.add_peer(1, 0, now), Err(AddPeerError::BadSize(0)));
    assert_eq!(
        f.add_peer(1, 4 << 30, now),
        Err(AddPeerError::BadSize(4 << 30))
    );
    assert_eq!(
        f.add_peer(1, DEFAULT_MAX_METADATA_SIZE + 1, now),
        Err(AddPeerError::BadSize(DEFAULT_MAX_METADATA_SIZE + 1))
    );
    assert!(actions(&mut f).is_empty());
    f.add_peer(1, DEFAULT_MAX_METADATA_SIZE, now).unwrap();
    assert_eq!(
        f.add_peer(1, info.len() as u64, now),
        Err(AddPeerError::Known)
    );
}

#[test]
fn a_peer_contradicting_itself_is_dropped() {
    let info = info(2000, 3);
    let size = info.len() as u64;
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&info), FetchConfig::default());
    f.add_peer(1, size, now).unwrap();
    f.add_peer(2, size, now).unwrap();
    let _ = actions(&mut f);
    // Another total size than announced.
    f.on_message(
        1,
        &MetadataMessage::Data {
            piece: 0,
            total_size: size + 1,
            data: Bytes::from(vec![0; PIECE_SIZE as usize]),
        },
        now,
    );
    let after = actions(&mut f);
    assert_eq!(
        after[0],
        Action::Drop {
            peer: 1,
            reason: DropReason::BadData
        }
    );
    // What peer 1 was asked for goes to peer 2.
    assert_eq!(
        after[1..],
        [
            Action::Request { peer: 2, piece: 2 },
            Action::Request { peer: 2, piece: 1 },
            Action::Request { peer: 2, piece: 0 }
        ]
    );
    // A piece shorter than it should be.
    f.on_message(
        2,
        &MetadataMessage::Data {
            piece: 2,
            total_size: size,
            data: Bytes::from_static(b"x"),
        },
        now,
    );
    assert_eq!(
        actions(&mut f),
        vec![Action::Drop {
            peer: 2,
            reason: DropReason::BadData
        }]
    );
    assert_eq!(f.peer_count(), 0);
    assert_eq!(f.add_peer(2, size, now), Err(AddPeerError::Known));
    // An honest newcomer gets every piece asked of it.
    f.add_peer(3, size, now).unwrap();
    let asked = actions(&mut f);
    assert_eq!(asked.len(), 3);
    for a in asked {
        let Action::Request { peer, piece } = a else {
            panic!("{a:?}")
        };
        f.on_message(peer, &data(&info, piece), now);
    }
    assert_eq!(f.outcome().unwrap().unwrap().info_bytes, info);
}

#[test]
fn unasked_data_is_ignored() {
    let info = info(2000, 4);
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&info), FetchConfig::default());
    // Not a source at all.
    f.on_message(9, &data(&info, 0), now);
    f.add_peer(1, info.len() as u64, now).unwrap();
    let _ = actions(&mut f);
    f.on_message(1, &data(&info, 0), now);
    // The same piece again, unasked: ignored, not counted twice.
    f.on_message(1, &data(&info, 0), now);
    assert_eq!(
        f.progress(),
        (u64::from(PIECE_SIZE), Some(info.len() as u64))
    );
}

#[test]
fn a_lone_liar_is_dropped_and_the_pieces_fetched_again() {
    let info = info(2000, 5);
    let size = info.len() as u64;
    let wrong = {
        let mut w = info.clone();
        w[100] ^= 1;
        w
    };
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&info), FetchConfig::default());
    f.add_peer(1, size, now).unwrap();
    f.add_peer(2, size, now).unwrap();
    for a in actions(&mut f) {
        if let Action::Request { peer: 1, piece } = a {
            f.on_message(1, &data(&wrong, piece), now);
        }
    }
    let after = actions(&mut f);
    assert_eq!(
        after[0],
        Action::Drop {
            peer: 1,
            reason: DropReason::WrongMetadata
        }
    );
    assert_eq!(after.len(), 4, "every piece asked of peer 2: {after:?}");
    for a in &after[1..] {
        let Action::Request { peer: 2, piece } = *a else {
            panic!("{a:?}")
        };
        f.on_message(2, &data(&info, piece), now);
    }
    assert_eq!(f.outcome().unwrap().unwrap().info_bytes, info);
}

#[test]
fn after_a_shared_failure_peers_are_tried_one_at_a_time() {
    let info = info(8000, 6); // 10 pieces
    let size = info.len() as u64;
    let mut wrong = info.clone();
    wrong[5] ^= 0xff; // piece 0 is wrong
    let now = t0();
    let config = FetchConfig {
        requests_per_peer: 1,
        ..FetchConfig::default()
    };
    let mut f = MetadataFetch::new(&magnet_for(&info), config);
    // Peer 1 lies, peer 2 is honest; both contribute.
    f.add_peer(1, size, now).unwrap();
    f.add_peer(2, size, now).unwrap();
    let mut queue: VecDeque<_> = actions(&mut f).into();
    let mut rounds = 0;
    while let Some(a) = queue.pop_front() {
        rounds += 1;
        assert!(rounds < 100);
        match a {
            Action::Request { peer, piece } => {
                let source = if peer == 1 { &wrong } else { &info };
                f.on_message(peer, &data(source, piece), now);
            }
            Action::Drop { peer, reason } => {
                assert_eq!((peer, reason), (1, DropReason::WrongMetadata));
            }
        }
        queue.extend(actions(&mut f));
    }
    assert_eq!(f.outcome().unwrap().unwrap().info_bytes, info);
}

#[test]
fn rejects_and_timeouts_move_requests_to_other_peers() {
    let info = info(2000, 7);
    let size = info.len() as u64;
    let now = t0();
    let config = FetchConfig::default();
    let mut f = MetadataFetch::new(&magnet_for(&info), config);
    f.add_peer(1, size, now).unwrap();
    let _ = actions(&mut f);
    f.add_peer(2, size, now).unwrap();
    assert!(actions(&mut f).is_empty(), "everything is asked of peer 1");
    // Peer 1 rejects piece 1: it rests, peer 2 gets it.
    f.on_message(1, &MetadataMessage::Reject { piece: 1 }, now);
    assert_eq!(actions(&mut f), vec![Action::Request { peer: 2, piece: 1 }]);
    f.on_message(2, &data(&info, 1), now);
    // Peer 1 stays silent about 0 and 2: asked of peer 2 after the timeout.
    let deadline = f.poll_timeout().unwrap();
    assert_eq!(deadline, now + config.rest.min(config.request_timeout));
    let later = now + config.request_timeout;
    f.handle_timeout(later);
    let mut asked = actions(&mut f);
    asked.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(
        asked,
        vec![
            Action::Request { peer: 2, piece: 0 },
            Action::Request { peer: 2, piece: 2 }
        ]
    );
    for piece in [0, 2] {
        f.on_message(2, &data(&info, piece), later);
    }
    assert_eq!(f.outcome().unwrap().unwrap().info_bytes, info);
}

#[test]
fn a_peer_that_keeps_rejecting_is_no_longer_asked() {
    let info = info(10, 8);
    let now = t0();
    let config = FetchConfig::default();
    let mut f = MetadataFetch::new(&magnet_for(&info), config);
    f.add_peer(1, info.len() as u64, now).unwrap();
    let mut t = now;
    for _ in 0..config.max_strikes {
        assert_eq!(actions(&mut f), vec![Action::Request { peer: 1, piece: 0 }]);
        f.on_message(1, &MetadataMessage::Reject { piece: 0 }, t);
        assert!(actions(&mut f).is_empty(), "resting");
        t += config.rest;
        f.handle_timeout(t);
    }
    assert!(actions(&mut f).is_empty());
    assert_eq!(f.peer_count(), 0);
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn peers_disagreeing_on_the_size() {
    let info = info(2000, 9);
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&info), FetchConfig::default());
    // The first peer claims a smaller size and serves garbage of that size.
    let fake = vec![b'x'; 20000];
    f.add_peer(1, fake.len() as u64, now).unwrap();
    f.add_peer(2, info.len() as u64, now).unwrap();
    let mut queue: VecDeque<_> = actions(&mut f).into();
    assert!(queue
        .iter()
        .all(|a| matches!(a, Action::Request { peer: 1, .. })));
    while let Some(a) = queue.pop_front() {
        if let Action::Request { peer, piece } = a {
            let source = if peer == 1 { &fake } else { &info };
            f.on_message(peer, &data(source, piece), now);
        }
        queue.extend(actions(&mut f));
    }
    assert_eq!(f.outcome().unwrap().unwrap().info_bytes, info);
}

#[test]
fn right_hash_but_not_a_torrent_is_a_final_error() {
    let bogus = b"d4:spami1ee".to_vec();
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&bogus), FetchConfig::default());
    f.add_peer(1, bogus.len() as u64, now).unwrap();
    let _ = actions(&mut f);
    f.on_message(1, &data(&bogus, 0), now);
    assert!(matches!(f.outcome(), Some(Err(_))));
}

#[test]
fn a_peer_that_leaves_gives_its_requests_back() {
    let info = info(2000, 10);
    let now = t0();
    let mut f = MetadataFetch::new(&magnet_for(&info), FetchConfig::default());
    f.add_peer(1, info.len() as u64, now).unwrap();
    f.add_peer(2, info.len() as u64, now).unwrap();
    assert_eq!(actions(&mut f).len(), 3);
    f.remove_peer(1, now);
    assert_eq!(actions(&mut f).len(), 3, "all asked of peer 2");
}

// ------------------------------------------------------------------ properties

/// How a simulated peer answers.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Honest,
    /// The right size, one byte wrong somewhere.
    Corrupt(u16),
    /// Another size, garbage of that size.
    OtherSize(u16),
    /// Data of the wrong length or total size.
    Malformed,
    Rejects,
    Silent,
    /// Announces 4 GB.
    Huge,
}

impl Arbitrary for Behaviour {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 7 {
            0 => Behaviour::Honest,
            1 => Behaviour::Corrupt(u16::arbitrary(g)),
            2 => Behaviour::OtherSize(u16::arbitrary(g)),
            3 => Behaviour::Malformed,
            4 => Behaviour::Rejects,
            5 => Behaviour::Silent,
            _ => Behaviour::Huge,
        }
    }
}

/// Runs a fetch against peers that behave as given, answering in an order drawn from
/// `seed`. Returns whether it finished, and checks that whatever it produced is right.
fn run(peers: &[Behaviour], seed: u64, pieces: u32) -> bool {
    let info = info(pieces, seed as u8);
    let size = info.len() as u64;
    let mut rng = Rng::new(seed);
    let start = t0();
    let mut now = start;
    let config = FetchConfig {
        requests_per_peer: 1 + (seed % 3) as usize,
        ..FetchConfig::default()
    };
    let mut f = MetadataFetch::new(&magnet_for(&info), config);
    let corrupt = |at: u16| {
        let mut w = info.clone();
        let i = usize::from(at) % w.len();
        w[i] ^= 1;
        w
    };
    for (peer, b) in peers.iter().enumerate() {
        let announced = match *b {
            Behaviour::OtherSize(n) => u64::from(n) + 1,
            Behaviour::Huge => 4 << 30,
            _ => size,
        };
        let _ = f.add_peer(peer as u32, announced, now);
    }
    let mut pending: Vec<(u32, u32)> = Vec::new();
    for _ in 0..10_000 {
        while let Some(a) = f.poll_action() {
            if let Action::Request { peer, piece } = a {
                pending.push((peer, piece));
            }
        }
        if f.outcome().is_some() {
            break;
        }
        if pending.is_empty() {
            match f.poll_timeout() {
                Some(t) => {
                    now = now.max(t);
                    f.handle_timeout(now);
                    continue;
                }
                None => break,
            }
        }
        let at = rng.below(pending.len() as u32) as usize;
        let (peer, piece) = pending.swap_remove(at);
        let reply = match peers[peer as usize] {
            Behaviour::Honest => Some(answer(&info, piece)),
            Behaviour::Corrupt(n) => Some(answer(&corrupt(n), piece)),
            Behaviour::OtherSize(n) => {
                let garbage = vec![b'z'; usize::from(n) + 1];
                Some(answer(&garbage, piece))
            }
            Behaviour::Malformed => Some(MetadataMessage::Data {
                piece,
                total_size: size,
                data: Bytes::from_static(b"short"),
            }),
            Behaviour::Rejects => Some(MetadataMessage::Reject { piece }),
            Behaviour::Silent | Behaviour::Huge => None,
        };
        if let Some(reply) = reply {
            f.on_message(peer, &reply, now);
        }
    }
    match f.outcome() {
        Some(Ok(meta)) => {
            assert_eq!(meta.info_bytes, info);
            assert_eq!(meta.info_hash, f.info_hash());
            true
        }
        Some(Err(e)) => panic!("valid metadata failed to parse: {e:?}"),
        None => false,
    }
}

quickcheck! {
    fn lying_peers_never_yield_wrong_metadata(peers: Vec<Behaviour>, seed: u64) -> bool {
        let mut peers = peers;
        peers.truncate(8);
        let honest = peers.iter().any(|b| matches!(b, Behaviour::Honest));
        let done = run(&peers, seed, 2000 + (seed % 4000) as u32);
        // `run` checks that whatever came is right. With an honest peer it always comes
        // (without one it may too: liars whose errors lie in different pieces can make
        // the right whole between them, which the hash then accepts).
        !honest || done
    }
}

#[test]
fn an_honest_peer_after_many_liars_still_delivers() {
    let mut peers: Vec<_> = (0..6).map(|i| Behaviour::Corrupt(i * 1000)).collect();
    peers.push(Behaviour::Honest);
    for seed in 0..20 {
        assert!(run(&peers, seed, 8000), "seed {seed}");
    }
}
