//! Decoder tests and the properties of the whole codec.

use bytes::{BufMut, Bytes, BytesMut};
use quickcheck::{quickcheck, Arbitrary, Gen};

use super::*;
use crate::bencode;
use crate::{BlockRequest, InfoHash, PeerId, PieceIndex};

fn frame(bytes: &[u8]) -> BytesMut {
    BytesMut::from(bytes)
}

fn decoder(piece_count: Option<u32>) -> Decoder {
    Decoder::new(DecoderConfig {
        piece_count,
        ..DecoderConfig::default()
    })
}

/// Decodes one message and checks the decoder's consumption rule: all of a message, or
/// nothing.
fn decode_one(d: &mut Decoder, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
    let before = buf.clone();
    let result = d.decode(buf);
    match &result {
        Ok(Some(m)) => assert_eq!(before.len() - buf.len(), m.encoded_len()),
        Ok(None) | Err(_) => assert_eq!(*buf, before, "consumed on {result:?}"),
    }
    result
}

fn encode_all(messages: &[Message]) -> BytesMut {
    let mut buf = BytesMut::new();
    for m in messages {
        m.encode(&mut buf);
    }
    buf
}

fn block(piece: u32, begin: u32, length: u32) -> BlockRequest {
    BlockRequest {
        piece: PieceIndex(piece),
        begin,
        length,
    }
}

#[test]
fn decodes_every_message() {
    let messages = [
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(PieceIndex(5)),
        Message::Bitfield(Bytes::from_static(&[0xff, 0xe0])),
        Message::Request(block(1, 0, 16384)),
        Message::Piece {
            piece: PieceIndex(1),
            begin: 16384,
            data: Bytes::from_static(b"block"),
        },
        Message::Cancel(block(1, 0, 16384)),
        Message::Port(6881),
        Message::Suggest(PieceIndex(2)),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(block(10, 0, 1)),
        Message::AllowedFast(PieceIndex(10)),
        Message::Extended {
            id: 3,
            payload: Bytes::new(),
        },
    ];
    let mut buf = encode_all(&messages);
    let mut d = decoder(Some(11));
    for m in &messages {
        assert_eq!(decode_one(&mut d, &mut buf), Ok(Some(m.clone())));
    }
    assert_eq!(decode_one(&mut d, &mut buf), Ok(None));
    assert!(buf.is_empty());
}

#[test]
fn waits_for_whole_messages() {
    let mut d = Decoder::default();
    let have = [0, 0, 0, 5, 4, 0, 0, 0, 5];
    let mut buf = BytesMut::new();
    for &b in &have[..8] {
        buf.put_u8(b);
        assert_eq!(decode_one(&mut d, &mut buf), Ok(None));
    }
    buf.put_u8(have[8]);
    assert_eq!(
        decode_one(&mut d, &mut buf),
        Ok(Some(Message::Have(PieceIndex(5))))
    );
}

#[test]
fn hostile_length_is_refused_before_the_body() {
    let mut d = Decoder::default();
    assert_eq!(
        decode_one(&mut d, &mut frame(&[0xff, 0xff, 0xff, 0xff])),
        Err(WireError::MessageTooLong {
            len: u32::MAX,
            max: DEFAULT_MAX_MESSAGE_LEN
        })
    );
    // Within max_message_len, but a piece can only be that long with a huge block.
    assert_eq!(
        decode_one(&mut d, &mut frame(&[0, 0x08, 0, 0, PIECE_ID])),
        Err(WireError::BlockLength {
            id: PIECE_ID,
            length: 0x8_0000 - 9,
            max: DEFAULT_MAX_REQUEST_LEN,
        })
    );
    // A bitfield of the wrong size for a known torrent, before its bytes arrive.
    assert_eq!(
        decode_one(&mut decoder(Some(16)), &mut frame(&[0, 0, 0x10, 0, 5])),
        Err(WireError::BitfieldLength {
            len: 0x1000 - 1,
            expected: 2
        })
    );
}

const PIECE_ID: u8 = 7;

