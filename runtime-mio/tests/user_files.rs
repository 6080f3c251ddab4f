//! The rule for a user's files, through the `shoal` command as a user runs it: shoal never
//! overwrites, truncates or renames a file or folder it did not create unless its pieces
//! verify or the user says so (`--overwrite`); `shoal seed` creates nothing; one process
//! per torrent and folder.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::*;

/// Every path below `dir` with its content (folders as `/`), sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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

/// `shoal download TORRENT -o DIR --no-seed` with `extra` arguments, run to its end:
/// (exit code, stderr).
fn download_once(torrent: &Path, dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = support::shoal_command()
        .arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(dir)
        .args(["--port", "0", "--bind", "127.0.0.1", "--plain", "--no-seed"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The payload's folder, with what the user had there: a `tiny.txt` of their own (5 MB)
/// where the payload's `tiny.txt` goes, and a folder where its empty `empty.dat` goes.
fn user_folder(scene: &Scene) -> PathBuf {
    let out = scene.path("out");
    let mine = out.join(&scene.payload.name);
    fs::create_dir_all(mine.join("empty.dat/notes")).unwrap();
    fs::write(mine.join("empty.dat/notes/todo"), b"my notes").unwrap();
    let thesis: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(mine.join("tiny.txt"), thesis).unwrap();
    out
}

#[test]
fn files_in_the_way_survive_byte_for_byte_and_are_named() {
    let scene = Scene::new();
    for name in ["tiny.txt", "empty.dat"] {
        assert!(scene.payload.files.contains_key(Path::new(name)), "{name}");
    }
    let torrent = scene.torrent(None);
    let out = user_folder(&scene);
    let before = snapshot(&out);

    // The file in the way is named, and nothing of the user's changes; nothing is created
    // beside it either (only shoal's own lock folder).
    let (code, err) = download_once(&torrent, &out, &[]);
    assert_eq!(code, Some(1), "{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("shoal: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    let named = ["tiny.txt", "empty.dat"]
        .iter()
        .any(|n| errors[0].contains(&*out.join(&scene.payload.name).join(n).to_string_lossy()));
    assert!(named, "{err}");
    let after: Vec<_> = snapshot(&out)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(out.join(".shoal")))
        .collect();
    assert_eq!(after, before);

    // The folder moved away, the file is still in the way: the same refusal, naming it.
    fs::remove_dir_all(out.join(&scene.payload.name).join("empty.dat")).unwrap();
    let (code, err) = download_once(&torrent, &out, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("tiny.txt: holds 5000000 bytes where the torrent's file has 1000"),
        "{err}"
    );
    assert!(err.contains("--overwrite"), "{err}");
    let thesis = fs::read(out.join(&scene.payload.name).join("tiny.txt")).unwrap();
    assert_eq!(thesis.len(), 5_000_000);
    assert!(thesis
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn overwrite_replaces_what_is_in_the_way_and_a_seed_on_the_content_folder_creates_nothing() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    // `shoal seed` given the content folder itself (not its parent): it seeds, and the
    // source tree is exactly as it was, before and after.
    let content = scene.content();
    let before = snapshot(&scene.src());
    let port = free_port();
    let mut seed = shoal_seed("shoal-seed", &torrent, &content, port, &[], scene.dir());
    seed.wait_for(SHOAL_READY, scene.deadline);

    let out = scene.path("out");
    let mine = out.join(&scene.payload.name);
    fs::create_dir_all(&mine).unwrap();
    fs::write(mine.join("tiny.txt"), b"an older tiny.txt").unwrap();
    let peer = local(port);
    let (code, err) = download_once(&torrent, &out, &["--overwrite", "--peer", &peer]);
    assert_eq!(code, Some(0), "{err}");
    scene.payload.assert_exact(&out);
    seed.assert_not_failed();
    drop(seed);
    assert_eq!(snapshot(&scene.src()), before);
}

#[test]
fn seed_refuses_a_partial_copy_without_creating_anything() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    // A folder that holds neither the content nor the folder of it.
    let elsewhere = scene.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("unrelated.txt"), b"x").unwrap();
    // And the content with one file cut short.
    let partial = scene.path("partial");
    scene.payload.write(&partial);
    let first = scene.payload.files.keys().next().unwrap();
    fs::write(partial.join(&scene.payload.name).join(first), b"short").unwrap();
    for (dir, needle) in [(&elsewhere, "not found"), (&partial, "pieces are present")] {
        let before = snapshot(dir);
        let out = support::shoal_command()
            .arg("seed")
            .arg(&torrent)
            .arg(dir)
            .args(["--port", "0", "--bind", "127.0.0.1", "--plain"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(needle), "{err}");
        assert_eq!(snapshot(dir), before, "{err}");
    }
}

#[test]
fn a_second_download_of_one_torrent_into_one_folder_is_refused() {
    let scene = Scene::new();
    let torrent = scene.torrent(None);
    let out = scene.path("out");
    // The first has a peer that never answers, so it runs until stopped.
    let silent = free_port();
    let mut first = shoal_download(
        "first",
        &torrent,
        &out,
        free_port(),
        &[silent],
        &[],
        scene.dir(),
    );
    first.wait_for(SHOAL_READY, scene.deadline);
    let (code, err) = download_once(&torrent, &out, &["--peer", &local(silent)]);
    assert_eq!(code, Some(1), "{err}");
    let pid = format!("another shoal process (pid {})", first.id());
    assert!(err.contains(&pid), "{err}");
    // The first goes on undisturbed: its `.part` files are still there.
    first.assert_not_failed();
    assert!(walk(&out)
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".part")));
    // Once it has stopped, the folder is free again: a third one starts.
    assert!(first
        .terminate(std::time::Duration::from_secs(10))
        .is_some());
    let mut third = shoal_download(
        "third",
        &torrent,
        &out,
        free_port(),
        &[silent],
        &[],
        scene.dir(),
    );
    third.wait_for(SHOAL_READY, scene.deadline);
    third.assert_not_failed();
}
