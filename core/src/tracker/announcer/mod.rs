//! One torrent's announce schedule: which tracker to ask, when, and with which event.
//!
//! [`Announcer`] owns the torrent's trackers in BEP 12 tiers and the timing of its
//! announces; the engine carries each announce out (over HTTP or UDP) and reports the
//! outcome. It never sees bytes or sockets.
//!
//! The rules it keeps:
//!
//! - **Tiers (BEP 12).** Each tier is shuffled once, with the seed given. An announce round
//!   tries the trackers of tier 0 in order, then those of tier 1, and so on, until one
//!   answers; the one that answers moves to the front of its tier, and the next round
//!   starts again at tier 0. Only one announce is under way at a time. URLs that do not
//!   parse or that no transport here can reach are left out, and a URL named twice is
//!   kept where it first appears.
//! - **Events.** The first announce a tracker gets is `started`; `completed` goes out once,
//!   as soon as [`Announcer::on_completed`] is called (after the announce under way, if
//!   any), to whichever tracker answers it (never for a torrent complete from the start:
//!   its `started` carries `left = 0`); `stopped` goes out once after [`Announcer::stop`],
//!   to the tracker that answered last, with `numwant = 0`, and is not retried. A
//!   `completed` not yet answered when `stop` comes goes to that tracker just before
//!   `stopped`, so a download that ends within the tracker's `min interval` is still
//!   counted. Regular announces carry no event.
//! - **Timing.** After an answer the next announce is due after the tracker's `interval`,
//!   clamped to [`AnnouncerConfig::min_interval`]`..=`[`AnnouncerConfig::max_interval`]
//!   (an interval of 0 means the tracker did not say: [`AnnouncerConfig::default_interval`]).
//!   An early announce ([`Announcer::reannounce`]) waits for the tracker's `min interval`
//!   since the last answer; `completed` and `stopped` are events the tracker counts and
//!   never wait for it (as other clients do: `min interval` governs repeated announces).
//! - **Failures.** A failed tracker passes the announce to the next one at once. When the
//!   whole list has failed, the next round waits a backoff that starts at
//!   [`AnnouncerConfig::initial_backoff`] and doubles up to
//!   [`AnnouncerConfig::max_backoff`]; any answer resets it.
//! - **Stale answers.** An outcome for an announce that is no longer awaited (superseded by
//!   [`Announcer::stop`]) is ignored.

use core::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{
    AnnounceEvent, AnnounceParams, AnnounceResponse, SplitMix64, TrackerError, TrackerUrl,
};
use crate::types::{InfoHash, PeerId};

/// Settings of an [`Announcer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnouncerConfig {
    /// Peers asked for in each announce but `stopped` (50).
    pub numwant: u32,
    /// The interval used when a tracker gives 0 (30 min).
    pub default_interval: Duration,
    /// The shortest interval honoured: a tracker asking for announces every few seconds is
    /// broken or hostile (60 s).
    pub min_interval: Duration,
    /// The longest interval honoured, so peers keep coming (2 h).
    pub max_interval: Duration,
    /// The wait after the first round in which every tracker failed (15 s).
    pub initial_backoff: Duration,
    /// The longest wait between failed rounds (30 min).
    pub max_backoff: Duration,
    /// An address to announce instead of the one trackers see (none).
    pub ip: Option<IpAddr>,
}

impl Default for AnnouncerConfig {
    fn default() -> Self {
        AnnouncerConfig {
            numwant: 50,
            default_interval: Duration::from_secs(30 * 60),
            min_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(2 * 60 * 60),
            initial_backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(30 * 60),
            ip: None,
        }
    }
}

/// The transfer counts of an announce, read by the caller when the announce goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AnnounceStats {
    /// Payload bytes sent since the torrent started.
    pub uploaded: u64,
    /// Payload bytes received since the torrent started.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
}

/// Names one announce of one [`Announcer`], to match its outcome. Ids count up from 0 per
/// announcer: they are unique within a torrent, not across torrents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnnounceId(pub u64);

