//! The receive path: a connection's bytes through the handshake (an inbound connection
//! is routed to its torrent by the info-hash) and the message decoder, each message's
//! effect on the peer, the picker and the choker's bookkeeping, then the work that follows
//! a batch of messages (interest, requests, serving).

use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use crate::bitfield::Bitfield;
use crate::wire::{ExtendedHandshake, Handshake, Message};
use crate::PieceIndex;

use super::extension;
use super::peer::{Peer, Phase};
use super::{consistent, CloseReason, ConnId, Engine, Event, Output, ProtocolError, TorrentId};
impl Engine {
    pub(super) fn on_received(&mut self, conn: ConnId, mut data: BytesMut, now: Instant) {
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        p.last_received = now;
        if p.encrypted {
            super::encryption::decrypt(p, &mut data);
        } else if p.phase == Phase::Handshake {
            // Before the BitTorrent handshake: plaintext or MSE (see `encryption`).
            let Some(plain) = self.before_handshake(conn, data, now) else {
                return;
            };
            data = plain;
        }
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        let mut across = None;
        // What follows a partial message completed from the head of `data`, read after it.
        let mut rest = None;
        if p.read_buf.is_empty() {
            p.read_buf = data;
        } else {
            let contiguous =
                p.read_buf.as_ptr() as usize + p.read_buf.len() == data.as_ptr() as usize;
            if contiguous || p.phase != Phase::Active {
                // O(1) when `data` follows the partial message in the same allocation (a
                // runtime reading into one buffer and splitting chunks off it).
                p.read_buf.unsplit(data);
            } else {
                // Joining would copy all of `data` (a runtime's new read buffer, a
                // simulator's shared one). A block whose header ended the last chunk and
                // whose data starts this one is taken as it is; otherwise only the bytes
                // that end the partial message are copied, and the rest is read in place
                // after it.
                match p.decoder.decode_across(&mut p.read_buf, &mut data) {
                    Ok(message) => across = message,
                    Err(e) => {
                        self.close(conn, CloseReason::from(e));
                        return;
                    }
                }
                if across.is_some() {
                    p.read_buf = data;
                } else {
                    complete_from(&mut p.read_buf, &mut data);
                    if !data.is_empty() {
                        rest = Some(data);
                    }
                }
            }
        }
        // Whether anything was read: bytes that only add to a partial message change nothing
        // the follow-up work looks at.
        let mut read = across.is_some();
        if let Some(message) = across {
            if let Err(reason) = self.on_message(conn, message, now) {
                self.close(conn, reason);
                return;
            }
        } else if p.phase == Phase::Handshake {
            match self.read_handshake(conn, now) {
                Ok(true) => read = true,
                Ok(false) => return,
                Err(reason) => {
                    self.close(conn, reason);
                    return;
                }
            }
        }
        loop {
            let Some(p) = self.peer_mut(conn) else {
                return;
            };
            let message = match p.decoder.decode(&mut p.read_buf) {
                Ok(Some(m)) => m,
                Ok(None) => match rest.take() {
                    // The completed message was read: what followed it is next.
                    Some(r) => {
                        p.read_buf.unsplit(r);
                        continue;
                    }
                    None => break,
                },
                Err(e) => {
                    self.close(conn, CloseReason::from(e));
                    return;
                }
            };
            read = true;
            if let Err(reason) = self.on_message(conn, message, now) {
                self.close(conn, reason);
                return;
            }
        }
        if let Some(p) = self.peer_mut(conn) {
            if p.read_buf.is_empty() {
                // Let go of the read buffer's memory until the next bytes come.
                p.read_buf = BytesMut::new();
            }
        }
        if read {
            self.after_messages(conn, now);
        }
    }

