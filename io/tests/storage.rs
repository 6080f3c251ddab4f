//! `Storage` against real files: block writes in any order across file boundaries,
//! padding, `.part` names, hashing, verification of complete, partial and missing data,
//! and the error a full disk gives.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use shoal_core::bitfield::Bitfield;
use shoal_core::metainfo::FileEntry;
use shoal_core::PieceIndex;
use shoal_io::{Error, Storage};

fn p(i: u32) -> PieceIndex {
    PieceIndex(i)
}

fn all_pieces(t: &Torrent) -> Vec<u32> {
    (0..t.meta.info.piece_count()).collect()
}

fn ones(b: &Bitfield) -> Vec<u32> {
    b.iter_ones().collect()
}

/// The file at `path` holds exactly `f`'s bytes of the torrent.
fn assert_holds(t: &Torrent, f: &FileEntry, path: &Path) {
    let got = fs::read(path).unwrap();
    let at = f.offset as usize;
    assert!(
        got == t.data[at..at + f.length as usize],
        "{} differs",
        f.display_path()
    );
}

#[test]
fn blocks_in_random_order_land_exactly_and_hash_right() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    let root = dir.path().join("t");

    // Created at open: `.part` files of full length, the empty file under its final name, no
    // padding and no `.pad` folder.
    assert_eq!(fs::metadata(root.join("a.bin.part")).unwrap().len(), 50_001);
    assert_eq!(
        fs::metadata(root.join("sub/dir/c.bin.part")).unwrap().len(),
        70_003
    );
    assert_eq!(fs::metadata(root.join("empty")).unwrap().len(), 0);
    assert!(!root.join(".pad").exists());
    assert!(s.is_file_final(1) && !s.is_file_final(0) && !s.is_file_final(3));

    // Every block, shuffled, written from two threads at once.
    let mut all = blocks(&t);
    shuffle(&mut all, 42);
    let (left, right) = all.split_at(all.len() / 2);
    std::thread::scope(|scope| {
        for half in [left, right] {
            let s = &s;
            let t = &t;
            scope.spawn(move || {
                for &(piece, begin, len) in half {
                    s.write_block(p(piece), begin, slice(t, piece, begin, len))
                        .unwrap();
                }
            });
        }
    });

    for piece in 0..t.meta.info.piece_count() {
        assert_eq!(
            &s.hash_piece(p(piece)).unwrap(),
            &t.meta.info.pieces[piece as usize]
        );
        assert!(s.verify_piece(p(piece)).unwrap());
    }
    s.sync().unwrap();
    for f in &t.meta.info.files {
        if f.attr.padding || f.length == 0 {
            continue;
        }
        let part = PathBuf::from(format!("{}.part", f.path.join("/")));
        assert_holds(&t, f, &dir.path().join(part));
    }
    assert!(!root.join(".pad").exists());
}

#[test]
fn reads_cross_file_boundaries_and_padding_reads_as_zeros() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    write_pieces(&t, &s, &all_pieces(&t));
    // Piece 1 holds the end of a.bin, small.txt and the start of the padding; piece 4 is
    // the short last piece, the end of c.bin and all of d.bin.
    let ranges = [
        (1, 0, 32_768),
        (1, 50_001 - 32_768 - 10, 20),
        (1, 50_001 - 32_768, 1_000),
        (1, 51_001 - 32_768 - 3, 6),
        (1, 51_001 - 32_768, 32_768 - (51_001 - 32_768)),
        (2, 0, 100),
        (4, 0, 4_472),
        (4, 4_465, 7),
        (0, 32_767, 1),
    ];
    for (piece, begin, len) in ranges {
        let got = s.read_block(p(piece), begin, len).unwrap();
        assert_eq!(got, slice(&t, piece, begin, len), "{piece} {begin} {len}");
    }
    // The padding (51,001..65,536) reads as zeros, even after non-zero bytes were
    // written there: they are dropped, and nothing appears on disk.
    s.write_block(p(1), 51_001 - 32_768, &[0xaa; 300]).unwrap();
    let pad = s
        .read_block(p(1), 51_001 - 32_768, 65_536 - 51_001)
        .unwrap();
    assert!(pad.iter().all(|&b| b == 0));
    assert!(!dir.path().join("t/.pad").exists());
    assert_eq!(s.path(3), None);
    assert!(s.verify_piece(p(1)).unwrap());
    let mut buf = vec![1u8; 4_472];
    s.read_block_into(p(4), 0, &mut buf).unwrap();
    assert_eq!(buf, slice(&t, 4, 0, 4_472));
}

