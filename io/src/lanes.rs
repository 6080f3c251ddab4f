//! SHA-1 of many pieces at once: one message in each of the 16 lanes of AVX-512 registers.
//!
//! A download's CPU goes mostly to hashing its pieces. One SHA-1 is a chain of 80 dependent
//! rounds per 64-byte block, so even the processor's SHA instructions (SHA-NI, what the
//! `sha1` crate uses) leave most of a core's execution units idle waiting for the previous
//! round. Sixteen independent messages, one per 32-bit lane of a 512-bit register, keep
//! them busy: the rounds are the same additions, rotations and three-input logic
//! (`vpternlogd`), done for sixteen pieces by one instruction each. On this project's
//! machine (an Intel Xeon VM) sixteen 256 KiB pieces hash at 2.9× the throughput of SHA-NI
//! on one piece at a time; the rounds cost the same however many lanes hold a piece, so
//! eight pieces get 1.9× and five 1.1× (`cargo bench -p shoal-benches --bench lanes`).
//!
//! [`digests`] takes the pieces a runtime has gathered and picks the way: the lanes when the
//! processor has AVX-512 and there are enough pieces to fill them ([`MIN_LANES`]), the
//! `sha1` crate one piece at a time otherwise. Both give the same digests (the tests check
//! the lanes against the crate on messages of every length and split).

use sha1::{Digest, Sha1};

/// Messages hashed together, at most: the 32-bit lanes of a 512-bit register.
pub const LANES: usize = 16;

/// Below this many messages [`digests`] hashes them one by one: the rounds cost the same
/// however many lanes hold a message, and a few messages are done sooner with SHA-NI.
pub const MIN_LANES: usize = 5;

/// The SHA-1 digest of each message, a message being its pieces of bytes in order (e.g.
/// the blocks of a piece as they arrived). Any number of messages; they are hashed
/// [`LANES`] at a time where the processor allows.
pub fn digests(messages: &[&[&[u8]]]) -> Vec<[u8; 20]> {
    let mut out = Vec::with_capacity(messages.len());
    for group in messages.chunks(LANES) {
        if group.len() >= MIN_LANES && avx512::available() {
            out.extend(avx512::digests(group));
        } else {
            out.extend(group.iter().map(|m| one(m)));
        }
    }
    out
}

/// Most bytes of whole pieces a caller reads to hash them in one batch (a piece larger
/// than this is a batch of its own): [`LANES`] pieces of up to 512 KiB.
pub const BATCH_BYTES: usize = 8 << 20;

/// The digest of each buffer, each one whole message (pieces read from disk into buffers
/// of their own), as [`digests`] gives them.
pub fn digests_of_buffers<B: AsRef<[u8]>>(buffers: &[B]) -> Vec<[u8; 20]> {
    let parts: Vec<[&[u8]; 1]> = buffers.iter().map(|b| [b.as_ref()]).collect();
    let messages: Vec<&[&[u8]]> = parts.iter().map(|p| p.as_slice()).collect();
    digests(&messages)
}

/// The digest of one message with the `sha1` crate.
pub fn one(message: &[&[u8]]) -> [u8; 20] {
    let mut sha = Sha1::new();
    for part in message {
        sha.update(part);
    }
    sha.finalize().into()
}

/// One message's 64-byte blocks, SHA-1 padding included, read from its parts in place
/// where a block lies inside one part and copied into a scratch block where it does not.
struct Blocks<'a> {
    parts: &'a [&'a [u8]],
    /// The part being read, and the offset in it.
    part: usize,
    at: usize,
    /// The message's length in bits, for the padding.
    bits: u64,
    /// Where the message's bytes stand: still data, or the padding's last block to give.
    tail: Tail,
    scratch: [u8; 64],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Data remains (or the padding has not started).
    Data,
    /// The data ended in a block without room for the length: one block of zeros and the
    /// length remains.
    LengthOnly,
    Done,
}

