//! The messages that follow the handshake, and how they are written.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{BlockRequest, PieceIndex};

// Message ids. BEP 3: 0–9 (9 is BEP 5's port); BEP 6: 0x0D–0x11; BEP 10: 20.
pub(super) const CHOKE: u8 = 0;
pub(super) const UNCHOKE: u8 = 1;
pub(super) const INTERESTED: u8 = 2;
pub(super) const NOT_INTERESTED: u8 = 3;
pub(super) const HAVE: u8 = 4;
pub(super) const BITFIELD: u8 = 5;
pub(super) const REQUEST: u8 = 6;
pub(super) const PIECE: u8 = 7;
pub(super) const CANCEL: u8 = 8;
pub(super) const PORT: u8 = 9;
pub(super) const SUGGEST: u8 = 0x0D;
pub(super) const HAVE_ALL: u8 = 0x0E;
pub(super) const HAVE_NONE: u8 = 0x0F;
pub(super) const REJECT: u8 = 0x10;
pub(super) const ALLOWED_FAST: u8 = 0x11;
pub(super) const EXTENDED: u8 = 20;

/// The bytes of a piece message before its data: length prefix, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

/// The name of a message id, for errors and logs.
pub(super) fn message_name(id: u8) -> &'static str {
    match id {
        CHOKE => "choke",
        UNCHOKE => "unchoke",
        INTERESTED => "interested",
        NOT_INTERESTED => "not interested",
        HAVE => "have",
        BITFIELD => "bitfield",
        REQUEST => "request",
        PIECE => "piece",
        CANCEL => "cancel",
        PORT => "port",
        SUGGEST => "suggest",
        HAVE_ALL => "have all",
        HAVE_NONE => "have none",
        REJECT => "reject",
        ALLOWED_FAST => "allowed fast",
        EXTENDED => "extended",
        _ => "unknown",
    }
}

/// One peer wire message (BEP 3, BEP 6's fast extension, BEP 10's extended framing).
///
/// The codec checks framing and what can be checked without connection state (lengths,
/// piece indices against the piece count); whether a message is allowed *now* (a bitfield
/// only first, fast messages only if both sides advertised them, an extended id that was
/// negotiated) is the peer layer's business.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// A zero-length message that keeps an idle connection open.
    KeepAlive,
    /// We may not request from the sender (it will not serve us).
    Choke,
    /// We may request from the sender.
    Unchoke,
    /// The sender wants pieces we have.
    Interested,
    /// The sender wants nothing we have.
    NotInterested,
    /// The sender has verified this piece.
    Have(PieceIndex),
    /// One bit per piece, piece 0 in the high bit of the first byte.
    Bitfield(Bytes),
    /// Asks for a block.
    Request(BlockRequest),
    /// A block of data; on decoding, `data` is a slice of the read buffer (no copy).
    Piece {
        /// The piece.
        piece: PieceIndex,
        /// The block's offset in the piece.
        begin: u32,
        /// The block's bytes.
        data: Bytes,
    },
    /// Withdraws a request.
    Cancel(BlockRequest),
    /// The peer's DHT port (BEP 5).
    Port(u16),
    /// BEP 6: the peer suggests we download this piece.
    Suggest(PieceIndex),
    /// BEP 6: the peer has every piece (replaces a full bitfield).
    HaveAll,
    /// BEP 6: the peer has no piece (replaces an empty bitfield).
    HaveNone,
    /// BEP 6: the peer will not serve this request.
    Reject(BlockRequest),
    /// BEP 6: we may request this piece even while choked.
    AllowedFast(PieceIndex),
    /// BEP 10: an extension message; `id` 0 is the extended handshake, other ids are those
    /// the receiver assigned in its handshake's `m` dictionary.
    Extended {
        /// The extension's id: 0 for the handshake, else as the receiver assigned it.
        id: u8,
        /// The message body (for the handshake, a bencoded dictionary).
        payload: Bytes,
    },
}

