//! The metadata exchange of BEP 9 (`ut_metadata`): how a client that knows only a torrent's
//! info-hash (a magnet link) gets the `info` dictionary from its peers, and how a client
//! that has it gives it out.
//!
//! The metadata is the bencoded `info` dictionary, exactly the bytes the info-hash is the
//! SHA-1 of, cut into pieces of [`PIECE_SIZE`] bytes (the last one shorter). A peer that
//! can serve it says so in its BEP 10 extended handshake: `ut_metadata` in `m` and the
//! whole size in `metadata_size`.
//!
//! This module owns:
//!
//! - the message codec, [`MetadataMessage`]: a bencoded dictionary (`msg_type` 0 request,
//!   1 data, 2 reject; `piece`; `total_size` in data messages) with the piece's bytes
//!   appended after the dictionary in a data message. Reading is bounded by the project's
//!   bencode reader and refuses anything that is not one of the three messages;
//! - [`MetadataFetch`] (`fetch`): assembling the metadata from several peers, checking it
//!   against the info-hash and parsing it as a [`crate::metainfo::Metainfo`];
//! - [`ServeBudget`] and [`answer`] (`serve`): answering requests for our own metadata.
//!
//! Like everything in the core, no IO and no clock: time is an argument.

mod fetch;
mod serve;

pub use fetch::{Action, AddPeerError, DropReason, FetchConfig, MetadataFetch};
pub use serve::{answer, ServeBudget};

use std::fmt;

use bytes::Bytes;

use crate::bencode::{self, put_bytes, put_int, Limits};

/// The extension's name in the BEP 10 handshake's `m` dictionary.
pub const EXTENSION_NAME: &str = "ut_metadata";

/// The size of every metadata piece but the last (BEP 9: 16 KiB).
pub const PIECE_SIZE: u32 = 16 * 1024;

/// The largest metadata [`FetchConfig`] accepts by default: 64 MiB. Real torrents with
/// hundreds of thousands of files reach tens of MB; a peer announcing more is hostile or
/// broken, and this bounds what one fetch can make us hold.
pub const DEFAULT_MAX_METADATA_SIZE: u64 = 64 << 20;

/// The number of pieces metadata of `size` bytes is cut into.
pub fn piece_count(size: u64) -> u32 {
    u32::try_from(size.div_ceil(u64::from(PIECE_SIZE))).unwrap_or(u32::MAX)
}

/// The length of piece `piece` of metadata of `size` bytes, or `None` past the end.
pub fn piece_len(size: u64, piece: u32) -> Option<u32> {
    let start = u64::from(piece) * u64::from(PIECE_SIZE);
    if start >= size {
        return None;
    }
    Some((size - start).min(u64::from(PIECE_SIZE)) as u32)
}

/// Bounds for reading a message's dictionary: it is flat and holds three keys; a few more
/// are allowed for clients that add their own.
const LIMITS: Limits = Limits {
    max_depth: 2,
    max_values: 32,
};

/// One `ut_metadata` message (the payload of an extended message, after its id byte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: send me this piece.
    Request {
        /// The piece's index.
        piece: u32,
    },
    /// `msg_type` 1: this piece, and the whole metadata's size.
    Data {
        /// The piece's index.
        piece: u32,
        /// `total_size`: the size of the whole metadata.
        total_size: u64,
        /// The piece's bytes (at most [`PIECE_SIZE`]).
        data: Bytes,
    },
    /// `msg_type` 2: I will not send this piece.
    Reject {
        /// The piece's index.
        piece: u32,
    },
}

