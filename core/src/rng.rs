//! A small seeded pseudo-random number generator for the core's decisions.
//!
//! The core never touches global or OS randomness: every random choice (the order in which
//! equally rare pieces are tried, random first pieces, …) comes from an [`Rng`] seeded by the
//! caller, so the same seed and the same inputs give the same outputs on every platform.
//!
//! The generator is xoshiro256** (Blackman and Vigna), its 256-bit state filled from the
//! 64-bit seed by SplitMix64 as its authors recommend. It is fast, small and statistically
//! sound for simulation; it is **not** cryptographically secure and must not be used for
//! anything an attacker must not predict (peer ids, tokens).

/// xoshiro256**, seeded through SplitMix64. Deterministic across platforms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

/// One step of SplitMix64: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole output stream is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = splitmix64(&mut sm);
        }
        // xoshiro's one forbidden state. SplitMix64 is a bijection on its counter, so four
        // consecutive outputs are never all zero, but keep the guarantee local and explicit.
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// The next 32 random bits (the high half of [`next_u64`](Self::next_u64), the better
    /// half of xoshiro's output).
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniformly distributed integer in `0..n`, without modulo bias (Lemire's
    /// multiply-and-reject method). Returns 0 when `n` is 0, so callers with a possibly
    /// empty range never panic.
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let mut m = u64::from(self.next_u32()) * u64::from(n);
        if (m as u32) < n {
            // Reject the few low products that would over-represent some results.
            let threshold = n.wrapping_neg() % n;
            while (m as u32) < threshold {
                m = u64::from(self.next_u32()) * u64::from(n);
            }
        }
        (m >> 32) as u32
    }

    /// A uniformly distributed integer in `0..n` for 64-bit ranges; 0 when `n` is 0.
    pub fn below_u64(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Puts `items` in a uniformly random order (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = if i < u32::MAX as usize {
                self.below(i as u32 + 1) as usize
            } else {
                self.below_u64(i as u64 + 1) as usize
            };
            items.swap(i, j);
        }
    }

    #[cfg(test)]
    fn from_state(s: [u64; 4]) -> Rng {
        Rng { s }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_vector() {
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut s), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(splitmix64(&mut s), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn xoshiro256starstar_matches_the_reference_outputs() {
        let mut r = Rng::from_state([1, 2, 3, 4]);
        let expected = [
            11520,
            0,
            1509978240,
            1215971899390074240,
            1216172134540287360,
            607988272756665600,
            16172922978634559625,
            8476171486693032832,
            10595114339597558777,
            2904607092377533576,
        ];
        for e in expected {
            assert_eq!(r.next_u64(), e);
        }
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..64).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..64).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..64).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        assert_eq!(r.below_u64(0), 0);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let x = r.below(7);
            seen[x as usize] += 1;
        }
        // Each value expected 1000 times; a fair generator stays well inside ±20%.
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
        for n in [2u32, 3, 1000, u32::MAX] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        for n in [2u64, 3, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(r.below_u64(n) < n);
            }
        }
    }

    #[test]
    fn below_is_unbiased_for_a_range_near_the_word_size() {
        // With n = 3·2^30, plain `x % n` would pick the low third twice as often.
        let n = 3u32 << 30;
        let mut r = Rng::new(99);
        let low = (0..30_000).filter(|_| r.below(n) < (1 << 30)).count();
        assert!((9_000..11_000).contains(&low), "{low}");
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        Rng::new(3).shuffle(&mut v);
        let mut w: Vec<u32> = (0..100).collect();
        Rng::new(3).shuffle(&mut w);
        assert_eq!(v, w);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
        let mut empty: [u8; 0] = [];
        Rng::new(3).shuffle(&mut empty);
        let mut one = [5];
        Rng::new(3).shuffle(&mut one);
        assert_eq!(one, [5]);
    }

    #[test]
    fn shuffle_positions_are_roughly_uniform() {
        // Where element 0 of a 4-element slice lands, over many shuffles.
        let mut r = Rng::new(11);
        let mut at = [0u32; 4];
        for _ in 0..8000 {
            let mut v = [0u8, 1, 2, 3];
            r.shuffle(&mut v);
            at[v.iter().position(|&x| x == 0).unwrap()] += 1;
        }
        assert!(at.iter().all(|&c| (1700..2300).contains(&c)), "{at:?}");
    }
}