impl Message {
    /// The message id on the wire; `None` for a keep-alive, which has none.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => CHOKE,
            Message::Unchoke => UNCHOKE,
            Message::Interested => INTERESTED,
            Message::NotInterested => NOT_INTERESTED,
            Message::Have(_) => HAVE,
            Message::Bitfield(_) => BITFIELD,
            Message::Request(_) => REQUEST,
            Message::Piece { .. } => PIECE,
            Message::Cancel(_) => CANCEL,
            Message::Port(_) => PORT,
            Message::Suggest(_) => SUGGEST,
            Message::HaveAll => HAVE_ALL,
            Message::HaveNone => HAVE_NONE,
            Message::Reject(_) => REJECT,
            Message::AllowedFast(_) => ALLOWED_FAST,
            Message::Extended { .. } => EXTENDED,
        })
    }

    /// What follows the length prefix: the id and the fields.
    fn body_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 1,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 5,
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 13,
            Message::Port(_) => 3,
            Message::Bitfield(bits) => 1 + bits.len(),
            Message::Piece { data, .. } => PIECE_HEADER_LEN - 4 + data.len(),
            Message::Extended { payload, .. } => 2 + payload.len(),
        }
    }

    /// The number of bytes [`encode`](Self::encode) writes, length prefix included.
    pub fn encoded_len(&self) -> usize {
        4 + self.body_len()
    }

    /// Appends the message to `dst`, length prefix first.
    ///
    /// # Panics
    ///
    /// If a payload makes the message longer than a 32-bit length prefix can say (4 GiB):
    /// such a message can only be built locally, by mistake, never decoded.
    pub fn encode(&self, dst: &mut BytesMut) {
        let body_len = u32::try_from(self.body_len())
            .expect("a wire message's length must fit its 32-bit length prefix");
        dst.reserve(4 + body_len as usize);
        dst.put_u32(body_len);
        let Some(id) = self.id() else {
            return;
        };
        dst.put_u8(id);
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have(piece) | Message::Suggest(piece) | Message::AllowedFast(piece) => {
                dst.put_u32(piece.0);
            }
            Message::Request(r) | Message::Cancel(r) | Message::Reject(r) => {
                dst.put_u32(r.piece.0);
                dst.put_u32(r.begin);
                dst.put_u32(r.length);
            }
            Message::Port(port) => dst.put_u16(*port),
            Message::Bitfield(bits) => dst.put_slice(bits),
            Message::Piece { piece, begin, data } => {
                dst.put_u32(piece.0);
                dst.put_u32(*begin);
                dst.put_slice(data);
            }
            Message::Extended { id, payload } => {
                dst.put_u8(*id);
                dst.put_slice(payload);
            }
        }
    }
}

/// Appends only the 13-byte header of a piece message whose data is `len` bytes.
///
/// A runtime sends the header and the block's `Bytes` as two buffers (vectored write), so
/// block data goes from disk to socket without being copied into the send buffer.
///
/// # Panics
///
/// If `len` is above `u32::MAX - 9`, so that the length prefix would overflow.
pub fn encode_piece_header(piece: PieceIndex, begin: u32, len: u32, dst: &mut BytesMut) {
    let body_len = len
        .checked_add(PIECE_HEADER_LEN as u32 - 4)
        .expect("a piece message's length must fit its 32-bit length prefix");
    dst.reserve(PIECE_HEADER_LEN);
    dst.put_u32(body_len);
    dst.put_u8(PIECE);
    dst.put_u32(piece.0);
    dst.put_u32(begin);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(m: &Message) -> Vec<u8> {
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        assert_eq!(buf.len(), m.encoded_len(), "{m:?}");
        buf.to_vec()
    }

    fn block(piece: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            piece: PieceIndex(piece),
            begin,
            length,
        }
    }

    #[test]
    fn exact_bytes_of_every_message() {
        let r = block(1, 0x4000, 0x4000);
        let cases: Vec<(Message, Vec<u8>)> = vec![
            (Message::KeepAlive, vec![0, 0, 0, 0]),
            (Message::Choke, vec![0, 0, 0, 1, 0]),
            (Message::Unchoke, vec![0, 0, 0, 1, 1]),
            (Message::Interested, vec![0, 0, 0, 1, 2]),
            (Message::NotInterested, vec![0, 0, 0, 1, 3]),
            (
                Message::Have(PieceIndex(5)),
                vec![0, 0, 0, 5, 4, 0, 0, 0, 5],
            ),
            (
                Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
                vec![0, 0, 0, 3, 5, 0xff, 0x80],
            ),
            (
                Message::Request(r),
                vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::Piece {
                    piece: PieceIndex(2),
                    begin: 0x10,
                    data: Bytes::from_static(b"abc"),
                },
                vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0, 0x10, b'a', b'b', b'c'],
            ),
            (
                Message::Cancel(r),
                vec![0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
            (
                Message::Suggest(PieceIndex(0x0102_0304)),
                vec![0, 0, 0, 5, 0x0d, 1, 2, 3, 4],
            ),
            (Message::HaveAll, vec![0, 0, 0, 1, 0x0e]),
            (Message::HaveNone, vec![0, 0, 0, 1, 0x0f]),
            (
                Message::Reject(r),
                vec![0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::AllowedFast(PieceIndex(7)),
                vec![0, 0, 0, 5, 0x11, 0, 0, 0, 7],
            ),
            (
                Message::Extended {
                    id: 0,
                    payload: Bytes::from_static(b"de"),
                },
                vec![0, 0, 0, 4, 20, 0, b'd', b'e'],
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(bytes_of(&message), expected, "{message:?}");
        }
    }

    #[test]
    fn piece_header_matches_the_full_message() {
        let data = Bytes::from(vec![7u8; 100]);
        let full = bytes_of(&Message::Piece {
            piece: PieceIndex(9),
            begin: 32,
            data: data.clone(),
        });
        let mut header = BytesMut::new();
        encode_piece_header(PieceIndex(9), 32, data.len() as u32, &mut header);
        assert_eq!(header.len(), PIECE_HEADER_LEN);
        assert_eq!(&full[..PIECE_HEADER_LEN], &header[..]);
        assert_eq!(&full[PIECE_HEADER_LEN..], &data[..]);
    }

    #[test]
    fn names_and_ids() {
        assert_eq!(Message::KeepAlive.id(), None);
        assert_eq!(Message::HaveAll.id(), Some(0x0e));
        assert_eq!(message_name(REJECT), "reject");
        assert_eq!(message_name(99), "unknown");
    }
}
