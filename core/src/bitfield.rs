//! A fixed-length set of piece indexes, as peers exchange them in `bitfield` messages.
//!
//! Bits live in `u64` words, piece `i` at bit `i % 64` of word `i / 64` (least significant
//! bit first), so scans skip 64 pieces at a time with `trailing_zeros` and a 1M-piece field
//! is ~16k word checks. The wire form (BEP 3) is different: bytes in order, the high bit of
//! byte 0 is piece 0; [`Bitfield::from_wire`] and [`Bitfield::to_wire`] convert.
//!
//! Invariants: the spare bits of the last word (indexes `len..`) are always zero, and
//! `ones` always equals the number of set bits, so [`Bitfield::count_ones`],
//! [`Bitfield::is_full`] and [`Bitfield::is_empty`] are O(1).
//!
//! Indexes at or past `len` are never an error and never panic: [`Bitfield::get`] says
//! `false` and [`Bitfield::set`] / [`Bitfield::clear`] do nothing. Callers that take an
//! index from a peer still validate it, to close the connection with a reason.

use std::fmt;

/// A set of piece indexes `0..len` with an O(1) count.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bitfield {
    words: Vec<u64>,
    len: u32,
    ones: u32,
}

/// A `bitfield` message payload that doesn't fit the torrent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BitfieldError {
    /// The payload must be `ceil(len / 8)` bytes.
    WrongLength {
        /// Bytes the torrent's piece count needs.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// A bit past the last piece is set (BEP 3: clients should drop the connection).
    SpareBitsSet,
}

impl fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitfieldError::WrongLength { expected, got } => {
                write!(f, "bitfield of {got} bytes, expected {expected}")
            }
            BitfieldError::SpareBitsSet => {
                f.write_str("bitfield has a bit set past the last piece")
            }
        }
    }
}

impl std::error::Error for BitfieldError {}

fn words_for(len: u32) -> usize {
    (len as usize).div_ceil(64)
}

/// The bits of the last word that are inside the field (all ones if the last word is full).
fn last_word_mask(len: u32) -> u64 {
    match len % 64 {
        0 => !0,
        r => (1u64 << r) - 1,
    }
}

impl Bitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            words: vec![0; words_for(len)],
            len,
            ones: 0,
        }
    }

    /// The set of all `len` pieces.
    pub fn full(len: u32) -> Bitfield {
        let mut words = vec![!0u64; words_for(len)];
        if let Some(last) = words.last_mut() {
            *last = last_word_mask(len);
        }
        Bitfield {
            words,
            len,
            ones: len,
        }
    }

    /// Parses a `bitfield` message payload for a torrent of `len` pieces.
    pub fn from_wire(bytes: &[u8], len: u32) -> Result<Bitfield, BitfieldError> {
        let expected = (len as usize).div_ceil(8);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                expected,
                got: bytes.len(),
            });
        }
        let mut words = Vec::with_capacity(words_for(len));
        let mut ones = 0;
        for chunk in bytes.chunks(8) {
            let mut be = [0u8; 8];
            be[..chunk.len()].copy_from_slice(chunk);
            // Big-endian puts byte 0's high bit (piece 0) at bit 63; reversing brings it
            // to bit 0, and piece 64w + j to bit j.
            let w = u64::from_be_bytes(be).reverse_bits();
            ones += w.count_ones();
            words.push(w);
        }
        if let Some(&last) = words.last() {
            if last & !last_word_mask(len) != 0 {
                return Err(BitfieldError::SpareBitsSet);
            }
        }
        Ok(Bitfield { words, len, ones })
    }

    /// The `bitfield` message payload: `ceil(len / 8)` bytes, spare bits zero.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.words.len() * 8);
        for &w in &self.words {
            out.extend_from_slice(&w.reverse_bits().to_be_bytes());
        }
        out.truncate((self.len as usize).div_ceil(8));
        out
    }

    /// The number of pieces the field covers.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// The number of set pieces. O(1).
    pub fn count_ones(&self) -> u32 {
        self.ones
    }

    /// True when no piece is set (including a field of length 0).
    pub fn is_empty(&self) -> bool {
        self.ones == 0
    }

    /// True when every piece is set (including a field of length 0).
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Whether piece `i` is set; `false` for `i >= len`.
    #[inline]
    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Sets piece `i`. Returns true if it was not set before; does nothing for `i >= len`.
    #[inline]
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let w = &mut self.words[(i / 64) as usize];
        let bit = 1 << (i % 64);
        if *w & bit != 0 {
            return false;
        }
        *w |= bit;
        self.ones += 1;
        true
    }

    /// Clears piece `i`. Returns true if it was set before; does nothing for `i >= len`.
    #[inline]
    pub fn clear(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let w = &mut self.words[(i / 64) as usize];
        let bit = 1 << (i % 64);
        if *w & bit == 0 {
            return false;
        }
        *w &= !bit;
        self.ones -= 1;
        true
    }

    /// The backing words: piece `i` is bit `i % 64` of word `i / 64`; bits past `len` are 0.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The set pieces in increasing order, skipping empty words whole.
    pub fn iter_ones(&self) -> Ones<'_> {
        Ones {
            words: &self.words,
            next_word: 0,
            current: 0,
            base: 0,
        }
    }

    /// The unset pieces in increasing order, skipping full words whole.
    pub fn iter_zeros(&self) -> Zeros<'_> {
        Zeros {
            words: &self.words,
            len: self.len,
            next_word: 0,
            current: 0,
            base: 0,
        }
    }

    /// The number of pieces set in both `self` and `other` (fields of different lengths
    /// are compared over the shorter).
    pub fn count_ones_and(&self, other: &Bitfield) -> u32 {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones())
            .sum()
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{} ", self.ones, self.len)?;
        if self.len <= 128 {
            for i in 0..self.len {
                f.write_str(if self.get(i) { "1" } else { "0" })?;
            }
        } else {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

/// The index of the first word at or after `i` that is not `skip` (or `words.len()`).
/// Whole runs of `skip` words go 8 at a time, a loop the compiler can vectorise.
#[inline]
fn next_word_not(words: &[u64], mut i: usize, skip: u64) -> usize {
    while i < words.len() && i & 7 != 0 {
        if words[i] != skip {
            return i;
        }
        i += 1;
    }
    while let Some(chunk) = words.get(i..i + 8) {
        if chunk.iter().fold(0, |acc, &w| acc | (w ^ skip)) != 0 {
            break;
        }
        i += 8;
    }
    while i < words.len() {
        if words[i] != skip {
            return i;
        }
        i += 1;
    }
    i
}

/// The iterator of [`Bitfield::iter_ones`].
#[derive(Clone, Debug)]
pub struct Ones<'a> {
    words: &'a [u64],
    next_word: usize,
    current: u64,
    base: u32,
}

