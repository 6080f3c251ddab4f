//! Rate limits: the engine's upload and download, each held to a number of bytes a second
//! for all torrents together.
//!
//! Each direction is a token bucket ([`Bucket`]) charged where the engine commits to
//! moving bytes, which is where a sans-IO engine can hold them back without buffering:
//!
//! - **download**: when it sends a request (a block, or a web seed's range). A request
//!   not made is data not sent to us; the peers' own pacing does the rest. Requests that
//!   time out or are rejected were charged and bring nothing, so the limit errs low.
//! - **upload**: when it asks the runtime to read a requested block for sending.
//!
//! A bucket may go into debt by one charge (a large web-seed range, a block when a
//! sliver of credit is left), so a charge never has to be split; nothing is charged while
//! it is in debt. A connection that wanted to move bytes and found its bucket empty
//! waits in that direction's queue, in order; one timer ([`Timer::Bandwidth`]) wakes the
//! engine when the bucket next holds a quantum (1/20 of a second's worth, at least a
//! block) and serves the queue from its front, so connections take turns.
//!
//! With no limit set, nothing is charged and nothing waits.
//!
//! [`Timer::Bandwidth`]: super::timers::Timer::Bandwidth

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::BLOCK_SIZE;

use super::{ConnId, Engine, TorrentId};

/// The engine's rate limits, in bytes per second; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// The most the engine uploads a second, over all torrents and peers.
    pub upload: Option<u64>,
    /// The most the engine downloads a second, over all torrents, peers and web seeds.
    pub download: Option<u64>,
}

/// Nanoseconds in a second: credit is kept in byte-nanoseconds, so refilling loses no
/// fraction of a byte however often it runs.
const NANOS: i128 = 1_000_000_000;

/// One direction's token bucket.
#[derive(Clone, Debug)]
pub(super) struct Bucket {
    /// Bytes a second, more than zero.
    rate: u64,
    /// Credit in byte-nanoseconds; below zero when in debt.
    credit: i128,
    /// The most credit it holds (what may go out at once after a quiet spell).
    burst: i128,
    /// How much credit a waiting queue waits for before it is served.
    quantum: i128,
    /// When credit was last brought up to date.
    since: Option<Instant>,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        let rate = rate.max(1);
        let block = i128::from(BLOCK_SIZE);
        // A fifth of a second's worth: a 20 s measurement is off by at most 1 %.
        let burst = (i128::from(rate) / 5).max(2 * block) * NANOS;
        let quantum = (i128::from(rate) / 20).max(block) * NANOS;
        Bucket {
            rate,
            credit: burst,
            burst,
            quantum: quantum.min(burst),
            since: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(since) = self.since {
            let elapsed = now.saturating_duration_since(since).as_nanos() as i128;
            self.credit = (self.credit + elapsed * i128::from(self.rate)).min(self.burst);
        }
        self.since = Some(now);
    }

    /// Whether anything may be charged now.
    fn open(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.credit > 0
    }

    /// How many whole blocks' worth the credit covers, rounded up (the last may go into
    /// debt).
    fn blocks(&mut self, now: Instant) -> u32 {
        self.refill(now);
        if self.credit <= 0 {
            return 0;
        }
        let per_block = i128::from(BLOCK_SIZE) * NANOS;
        ((self.credit + per_block - 1) / per_block).min(i128::from(u32::MAX)) as u32
    }

    fn charge(&mut self, bytes: u64) {
        self.credit -= i128::from(bytes) * NANOS;
    }

    /// When the credit reaches a quantum, counted from the last refill.
    fn ready_at(&self, now: Instant) -> Instant {
        let since = self.since.unwrap_or(now);
        let missing = self.quantum - self.credit;
        if missing <= 0 {
            return since.max(now);
        }
        let rate = i128::from(self.rate);
        let nanos = (missing + rate - 1) / rate;
        since + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Which way bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    Up,
    Down,
}

/// Who waits for credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Waiter {
    /// A connection, to request blocks (download) or read blocks to send (upload).
    Conn(ConnId),
    /// A torrent's web seeds, to start their next ranges.
    WebSeeds(TorrentId),
}

/// One direction: its bucket (when limited) and who waits for credit.
#[derive(Default)]
pub(super) struct Lane {
    bucket: Option<Bucket>,
    waiting: VecDeque<Waiter>,
    /// Per connection slot: the connection of that slot that is in `waiting`, if any (so
    /// it is queued once; a slot's later connection is not mistaken for it).
    queued: Vec<Option<ConnId>>,
}

