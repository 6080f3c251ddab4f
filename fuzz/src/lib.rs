//! The bodies of the fuzz targets, as plain functions: the targets in `fuzz_targets/`
//! call them, and the test suite includes this file (`core/tests/fuzz_corpora.rs`) to
//! replay every corpus input through the same code on stable Rust.
//!
//! Each panics only on a property the parser promises (a round trip, a bound, never
//! wrong metadata); any other panic is a bug the fuzzer found.

use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_core::magnet::Magnet;
use shoal_core::metadata::{FetchConfig, MetadataFetch, MetadataMessage};
use shoal_core::pex::{PexMessage, MAX_READ};
use shoal_core::InfoHash;

/// A `ut_metadata` message: what decodes encodes back to itself.
pub fn metadata_message(data: &[u8]) {
    if let Ok(m) = MetadataMessage::decode(&Bytes::copy_from_slice(data)) {
        assert_eq!(MetadataMessage::decode(&m.encode()), Ok(m));
    }
}

/// A `ut_pex` message: at most [`MAX_READ`] entries of each of the two lists of a kind,
/// and no entry anyone could not dial.
pub fn pex_message(data: &[u8]) {
    if let Ok(m) = PexMessage::decode(data) {
        assert!(m.added.len() <= 2 * MAX_READ);
        assert!(m.dropped.len() <= 2 * MAX_READ);
        for p in &m.added {
            assert_ne!(p.addr.port(), 0);
            assert!(!p.addr.ip().is_unspecified());
        }
    }
}

/// A metadata fetch driven by a script: each step is a byte saying what happens
/// (`% 5`: a peer joins with a size from the next 3 bytes, a message from a peer made of
/// the next bytes up to a 0xff, a peer leaves, time passes, the fetch's timeout), with
/// peers named by the byte after. Whatever happens, a finished fetch holds metadata whose
/// SHA-1 is the info-hash. The info-hash is that of a tiny real `info`, so an honest
/// script can finish. Returns whether it did.
pub fn metadata_fetch(data: &[u8]) -> bool {
    let info: &[u8] =
        b"d6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    let hash = InfoHash(sha1_smol(info));
    let mut fetch: MetadataFetch<u8> = MetadataFetch::new(
        &Magnet::new(hash),
        FetchConfig {
            max_size: 1 << 20,
            ..FetchConfig::default()
        },
    );
    let mut now = Instant::now();
    let mut rest = data;
    while let [op, peer, tail @ ..] = rest {
        rest = tail;
        match op % 5 {
            0 => {
                let size = rest
                    .iter()
                    .take(3)
                    .fold(0u64, |a, &b| a << 8 | u64::from(b));
                rest = rest.get(3..).unwrap_or(&[]);
                let _ = fetch.add_peer(*peer, size, now);
            }
            1 => {
                let end = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
                let (body, after) = rest.split_at(end);
                rest = after.get(1..).unwrap_or(&[]);
                if let Ok(m) = MetadataMessage::decode(&Bytes::copy_from_slice(body)) {
                    fetch.on_message(*peer, &m, now);
                }
            }
            2 => fetch.remove_peer(*peer, now),
            3 => now += Duration::from_secs(u64::from(*peer)),
            _ => {
                if fetch.poll_timeout().is_some_and(|t| t <= now) {
                    fetch.handle_timeout(now);
                }
            }
        }
        while fetch.poll_action().is_some() {}
        if let Some(Ok(meta)) = fetch.outcome() {
            assert_eq!(meta.info_hash, hash);
            assert_eq!(meta.info_bytes, info);
        }
    }
    matches!(fetch.outcome(), Some(Ok(_)))
}

/// SHA-1 of `data`, by the core's own route (a `Metainfo` made from it).
fn sha1_smol(data: &[u8]) -> [u8; 20] {
    shoal_core::metainfo::Metainfo::from_info_bytes(data)
        .expect("a valid info")
        .info_hash
        .0
}
