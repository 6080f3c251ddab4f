//! The incremental message decoder.

use bytes::{Buf, BytesMut};

use super::message::*; // the message ids
use super::{Message, WireError};
use crate::{BlockRequest, PieceIndex};

/// Default [`DecoderConfig::max_message_len`]: 1 MiB.
///
/// The long messages are bitfields and extension messages. A bitfield of 1 MiB covers 8 Mi
/// pieces, eight times the largest torrents seen in practice (1 Mi pieces need 128 KiB);
/// extension payloads (ut_metadata blocks of 16 KiB, PEX lists) are far below it. Piece
/// messages have their own, tighter bound ([`DEFAULT_MAX_REQUEST_LEN`]), and once the piece
/// count is known a bitfield must have its exact size, so in practice only extension
/// messages and bitfields of a still-unknown torrent can make a peer buffer up to this.
pub const DEFAULT_MAX_MESSAGE_LEN: u32 = 1 << 20;

/// Default [`DecoderConfig::max_request_len`]: 128 KiB, the largest block any client
/// requests (almost all use 16 KiB; some old ones asked for up to 128 KiB).
pub const DEFAULT_MAX_REQUEST_LEN: u32 = 128 * 1024;

/// Bounds and torrent facts the [`Decoder`] checks messages against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DecoderConfig {
    /// The largest length prefix accepted (the message without its 4-byte prefix).
    pub max_message_len: u32,
    /// The largest block length in a request, cancel, reject or piece message.
    pub max_request_len: u32,
    /// The torrent's piece count, once known (a magnet link's peers connect before the
    /// metadata is there). With it, bitfields must have exactly the right size and no bit
    /// past the last piece, and piece indices must be in range.
    pub piece_count: Option<u32>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_request_len: DEFAULT_MAX_REQUEST_LEN,
            piece_count: None,
        }
    }
}

/// Splits a peer's byte stream (after the handshake) into [`Message`]s.
///
/// Keep the connection's socket read buffer as the `src` of [`decode`](Self::decode):
/// `reserve` room on it, read into its spare capacity, then call `decode` until it returns
/// `Ok(None)`. Payloads (piece data, bitfields, extension payloads) come out as `Bytes`
/// sharing that buffer's memory, so a block goes from socket to disk write without a copy;
/// while such `Bytes` live, `reserve` allocates a fresh buffer instead of reusing the old one.
///
/// ```
/// use bytes::BytesMut;
/// use shoal_core::wire::{Decoder, DecoderConfig, Message};
/// use shoal_core::PieceIndex;
///
/// let mut decoder = Decoder::new(DecoderConfig::default());
/// let mut read_buf = BytesMut::with_capacity(64 * 1024);
/// // A read delivers an unchoke and the first half of a have.
/// read_buf.extend_from_slice(&[0, 0, 0, 1, 1, 0, 0, 0, 5]);
/// assert_eq!(decoder.decode(&mut read_buf)?, Some(Message::Unchoke));
/// assert_eq!(decoder.decode(&mut read_buf)?, None);
/// // The next read completes it.
/// read_buf.extend_from_slice(&[4, 0, 0, 0, 7]);
/// assert_eq!(decoder.decode(&mut read_buf)?, Some(Message::Have(PieceIndex(7))));
/// # Ok::<(), shoal_core::wire::WireError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    config: DecoderConfig,
}

impl Decoder {
    /// A decoder with the given bounds; `Decoder::default()` uses the default ones.
    pub fn new(config: DecoderConfig) -> Decoder {
        Decoder { config }
    }

    /// The limits the decoder was made with.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Tells the decoder the torrent's piece count once it is known (from the metadata).
    /// A bitfield decoded before then is checked with [`validate_bitfield`].
    pub fn set_piece_count(&mut self, piece_count: u32) {
        self.config.piece_count = Some(piece_count);
    }

