//! Peer exchange (BEP 11, `ut_pex`) in the engine: each connection that announced
//! `ut_pex` hears, at most once a minute ([`crate::pex::INTERVAL`]), which peers of the
//! torrent we are connected to (at most [`crate::pex::MAX_ADDED`] added and as many
//! dropped per message, with the seed and connectable flags where known), and what it
//! tells us becomes dial candidates like a tracker's peers (same dial limits, same
//! candidate bound, same ban list).
//!
//! What is never done: PEX for a private torrent (BEP 27), neither way (`ut_pex` is not
//! even announced); PEX while a magnet link's metadata is fetched (whether the torrent is
//! private is not known yet); reading more than one message a minute from a peer
//! ([`PexState::accept_received`]) or more than [`crate::pex::MAX_READ`] entries of a
//! list. Our own address needs no list of its own: a dial that reaches us ends in
//! [`CloseReason::SelfConnection`](super::CloseReason::SelfConnection), and that address
//! is never dialled again.
//!
//! Which address we give for a peer: the one we dialled for a peer we reached (it is
//! connectable), and for a peer that reached us its IP with the listen port of its
//! extended handshake (not connectable as far as we know); one that said no port is left
//! out, since its connection's port is not where it listens.

use core::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::pex::{PexFlags, PexMessage, PexPeer, PexState};
use crate::wire::Message;

use super::peer::Phase;
use super::{ConnId, Engine, TorrentId};

/// The id under which we want `ut_pex` messages (our handshake's `m`).
pub(crate) const UT_PEX_ID: u8 = 2;

impl Engine {
    /// Whether torrent `id` may use PEX: it is on, and the metainfo is known and not
    /// private.
    pub(super) fn pex_allowed(&self, id: TorrentId) -> bool {
        self.config.pex && self.torrent(id).is_some_and(|t| !t.meta.info.private)
    }

    /// A peer's extended handshake named `ut_pex` under `their_id` (0: not, or no more).
    pub(super) fn on_pex_offer(&mut self, conn: ConnId, their_id: u8) {
        let Some(id) = self.peer(conn).and_then(|p| p.torrent) else {
            return;
        };
        let allowed = self.pex_allowed(id);
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        p.cold.ut_pex = their_id;
        if their_id == 0 || !allowed {
            p.cold.pex = None;
        } else if p.cold.pex.is_none() {
            // Where it listens, so it is never told of itself.
            let remote = match (p.cold.outbound, p.cold.listen_port) {
                (false, Some(port)) if port != 0 => SocketAddr::new(p.addr.ip(), port),
                _ => p.addr,
            };
            p.cold.pex = Some(Box::new(PexState::new(remote)));
            // Due at once: the next tick looks at the torrent's connections.
            if let Some(t) = self.torrent_mut(id) {
                t.pex_due = None;
            }
        }
    }

    /// A `ut_pex` message from `conn`: its added peers become candidates.
    pub(super) fn on_pex_message(&mut self, conn: ConnId, payload: &Bytes, now: Instant) {
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        let (Some(id), Some(state)) = (p.torrent, p.cold.pex.as_mut()) else {
            return;
        };
        if !state.accept_received(now) {
            return;
        }
        // A message we cannot read costs the peer nothing but its news.
        let Ok(message) = PexMessage::decode(payload) else {
            return;
        };
        if !self.pex_allowed(id) {
            return;
        }
        for peer in message.added {
            self.add_peer(id, peer.addr, now);
        }
    }

    /// Sends each connection of torrent `id` whose minute has passed what changed among
    /// the torrent's peers.
    pub(super) fn pex_tick(&mut self, id: TorrentId, now: Instant) {
        if !self.pex_allowed(id) {
            return;
        }
        let Some(t) = self.torrent(id) else {
            return;
        };
        // Connections are looked at only when one may be due: an engine whose peers do
        // not speak PEX, or were all told within the minute, does not walk them each tick.
        if t.pex_due.is_some_and(|at| at > now) {
            return;
        }
        // The earliest instant a connection not due now will be (a minute from now when
        // none speaks PEX; a new `PexState` brings the next look forward).
        let mut next = now + crate::pex::INTERVAL;
        let due: Vec<ConnId> = t
            .peers
            .iter()
            .copied()
            .filter(|&c| {
                let Some(p) = self.peer(c) else {
                    return false;
                };
                let Some(s) = p.cold.pex.as_ref().filter(|_| p.phase == Phase::Active) else {
                    return false;
                };
                match s.next_due() {
                    Some(at) if at > now => {
                        next = next.min(at);
                        false
                    }
                    _ => true,
                }
            })
            .collect();
        if due.is_empty() {
            if let Some(t) = self.torrent_mut(id) {
                t.pex_due = Some(next);
            }
            return;
        }
        let piece_count = t.meta.info.piece_count();
        let current: Vec<PexPeer> = t
            .peers
            .iter()
            .filter_map(|&c| {
                let p = self.peer(c)?;
                if p.phase != Phase::Active {
                    return None;
                }
                let mut flags = 0;
                if p.is_seed(piece_count) {
                    flags |= PexFlags::SEED;
                }
                let addr = if p.cold.outbound {
                    flags |= PexFlags::CONNECTABLE;
                    p.addr
                } else {
                    SocketAddr::new(p.addr.ip(), p.cold.listen_port.filter(|&port| port != 0)?)
                };
                Some(PexPeer {
                    addr,
                    flags: PexFlags(flags),
                })
            })
            .collect();
        for conn in due {
            let Some(p) = self.peer_mut(conn) else {
                continue;
            };
            let their_id = p.cold.ut_pex;
            let Some(state) = p.cold.pex.as_mut() else {
                continue;
            };
            let message = state.poll(&current, false, now);
            // Told now: due in a minute; nothing to tell: due again at the next tick.
            next = next.min(state.next_due().unwrap_or(now));
            let Some(message) = message else {
                continue;
            };
            p.send(&Message::Extended {
                id: their_id,
                payload: message.encode(),
            });
            p.last_sent = now;
            self.mark_dirty(conn);
        }
        if let Some(t) = self.torrent_mut(id) {
            t.pex_due = Some(next);
        }
    }
}
