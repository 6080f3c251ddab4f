//! Transfer rates from byte counts and caller-supplied time.
//!
//! A [`RateMeter`] counts bytes as they move and, at each [`RateMeter::tick`], folds the bytes
//! since the last tick into an exponential moving average with a time constant of
//! [`TIME_CONSTANT`]. Ticks may come late or irregularly: the weight given to the newest
//! sample grows with the time it covers, so the average stays right in bytes per second.
//! Integer arithmetic only, so the same inputs give the same rates on every platform (the
//! choker ranks peers by them, and the engine must be deterministic).

use std::time::{Duration, Instant};

/// How quickly the average follows a change: after this long at a new rate, the average
/// has moved ~63% of the way to it.
pub const TIME_CONSTANT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
/// A byte counter and its moving-average rate (see the module docs).
pub struct RateMeter {
    total: u64,
    pending: u64,
    rate: u64,
    last_tick: Instant,
}

impl RateMeter {
    /// A meter at zero, whose first tick will cover the time since `now`.
    pub fn new(now: Instant) -> Self {
        RateMeter {
            total: 0,
            pending: 0,
            rate: 0,
            last_tick: now,
        }
    }

    /// Counts bytes that moved just now.
    pub fn add(&mut self, bytes: u64) {
        self.total += bytes;
        self.pending += bytes;
    }

    /// Folds the bytes since the last fold into the average if at least `every` has
    /// passed since it: for a meter read now and then rather than ticked on a schedule
    /// (the result is the same kind of average; only the sample boundaries differ).
    /// Returns whether it folded.
    pub fn tick_if_due(&mut self, now: Instant, every: Duration) -> bool {
        if now.saturating_duration_since(self.last_tick) < every {
            return false;
        }
        self.tick(now);
        true
    }

    /// Folds the bytes since the last tick into the average.
    pub fn tick(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_tick).as_micros();
        if dt == 0 {
            return;
        }
        let sample = u128::from(self.pending) * 1_000_000 / dt;
        // Weight dt / (tc + dt) is the first-order form of 1 - e^(-dt/tc): close for short
        // steps, too slow to forget over long ones, so a long gap is folded in steps of at
        // most a second. Integer arithmetic keeps it the same on every platform.
        let tc = TIME_CONSTANT.as_micros();
        let mut rate = u128::from(self.rate);
        let mut left = dt.min(120_000_000);
        while left > 0 {
            let step = left.min(1_000_000);
            rate = (rate * tc + sample * step) / (tc + step);
            left -= step;
        }
        if dt > 120_000_000 {
            rate = sample;
        }
        self.rate = u64::try_from(rate).unwrap_or(u64::MAX);
        self.pending = 0;
        self.last_tick = now;
    }

    /// Bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Every byte counted since creation.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_a_steady_rate_whatever_the_tick_spacing() {
        for step_ms in [100u64, 1000, 2500] {
            let start = shoal_test_clock::epoch();
            let mut m = RateMeter::new(start);
            let mut t = start;
            for _ in 0..(60_000 / step_ms) {
                t += Duration::from_millis(step_ms);
                m.add(1_000_000 * step_ms / 1000);
                m.tick(t);
            }
            let r = m.rate();
            assert!((990_000..=1_010_000).contains(&r), "step {step_ms} ms: {r}");
            assert_eq!(m.total(), 60_000_000);
        }
    }

    #[test]
    fn decays_when_idle() {
        let start = shoal_test_clock::epoch();
        let mut m = RateMeter::new(start);
        m.add(3_000_000);
        m.tick(start + Duration::from_secs(1));
        let busy = m.rate();
        m.tick(start + Duration::from_secs(20));
        assert!(
            busy > 500_000 && m.rate() < busy / 100,
            "{busy} {}",
            m.rate()
        );
        // A tick at the same instant changes nothing.
        let before = m.rate();
        m.tick(start + Duration::from_secs(20));
        assert_eq!(before, m.rate());
    }
}
