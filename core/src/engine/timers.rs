//! Time: every connection and every torrent keeps its own deadline, and the engine wakes
//! only for those that are due.
//!
//! A [`Timers`] queue holds `(instant, what)` entries ([`Timer`]); [`Engine::poll_timeout`]
//! is the earliest of them. The queue is lazy: a connection or torrent remembers the one
//! instant it is armed for (`wake`), and arming it later than that adds nothing (the
//! earlier entry will fire and re-arm), arming it earlier adds an entry and makes the
//! older one stale. A popped entry that does not match its owner's `wake` (a closed
//! connection, a superseded instant) is skipped. So an entry is added only when something
//! moves a deadline earlier, never per message, and the queue holds about one entry per
//! connection and torrent (it is rebuilt from the owners when stale entries pile up).
//!
//! What each kind of wake-up does:
//!
//! - [`Timer::Conn`]: the connection's deadlines, computed afresh from its state when it
//!   fires: connect and handshake timeouts while it is being set up; once active, the idle
//!   timeout (nothing received), the keep-alive (nothing sent) and the oldest request's
//!   timeout (a peer that lets a request stall is snubbed: its requests go to others).
//!   Messages that move those instants later (every block, every send) touch no timer:
//!   the wake-up finds the deadline moved and re-arms for it. Sending the first request
//!   of an empty pipeline arms the request timeout, the one deadline that moves earlier.
//! - [`Timer::Torrent`]: once a [`TICK`] per torrent: its rates, the choker when due,
//!   dialling, UDP tracker retransmissions, the announce when due, and a progress event.
//! - [`Timer::Stopping`]: the `stopped` announces of removed torrents.
//! - [`Timer::Bandwidth`]: a rate limit's bucket holds credit again for those that
//!   waited for it (see the `bandwidth` module).
//!
//! Rates of connections are folded in when they are read (a block's arrival, a rechoke),
//! not on a schedule: an idle connection costs nothing between its own deadlines.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::wire::Message;

use super::peer::Phase;
use super::{consistent, CloseReason, ConnId, Engine, EngineConfig, Event, Output, TorrentId};

/// How often a torrent does its periodic work.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// How far past a deadline a connection's timer fires (the deadlines are "more than").
const STEP: Duration = Duration::from_millis(1);

/// What a wake-up is for. The order (connections, then torrents, then the stopping list,
/// each by id) breaks ties between equal instants, so runs are reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A connection's deadlines.
    Conn(ConnId),
    /// A torrent's periodic work.
    Torrent(TorrentId),
    /// Removed torrents' `stopped` announces.
    Stopping,
    /// Rate limits' credit for those waiting for it.
    Bandwidth,
}

/// The engine's wake-ups, earliest first (see the module docs).
#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// For each connection slot, the instant its connection is armed for: kept beside
    /// the queue rather than in the peer's state, so arming reads a dense array instead
    /// of a line of the peer's that nothing else on that path reads.
    conns: Vec<Option<Instant>>,
    /// Whether `Timer::Stopping` is armed, and for when.
    stopping: Option<Instant>,
    /// Whether `Timer::Bandwidth` is armed, and for when.
    bandwidth: Option<Instant>,
}

impl Timers {
    /// The earliest instant anything is armed for (perhaps a stale entry: waking for it
    /// does nothing, and is rare).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn push(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// The next entry due at `now`, if any.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

/// Arms `wake` for `at`: records it and says whether a queue entry must be added (it is
/// not armed, or armed for later).
fn arm(wake: &mut Option<Instant>, at: Instant) -> bool {
    if wake.is_some_and(|w| w <= at) {
        return false;
    }
    *wake = Some(at);
    true
}

impl Engine {
    /// Arms `conn`'s timer for `at` (or earlier, if it already is).
    pub(super) fn arm_conn(&mut self, conn: ConnId, at: Instant) {
        let slot = conn.slot as usize;
        let wakes = &mut self.timers.conns;
        if wakes.len() <= slot {
            wakes.resize(slot + 1, None);
        }
        if arm(&mut wakes[slot], at) {
            self.timers.push(at, Timer::Conn(conn));
            self.compact_timers();
        }
    }

    /// Forgets the wake-up of a connection that closed (its slot may be reused).
    pub(super) fn disarm_conn(&mut self, conn: ConnId) {
        if let Some(w) = self.timers.conns.get_mut(conn.slot as usize) {
            *w = None;
        }
    }

    /// Arms torrent `id`'s timer for `at` (or earlier, if it already is).
    pub(super) fn arm_torrent(&mut self, id: TorrentId, at: Instant) {
        let wake = match super::torrent_in(&mut self.torrents, id) {
            Some(t) => &mut t.wake,
            None => match self.fetching.get_mut(&id) {
                Some(f) => &mut f.wake,
                None => return,
            },
        };
        if arm(wake, at) {
            self.timers.push(at, Timer::Torrent(id));
        }
    }

