//! Resume records: trusted while the files are as they were left, re-verified otherwise,
//! and never trusted when corrupt or foreign.

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use common::*;
use shoal_core::bitfield::Bitfield;
use shoal_io::resume::{self, Rejected};
use shoal_io::{check_existing, Storage};

fn ones(b: &Bitfield) -> Vec<u32> {
    b.iter_ones().collect()
}

/// A download of `sample()` with pieces 0, 1, 2 and 4 written, and a.bin and small.txt
/// (all of whose pieces are among them) completed.
fn partial() -> (Torrent, tempfile::TempDir, Storage) {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    write_pieces(&t, &s, &[0, 1, 2, 4]);
    s.file_completed(0).unwrap();
    s.file_completed(2).unwrap();
    (t, dir, s)
}

fn bitfield(n: u32, set: &[u32]) -> Bitfield {
    let mut b = Bitfield::new(n);
    for &i in set {
        b.set(i);
    }
    b
}

#[test]
fn save_then_load_gives_the_bitfield_back() {
    let (t, dir, s) = partial();
    let n = t.meta.info.piece_count();
    assert!(resume::load(dir.path(), &t.meta, &s).is_none());
    assert!(matches!(
        resume::check(dir.path(), &t.meta, &s),
        Err(Rejected::Missing)
    ));
    let verified = bitfield(n, &[0, 1, 2, 4]);
    resume::save(dir.path(), &t.meta, &verified, &s).unwrap();
    let record = resume::record_path(dir.path(), &t.meta.info_hash);
    assert_eq!(
        record,
        dir.path()
            .join(".shoal")
            .join(format!("{}.resume", t.meta.info_hash.to_hex()))
    );
    // No temporary file left behind.
    assert_eq!(fs::read_dir(dir.path().join(".shoal")).unwrap().count(), 1);
    assert_eq!(
        resume::load(dir.path(), &t.meta, &s),
        Some(verified.clone())
    );

    // After a restart too, and check_existing takes it without hashing: a record that
    // claims less than the disk holds is believed as it is.
    drop(s);
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    assert_eq!(
        resume::load(dir.path(), &t.meta, &s),
        Some(verified.clone())
    );
    let less = bitfield(n, &[2]);
    resume::save(dir.path(), &t.meta, &less, &s).unwrap();
    let mut calls = Vec::new();
    let got = check_existing(dir.path(), &t.meta, &s, |d, t| calls.push((d, t)));
    assert_eq!(got, less);
    assert_eq!(calls, [(n, n)]);
}

#[test]
fn a_touched_file_invalidates_the_record() {
    let (t, dir, s) = partial();
    let n = t.meta.info.piece_count();
    // The record claims only piece 2; the disk holds 0, 1, 2 and 4.
    resume::save(dir.path(), &t.meta, &bitfield(n, &[2]), &s).unwrap();
    assert!(resume::load(dir.path(), &t.meta, &s).is_some());

    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("t/small.txt"))
        .unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(f);
    match resume::check(dir.path(), &t.meta, &s) {
        Err(Rejected::FileChanged { path }) => {
            assert_eq!(path, dir.path().join("t/small.txt"));
        }
        other => panic!("{other:?}"),
    }
    let mut calls = 0;
    let got = check_existing(dir.path(), &t.meta, &s, |_, _| calls += 1);
    assert_eq!(ones(&got), [0, 1, 2, 4], "re-verified from the data");
    assert_eq!(calls, n);
}

#[test]
fn a_truncated_file_invalidates_the_record_and_loses_its_pieces() {
    let (t, dir, s) = partial();
    let n = t.meta.info.piece_count();
    resume::save(dir.path(), &t.meta, &bitfield(n, &[0, 1, 2, 4]), &s).unwrap();
    drop(s);
    let c = dir.path().join("t/sub/dir/c.bin.part");
    let f = fs::OpenOptions::new().write(true).open(&c).unwrap();
    f.set_len(40_000).unwrap();
    drop(f);
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    assert!(resume::load(dir.path(), &t.meta, &s).is_none());
    assert_eq!(
        ones(&check_existing(dir.path(), &t.meta, &s, |_, _| {})),
        [0, 1]
    );
}