#[test]
fn ranges_outside_the_torrent_are_errors_not_panics() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    for (piece, begin, len) in [(5, 0, 1), (4, 4_472, 1), (4, 0, 4_473), (0, u32::MAX, 2)] {
        assert!(matches!(
            s.read_block(p(piece), begin, len),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            s.write_block(p(piece), begin, &vec![0; len as usize]),
            Err(Error::OutOfRange { .. })
        ));
    }
    assert!(matches!(s.hash_piece(p(99)), Err(Error::OutOfRange { .. })));
    assert!(matches!(
        s.file_completed(99),
        Err(Error::NoSuchFile { file: 99 })
    ));
    let e = s.read_block(p(5), 0, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "piece 5, offset 0, length 1 is outside the torrent"
    );
}

#[test]
fn part_names_until_completed_then_final_names() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    let root = dir.path().join("t");
    // Piece 0 and 1 cover a.bin and small.txt (and the padding, which completes with
    // piece 1 too).
    write_pieces(&t, &s, &[0, 1]);
    for file in [0, 2] {
        s.file_completed(file).unwrap();
    }
    assert!(root.join("a.bin").is_file() && !root.join("a.bin.part").exists());
    assert!(root.join("small.txt").is_file() && !root.join("small.txt.part").exists());
    assert!(root.join("sub/dir/c.bin.part").is_file() && !root.join("sub/dir/c.bin").exists());
    assert!(s.is_file_final(0) && s.is_file_final(2) && !s.is_file_final(4));
    assert_eq!(s.path(0).unwrap(), root.join("a.bin"));
    assert_eq!(s.path(4).unwrap(), root.join("sub/dir/c.bin.part"));

    // Writes and reads keep working through the handles opened before the rename, and
    // files opened after it.
    write_pieces(&t, &s, &[2, 3, 4]);
    assert_eq!(s.read_block(p(0), 0, 100).unwrap(), slice(&t, 0, 0, 100));
    for file in [4, 5] {
        s.file_completed(file).unwrap();
    }
    // Repeats, the zero-length file and padding are no-ops.
    for file in [0, 1, 3, 5] {
        s.file_completed(file).unwrap();
    }
    assert_eq!(
        fs::read(root.join("sub/dir/c.bin")).unwrap(),
        &t.data[65_536..65_536 + 70_003]
    );
    assert_eq!(fs::read(root.join("d.bin")).unwrap(), &t.data[135_539..]);
    let mut names: Vec<String> = walk(&root);
    names.sort();
    assert_eq!(
        names,
        ["a.bin", "d.bin", "empty", "small.txt", "sub/dir/c.bin"]
    );
    assert!(s.verify_all(|_, _| {}).is_full());
}

/// Every regular file below `root`, relative, `/`-separated.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[test]
fn single_file_torrent_lives_directly_in_the_folder() {
    let t = torrent("movie.bin", 16 * 1024, &[F("", 40_000, false)]);
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    assert!(dir.path().join("movie.bin.part").is_file());
    write_pieces(&t, &s, &all_pieces(&t));
    assert!(s.verify_all(|_, _| {}).is_full());
    s.file_completed(0).unwrap();
    assert_eq!(fs::read(dir.path().join("movie.bin")).unwrap(), t.data);
    assert!(!dir.path().join("movie.bin.part").exists());
}

