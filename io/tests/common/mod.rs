//! Torrents built by hand for the storage and resume tests: any file list, padding files
//! (BEP 47) included, with the content they describe.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bendy::encoding::Encoder;
use sha1::{Digest, Sha1};
use shoal_core::metainfo::Metainfo;
use shoal_core::{PieceIndex, BLOCK_SIZE};
use shoal_io::Storage;

/// A file of a test torrent: its path below the torrent's name, its length, and whether it
/// is a padding file.
#[derive(Clone, Copy)]
pub struct F(pub &'static str, pub u64, pub bool);

/// A torrent and the bytes its pieces cover (padding as zeros).
pub struct Torrent {
    pub meta: Arc<Metainfo>,
    pub bytes: Vec<u8>,
    pub data: Vec<u8>,
}

/// Deterministic bytes: no two files alike, no run of zeros.
pub fn content(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A multi-file torrent named `name` (or a single-file one when `files` is one unnamed
/// entry, path "").
pub fn torrent(name: &str, piece_length: u32, files: &[F]) -> Torrent {
    let mut data = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if f.2 {
            data.resize(data.len() + f.1 as usize, 0);
        } else {
            data.extend(content(f.1, i as u64 + 1));
        }
    }
    let pieces: Vec<u8> = data
        .chunks(piece_length as usize)
        .flat_map(|p| <[u8; 20]>::from(Sha1::digest(p)))
        .collect();
    let single = files.len() == 1 && files[0].0.is_empty();
    let mut e = Encoder::new();
    e.emit_dict(|mut d| {
        d.emit_pair(b"announce", "http://127.0.0.1:1/announce")?;
        d.emit_pair_with(b"info", |e| {
            e.emit_dict(|mut d| {
                if single {
                    d.emit_pair(b"length", files[0].1)?;
                } else {
                    d.emit_pair_with(b"files", |e| {
                        e.emit_list(|e| {
                            for f in files {
                                e.emit_dict(|mut d| {
                                    if f.2 {
                                        d.emit_pair(b"attr", "p")?;
                                    }
                                    d.emit_pair(b"length", f.1)?;
                                    d.emit_pair_with(b"path", |e| {
                                        e.emit_list(|e| {
                                            for c in f.0.split('/') {
                                                e.emit_str(c)?;
                                            }
                                            Ok(())
                                        })
                                    })
                                })?;
                            }
                            Ok(())
                        })
                    })?;
                }
                d.emit_pair(b"name", name)?;
                d.emit_pair(b"piece length", piece_length)?;
                d.emit_pair_with(b"pieces", |e| e.emit_bytes(&pieces))
            })
        })
    })
    .unwrap();
    let bytes = e.get_output().unwrap();
    let meta = Arc::new(Metainfo::parse(&bytes).unwrap());
    Torrent { meta, bytes, data }
}

/// 32 KiB pieces (two blocks each) over: a file of odd size, a 0-byte file, a file smaller
/// than a piece, padding to the next piece boundary, a file in a sub-folder, and a 5-byte
/// file that ends a short last piece.
pub fn sample() -> Torrent {
    torrent(
        "t",
        32 * 1024,
        &[
            F("a.bin", 50_001, false),
            F("empty", 0, false),
            F("small.txt", 1_000, false),
            F(".pad/14535", 65_536 - 51_001, true),
            F("sub/dir/c.bin", 70_003, false),
            F("d.bin", 5, false),
        ],
    )
}

/// Every block of the torrent: (piece, begin, len).
pub fn blocks(t: &Torrent) -> Vec<(u32, u32, u32)> {
    let info = &t.meta.info;
    let mut out = Vec::new();
    for p in 0..info.piece_count() {
        let size = info.piece_size(PieceIndex(p));
        let mut begin = 0;
        while begin < size {
            let len = BLOCK_SIZE.min(size - begin);
            out.push((p, begin, len));
            begin += len;
        }
    }
    out
}

/// The torrent's bytes of block `(piece, begin, len)`.
pub fn slice(t: &Torrent, piece: u32, begin: u32, len: u32) -> &[u8] {
    let at = piece as usize * t.meta.info.piece_length as usize + begin as usize;
    &t.data[at..at + len as usize]
}

/// A small deterministic shuffle.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..items.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (x >> 33) as usize % (i + 1));
    }
}

/// Writes the blocks of the given pieces, in a shuffled order.
pub fn write_pieces(t: &Torrent, s: &Storage, pieces: &[u32]) {
    let mut bl: Vec<_> = blocks(t)
        .into_iter()
        .filter(|b| pieces.contains(&b.0))
        .collect();
    shuffle(&mut bl, 7);
    for (p, begin, len) in bl {
        s.write_block(PieceIndex(p), begin, slice(t, p, begin, len))
            .unwrap();
    }
}

/// The torrent's data laid out as a finished download would leave it, written by hand
/// (the way a seed's folder looks).
pub fn write_seed_files(t: &Torrent, dir: &Path) {
    for f in &t.meta.info.files {
        if f.attr.padding {
            continue;
        }
        let path = f.path.iter().fold(dir.to_path_buf(), |p, c| p.join(c));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let at = f.offset as usize;
        fs::write(&path, &t.data[at..at + f.length as usize]).unwrap();
    }
}

/// Every path below `dir` with its content (folders as `/`), sorted.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.push((path.clone(), b"/".to_vec()));
                stack.push(path);
            } else {
                out.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}
