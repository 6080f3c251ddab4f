//! Connections: the slots behind every [`ConnId`] (a generation per slot, so a late
//! input for a closed connection is recognised), dialling a torrent's candidates,
//! accepting, closing (a closed connection's requests go back to the picker, and its
//! address waits before it is dialled again), and the write buffers handed to the runtime
//! at the end of each call.

use core::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::wire::{Handshake, Reserved};
use crate::PeerKey;

use super::bans::Bans;
use super::candidates::{Candidates, Ending};
use super::peer::{Peer, Phase};
use super::{
    consistent, peer_in, CloseReason, ConnId, Engine, Event, Output, ProtocolError, TorrentId,
};
/// Cache-line aligned, with the generation first: the check of a connection's generation
/// and its peer's hot fields share the slot's first lines (see [`Peer`]).
#[repr(C, align(64))]
pub(super) struct Slot {
    pub(super) generation: u32,
    pub(super) peer: Option<Peer>,
}

/// The part of a torrent that dialling and routing touch, whether its metainfo is known
/// (a [`super::torrent::Torrent`]) or still being fetched (a [`super::magnet::Fetching`]).
pub(super) struct SwarmMut<'a> {
    pub(super) peers: &'a mut Vec<ConnId>,
    pub(super) candidates: &'a mut Candidates,
    pub(super) bans: &'a Bans,
    /// Dialling is stopped (a storage error).
    pub(super) halted: bool,
    /// The torrent is complete: seeds are not dialled.
    pub(super) seeding: bool,
}

/// Flushes of up to this many bytes are copied out of the write buffer (see `flush`).
const COPY_FLUSH_MAX: usize = 256;

/// How many send buffers' worth may wait for a peer before it is taken for one that does
/// not read.
const UNSENT_BUFFERS: usize = 4;

impl Engine {
    /// A connection was accepted by the runtime. Returns its id, or `None` when the
    /// engine is at its connection limit (close the socket).
    pub fn accept(&mut self, addr: SocketAddr, now: Instant) -> Option<ConnId> {
        if self.connections >= self.config.max_connections {
            return None;
        }
        let conn = self.new_conn(addr, false, None, now);
        Some(conn)
    }

    /// Tells the engine of a peer address for a torrent (from a tracker, the user, PEX, …);
    /// it is dialled when a connection slot is free. A torrent remembers at most
    /// [`EngineConfig::max_candidates`](super::EngineConfig::max_candidates) addresses.
    pub fn add_peer(&mut self, id: TorrentId, addr: SocketAddr, now: Instant) {
        self.learn_peer(id, addr, false, now);
    }

    /// [`add_peer`](Self::add_peer) for an address said to be a seed (`seed`: a PEX flag).
    pub(super) fn learn_peer(&mut self, id: TorrentId, addr: SocketAddr, seed: bool, now: Instant) {
        let Some(t) = self.swarm_mut(id) else {
            return;
        };
        if t.bans.is_banned(addr.ip()) || !t.candidates.learn(addr, seed) {
            return;
        }
        self.dial(id, now);
    }

    fn new_conn(
        &mut self,
        addr: SocketAddr,
        outbound: bool,
        torrent: Option<TorrentId>,
        now: Instant,
    ) -> ConnId {
        let slot = self.take_slot();
        let s = &mut self.slots[slot as usize];
        let conn = ConnId {
            slot,
            generation: s.generation,
        };
        s.peer = Some(Peer::new(
            conn,
            addr,
            outbound,
            torrent,
            self.config.max_message_len,
            now,
        ));
        self.connections += 1;
        self.arm_conn_deadline(conn);
        conn
    }

    /// A free slot (a new one if none is free), its generation moved on so that no id of
    /// its previous use matches a later one.
    pub(super) fn take_slot(&mut self) -> u32 {
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    peer: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        slot
    }