impl Lane {
    fn set(&mut self, rate: Option<u64>) {
        match (rate, &mut self.bucket) {
            (None, _) => self.bucket = None,
            (Some(rate), Some(b)) => {
                let since = b.since;
                let credit = b.credit;
                *b = Bucket::new(rate);
                b.since = since;
                b.credit = credit.min(b.burst);
            }
            (Some(rate), None) => self.bucket = Some(Bucket::new(rate)),
        }
    }

    /// Whether bytes may be charged now (always, without a limit).
    pub(super) fn open(&mut self, now: Instant) -> bool {
        self.bucket.as_mut().is_none_or(|b| b.open(now))
    }

    /// How many blocks may be requested now (`u32::MAX` without a limit).
    pub(super) fn blocks(&mut self, now: Instant) -> u32 {
        self.bucket.as_mut().map_or(u32::MAX, |b| b.blocks(now))
    }

    pub(super) fn charge(&mut self, bytes: u64) {
        if let Some(b) = &mut self.bucket {
            b.charge(bytes);
        }
    }

    /// Puts `who` at the back of the queue, unless it is in it already.
    pub(super) fn wait(&mut self, who: Waiter) {
        let queued = match who {
            Waiter::Conn(conn) => {
                let slot = conn.slot as usize;
                if self.queued.len() <= slot {
                    self.queued.resize(slot + 1, None);
                }
                self.queued[slot].replace(conn) == Some(conn)
            }
            // Few torrents have web seeds: a look along the queue is enough.
            Waiter::WebSeeds(_) => self.waiting.contains(&who),
        };
        if !queued {
            self.waiting.push_back(who);
        }
    }

    fn pop(&mut self) -> Option<Waiter> {
        let who = self.waiting.pop_front()?;
        if let Waiter::Conn(conn) = who {
            // A closed connection's entry leaves its slot's newer one queued.
            let slot = &mut self.queued[conn.slot as usize];
            if *slot == Some(conn) {
                *slot = None;
            }
        }
        Some(who)
    }

    /// When this lane next needs a wake-up: when its bucket holds a quantum, if anyone
    /// waits; at once if nobody needs to wait any more (the limit was lifted).
    fn wake_at(&self, now: Instant) -> Option<Instant> {
        if self.waiting.is_empty() {
            return None;
        }
        Some(self.bucket.as_ref().map_or(now, |b| b.ready_at(now)))
    }
}

/// Both directions.
#[derive(Default)]
pub(super) struct Bandwidth {
    pub(super) up: Lane,
    pub(super) down: Lane,
}

impl Bandwidth {
    pub(super) fn new(limits: RateLimits) -> Bandwidth {
        let mut b = Bandwidth::default();
        b.set(limits);
        b
    }

    pub(super) fn set(&mut self, limits: RateLimits) {
        self.up.set(limits.upload);
        self.down.set(limits.download);
    }

    pub(super) fn limits(&self) -> RateLimits {
        RateLimits {
            upload: self.up.bucket.as_ref().map(|b| b.rate),
            download: self.down.bucket.as_ref().map(|b| b.rate),
        }
    }

