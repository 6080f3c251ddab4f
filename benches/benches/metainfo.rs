//! Parsing a 10,000-piece torrent: bencode reading, validation, path checks and the SHA-1
//! info-hash over the raw `info` bytes (~200 KB of piece hashes).
//!
//! Run: `cargo bench -p shoal-benches --bench metainfo`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shoal_core::create::TorrentBuilder;
use shoal_core::metainfo::Metainfo;

const PIECES: u64 = 10_000;
const PIECE_LENGTH: u32 = 16 * 1024;

/// A multi-file torrent of 10,000 pieces spread over `files` files.
fn torrent(files: u64) -> Vec<u8> {
    let total = PIECES * u64::from(PIECE_LENGTH);
    let mut b = TorrentBuilder::multi_file("bench");
    for i in 0..files {
        let len = total / files + u64::from(i == 0) * (total % files);
        b.add_file(vec![format!("dir{}", i % 10), format!("file{i}.bin")], len);
    }
    b.piece_length(PIECE_LENGTH)
        .tracker("http://tracker.example/announce")
        .tracker("udp://tracker.example:6969")
        .comment("bench");
    let mut h = b.start().expect("valid layout");
    let chunk = vec![0x5au8; 1 << 20];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    h.finish().expect("all bytes fed")
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("metainfo_parse_10k_pieces");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for files in [1u64, 1_000] {
        let bytes = torrent(files);
        assert_eq!(Metainfo::parse(&bytes).unwrap().info.piece_count(), 10_000);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{files}_files"), |b| {
            b.iter(|| Metainfo::parse(std::hint::black_box(&bytes)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