#[test]
fn every_decoder_error() {
    let mut d = decoder(Some(10));
    let mut check = |bytes: &[u8], expected: WireError| {
        assert_eq!(
            decode_one(&mut d, &mut frame(bytes)),
            Err(expected),
            "{bytes:?}"
        );
    };
    check(
        &[0, 0, 0, 1, 21],
        WireError::UnknownMessage { id: 21, len: 1 },
    );
    check(
        &[0, 0, 0, 3, 0x0a],
        WireError::UnknownMessage { id: 0x0a, len: 3 },
    );
    check(
        &[0, 0, 0, 2, 0, 0],
        WireError::WrongLength {
            id: 0,
            len: 2,
            expected: 1,
        },
    );
    check(
        &[0, 0, 0, 4, 4],
        WireError::WrongLength {
            id: 4,
            len: 4,
            expected: 5,
        },
    );
    check(
        &[0, 0, 0, 12, 6],
        WireError::WrongLength {
            id: 6,
            len: 12,
            expected: 13,
        },
    );
    check(
        &[0, 0, 0, 2, 9],
        WireError::WrongLength {
            id: 9,
            len: 2,
            expected: 3,
        },
    );
    check(
        &[0, 0, 0, 8, 7],
        WireError::MessageTooShort {
            id: 7,
            len: 8,
            min: 9,
        },
    );
    check(
        &[0, 0, 0, 1, 20],
        WireError::MessageTooShort {
            id: 20,
            len: 1,
            min: 2,
        },
    );
    check(
        &[0, 0, 0, 2, 5, 0],
        WireError::BitfieldLength {
            len: 1,
            expected: 2,
        },
    );
    check(
        &[0, 0, 0, 3, 5, 0xff, 0xe0],
        WireError::BitfieldSpareBits { piece_count: 10 },
    );
    check(
        &[0, 0, 0, 5, 4, 0, 0, 0, 10],
        WireError::PieceIndexOutOfRange {
            id: 4,
            index: PieceIndex(10),
            piece_count: 10,
        },
    );
    check(
        &[0, 0, 0, 5, 0x0d, 0xff, 0xff, 0xff, 0xff],
        WireError::PieceIndexOutOfRange {
            id: 0x0d,
            index: PieceIndex(u32::MAX),
            piece_count: 10,
        },
    );
    check(
        &[0, 0, 0, 5, 0x11, 0, 0, 0, 11],
        WireError::PieceIndexOutOfRange {
            id: 0x11,
            index: PieceIndex(11),
            piece_count: 10,
        },
    );
    check(
        &[0, 0, 0, 10, 7, 0, 0, 0, 10, 0, 0, 0, 0, 1],
        WireError::PieceIndexOutOfRange {
            id: 7,
            index: PieceIndex(10),
            piece_count: 10,
        },
    );
    check(
        &[0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        WireError::BlockLength {
            id: 6,
            length: 0,
            max: DEFAULT_MAX_REQUEST_LEN,
        },
    );
    check(
        &[0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1],
        WireError::BlockLength {
            id: 0x10,
            length: 128 * 1024 + 1,
            max: DEFAULT_MAX_REQUEST_LEN,
        },
    );
    check(
        &[0, 0, 0, 9, 7, 0, 0, 0, 1, 0, 0, 0, 0],
        WireError::BlockLength {
            id: 7,
            length: 0,
            max: DEFAULT_MAX_REQUEST_LEN,
        },
    );
    check(
        &[
            0, 0, 0, 13, 8, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1,
        ],
        WireError::BlockOverflow {
            id: 8,
            begin: u32::MAX,
            length: 1,
        },
    );
    check(
        &[0, 0, 0, 11, 7, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 1, 2],
        WireError::BlockOverflow {
            id: 7,
            begin: u32::MAX,
            length: 2,
        },
    );
}

#[test]
fn piece_count_is_checked_only_once_known() {
    let spare = [0, 0, 0, 2, 5, 0x01];
    let have = [0, 0, 0, 5, 4, 0, 0, 0, 99];
    let mut d = Decoder::default();
    assert!(decode_one(&mut d, &mut frame(&spare)).is_ok());
    assert!(decode_one(&mut d, &mut frame(&have)).is_ok());
    d.set_piece_count(7);
    assert_eq!(d.config().piece_count, Some(7));
    assert_eq!(
        decode_one(&mut d, &mut frame(&spare)),
        Err(WireError::BitfieldSpareBits { piece_count: 7 })
    );
    assert!(decode_one(&mut d, &mut frame(&have)).is_err());

    // An exact multiple of 8 has no spare bits; zero pieces means an empty bitfield.
    assert_eq!(validate_bitfield(&[0xff], 8), Ok(()));
    assert_eq!(validate_bitfield(&[], 0), Ok(()));
    assert_eq!(validate_bitfield(&[0xfe], 7), Ok(()));
    assert_eq!(
        validate_bitfield(&[0xff, 0], 8),
        Err(WireError::BitfieldLength {
            len: 2,
            expected: 1
        })
    );
}

#[test]
fn payloads_share_the_read_buffer() {
    let mut src = BytesMut::with_capacity(64 * 1024);
    Message::Have(PieceIndex(1)).encode(&mut src);
    encode_piece_header(PieceIndex(3), 0, 16384, &mut src);
    src.put_bytes(0xab, 16384);
    Message::Bitfield(Bytes::from_static(&[0xf0])).encode(&mut src);
    let start = src.as_ptr() as usize;
    let end = start + src.capacity();
    let within = |b: &Bytes| {
        let p = b.as_ptr() as usize;
        p >= start && p + b.len() <= end
    };

    let mut d = Decoder::default();
    assert_eq!(d.decode(&mut src), Ok(Some(Message::Have(PieceIndex(1)))));
    let Ok(Some(Message::Piece { data, .. })) = d.decode(&mut src) else {
        panic!("expected a piece");
    };
    assert_eq!(data.len(), 16384);
    assert!(within(&data), "piece data was copied");
    assert_eq!(data.as_ptr() as usize, start + 9 + PIECE_HEADER_LEN);
    let Ok(Some(Message::Bitfield(bits))) = d.decode(&mut src) else {
        panic!("expected a bitfield");
    };
    assert!(within(&bits), "bitfield was copied");
    assert!(src.is_empty());
}

/// A piece whose header and data come in separate buffers: taken without a copy, the same
/// message as decoding the joined bytes; anything else is left alone for `decode`.
#[test]
fn a_piece_across_two_buffers_is_not_copied() {
    let mut d = decoder(Some(10));
    let mut head = BytesMut::new();
    encode_piece_header(PieceIndex(3), 16384, 100, &mut head);
    let mut next = BytesMut::new();
    next.put_bytes(0xcd, 100);
    Message::Have(PieceIndex(2)).encode(&mut next);
    let data_at = next.as_ptr() as usize;
    let Ok(Some(Message::Piece { piece, begin, data })) = d.decode_across(&mut head, &mut next)
    else {
        panic!("expected a piece");
    };
    assert_eq!((piece, begin, data.len()), (PieceIndex(3), 16384, 100));
    assert_eq!(data.as_ptr() as usize, data_at, "piece data was copied");
    assert!(data.iter().all(|&b| b == 0xcd));
    assert!(head.is_empty());
    assert_eq!(d.decode(&mut next), Ok(Some(Message::Have(PieceIndex(2)))));

    // Not applicable: data short of the block, header incomplete or with data after it,
    // another message: nothing consumed.
    let cases: [(&[u8], usize); 4] = [
        (&[0, 0, 0, 109, 7, 0, 0, 0, 3, 0, 0, 0, 0], 99),
        (&[0, 0, 0, 109, 7, 0, 0, 0, 3, 0, 0, 0], 100),
        (&[0, 0, 0, 109, 7, 0, 0, 0, 3, 0, 0, 0, 0, 1], 100),
        (&[0, 0, 0, 5, 4, 0, 0, 0, 3, 0, 0, 0, 0], 100),
    ];
    for (h, n) in cases {
        let (mut head, mut next) = (frame(h), BytesMut::from(&vec![0u8; n][..]));
        assert_eq!(d.decode_across(&mut head, &mut next), Ok(None), "{h:?}");
        assert_eq!((&head[..], next.len()), (h, n));
    }
    // The decoder's own errors still apply: a piece index out of range.
    let mut head = frame(&[0, 0, 0, 109, 7, 0, 0, 0, 10, 0, 0, 0, 0]);
    let mut next = BytesMut::from(&[0u8; 100][..]);
    assert!(d.decode_across(&mut head, &mut next).is_err());
}

#[test]
fn errors_display() {
    let errors = [
        WireError::WrongProtocol { pstrlen: 19 },
        WireError::WrongProtocol { pstrlen: 0 },
        WireError::MessageTooLong { len: 5, max: 4 },
        WireError::UnknownMessage { id: 99, len: 1 },
        WireError::WrongLength {
            id: 4,
            len: 1,
            expected: 5,
        },
        WireError::MessageTooShort {
            id: 7,
            len: 1,
            min: 9,
        },
        WireError::BitfieldLength {
            len: 1,
            expected: 2,
        },
        WireError::BitfieldSpareBits { piece_count: 3 },
        WireError::BlockLength {
            id: 6,
            length: 0,
            max: 1,
        },
        WireError::BlockOverflow {
            id: 6,
            begin: 1,
            length: u32::MAX,
        },
        WireError::PieceIndexOutOfRange {
            id: 4,
            index: PieceIndex(9),
            piece_count: 9,
        },
        WireError::ExtendedHandshake(bencode::decode(b"x").unwrap_err()),
        WireError::ExtendedHandshakeNotDict,
    ];
    for e in errors {
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(
        WireError::PieceIndexOutOfRange {
            id: 4,
            index: PieceIndex(9),
            piece_count: 9
        }
        .to_string(),
        "have names piece 9, the torrent has 9 pieces"
    );
    let e = WireError::ExtendedHandshake(bencode::decode(b"x").unwrap_err());
    assert!(std::error::Error::source(&e).is_some());
}

// ---- properties -------------------------------------------------------------------------

fn piece_index(g: &mut Gen) -> PieceIndex {
    PieceIndex(u32::arbitrary(g))
}

/// A request that the default decoder accepts: length 1..=max, end within 32 bits.
fn block_request(g: &mut Gen) -> BlockRequest {
    let length = 1 + u32::arbitrary(g) % DEFAULT_MAX_REQUEST_LEN;
    let begin = u32::arbitrary(g) % (u32::MAX - length + 1);
    BlockRequest {
        piece: piece_index(g),
        begin,
        length,
    }
}

fn payload(g: &mut Gen) -> Bytes {
    Bytes::from(Vec::<u8>::arbitrary(g))
}

/// Only messages the default decoder (no piece count) accepts.
impl Arbitrary for Message {
    fn arbitrary(g: &mut Gen) -> Message {
        match u8::arbitrary(g) % 17 {
            0 => Message::KeepAlive,
            1 => Message::Choke,
            2 => Message::Unchoke,
            3 => Message::Interested,
            4 => Message::NotInterested,
            5 => Message::Have(piece_index(g)),
            6 => Message::Bitfield(payload(g)),
            7 => Message::Request(block_request(g)),
            8 => {
                let mut data = Vec::<u8>::arbitrary(g);
                data.push(u8::arbitrary(g)); // a block is never empty
                let length = data.len() as u32;
                Message::Piece {
                    piece: piece_index(g),
                    begin: u32::arbitrary(g) % (u32::MAX - length + 1),
                    data: Bytes::from(data),
                }
            }
            9 => Message::Cancel(block_request(g)),
            10 => Message::Port(u16::arbitrary(g)),
            11 => Message::Suggest(piece_index(g)),
            12 => Message::HaveAll,
            13 => Message::HaveNone,
            14 => Message::Reject(block_request(g)),
            15 => Message::AllowedFast(piece_index(g)),
            _ => Message::Extended {
                id: u8::arbitrary(g),
                payload: payload(g),
            },
        }
    }
}

impl Arbitrary for ExtendedHandshake {
    fn arbitrary(g: &mut Gen) -> ExtendedHandshake {
        let mut names: Vec<(String, u8)> = Vec::arbitrary(g);
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names.dedup_by(|a, b| a.0 == b.0);
        let client = Option::<String>::arbitrary(g).map(|mut c| {
            while c.len() > MAX_CLIENT_LEN {
                c.pop();
            }
            c
        });
        ExtendedHandshake {
            extensions: names.into_iter().collect(),
            listen_port: Option::<u16>::arbitrary(g).filter(|&p| p != 0),
            client,
            reqq: Arbitrary::arbitrary(g),
            your_ip: Arbitrary::arbitrary(g),
            metadata_size: Option::<u64>::arbitrary(g).map(|s| s >> 1), // bencode ints are i64
        }
    }
}

fn array20(bytes: &[u8]) -> [u8; 20] {
    let mut a = [0u8; 20];
    for (a, b) in a.iter_mut().zip(bytes) {
        *a = *b;
    }
    a
}

/// Feeds `stream` to a decoder in chunks of the given sizes, decoding after each.
fn decode_in_chunks(
    d: &mut Decoder,
    stream: &[u8],
    sizes: &[usize],
) -> Result<Vec<Message>, WireError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = sizes
            .next()
            .map_or(rest.len(), |&s| s % 37 + 1)
            .min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(m) = decode_one(d, &mut buf)? {
            out.push(m);
        }
    }
    assert!(buf.is_empty());
    Ok(out)
}

