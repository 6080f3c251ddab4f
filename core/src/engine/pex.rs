//! Peer exchange (BEP 11, `ut_pex`) in the engine: each connection that announced
//! `ut_pex` hears, at most once a minute ([`crate::pex::INTERVAL`]), which peers of the
//! torrent we are connected to (at most [`crate::pex::MAX_ADDED`] added and as many
//! dropped per message, with the connectable flag, and the seed flag once the peer's
//! pieces showed it one: a connection told of a peer before it became a seed is not told
//! again), and what it tells us becomes dial candidates like a tracker's peers (same dial
//! limits, same candidate bound, same ban list).
//!
//! What it keeps, the libtorrent way: each torrent one list of its peers' comings and
//! goings ([`PexLog`], in [`TorrentPex`]) and, for each connection that speaks `ut_pex`, a
//! [`Listener`] beside it in the torrent: its position in the list, when it may be told
//! next, and where it listens (it is never told of itself). A connection's slot holds
//! only the id it wants our messages under, its entry in the list, and when it last sent
//! us one. The once-a-second pass reads the listeners (a few words each, in one vector),
//! not the connections, and only when the list has changed or a listener is due; the
//! dropped peers every listener has passed are forgotten.
//!
//! What is never done: PEX for a private torrent (BEP 27), neither way (`ut_pex` is not
//! even announced); PEX while a magnet link's metadata is fetched (whether the torrent is
//! private is not known yet); reading more than one message a minute from a peer
//! ([`crate::pex::accept_received`]) or more than [`crate::pex::MAX_READ`] entries of a
//! list. Our own address needs no list of its own: a dial that reaches us ends in
//! [`CloseReason::SelfConnection`](super::CloseReason::SelfConnection), and that address
//! is never dialled again.
//!
//! Which address we give for a peer: the one we dialled for a peer we reached (it is
//! connectable), and for a peer that reached us its IP with the listen port of its
//! extended handshake (not connectable as far as we know); one that said no port is not
//! listed, since its connection's port is not where it listens.

use core::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::pex::{PexFlags, PexLog, PexMessage, Seq, INTERVAL};
use crate::wire::Message;

use super::peer::{Peer, Phase};
use super::{ConnId, Engine, TorrentId};

/// The id under which we want `ut_pex` messages (our handshake's `m`).
pub(crate) const UT_PEX_ID: u8 = 2;

/// A connection that speaks `ut_pex`, as its torrent keeps it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Listener {
    conn: ConnId,
    /// The id it wants our messages under.
    their_id: u8,
    /// Its position in the torrent's [`PexLog`].
    at: Seq,
    /// When it may be told next (`None`: now).
    due: Option<Instant>,
    /// Where it listens: never told of itself.
    remote: SocketAddr,
}

/// One torrent's PEX: the list of changes and the connections told from it.
#[derive(Debug, Default)]
pub(super) struct TorrentPex {
    log: PexLog,
    listeners: Vec<Listener>,
    /// The pass has nothing to do before this instant (`None`: look at the next tick):
    /// no listener is due with news before it, and the list has not changed since.
    due: Option<Instant>,
}

/// Where `p` listens, if we know: the address we dialled, or its IP with the listen port
/// of its extended handshake; with whether it is connectable.
fn listen_addr(p: &Peer) -> Option<(SocketAddr, bool)> {
    if p.cold.outbound {
        return Some((p.addr, true));
    }
    let port = p.cold.listen_port.filter(|&port| port != 0)?;
    Some((SocketAddr::new(p.addr.ip(), port), false))
}

impl Engine {
    /// Whether torrent `id` may use PEX: it is on, and the metainfo is known and not
    /// private.
    pub(super) fn pex_allowed(&self, id: TorrentId) -> bool {
        self.config.pex && self.torrent(id).is_some_and(|t| !t.meta.info.private)
    }

    /// Lists `conn` among its torrent's peers for PEX, once its handshake is done and where
    /// it listens is known (called at both, and when a magnet's metadata comes).
    pub(super) fn pex_list(&mut self, conn: ConnId) {
        let Some(id) = self.peer(conn).and_then(|p| p.torrent) else {
            return;
        };
        if !self.pex_allowed(id) {
            return;
        }
        let Some((p, t)) = self.both(conn) else {
            return;
        };
        if p.phase != Phase::Active || p.cold.pex_listed.is_some() {
            return;
        }
        let Some((addr, connectable)) = listen_addr(p) else {
            return;
        };
        let mut flags = 0;
        if connectable {
            flags |= PexFlags::CONNECTABLE;
        }
        if p.is_seed(t.meta.info.piece_count()) {
            flags |= PexFlags::SEED;
        }
        p.cold.pex_listed = Some(t.pex.log.add(addr, PexFlags(flags)));
        t.pex.due = None;
    }