#[test]
fn verify_all_on_complete_partial_and_missing_data() {
    let t = sample();
    let n = t.meta.info.piece_count();

    // A fresh download: nothing verified, and the sparse files are not even read.
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    let mut calls = Vec::new();
    let v = s.verify_all(|done, total| calls.push((done, total)));
    assert!(v.is_empty());
    assert_eq!(v.len(), n);
    assert_eq!(calls, (1..=n).map(|d| (d, n)).collect::<Vec<_>>());

    // Partial: pieces 0, 2 and 4 whole, piece 3 half written.
    write_pieces(&t, &s, &[0, 2, 4]);
    let (piece, begin, len) = blocks(&t).into_iter().find(|b| b.0 == 3).unwrap();
    s.write_block(p(piece), begin, slice(&t, piece, begin, len))
        .unwrap();
    assert_eq!(ones(&s.verify_all(|_, _| {})), [0, 2, 4]);
    drop(s);
    // The same after a restart, from the `.part` files on disk.
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    assert_eq!(ones(&s.verify_all(|_, _| {})), [0, 2, 4]);

    // Complete data in a seed's layout (final names, written by someone else).
    let seed = tempfile::tempdir().unwrap();
    write_seed_files(&t, seed.path());
    let s = Storage::open(seed.path(), t.meta.clone()).unwrap();
    assert!((0..6).filter(|&f| f != 3).all(|f| s.is_file_final(f)));
    assert!(s.verify_all(|_, _| {}).is_full());
    assert!(walk(seed.path()).iter().all(|n| !n.ends_with(".part")));
    drop(s);

    // Missing and short files: their pieces are unverified, the rest still verified, and
    // nothing is an error. small.txt is gone (piece 1); c.bin is one byte short (2..=4).
    fs::remove_file(seed.path().join("t/small.txt")).unwrap();
    let c = seed.path().join("t/sub/dir/c.bin");
    let f = fs::OpenOptions::new().write(true).open(&c).unwrap();
    f.set_len(70_002).unwrap();
    drop(f);
    let s = Storage::open(seed.path(), t.meta.clone()).unwrap();
    assert_eq!(ones(&s.verify_all(|_, _| {})), [0]);
    // The missing file came back as a `.part`, to be downloaded again.
    assert!(seed.path().join("t/small.txt.part").is_file());
    assert!(!s.is_file_final(2));

    // Corrupt data is found by its hash.
    let seed2 = tempfile::tempdir().unwrap();
    write_seed_files(&t, seed2.path());
    let a = seed2.path().join("t/a.bin");
    let mut bytes = fs::read(&a).unwrap();
    bytes[40_000] ^= 0xff;
    fs::write(&a, bytes).unwrap();
    let s = Storage::open(seed2.path(), t.meta.clone()).unwrap();
    assert_eq!(ones(&s.verify_all(|_, _| {})), [0, 2, 3, 4]);
}

#[test]
fn verify_all_in_batches_finds_exactly_the_good_pieces() {
    // 40 pieces (three batches: 16, 16, 8), one corrupt, those of a missing file unread.
    let t = torrent(
        "t",
        16 * 1024,
        &[F("a.bin", 400_000, false), F("b.bin", 250_000, false)],
    );
    let n = t.meta.info.piece_count();
    assert_eq!(n, 40);
    let dir = tempfile::tempdir().unwrap();
    write_seed_files(&t, dir.path());
    let a = dir.path().join("t/a.bin");
    let mut bytes = fs::read(&a).unwrap();
    bytes[100_000] ^= 1; // piece 6
    fs::write(&a, bytes).unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    let mut calls = Vec::new();
    let all = s.verify_all(|done, total| calls.push((done, total)));
    assert_eq!(ones(&all), (0..n).filter(|&p| p != 6).collect::<Vec<_>>());
    assert_eq!(calls, (1..=n).map(|d| (d, n)).collect::<Vec<_>>());
    drop(s);
    // b.bin gone: the pieces it covers (24 on, the one shared with a.bin too) are not.
    fs::remove_file(dir.path().join("t/b.bin")).unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    let want: Vec<u32> = (0..24).filter(|&p| p != 6).collect();
    assert_eq!(ones(&s.verify_all(|_, _| {})), want);
}

