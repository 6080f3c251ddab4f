//! The progress bar as a user sees it: `shoal download` under a pseudo-terminal 80
//! columns wide. The terminal is util-linux's `script` (installed everywhere Debian is),
//! so no pty crate is needed: `stty cols 80` sets the width the bar reads.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::*;

/// A name longer than the bar's name column.
const NAME: &str = "a long torrent name, cut short";

/// Runs `shoal ARGS` in a pseudo-terminal of 80 columns; (exit code, what the terminal
/// received).
fn shoal_in_tty(args: &[String], log_dir: &Path, name: &str) -> (Option<i32>, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = format!("stty cols 80 rows 24; exec {}", quote(SHOAL));
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let typescript = log_dir.join(format!("{name}.tty"));
    let status = Command::new("script")
        .env("SHOAL_DHT_BOOTSTRAP", "")
        .args(["--quiet", "--flush", "--return", "--command", &line])
        .arg(&typescript)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("util-linux `script`");
    let bytes = std::fs::read(&typescript).unwrap();
    (status.code(), String::from_utf8_lossy(&bytes).into_owned())
}

/// The text the terminal received, without escape sequences, cut at carriage returns and
/// line feeds: each piece is one redraw.
fn redraws(tty: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = tty.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte (@ to ~).
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .split(['\n', '\r'])
        .filter(|l| !l.trim().is_empty())
        // `script`'s own header and footer in the typescript file.
        .filter(|l| !l.starts_with("Script started on ") && !l.starts_with("Script done on "))
        .map(str::to_string)
        .collect()
}

/// The lines of the redraws, checked to fit 80 columns: (messages, bar lines).
///
/// indicatif prints a message above the bar as the text padded with spaces to the
/// terminal's width, then the bar: so a bar that does not start at a multiple of 80
/// columns continues a row (it wrapped), and a bar longer than 80 columns wraps itself.
/// Messages are taken apart at their padding; one that names the test's folder is
/// measured with the folder written `DIR` (a user's path is as long as it is).
fn lines_within_80(tty: &str, column: &str, dir: &Path) -> (Vec<String>, Vec<String>) {
    let dir = dir.to_str().unwrap();
    let (mut messages, mut bars) = (Vec::new(), Vec::new());
    for redraw in redraws(tty) {
        let chars: Vec<char> = redraw.chars().collect();
        let (text, bar) = match redraw.find(&format!("{column} [")) {
            Some(at) => {
                let at = redraw[..at].chars().count();
                assert_eq!(at % 80, 0, "the bar wraps a row: {redraw:?}");
                let bar: String = chars[at..].iter().collect();
                (chars[..at].iter().collect::<String>(), Some(bar))
            }
            None => (redraw.clone(), None),
        };
        for message in text.split("  ").map(str::trim).filter(|m| !m.is_empty()) {
            let shown = message.replace(dir, "DIR");
            assert!(
                shown.chars().count() <= 80,
                "wider than 80 columns: {shown:?}"
            );
            messages.push(message.to_string());
        }
        if let Some(bar) = bar {
            let bar = bar.trim_end().to_string();
            assert!(bar.chars().count() <= 80, "wider than 80 columns: {bar:?}");
            bars.push(bar);
        }
    }
    (messages, bars)
}

#[test]
fn the_bar_fits_80_columns_keeps_the_name_and_ends_on_the_final_state() {
    let scene = Scene::new();
    let payload = Payload::new(NAME, &[("a.bin", 700_001), ("b/c.bin", 300_000)]);
    let src = scene.path("src2");
    payload.write(&src);
    let torrent = scene.path("long.torrent");
    mktorrent(&src.join(NAME), &torrent, 15, None);
    let port = free_port();
    let mut seed = shoal_seed("shoal-seed", &torrent, &src, port, &[], scene.dir());
    seed.wait_for(SHOAL_READY, scene.deadline);

    let out = scene.path("out");
    let args: Vec<String> = [
        "download",
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-seed",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--peer",
        &local(port),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let column: String = NAME.chars().take(16).collect();
    let (code, tty) = shoal_in_tty(&args, scene.dir(), "download");
    assert_eq!(code, Some(0), "{tty}");
    payload.assert_exact(&out);
    let (_, bars) = lines_within_80(&tty, &column, scene.dir());
    // The name keeps its column (every bar line starts with it), and the last state is
    // the final one: complete, not 0 %.
    let last = bars.last().expect("a bar");
    assert!(
        last.starts_with(&format!("{column} [==========] complete 977K in ")),
        "{last:?}\n{tty:?}"
    );
    assert!(bars.iter().any(|b| b.contains("% of 977K")), "{tty:?}");

    // Again, with the resume record gone: the data is checked (shown in pieces, not
    // bytes), the percentage is there at once, and it says it is already complete.
    std::fs::remove_dir_all(out.join(".shoal")).unwrap();
    let (code, tty) = shoal_in_tty(&args, scene.dir(), "rerun");
    assert_eq!(code, Some(0), "{tty}");
    let (messages, bars) = lines_within_80(&tty, &column, scene.dir());
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("already complete") && m.ends_with("nothing to download")),
        "{tty:?}"
    );
    for bar in &bars {
        assert!(!bar.contains(" 0% of"), "{bar:?}\n{tty:?}");
        if let Some(at) = bar.find("] ") {
            let status = &bar[at + 2..];
            if status.starts_with("checking") {
                assert!(status.ends_with(" pieces"), "{bar:?}");
            }
        }
    }
    // (Redraws are rate-limited: which counts show depends on the machine's speed.)
    assert!(
        bars.iter()
            .any(|b| b.contains("] checking ") && b.ends_with("/31 pieces")),
        "{tty:?}"
    );
    let last = bars.last().expect("a bar");
    assert!(
        last.contains("[==========] complete 977K in "),
        "{last:?}\n{tty:?}"
    );
    seed.assert_not_failed();
}
