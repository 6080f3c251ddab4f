//! Time. The engine has one wake-up, a tick every [`TICK`]: it checks each connection's
//! deadlines (connect, handshake, idle, keep-alive) and its oldest request (a peer that
//! lets one stall is snubbed: its requests go to others), tops up requests and reads, and
//! per torrent runs the choker when due, dials, retries UDP trackers, announces and
//! reports progress.

use std::time::{Duration, Instant};

use crate::wire::Message;

use super::peer::{Peer, Phase};
use super::torrent::Torrent;
use super::{consistent, CloseReason, ConnId, Engine, EngineConfig, Event, Output, TorrentId};
pub(super) const TICK: Duration = Duration::from_secs(1);

/// What the tick's per-connection checks read of the configuration, copied out of it
/// (the configuration holds a string; cloning it every tick allocated).
#[derive(Clone, Copy)]
struct Limits {
    pub(super) handshake: Duration,
    pub(super) connect: Duration,
    pub(super) idle: Duration,
    pub(super) keepalive: Duration,
    pub(super) request: Duration,
    pub(super) max_pipeline: u32,
}

impl Limits {
    fn of(c: &EngineConfig) -> Limits {
        Limits {
            handshake: c.handshake_timeout,
            connect: c.connect_timeout,
            idle: c.idle_timeout,
            keepalive: c.keepalive_interval,
            request: c.request_timeout,
            max_pipeline: c.max_pipeline,
        }
    }
}

impl Engine {
    pub(super) fn schedule_tick(&mut self, now: Instant) {
        if self.next_tick.is_none() {
            self.next_tick = Some(now + TICK);
        }
    }

    pub(super) fn tick(&mut self, now: Instant) {
        self.announce_stopping(now);
        let limits = Limits::of(&self.config);
        // Connections, in slot order.
        for slot in 0..self.slots.len() {
            // The id from the slot's first line (the peer's own copy lies on a cold one).
            let s = &self.slots[slot];
            let conn = ConnId {
                slot: slot as u32,
                generation: s.generation,
            };
            match &s.peer {
                Some(p) => debug_assert_eq!(p.id, conn),
                None => continue,
            }
            if let Some(reason) = self.check_timeouts(conn, now, &limits) {
                self.close(conn, reason);
                continue;
            }
            self.fill_requests(conn, now);
            self.pump_reads(conn);
        }
        for i in 0..self.torrents.len() {
            let id = TorrentId(i as u32);
            let Some(t) = self.torrent_mut(id) else {
                continue;
            };
            t.down.tick(now);
            t.up.tick(now);
            if now >= t.choker.poll_timeout() {
                self.rechoke(id, now);
            }
            self.dial(id, now);
            self.udp_timeouts(id, now);
            self.announce(id, now);
            if let Some(stats) = self.stats(id) {
                self.outputs
                    .push_back(Output::Event(Event::Progress { torrent: id, stats }));
            }
        }
    }

    fn check_timeouts(&mut self, conn: ConnId, now: Instant, cfg: &Limits) -> Option<CloseReason> {
        let (p, t) = match self.both(conn) {
            Some(x) => x,
            None => {
                // An inbound connection not yet routed to a torrent.
                let p = self.peer_mut(conn)?;
                if now.saturating_duration_since(p.phase_since) > cfg.handshake {
                    return Some(CloseReason::Timeout("handshake"));
                }
                return None;
            }
        };
        // The phase first: `phase_since` lies on a cold line, and only the set-up phases
        // need it.
        let since = || now.saturating_duration_since(p.phase_since);
        match p.phase {
            Phase::Connecting if since() > cfg.connect => {
                return Some(CloseReason::Timeout("connect"))
            }
            Phase::Handshake if since() > cfg.handshake => {
                return Some(CloseReason::Timeout("handshake"))
            }
            Phase::Active => {}
            _ => return None,
        }
        if now.saturating_duration_since(p.last_received) > cfg.idle {
            return Some(CloseReason::Timeout("idle connection"));
        }
        if now.saturating_duration_since(p.last_sent) >= cfg.keepalive {
            p.send(&Message::KeepAlive);
            p.last_sent = now;
            self.mark_dirty(conn);
            let (p, t) = self.both(conn)?;
            return Self::check_snub(p, t, conn, now, cfg);
        }
        Self::check_snub(p, t, conn, now, cfg)
    }

    fn check_snub(
        p: &mut Peer,
        t: &mut Torrent,
        conn: ConnId,
        now: Instant,
        cfg: &Limits,
    ) -> Option<CloseReason> {
        p.down.tick(now);
        p.up.tick(now);
        p.trim_pipeline(cfg.max_pipeline);
        let stalled = p.requests.front().is_some_and(|o| {
            now.saturating_duration_since(o.sent_at.max(p.last_block)) > cfg.request
        });
        if stalled {
            // Give its blocks to others; it may still serve us later.
            p.snubbed = true;
            for o in p.requests.drain(..) {
                consistent(t.picker.abort_request(conn.key(), o.block));
            }
            p.pipeline = 1;
        }
        None
    }
}