#[test]
fn a_full_disk_on_write_names_the_file() {
    // /dev/full answers every write with ENOSPC, as a full file system does. A seed's
    // file that is a link to it stands for a file on a full disk.
    let t = torrent("big.bin", 16 * 1024, &[F("", 40_000, false)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    let e = s.write_block(p(0), 0, slice(&t, 0, 0, 16_384)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: No space left on device (os error 28)", path.display())
    );
    assert!(matches!(&e, Error::Io { source, .. } if source.raw_os_error() == Some(28)));
}

/// A 1 MiB tmpfs mounted for one test, unmounted when dropped.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount() -> Option<TinyFs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyFs { dir })
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_real_full_file_system_gives_the_same_error() {
    // Needs the right to mount: scripts/test runs as root (as CI does). A test that cannot
    // run fails rather than passing silently.
    let fs = TinyFs::mount().expect("mounting a 1 MiB tmpfs needs root (run scripts/test as root)");
    let t = torrent("big.bin", 256 * 1024, &[F("", 2 * 1024 * 1024, false)]);
    // Sparse: a 2 MiB `.part` fits in a 1 MiB file system until it is written.
    let s = Storage::open(fs.dir.path(), t.meta.clone()).unwrap();
    let part = fs.dir.path().join("big.bin.part");
    let e = blocks(&t)
        .into_iter()
        .find_map(|(piece, begin, len)| {
            s.write_block(p(piece), begin, slice(&t, piece, begin, len))
                .err()
        })
        .expect("a 1 MiB file system cannot hold 2 MiB");
    assert_eq!(
        e.to_string(),
        format!("{}: No space left on device (os error 28)", part.display())
    );
    drop(s);
}

/// Bytes of disk a file takes (its allocated blocks).
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn space_is_allocated_as_writes_reach_it_and_only_where_the_disk_keeps_room() {
    // Plenty of room (the temp folder's disk), chunks of 64 KiB.
    let piece = 16 * 1024u32;
    let t = torrent(
        "two",
        piece,
        &[
            F("skipped.bin", 1_000_000, false),
            F("wanted.bin", 200_000, false),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    s.set_allocate_chunk(64 * 1024);
    let skipped = dir.path().join("two/skipped.bin.part");
    let wanted = dir.path().join("two/wanted.bin.part");
    assert_eq!(allocated(&skipped) + allocated(&wanted), 0, "made sparse");
    // Every piece holding bytes of wanted.bin, as a download that skips the other file
    // writes them: the first also holds skipped.bin's last 16,960 bytes.
    let pieces: Vec<u32> = (1_000_000 / piece..=(1_200_000 - 1) / piece).collect();
    // One block, the first of wanted.bin's own: its whole chunk is taken.
    let one = pieces[1];
    s.write_block(p(one), 0, slice(&t, one, 0, piece)).unwrap();
    assert!(
        allocated(&wanted) >= 64 * 1024,
        "{} bytes allocated after a 16 KiB write",
        allocated(&wanted)
    );
    write_pieces(&t, &s, &pieces);
    assert!(
        allocated(&wanted) >= 200_000,
        "{} bytes allocated",
        allocated(&wanted)
    );
    assert!(
        allocated(&skipped) <= 64 * 1024,
        "the skipped file took {} bytes",
        allocated(&skipped)
    );
    for &i in &pieces {
        assert!(s.verify_piece(p(i)).unwrap(), "piece {i}");
    }
    drop(s);

    // A 1 MiB file system: a chunk would leave it less than the room kept free, so a
    // 16 KiB write takes 16 KiB, not its chunk.
    let fs = TinyFs::mount().expect("mounting a 1 MiB tmpfs needs root (run scripts/test as root)");
    let t = torrent("tight.bin", piece, &[F("", 512 * 1024, false)]);
    let mut s = Storage::open(fs.dir.path(), t.meta.clone()).unwrap();
    s.set_allocate_chunk(64 * 1024);
    let part = fs.dir.path().join("tight.bin.part");
    s.write_block(p(0), 0, slice(&t, 0, 0, piece)).unwrap();
    assert!(
        allocated(&part) < 64 * 1024,
        "{} bytes allocated",
        allocated(&part)
    );
    write_pieces(&t, &s, &all_pieces(&t));
    assert!(s.verify_piece(p(31)).unwrap());
    drop(s);
}

/// More files than handles allowed: writes from two threads, reads, syncs and renames all
/// work, and no more than the bound are ever open (the least recently used ones close, and
/// `sync` and `file_completed` reopen what they need).
#[test]
fn more_files_than_open_handles() {
    let files: Vec<F> = (0..40)
        .map(|i| {
            let name: &'static str = Box::leak(format!("d{}/f{i}.bin", i % 3).into_boxed_str());
            F(name, 1000 + 37 * i, false)
        })
        .collect();
    let t = torrent("many", 16384, &files);
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    s.set_max_open(3);
    let mut all = blocks(&t);
    shuffle(&mut all, 7);
    let (left, right) = all.split_at(all.len() / 2);
    std::thread::scope(|scope| {
        for half in [left, right] {
            let (s, t) = (&s, &t);
            scope.spawn(move || {
                for &(piece, begin, len) in half {
                    s.write_block(p(piece), begin, slice(t, piece, begin, len))
                        .unwrap();
                    assert!(s.open_files() <= 3, "{} open", s.open_files());
                }
            });
        }
    });
    assert_eq!(s.open_files(), 3);
    s.sync().unwrap();
    for piece in all_pieces(&t) {
        assert!(s.verify_piece(p(piece)).unwrap(), "piece {piece}");
        assert!(s.open_files() <= 3);
    }
    for file in 0..files.len() {
        s.file_completed(file).unwrap();
        assert!(s.open_files() <= 3);
    }
    let root = dir.path();
    for f in &t.meta.info.files {
        assert_holds(&t, f, &root.join(f.path.join("/")));
        assert!(!root.join(format!("{}.part", f.path.join("/"))).exists());
    }
    // A second storage over the finished files, allowed two handles, verifies them all.
    let s2 = Storage::open(dir.path(), t.meta.clone()).unwrap();
    s2.set_max_open(2);
    let verified = s2.verify_all(|_, _| {});
    assert!(verified.is_full());
    assert!(s2.open_files() <= 2);
}

/// A damaged copy under the final names. Without leave to replace it, `prepare` refuses,
/// names the file and changes nothing; with leave (shoal's own record, or `--overwrite`),
/// the files the unverified piece touches get their `.part` names back until the piece is
/// written again, the whole ones keep theirs, and a file under both names is refused
/// rather than overwritten.
#[test]
fn final_names_of_incomplete_files_are_given_back() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    write_seed_files(&t, dir.path());
    let a = dir.path().join("t/a.bin");
    let mut bytes = fs::read(&a).unwrap();
    bytes[40_000] ^= 0xff; // piece 1: the end of a.bin, small.txt, padding
    fs::write(&a, &bytes).unwrap();
    let before = walk(dir.path());
    let s = Storage::inspect(dir.path(), t.meta.clone()).unwrap();
    let verified = s.verify_all(|_, _| {});
    assert_eq!(ones(&verified), [0, 2, 3, 4]);
    let e = s.prepare(&verified, |_| false).unwrap_err();
    assert!(
        matches!(&e, Error::InTheWay { path, .. } if path == &a),
        "{e}"
    );
    assert!(
        e.to_string().contains("1 of its 2 pieces do not match"),
        "{e}"
    );
    assert_eq!(fs::read(&a).unwrap(), bytes);
    assert_eq!(walk(dir.path()), before);

    // Leave for a.bin only: small.txt (also incomplete) is still in the way.
    let e = s.prepare(&verified, |p| p == a).unwrap_err();
    assert!(e.to_string().contains("small.txt"), "{e}");
    assert_eq!(walk(dir.path()), before);

    assert_eq!(s.prepare(&verified, |_| true).unwrap(), [0, 2]);
    let root = dir.path().join("t");
    for (name, final_name) in [
        ("a.bin", false),
        ("small.txt", false),
        ("empty", true),
        ("sub/dir/c.bin", true),
        ("d.bin", true),
    ] {
        assert_eq!(root.join(name).exists(), final_name, "{name}");
        assert_eq!(
            root.join(format!("{name}.part")).exists(),
            !final_name,
            "{name}"
        );
    }
    // Nothing more to give back; then the piece comes and the names with it.
    assert!(s.prepare(&verified, |_| true).unwrap().is_empty());
    write_pieces(&t, &s, &[1]);
    assert!(s.verify_piece(p(1)).unwrap());
    s.file_completed(0).unwrap();
    s.file_completed(2).unwrap();
    assert!(walk(dir.path()).iter().all(|n| !n.ends_with(".part")));
    assert!(Storage::open(dir.path(), t.meta.clone())
        .unwrap()
        .verify_all(|_, _| {})
        .is_full());

    // Both names on disk for an incomplete file: an error naming the `.part`.
    fs::write(root.join("d.bin"), b"wrong").unwrap();
    fs::write(root.join("d.bin.part"), b"other").unwrap();
    let s = Storage::inspect(dir.path(), t.meta.clone()).unwrap();
    let verified = s.verify_all(|_, _| {});
    assert!(!verified.get(4));
    let e = s.prepare(&verified, |_| true).unwrap_err();
    assert!(e.to_string().contains("d.bin.part"), "{e}");
    assert_eq!(fs::read(root.join("d.bin.part")).unwrap(), b"other");
}

/// Whatever of the user's is where the torrent's data goes survives `prepare` byte for
/// byte, and the error names it: a file under a file's name, a folder under a file's name,
/// a file under a folder's name, a `.part` of another size, content where the torrent has
/// an empty file. Nothing at all is created before the check.
#[test]
fn nothing_in_the_way_is_touched() {
    let t = sample();
    type Setup = fn(&Path);
    let cases: [(&str, Setup, &str); 7] = [
        (
            "t/d.bin",
            |r| fs::write(r.join("t/d.bin"), b"my thesis").unwrap(),
            "holds 9 bytes where the torrent's file has 5",
        ),
        (
            "t/d.bin",
            |r| fs::write(r.join("t/d.bin"), b"thesi").unwrap(),
            "cannot be checked: each of its pieces spans a missing file",
        ),
        (
            "t/sub/dir/c.bin",
            |r| {
                fs::create_dir_all(r.join("t/sub/dir")).unwrap();
                fs::write(r.join("t/sub/dir/c.bin"), vec![7u8; 70_003]).unwrap();
            },
            "is not this torrent's file (2 of its 3 pieces do not match)",
        ),
        (
            "t/d.bin",
            |r| fs::create_dir_all(r.join("t/d.bin/mine")).unwrap(),
            "is a folder where the torrent has a file",
        ),
        (
            "t/sub",
            |r| fs::write(r.join("t/sub"), b"not a folder").unwrap(),
            "is a file where the torrent has a folder",
        ),
        (
            "t/a.bin.part",
            |r| fs::write(r.join("t/a.bin.part"), b"firefox's").unwrap(),
            "holds 9 bytes where this torrent's partial file has 50001",
        ),
        (
            "t/empty",
            |r| fs::write(r.join("t/empty"), b"notes").unwrap(),
            "holds 5 bytes where the torrent has an empty file",
        ),
    ];
    for (path, setup, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("t")).unwrap();
        setup(dir.path());
        let before = snapshot(dir.path());
        let s = Storage::inspect(dir.path(), t.meta.clone()).unwrap();
        let verified = s.verify_all(|_, _| {});
        let e = s.prepare(&verified, |_| false).unwrap_err();
        match &e {
            Error::InTheWay {
                path: at,
                why: got,
                replaceable,
            } => {
                assert_eq!(at, &dir.path().join(path), "{e}");
                assert_eq!(got, why, "{path}");
                // --overwrite replaces files, never folders.
                assert_eq!(*replaceable, !why.contains("folder"), "{path}");
                assert_eq!(e.to_string().contains("--overwrite"), *replaceable, "{e}");
            }
            other => panic!("{path}: {other}"),
        }
        assert_eq!(snapshot(dir.path()), before, "{path}");
    }
}

/// A crash between making a `.part` and giving it its length leaves it empty, before any
/// resume record could name it. Empty, it holds nothing to lose: `prepare` takes it and
/// gives it its length, and the download completes into it. (A `.part` with content of
/// another length is still refused: `nothing_in_the_way_is_touched`.)
#[test]
fn an_empty_part_file_left_by_a_crash_is_taken_and_completed() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("t");
    fs::create_dir_all(root.join("sub/dir")).unwrap();
    fs::write(root.join("a.bin.part"), b"").unwrap();
    fs::write(root.join("sub/dir/c.bin.part"), b"").unwrap();
    let s = Storage::inspect(dir.path(), t.meta.clone()).unwrap();
    let verified = s.verify_all(|_, _| {});
    assert!(verified.is_empty());
    s.prepare(&verified, |_| false).unwrap();
    assert_eq!(fs::metadata(root.join("a.bin.part")).unwrap().len(), 50_001);
    assert_eq!(
        fs::metadata(root.join("sub/dir/c.bin.part")).unwrap().len(),
        70_003
    );
    write_pieces(&t, &s, &all_pieces(&t));
    for file in 0..6 {
        s.file_completed(file).unwrap();
    }
    assert!(s.verify_all(|_, _| {}).is_full());
    assert_eq!(fs::read(root.join("a.bin")).unwrap(), &t.data[..50_001]);
}

/// A seed's storage is read-only: it creates nothing, opens nothing for writing, refuses
/// writes, and works on the content folder under any name.
#[test]
fn a_read_only_storage_creates_and_writes_nothing() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    write_seed_files(&t, dir.path());
    let content = dir.path().join("renamed");
    fs::rename(dir.path().join("t"), &content).unwrap();
    fs::remove_file(content.join("d.bin")).unwrap();
    let before = snapshot(dir.path());
    let s = Storage::inspect_read_only(&content, t.meta.clone()).unwrap();
    assert_eq!(ones(&s.verify_all(|_, _| {})), [0, 1, 2, 3]);
    assert!(s.create_missing().is_err());
    let e = s.write_block(p(0), 0, slice(&t, 0, 0, 100)).unwrap_err();
    assert!(e.to_string().contains("a.bin"), "{e}");
    assert!(s.read_block(p(0), 0, 100).unwrap() == slice(&t, 0, 0, 100));
    s.file_completed(0).unwrap();
    s.sync().unwrap();
    assert_eq!(snapshot(dir.path()), before);
}

/// A file's data is flushed each time another `flush_every` bytes were written to it, by
/// the write that crosses the mark: a file written past the mark twice is flushed twice,
/// one that never reaches it not at all, and the data lands exactly all the same.
#[test]
fn each_file_is_flushed_as_its_writes_cross_the_mark() {
    let every = 64 * 1024;
    let t = torrent(
        "t",
        16 * 1024,
        &[
            F("a.bin", 2 * every + 1000, false),
            F("b.bin", every - 1, false),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    s.set_flush_every(every);
    write_pieces(&t, &s, &all_pieces(&t));
    assert_eq!(s.flushes(), 2);
    for f in 0..2 {
        s.file_completed(f).unwrap();
    }
    for f in &t.meta.info.files {
        assert_holds(&t, f, &dir.path().join(f.path.join("/")));
    }
    // 0 turns it off.
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    s.set_flush_every(0);
    write_pieces(&t, &s, &all_pieces(&t));
    assert_eq!(s.flushes(), 0);
}