quickcheck! {
    fn message_round_trip(m: Message) -> bool {
        let mut buf = encode_all(std::slice::from_ref(&m));
        let decoded = decode_one(&mut Decoder::default(), &mut buf);
        decoded == Ok(Some(m)) && buf.is_empty()
    }

    fn any_split_decodes_the_same(messages: Vec<Message>, sizes: Vec<usize>) -> bool {
        let stream = encode_all(&messages);
        decode_in_chunks(&mut Decoder::default(), &stream, &sizes) == Ok(messages)
    }

    fn arbitrary_bytes_never_panic(bytes: Vec<u8>, piece_count: Option<u16>) -> bool {
        for piece_count in [None, piece_count.map(u32::from)] {
            let mut buf = BytesMut::from(&bytes[..]);
            let mut d = decoder(piece_count);
            while let Ok(Some(_)) = decode_one(&mut d, &mut buf) {}
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = Handshake::decode(&mut buf);
        let _ = Handshake::peek_info_hash(&bytes);
        let _ = ExtendedHandshake::decode(&bytes);
        true
    }

    // Random bytes rarely make a plausible length prefix; well-framed arbitrary bodies
    // reach the per-message checks.
    fn arbitrary_frames_never_panic(
        frames: Vec<(u8, Vec<u8>)>,
        piece_count: Option<u16>,
        max_request_len: u16
    ) -> bool {
        let mut d = Decoder::new(DecoderConfig {
            max_message_len: 64,
            max_request_len: u32::from(max_request_len),
            piece_count: piece_count.map(u32::from),
        });
        for (id, body) in &frames {
            let mut frame = BytesMut::new();
            frame.put_u32(body.len() as u32 + 1);
            frame.put_u8(id % 22);
            frame.put_slice(body);
            while let Ok(Some(_)) = decode_one(&mut d, &mut frame) {}
        }
        true
    }

    fn handshake_round_trip(reserved: u64, info_hash: Vec<u8>, peer_id: Vec<u8>) -> bool {
        let hs = Handshake {
            reserved: Reserved(reserved.to_be_bytes()),
            info_hash: InfoHash(array20(&info_hash)),
            peer_id: PeerId(array20(&peer_id)),
        };
        let mut buf = BytesMut::new();
        hs.encode(&mut buf);
        Handshake::peek_info_hash(&buf) == Ok(Some(hs.info_hash))
            && Handshake::decode(&mut buf) == Ok(Some(hs))
            && buf.is_empty()
    }

    fn extended_handshake_round_trip(hs: ExtendedHandshake) -> bool {
        let decoded = ExtendedHandshake::decode(&hs.encode());
        decoded == Ok(hs)
    }

    // Dictionaries of known keys with values of any type: ill-typed ones are ignored.
    fn extended_handshake_is_lenient(values: Vec<(u8, i64, Vec<u8>, bool)>) -> bool {
        const KEYS: [&str; 7] = ["m", "metadata_size", "p", "reqq", "v", "x", "yourip"];
        let mut chosen: Vec<_> = values.iter().map(|v| (KEYS[v.0 as usize % 7], v)).collect();
        chosen.sort_by_key(|c| c.0);
        chosen.dedup_by_key(|c| c.0);
        let mut payload = b"d".to_vec();
        for (key, (_, int, bytes, as_int)) in chosen {
            payload.extend_from_slice(format!("{}:{key}", key.len()).as_bytes());
            if *as_int {
                payload.extend_from_slice(format!("i{int}e").as_bytes());
            } else {
                payload.extend_from_slice(format!("{}:", bytes.len()).as_bytes());
                payload.extend_from_slice(bytes);
            }
        }
        payload.push(b'e');
        ExtendedHandshake::decode(&payload).is_ok()
    }
}