/// Why a payload is not a `ut_metadata` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// The dictionary is not readable bencode, or breaks the reader's bounds.
    Bencode(bencode::Error),
    /// The payload does not start with a dictionary.
    NotDict,
    /// A required key is missing or is not an integer.
    Missing(&'static str),
    /// An integer out of its range (a negative or too large piece or size).
    OutOfRange(&'static str),
    /// A `msg_type` BEP 9 does not define. The BEP says to ignore such messages.
    UnknownType(i64),
    /// Bytes after the dictionary of a request or reject.
    TrailingBytes,
    /// A data message carrying more than [`PIECE_SIZE`] bytes.
    DataTooLong(usize),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Bencode(e) => write!(f, "ut_metadata: {e}"),
            MessageError::NotDict => f.write_str("ut_metadata: not a dictionary"),
            MessageError::Missing(k) => write!(f, "ut_metadata: no integer `{k}`"),
            MessageError::OutOfRange(k) => write!(f, "ut_metadata: `{k}` out of range"),
            MessageError::UnknownType(t) => write!(f, "ut_metadata: unknown msg_type {t}"),
            MessageError::TrailingBytes => {
                f.write_str("ut_metadata: bytes after a request or reject")
            }
            MessageError::DataTooLong(n) => {
                write!(f, "ut_metadata: {n} bytes of data, more than a piece")
            }
        }
    }
}

impl std::error::Error for MessageError {}

impl MetadataMessage {
    /// The message's bytes: the dictionary with its keys sorted, then the data if any.
    pub fn encode(&self) -> Bytes {
        let (kind, piece, total_size, data) = match self {
            MetadataMessage::Request { piece } => (0, *piece, None, None),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => (1, *piece, Some(*total_size), Some(data)),
            MetadataMessage::Reject { piece } => (2, *piece, None, None),
        };
        let mut out = Vec::with_capacity(64 + data.map_or(0, Bytes::len));
        out.push(b'd');
        put_bytes(&mut out, b"msg_type");
        put_int(&mut out, kind);
        put_bytes(&mut out, b"piece");
        put_int(&mut out, u64::from(piece));
        if let Some(size) = total_size {
            put_bytes(&mut out, b"total_size");
            put_int(&mut out, size);
        }
        out.push(b'e');
        if let Some(data) = data {
            out.extend_from_slice(data);
        }
        Bytes::from(out)
    }

