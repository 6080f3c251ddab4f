//! Rules a client applies to one torrent, the same whichever runtime drives the engine:
//! when seeding has gone on long enough ([`SeedLimit`]) and when trackers that never
//! answer mean the download cannot go anywhere ([`TrackerWatch`]).

use std::time::{Duration, Instant};

use super::{Event, TorrentStats};
use crate::tracker::TrackerError;

/// When a complete torrent stops seeding. Both unset (the default): never.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SeedLimit {
    /// Stop once uploaded ≥ `ratio` × the torrent's size (a ratio of 0 sets no limit).
    pub ratio: Option<f64>,
    /// Stop once it has been complete for this long.
    pub time: Option<Duration>,
}

impl SeedLimit {
    /// Whether a torrent with these figures, complete for `seeding_for`, has seeded enough.
    pub fn reached(&self, stats: &TorrentStats, seeding_for: Duration) -> bool {
        let by_ratio = self
            .ratio
            .is_some_and(|r| r > 0.0 && stats.uploaded as f64 >= r * stats.total_length as f64);
        let by_time = self.time.is_some_and(|t| seeding_for >= t);
        by_ratio || by_time
    }
}

/// Watches a torrent's tracker answers for its user: says what happened as it happens
/// ([`TrackerWatch::report`]: a failure with when the next try is, a refusal as a
/// refusal, the first answer and every recovery), and, for a download, when every
/// announce keeps failing and no peer was ever reached (none was given by hand either),
/// that waiting longer is pointless ([`TrackerWatch::observe`]).
#[derive(Clone, Debug)]
pub struct TrackerWatch {
    failures: u32,
    reached_a_peer: bool,
    /// Whether the last outcome was an answer (then only a change is worth a line).
    answering: bool,
}

impl TrackerWatch {
    /// Failed announces in a row, with no peer ever connected, after which to give up.
    pub const GIVE_UP_AFTER: u32 = 4;

    /// `peers_given`: the user named peers to dial, so trackers are not the only way.
    pub fn new(peers_given: bool) -> TrackerWatch {
        TrackerWatch {
            failures: 0,
            reached_a_peer: peers_given,
            answering: false,
        }
    }

    /// Takes an event of the watched torrent; `Some(message)` when it is time to give up.
    pub fn observe(&mut self, event: &Event) -> Option<String> {
        match event {
            Event::PeerConnected { .. } => self.peer_connected(),
            Event::TrackerAnswer { .. } => self.answered(),
            Event::TrackerError { url, error, .. } => return self.failed(url, error),
            _ => {}
        }
        None
    }

    /// The line to show the user for a tracker event at `now`, if it is worth one: every
    /// failure (with what the tracker said or why it could not be reached, and when the
    /// next try is), and an answer when it is the first or follows failures. Call it
    /// before [`observe`](Self::observe) with the same event.
    pub fn report(&self, event: &Event, now: Instant) -> Option<String> {
        match event {
            Event::TrackerAnswer {
                url,
                peers,
                seeders,
                leechers,
                ..
            } => self.report_answer(url, *peers, *seeders, *leechers),
            Event::TrackerError {
                url,
                error,
                next_try,
                ..
            } => Some(Self::report_failure(url, error, *next_try, now)),
            _ => None,
        }
    }

    /// [`report`](Self::report) of an answer, from its parts (for a runtime with events
    /// of its own).
    pub fn report_answer(
        &self,
        url: &str,
        peers: usize,
        seeders: Option<u32>,
        leechers: Option<u32>,
    ) -> Option<String> {
        if self.answering {
            return None;
        }
        let counts = match (seeders, leechers) {
            (Some(s), Some(l)) => format!(" ({s} seeds, {l} leechers)"),
            _ => String::new(),
        };
        Some(format!("tracker {url}: {peers} peers{counts}"))
    }

    /// [`report`](Self::report) of a failure, from its parts.
    pub fn report_failure(
        url: &str,
        error: &TrackerError,
        next_try: Option<Instant>,
        now: Instant,
    ) -> String {
        let what = match error {
            TrackerError::Failure(reason) => format!("tracker {url} refused: {reason}"),
            other => format!("tracker {url}: {other}"),
        };
        let next = match next_try {
            Some(at) if at > now => {
                let secs = at.saturating_duration_since(now).as_secs_f64().ceil();
                format!("; next try in {secs:.0} s")
            }
            Some(_) => "; trying the next tracker".into(),
            None => String::new(),
        };
        format!("{what}{next}")
    }

    /// A peer connection was made.
    pub fn peer_connected(&mut self) {
        self.reached_a_peer = true;
    }

    /// A tracker answered.
    pub fn answered(&mut self) {
        self.failures = 0;
        self.answering = true;
    }

