//! Tests of the engine's internals: the memory layout of a connection's slot, each
//! torrent's peer keys, the count of picker calls refused.

use super::conn::Slot;
use super::peer::{Peer, Phase};
use super::TorrentId;
use std::mem::{offset_of, size_of};

/// The bytes at the start of a slot that every message reads (see [`Peer`]).
const HOT_SLOT_BYTES: usize = 192;
/// The bytes at the start of a slot that blocks both ways and the choker read.
const WARM_SLOT_BYTES: usize = 384;
/// A whole slot: the cold part stays behind its pointer.
const SLOT_BYTES: usize = 512;

fn end_in_slot(offset: usize, size: usize) -> usize {
    offset_of!(Slot, peer) + offset + size
}

/// The fields every message reads (see [`Peer`]) stay in the slot's first three cache
/// lines, and slots start on a line.
#[test]
fn a_messages_fields_share_the_slots_first_lines() {
    assert_eq!(std::mem::align_of::<Slot>(), 64);
    assert_eq!(offset_of!(Slot, generation), 0);
    let hot = [
        end_in_slot(offset_of!(Peer, torrent), size_of::<Option<TorrentId>>()),
        end_in_slot(offset_of!(Peer, phase), size_of::<Phase>()),
        end_in_slot(offset_of!(Peer, fast), size_of::<bool>()),
        end_in_slot(offset_of!(Peer, have_count), size_of::<u32>()),
        end_in_slot(offset_of!(Peer, peer_reqq), size_of::<u16>()),
        end_in_slot(
            offset_of!(Peer, last_received),
            size_of::<std::time::Instant>(),
        ),
        end_in_slot(offset_of!(Peer, decoder), size_of::<crate::wire::Decoder>()),
        end_in_slot(offset_of!(Peer, read_buf), size_of::<bytes::BytesMut>()),
        end_in_slot(offset_of!(Peer, write_buf), size_of::<bytes::BytesMut>()),
        end_in_slot(
            offset_of!(Peer, serve_queue),
            size_of::<super::serve::ServeQueue>(),
        ),
    ];
    for end in hot {
        assert!(
            end <= HOT_SLOT_BYTES,
            "a hot field ends at byte {end} of the slot"
        );
    }
}

/// What a block received or sent and the choker read follows in the next lines; the
/// rest is not in the slot, which stays well under the ~640 bytes it had with everything.
#[test]
fn blocks_read_the_next_lines_and_the_slot_is_small() {
    let warm = [
        end_in_slot(offset_of!(Peer, requests), 32),
        end_in_slot(
            offset_of!(Peer, last_block),
            size_of::<std::time::Instant>(),
        ),
        end_in_slot(offset_of!(Peer, down), size_of::<crate::rate::RateMeter>()),
        end_in_slot(offset_of!(Peer, up), size_of::<crate::rate::RateMeter>()),
        end_in_slot(offset_of!(Peer, addr), size_of::<core::net::SocketAddr>()),
    ];
    for end in warm {
        assert!(
            end <= WARM_SLOT_BYTES,
            "a field of the block path ends at byte {end} of the slot"
        );
    }
    assert!(
        size_of::<Slot>() <= SLOT_BYTES,
        "a slot takes {} bytes",
        size_of::<Slot>()
    );
}

/// Refused picker calls are counted and reported once with the first error, then the count
/// starts again; nothing is reported when none was refused.
#[test]
fn refused_picker_calls_are_counted_until_reported() {
    use super::Disagreements;
    use crate::picker::PickerError;
    use crate::PieceIndex;
    let mut d = Disagreements::default();
    assert_eq!(d.take(), None);
    d.record(PickerError::PieceOutOfRange(PieceIndex(7)));
    d.record(PickerError::PieceOutOfRange(PieceIndex(9)));
    assert_eq!(
        d.take(),
        Some((2, PickerError::PieceOutOfRange(PieceIndex(7))))
    );
    assert_eq!(d.take(), None);
    d.record(PickerError::PieceOutOfRange(PieceIndex(1)));
    assert_eq!(
        d.take(),
        Some((1, PickerError::PieceOutOfRange(PieceIndex(1))))
    );
}

/// A torrent's peers are keyed by the torrent, densely, not by the engine's connection
/// slots: a torrent whose one peer came after many of another torrent's still keys it 0,
/// so its picker's and choker's tables stay the size of its own swarm; keys are reused.
#[test]
fn each_torrent_keys_its_own_peers_densely() {
    use super::keys::NO_KEY;
    use super::{Engine, EngineConfig, Input, TorrentOptions};
    use crate::create::TorrentBuilder;
    use crate::metainfo::Metainfo;
    use crate::wire::{Handshake, Reserved};
    use crate::{PeerId, PeerKey};
    use std::sync::Arc;

    let meta = |name: &str| {
        let data = vec![name.len() as u8; 40_000];
        let mut b = TorrentBuilder::single_file(name, data.len() as u64);
        b.piece_length(16 * 1024);
        let mut h = b.start().unwrap();
        h.update(&data);
        Arc::new(Metainfo::parse(&h.finish().unwrap()).unwrap())
    };
    let (a, b) = (meta("a.bin"), meta("bb.bin"));
    let now = shoal_test_clock::epoch();
    let mut e = Engine::new(EngineConfig::default());
    e.add_torrent(a.clone(), TorrentOptions::default(), now)
        .unwrap();
    e.add_torrent(b.clone(), TorrentOptions::default(), now)
        .unwrap();
    let mut n = 0u16;
    let mut join = |e: &mut Engine, meta: &Metainfo| {
        n += 1;
        let conn = e
            .accept(core::net::SocketAddr::from(([192, 0, 2, 1], n)), now)
            .unwrap();
        assert_eq!(e.peer(conn).unwrap().key, NO_KEY);
        let mut data = bytes::BytesMut::new();
        Handshake {
            reserved: Reserved::ours(),
            info_hash: meta.info_hash,
            peer_id: PeerId([n as u8; 20]),
        }
        .encode(&mut data);
        e.handle(Input::Received { conn, data }, now);
        while e.poll_output().is_some() {}
        conn
    };
    let on_a: Vec<_> = (0..30).map(|_| join(&mut e, &a)).collect();
    let first_on_b = join(&mut e, &b);
    assert!(first_on_b.slot >= 30);
    let keys: Vec<PeerKey> = on_a.iter().map(|&c| e.peer(c).unwrap().key).collect();
    assert_eq!(keys, (0..30).map(PeerKey).collect::<Vec<_>>());
    assert_eq!(e.peer(first_on_b).unwrap().key, PeerKey(0));
    // A peer of `a` leaves: its key goes to the next one of `a`.
    e.handle(Input::Closed { conn: on_a[7] }, now);
    while e.poll_output().is_some() {}
    let next_on_a = join(&mut e, &a);
    assert_eq!(e.peer(next_on_a).unwrap().key, PeerKey(7));
    let second_on_b = join(&mut e, &b);
    assert_eq!(e.peer(second_on_b).unwrap().key, PeerKey(1));
}
