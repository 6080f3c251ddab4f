//! Rules a client applies to one torrent, the same whichever runtime drives the engine:
//! when seeding has gone on long enough ([`SeedLimit`]) and when trackers that never
//! answer mean the download cannot go anywhere ([`TrackerWatch`]).

use std::time::Duration;

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

/// Watches a download's tracker answers: when every announce keeps failing and no peer was
/// ever reached (none was given by hand either), waiting longer is pointless and the user
/// should hear why.
#[derive(Clone, Debug)]
pub struct TrackerWatch {
    failures: u32,
    reached_a_peer: bool,
}

impl TrackerWatch {
    /// Failed announces in a row, with no peer ever connected, after which to give up.
    pub const GIVE_UP_AFTER: u32 = 4;

    /// `peers_given`: the user named peers to dial, so trackers are not the only way.
    pub fn new(peers_given: bool) -> TrackerWatch {
        TrackerWatch {
            failures: 0,
            reached_a_peer: peers_given,
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

    /// A peer connection was made.
    pub fn peer_connected(&mut self) {
        self.reached_a_peer = true;
    }

    /// A tracker answered.
    pub fn answered(&mut self) {
        self.failures = 0;
    }

    /// A tracker failed; `Some(message)` when it is time to give up.
    pub fn failed(&mut self, url: &str, error: &TrackerError) -> Option<String> {
        self.failures += 1;
        (!self.reached_a_peer && self.failures >= Self::GIVE_UP_AFTER).then(|| {
            format!(
                "no tracker reachable after {} tries; last error from {url}: {error}",
                self.failures
            )
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
        Event::TrackerError {
            torrent: TorrentId(0),
            url: "http://t/announce".into(),
            error: TrackerError::Failure("refused".into()),
            failures: 1,
        }
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
        answered.observe(&Event::TrackerAnswer {
            torrent: TorrentId(0),
            url: "u".into(),
            peers: 0,
            seeders: None,
            leechers: None,
            warning: None,
        });
        assert_eq!(answered.observe(&failure()), None);
    }
}
