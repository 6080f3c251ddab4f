//! BEP 10 extension messages after the extended handshake: the ids we announce, what we
//! read from a peer's handshake, and the `ut_metadata` requests we answer from the
//! torrent's own `info` bytes (BEP 9, serving side; see [`crate::metadata`]).
//!
//! `ut_pex` messages go to `pex`.
//!
//! Every torrent serves its metadata, private ones too: BEP 9 does not forbid it, and
//! libtorrent does the same (the metadata of a private torrent reaches only peers that
//! already know its info-hash and got through its tracker).
//!
//! A `ut_metadata` message we cannot read, or data and rejects we did not ask for (we do
//! not fetch metadata yet), are ignored rather than closing the connection: they cost
//! nothing, and BEP 9 asks that unknown message types be ignored.

use bytes::Bytes;

use crate::metadata::{MetadataMessage, ServeBudget};
use crate::wire::{ExtendedHandshake, Message};

use super::{ConnId, Engine};

/// The id under which we want `ut_metadata` messages (our handshake's `m`).
pub(crate) const UT_METADATA_ID: u8 = 1;

/// What our extended handshake's `m` announces: `ut_metadata` always, `ut_pex` for a
/// torrent that uses PEX (see `pex`).
pub(crate) fn our_extensions(pex: bool) -> smallvec::SmallVec<[(String, u8); 4]> {
    let mut m = smallvec::smallvec![(crate::metadata::EXTENSION_NAME.to_owned(), UT_METADATA_ID)];
    if pex {
        m.push((crate::pex::EXTENSION_NAME.to_owned(), super::pex::UT_PEX_ID));
    }
    m
}

impl Engine {
    /// What we keep of a peer's extended handshake.
    pub(super) fn on_extended_handshake(&mut self, conn: ConnId, hs: &ExtendedHandshake) {
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        if let Some(reqq) = hs.reqq {
            // At most 2,000: fits its `u16`.
            p.peer_reqq = reqq.clamp(1, 2000) as u16;
        }
        // A later handshake may turn it off (id 0, read as absent).
        p.cold.ut_metadata = hs
            .extension_id(crate::metadata::EXTENSION_NAME)
            .unwrap_or(0);
        if hs.listen_port.is_some() {
            p.cold.listen_port = hs.listen_port;
        }
        let pex = hs.extension_id(crate::pex::EXTENSION_NAME).unwrap_or(0);
        // Where a peer that reached us listens may be known only now.
        self.pex_list(conn);
        self.on_pex_offer(conn, pex);
    }

    /// An extended message under one of our ids (other than the handshake's 0).
    pub(super) fn on_extension_message(
        &mut self,
        conn: ConnId,
        id: u8,
        payload: &Bytes,
        now: std::time::Instant,
    ) {
        if id == super::pex::UT_PEX_ID {
            self.on_pex_message(conn, payload, now);
        } else if id == UT_METADATA_ID {
            if let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(payload) {
                self.on_metadata_request(conn, piece);
            }
        }
    }

    /// Answers a request for a piece of our metadata: the piece, or a reject past its end,
    /// once the connection's budget is spent, or while its send buffer is full.
    fn on_metadata_request(&mut self, conn: ConnId, piece: u32) {
        let send_buffer = self.config.send_buffer;
        let Some((p, t)) = self.both(conn) else {
            return;
        };
        // A peer that did not announce ut_metadata has no id to answer under.
        if p.cold.ut_metadata == 0 {
            return;
        }
        let reply = if p.unsent + p.write_buf.len() >= send_buffer {
            MetadataMessage::Reject { piece }
        } else {
            p.cold.metadata_budget.on_request(&t.meta.info_bytes, piece)
        };
        p.send(&Message::Extended {
            id: p.cold.ut_metadata,
            payload: reply.encode(),
        });
        self.mark_dirty(conn);
    }
}

/// The budget a connection starts with for a torrent whose metadata is `size` bytes.
pub(super) fn metadata_budget(size: usize) -> ServeBudget {
    ServeBudget::new(size as u64)
}