    /// A tracker failed; `Some(message)` when it is time to give up. A tracker that
    /// refuses the torrent is not called unreachable.
    pub fn failed(&mut self, url: &str, error: &TrackerError) -> Option<String> {
        self.failures += 1;
        self.answering = false;
        (!self.reached_a_peer && self.failures >= Self::GIVE_UP_AFTER).then(|| match error {
            TrackerError::Failure(reason) => format!(
                "the tracker refused this torrent ({} tries; {url} said: {reason})",
                self.failures
            ),
            _ => format!(
                "no tracker reachable after {} tries; last error from {url}: {error}",
                self.failures
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TorrentId;

    fn stats(uploaded: u64) -> TorrentStats {
        TorrentStats {
            pieces_verified: 4,
            piece_count: 4,
            bytes_verified: 1000,
            total_length: 1000,
            downloaded: 1000,
            uploaded,
            download_rate: 0,
            upload_rate: 0,
            peers: 1,
            complete: true,
        }
    }

    #[test]
    fn seed_limits() {
        let ratio = SeedLimit {
            ratio: Some(1.0),
            time: None,
        };
        assert!(!ratio.reached(&stats(999), Duration::ZERO));
        assert!(ratio.reached(&stats(1000), Duration::ZERO));
        let hour = SeedLimit {
            ratio: None,
            time: Some(Duration::from_secs(3600)),
        };
        assert!(!hour.reached(&stats(0), Duration::from_secs(60)));
        assert!(hour.reached(&stats(0), Duration::from_secs(3600)));
        assert!(!SeedLimit::default().reached(&stats(u64::MAX), Duration::MAX));
        let zero = SeedLimit {
            ratio: Some(0.0),
            time: None,
        };
        assert!(!zero.reached(&stats(5000), Duration::ZERO));
    }

    fn failure() -> Event {
        failure_of(TrackerError::Timeout, None)
    }

    fn failure_of(error: TrackerError, next_try: Option<Instant>) -> Event {
        Event::TrackerError {
            torrent: TorrentId(0),
            url: "http://t/announce".into(),
            error,
            failures: 1,
            next_try,
        }
    }

    fn answer(seeders: Option<u32>) -> Event {
        Event::TrackerAnswer {
            torrent: TorrentId(0),
            url: "http://t/announce".into(),
            peers: 3,
            seeders,
            leechers: seeders.map(|s| s + 1),
            warning: None,
        }
    }

    /// Every failure is worth a line saying when the next try is; a refusal says so and
    /// is not called unreachable; answers are shown the first time and after failures.
    #[test]
    fn tracker_trouble_is_reported_as_it_happens() {
        let now = shoal_test_clock::epoch();
        let mut w = TrackerWatch::new(false);
        let refused = failure_of(
            TrackerError::Failure("unregistered torrent".into()),
            Some(now + Duration::from_millis(14_200)),
        );
        assert_eq!(
            w.report(&refused, now).unwrap(),
            "tracker http://t/announce refused: unregistered torrent; next try in 15 s"
        );
        let next = failure_of(TrackerError::Timeout, Some(now));
        assert_eq!(
            w.report(&next, now).unwrap(),
            "tracker http://t/announce: tracker did not answer in time; trying the next tracker"
        );
        assert!(w.observe(&refused).is_none());
        let first = answer(Some(1));
        assert_eq!(
            w.report(&first, now).unwrap(),
            "tracker http://t/announce: 3 peers (1 seeds, 2 leechers)"
        );
        w.observe(&first);
        assert_eq!(w.report(&answer(None), now), None);
        w.observe(&next);
        assert_eq!(
            w.report(&answer(None), now).unwrap(),
            "tracker http://t/announce: 3 peers"
        );
        // Given up on: a refusal is named as one.
        let mut w = TrackerWatch::new(false);
        let last = (0..TrackerWatch::GIVE_UP_AFTER)
            .filter_map(|_| w.observe(&refused))
            .last()
            .unwrap();
        assert!(
            last.starts_with("the tracker refused this torrent"),
            "{last}"
        );
        assert!(!last.contains("reachable"), "{last}");
    }

    #[test]
    fn gives_up_only_when_alone_and_failing() {
        let mut w = TrackerWatch::new(false);
        for _ in 1..TrackerWatch::GIVE_UP_AFTER {
            assert_eq!(w.observe(&failure()), None);
        }
        assert!(w
            .observe(&failure())
            .unwrap()
            .contains("no tracker reachable"));
        let mut given = TrackerWatch::new(true);
        for _ in 0..10 {
            assert_eq!(given.observe(&failure()), None);
        }
        let mut answered = TrackerWatch::new(false);
        for _ in 1..TrackerWatch::GIVE_UP_AFTER {
            answered.observe(&failure());
        }
        answered.observe(&answer(None));
        assert_eq!(answered.observe(&failure()), None);
    }
}
