//! The trace hash: one 64-bit fingerprint of everything that happened in a run.
//!
//! Every event the simulator processes (its time, kind and node) and every output an
//! engine produces (kind, connection, sizes, and the bytes of every protocol message)
//! go into the hash in order. Two runs of the same scenario and seed must end with the
//! same value; a run that differs anywhere ends with another. Block payloads are hashed
//! by length and first byte only: they are the shared zero buffer (or content read from
//! one copy), and hashing gigabytes would dominate the run.
//!
//! The mixer is a 64-bit multiply-rotate (in the family of FxHash, with a stronger
//! finalisation): fast, deterministic across platforms and Rust versions, and not meant to
//! resist adversaries, only to tell runs apart.

use std::hash::Hasher;

use shoal_core::engine::{CloseReason, Event, Output};

/// Order-sensitive, platform-independent 64-bit hash of a stream of words and bytes.
#[derive(Clone, Debug)]
pub struct TraceHash {
    h: u64,
    /// Words hashed (for reports).
    pub words: u64,
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash { h: K, words: 0 }
    }
}

impl TraceHash {
    #[inline]
    pub fn word(&mut self, w: u64) {
        self.h = (self.h.rotate_left(23) ^ w).wrapping_mul(K);
        self.words += 1;
    }

    /// The fingerprint so far.
    pub fn value(&self) -> u64 {
        // SplitMix64's finaliser: spreads the last words over all bits.
        let mut z = self.h ^ self.words;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Hashes `bytes` fully, with their length.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    /// Hashes one engine output of node `node`. `payload` says that a `Send` carries a
    /// block's data (hashed by length and first byte).
    pub fn output(&mut self, node: u32, out: &Output, payload: bool) {
        use std::hash::Hash;
        self.word(u64::from(node));
        match out {
            Output::Connect { conn, addr } => {
                self.word(1);
                conn.hash(self);
                addr.hash(self);
            }
            Output::Send { conn, data } => {
                self.word(2);
                conn.hash(self);
                if payload {
                    self.word(data.len() as u64);
                    self.word(u64::from(data.first().copied().unwrap_or(0)));
                } else {
                    self.bytes(data);
                }
            }
            Output::Close { conn } => {
                self.word(3);
                conn.hash(self);
            }
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => {
                self.word(4);
                torrent.hash(self);
                conn.hash(self);
                block.hash(self);
            }
            Output::WriteBlock {
                torrent,
                block,
                data,
            } => {
                self.word(5);
                torrent.hash(self);
                block.hash(self);
                self.word(data.len() as u64);
                self.word(u64::from(data.first().copied().unwrap_or(0)));
            }
            Output::HashPiece {
                torrent,
                piece,
                expected,
            } => {
                self.word(6);
                torrent.hash(self);
                piece.hash(self);
                self.bytes(expected);
            }
            Output::TrackerHttp {
                torrent,
                id,
                request,
                ..
            } => {
                self.word(7);
                torrent.hash(self);
                id.hash(self);
                self.bytes(request);
            }
            Output::UdpSend { to, data } => {
                self.word(8);
                to.hash(self);
                self.bytes(data);
            }
            Output::Event(e) => {
                self.word(9);
                self.event(e);
            }
            // Outputs the simulator does not model yet: their Debug text.
            other => {
                self.word(10);
                self.bytes(format!("{other:?}").as_bytes());
            }
        }
    }

    fn event(&mut self, e: &Event) {
        use std::hash::Hash;
        match e {
            Event::Progress { torrent, stats } => {
                self.word(1);
                torrent.hash(self);
                for v in [
                    u64::from(stats.pieces_verified),
                    stats.bytes_verified,
                    stats.downloaded,
                    stats.uploaded,
                    stats.download_rate,
                    stats.upload_rate,
                    stats.peers as u64,
                ] {
                    self.word(v);
                }
            }
            Event::PieceVerified { torrent, piece } => {
                self.word(2);
                torrent.hash(self);
                piece.hash(self);
            }
            Event::HashFailed { torrent, piece } => {
                self.word(3);
                torrent.hash(self);
                piece.hash(self);
            }
            Event::Completed { torrent } => {
                self.word(4);
                torrent.hash(self);
            }
            // Not the stream: the simulator's engines speak plaintext, and the reference
            // trace predates the field.
            Event::PeerConnected {
                torrent,
                conn,
                addr,
                peer_id,
                ..
            } => {
                self.word(5);
                torrent.hash(self);
                conn.hash(self);
                addr.hash(self);
                peer_id.hash(self);
            }
            Event::PeerClosed {
                torrent,
                conn,
                addr,
                reason,
            } => {
                self.word(6);
                torrent.hash(self);
                conn.hash(self);
                addr.hash(self);
                self.close_reason(reason);
            }
            // Rare: their Debug text is cheap enough.
            other => self.bytes(format!("{other:?}").as_bytes()),
        }
    }

    fn close_reason(&mut self, r: &CloseReason) {
        match r {
            CloseReason::Protocol(why) => {
                self.word(100);
                self.bytes(why.to_string().as_bytes());
            }
            CloseReason::Timeout(what) => {
                self.word(101);
                self.bytes(what.as_bytes());
            }
            other => self.bytes(format!("{other:?}").as_bytes()),
        }
    }
}

impl Hasher for TraceHash {
    fn finish(&self) -> u64 {
        self.value()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.bytes(bytes);
    }

    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matters_and_equal_streams_agree() {
        let (mut a, mut b, mut c) = (
            TraceHash::default(),
            TraceHash::default(),
            TraceHash::default(),
        );
        for w in [1, 2, 3] {
            a.word(w);
            b.word(w);
        }
        for w in [2, 1, 3] {
            c.word(w);
        }
        assert_eq!(a.value(), b.value());
        assert_ne!(a.value(), c.value());
        let (mut d, mut e) = (TraceHash::default(), TraceHash::default());
        d.bytes(b"abc");
        e.bytes(b"abc\0");
        assert_ne!(d.value(), e.value());
    }
}