    /// Dials queued candidates of a torrent while it has room.
    pub(super) fn dial(&mut self, id: TorrentId, now: Instant) {
        let max = self.config.max_peers_per_torrent;
        while self.connections < self.config.max_connections {
            let Some(t) = self.swarm_mut(id) else {
                return;
            };
            if t.peers.len() >= max || t.halted {
                return;
            }
            let bans = &t.bans;
            let Some(addr) = t
                .candidates
                .next(now, t.seeding, |a| bans.is_banned(a.ip()))
            else {
                return;
            };
            let plain = t.candidates.dial_plain(&addr);
            let conn = self.new_conn(addr, true, Some(id), now);
            if plain {
                // Its peer refused our MSE dial: `start_encryption` leaves this one plain.
                if let Some(p) = self.peer_mut(conn) {
                    p.cold.stream = super::encryption::Stream::Plain;
                }
            }
            if let Some(t) = self.swarm_mut(id) {
                t.peers.push(conn);
            }
            self.outputs.push_back(Output::Connect { conn, addr });
        }
    }

    pub(super) fn on_connected(&mut self, conn: ConnId, now: Instant) {
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        if p.phase != Phase::Connecting {
            return;
        }
        p.phase = Phase::Handshake;
        p.cold.phase_since = now;
        p.cold.connected_at = now;
        p.last_received = now;
        if !self.start_encryption(conn) {
            self.send_handshake(conn, now);
        }
        self.arm_conn_deadline(conn);
    }

    pub(super) fn send_handshake(&mut self, conn: ConnId, now: Instant) {
        let peer_id = self.config.peer_id;
        let Some(p) = self.peer(conn) else {
            return;
        };
        let Some(id) = p.torrent else {
            return;
        };
        let Some(info_hash) = self.info_hash_of(id) else {
            return;
        };
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        our_handshake(info_hash, peer_id).encode(&mut p.write_buf);
        p.cold.sent_handshake = true;
        p.last_sent = now;
        self.mark_dirty(conn);
    }

    /// Queues the connection for a flush at the end of this call (once, however many
    /// messages it gets: a flag on the peer, not a search of the list).
    pub(super) fn mark_dirty(&mut self, conn: ConnId) {
        if let Some(p) = peer_in(&mut self.slots, conn) {
            if !p.flush_queued {
                p.flush_queued = true;
                self.dirty.push(conn);
            }
        }
    }

    /// Hands a connection's buffered bytes to the runtime.
    pub(super) fn flush(&mut self, conn: ConnId) {
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        if p.write_buf.is_empty() {
            return;
        }
        if p.encrypted {
            super::encryption::encrypt_write_buf(p);
        }
        // A few small messages are copied out and the buffer kept for the next ones:
        // splitting them off would share the buffer, and the share's count, on a line of
        // its own, is written at the split and read again before the next write (a cache
        // miss each when many connections are busy). Longer runs are split off, not
        // copied. (Taking the buffer and starting a fresh one per flush was measured
        // slower: a piece's `have` to every peer makes dozens of growing buffers at once.)
        let data = if p.write_buf.len() <= COPY_FLUSH_MAX {
            let data = Bytes::copy_from_slice(&p.write_buf);
            p.write_buf.clear();
            data
        } else {
            p.write_buf.split().freeze()
        };
        p.unsent += data.len();
        // What waits for a peer is bounded: blocks by the send buffer (see `pump_reads`),
        // messages by this. A peer whose socket takes nothing while it keeps asking
        // (rejects to a choked request flood) is closed rather than buffered for.
        let unsent = p.unsent;
        self.outputs.push_back(Output::Send { conn, data });
        if unsent > self.config.send_buffer.saturating_mul(UNSENT_BUFFERS) {
            self.close(
                conn,
                CloseReason::Protocol(ProtocolError::NotReading { unsent }),
            );
        }
    }