    /// Peer `p` of torrent `t` has just become a seed: its entry in the PEX list says so.
    pub(super) fn pex_seed(p: &Peer, t: &mut super::torrent::Torrent) {
        if let Some(listed) = p.cold.pex_listed {
            t.pex.log.set_flags(listed, PexFlags::SEED);
        }
    }

    /// Takes closing connection `peer` out of torrent `id`'s PEX: its entry is dropped,
    /// its listener forgotten.
    pub(super) fn pex_unlist(&mut self, id: TorrentId, peer: &Peer) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        if let Some(listed) = peer.cold.pex_listed {
            t.pex.log.remove(listed);
            t.pex.due = None;
        }
        if peer.cold.ut_pex != 0 {
            t.pex.listeners.retain(|l| l.conn != peer.id);
        }
    }

    /// A peer's extended handshake named `ut_pex` under `their_id` (0: not, or no more).
    pub(super) fn on_pex_offer(&mut self, conn: ConnId, their_id: u8) {
        let Some(id) = self.peer(conn).and_then(|p| p.torrent) else {
            return;
        };
        let allowed = self.pex_allowed(id);
        let Some((p, t)) = self.both(conn) else {
            if let Some(p) = self.peer_mut(conn) {
                p.cold.ut_pex = their_id;
            }
            return;
        };
        p.cold.ut_pex = their_id;
        let listener = t.pex.listeners.iter().position(|l| l.conn == conn);
        match listener {
            Some(i) if their_id == 0 || !allowed => {
                t.pex.listeners.swap_remove(i);
            }
            Some(i) => t.pex.listeners[i].their_id = their_id,
            None if their_id != 0 && allowed => {
                // Where it listens, so it is never told of itself.
                let remote = listen_addr(p).map_or(p.addr, |(a, _)| a);
                t.pex.listeners.push(Listener {
                    conn,
                    their_id,
                    at: 0,
                    due: None,
                    remote,
                });
                t.pex.due = None;
            }
            None => {}
        }
    }

    /// A `ut_pex` message from `conn`: its added peers become candidates.
    pub(super) fn on_pex_message(&mut self, conn: ConnId, payload: &Bytes, now: Instant) {
        let Some(p) = self.peer_mut(conn) else {
            return;
        };
        let Some(id) = p.torrent else {
            return;
        };
        if p.cold.ut_pex == 0 || !crate::pex::accept_received(&mut p.cold.pex_received, now) {
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
            let seed = peer.flags.0 & crate::pex::PexFlags::SEED != 0;
            self.learn_peer(id, peer.addr, seed, now);
        }
    }

    /// Sends each listener of torrent `id` whose minute has passed what changed among the
    /// torrent's peers since it was last told.
    pub(super) fn pex_tick(&mut self, id: TorrentId, now: Instant) {
        if !self.pex_allowed(id) {
            return;
        }
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        if t.pex.due.is_some_and(|at| at > now) {
            return;
        }
        let head = t.pex.log.head();
        // A listener told everything waits for the list to change (which brings the
        // pass back at the next tick); one with news waits for its minute.
        let mut next = now + INTERVAL;
        let mut oldest = head;
        let mut sends: Vec<(ConnId, u8, PexMessage)> = Vec::new();
        for l in &mut t.pex.listeners {
            if l.at < head {
                match l.due {
                    Some(at) if at > now => next = next.min(at),
                    _ => {
                        let (message, at) = t.pex.log.message(l.at, l.remote);
                        l.at = at;
                        if let Some(message) = message {
                            sends.push((l.conn, l.their_id, message));
                            l.due = Some(now + INTERVAL);
                            if at < head {
                                next = next.min(now + INTERVAL);
                            }
                        }
                    }
                }
            }
            oldest = oldest.min(l.at);
        }
        t.pex.log.prune(oldest);
        t.pex.due = Some(next);
        for (conn, their_id, message) in sends {
            let Some(p) = self.peer_mut(conn) else {
                continue;
            };
            p.send(&Message::Extended {
                id: their_id,
                payload: message.encode(),
            });
            p.last_sent = now;
            self.mark_dirty(conn);
        }
    }
}
