//! Back-pressure from disk to socket: a download from a fast seed into a deliberately slow
//! disk keeps every queue between the socket and the disk within its bound, because the
//! runtime stops reading the seed's socket while the disk lags.
//!
//! The slow disk is shoal-io's test knob, `DiskLimits::slow_disk`: every block or piece
//! write sleeps as if the disk took that many bytes per second per worker. The leech is the
//! mio `Runtime` in this process (so its `DiskBudget` figures can be read); the seed is a
//! real program on 127.0.0.1 (libtorrent, or the `shoal seed` command), whose data is in
//! the page cache: it feeds far faster than the slow disk takes.
//!
//! The same from a web seed (Debian's nginx, the only source): a web seed's socket is left
//! unread like a peer's while the disk lags, so a fast server cannot pile answers up either.
//!
//! Needs mktorrent, python3-libtorrent and nginx (`scripts/test` installs them). A missing
//! tool fails the test.

mod support;

use std::sync::Arc;
use std::time::Duration;

use shoal_core::engine::{EngineConfig, Event};
use shoal_io::DiskLimits;
use shoal_mio::runtime::MAX_READ_PER_WAKEUP;
use shoal_mio::{Runtime, RuntimeConfig};
use support::*;

const MIB: usize = 1 << 20;

/// 4 MiB on the way to disk pauses reading, 2 MiB resumes it, 1 MiB staged for hashing
/// from memory; the disk writes 10 MB/s per worker (2 workers): a 24 MiB download
/// takes over a second of writes, while the seed could send it in a fraction of that.
const LIMITS: DiskLimits = DiskLimits {
    high: 4 * MIB,
    low: 2 * MIB,
    write_back: MIB,
    slow_disk: Some(10_000_000),
};

/// Where the download's data comes from.
enum Source {
    Seed(Seeder),
    /// nginx as the torrent's web seed, and no peer.
    WebSeed,
}

fn download_into_a_slow_disk(source: Source) {
    let payload = Payload::new("slow", &[("a.bin", 20 * MIB + 12_345), ("b.bin", 4 * MIB)]);
    let scene = Scene::with_payload(payload);
    let torrent = scene.path("slow.torrent");
    let mut seed = None;
    let mut _nginx = None;
    let port = free_port();
    match source {
        Source::Seed(seeder) => {
            mktorrent(&scene.content(), &torrent, 18, None);
            seed = Some(scene.ready_seed(seeder, &torrent, port));
        }
        Source::WebSeed => {
            let nginx = Nginx::start(&scene.src(), &scene.path("nginx"), scene.deadline);
            // mktorrent -w: the web seed names the folder above the payload.
            run(std::process::Command::new("mktorrent")
                .args(["-l", "18", "-w", &nginx.url(), "-o"])
                .arg(&torrent)
                .arg(scene.content()));
            _nginx = Some(nginx);
        }
    }

    let engine = EngineConfig {
        peer_id: shoal_core::PeerId([7; 20]),
        rng_seed: 7,
        ..Default::default()
    };
    let max_message = engine.max_message_len as usize;
    // A web seed's answer is handed to the engine whole: the budget may pass its high mark
    // by one answer (a job's bytes) where a peer's read passes it by one read.
    let max_job = engine.webseed.max_job_bytes as usize;
    let mut leech = Runtime::new(RuntimeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        engine,
    })
    .unwrap();
    leech.set_disk_limits(LIMITS);
    let meta = Arc::new(shoal_io::read_torrent(&torrent).unwrap());
    let dl = scene.path("dl");
    let d = shoal_io::open_download(&dl, meta.clone(), false, |_, _| {}).unwrap();
    let id = leech.add_torrent(meta, d.storage, d.verified).unwrap();
    if seed.is_some() {
        leech.add_peer(id, format!("127.0.0.1:{port}").parse().unwrap());
    }

    'download: loop {
        assert!(
            std::time::Instant::now() < scene.deadline,
            "no Completed in time: {:?}",
            leech.disk_stats()
        );
        if let Some(seed) = &mut seed {
            seed.assert_not_failed();
        }
        for event in leech.turn(Some(Duration::from_millis(20))).unwrap() {
            if let Event::StorageError { error, .. } = &event {
                panic!("storage error: {error}");
            }
            if matches!(event, Event::Completed { torrent } if torrent == id) {
                break 'download;
            }
        }
    }
    scene.payload.assert_exact(&dl);

    let s = leech.disk_stats();
    eprintln!("disk budget: {s:?}");
    assert!(
        s.pauses >= 1,
        "the disk never lagged enough to pause reading: the test shows nothing ({s:?})"
    );
    assert!(
        s.peak_staged <= LIMITS.write_back,
        "write-back cache past its bound: {s:?}"
    );
    let bound = LIMITS.high + MAX_READ_PER_WAKEUP.max(max_job) + max_message;
    assert!(
        s.peak_writing <= bound && s.peak_total <= bound,
        "bytes on their way to disk past {bound}: {s:?}"
    );
    assert_eq!(
        (s.staged, s.writing, s.received),
        (0, 0, 0),
        "every byte is on disk once the download is complete"
    );
}

#[test]
fn a_libtorrent_seed_is_slowed_to_the_disk_and_memory_stays_bounded() {
    download_into_a_slow_disk(Source::Seed(Seeder::Libtorrent));
}

#[test]
fn a_shoal_seed_is_slowed_to_the_disk_and_memory_stays_bounded() {
    download_into_a_slow_disk(Source::Seed(Seeder::Shoal));
}

#[test]
fn a_web_seed_is_slowed_to_the_disk_and_memory_stays_bounded() {
    download_into_a_slow_disk(Source::WebSeed);
}
