//! Piece hashing: sixteen 256 KiB pieces (each in 16 KiB blocks, as they arrive) hashed in
//! AVX-512 lanes against one at a time with the `sha1` crate (SHA-NI where the processor
//! has it). Throughput is in bytes of pieces, so the two read as GB/s side by side.
//!
//! `cargo bench -p shoal-benches --bench lanes`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shoal_io::lanes;

const PIECE: usize = 256 * 1024;

fn pieces(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|p| (0..PIECE).map(|i| ((i * 31 + p * 7) % 251) as u8).collect())
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    for count in [16, 8, 5] {
        let data = pieces(count);
        let parts: Vec<Vec<&[u8]>> = data.iter().map(|p| p.chunks(16384).collect()).collect();
        let messages: Vec<&[&[u8]]> = parts.iter().map(|p| p.as_slice()).collect();
        group.throughput(Throughput::Bytes((count * PIECE) as u64));
        group.bench_function(format!("{count} pieces, one at a time"), |b| {
            b.iter(|| messages.iter().map(|m| lanes::one(m)).collect::<Vec<_>>())
        });
        if lanes::lanes_available() {
            group.bench_function(format!("{count} pieces in lanes"), |b| {
                b.iter(|| lanes::digests_in_lanes(&messages))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