    /// Arms the stopping list's timer for `at` (or earlier).
    pub(super) fn arm_stopping(&mut self, at: Instant) {
        if arm(&mut self.timers.stopping, at) {
            self.timers.push(at, Timer::Stopping);
        }
    }

    /// Arms the rate limits' timer for `at` (or earlier).
    pub(super) fn arm_bandwidth_timer(&mut self, at: Instant) {
        if arm(&mut self.timers.bandwidth, at) {
            self.timers.push(at, Timer::Bandwidth);
        }
    }

    /// Runs every wake-up due at `now`.
    pub(super) fn run_timers(&mut self, now: Instant) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Conn(conn) => {
                    let slot = conn.slot as usize;
                    if self.timers.conns.get(slot) != Some(&Some(at)) {
                        continue;
                    }
                    let Some(torrent) = self.peer(conn).map(|p| p.torrent) else {
                        continue;
                    };
                    self.timers.conns[slot] = None;
                    self.on_conn_timer(conn, now);
                    if let Some(id) = torrent {
                        self.settle(id, now);
                    }
                }
                Timer::Torrent(id) => {
                    if let Some(f) = self.fetching.get_mut(&id) {
                        if f.wake == Some(at) {
                            f.wake = None;
                            self.on_fetching_timer(id, now);
                        }
                        continue;
                    }
                    let Some(t) = self.torrent_mut(id) else {
                        continue;
                    };
                    if t.wake != Some(at) {
                        continue;
                    }
                    t.wake = None;
                    self.on_torrent_timer(id, now);
                    self.settle(id, now);
                }
                Timer::Stopping => {
                    if self.timers.stopping != Some(at) {
                        continue;
                    }
                    self.timers.stopping = None;
                    self.announce_stopping(now);
                    if !self.stopping.is_empty() {
                        self.arm_stopping(now + TICK);
                    }
                }
                Timer::Bandwidth => {
                    if self.timers.bandwidth != Some(at) {
                        continue;
                    }
                    self.timers.bandwidth = None;
                    self.on_bandwidth_timer(now);
                }
            }
        }
    }

    /// Rebuilds the queue from the owners' `wake` when stale entries outnumber live ones
    /// (many connections closed, or deadlines moved earlier many times), so its size stays
    /// proportional to the connections and torrents.
    fn compact_timers(&mut self) {
        let live = self.connections + self.torrents.len() + 1;
        if self.timers.heap.len() <= 2 * live + 64 {
            return;
        }
        let mut entries = Vec::with_capacity(live);
        for (i, slot) in self.slots.iter().enumerate() {
            let at = self.timers.conns.get(i).copied().flatten();
            if let (Some(p), Some(at)) = (&slot.peer, at) {
                entries.push(Reverse((at, Timer::Conn(p.id))));
            }
        }
        for (i, t) in self.torrents.iter().enumerate() {
            if let Some(at) = t.as_ref().and_then(|t| t.wake) {
                entries.push(Reverse((at, Timer::Torrent(TorrentId(i as u32)))));
            }
        }
        for (id, f) in &self.fetching {
            if let Some(at) = f.wake {
                entries.push(Reverse((at, Timer::Torrent(*id))));
            }
        }
        if let Some(at) = self.timers.stopping {
            entries.push(Reverse((at, Timer::Stopping)));
        }
        if let Some(at) = self.timers.bandwidth {
            entries.push(Reverse((at, Timer::Bandwidth)));
        }
        self.timers.heap = BinaryHeap::from(entries);
    }

    /// A connection's wake-up: close it if a deadline passed, else send a keep-alive if
    /// one is due, snub it if a request stalled, top up its requests and reads, and arm it
    /// for its next deadline.
    fn on_conn_timer(&mut self, conn: ConnId, now: Instant) {
        let limits = Limits::of(&self.config);
        if let Some(reason) = self.check_timeouts(conn, now, &limits) {
            self.close(conn, reason);
            return;
        }
        self.fill_requests(conn, now);
        self.pump_reads(conn, now);
        if let Some(at) = self.next_deadline(conn, &limits) {
            // Never for now or earlier: the deadlines are "more than" comparisons, and a
            // timer re-armed for the instant it fired at would fire again at once.
            self.arm_conn(conn, at.max(now + STEP));
        }
    }

    /// How long `conn`'s peer may let our requests wait (its torrent's
    /// [`stall_limit`](super::torrent::Torrent::stall_limit)).
    pub(super) fn stall_limit(&self, conn: ConnId) -> Duration {
        let max = self.config.request_timeout;
        self.peer(conn)
            .and_then(|p| p.torrent)
            .and_then(|id| self.torrent(id))
            .map_or(max, |t| t.stall_limit(max))
    }

    /// When `conn` next needs a look, from its state now: just after its earliest
    /// deadline (they are "more than" comparisons).
    fn next_deadline(&self, conn: ConnId, cfg: &Limits) -> Option<Instant> {
        let p = self.peer(conn)?;
        let active = p.phase == Phase::Active && p.torrent.is_some();
        let at = match p.phase {
            Phase::Connecting => p.cold.phase_since + cfg.connect,
            _ if !active => p.cold.phase_since + cfg.handshake,
            _ => {
                let idle = p.last_received + cfg.idle;
                let keepalive = p.last_sent + cfg.keepalive;
                let limit = self.stall_limit(conn);
                let request = p
                    .requests
                    .front()
                    .map(|o| o.sent_at.max(p.last_block) + limit.min(cfg.request));
                let at = idle.min(keepalive);
                request.map_or(at, |r| at.min(r))
            }
        };
        Some(at + STEP)
    }

    /// Arms `conn` for its next deadline (after its phase changed).
    pub(super) fn arm_conn_deadline(&mut self, conn: ConnId) {
        let limits = Limits::of(&self.config);
        if let Some(at) = self.next_deadline(conn, &limits) {
            self.arm_conn(conn, at);
        }
    }

    /// A torrent's periodic work.
    fn on_torrent_timer(&mut self, id: TorrentId, now: Instant) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        t.down.tick(now);
        t.up.tick(now);
        if now >= t.choker.poll_timeout() {
            self.rechoke(id, now);
        }
        self.dial(id, now);
        self.pex_tick(id, now);
        self.lsd_tick(id, now);
        self.dht_tick(id, now);
        self.pump_webseeds(id, now);
        self.udp_timeouts(id, now);
        self.announce(id, now);
        if let Some((refused, first)) = self.torrent_mut(id).and_then(|t| t.faults.take()) {
            self.outputs.push_back(Output::Event(Event::InternalError {
                torrent: id,
                refused,
                first,
            }));
        }
        if let Some(stats) = self.stats(id) {
            self.outputs
                .push_back(Output::Event(Event::Progress { torrent: id, stats }));
        }
        self.arm_torrent(id, now + TICK);
    }

    fn check_timeouts(&mut self, conn: ConnId, now: Instant, cfg: &Limits) -> Option<CloseReason> {
        let fetching = self.is_fetching_peer(conn);
        let (p, t) = match super::peer_in(&mut self.slots, conn) {
            Some(p) if p.torrent.is_some() => {
                let t = p
                    .torrent
                    .and_then(|id| super::torrent_in(&mut self.torrents, id));
                (p, t)
            }
            _ => {
                // An inbound connection not yet routed to a torrent.
                let p = self.peer_mut(conn)?;
                if now.saturating_duration_since(p.cold.phase_since) > cfg.handshake {
                    return Some(CloseReason::Timeout("handshake"));
                }
                return None;
            }
        };
        if t.is_none() && !fetching {
            return None;
        }
        let since = now.saturating_duration_since(p.cold.phase_since);
        match p.phase {
            Phase::Connecting if since > cfg.connect => {
                return Some(CloseReason::Timeout("connect"))
            }
            Phase::Handshake if since > cfg.handshake => {
                return Some(CloseReason::Timeout("handshake"))
            }
            Phase::Active => {}
            _ => return None,
        }
        if now.saturating_duration_since(p.last_received) > cfg.idle {
            return Some(CloseReason::Timeout("idle connection"));
        }
        let keepalive = now.saturating_duration_since(p.last_sent) >= cfg.keepalive;
        if keepalive {
            p.send(&Message::KeepAlive);
            p.last_sent = now;
        }
        let limit = t
            .as_ref()
            .map_or(cfg.request, |t| t.stall_limit(cfg.request));
        let stalled = p
            .requests
            .front()
            .is_some_and(|o| now.saturating_duration_since(o.sent_at.max(p.last_block)) > limit);
        if let (true, Some(t)) = (stalled, t) {
            // Give its blocks to others; it may still serve us later.
            p.snubbed = true;
            for o in p.requests.drain(..) {
                consistent(&mut t.faults, t.picker.abort_request(p.key, o.block));
            }
            p.pipeline = 1;
            t.refill_wanted = true;
        }
        if keepalive {
            self.mark_dirty(conn);
        }
        None
    }
}

/// The configuration's limits a connection's deadlines use, copied out of it (the
/// configuration holds a string).
#[derive(Clone, Copy)]
pub(super) struct Limits {
    handshake: Duration,
    connect: Duration,
    idle: Duration,
    keepalive: Duration,
    request: Duration,
}

impl Limits {
    pub(super) fn of(c: &EngineConfig) -> Limits {
        Limits {
            handshake: c.handshake_timeout,
            connect: c.connect_timeout,
            idle: c.idle_timeout,
            keepalive: c.keepalive_interval,
            request: c.request_timeout,
        }
    }

    /// When a request sent at `now` to a peer whose torrent's stall limit is `limit`
    /// times out.
    pub(super) fn request_deadline(&self, now: Instant, limit: Duration) -> Instant {
        now + limit.min(self.request) + STEP
    }
}
