//! Why bytes from a peer are not acceptable wire protocol.

use std::fmt;

use super::message::message_name;
use crate::bencode;
use crate::PieceIndex;

/// A protocol violation found while decoding a peer's bytes.
///
/// Every variant means the stream cannot be trusted any further; the peer layer closes the
/// connection with this as the reason. The decoders consume nothing when they return one, so
/// the buffer still shows the offending bytes for a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The handshake does not start with `\x13BitTorrent protocol`: the peer speaks some
    /// other protocol (an HTTP request, an encrypted MSE handshake …). `pstrlen` is the first
    /// byte received; when it is 19 the string that follows differs.
    WrongProtocol {
        /// The first byte received.
        pstrlen: u8,
    },
    /// A length prefix above [`DecoderConfig::max_message_len`](super::DecoderConfig).
    MessageTooLong {
        /// The length prefix.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A message id this codec does not know. Nothing has been consumed; a caller that
    /// prefers to ignore unknown messages can drop `4 + len` bytes once they are buffered.
    UnknownMessage {
        /// The message id.
        id: u8,
        /// The length prefix (id included).
        len: u32,
    },
    /// A fixed-size message whose length prefix is not its size.
    WrongLength {
        /// The message id.
        id: u8,
        /// The length prefix.
        len: u32,
        /// The message's size.
        expected: u32,
    },
    /// A variable-size message shorter than its fixed fields.
    MessageTooShort {
        /// The message id.
        id: u8,
        /// The length prefix.
        len: u32,
        /// The size of its fixed fields.
        min: u32,
    },
    /// A bitfield of `len` bytes where the torrent's piece count needs `expected`.
    BitfieldLength {
        /// The bitfield's bytes.
        len: u32,
        /// The bytes the piece count needs.
        expected: u32,
    },
    /// A bitfield with a bit set past the last piece.
    BitfieldSpareBits {
        /// The torrent's piece count.
        piece_count: u32,
    },
    /// A request, cancel, reject or piece whose block length is 0 or above
    /// [`DecoderConfig::max_request_len`](super::DecoderConfig).
    BlockLength {
        /// The message id.
        id: u8,
        /// The block length.
        length: u32,
        /// The largest accepted.
        max: u32,
    },
    /// A block whose end (`begin + length`) does not fit in 32 bits.
    BlockOverflow {
        /// The message id.
        id: u8,
        /// The block's offset.
        begin: u32,
        /// The block's length.
        length: u32,
    },
    /// A piece index at or past the torrent's piece count.
    PieceIndexOutOfRange {
        /// The message id.
        id: u8,
        /// The piece named.
        index: PieceIndex,
        /// The torrent's piece count.
        piece_count: u32,
    },
    /// A BEP 10 extended handshake that is not bencode.
    ExtendedHandshake(bencode::Error),
    /// A BEP 10 extended handshake that is bencode but not a dictionary.
    ExtendedHandshakeNotDict,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::WrongProtocol { pstrlen: 19 } => {
                f.write_str("handshake: protocol string is not \"BitTorrent protocol\"")
            }
            WireError::WrongProtocol { pstrlen } => write!(
                f,
                "handshake: protocol string length {pstrlen}, expected 19 (not BitTorrent)"
            ),
            WireError::MessageTooLong { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            WireError::UnknownMessage { id, len } => {
                write!(f, "unknown message id {id} ({len} bytes)")
            }
            WireError::WrongLength { id, len, expected } => write!(
                f,
                "{} message of {len} bytes, expected {expected}",
                message_name(id)
            ),
            WireError::MessageTooShort { id, len, min } => write!(
                f,
                "{} message of {len} bytes, expected at least {min}",
                message_name(id)
            ),
            WireError::BitfieldLength { len, expected } => write!(
                f,
                "bitfield of {len} bytes, the torrent's piece count needs {expected}"
            ),
            WireError::BitfieldSpareBits { piece_count } => write!(
                f,
                "bitfield has bits set past the last of {piece_count} pieces"
            ),
            WireError::BlockLength { id, length, max } => write!(
                f,
                "{} with block length {length}, expected 1..={max}",
                message_name(id)
            ),
            WireError::BlockOverflow { id, begin, length } => write!(
                f,
                "{} block at offset {begin} with length {length} ends past 2^32",
                message_name(id)
            ),
            WireError::PieceIndexOutOfRange {
                id,
                index,
                piece_count,
            } => write!(
                f,
                "{} names piece {index}, the torrent has {piece_count} pieces",
                message_name(id)
            ),
            WireError::ExtendedHandshake(e) => write!(f, "extended handshake: {e}"),
            WireError::ExtendedHandshakeNotDict => {
                f.write_str("extended handshake is not a dictionary")
            }
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::ExtendedHandshake(e) => Some(e),
            _ => None,
        }
    }
}
