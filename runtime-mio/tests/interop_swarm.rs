//! Interop: a mixed swarm on loopback. One libtorrent seed, two shoal leechers and two
//! libtorrent leechers find each other through a local opentracker; all complete with the
//! right bytes.
//!
//! The seed's upload is capped (1 MB/s, for about 17 MiB of total demand), so the swarm
//! finishes far sooner when the leechers trade pieces among themselves than if each
//! had to get everything from the seed; everyone stays and uploads until the end.
//!
//! Needs Debian's python3-libtorrent, mktorrent and opentracker (`scripts/test` installs
//! them). A missing tool fails the test: it is never skipped.

mod support;

use support::*;

#[test]
fn libtorrent_seed_with_shoal_and_libtorrent_leechers_all_complete() {
    let scene = Scene::new();
    let hash = info_hash(&scene.torrent(None));
    let mut tracker = Tracker::start(&scene.path("tracker"), &[&hash], scene.deadline);
    let torrent = scene.torrent(Some(&tracker.announce_url()));

    let mut seed = lt_seed(
        "libtorrent-seed",
        &torrent,
        &scene.src(),
        free_port(),
        &["--upload-limit", "1000000"],
        scene.dir(),
    );
    seed.wait_for("seeding", scene.deadline);
    tracker.wait_seeders(&hash, 1, scene.deadline);

    // Leechers join together, shoal and libtorrent interleaved. shoal keeps seeding after
    // it completes (no ratio limit) until the test ends.
    let mut shoals = Vec::new();
    let mut lts = Vec::new();
    for i in 0..2 {
        let dir = scene.path(&format!("shoal-{i}"));
        let p = shoal_download(
            &format!("shoal-leech-{i}"),
            &torrent,
            &dir,
            free_port(),
            &[],
            &["--seed-ratio", "0"],
            scene.dir(),
        );
        shoals.push((p, dir));
        let dir = scene.path(&format!("lt-{i}"));
        let p = lt_download(
            &format!("libtorrent-leech-{i}"),
            &torrent,
            &dir,
            free_port(),
            &[],
            true,
            scene.dir(),
        );
        lts.push((p, dir));
    }

    let payload = &scene.payload;
    wait_until("every leecher complete", scene.deadline, || {
        seed.assert_not_failed();
        tracker.proc.assert_not_failed();
        for (p, _) in shoals.iter_mut().chain(lts.iter_mut()) {
            p.assert_not_failed();
        }
        for (p, dir) in &shoals {
            payload
                .check_exact(dir)
                .map_err(|e| format!("{}: {e}", p.name))?;
        }
        for (p, dir) in &lts {
            if !p.said("complete") {
                return Err(format!("{} not complete", p.name));
            }
            payload
                .check_data(dir)
                .map_err(|e| format!("{}: {e}", p.name))?;
        }
        Ok(())
    });
    // The shoal leechers gave to the others, not only took: each says what it uploaded
    // in its summary line when stopped.
    let mut uploaded = Vec::new();
    for (p, _) in &mut shoals {
        p.terminate(std::time::Duration::from_secs(20));
        let line = p
            .lines_with("summary:")
            .pop()
            .unwrap_or_else(|| panic!("{} printed no summary\n{}", p.name, p.tail(20)));
        let bytes: u64 = line
            .split("uploaded ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no upload figure in {line:?}"));
        uploaded.push(bytes);
    }
    let total = payload.total_len() as u64;
    // The seed (1 MB/s) alone could not have served the four leechers in the time they
    // took; what shoal gave is a real share, not a stray block.
    assert!(
        uploaded.iter().sum::<u64>() >= total / 4,
        "shoal leechers uploaded {uploaded:?} bytes of a {total}-byte torrent"
    );
}