    /// Reads the peer's handshake once it is whole. `Ok(true)`: done, messages may follow.
    fn read_handshake(&mut self, conn: ConnId, now: Instant) -> Result<bool, CloseReason> {
        let our_id = self.config.peer_id;
        let p = self.peer_mut(conn).ok_or(CloseReason::Remote)?;
        // Route an inbound connection as soon as the info-hash is in.
        if p.torrent.is_none() {
            let info_hash = match crate::wire::Handshake::peek_info_hash(&p.read_buf) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(false),
                Err(e) => return Err(CloseReason::from(e)),
            };
            let id = *self
                .by_info_hash
                .get(&info_hash)
                .ok_or(CloseReason::UnknownTorrent)?;
            let max = self.config.max_peers_per_torrent;
            let full = self
                .swarm_mut(id)
                .ok_or(CloseReason::UnknownTorrent)?
                .peers
                .len()
                >= max;
            if full && !self.evict_useless_peer(id) {
                return Err(CloseReason::TooManyConnections);
            }
            let addr = self.peer(conn).map(|p| p.addr).ok_or(CloseReason::Remote)?;
            let t = self.swarm_mut(id).ok_or(CloseReason::UnknownTorrent)?;
            if t.bans.is_banned(addr.ip()) {
                return Err(CloseReason::Banned);
            }
            t.peers.push(conn);
            if let Some(p) = self.peer_mut(conn) {
                p.torrent = Some(id);
            }
        }
        let p = self.peer_mut(conn).ok_or(CloseReason::Remote)?;
        let hs = match Handshake::decode(&mut p.read_buf) {
            Ok(Some(hs)) => hs,
            Ok(None) => return Ok(false),
            Err(e) => return Err(CloseReason::from(e)),
        };
        let id = p.torrent.ok_or(CloseReason::UnknownTorrent)?;
        if hs.peer_id == our_id {
            return Err(CloseReason::SelfConnection);
        }
        let info_hash = self.info_hash_of(id).ok_or(CloseReason::UnknownTorrent)?;
        if hs.info_hash != info_hash {
            return Err(CloseReason::Protocol(ProtocolError::OtherTorrent));
        }
        let peers = match self.torrent(id) {
            Some(t) => &t.peers,
            None => {
                &self
                    .fetching
                    .get(&id)
                    .ok_or(CloseReason::UnknownTorrent)?
                    .peers
            }
        };
        let duplicate = peers.iter().copied().find(|&other| {
            other != conn && self.peer(other).and_then(|o| o.cold.peer_id) == Some(hs.peer_id)
        });
        if let Some(other) = duplicate {
            // Two peers that dialled each other at once (both heard of the other, from PEX
            // say) must keep the same connection, or each closes the one the other kept:
            // the one dialled by the lower peer id stays.
            let outbound = self.peer(conn).is_some_and(|p| p.cold.outbound);
            let other_outbound = self.peer(other).is_some_and(|p| p.cold.outbound);
            let keep_ours = our_id.0 < hs.peer_id.0;
            if outbound != other_outbound && outbound == keep_ours {
                self.close(other, CloseReason::Duplicate);
            } else {
                return Err(CloseReason::Duplicate);
            }
        }
        // Unknown while a magnet's metadata is fetched: set when it comes (see `magnet`).
        let piece_count = self.torrent(id).map(|t| t.meta.info.piece_count());
        let p = self.peer_mut(conn).ok_or(CloseReason::Remote)?;
        p.cold.peer_id = Some(hs.peer_id);
        p.fast = hs.reserved.supports_fast();
        p.cold.extensions = hs.reserved.supports_extensions();
        p.phase = Phase::Active;
        p.cold.phase_since = now;
        if let Some(n) = piece_count {
            p.decoder.set_piece_count(n);
        }
        let addr = p.addr;
        let stream = p.cold.stream.kind();
        if !p.cold.sent_handshake {
            self.send_handshake(conn, now);
        }
        if let Some(t) = self.swarm_mut(id) {
            t.candidates.established(&addr);
        }
        if piece_count.is_some() {
            self.start_session(conn, id, now);
        } else {
            self.start_fetching_session(conn, now);
        }
        self.outputs.push_back(Output::Event(Event::PeerConnected {
            torrent: id,
            conn,
            addr,
            peer_id: hs.peer_id,
            stream,
        }));
        Ok(true)
    }

    /// Makes room for a newcomer by closing a connection that is useless both ways (we
    /// want nothing from it and it wants nothing from us). Without this, the first peers
    /// of a swarm fill each other's slots and later ones form groups cut off from the seed.
    fn evict_useless_peer(&mut self, id: TorrentId) -> bool {
        let Some(t) = self.torrent(id) else {
            return false;
        };
        let useless = t.peers.iter().copied().find(|&c| {
            self.peer(c)
                .is_some_and(|p| p.phase == Phase::Active && !p.am_interested && !p.peer_interested)
        });
        match useless {
            Some(conn) => {
                self.close(conn, CloseReason::TooManyConnections);
                true
            }
            None => false,
        }
    }

    /// After both handshakes: tell the peer what we have, register it with the picker.
    fn start_session(&mut self, conn: ConnId, id: TorrentId, now: Instant) {
        let client = self.config.client_name.clone();
        let pex = self.config.pex;
        let port = self.config.listen_port;
        let reqq = self.config.max_serve_queue;
        let Some((p, t)) = self.both(conn) else {
            return;
        };
        p.key = t.keys.take_once(p.key, conn);
        consistent(&mut t.faults, t.picker.add_peer(p.key));
        let verified = t.store.verified();
        let message = if p.fast && verified.is_full() {
            Message::HaveAll
        } else if p.fast && verified.count_ones() == 0 {
            Message::HaveNone
        } else if verified.count_ones() > 0 {
            Message::Bitfield(Bytes::from(verified.to_wire()))
        } else {
            // Without the fast extension, an empty bitfield may simply be left out.
            Message::KeepAlive
        };
        if message != Message::KeepAlive {
            p.send(&message);
        }
        p.cold.metadata_budget = extension::metadata_budget(t.meta.info_bytes.len());
        if p.cold.extensions {
            let hs = ExtendedHandshake {
                extensions: extension::our_extensions(pex && !t.meta.info.private),
                listen_port: Some(port),
                client: Some(client),
                reqq: Some(reqq as u32),
                metadata_size: Some(t.meta.info_bytes.len() as u64),
                ..ExtendedHandshake::default()
            };
            p.send(&Message::Extended {
                id: 0,
                payload: hs.encode(),
            });
        }
        p.last_sent = now;
        self.mark_dirty(conn);
        self.arm_conn_deadline(conn);
        self.pex_list(conn);
        let _ = id;
    }

    /// Handles one message; `Err` closes the connection with that reason.
    fn on_message(
        &mut self,
        conn: ConnId,
        message: Message,
        now: Instant,
    ) -> Result<(), CloseReason> {
        if self.is_fetching_peer(conn) {
            return self.on_fetching_message(conn, message, now);
        }
        let (p, t) = self.both(conn).ok_or(CloseReason::Remote)?;
        // The bitfield comes first, but the extended handshake may precede it (libtorrent
        // sends it straight after the handshake) and keep-alives mean nothing.
        let first = !p.got_message;
        if !matches!(message, Message::Extended { .. } | Message::KeepAlive) {
            p.got_message = true;
        }
        let key = p.key;
        let piece_count = t.meta.info.piece_count();
        let fast_only = |p: &Peer, what: &'static str| {
            if p.fast {
                Ok(())
            } else {
                Err(CloseReason::Protocol(ProtocolError::NotFast(what)))
            }
        };
        match message {
            Message::KeepAlive => {}
            Message::Choke => {
                p.peer_choking = true;
                if !p.fast {
                    // Without BEP 6, a choke drops every pending request.
                    t.refill_wanted |= !p.requests.is_empty();
                    for o in p.requests.drain(..) {
                        consistent(&mut t.faults, t.picker.abort_request(key, o.block));
                    }
                }
            }
            Message::Unchoke => {
                p.peer_choking = false;
                p.last_block = now;
            }
            Message::Interested => {
                if !p.peer_interested {
                    p.peer_interested = true;
                    t.interested.push(conn);
                }
                // A free unchoke slot goes to it now rather than at the next rechoke.
                t.rechoke_wanted = true;
            }
            Message::NotInterested => {
                if p.peer_interested {
                    p.peer_interested = false;
                    t.interested.retain(|c| *c != conn);
                }
                // Its unchoke slot may go to someone who wants it.
                t.rechoke_wanted |= !p.am_choking;
            }
            Message::Have(piece) => {
                if piece.0 >= piece_count {
                    return Err(CloseReason::Protocol(ProtocolError::HaveOutOfRange(piece)));
                }
                if t.picker.peer_have(key, piece) == Ok(true) {
                    p.have_count += 1;
                    if p.have_count == piece_count {
                        Engine::pex_seed(p, t);
                    }
                }
            }
            Message::Bitfield(bytes) => {
                let field = Bitfield::from_wire(&bytes, piece_count).map_err(CloseReason::from)?;
                if first {
                    p.have_count = field.count_ones();
                    consistent(&mut t.faults, t.picker.peer_bitfield(key, &field));
                } else {
                    // aria2 sends a bitfield mid-connection; most clients read it as a
                    // batch of haves, and so do we (never as a loss of pieces).
                    for piece in field.iter_ones() {
                        if t.picker.peer_have(key, PieceIndex(piece)) == Ok(true) {
                            p.have_count += 1;
                        }
                    }
                }
                if p.is_seed(piece_count) {
                    Engine::pex_seed(p, t);
                }
            }
            Message::HaveAll => {
                fast_only(p, "have all")?;
                // Like a late bitfield, a late have-all is read for what it says.
                p.have_count = piece_count;
                consistent(&mut t.faults, t.picker.peer_have_all(key));
                Engine::pex_seed(p, t);
            }
            Message::HaveNone => {
                fast_only(p, "have none")?;
            }
            Message::Request(block) => {
                self.on_request(conn, block)?;
            }
            Message::Cancel(block) => {
                p.serve_queue.cancel(block);
                if let Some(r) = p.reading.iter_mut().find(|(b, _)| *b == block) {
                    r.1 = true;
                }
            }
            Message::Piece { piece, begin, data } => {
                self.on_piece(conn, piece, begin, data, now)?;
            }
            Message::Reject(block) => {
                fast_only(p, "reject")?;
                if let Some(at) = p.requests.iter().position(|o| o.block == block) {
                    p.requests.remove(at);
                    consistent(&mut t.faults, t.picker.abort_request(key, block));
                    t.refill_wanted = true;
                }
            }
            Message::AllowedFast(piece) => {
                fast_only(p, "allowed fast")?;
                if p.cold.allowed_fast.len() < 64 && !p.cold.allowed_fast.contains(&piece) {
                    p.cold.allowed_fast.push(piece);
                }
            }
            Message::Suggest(_) => fast_only(p, "suggest")?,
            Message::Port(_) => {}
            Message::Extended { id, payload } => {
                if id == 0 {
                    // An unreadable extended handshake is not worth a disconnect: it only
                    // costs us what we would have read from it.
                    if let Ok(hs) = ExtendedHandshake::decode(&payload) {
                        self.on_extended_handshake(conn, &hs);
                    }
                } else {
                    self.on_extension_message(conn, id, &payload, now);
                }
            }
        }
        Ok(())
    }

    /// Work that follows a batch of messages: interest, requests, serving.
    fn after_messages(&mut self, conn: ConnId, now: Instant) {
        self.update_interest(conn);
        self.fill_requests(conn, now);
        self.pump_reads(conn, now);
        if self.peer(conn).is_some() {
            self.mark_dirty(conn);
            self.close_if_both_seeds(conn);
        }
    }

    pub(super) fn close_if_both_seeds(&mut self, conn: ConnId) {
        let Some((p, t)) = self.both(conn) else {
            return;
        };
        if p.phase == Phase::Active && t.is_complete() && p.is_seed(t.meta.info.piece_count()) {
            self.close(conn, CloseReason::BothSeeds);
        }
    }

    pub(super) fn update_interest(&mut self, conn: ConnId) {
        let Some((p, t)) = self.both(conn) else {
            return;
        };
        if p.phase != Phase::Active {
            return;
        }
        let want = !t.is_complete() && !t.storage_error && t.picker.is_interesting(p.key);
        if want != p.am_interested {
            p.am_interested = want;
            p.send(if want {
                &Message::Interested
            } else {
                &Message::NotInterested
            });
            self.mark_dirty(conn);
        }
    }
}

/// Moves to the end of `partial` (the start of one wire message, incomplete) the bytes at
/// the front of `next` that complete it, and no more: at most one message's worth is
/// copied, whatever follows stays in `next`. All of `next` if that does not complete it.
fn complete_from(partial: &mut BytesMut, next: &mut BytesMut) {
    const PREFIX: usize = 4;
    if partial.len() < PREFIX {
        let take = (PREFIX - partial.len()).min(next.len());
        partial.extend_from_slice(&next[..take]);
        next.advance(take);
        if partial.len() < PREFIX {
            return;
        }
    }
    let len = u32::from_be_bytes([partial[0], partial[1], partial[2], partial[3]]) as usize;
    let take = (PREFIX + len).saturating_sub(partial.len()).min(next.len());
    partial.extend_from_slice(&next[..take]);
    next.advance(take);
}
