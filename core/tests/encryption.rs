//! Message stream encryption between engines in memory: each policy against the others,
//! what goes on the wire, and refusals (see `support` for the harness).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use shoal_core::engine::{
    CloseReason, Encryption, Engine, EngineConfig, Event, Input, Output, PeerStream, ProtocolError,
    TorrentOptions,
};
use shoal_core::mse;
use shoal_core::rng::Rng;
use shoal_core::PeerId;
use support::{handshake, make_torrent, Swarm};

const MB: u64 = 1 << 20;

/// A seed with policy `seed_policy` and a leecher with `leech_policy` that dials it.
/// Returns the swarm, the leecher's index, and the data.
fn pair(seed_policy: Encryption, leech_policy: Encryption) -> (Swarm, usize, Vec<u8>) {
    let (meta, data) = make_torrent(&[("f.bin", 700_001)], 32 * 1024);
    let mut swarm = Swarm::new();
    swarm.wire = Some(Vec::new());
    let full = Some(support::full_bitfield(&meta));
    let seed = swarm.add_node(&meta, data.clone(), full, 10 * MB, 3, |c| {
        c.encryption = seed_policy;
    });
    let leech = swarm.add_node(&meta, vec![0; data.len()], None, 10 * MB, 3, |c| {
        c.encryption = leech_policy;
    });
    swarm.introduce(leech, seed);
    (swarm, leech, data)
}

