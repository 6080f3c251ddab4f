//! Small value types shared by every module: they give bare integers and byte arrays a meaning.

use core::net::{IpAddr, Ipv6Addr};
use std::fmt;

/// The host `ip` belongs to, for limits and bans kept per host: an IPv4 address, or an
/// IPv6 /64 (the block one subscriber is given: an address changed within it is the same
/// host). An IPv4-mapped IPv6 address is its IPv4 address.
pub(crate) fn host_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The size of a block, the unit of transfer between peers (16 KiB, as every client uses).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// The SHA-1 of a torrent's bencoded `info` dictionary: the torrent's identity on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

/// A peer's 20-byte id, chosen by the peer and sent in its handshake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 20]);

/// A peer's key in a picker or choker: a small dense number its user assigns (the engine:
/// each torrent numbers its own peers and web seeds, and reuses a number once its peer
/// is gone), so per-peer state can live in arrays. [`ConnId::key`](crate::engine::ConnId::key)
/// is another such number: a connection's slot in its engine.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct PeerKey(pub u32);

/// The zero-based index of a piece in a torrent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct PieceIndex(pub u32);

/// A block of a piece as named by `request`, `cancel` and `reject` messages.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BlockRequest {
    /// The piece.
    pub piece: PieceIndex,
    /// Byte offset of the block within its piece.
    pub begin: u32,
    /// Bytes from `begin`; a normal request asks for [`BLOCK_SIZE`].
    pub length: u32,
}

/// A hex string that is not 40 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ParseHexError;

impl fmt::Display for ParseHexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected 40 hexadecimal digits")
    }
}

impl std::error::Error for ParseHexError {}

fn write_hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

pub(crate) fn parse_hex20(s: &str) -> Result<[u8; 20], ParseHexError> {
    let s = s.as_bytes();
    if s.len() != 40 {
        return Err(ParseHexError);
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16).ok_or(ParseHexError)?;
        let lo = (pair[1] as char).to_digit(16).ok_or(ParseHexError)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

impl InfoHash {
    /// Parses 40 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, ParseHexError> {
        parse_hex20(s).map(InfoHash)
    }

    /// Lower-case hex, the form every client prints.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(&self.0, f)
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Peer ids usually start with a printable client tag ("-SH0100-"); show it as text
        // where it is printable and the rest as hex.
        for &b in &self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(h.to_hex(), "ab".repeat(20));
        assert_eq!(InfoHash::from_hex(&"AB".repeat(20)), Ok(h));
        assert_eq!(InfoHash::from_hex("abc"), Err(ParseHexError));
        assert_eq!(InfoHash::from_hex(&"zz".repeat(20)), Err(ParseHexError));
    }
}

/// An IO failure the caller met while doing what the core asked: a disk read or write, a
/// tracker's HTTP exchange.
///
/// The core does no IO, so it never holds a [`std::io::Error`] (which is neither `Clone`
/// nor `Eq`, as events are); it keeps what an embedder acts on: the [`kind`](Self::kind), to
/// tell a full disk from a missing file or a refused connection from a timeout, and the
/// runtime's words for the user, which should name the file or URL concerned (`std::io`'s
/// own texts name neither). Its `Display` is [`message`](Self::message) as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoError {
    /// What kind of failure it was.
    pub kind: std::io::ErrorKind,
    /// The runtime's description, for a user to read (e.g. `/data/x.iso.part: No space left
    /// on device (os error 28)`).
    pub message: String,
}

impl IoError {
    /// An error of `kind`, described by `message`.
    pub fn new(kind: std::io::ErrorKind, message: impl Into<String>) -> IoError {
        IoError {
            kind,
            message: message.into(),
        }
    }

    /// The same error with `context` (a path, a URL) put before its message, as
    /// `context: message`.
    pub fn context(self, context: impl fmt::Display) -> IoError {
        IoError {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> IoError {
        IoError::from(&e)
    }
}

impl From<&std::io::Error> for IoError {
    fn from(e: &std::io::Error) -> IoError {
        IoError::new(e.kind(), e.to_string())
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoError {}
