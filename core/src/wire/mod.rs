//! The peer wire protocol codec: the BEP 3 handshake and messages, the BEP 6 fast extension
//! messages, BEP 10 extended-message framing and the extended handshake.
//!
//! This module owns the bytes of a peer connection and nothing else: it turns values into
//! bytes ([`Handshake::encode`], [`Message::encode`], [`ExtendedHandshake::encode`]) and
//! bytes into values ([`Handshake::decode`], [`Decoder::decode`],
//! [`ExtendedHandshake::decode`]). It keeps no connection state and performs no IO; what a
//! message *means* at a given moment (a bitfield only first, fast messages only if both
//! sides set the reserved bit, requests only when unchoked) is the peer layer's concern.
//!
//! Invariants, which the tests check on arbitrary input:
//!
//! - **No panic on remote input.** Every malformed byte sequence is a [`WireError`] naming
//!   what is wrong.
//! - **Nothing is consumed until a whole item is there.** A decoder that returns `Ok(None)`
//!   (need more bytes) or an error leaves its buffer untouched, so any split of a byte stream
//!   into reads decodes to the same messages.
//! - **Bounded buffering.** A length prefix is checked against
//!   [`DecoderConfig::max_message_len`] as soon as its 4 bytes are in, and against what the
//!   message id allows once the id byte is in (fixed sizes exactly, blocks against
//!   [`DecoderConfig::max_request_len`], bitfields against the piece count), so a hostile
//!   peer cannot make us buffer more than the largest message it could legitimately send.
//! - **Zero copy for payloads.** Piece data, bitfields and extension payloads are `Bytes`
//!   slices of the read buffer; see [`Decoder`] for how to hold that buffer. For sending,
//!   [`encode_piece_header`] lets block data go out as its own buffer.
//!
//! Unknown message ids are an error ([`WireError::UnknownMessage`]) rather than silently
//! skipped: BEP 3 does not say, most clients close, and the caller can still choose to skip.

mod decoder;
mod error;
mod extended;
mod handshake;
mod message;

pub use decoder::{
    validate_bitfield, Decoder, DecoderConfig, DEFAULT_MAX_MESSAGE_LEN, DEFAULT_MAX_REQUEST_LEN,
};
pub use error::WireError;
pub use extended::{ExtendedHandshake, MAX_CLIENT_LEN};
pub use handshake::{Handshake, Reserved, PROTOCOL};
pub use message::{encode_piece_header, Message, PIECE_HEADER_LEN};

#[cfg(test)]
mod tests;