impl<'a> Blocks<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Blocks<'a> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        Blocks {
            parts,
            part: 0,
            at: 0,
            bits: len.wrapping_mul(8),
            tail: Tail::Data,
            scratch: [0; 64],
        }
    }

    /// The next block, or `None` once the padding's last block was given.
    fn next_block(&mut self) -> Option<&[u8; 64]> {
        match self.tail {
            Tail::Done => return None,
            Tail::LengthOnly => {
                self.scratch = [0; 64];
                self.scratch[56..].copy_from_slice(&self.bits.to_be_bytes());
                self.tail = Tail::Done;
                return Some(&self.scratch);
            }
            Tail::Data => {}
        }
        while self.part < self.parts.len() && self.at == self.parts[self.part].len() {
            self.part += 1;
            self.at = 0;
        }
        if let Some(part) = self.parts.get(self.part) {
            if let Some(block) = part.get(self.at..self.at + 64) {
                self.at += 64;
                return block.try_into().ok();
            }
        }
        // Fewer than 64 bytes in this part: gather across parts, then pad if they end.
        let mut filled = 0;
        while filled < 64 && self.part < self.parts.len() {
            let part = self.parts[self.part];
            let take = (part.len() - self.at).min(64 - filled);
            self.scratch[filled..filled + take].copy_from_slice(&part[self.at..self.at + take]);
            filled += take;
            self.at += take;
            if self.at == part.len() {
                self.part += 1;
                self.at = 0;
            }
        }
        if filled == 64 {
            return Some(&self.scratch);
        }
        self.scratch[filled] = 0x80;
        self.scratch[filled + 1..].fill(0);
        if filled < 56 {
            self.scratch[56..].copy_from_slice(&self.bits.to_be_bytes());
            self.tail = Tail::Done;
        } else {
            self.tail = Tail::LengthOnly;
        }
        Some(&self.scratch)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Blocks, LANES};

    /// Whether this processor runs the lanes (AVX-512 F for the rounds, BW for the byte
    /// swap).
    pub fn available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
    }

    /// The digests of 1 to [`LANES`] messages. Only called where [`available`] said yes.
    pub fn digests(messages: &[&[&[u8]]]) -> Vec<[u8; 20]> {
        assert!(available() && messages.len() <= LANES);
        // SAFETY: the function's only requirement is its target features, checked just
        // above on the processor this runs on.
        unsafe { lanes(messages) }
    }

    const INIT: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];

    #[target_feature(enable = "avx512f,avx512bw")]
    fn lanes(messages: &[&[&[u8]]]) -> Vec<[u8; 20]> {
        let mut blocks: Vec<Blocks> = messages.iter().map(|m| Blocks::new(m)).collect();
        let mut state = INIT.map(|h| _mm512_set1_epi32(h as i32));
        // Big-endian words: reverse the bytes of each 32-bit word.
        let swap = _mm512_set_epi8(
            60, 61, 62, 63, 56, 57, 58, 59, 52, 53, 54, 55, 48, 49, 50, 51, 44, 45, 46, 47, 40, 41,
            42, 43, 36, 37, 38, 39, 32, 33, 34, 35, 28, 29, 30, 31, 24, 25, 26, 27, 20, 21, 22, 23,
            16, 17, 18, 19, 12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3,
        );
        loop {
            let mut rows = [_mm512_setzero_si512(); LANES];
            let mut active: u16 = 0;
            for (lane, b) in blocks.iter_mut().enumerate() {
                if let Some(block) = b.next_block() {
                    let row: __m512i = bytemuck::cast(*block);
                    rows[lane] = _mm512_shuffle_epi8(row, swap);
                    active |= 1 << lane;
                }
            }
            if active == 0 {
                break;
            }
            compress(&mut state, transpose(rows), active);
        }
        let words: [[u32; LANES]; 5] = state.map(bytemuck::cast);
        (0..messages.len())
            .map(|lane| {
                let mut digest = [0u8; 20];
                for (i, word) in words.iter().enumerate() {
                    digest[4 * i..4 * i + 4].copy_from_slice(&word[lane].to_be_bytes());
                }
                digest
            })
            .collect()
    }

    /// Rows (a lane's sixteen words each) to columns (one word of every lane each).
    #[target_feature(enable = "avx512f")]
    fn transpose(r: [__m512i; 16]) -> [__m512i; 16] {
        // 32-bit, then 64-bit interleaves within each 128-bit quarter give, for each group
        // of four rows, 4x4 transposed quarters; two rounds of quarter shuffles then put
        // the quarters in place.
        let mut a = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        let mut b = [_mm512_setzero_si512(); 16];
        for i in 0..4 {
            b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
            b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
            b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
            b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
        }
        // b[4g + k] holds, in its quarter q, word 4q + k of rows 4g .. 4g + 3.
        let mut c = [_mm512_setzero_si512(); 16];
        for k in 0..4 {
            (c[k], c[4 + k]) = quarters(b[k], b[4 + k]);
            (c[8 + k], c[12 + k]) = quarters(b[8 + k], b[12 + k]);
        }
        // c[k] holds word k of rows 0-3, word 8 + k of rows 0-3, word k of rows 4-7 and
        // word 8 + k of rows 4-7; c[4 + k] the same of words 4 + k and 12 + k; c[8 + k]
        // and c[12 + k] the same of rows 8-15.
        let mut out = [_mm512_setzero_si512(); 16];
        for k in 0..4 {
            (out[k], out[8 + k]) = quarters(c[k], c[8 + k]);
            (out[4 + k], out[12 + k]) = quarters(c[4 + k], c[12 + k]);
        }
        out
    }

    /// The even 128-bit quarters of `x` then of `y`, and the odd ones likewise.
    #[target_feature(enable = "avx512f")]
    fn quarters(x: __m512i, y: __m512i) -> (__m512i, __m512i) {
        (
            _mm512_shuffle_i32x4::<0x88>(x, y),
            _mm512_shuffle_i32x4::<0xDD>(x, y),
        )
    }

    /// One 64-byte block of every active lane into its state.
    // The last rounds' schedule words are computed into `w` like all others, then unread.
    #[allow(unused_assignments)]
    #[target_feature(enable = "avx512f")]
    fn compress(state: &mut [__m512i; 5], mut w: [__m512i; 16], active: u16) {
        let [mut a, mut b, mut c, mut d, mut e] = *state;
        // Every round written out (constant indices), so the schedule's sixteen words
        // stay in registers.
        macro_rules! rounds {
            ($f:literal, $k:literal; $($t:literal)*) => {$(
                let word = if $t < 16 {
                    w[$t % 16]
                } else {
                    let x = _mm512_ternarylogic_epi32::<0x96>(
                        w[($t + 13) % 16],
                        w[($t + 8) % 16],
                        w[($t + 2) % 16],
                    );
                    let x = _mm512_rol_epi32::<1>(_mm512_xor_si512(x, w[$t % 16]));
                    w[$t % 16] = x;
                    x
                };
                let f = _mm512_ternarylogic_epi32::<$f>(b, c, d);
                let sum = _mm512_add_epi32(
                    _mm512_add_epi32(_mm512_rol_epi32::<5>(a), f),
                    _mm512_add_epi32(e, _mm512_add_epi32(word, _mm512_set1_epi32($k as i32))),
                );
                e = d;
                d = c;
                c = _mm512_rol_epi32::<30>(b);
                b = a;
                a = sum;
            )*};
        }
        // Choose (b ? c : d), parity, majority, parity: the functions as truth tables.
        rounds!(0xCA, 0x5A82_7999u32; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
        rounds!(0x96, 0x6ED9_EBA1u32; 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39);
        rounds!(0xE8, 0x8F1B_BCDCu32; 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59);
        rounds!(0x96, 0xCA62_C1D6u32; 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79);
        for (h, v) in state.iter_mut().zip([a, b, c, d, e]) {
            *h = _mm512_mask_add_epi32(*h, active, *h, v);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub fn available() -> bool {
        false
    }

    pub fn digests(_: &[&[&[u8]]]) -> Vec<[u8; 20]> {
        unreachable!("no lanes off x86-64")
    }
}

/// Whether [`digests`] uses the lanes on this processor (for tests and benchmarks).
pub fn lanes_available() -> bool {
    avx512::available()
}

/// The digests through the lanes whatever the count (tests and benchmarks: [`digests`]
/// picks). `None` where the processor has no AVX-512.
pub fn digests_in_lanes(messages: &[&[&[u8]]]) -> Option<Vec<[u8; 20]>> {
    if !avx512::available() {
        return None;
    }
    Some(messages.chunks(LANES).flat_map(avx512::digests).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    /// `data` cut at `cuts` (sorted offsets, any may repeat: empty parts).
    fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut parts = Vec::new();
        let mut at = 0;
        for &c in cuts {
            let c = c.clamp(at, data.len());
            parts.push(&data[at..c]);
            at = c;
        }
        parts.push(&data[at..]);
        parts
    }

    #[test]
    fn the_padding_of_every_length_near_a_block_matches_the_crate() {
        // 55, 56 and 63 bytes are where the length does or does not fit after the 0x80.
        let datas: Vec<Vec<u8>> = (0..=200).map(|len| bytes(len, len as u32)).collect();
        for chunk in datas.chunks(LANES) {
            let parts: Vec<Vec<&[u8]>> = chunk.iter().map(|d| vec![d.as_slice()]).collect();
            let messages: Vec<&[&[u8]]> = parts.iter().map(|p| p.as_slice()).collect();
            let want: Vec<[u8; 20]> = messages.iter().map(|m| one(m)).collect();
            assert_eq!(digests(&messages), want);
            if let Some(got) = digests_in_lanes(&messages) {
                assert_eq!(got, want, "lanes, lengths from {}", chunk[0].len());
            }
        }
    }

    #[test]
    fn the_lanes_are_available_on_a_processor_with_avx512() {
        // Where the processor has the features, the lanes must be what runs: a build that
        // lost them (the detection, the target features) fails here instead of hashing
        // slowly without a word.
        let has =
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw");
        assert_eq!(lanes_available(), has);
    }

    #[test]
    fn pieces_of_16_kib_blocks_in_full_and_partial_lanes_match_the_crate() {
        let pieces: Vec<Vec<u8>> = (0..LANES as u32 + 3)
            .map(|i| bytes(64 * 1024 - if i == 17 { 1000 } else { 0 }, i))
            .collect();
        let parts: Vec<Vec<&[u8]>> = pieces.iter().map(|p| p.chunks(16384).collect()).collect();
        let messages: Vec<&[&[u8]]> = parts.iter().map(|p| p.as_slice()).collect();
        let want: Vec<[u8; 20]> = pieces.iter().map(|p| one(&[p])).collect();
        for n in [1, 4, 5, 9, 16, 19] {
            assert_eq!(digests(&messages[..n]), want[..n], "{n} messages");
            if let Some(got) = digests_in_lanes(&messages[..n]) {
                assert_eq!(got, want[..n], "{n} messages in lanes");
            }
        }
    }

    quickcheck::quickcheck! {
        fn any_messages_split_anywhere_match_the_crate(
            specs: Vec<(u16, u32, Vec<u16>)>
        ) -> bool {
            let datas: Vec<(Vec<u8>, Vec<usize>)> = specs
                .iter()
                .take(2 * LANES + 3)
                .map(|(len, seed, cuts)| {
                    let len = *len as usize % 3000;
                    let mut cuts: Vec<usize> =
                        cuts.iter().map(|c| *c as usize % (len + 1)).collect();
                    cuts.sort_unstable();
                    (bytes(len, *seed), cuts)
                })
                .collect();
            let parts: Vec<Vec<&[u8]>> = datas.iter().map(|(d, c)| split(d, c)).collect();
            let messages: Vec<&[&[u8]]> = parts.iter().map(|p| p.as_slice()).collect();
            let want: Vec<[u8; 20]> = datas.iter().map(|(d, _)| one(&[d])).collect();
            digests(&messages) == want
                && digests_in_lanes(&messages).is_none_or(|got| got == want)
        }
    }
}
