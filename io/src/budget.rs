//! The disk budget: every byte between a peer's socket and the disk, counted, bounded, and
//! turned into back-pressure.
//!
//! A download's bytes wait in three places on their way to disk:
//!
//! - **received**: read from a socket, not yet through the engine (a runtime whose socket
//!   readers run apart from the engine, like the async one, charges each read here until
//!   the engine has taken it);
//! - **staged**: blocks held in a [`WriteBack`](crate::WriteBack) cache until their piece
//!   is hashed (all torrents of a runtime share one bound, [`DiskLimits::write_back`]);
//! - **writing**: blocks the cache had no room for, queued for a worker or being written.
//!
//! [`DiskBudget`] counts all three (and their peaks). When their sum reaches
//! [`DiskLimits::high`], [`paused`](DiskBudget::paused) turns true and the runtime stops
//! reading peers' sockets, so TCP slows the senders instead of shoal buffering; once the
//! disk has caught up to [`DiskLimits::low`] reading resumes. The peak memory of a
//! download is then a function of these limits (plus one read's worth per socket read
//! after the last check), never of the file's size or the disk's speed.
//!
//! Invariants:
//!
//! - Every charge is released exactly once: [`Charge`] releases on drop, and a
//!   `WriteBack` releases what it still holds when it is dropped.
//! - `write_back <= low`, so blocks of pieces that cannot complete while reading is paused
//!   (their other blocks are still in a socket) can never hold reading paused for ever:
//!   with every write done and every complete piece hashed, the total is at most
//!   `write_back`.
//!
//! [`DiskLimits::slow_disk`] is a knob for tests and benchmarks only: it makes every
//! block and piece write take at least as long as a disk of that speed would (a sleep per
//! write, on the worker), so the back-pressure above can be seen at work without a slow
//! device. The `shoal` command reads it from `SHOAL_SLOW_DISK` (bytes per second).

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The bounds of a [`DiskBudget`], in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLimits {
    /// Bytes on their way to disk at which reading sockets pauses.
    pub high: usize,
    /// Bytes on their way to disk at which paused reading resumes (at most `high`).
    pub low: usize,
    /// Of those, the most held in write-back caches, all torrents together (at most
    /// `low`; past it blocks are written at once and their piece hashed from disk).
    pub write_back: usize,
    /// Tests and benchmarks: each write sleeps as if the disk took this many bytes per
    /// second (per worker). `None`: as fast as the disk is.
    pub slow_disk: Option<u64>,
}

impl Default for DiskLimits {
    /// 24 MiB on the way to disk at most (plus one read per socket), 16 MiB to resume,
    /// 12 MiB of it staged for hashing from memory.
    fn default() -> Self {
        DiskLimits {
            high: 24 << 20,
            low: 16 << 20,
            write_back: 12 << 20,
            slow_disk: None,
        }
    }
}

impl DiskLimits {
    /// The limits with `low <= high` and `write_back <= low` (see the module docs).
    pub fn normalised(self) -> DiskLimits {
        let low = self.low.min(self.high);
        DiskLimits {
            low,
            write_back: self.write_back.min(low),
            ..self
        }
    }

    /// The defaults, with [`slow_disk`](Self::slow_disk) from the environment variable
    /// `SHOAL_SLOW_DISK` (bytes per second; for tests and benchmarks) when it is set.
    pub fn from_env() -> DiskLimits {
        DiskLimits {
            slow_disk: std::env::var("SHOAL_SLOW_DISK")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
            ..DiskLimits::default()
        }
    }

    /// How long a write of `bytes` should take on the simulated slow disk.
    pub fn write_time(&self, bytes: usize) -> Option<Duration> {
        let rate = self.slow_disk.filter(|&r| r > 0)?;
        Some(Duration::from_secs_f64(bytes as f64 / rate as f64))
    }
}

/// Where a charge waits (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Received,
    Staged,
    Writing,
}

/// The figures of a [`DiskBudget`]: now, and the highest each has been.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub received: usize,
    pub staged: usize,
    pub writing: usize,
    pub peak_received: usize,
    pub peak_staged: usize,
    pub peak_writing: usize,
    /// The highest sum of the three.
    pub peak_total: usize,
    /// How many times reading was paused.
    pub pauses: u64,
    pub paused: bool,
}

impl DiskStats {
    /// Bytes on their way to disk now.
    pub fn total(&self) -> usize {
        self.received + self.staged + self.writing
    }
}

/// Bytes between sockets and disk, shared by a runtime's event loop and its workers; see
/// the module docs.
#[derive(Debug)]
pub struct DiskBudget {
    limits: DiskLimits,
    state: Mutex<DiskStats>,
}