impl Iterator for Ones<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        while self.current == 0 {
            self.next_word = next_word_not(self.words, self.next_word, 0);
            let &w = self.words.get(self.next_word)?;
            self.base = (self.next_word as u32) * 64;
            self.next_word += 1;
            self.current = w;
        }
        let bit = self.current.trailing_zeros();
        self.current &= self.current - 1;
        Some(self.base + bit)
    }
}

/// The iterator of [`Bitfield::iter_zeros`].
#[derive(Clone, Debug)]
pub struct Zeros<'a> {
    words: &'a [u64],
    len: u32,
    next_word: usize,
    current: u64,
    base: u32,
}

impl Iterator for Zeros<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        while self.current == 0 {
            // The last word's spare bits are 0, so it is never skipped as full.
            self.next_word = next_word_not(self.words, self.next_word, !0);
            let &w = self.words.get(self.next_word)?;
            self.base = (self.next_word as u32) * 64;
            self.next_word += 1;
            self.current = !w;
            if self.next_word == self.words.len() {
                self.current &= last_word_mask(self.len);
            }
        }
        let bit = self.current.trailing_zeros();
        self.current &= self.current - 1;
        Some(self.base + bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, TestResult};

    fn from_bools(bits: &[bool]) -> Bitfield {
        let mut b = Bitfield::new(bits.len() as u32);
        for (i, &x) in bits.iter().enumerate() {
            if x {
                b.set(i as u32);
            }
        }
        b
    }

    #[test]
    fn wire_order_is_high_bit_first() {
        let b = Bitfield::from_wire(&[0b1000_0001, 0b0100_0000], 10).unwrap();
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), [0, 7, 9]);
        assert_eq!(b.count_ones(), 3);
        assert_eq!(b.to_wire(), [0b1000_0001, 0b0100_0000]);
        let b = from_bools(&[false, true, true]);
        assert_eq!(b.to_wire(), [0b0110_0000]);
    }

    #[test]
    fn from_wire_refuses_wrong_lengths_and_spare_bits() {
        assert_eq!(
            Bitfield::from_wire(&[0, 0], 17),
            Err(BitfieldError::WrongLength {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            Bitfield::from_wire(&[0; 4], 17),
            Err(BitfieldError::WrongLength {
                expected: 3,
                got: 4
            })
        );
        // Piece 17 would be the second bit of byte 2: past the end of a 17-piece field.
        assert_eq!(
            Bitfield::from_wire(&[0, 0, 0b0100_0000], 17),
            Err(BitfieldError::SpareBitsSet)
        );
        assert!(Bitfield::from_wire(&[0, 0, 0b1000_0000], 17).is_ok());
        assert_eq!(Bitfield::from_wire(&[], 0), Ok(Bitfield::new(0)));
        // 64 pieces: no spare bits at all.
        let b = Bitfield::from_wire(&[0xff; 8], 64).unwrap();
        assert!(b.is_full());
    }

    #[test]
    fn full_and_new() {
        for len in [0u32, 1, 63, 64, 65, 130] {
            let f = Bitfield::full(len);
            assert_eq!(f.count_ones(), len);
            assert!(f.is_full());
            assert_eq!(f.iter_ones().count() as u32, len);
            assert_eq!(f.iter_zeros().count(), 0);
            let e = Bitfield::new(len);
            assert!(e.is_empty());
            assert_eq!(e.iter_zeros().count() as u32, len);
            assert_eq!(Bitfield::from_wire(&f.to_wire(), len), Ok(f));
        }
    }

    #[test]
    fn out_of_range_indexes_are_ignored() {
        let mut b = Bitfield::new(10);
        assert!(!b.get(10));
        assert!(!b.set(10));
        assert!(!b.set(u32::MAX));
        assert!(!b.clear(99));
        assert_eq!(b, Bitfield::new(10));
        assert!(b.set(9));
        assert!(!b.set(9));
        assert!(b.get(9));
        assert!(b.clear(9));
        assert!(!b.clear(9));
    }

    #[test]
    fn iteration_skips_whole_words() {
        let mut b = Bitfield::new(1 << 20);
        b.set(5);
        b.set(700_000);
        b.set((1 << 20) - 1);
        assert_eq!(
            b.iter_ones().collect::<Vec<_>>(),
            [5, 700_000, (1 << 20) - 1]
        );
        let f = {
            let mut f = Bitfield::full(1 << 20);
            f.clear(0);
            f.clear(123_456);
            f
        };
        assert_eq!(f.iter_zeros().collect::<Vec<_>>(), [0, 123_456]);
    }

    quickcheck! {
        fn wire_round_trip(bits: Vec<bool>) -> bool {
            let b = from_bools(&bits);
            let wire = b.to_wire();
            wire.len() == bits.len().div_ceil(8)
                && Bitfield::from_wire(&wire, bits.len() as u32) == Ok(b)
        }

        fn bytes_round_trip(bytes: Vec<u8>, spare: u8) -> TestResult {
            // Any payload whose spare bits are clear parses and re-encodes identically.
            let len = match (bytes.len() as u32 * 8).checked_sub(u32::from(spare % 8)) {
                Some(l) => l,
                None => return TestResult::discard(),
            };
            match Bitfield::from_wire(&bytes, len) {
                Ok(b) => TestResult::from_bool(b.to_wire() == bytes),
                Err(BitfieldError::SpareBitsSet) => {
                    let last = bytes[bytes.len() - 1];
                    let spare_mask = (1u8 << (spare % 8)) - 1;
                    TestResult::from_bool(last & spare_mask != 0)
                }
                Err(_) => TestResult::failed(),
            }
        }

        fn iterators_and_count_match_a_naive_scan(bits: Vec<bool>, flips: Vec<u16>) -> bool {
            let mut model = bits.clone();
            let mut b = from_bools(&bits);
            for f in flips {
                if model.is_empty() {
                    break;
                }
                let i = f as usize % model.len();
                model[i] = !model[i];
                if model[i] {
                    b.set(i as u32);
                } else {
                    b.clear(i as u32);
                }
            }
            let ones: Vec<u32> = (0..model.len() as u32).filter(|&i| model[i as usize]).collect();
            let zeros: Vec<u32> = (0..model.len() as u32).filter(|&i| !model[i as usize]).collect();
            b.iter_ones().collect::<Vec<_>>() == ones
                && b.iter_zeros().collect::<Vec<_>>() == zeros
                && b.count_ones() as usize == ones.len()
                && b.is_full() == zeros.is_empty()
                && (0..model.len()).all(|i| b.get(i as u32) == model[i])
                && b == from_bools(&model)
        }

        fn long_fields_iterate_like_a_naive_scan(len: u16, ones: Vec<u16>, full: bool) -> bool {
            // Fields of up to 64k bits with runs of empty and full words of every length.
            let len = u32::from(len);
            let mut model = vec![full; len as usize];
            let mut b = if full { Bitfield::full(len) } else { Bitfield::new(len) };
            for &i in &ones {
                let i = u32::from(i);
                if i < len {
                    model[i as usize] = !full;
                    if full { b.clear(i); } else { b.set(i); }
                }
            }
            let want_ones: Vec<u32> = (0..len).filter(|&i| model[i as usize]).collect();
            let want_zeros: Vec<u32> = (0..len).filter(|&i| !model[i as usize]).collect();
            b.iter_ones().collect::<Vec<_>>() == want_ones
                && b.iter_zeros().collect::<Vec<_>>() == want_zeros
        }

        fn and_count_matches(a: Vec<bool>, b: Vec<bool>) -> bool {
            let n = a.len().min(b.len());
            let (x, y) = (from_bools(&a[..n]), from_bools(&b[..n]));
            x.count_ones_and(&y) as usize == (0..n).filter(|&i| a[i] && b[i]).count()
        }
    }
}
