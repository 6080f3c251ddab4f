//! Back-pressure from disk to socket in the async runtime: a session downloading from a
//! fast libtorrent seed into a deliberately slow disk keeps every queue between the socket
//! and the disk within its bound (bytes read and not yet through the engine, blocks staged
//! for hashing, writes queued for the pool), because its socket readers wait while the
//! disk lags. The same from a web seed (Debian's nginx, the only source): its answers wait
//! at the same gate before they reach the engine.
//!
//! The slow disk is shoal-io's test knob, `DiskLimits::slow_disk` (every block or piece
//! write sleeps as if the disk took that many bytes per second per worker). Under
//! async-std and under smol.
//!
//! Needs mktorrent, python3-libtorrent and nginx (`scripts/test` installs them). A missing
//! tool fails the test.

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use shoal_async_std::{AddOptions, Session, SessionConfig, MAX_READ_PER_WAKEUP};
use shoal_io::DiskLimits;
use support::*;

const MIB: usize = 1 << 20;

/// 4 MiB on the way to disk pauses reading, 2 MiB resumes it, 1 MiB staged for hashing
/// from memory; the disk writes 10 MB/s per worker (2 workers).
const LIMITS: DiskLimits = DiskLimits {
    high: 4 * MIB,
    low: 2 * MIB,
    write_back: MIB,
    slow_disk: Some(10_000_000),
};

/// From a libtorrent seed, or (`web`) from nginx as the only source.
fn download_into_a_slow_disk<E: Exec>(web: bool) {
    let payload = Payload::new("slow", &[("a.bin", 20 * MIB + 12_345), ("b.bin", 4 * MIB)]);
    let scene = Scene::with_payload(payload);
    let torrent = scene.path("slow.torrent");
    let port = free_port();
    let (mut seed, _nginx) = if web {
        let nginx = Nginx::start(&scene.src(), &scene.path("nginx"), scene.deadline);
        // mktorrent -w: the web seed names the folder above the payload.
        run(std::process::Command::new("mktorrent")
            .args(["-l", "18", "-w", &nginx.url(), "-o"])
            .arg(&torrent)
            .arg(scene.content()));
        (None, Some(nginx))
    } else {
        mktorrent(&scene.content(), &torrent, 18, None);
        (
            Some(scene.ready_seed(Seeder::Libtorrent, &torrent, port)),
            None,
        )
    };
    let dl = scene.path("dl");
    let config = SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: 2,
        disk: LIMITS,
        resume_interval: Duration::from_secs(1),
        ..SessionConfig::default()
    };
    let max_message = config.engine.max_message_len as usize;
    // A web seed's answer reaches the engine whole: one answer (a job's bytes) may pass
    // the gate as the budget fills, where a peer's reader passes it by one read.
    let max_job = config.engine.webseed.max_job_bytes as usize;
    let stats = E::block_on(async {
        let session = Session::new(config, E::executor()).unwrap();
        let events = session.events();
        let mut seen = Seen::default();
        let options = AddOptions {
            peers: if web {
                vec![]
            } else {
                vec![common::local(port)]
            },
            ..AddOptions::default()
        };
        let t = session
            .add_torrent(torrent.as_path(), &dl, options)
            .await
            .unwrap();
        wait_complete(&events, &mut seen, t, scene.deadline, || {
            if let Some(seed) = &mut seed {
                seed.assert_not_failed();
            }
        })
        .await;
        let stats = session.disk_stats().await.unwrap();
        session.shutdown().await;
        stats
    });
    scene.payload.assert_exact(&dl);

    eprintln!("{}: disk budget: {stats:?}", E::NAME);
    assert!(
        stats.pauses >= 1,
        "the disk never lagged enough to pause reading: the test shows nothing ({stats:?})"
    );
    assert!(
        stats.peak_staged <= LIMITS.write_back,
        "write-back cache past its bound: {stats:?}"
    );
    // One source: one reader (or one answer) can be past the gate when the budget fills.
    let bound = LIMITS.high + MAX_READ_PER_WAKEUP.max(max_job) + max_message;
    assert!(
        stats.peak_received <= bound && stats.peak_writing <= bound && stats.peak_total <= bound,
        "bytes on their way to disk past {bound}: {stats:?}"
    );
    assert_eq!(
        (stats.staged, stats.writing),
        (0, 0),
        "every block is on disk once the download is complete"
    );
}

#[test]
fn a_fast_seed_is_slowed_to_the_disk_under_async_std() {
    download_into_a_slow_disk::<AsyncStd>(false);
}

#[test]
fn a_fast_seed_is_slowed_to_the_disk_under_smol() {
    download_into_a_slow_disk::<Smol>(false);
}

#[test]
fn a_fast_web_seed_is_slowed_to_the_disk_under_async_std() {
    download_into_a_slow_disk::<AsyncStd>(true);
}

#[test]
fn a_fast_web_seed_is_slowed_to_the_disk_under_smol() {
    download_into_a_slow_disk::<Smol>(true);
}