/// How each node's connection went, as its `PeerConnected` says.
fn streams(swarm: &Swarm) -> Vec<PeerStream> {
    swarm
        .nodes
        .iter()
        .flat_map(|n| n.events.iter())
        .filter_map(|e| match e {
            Event::PeerConnected { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn rc4_required_by_the_dialler_carries_the_whole_torrent_encrypted() {
    let (mut swarm, leech, data) = pair(Encryption::Accept, Encryption::Require);
    assert!(swarm.run_until(Duration::from_secs(60), |s| s.is_complete(leech)));
    assert_eq!(swarm.nodes[leech].data, data);
    let wire = swarm.wire.take().unwrap();
    assert!(
        wire.len() as u64 > data.len() as u64,
        "the torrent went over the wire"
    );
    assert!(
        !contains(&wire, b"BitTorrent protocol"),
        "no plaintext handshake"
    );
    assert!(!contains(&wire, &data[1000..1064]), "no plaintext block");
    assert_eq!(streams(&swarm), [PeerStream::Rc4, PeerStream::Rc4]);
}

/// The responder names the torrent from `HASH('req2', info-hash)` among all it has, and
/// a removed torrent is no longer found.
#[test]
fn an_encrypted_dialler_finds_its_torrent_among_several_and_not_a_removed_one() {
    let (mut swarm, leech, data) = pair(Encryption::Accept, Encryption::Require);
    let seed = 0;
    let now = swarm.now;
    for i in 0..3 {
        let (meta, _) = make_torrent(&[(&format!("other-{i}.bin"), 50_000 + i)], 16 * 1024);
        swarm.nodes[seed]
            .engine
            .add_torrent(meta, TorrentOptions::default(), now)
            .unwrap();
    }
    assert!(swarm.run_until(Duration::from_secs(60), |s| s.is_complete(leech)));
    assert_eq!(swarm.nodes[leech].data, data);
    assert_eq!(streams(&swarm), [PeerStream::Rc4, PeerStream::Rc4]);

    // The same torrent removed from the seed: a new encrypted dialler is refused.
    let (mut swarm, leech, _) = pair(Encryption::Accept, Encryption::Require);
    let id = swarm.nodes[seed].torrent;
    let now = swarm.now;
    swarm.nodes[seed].engine.remove_torrent(id, now);
    swarm.run_until(Duration::from_secs(60), |_| false);
    assert!(!swarm.is_complete(leech));
    assert!(
        streams(&swarm).is_empty(),
        "no connection made: {:?}",
        streams(&swarm)
    );
}

#[test]
fn both_offered_to_an_accepting_seed_gives_plaintext_after_mse() {
    let (mut swarm, leech, data) = pair(Encryption::Accept, Encryption::Prefer);
    assert!(swarm.run_until(Duration::from_secs(60), |s| s.is_complete(leech)));
    assert_eq!(swarm.nodes[leech].data, data);
    let wire = swarm.wire.take().unwrap();
    // The BitTorrent handshakes follow MSE in the clear, and so do the blocks; the
    // stream does not start with one (the dialler's first bytes are its MSE key).
    assert!(!wire.starts_with(b"\x13BitTorrent protocol"));
    assert!(contains(&wire, b"BitTorrent protocol"));
    assert!(contains(&wire, &data[1000..1064]));
    assert_eq!(streams(&swarm), [PeerStream::MsePlaintext; 2]);
}

#[test]
fn a_preferring_seed_selects_rc4() {
    let (mut swarm, leech, data) = pair(Encryption::Prefer, Encryption::Prefer);
    assert!(swarm.run_until(Duration::from_secs(60), |s| s.is_complete(leech)));
    assert_eq!(swarm.nodes[leech].data, data);
    let wire = swarm.wire.take().unwrap();
    assert!(!contains(&wire, b"BitTorrent protocol"));
    assert!(!contains(&wire, &data[1000..1064]));
    assert_eq!(streams(&swarm), [PeerStream::Rc4; 2]);
}

#[test]
fn plaintext_dialling_is_unchanged_by_default() {
    let (mut swarm, leech, data) = pair(Encryption::Accept, Encryption::Accept);
    assert!(swarm.run_until(Duration::from_secs(60), |s| s.is_complete(leech)));
    assert_eq!(swarm.nodes[leech].data, data);
    assert!(swarm
        .wire
        .take()
        .unwrap()
        .starts_with(b"\x13BitTorrent protocol"));
    assert_eq!(streams(&swarm), [PeerStream::Plaintext; 2]);
}

fn refused(seed_policy: Encryption, leech_policy: Encryption) -> Vec<CloseReason> {
    let (mut swarm, leech, _) = pair(seed_policy, leech_policy);
    swarm.run_until(Duration::from_secs(5), |_| false);
    assert!(!swarm.is_complete(leech));
    swarm
        .nodes
        .iter()
        .flat_map(|n| n.events.iter())
        .filter_map(|e| match e {
            Event::PeerClosed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_seed_that_requires_rc4_refuses_a_plaintext_dialler() {
    let reasons = refused(Encryption::Require, Encryption::Accept);
    assert!(reasons.contains(&CloseReason::Protocol(ProtocolError::EncryptionPolicy)));
}

#[test]
fn a_seed_with_encryption_off_refuses_an_mse_dialler() {
    let reasons = refused(Encryption::Off, Encryption::Require);
    assert!(reasons.contains(&CloseReason::Protocol(ProtocolError::EncryptionPolicy)));
}

/// A dialler that prefers MSE, refused by a peer that speaks only plaintext, dials it
/// again at once in plaintext and downloads; one that requires RC4 does not.
#[test]
fn a_refused_mse_dial_is_tried_again_in_plaintext_unless_rc4_is_required() {
    let (mut swarm, leech, data) = pair(Encryption::Off, Encryption::Prefer);
    assert!(swarm.run_until(Duration::from_secs(10), |s| s.is_complete(leech)));
    assert_eq!(swarm.nodes[leech].data, data);
    assert_eq!(
        streams(&swarm),
        [PeerStream::Plaintext, PeerStream::Plaintext]
    );
    let refusals = swarm.nodes[0]
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::PeerClosed {
                    reason: CloseReason::Protocol(ProtocolError::EncryptionPolicy),
                    ..
                }
            )
        })
        .count();
    assert_eq!(refusals, 1, "one MSE dial refused, then plaintext");

    let reasons = refused(Encryption::Off, Encryption::Require);
    assert_eq!(
        reasons.len(),
        2,
        "one dial refused, not retried: {reasons:?}"
    );
}

/// A dialler with MSE sends its BitTorrent handshake as MSE's initial payload: the
/// answering end has it with step 3, a round trip before it could select a method and
/// wait for the handshake behind it, and nothing else leaves before step 4 comes back.
#[test]
fn an_mse_dialler_sends_its_handshake_with_step_3() {
    let (meta, _) = make_torrent(&[("f.bin", 100_000)], 16 * 1024);
    let now = shoal_test_clock::epoch();
    let peer_id = PeerId(*b"-SH0010-dialler00000");
    let mut e = Engine::new(EngineConfig {
        peer_id,
        encryption: Encryption::Prefer,
        ..EngineConfig::default()
    });
    let id = e
        .add_torrent(meta.clone(), TorrentOptions::default(), now)
        .unwrap();
    e.add_peer(id, SocketAddr::from(([10, 0, 0, 9], 6881)), now);
    let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    let conn = outs
        .iter()
        .find_map(|o| match o {
            Output::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("a dial");
    let sent = |e: &mut Engine| -> BytesMut {
        let mut bytes = BytesMut::new();
        while let Some(o) = e.poll_output() {
            if let Output::Send { conn: c, data } = o {
                assert_eq!(c, conn);
                bytes.extend_from_slice(&data);
            }
        }
        bytes
    };
    e.handle(Input::Connected { conn }, now);
    let ya = sent(&mut e);
    let info_hash = meta.info_hash;
    let find = |req2: &[u8; 20]| (mse::req2(&info_hash) == *req2).then_some(info_hash);
    let mut b =
        mse::Handshake::responder(mse::Methods::BOTH, mse::Prefer::Plaintext, &mut Rng::new(3));
    let mut yb = BytesMut::new();
    assert!(matches!(
        b.feed(&ya, &mut yb, find),
        Ok(mse::Progress::Pending)
    ));
    e.handle(Input::Received { conn, data: yb }, now);
    let step3 = sent(&mut e);
    let mut step4 = BytesMut::new();
    let Ok(mse::Progress::Done(outcome)) = b.feed(&step3, &mut step4, find) else {
        panic!("the answering end is done with step 3");
    };
    assert_eq!(
        outcome.rest,
        handshake(info_hash, peer_id),
        "step 3 carries the dialler's handshake, and only it"
    );
    // Step 4 (plaintext selected) brings nothing more from the dialler until the answering
    // end's handshake arrives: its own is not sent twice.
    e.handle(Input::Received { conn, data: step4 }, now);
    assert!(sent(&mut e).is_empty());
}
