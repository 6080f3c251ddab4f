//! A keyed hash for the swarm table's maps: SipHash-1-3 with a key from the caller's secret.
//!
//! Info-hashes and addresses are chosen by remote clients, so a hash function they can
//! predict would let them pile every entry into one bucket. SipHash with a secret key is
//! the usual answer (it is what `std` uses, keyed from the OS); here the key comes from
//! [`ServerConfig::secret`](super::ServerConfig::secret), so the core reads no global
//! randomness and the same secret gives the same maps. Only lookups go through these maps:
//! nothing iterates them, so their order never reaches an answer.

use std::hash::{BuildHasher, Hasher};

/// Builds [`SipHasher`]s with one fixed key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyedState {
    k0: u64,
    k1: u64,
}

impl KeyedState {
    pub(crate) fn new(k0: u64, k1: u64) -> Self {
        KeyedState { k0, k1 }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = SipHasher<1, 3>;

    fn build_hasher(&self) -> Self::Hasher {
        SipHasher::new(self.k0, self.k1)
    }
}

/// SipHash-C-D (Aumasson and Bernstein), streaming: `C` rounds per 8-byte word, `D` to
/// finish.
#[derive(Clone, Debug)]
pub(crate) struct SipHasher<const C: usize, const D: usize> {
    v: [u64; 4],
    /// Bytes not yet compressed, little-endian, `ntail` of them.
    tail: u64,
    ntail: usize,
    length: usize,
}

impl<const C: usize, const D: usize> SipHasher<C, D> {
    pub(crate) fn new(k0: u64, k1: u64) -> Self {
        SipHasher {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            ntail: 0,
            length: 0,
        }
    }

    #[inline]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        for _ in 0..C {
            Self::round(&mut self.v);
        }
        self.v[0] ^= m;
    }
}

impl<const C: usize, const D: usize> Hasher for SipHasher<C, D> {
    fn write(&mut self, bytes: &[u8]) {
        self.length = self.length.wrapping_add(bytes.len());
        let mut rest = bytes;
        if self.ntail > 0 {
            while let Some((&b, more)) = rest.split_first() {
                if self.ntail == 8 {
                    break;
                }
                self.tail |= u64::from(b) << (8 * self.ntail);
                self.ntail += 1;
                rest = more;
            }
            if self.ntail < 8 {
                return;
            }
            let m = self.tail;
            self.compress(m);
            self.tail = 0;
            self.ntail = 0;
        }
        let mut words = rest.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.compress(u64::from_le_bytes(w));
        }
        for &b in words.remainder() {
            self.tail |= u64::from(b) << (8 * self.ntail);
            self.ntail += 1;
        }
    }

    fn finish(&self) -> u64 {
        let b = ((self.length as u64 & 0xff) << 56) | self.tail;
        let mut v = self.v;
        v[3] ^= b;
        for _ in 0..C {
            Self::round(&mut v);
        }
        v[0] ^= b;
        v[2] ^= 0xff;
        for _ in 0..D {
            Self::round(&mut v);
        }
        v[0] ^ v[1] ^ v[2] ^ v[3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    #[test]
    fn siphash_2_4_matches_the_paper() {
        // Appendix A of the SipHash paper: key 00..0f, message 00..0e.
        let message: Vec<u8> = (0..15).collect();
        let mut h = SipHasher::<2, 4>::new(K0, K1);
        h.write(&message);
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn streaming_in_pieces_gives_the_same_hash() {
        let message: Vec<u8> = (0..61).collect();
        let mut whole = SipHasher::<1, 3>::new(K0, K1);
        whole.write(&message);
        for split in [1, 3, 7, 8, 9, 20, 60] {
            let mut parts = SipHasher::<1, 3>::new(K0, K1);
            let (a, b) = message.split_at(split);
            parts.write(a);
            parts.write(&[]);
            parts.write(b);
            assert_eq!(parts.finish(), whole.finish(), "split at {split}");
        }
        let mut other_key = SipHasher::<1, 3>::new(K0 ^ 1, K1);
        other_key.write(&message);
        assert_ne!(other_key.finish(), whole.finish());
    }
}
