//! [`AnswerBuf`]: an HTTP answer read from a socket straight into its own buffer, bounded.
//!
//! Both runtimes read web seed answers (megabytes each) and tracker answers into one.
//! Reading into a scratch buffer and copying from there cost as much CPU as the socket's
//! own copy, and growing a buffer by doubling copied it again; here each read lands where
//! the byte stays, in room zeroed ahead in steps, within a bound.

use std::io;
use std::time::Duration;

/// The most a tracker's HTTP answer may hold, in both runtimes (a web seed's answer is
/// bounded by the range it was asked for).
pub const MAX_TRACKER_ANSWER: usize = 2 << 20;
/// An HTTP exchange (tracker or web seed) that takes longer fails, in both runtimes.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The most memory set aside up front for an answer.
const MAX_RESERVED: usize = 8 << 20;

/// An answer read straight into its own buffer: `buf[..filled]` is what came, the rest of
/// `buf` zeroed room for the next read. A web seed's answer is megabytes: reading into a
/// scratch buffer and copying from there cost as much as the socket's own copy, and
/// growing the buffer by doubling copied it again.
pub struct AnswerBuf {
    buf: Vec<u8>,
    filled: usize,
    /// The most bytes the answer may have.
    limit: usize,
    /// Bytes zeroed ahead at a time.
    step: usize,
}

impl AnswerBuf {
    /// Room for an answer of at most `limit` bytes; `large` (a web seed's) reserves it
    /// (up to `MAX_RESERVED`) and reads in large steps.
    pub fn new(limit: usize, large: bool) -> AnswerBuf {
        AnswerBuf {
            buf: if large {
                Vec::with_capacity(limit.saturating_add(1).min(MAX_RESERVED))
            } else {
                Vec::new()
            },
            filled: 0,
            limit,
            step: if large { 256 << 10 } else { 16 << 10 },
        }
    }

    /// Where the next read goes: never more than one byte past the limit, so a read past
    /// it shows.
    pub fn room(&mut self) -> &mut [u8] {
        if self.buf.len() == self.filled {
            let grow = self
                .step
                .min(self.limit.saturating_add(1).saturating_sub(self.filled));
            self.buf.resize(self.filled + grow, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// `n` bytes were read into the room: they, or an error past the limit.
    pub fn advance(&mut self, n: usize) -> io::Result<&[u8]> {
        let from = self.filled;
        self.filled += n;
        if self.filled > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("answer larger than {} bytes", self.limit),
            ));
        }
        Ok(&self.buf[from..self.filled])
    }

    /// How many bytes came.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether none did.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// What came.
    pub fn take(&mut self) -> Vec<u8> {
        self.buf.truncate(self.filled);
        self.filled = 0;
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_land_in_place_within_the_limit() {
        let mut a = AnswerBuf::new(10, false);
        let room = a.room();
        assert_eq!(
            room.len(),
            11,
            "one byte past the limit, to see a read past it"
        );
        room[..4].copy_from_slice(b"abcd");
        assert_eq!(a.advance(4).unwrap(), b"abcd");
        a.room()[..6].copy_from_slice(b"efghij");
        assert_eq!(a.advance(6).unwrap(), b"efghij");
        assert_eq!(a.room().len(), 1);
        assert!(a.advance(1).is_err(), "11 bytes for a limit of 10");
        let mut b = AnswerBuf::new(1 << 20, true);
        assert!(b.is_empty());
        assert_eq!(b.room().len(), 256 << 10, "zeroed ahead in steps");
        b.room()[..3].copy_from_slice(b"xyz");
        b.advance(3).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b.take(), b"xyz");
    }
}