/// What an announce came to, for the engine and its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerEvent {
    /// A tracker answered.
    Announced {
        /// The tracker that answered.
        url: String,
        /// The event the announce carried.
        event: AnnounceEvent,
        /// The peers it gave, at most [`MAX_PEERS`](super::MAX_PEERS).
        peers: Vec<SocketAddr>,
        /// Seeders, if the tracker said.
        complete: Option<u32>,
        /// Leechers, if the tracker said.
        incomplete: Option<u32>,
        /// Its `warning message`, if any.
        warning: Option<String>,
    },
    /// A tracker failed; the announce moves on to the next one (or waits for the next
    /// round).
    Failed {
        /// The tracker that failed.
        url: String,
        /// The event the announce carried.
        event: AnnounceEvent,
        /// What went wrong.
        error: TrackerError,
        /// Failures of this tracker in a row, this one included.
        failures: u32,
        /// When the next announce is due: at once when another tracker of the list is
        /// next, after the backoff when the whole list has failed; `None` when nothing
        /// more is announced (a failed `stopped`).
        next_try: Option<Instant>,
    },
}

#[derive(Clone, Debug)]
struct Tracker {
    url: TrackerUrl,
    tracker_id: Option<Vec<u8>>,
    /// Whether it answered an announce of ours, so it knows us and needs no `started`.
    knows_us: bool,
    failures: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Completion {
    NotYet,
    Pending,
    Reported,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// `stopped` is due to the tracker at (tier, index), from `at` on; first a
    /// `completed` the tracker has not heard yet, if `completed_first`.
    StopPending {
        tier: usize,
        index: usize,
        at: Instant,
        completed_first: bool,
    },
    /// `stopped` went out; its outcome ends it all.
    StopSent,
    Finished,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    id: AnnounceId,
    tier: usize,
    index: usize,
    event: AnnounceEvent,
}

/// One torrent's announce schedule over its trackers (see the module docs).
#[derive(Clone, Debug)]
pub struct Announcer {
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    key: u32,
    config: AnnouncerConfig,
    tiers: Vec<Vec<Tracker>>,
    /// The tracker the current round tries next.
    cursor: (usize, usize),
    /// When the next announce of the current phase is due.
    next_at: Instant,
    in_flight: Option<InFlight>,
    next_id: u64,
    completion: Completion,
    phase: Phase,
    /// The tier whose first tracker answered last.
    last_good_tier: Option<usize>,
    /// When the last answer came and the tracker's `min interval` then.
    last_answer: Option<(Instant, Duration)>,
    /// Whether the last outcome was a failure (then early announces do not cut the wait).
    failing: bool,
    backoff: Duration,
}

impl Announcer {
    /// An announcer for one torrent whose first announce (`started`) is due at `now`.
    /// `tiers` is the torrent's announce list (or its single announce URL as one tier);
    /// `seed` shuffles the tiers and picks the `key` sent to trackers.
    pub fn new(
        info_hash: InfoHash,
        peer_id: PeerId,
        port: u16,
        tiers: Vec<Vec<String>>,
        config: AnnouncerConfig,
        seed: u64,
        now: Instant,
    ) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut seen: Vec<TrackerUrl> = Vec::new();
        let mut kept = Vec::with_capacity(tiers.len());
        for tier in tiers {
            let mut trackers = Vec::with_capacity(tier.len());
            for url in tier {
                let Ok(url) = TrackerUrl::parse(&url) else {
                    continue;
                };
                if seen.iter().any(|s| same_tracker(s, &url)) {
                    continue;
                }
                seen.push(url.clone());
                trackers.push(Tracker {
                    url,
                    tracker_id: None,
                    knows_us: false,
                    failures: 0,
                });
            }
            // Fisher–Yates, so that every client of this torrent does not start with the
            // same tracker of a tier.
            for i in (1..trackers.len()).rev() {
                trackers.swap(i, rng.below(i + 1));
            }
            if !trackers.is_empty() {
                kept.push(trackers);
            }
        }
        let backoff = config.initial_backoff;
        Announcer {
            info_hash,
            peer_id,
            port,
            key: rng.next_u32(),
            config,
            tiers: kept,
            cursor: (0, 0),
            next_at: now,
            in_flight: None,
            next_id: 0,
            completion: Completion::NotYet,
            phase: Phase::Running,
            last_good_tier: None,
            last_answer: None,
            failing: false,
            backoff,
        }
    }

