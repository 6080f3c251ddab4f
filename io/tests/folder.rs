//! Taking a download folder or a seed's content (`shoal_io::folder`): shoal's own files
//! are repaired, the user's are not touched, one process per torrent and folder, and a
//! seed creates nothing.

mod common;

use std::fs;

use common::*;
use shoal_io::resume;
use shoal_io::{open_download, open_seed, Error};

/// A finished download, then damage to one of its files: the record names the file, so
/// shoal made it and takes it back to repair, without `--overwrite`. The same damage to a
/// file the record does not name (another torrent's folder, a record deleted) is refused.
#[test]
fn shoal_repairs_its_own_files_and_refuses_others() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    {
        let d = open_download(dir.path(), t.meta.clone(), false, |_, _| {}).unwrap();
        assert!(ones(&d.verified).is_empty());
        write_pieces(
            &t,
            &d.storage,
            &(0..t.meta.info.piece_count()).collect::<Vec<_>>(),
        );
        for f in 0..t.meta.info.files.len() {
            d.storage.file_completed(f).unwrap();
        }
        let all = d.storage.verify_all(|_, _| {});
        assert!(all.is_full());
        resume::save(dir.path(), &t.meta, &all, &d.storage).unwrap();
    }
    let a = dir.path().join("t/a.bin");
    let mut bytes = fs::read(&a).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&a, &bytes).unwrap();

    let d = open_download(dir.path(), t.meta.clone(), false, |_, _| {}).unwrap();
    assert!(!d.verified.get(0));
    assert!(!a.exists() && dir.path().join("t/a.bin.part").exists());
    drop(d);

    // Without the record, the damaged file is not known to be shoal's.
    fs::rename(dir.path().join("t/a.bin.part"), &a).unwrap();
    fs::remove_file(resume::record_path(dir.path(), &t.meta.info_hash)).unwrap();
    let e = open_download(dir.path(), t.meta.clone(), false, |_, _| {}).unwrap_err();
    assert!(
        matches!(&e, Error::InTheWay { path, .. } if path == &a),
        "{e}"
    );
    assert_eq!(fs::read(&a).unwrap(), bytes);
    // Unless the user says so.
    let d = open_download(dir.path(), t.meta.clone(), true, |_, _| {}).unwrap();
    assert!(dir.path().join("t/a.bin.part").exists());
    drop(d);
}

fn ones(b: &shoal_core::bitfield::Bitfield) -> Vec<u32> {
    b.iter_ones().collect()
}

#[test]
fn one_download_of_a_torrent_per_folder() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let first = open_download(dir.path(), t.meta.clone(), false, |_, _| {}).unwrap();
    let e = open_download(dir.path(), t.meta.clone(), false, |_, _| {}).unwrap_err();
    match &e {
        Error::Busy { path, pid } => {
            assert_eq!(path, first.lock.path());
            assert_eq!(*pid, Some(std::process::id()));
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .contains(&format!("(pid {})", std::process::id())),
        "{e}"
    );
    // Another folder is another download.
    let other = tempfile::tempdir().unwrap();
    drop(open_download(other.path(), t.meta.clone(), false, |_, _| {}).unwrap());
    // Released with the first.
    drop(first);
    drop(open_download(dir.path(), t.meta.clone(), false, |_, _| {}).unwrap());
}

/// A seed given the folder holding the content or the content itself (under any name)
/// verifies it and creates nothing; a seed of an incomplete copy is refused.
#[test]
fn a_seed_takes_the_content_or_its_folder_and_creates_nothing() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    write_seed_files(&t, dir.path());
    let listing = || snapshot(dir.path());
    let before = listing();
    let (s, verified) = open_seed(dir.path(), t.meta.clone(), |_, _| {}).unwrap();
    assert!(verified.is_full());
    assert_eq!(s.content(), dir.path().join("t"));
    drop(s);
    let (s, verified) = open_seed(&dir.path().join("t"), t.meta.clone(), |_, _| {}).unwrap();
    assert!(verified.is_full());
    assert!(s.is_read_only());
    drop(s);
    let renamed = dir.path().join("my copy");
    fs::rename(dir.path().join("t"), &renamed).unwrap();
    let (s, _) = open_seed(&renamed, t.meta.clone(), |_, _| {}).unwrap();
    assert_eq!(s.content(), renamed);
    drop(s);
    fs::rename(&renamed, dir.path().join("t")).unwrap();
    assert_eq!(listing(), before);

    fs::write(dir.path().join("t/d.bin"), b"short").unwrap();
    let before = listing();
    let e = open_seed(dir.path(), t.meta.clone(), |_, _| {}).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Incomplete {
                have: 4,
                total: 5,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(listing(), before);
}