    /// Takes one whole message from the front of `src`.
    ///
    /// - `Ok(Some(message))`: the message's bytes have been consumed.
    /// - `Ok(None)`: more bytes are needed; nothing has been consumed.
    /// - `Err(_)`: a protocol violation; nothing has been consumed.
    ///
    /// Lengths are checked as soon as they are visible: the length prefix against
    /// [`DecoderConfig::max_message_len`] once 4 bytes are in, and the length against what
    /// the message id allows once the 5th is in, so a hostile length is refused before its
    /// body is buffered.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let Some(&[a, b, c, d]) = src.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([a, b, c, d]);
        if len == 0 {
            src.advance(4);
            return Ok(Some(Message::KeepAlive));
        }
        let max = self.config.max_message_len;
        let frame_len = match usize::try_from(len).ok().and_then(|l| l.checked_add(4)) {
            Some(frame_len) if len <= max => frame_len,
            _ => return Err(WireError::MessageTooLong { len, max }),
        };
        let Some(&id) = src.get(4) else {
            return Ok(None);
        };
        self.check_len(id, len)?;
        let Some(body) = src.get(5..frame_len) else {
            return Ok(None);
        };
        // Past check_len, every fixed-size body has its exact size and every variable-size
        // body at least its fixed fields, so the field reads below stay in bounds. Messages
        // with a payload split their frame off `src`; the others are read, then skipped.
        let message = match id {
            CHOKE => Message::Choke,
            UNCHOKE => Message::Unchoke,
            INTERESTED => Message::Interested,
            NOT_INTERESTED => Message::NotInterested,
            HAVE_ALL => Message::HaveAll,
            HAVE_NONE => Message::HaveNone,
            HAVE => Message::Have(self.piece_index(id, u32_at(body, 0))?),
            SUGGEST => Message::Suggest(self.piece_index(id, u32_at(body, 0))?),
            ALLOWED_FAST => Message::AllowedFast(self.piece_index(id, u32_at(body, 0))?),
            REQUEST => Message::Request(self.block_request(id, body)?),
            CANCEL => Message::Cancel(self.block_request(id, body)?),
            REJECT => Message::Reject(self.block_request(id, body)?),
            PORT => Message::Port(u16::from_be_bytes([body[0], body[1]])),
            BITFIELD => {
                if let Some(piece_count) = self.config.piece_count {
                    validate_bitfield(body, piece_count)?;
                }
                return Ok(Some(Message::Bitfield(payload(src, frame_len, 5))));
            }
            PIECE => {
                let piece = self.piece_index(id, u32_at(body, 0))?;
                let begin = u32_at(body, 4);
                // check_len bounded the data by max_request_len, itself a u32.
                let length = len - (PIECE_HEADER_LEN as u32 - 4);
                if begin.checked_add(length).is_none() {
                    return Err(WireError::BlockOverflow { id, begin, length });
                }
                let data = payload(src, frame_len, PIECE_HEADER_LEN);
                return Ok(Some(Message::Piece { piece, begin, data }));
            }
            EXTENDED => {
                let ext = body[0];
                let payload = payload(src, frame_len, 6);
                return Ok(Some(Message::Extended { id: ext, payload }));
            }
            // check_len refused every other id.
            _ => return Err(WireError::UnknownMessage { id, len }),
        };
        src.advance(frame_len);
        Ok(Some(message))
    }

    /// Takes a piece message whose header is all of `head` and whose data starts `next`,
    /// without copying the data: it comes out as a slice of `next`'s memory.
    ///
    /// For runtimes whose reads do not land in one contiguous buffer (a simulator handing
    /// over shared buffers, a transport with its own buffer pool): joining the two would
    /// copy the block. `head` must hold exactly the 13 bytes of a piece header and `next`
    /// at least the rest of the message; otherwise nothing is consumed and `Ok(None)` says
    /// to join the buffers and [`decode`](Self::decode) as usual (which then reports any
    /// protocol error, as it would have). On `Ok(Some(_))`, `head` is empty and the data
    /// has been split off the front of `next`.
    pub fn decode_across(
        &mut self,
        head: &mut BytesMut,
        next: &mut BytesMut,
    ) -> Result<Option<Message>, WireError> {
        if head.len() != PIECE_HEADER_LEN || head[4] != PIECE {
            return Ok(None);
        }
        let len = u32_at(head, 0);
        if len > self.config.max_message_len || self.check_len(PIECE, len).is_err() {
            return Ok(None);
        }
        let length = len - (PIECE_HEADER_LEN as u32 - 4);
        if next.len() < length as usize {
            return Ok(None);
        }
        let piece = self.piece_index(PIECE, u32_at(head, 5))?;
        let begin = u32_at(head, 9);
        if begin.checked_add(length).is_none() {
            return Err(WireError::BlockOverflow {
                id: PIECE,
                begin,
                length,
            });
        }
        head.clear();
        let data = next.split_to(length as usize).freeze();
        Ok(Some(Message::Piece { piece, begin, data }))
    }

    /// Checks a length prefix against what message `id` allows, before its body arrives.
    fn check_len(&self, id: u8, len: u32) -> Result<(), WireError> {
        let exact = |expected: u32| {
            if len == expected {
                Ok(())
            } else {
                Err(WireError::WrongLength { id, len, expected })
            }
        };
        let at_least = |min: u32| {
            if len >= min {
                Ok(())
            } else {
                Err(WireError::MessageTooShort { id, len, min })
            }
        };
        match id {
            CHOKE | UNCHOKE | INTERESTED | NOT_INTERESTED | HAVE_ALL | HAVE_NONE => exact(1),
            HAVE | SUGGEST | ALLOWED_FAST => exact(5),
            REQUEST | CANCEL | REJECT => exact(13),
            PORT => exact(3),
            BITFIELD => match self.config.piece_count {
                Some(piece_count) => {
                    let expected = piece_count.div_ceil(8);
                    // len >= 1 here: a zero length is a keep-alive.
                    if len - 1 == expected {
                        Ok(())
                    } else {
                        Err(WireError::BitfieldLength {
                            len: len - 1,
                            expected,
                        })
                    }
                }
                None => Ok(()),
            },
            PIECE => {
                let header = PIECE_HEADER_LEN as u32 - 4;
                at_least(header)?;
                self.block_length(id, len - header)
            }
            EXTENDED => at_least(2),
            _ => Err(WireError::UnknownMessage { id, len }),
        }
    }

    fn block_length(&self, id: u8, length: u32) -> Result<(), WireError> {
        let max = self.config.max_request_len;
        if length == 0 || length > max {
            return Err(WireError::BlockLength { id, length, max });
        }
        Ok(())
    }

    fn piece_index(&self, id: u8, index: u32) -> Result<PieceIndex, WireError> {
        match self.config.piece_count {
            Some(piece_count) if index >= piece_count => Err(WireError::PieceIndexOutOfRange {
                id,
                index: PieceIndex(index),
                piece_count,
            }),
            _ => Ok(PieceIndex(index)),
        }
    }

    /// Reads and checks the 12 bytes of a request, cancel or reject.
    fn block_request(&self, id: u8, body: &[u8]) -> Result<BlockRequest, WireError> {
        let piece = self.piece_index(id, u32_at(body, 0))?;
        let begin = u32_at(body, 4);
        let length = u32_at(body, 8);
        self.block_length(id, length)?;
        if begin.checked_add(length).is_none() {
            return Err(WireError::BlockOverflow { id, begin, length });
        }
        Ok(BlockRequest {
            piece,
            begin,
            length,
        })
    }
}

