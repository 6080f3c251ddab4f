//! Message stream encryption between engines in memory: each policy against the others,
//! what goes on the wire, and refusals (see `support` for the harness).

mod support;

use std::time::Duration;

use shoal_core::engine::{
    CloseReason, Encryption, Event, PeerStream, ProtocolError, TorrentOptions,
};
use support::{make_torrent, Swarm};

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