    /// Reads a message. A data message's bytes are a slice of `payload`, not a copy.
    pub fn decode(payload: &Bytes) -> Result<MetadataMessage, MessageError> {
        let (value, used) =
            bencode::decode_prefix_with(payload, LIMITS).map_err(MessageError::Bencode)?;
        let dict = value.as_dict().ok_or(MessageError::NotDict)?;
        let int = |key: &'static str| {
            dict.get(key.as_bytes())
                .and_then(|v| v.as_int())
                .ok_or(MessageError::Missing(key))
        };
        let kind = int("msg_type")?;
        let piece = u32::try_from(int("piece")?).map_err(|_| MessageError::OutOfRange("piece"))?;
        match kind {
            0 | 2 => {
                if used != payload.len() {
                    return Err(MessageError::TrailingBytes);
                }
                Ok(if kind == 0 {
                    MetadataMessage::Request { piece }
                } else {
                    MetadataMessage::Reject { piece }
                })
            }
            1 => {
                let total_size = u64::try_from(int("total_size")?)
                    .map_err(|_| MessageError::OutOfRange("total_size"))?;
                let len = payload.len() - used;
                if len > PIECE_SIZE as usize {
                    return Err(MessageError::DataTooLong(len));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: payload.slice(used..),
                })
            }
            other => Err(MessageError::UnknownType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    fn decode(bytes: &[u8]) -> Result<MetadataMessage, MessageError> {
        MetadataMessage::decode(&Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn encodes_as_bep_9_shows() {
        assert_eq!(
            &MetadataMessage::Request { piece: 0 }.encode()[..],
            b"d8:msg_typei0e5:piecei0ee"
        );
        assert_eq!(
            &MetadataMessage::Reject { piece: 3 }.encode()[..],
            b"d8:msg_typei2e5:piecei3ee"
        );
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 34256,
            data: Bytes::from_static(b"xxxx"),
        };
        assert_eq!(
            &data.encode()[..],
            b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxx"
        );
    }

    #[test]
    fn decodes_what_other_clients_send() {
        // Keys in any order, extra keys ignored.
        assert_eq!(
            decode(b"d5:piecei7e8:msg_typei0e4:zzzzi1ee"),
            Ok(MetadataMessage::Request { piece: 7 })
        );
        let m = decode(b"d8:msg_typei1e5:piecei1e10:total_sizei16385ee\x01").unwrap();
        assert_eq!(
            m,
            MetadataMessage::Data {
                piece: 1,
                total_size: 16385,
                data: Bytes::from_static(b"\x01")
            }
        );
    }

    #[test]
    fn refuses_malformed_messages() {
        assert_eq!(decode(b"li1ee"), Err(MessageError::NotDict));
        assert!(matches!(
            decode(b"d8:msg_type"),
            Err(MessageError::Bencode(_))
        ));
        assert_eq!(
            decode(b"d5:piecei0ee"),
            Err(MessageError::Missing("msg_type"))
        );
        assert_eq!(
            decode(b"d8:msg_typei0e5:piece1:xe"),
            Err(MessageError::Missing("piece"))
        );
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei-1ee"),
            Err(MessageError::OutOfRange("piece"))
        );
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei4294967296ee"),
            Err(MessageError::OutOfRange("piece"))
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0ee"),
            Err(MessageError::Missing("total_size"))
        );
        assert_eq!(
            decode(b"d8:msg_typei1e5:piecei0e10:total_sizei-5ee"),
            Err(MessageError::OutOfRange("total_size"))
        );
        assert_eq!(
            decode(b"d8:msg_typei9e5:piecei0ee"),
            Err(MessageError::UnknownType(9))
        );
        assert_eq!(
            decode(b"d8:msg_typei0e5:piecei0eexx"),
            Err(MessageError::TrailingBytes)
        );
        let mut long = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        long.resize(long.len() + PIECE_SIZE as usize + 1, 0);
        assert_eq!(
            decode(&long),
            Err(MessageError::DataTooLong(PIECE_SIZE as usize + 1))
        );
        let mut deep = b"d8:msg_typei0e5:piecei0e1:x".to_vec();
        deep.extend_from_slice(b"lllleeee");
        deep.push(b'e');
        assert!(matches!(decode(&deep), Err(MessageError::Bencode(_))));
    }

    #[test]
    fn piece_arithmetic() {
        assert_eq!(piece_count(0), 0);
        assert_eq!(piece_count(1), 1);
        assert_eq!(piece_count(16384), 1);
        assert_eq!(piece_count(16385), 2);
        assert_eq!(piece_len(16385, 0), Some(16384));
        assert_eq!(piece_len(16385, 1), Some(1));
        assert_eq!(piece_len(16385, 2), None);
        assert_eq!(piece_len(16384, 1), None);
        assert_eq!(piece_len(0, 0), None);
    }

    impl Arbitrary for MetadataMessage {
        fn arbitrary(g: &mut Gen) -> Self {
            match u8::arbitrary(g) % 3 {
                0 => MetadataMessage::Request {
                    piece: u32::arbitrary(g),
                },
                1 => {
                    let mut data = Vec::<u8>::arbitrary(g);
                    data.truncate(PIECE_SIZE as usize);
                    MetadataMessage::Data {
                        piece: u32::arbitrary(g),
                        total_size: u64::arbitrary(g) >> 1,
                        data: Bytes::from(data),
                    }
                }
                _ => MetadataMessage::Reject {
                    piece: u32::arbitrary(g),
                },
            }
        }
    }

    quickcheck! {
        fn round_trips(m: MetadataMessage) -> bool {
            MetadataMessage::decode(&m.encode()) == Ok(m)
        }

        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) -> bool {
            let _ = decode(&bytes);
            true
        }

        fn arbitrary_bytes_after_a_header_never_panic(kind: u8, tail: Vec<u8>) -> bool {
            let mut bytes = format!("d8:msg_typei{}e5:piece", kind % 4).into_bytes();
            bytes.extend_from_slice(&tail);
            let _ = decode(&bytes);
            true
        }
    }
}
