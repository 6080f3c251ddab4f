//! 160-bit node ids and the XOR metric (BEP 5).
//!
//! Node ids and info-hashes live in the same 160-bit space. The distance between two ids
//! is their XOR read as an unsigned big-endian integer, so comparing distances is comparing
//! byte arrays, and the number of leading bits two ids share decides which routing-table
//! bucket one falls in from the other's point of view.

use std::fmt;

use crate::rng::Rng;
use crate::InfoHash;

/// A DHT node's id, or any point of the id space (an info-hash, a lookup target).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

/// The XOR distance between two ids. Orders as the unsigned integer it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Distance(pub [u8; 20]);

impl NodeId {
    /// An id drawn from the caller's seeded generator.
    pub fn random(rng: &mut Rng) -> NodeId {
        let mut id = [0u8; 20];
        for chunk in id.chunks_mut(8) {
            let word = rng.next_u64().to_be_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        NodeId(id)
    }

    /// `self XOR other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// How many leading bits `self` and `other` share (160 when equal).
    pub fn common_prefix(&self, other: &NodeId) -> usize {
        self.distance(other).leading_zeros()
    }

    /// A random id that shares exactly `bits` leading bits with `self` (all 160 when
    /// `bits >= 160`): the target of a refresh of the bucket at depth `bits`.
    pub fn random_at_prefix(&self, bits: usize, rng: &mut Rng) -> NodeId {
        if bits >= 160 {
            return *self;
        }
        let mut out = NodeId::random(rng).0;
        for i in 0..bits {
            set_bit(&mut out, i, bit(&self.0, i));
        }
        set_bit(&mut out, bits, !bit(&self.0, bits));
        NodeId(out)
    }
}

fn bit(bytes: &[u8; 20], i: usize) -> bool {
    bytes[i / 8] & (0x80 >> (i % 8)) != 0
}

fn set_bit(bytes: &mut [u8; 20], i: usize, value: bool) {
    if value {
        bytes[i / 8] |= 0x80 >> (i % 8);
    } else {
        bytes[i / 8] &= !(0x80 >> (i % 8));
    }
}

impl Distance {
    /// Leading zero bits (160 for distance zero).
    pub fn leading_zeros(&self) -> usize {
        for (i, byte) in self.0.iter().enumerate() {
            if *byte != 0 {
                return i * 8 + byte.leading_zeros() as usize;
            }
        }
        160
    }
}

impl From<InfoHash> for NodeId {
    fn from(hash: InfoHash) -> NodeId {
        NodeId(hash.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    impl Arbitrary for NodeId {
        fn arbitrary(g: &mut Gen) -> NodeId {
            let mut id = [0u8; 20];
            for b in &mut id {
                *b = u8::arbitrary(g);
            }
            NodeId(id)
        }
    }

    quickcheck! {
        fn distance_is_a_metric(a: NodeId, b: NodeId, c: NodeId) -> bool {
            let ab = a.distance(&b);
            // XOR is symmetric, zero exactly on equal ids, and a ^ c = (a ^ b) ^ (b ^ c):
            // the triangle inequality holds because x ^ y <= x + y.
            let ac = u128_prefix(&a.distance(&c));
            let sum = u128_prefix(&ab).saturating_add(u128_prefix(&b.distance(&c)));
            ab == b.distance(&a) && (ab == Distance::default()) == (a == b) && ac <= sum.saturating_add(1)
        }

        fn common_prefix_matches_bits(a: NodeId, b: NodeId) -> bool {
            let n = a.common_prefix(&b);
            (0..n).all(|i| bit(&a.0, i) == bit(&b.0, i)) && (n == 160 || bit(&a.0, n) != bit(&b.0, n))
        }

        fn random_at_prefix_shares_exactly(a: NodeId, bits: u8, seed: u64) -> bool {
            let bits = usize::from(bits) % 160;
            let mut rng = Rng::new(seed);
            a.common_prefix(&a.random_at_prefix(bits, &mut rng)) == bits
        }
    }

    /// The top 96 bits of a distance, as a number: enough to check the triangle inequality
    /// without 160-bit arithmetic. Truncating both terms of a sum can lose one unit, hence
    /// the `+ 1` above.
    fn u128_prefix(d: &Distance) -> u128 {
        let mut bytes = [0u8; 16];
        bytes[4..].copy_from_slice(&d.0[..12]);
        u128::from_be_bytes(bytes)
    }

    #[test]
    fn distances_order_as_integers() {
        let zero = NodeId([0; 20]);
        let mut one = [0; 20];
        one[19] = 1;
        let mut big = [0; 20];
        big[0] = 0x80;
        assert!(zero.distance(&NodeId(one)) < zero.distance(&NodeId(big)));
        assert_eq!(zero.distance(&NodeId(big)).leading_zeros(), 0);
        assert_eq!(zero.distance(&NodeId(one)).leading_zeros(), 159);
    }
}
