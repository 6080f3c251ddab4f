//! Faults a user's machine throws at a download: `shoal download` killed with SIGKILL
//! (no chance to save anything) at three points, restarted each time, completes with the
//! exact data and never downloads again a piece it had verified before the kill.

mod support;

use support::*;

const PIECE: u64 = 32 * 1024;

/// The pieces verified in a plain progress line (`… 12.5% of 8.0 MiB …, 32/256 pieces`;
/// not the `checking existing data` lines).
fn verified(line: &str) -> Option<u64> {
    if !line.contains("% of ") {
        return None;
    }
    let count = line.strip_suffix(" pieces")?.rsplit(' ').next()?;
    count.split('/').next()?.parse().ok()
}

/// `downloaded N bytes` of the summary line.
fn downloaded(line: &str) -> Option<u64> {
    line.strip_prefix("summary: downloaded ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_download_killed_three_times_resumes_each_time_and_completes_exactly() {
    let scene = Scene::with_payload(Payload::new("content", &[("data.bin", 8 << 20)]));
    let torrent = scene.torrent(None);
    let pieces = (8 << 20) / PIECE;
    let seed_port = free_port();
    let _seed = scene.ready_seed(Seeder::Libtorrent, &torrent, seed_port);
    let out = scene.path("dl");
    let part = out.join("content/data.bin.part");
    let mut seen = 0;
    for round in 1..=3u64 {
        // Held to 1 MiB/s (~8 s for all of it), so each kill finds it part of the way.
        let mut dl = shoal_download(
            &format!("shoal-{round}"),
            &torrent,
            &out,
            free_port(),
            &[seed_port],
            &["--no-seed", "--download-limit", "1M"],
            scene.dir(),
        );
        let goal = round * pieces / 4;
        let line = dl.wait_for_line(
            &format!("progress past {goal} pieces"),
            scene.deadline,
            |l| verified(l).is_some_and(|v| v >= goal),
        );
        seen = verified(&line).unwrap();
        dl.kill_now();
        assert!(part.exists(), "round {round}: the .part file is gone");
        assert!(
            !out.join("content/data.bin").exists(),
            "round {round}: an unfinished file has its final name"
        );
    }
    let mut last = shoal_download(
        "shoal-last",
        &torrent,
        &out,
        free_port(),
        &[seed_port],
        &["--no-seed"],
        scene.dir(),
    );
    last.wait_success(scene.deadline);
    scene.payload.assert_exact(&out);
    let summary = last.wait_for_line("a summary", scene.deadline, |l| downloaded(l).is_some());
    let fetched = downloaded(&summary).unwrap();
    let left = (pieces - seen) * PIECE;
    assert!(
        fetched <= left,
        "the last run fetched {fetched} bytes; only {left} were not verified before the \
         last kill\n{}",
        last.tail(30)
    );
}