    /// The trackers kept, tier by tier, in the order they are tried now.
    pub fn trackers(&self) -> impl Iterator<Item = (usize, &TrackerUrl)> + '_ {
        self.tiers
            .iter()
            .enumerate()
            .flat_map(|(tier, trackers)| trackers.iter().map(move |t| (tier, &t.url)))
    }

    /// The `key` sent with every announce of this torrent.
    pub fn key(&self) -> u32 {
        self.key
    }

    /// Sets the number of peers asked for from the next announce on (0 when the engine has
    /// all the peers it wants).
    pub fn set_numwant(&mut self, numwant: u32) {
        self.config.numwant = numwant;
    }

    /// Sets the port announced from the next announce on.
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// The announce to carry out now, if one is due: its id, the tracker and what to tell
    /// it. `stats` are the torrent's counts at this moment. Nothing else is due until its
    /// outcome comes back through [`on_response`](Self::on_response).
    pub fn poll_announce(
        &mut self,
        now: Instant,
        stats: AnnounceStats,
    ) -> Option<(AnnounceId, TrackerUrl, AnnounceParams)> {
        if self.in_flight.is_some() {
            return None;
        }
        let (tier, index, event) = match self.phase {
            Phase::Running => {
                if now < self.next_at {
                    return None;
                }
                let (tier, index) = self.cursor;
                let tracker = self.tiers.get(tier)?.get(index)?;
                let event = if self.completion == Completion::Pending {
                    AnnounceEvent::Completed
                } else if !tracker.knows_us {
                    AnnounceEvent::Started
                } else {
                    AnnounceEvent::None
                };
                (tier, index, event)
            }
            Phase::StopPending {
                tier,
                index,
                at,
                completed_first: true,
            } => {
                self.phase = Phase::StopPending {
                    tier,
                    index,
                    at,
                    completed_first: false,
                };
                (tier, index, AnnounceEvent::Completed)
            }
            Phase::StopPending { tier, index, .. } => {
                self.phase = Phase::StopSent;
                (tier, index, AnnounceEvent::Stopped)
            }
            Phase::StopSent | Phase::Finished => return None,
        };
        let tracker = self.tiers.get(tier)?.get(index)?;
        let id = AnnounceId(self.next_id);
        self.next_id += 1;
        self.in_flight = Some(InFlight {
            id,
            tier,
            index,
            event,
        });
        let params = AnnounceParams {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            port: self.port,
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            left: stats.left,
            event,
            numwant: if event == AnnounceEvent::Stopped {
                0
            } else {
                self.config.numwant
            },
            compact: true,
            key: self.key,
            tracker_id: tracker.tracker_id.clone(),
            ip: self.config.ip,
        };
        Some((id, tracker.url.clone(), params))
    }

    /// The outcome of announce `id`. Returns what to tell the user, or `None` if `id` is
    /// not the announce awaited.
    pub fn on_response(
        &mut self,
        id: AnnounceId,
        result: Result<AnnounceResponse, TrackerError>,
        now: Instant,
    ) -> Option<TrackerEvent> {
        let flight = self.in_flight.filter(|f| f.id == id)?;
        self.in_flight = None;
        let event = flight.event;
        if event == AnnounceEvent::Stopped {
            self.phase = Phase::Finished;
        }
        let tracker = self.tiers.get_mut(flight.tier)?.get_mut(flight.index)?;
        let url = tracker.url.as_str().to_string();
        match result {
            Ok(response) => {
                tracker.failures = 0;
                tracker.knows_us = true;
                if response.tracker_id.is_some() {
                    tracker.tracker_id = response.tracker_id;
                }
                if self.phase == Phase::Running {
                    self.answered(flight, response.interval, response.min_interval, now);
                }
                Some(TrackerEvent::Announced {
                    url,
                    event,
                    peers: response.peers,
                    complete: response.complete,
                    incomplete: response.incomplete,
                    warning: response.warning,
                })
            }
            Err(error) => {
                tracker.failures = tracker.failures.saturating_add(1);
                let failures = tracker.failures;
                if self.phase == Phase::Running {
                    self.failed(flight, now);
                }
                Some(TrackerEvent::Failed {
                    url,
                    event,
                    error,
                    failures,
                    next_try: self.poll_timeout(),
                })
            }
        }
    }

    fn answered(
        &mut self,
        flight: InFlight,
        interval: Duration,
        min_interval: Option<Duration>,
        now: Instant,
    ) {
        if flight.event == AnnounceEvent::Completed {
            self.completion = Completion::Reported;
        }
        // BEP 12: the tracker that answered goes to the front of its tier.
        if let Some(tier) = self.tiers.get_mut(flight.tier) {
            if flight.index < tier.len() {
                let tracker = tier.remove(flight.index);
                tier.insert(0, tracker);
            }
        }
        self.last_good_tier = Some(flight.tier);
        self.cursor = (0, 0);
        self.backoff = self.config.initial_backoff;
        self.failing = false;
        let interval = if interval.is_zero() {
            self.config.default_interval
        } else {
            interval.clamp(self.config.min_interval, self.config.max_interval)
        };
        let min_interval = min_interval.unwrap_or(Duration::ZERO).min(interval);
        self.last_answer = Some((now, min_interval));
        self.next_at = if self.completion == Completion::Pending {
            // Completed while this announce was under way.
            now
        } else {
            now + interval
        };
    }

    fn failed(&mut self, flight: InFlight, now: Instant) {
        self.failing = true;
        let (tier, index) = (flight.tier, flight.index);
        let tier_len = self.tiers.get(tier).map_or(0, Vec::len);
        if index + 1 < tier_len {
            self.cursor = (tier, index + 1);
            self.next_at = now;
        } else if tier + 1 < self.tiers.len() {
            self.cursor = (tier + 1, 0);
            self.next_at = now;
        } else {
            // Every tracker failed this round: wait, then start over from the first.
            self.cursor = (0, 0);
            self.next_at = now + self.backoff;
            self.backoff = (self.backoff * 2).min(self.config.max_backoff);
        }
    }

    /// The torrent has just completed: `completed` goes out once, at once (after the
    /// announce under way, if any; with the next round while every tracker is failing).
    pub fn on_completed(&mut self, now: Instant) {
        if self.phase != Phase::Running || self.completion != Completion::NotYet {
            return;
        }
        self.completion = Completion::Pending;
        if !self.failing {
            self.next_at = self.next_at.min(now);
        }
    }

    /// Asks for an announce sooner than the interval (say, to get more peers): at once if
    /// the tracker's `min interval` and [`AnnouncerConfig::min_interval`] since the last
    /// answer allow, else when they do. Ignored while trackers are failing.
    pub fn reannounce(&mut self, now: Instant) {
        if self.phase == Phase::Running {
            self.announce_early(now, self.config.min_interval);
        }
    }

    fn announce_early(&mut self, now: Instant, floor: Duration) {
        if self.failing {
            return;
        }
        if let Some((at, min_interval)) = self.last_answer {
            let earliest = (at + min_interval.max(floor)).max(now);
            self.next_at = self.next_at.min(earliest);
        }
    }

    /// The torrent is being removed: one best-effort `stopped` goes to the tracker that
    /// answered last (or, if none did yet, the one being asked now), and nothing after it.
    /// An announce under way is abandoned. Without such a tracker there is nothing to say,
    /// and the announcer is finished at once.
    pub fn stop(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        let target = match (self.last_good_tier, self.in_flight) {
            (Some(tier), _) => Some((tier, 0)),
            (None, Some(flight)) => Some((flight.tier, flight.index)),
            (None, None) => None,
        };
        self.in_flight = None;
        // A tracker that has not heard our `completed` hears it now: the one that answered
        // us, or the one our `started` is still on its way to (a download that ends
        // before its first answer came back was still a download).
        let completed_first = self.completion == Completion::Pending;
        self.phase = match target {
            Some((tier, index)) => Phase::StopPending {
                tier,
                index,
                at: now,
                completed_first,
            },
            None => Phase::Finished,
        };
    }

    /// Whether nothing more will be announced: after `stopped` went out and its outcome
    /// came back, or after a [`stop`](Self::stop) with nothing to say.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// When the next announce is due, if one is scheduled and none is under way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        match self.phase {
            Phase::Running if !self.tiers.is_empty() => Some(self.next_at),
            Phase::StopPending { at, .. } => Some(at),
            _ => None,
        }
    }
}

fn same_tracker(a: &TrackerUrl, b: &TrackerUrl) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port() == b.port()
        && a.path_and_query() == b.path_and_query()
}

#[cfg(test)]
mod tests;