    pub(super) fn lane(&mut self, direction: Direction) -> &mut Lane {
        match direction {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }

    /// The earlier of the two lanes' wake-ups.
    pub(super) fn wake_at(&self, now: Instant) -> Option<Instant> {
        match (self.up.wake_at(now), self.down.wake_at(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next in `direction`'s queue, if its bucket has credit now. (Each charges the
    /// bucket as it goes; one that still wants more queues itself again, at the back.)
    pub(super) fn next_waiting(&mut self, direction: Direction, now: Instant) -> Option<Waiter> {
        let lane = self.lane(direction);
        if !lane.open(now) {
            return None;
        }
        lane.pop()
    }

    /// How many connections wait in `direction`.
    pub(super) fn waiting(&self, direction: Direction) -> usize {
        match direction {
            Direction::Up => self.up.waiting.len(),
            Direction::Down => self.down.waiting.len(),
        }
    }
}

impl Engine {
    /// Sets the engine's rate limits (all torrents together), effective at once: lifting
    /// a limit lets whatever waited for it go at the next [`Input::Timer`], due now.
    ///
    /// [`Input::Timer`]: super::Input::Timer
    pub fn set_rate_limits(&mut self, limits: RateLimits, now: Instant) {
        self.bandwidth.set(limits);
        self.config.rate_limits = limits;
        self.arm_bandwidth(now);
    }

    /// The rate limits in force.
    pub fn rate_limits(&self) -> RateLimits {
        self.bandwidth.limits()
    }

    /// Queues `who` for credit in `direction` and makes sure a wake-up is set for it.
    pub(super) fn wait_for_bandwidth(&mut self, direction: Direction, who: Waiter, now: Instant) {
        self.bandwidth.lane(direction).wait(who);
        self.arm_bandwidth(now);
    }

    fn arm_bandwidth(&mut self, now: Instant) {
        if let Some(at) = self.bandwidth.wake_at(now) {
            self.arm_bandwidth_timer(at);
        }
    }

    /// Credit came in: those that waited for it take their turns, in order, download
    /// first (requests made now arrive a round trip later).
    pub(super) fn on_bandwidth_timer(&mut self, now: Instant) {
        for direction in [Direction::Down, Direction::Up] {
            for _ in 0..self.bandwidth.waiting(direction) {
                let Some(who) = self.bandwidth.next_waiting(direction, now) else {
                    break;
                };
                match (direction, who) {
                    (Direction::Down, Waiter::Conn(conn)) => self.fill_requests(conn, now),
                    (Direction::Up, Waiter::Conn(conn)) => self.pump_reads(conn, now),
                    (_, Waiter::WebSeeds(id)) => self.pump_webseeds(id, now),
                }
            }
        }
        if let Some(at) = self.bandwidth.wake_at(now) {
            // Never for the instant it fired at: it would fire again at once.
            self.arm_bandwidth_timer(at.max(now + Duration::from_millis(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_pays_out_its_rate_over_time() {
        let t0 = shoal_test_clock::epoch();
        let rate = 2 << 20;
        let mut b = Bucket::new(rate);
        let mut sent = 0u64;
        let mut now = t0;
        // Charge a block whenever there is credit, stepping by 1 ms, for 20 s.
        while now < t0 + Duration::from_secs(20) {
            while b.open(now) {
                b.charge(BLOCK_SIZE.into());
                sent += u64::from(BLOCK_SIZE);
            }
            now += Duration::from_millis(1);
        }
        let expected = rate * 20;
        let burst = rate / 5 + u64::from(BLOCK_SIZE);
        assert!(sent >= expected, "{sent} < {expected}");
        assert!(sent <= expected + burst, "{sent} > {}", expected + burst);
    }

    #[test]
    fn credit_never_passes_the_burst() {
        let t0 = shoal_test_clock::epoch();
        let mut b = Bucket::new(1 << 20);
        assert!(b.open(t0));
        let blocks = b.blocks(t0 + Duration::from_secs(3600));
        assert_eq!(blocks, ((1u32 << 20) / 5).div_ceil(BLOCK_SIZE));
    }

    #[test]
    fn a_waiting_connection_is_queued_once_and_woken_when_a_quantum_is_in() {
        let t0 = shoal_test_clock::epoch();
        let mut bw = Bandwidth::new(RateLimits {
            upload: None,
            download: Some(1 << 20),
        });
        let conn = ConnId {
            slot: 3,
            generation: 1,
        };
        assert!(bw.down.open(t0));
        bw.down.charge(1 << 20);
        assert!(!bw.down.open(t0));
        bw.down.wait(Waiter::Conn(conn));
        bw.down.wait(Waiter::Conn(conn));
        bw.down.wait(Waiter::WebSeeds(TorrentId(0)));
        bw.down.wait(Waiter::WebSeeds(TorrentId(0)));
        assert_eq!(bw.waiting(Direction::Down), 2);
        let at = bw.wake_at(t0).expect("someone waits");
        assert!(at > t0);
        assert_eq!(bw.next_waiting(Direction::Down, t0), None);
        assert_eq!(
            bw.next_waiting(Direction::Down, at),
            Some(Waiter::Conn(conn))
        );
        assert_eq!(
            bw.next_waiting(Direction::Down, at),
            Some(Waiter::WebSeeds(TorrentId(0)))
        );
        assert_eq!(bw.waiting(Direction::Down), 0);
        // A connection that closed while it waited leaves its slot to a newer one, which
        // is queued too and comes out after it.
        bw.down.charge(1 << 20);
        let newer = ConnId {
            slot: 3,
            generation: 2,
        };
        bw.down.wait(Waiter::Conn(conn));
        bw.down.wait(Waiter::Conn(newer));
        assert_eq!(bw.waiting(Direction::Down), 2);
        let later = at + Duration::from_secs(2);
        assert_eq!(
            bw.next_waiting(Direction::Down, later),
            Some(Waiter::Conn(conn))
        );
        assert_eq!(
            bw.next_waiting(Direction::Down, later),
            Some(Waiter::Conn(newer))
        );
        // Lifting the limit wakes waiters at once.
        bw.down.wait(Waiter::Conn(conn));
        bw.set(RateLimits::default());
        assert_eq!(bw.wake_at(at), Some(at));
    }
}
