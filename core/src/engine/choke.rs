//! Choking: running a torrent's [`Choker`](crate::choker::Choker), on its schedule or
//! early when a change of interest or a departure may have freed a slot, and sending the
//! chokes and unchokes it decides (a choke drops the peer's queued requests, and rejects
//! them under BEP 6).

use std::time::Instant;

use crate::choker::PeerInfo;
use crate::wire::Message;
use crate::BlockRequest;

use super::peer::Phase;
use super::timers::TICK;
use super::torrent::Torrent;
use super::{Engine, TorrentId};
impl Engine {
    /// Runs the choker now for the torrent of `conn` if a slot may be free.
    pub(super) fn rechoke(&mut self, id: TorrentId, now: Instant) {
        // The field, not `self.torrent`: `choke_infos` is borrowed beside it.
        let Some(t) = self.torrents.get(id.0 as usize).and_then(Option::as_ref) else {
            return;
        };
        let seeding = t.is_complete();
        if now < t.choker.poll_timeout() && self.holders_qualify(t, seeding) {
            // An early call (an interest change) with nothing to change: every slot is
            // held by a peer that still qualifies. Checking those few is cheaper than
            // describing every peer to the choker.
            return;
        }
        // Only the interested peers and the slot holders can gain or lose a slot, at a
        // scheduled rechoke as at an early one: the choker keeps what it knows of the
        // others (see `Choker::refill`), so peers that want nothing cost nothing here.
        let mut conns = std::mem::take(&mut self.choke_conns);
        conns.clear();
        conns.extend_from_slice(&t.interested);
        conns.extend(
            t.choker
                .holders()
                .iter()
                .filter_map(|&(key, _, _)| t.keys.conn(key)),
        );
        let mut infos = std::mem::take(&mut self.choke_infos);
        infos.clear();
        for &conn in &conns {
            let Some(p) = self.peer_mut(conn) else {
                continue;
            };
            if p.phase != Phase::Active {
                continue;
            }
            // Rates are folded in when read (see `timers`).
            p.down.tick_if_due(now, TICK);
            p.up.tick_if_due(now, TICK);
            infos.push(PeerInfo {
                key: p.key,
                interested: p.peer_interested,
                snubbed: p.snubbed,
                download_rate: p.down.rate(),
                upload_rate: p.up.rate(),
                connected_at: p.cold.connected_at,
                unchoked: !p.am_choking,
            });
        }
        self.choke_conns = conns;
        let Some(t) = self.torrent_mut(id) else {
            self.choke_infos = infos;
            return;
        };
        let decision = t.choker.refill(now, seeding, &infos);
        self.choke_infos = infos;
        let changes = decision
            .unchoke
            .into_iter()
            .map(|k| (k, true))
            .chain(decision.choke.into_iter().map(|k| (k, false)));
        for (key, unchoke) in changes {
            let Some(conn) = self.conn_of_key(id, key) else {
                continue;
            };
            let Some(p) = self.peer_mut(conn) else {
                continue;
            };
            if p.am_choking != unchoke {
                continue;
            }
            p.am_choking = !unchoke;
            if unchoke {
                p.send(&Message::Unchoke);
            } else {
                p.send(&Message::Choke);
                // Queued requests die with the choke; with BEP 6 they are rejected.
                let dropped: Vec<BlockRequest> = p.serve_queue.drain();
                if p.fast {
                    for block in dropped {
                        p.send(&Message::Reject(block));
                    }
                }
            }
            self.mark_dirty(conn);
        }
    }

    /// Whether every choker slot of `t` is held by a peer that is still connected,
    /// unchoked, interested and (regular slots while leeching) not snubbed.
    fn holders_qualify(&self, t: &Torrent, seeding: bool) -> bool {
        let Some(held) = t.choker.full_holders() else {
            return false;
        };
        held.iter().all(|&(key, connected_at, optimistic)| {
            t.keys
                .conn(key)
                .and_then(|conn| self.peer(conn))
                .is_some_and(|p| {
                    p.phase == Phase::Active
                        && p.cold.connected_at == connected_at
                        && !p.am_choking
                        && p.peer_interested
                        && (optimistic || seeding || !p.snubbed)
                })
        })
    }
}