#[test]
fn a_renamed_or_deleted_file_invalidates_the_record() {
    let (t, dir, s) = partial();
    let n = t.meta.info.piece_count();
    resume::save(dir.path(), &t.meta, &bitfield(n, &[0, 1, 2, 4]), &s).unwrap();
    // c.bin completed since the record: its name changed, so the record is stale.
    write_pieces(&t, &s, &[3]);
    s.file_completed(4).unwrap();
    assert!(resume::load(dir.path(), &t.meta, &s).is_none());
    resume::save(dir.path(), &t.meta, &Bitfield::full(n), &s).unwrap();
    assert!(resume::load(dir.path(), &t.meta, &s).is_some());
    drop(s);
    // d.bin deleted: it comes back as an empty `.part` and the record is refused.
    fs::remove_file(dir.path().join("t/d.bin.part")).unwrap();
    let s = Storage::open(dir.path(), t.meta.clone()).unwrap();
    assert!(resume::load(dir.path(), &t.meta, &s).is_none());
    assert_eq!(
        ones(&check_existing(dir.path(), &t.meta, &s, |_, _| {})),
        [0, 1, 2, 3]
    );
}

#[test]
fn corrupt_records_are_ignored_never_trusted() {
    let (t, dir, s) = partial();
    let n = t.meta.info.piece_count();
    resume::save(dir.path(), &t.meta, &bitfield(n, &[0, 1]), &s).unwrap();
    let path = resume::record_path(dir.path(), &t.meta.info_hash);
    let good = fs::read(&path).unwrap();

    // Every single-byte change, every truncation: refused, never a panic. The checksum is
    // what refuses a flipped bit inside the bitfield or a number.
    for at in 0..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            fs::write(&path, &bad).unwrap();
            assert!(resume::load(dir.path(), &t.meta, &s).is_none(), "byte {at}");
        }
    }
    for len in 0..good.len() {
        fs::write(&path, &good[..len]).unwrap();
        assert!(
            resume::load(dir.path(), &t.meta, &s).is_none(),
            "prefix {len}"
        );
    }
    for junk in [&b""[..], b"garbage", b"de", b"le", &[0xff; 5000][..]] {
        fs::write(&path, junk).unwrap();
        assert!(resume::load(dir.path(), &t.meta, &s).is_none());
    }
    // Far too large for this torrent's record: not even read whole.
    fs::write(&path, vec![b'd'; 10 << 20]).unwrap();
    assert!(matches!(
        resume::check(dir.path(), &t.meta, &s),
        Err(Rejected::Corrupt(_))
    ));
    // Back to the good record: trusted again. With the re-verify fallback, the junk cost
    // a hash of the data and nothing else.
    fs::write(&path, &good).unwrap();
    assert_eq!(
        ones(&resume::load(dir.path(), &t.meta, &s).unwrap()),
        [0, 1]
    );
}

#[test]
fn another_torrents_record_is_not_trusted() {
    let (t, dir, s) = partial();
    // Another torrent with the same files but another piece length: its own record,
    // copied under this torrent's name.
    let other = torrent(
        "t",
        16 * 1024,
        &[
            F("a.bin", 50_001, false),
            F("empty", 0, false),
            F("small.txt", 1_000, false),
            F(".pad/14535", 65_536 - 51_001, true),
            F("sub/dir/c.bin", 70_003, false),
            F("d.bin", 5, false),
        ],
    );
    let s2 = Storage::open(dir.path(), other.meta.clone()).unwrap();
    let m = other.meta.info.piece_count();
    resume::save(dir.path(), &other.meta, &Bitfield::full(m), &s2).unwrap();
    fs::copy(
        resume::record_path(dir.path(), &other.meta.info_hash),
        resume::record_path(dir.path(), &t.meta.info_hash),
    )
    .unwrap();
    assert!(matches!(
        resume::check(dir.path(), &t.meta, &s),
        Err(Rejected::OtherTorrent)
    ));
    assert_eq!(
        ones(&check_existing(dir.path(), &t.meta, &s, |_, _| {})),
        [0, 1, 2, 4]
    );
    assert!(resume::load(dir.path(), &other.meta, &s).is_none());
}

#[test]
fn two_saves_of_one_torrent_at_once_do_not_share_a_temporary_file() {
    let (t, dir, s) = partial();
    let n = t.meta.info.piece_count();
    let a = bitfield(n, &[0, 1]);
    let b = bitfield(n, &[0, 1, 2, 4]);
    std::thread::scope(|scope| {
        for verified in [&a, &b] {
            let (t, s, dir) = (&t, &s, dir.path());
            scope.spawn(move || {
                for _ in 0..100 {
                    resume::save(dir, &t.meta, verified, s).unwrap();
                }
            });
        }
    });
    let loaded = resume::check(dir.path(), &t.meta, &s).unwrap();
    assert!(loaded == a || loaded == b);
    assert_eq!(fs::read_dir(dir.path().join(".shoal")).unwrap().count(), 1);
}
