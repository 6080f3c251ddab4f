//! Interop: shoal reads torrents made by other tools exactly as libtorrent does, and
//! libtorrent reads torrents made by `shoal create`.
//!
//! Needs Debian's python3-libtorrent, mktorrent and transmission-cli (`scripts/test` installs
//! them). A missing tool fails the test: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt.py");

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/test to install it)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn shoal() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    // No DHT router beyond this machine (see support::shoal_command).
    cmd.env("SHOAL_DHT_BOOTSTRAP", "");
    cmd
}

fn python() -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(LT);
    c
}

/// What libtorrent reads from a torrent: `(key, value)` pairs in its order.
fn libtorrent_facts(torrent: &Path) -> Vec<(String, String)> {
    let out = run(python().arg("info").arg(torrent));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn facts_of<'a>(facts: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    facts
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// What libtorrent reads from a torrent: (info-hash, piece count, files as "size path").
fn libtorrent_view(torrent: &Path) -> (String, u64, Vec<String>) {
    let facts = libtorrent_facts(torrent);
    let files = facts_of(&facts, "file")
        .into_iter()
        .map(|f| f.replacen('\t', " ", 1))
        .collect();
    (
        facts_of(&facts, "info_hash")[0].to_string(),
        facts_of(&facts, "num_pieces")[0].parse().unwrap(),
        files,
    )
}

/// What `shoal info` prints: (info-hash, piece count, files as "size path").
fn shoal_view(torrent: &Path) -> (String, u64, Vec<String>) {
    let out = run(shoal().arg("info").arg(torrent));
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
            .trim()
            .to_string()
    };
    let mut files = Vec::new();
    let mut in_files = false;
    for line in text.lines() {
        if line.starts_with("files:") {
            in_files = true;
        } else if in_files && line.starts_with("  ") {
            let (size, path) = line.trim().split_once("  ").unwrap();
            files.push(format!("{} {}", size.trim(), path.trim()));
        } else {
            in_files = false;
        }
    }
    (
        value("info-hash:"),
        value("pieces:").parse().unwrap(),
        files,
    )
}

/// A file and a folder to share: odd sizes, an empty file, nesting, a file name with a
/// space and non-ASCII letters.
fn content(dir: &Path) -> (PathBuf, PathBuf) {
    let single = dir.join("single.bin");
    std::fs::write(&single, pattern(1_234_567)).unwrap();
    let folder = dir.join("folder");
    std::fs::create_dir_all(folder.join("sub dir/deeper")).unwrap();
    std::fs::write(folder.join("a.bin"), pattern(300_001)).unwrap();
    std::fs::write(folder.join("sub dir/empty"), b"").unwrap();
    std::fs::write(folder.join("sub dir/deeper/caf\u{e9}.txt"), b"tiny").unwrap();
    std::fs::write(folder.join("z.bin"), pattern(70_000)).unwrap();
    (single, folder)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn assert_same_view(torrent: &Path) {
    let (lt_hash, lt_pieces, lt_files) = libtorrent_view(torrent);
    let (sh_hash, sh_pieces, sh_files) = shoal_view(torrent);
    assert_eq!(sh_hash, lt_hash, "info-hash of {}", torrent.display());
    assert_eq!(sh_pieces, lt_pieces, "piece count of {}", torrent.display());
    // libtorrent reorders files in its own view of v1 torrents; compare as sets.
    assert_eq!(
        sorted(sh_files),
        sorted(lt_files),
        "files of {}",
        torrent.display()
    );
}

#[test]
fn shoal_reads_torrents_made_by_other_tools() {
    let dir = tempfile::tempdir().unwrap();
    let (single, folder) = content(dir.path());
    let mut made = Vec::new();
    for (src, kind) in [(&single, "single"), (&folder, "multi")] {
        // libtorrent: v1-only and hybrid v1+v2 (which adds BEP 47 padding files).
        let out = dir.path().join(format!("lt-v1-{kind}.torrent"));
        run(python().arg("make").arg(src).arg(&out).arg("--v1-only"));
        made.push(out);
        let out = dir.path().join(format!("lt-hybrid-{kind}.torrent"));
        run(python()
            .args(["make"])
            .arg(src)
            .arg(&out)
            .args(["--tracker", "http://127.0.0.1:6969/announce"]));
        made.push(out);
        // mktorrent, 32 KiB pieces.
        let out = dir.path().join(format!("mktorrent-{kind}.torrent"));
        run(Command::new("mktorrent")
            .args(["-l", "15", "-a", "http://127.0.0.1:6969/announce", "-o"])
            .arg(&out)
            .arg(src));
        made.push(out);
        // transmission-create.
        let out = dir.path().join(format!("transmission-{kind}.torrent"));
        run(Command::new("transmission-create")
            .args(["-t", "http://127.0.0.1:6969/announce", "-o"])
            .arg(&out)
            .arg(src));
        made.push(out);
    }
    for torrent in &made {
        assert_same_view(torrent);
    }
}

#[test]
fn libtorrent_reads_torrents_made_by_shoal() {
    let dir = tempfile::tempdir().unwrap();
    let (single, folder) = content(dir.path());
    for (src, kind) in [(&single, "single"), (&folder, "multi")] {
        for (variant, extra) in [
            ("plain", &[][..]),
            (
                "options",
                &[
                    "--piece-size",
                    "64K",
                    "--private",
                    "-t",
                    "udp://127.0.0.1:1/a",
                    "-t",
                    "http://127.0.0.1:2/a",
                    "--web-seed",
                    "http://127.0.0.1:3/",
                ],
            ),
        ] {
            let out = dir.path().join(format!("shoal-{kind}-{variant}.torrent"));
            run(shoal()
                .arg("create")
                .arg(src)
                .arg("-o")
                .arg(&out)
                .args(extra));
            assert_same_view(&out);
        }
    }
    // The announce list, web seeds and private flag reach libtorrent too.
    let facts = libtorrent_facts(&dir.path().join("shoal-multi-options.torrent"));
    assert_eq!(
        facts_of(&facts, "tracker"),
        ["udp://127.0.0.1:1/a", "http://127.0.0.1:2/a"]
    );
    assert_eq!(facts_of(&facts, "web_seed"), ["http://127.0.0.1:3/"]);
    assert_eq!(facts_of(&facts, "private"), ["yes"]);
}

#[test]
fn shoal_refuses_a_hostile_torrent_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil.torrent");
    std::fs::write(
        &evil,
        b"d4:infod5:filesld6:lengthi1e4:pathl2:..6:passwdeee4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    )
    .unwrap();
    let out = shoal().arg("info").arg(&evil).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("info.files[0].path") && err.contains("`..`"),
        "{err}"
    );
}