    pub(super) fn flush_all(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for conn in &dirty {
            if let Some(p) = self.peer_mut(*conn) {
                p.flush_queued = false;
            }
            self.flush(*conn);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Closes a connection and tells the runtime to.
    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.close_inner(conn, reason, true);
    }

    pub(super) fn close_inner(&mut self, conn: ConnId, reason: CloseReason, tell_runtime: bool) {
        let Some(slot) = self.slots.get_mut(conn.slot as usize) else {
            return;
        };
        if slot.generation != conn.generation {
            return;
        }
        let Some(peer) = slot.peer.take() else {
            return;
        };
        let redial = self.config.redial_after;
        // An MSE dial refused is tried again in plaintext, where the policy allows it.
        let retry_plain = self.config.encryption == super::Encryption::Prefer;
        self.free_slots.push(conn.slot);
        self.connections -= 1;
        self.disarm_conn(conn);
        self.dirty.retain(|c| *c != conn);
        let mut was_seed = false;
        if let Some(id) = peer.torrent {
            if let Some(t) = self.torrent_mut(id) {
                was_seed = peer.is_seed(t.meta.info.piece_count());
                if peer.peer_interested {
                    t.interested.retain(|c| *c != conn);
                }
                if peer.key != super::keys::NO_KEY {
                    t.choker.forget(peer.key);
                    // Also aborts its requests: the blocks become free for others.
                    consistent(&mut t.faults, t.picker.remove_peer(peer.key));
                    t.keys.release(peer.key);
                    t.refill_wanted |= !peer.requests.is_empty();
                }
                t.rechoke_wanted |= !peer.am_choking;
            }
            self.pex_unlist(id, &peer);
            self.forget_metadata_source(id, conn, super::magnet::now_of(&peer));
            if let Some(t) = self.swarm_mut(id) {
                t.peers.retain(|c| *c != conn);
                // Whatever ended it, wait before dialling again, so a peer that drops us
                // at once is not hammered; a seed while we seed, a peer we banned, or
                // ourselves, is not dialled again at all. The one exception: an MSE dial
                // that ended before the MSE handshake did is made again at once in
                // plaintext (once: a plaintext dial that fails is a failure like any).
                let mse_refused = peer.cold.outbound
                    && matches!(peer.cold.stream, super::encryption::Stream::Handshake(_))
                    && retry_plain;
                let ending = match reason {
                    CloseReason::BothSeeds
                    | CloseReason::Banned
                    | CloseReason::TorrentRemoved
                    | CloseReason::SelfConnection => Ending::Final,
                    _ if mse_refused => Ending::MseRefused,
                    _ if peer.phase != Phase::Active => Ending::Failed,
                    _ => Ending::Ended,
                };
                let again_at = if mse_refused {
                    // At once: the same peer, in plaintext.
                    peer.cold.phase_since
                } else {
                    peer.cold.phase_since.max(peer.last_received) + redial
                };
                t.candidates.closed(peer.addr, ending, was_seed, again_at);
            }
        }
        if tell_runtime {
            self.outputs.push_back(Output::Close { conn });
        }
        self.outputs.push_back(Output::Event(Event::PeerClosed {
            torrent: peer.torrent,
            conn,
            addr: peer.addr,
            reason,
        }));
    }

    /// The dialling and routing part of torrent `id`, known or being fetched.
    pub(super) fn swarm_mut(&mut self, id: TorrentId) -> Option<SwarmMut<'_>> {
        if let Some(t) = super::torrent_in(&mut self.torrents, id) {
            let seeding = t.is_complete();
            return Some(SwarmMut {
                peers: &mut t.peers,
                candidates: &mut t.candidates,
                bans: &t.bans,
                halted: t.storage_error,
                seeding,
            });
        }
        let f = self.fetching.get_mut(&id)?;
        Some(SwarmMut {
            peers: &mut f.peers,
            candidates: &mut f.candidates,
            bans: &f.bans,
            halted: false,
            seeding: false,
        })
    }

    /// The connection that holds `key` in torrent `id`, if a connection does.
    pub(super) fn conn_of_key(&self, id: TorrentId, key: PeerKey) -> Option<ConnId> {
        self.torrents.get(id.0 as usize)?.as_ref()?.keys.conn(key)
    }
}

/// The BitTorrent handshake we send for the torrent `info_hash`.
pub(super) fn our_handshake(info_hash: crate::InfoHash, peer_id: crate::PeerId) -> Handshake {
    Handshake {
        reserved: Reserved::ours(),
        info_hash,
        peer_id,
    }
}