impl DiskBudget {
    pub fn new(limits: DiskLimits) -> Arc<DiskBudget> {
        Arc::new(DiskBudget {
            limits: limits.normalised(),
            state: Mutex::new(DiskStats::default()),
        })
    }

    pub fn limits(&self) -> DiskLimits {
        self.limits
    }

    /// Whether sockets should not be read now (past `high`, not yet back to `low`).
    pub fn paused(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.paused)
    }

    pub fn stats(&self) -> DiskStats {
        self.state
            .lock()
            .map_or_else(|_| DiskStats::default(), |s| *s)
    }

    /// Counts `bytes` at `stage` until the returned [`Charge`] is dropped.
    pub fn charge(self: &Arc<Self>, stage: Stage, bytes: usize) -> Charge {
        self.add(stage, bytes);
        Charge {
            budget: self.clone(),
            stage,
            bytes,
        }
    }

    /// Counts `bytes` as staged if the write-back bound has room for them (the caller
    /// releases them with [`unstage`](Self::unstage)).
    pub(crate) fn try_stage(&self, bytes: usize) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        if s.staged + bytes > self.limits.write_back {
            return false;
        }
        self.apply(&mut s, Stage::Staged, bytes as isize);
        true
    }

    pub(crate) fn unstage(&self, bytes: usize) {
        self.sub(Stage::Staged, bytes);
    }

    fn add(&self, stage: Stage, bytes: usize) {
        if let Ok(mut s) = self.state.lock() {
            self.apply(&mut s, stage, bytes as isize);
        }
    }

    fn sub(&self, stage: Stage, bytes: usize) {
        if let Ok(mut s) = self.state.lock() {
            self.apply(&mut s, stage, -(bytes as isize));
        }
    }

    fn apply(&self, s: &mut DiskStats, stage: Stage, delta: isize) {
        let (now, peak) = match stage {
            Stage::Received => (&mut s.received, &mut s.peak_received),
            Stage::Staged => (&mut s.staged, &mut s.peak_staged),
            Stage::Writing => (&mut s.writing, &mut s.peak_writing),
        };
        *now = now.saturating_add_signed(delta);
        *peak = (*peak).max(*now);
        let total = s.total();
        s.peak_total = s.peak_total.max(total);
        if !s.paused && total >= self.limits.high {
            s.paused = true;
            s.pauses += 1;
        } else if s.paused && total <= self.limits.low {
            s.paused = false;
        }
    }
}

/// Bytes counted in a [`DiskBudget`] while this lives.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<DiskBudget>,
    stage: Stage,
    bytes: usize,
}

impl Charge {
    pub fn budget(&self) -> &Arc<DiskBudget> {
        &self.budget
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.sub(self.stage, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DiskLimits {
        DiskLimits {
            high: 100,
            low: 50,
            write_back: 40,
            slow_disk: None,
        }
    }

    #[test]
    fn reading_pauses_at_high_and_resumes_at_low() {
        let b = DiskBudget::new(limits());
        let a = b.charge(Stage::Writing, 60);
        assert!(!b.paused());
        let c = b.charge(Stage::Received, 40);
        assert!(b.paused(), "100 bytes is the high mark");
        drop(a);
        assert!(!b.paused(), "40 is at most low");
        let s = b.stats();
        assert!(!s.paused && s.pauses == 1 && s.peak_total == 100, "{s:?}");
        let d = b.charge(Stage::Writing, 55);
        assert!(!b.paused(), "95 is under high");
        drop((c, d));
        assert_eq!(b.stats().total(), 0);
    }

    #[test]
    fn hysteresis_keeps_reading_paused_until_low() {
        let b = DiskBudget::new(limits());
        let a = b.charge(Stage::Writing, 70);
        let c = b.charge(Stage::Writing, 30);
        assert!(b.paused());
        drop(c);
        assert!(b.paused(), "70 is above low: still paused");
        let d = b.charge(Stage::Writing, 1);
        drop(a);
        assert!(!b.paused());
        drop(d);
    }

    #[test]
    fn staging_stops_at_the_write_back_bound() {
        let b = DiskBudget::new(limits());
        assert!(b.try_stage(30));
        assert!(!b.try_stage(11));
        assert!(b.try_stage(10));
        b.unstage(40);
        let s = b.stats();
        assert_eq!((s.staged, s.peak_staged), (0, 40));
    }

    #[test]
    fn limits_are_normalised_so_staged_blocks_cannot_hold_reading_paused() {
        let l = DiskLimits {
            high: 10,
            low: 20,
            write_back: 30,
            slow_disk: None,
        }
        .normalised();
        assert_eq!((l.high, l.low, l.write_back), (10, 10, 10));
        assert_eq!(
            DiskLimits {
                slow_disk: Some(1000),
                ..l
            }
            .write_time(500),
            Some(Duration::from_millis(500))
        );
    }
}
