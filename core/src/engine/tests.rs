//! Tests of the engine's internals: the memory layout of a connection's slot.

use super::conn::Slot;
use super::peer::{Peer, Phase};
use super::TorrentId;
use std::mem::{offset_of, size_of};

/// The bytes at the start of a slot that every message reads (see [`Peer`]).
const HOT_SLOT_BYTES: usize = 192;

/// The fields every message reads (see [`Peer`]) stay in the slot's first three cache
/// lines, and slots start on a line.
#[test]
fn a_messages_fields_share_the_slots_first_lines() {
    assert_eq!(std::mem::align_of::<Slot>(), 64);
    assert_eq!(offset_of!(Slot, generation), 0);
    let end_in_slot = |offset: usize, size: usize| offset_of!(Slot, peer) + offset + size;
    let hot = [
        end_in_slot(offset_of!(Peer, torrent), size_of::<Option<TorrentId>>()),
        end_in_slot(offset_of!(Peer, phase), size_of::<Phase>()),
        end_in_slot(offset_of!(Peer, have_count), size_of::<u32>()),
        end_in_slot(offset_of!(Peer, peer_reqq), size_of::<u32>()),
        end_in_slot(
            offset_of!(Peer, last_received),
            size_of::<std::time::Instant>(),
        ),
        end_in_slot(offset_of!(Peer, decoder), size_of::<crate::wire::Decoder>()),
        end_in_slot(offset_of!(Peer, read_buf), size_of::<bytes::BytesMut>()),
        end_in_slot(offset_of!(Peer, write_buf), size_of::<bytes::BytesMut>()),
        end_in_slot(
            offset_of!(Peer, serve_queue),
            size_of::<std::collections::VecDeque<crate::BlockRequest>>(),
        ),
    ];
    for end in hot {
        assert!(
            end <= HOT_SLOT_BYTES,
            "a hot field ends at byte {end} of the slot"
        );
    }
}
