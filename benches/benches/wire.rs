//! Peer wire decoding throughput: small control messages (messages/s) and 16 KiB piece
//! messages (payload bytes/s).
//!
//! Each iteration decodes a whole pre-encoded stream. The copy of that stream into a fresh
//! `BytesMut` (standing in for a socket read) happens in `iter_batched`'s setup, outside
//! the timed part; dropping the decoded messages, which releases the shared buffer, is inside
//! it, as it is in a real connection.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shoal_core::wire::{Decoder, DecoderConfig, Message};
use shoal_core::{BlockRequest, PieceIndex, BLOCK_SIZE};

const PIECE_COUNT: u32 = 4096;

fn decoder() -> Decoder {
    Decoder::new(DecoderConfig {
        piece_count: Some(PIECE_COUNT),
        ..DecoderConfig::default()
    })
}

/// Decodes every message in `src`, returning how many there were.
fn decode_all(mut src: BytesMut) -> usize {
    let mut d = decoder();
    let mut n = 0;
    while let Some(m) = d.decode(&mut src).expect("the bench stream is valid") {
        black_box(m);
        n += 1;
    }
    n
}

/// A mix like the control traffic of a busy swarm: haves and requests dominate.
fn small_messages(count: u32) -> BytesMut {
    let mut buf = BytesMut::new();
    for i in 0..count {
        let piece = PieceIndex(i % PIECE_COUNT);
        let m = match i % 8 {
            0..=2 => Message::Have(piece),
            3..=5 => Message::Request(BlockRequest {
                piece,
                begin: (i % 16) * BLOCK_SIZE,
                length: BLOCK_SIZE,
            }),
            6 => Message::Cancel(BlockRequest {
                piece,
                begin: 0,
                length: BLOCK_SIZE,
            }),
            _ => [
                Message::Choke,
                Message::Unchoke,
                Message::Interested,
                Message::KeepAlive,
            ][(i / 8 % 4) as usize]
                .clone(),
        };
        m.encode(&mut buf);
    }
    buf
}

fn piece_messages(count: u32) -> BytesMut {
    let block = Bytes::from(vec![0x5a; BLOCK_SIZE as usize]);
    let mut buf = BytesMut::new();
    for i in 0..count {
        Message::Piece {
            piece: PieceIndex(i / 16),
            begin: (i % 16) * BLOCK_SIZE,
            data: block.clone(),
        }
        .encode(&mut buf);
    }
    buf
}

fn bench_wire(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire_decode");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);

    const SMALL: u32 = 10_000;
    let stream = small_messages(SMALL);
    assert_eq!(decode_all(stream.clone()), SMALL as usize);
    group.throughput(Throughput::Elements(u64::from(SMALL)));
    group.bench_function("small_messages", |b| {
        b.iter_batched(|| stream.clone(), decode_all, BatchSize::LargeInput)
    });

    const PIECES: u32 = 256; // 4 MiB of blocks
    let stream = piece_messages(PIECES);
    assert_eq!(decode_all(stream.clone()), PIECES as usize);
    group.throughput(Throughput::Bytes(u64::from(PIECES * BLOCK_SIZE)));
    group.bench_function("piece_16k", |b| {
        b.iter_batched(|| stream.clone(), decode_all, BatchSize::LargeInput)
    });

    group.finish();
}

criterion_group!(benches, bench_wire);
criterion_main!(benches);