/// Checks a bitfield against a piece count: exactly `ceil(piece_count / 8)` bytes and no bit
/// set past the last piece.
///
/// The [`Decoder`] does this itself once it knows the piece count; the peer layer calls it
/// for a bitfield that arrived before the metadata did.
pub fn validate_bitfield(bitfield: &[u8], piece_count: u32) -> Result<(), WireError> {
    let expected = piece_count.div_ceil(8);
    if bitfield.len() != expected as usize {
        return Err(WireError::BitfieldLength {
            len: u32::try_from(bitfield.len()).unwrap_or(u32::MAX),
            expected,
        });
    }
    let used_bits = piece_count % 8;
    if let (Some(&last), true) = (bitfield.last(), used_bits != 0) {
        // Piece 0 is the high bit, so the spare bits are the low ones of the last byte.
        if last & (0xff >> used_bits) != 0 {
            return Err(WireError::BitfieldSpareBits { piece_count });
        }
    }
    Ok(())
}

/// Splits the whole frame off `src` and returns its bytes from `skip` on, sharing memory.
fn payload(src: &mut BytesMut, frame_len: usize, skip: usize) -> bytes::Bytes {
    let mut frame = src.split_to(frame_len);
    frame.advance(skip);
    frame.freeze()
}

/// The big-endian u32 at `at`; the caller has checked the body's length.
fn u32_at(body: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]])
}
