//! `shoal demo`: a whole swarm in one process, on loopback, with no setup and no network.
//!
//! It makes a sample payload (a few files of pseudo-random bytes) in a temporary folder,
//! starts a tracker ([`TrackerService`], as `shoal tracker` runs it), makes a torrent that
//! names it and puts it on the tracker's web server, then starts a seed and a few leechers,
//! each a full [`Runtime`] on its own thread and port. The leechers fetch the `.torrent`
//! by URL from the tracker and find each other and the seed through its announces, so they
//! trade pieces among themselves as well as with the seed. It shows their progress and
//! checks every leecher's files against the payload byte for byte.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use shoal_core::engine::{EngineConfig, Event, TorrentStats};
use shoal_core::metainfo::Metainfo;
use shoal_io::Storage;

use crate::client::{random_peer_id, random_u64};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::say;
use crate::tracker::{TrackerArgs, TrackerService};
use shoal_io::human;

pub struct DemoOptions {
    pub leechers: usize,
    /// Payload size in MiB.
    pub size_mib: u64,
    /// Keep the temporary folder (and print where it is).
    pub keep: bool,
}

/// What one node reports to the main thread.
#[derive(Clone, Default)]
struct NodeState {
    stats: Option<TorrentStats>,
    done: bool,
    error: Option<String>,
}

pub fn run(opts: &DemoOptions) -> Result<(), String> {
    let tmp = std::env::temp_dir().join(format!("shoal-demo-{}", std::process::id()));
    let result = run_in(&tmp, opts);
    if opts.keep {
        say::err_line(&format!("files kept in {}", tmp.display()));
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn run_in(tmp: &Path, opts: &DemoOptions) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", tmp.display());
    let seed_dir = tmp.join("seed");
    let content = seed_dir.join("sample");
    std::fs::create_dir_all(content.join("more")).map_err(io)?;
    let total = opts.size_mib.max(1) << 20;
    let files = [
        ("video.bin", total * 3 / 4 + 12_345),
        ("more/notes.txt", 999),
        ("more/photo.bin", total / 4 - 12_345 - 999),
        ("empty.txt", 0),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ random_u64();
    for (name, len) in files {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                // xorshift: fast, and random enough that no two pieces are alike.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(content.join(name), bytes).map_err(io)?;
    }
    // The tracker, and the torrent on its web server.
    let torrents = tmp.join("torrents");
    std::fs::create_dir_all(&torrents).map_err(io)?;
    let mut tracker = TrackerService::embedded(&TrackerArgs::local(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(torrents.clone()),
    ))?;
    let tracker_addr = tracker
        .http_addr()
        .ok_or("the demo tracker has no HTTP address")?;
    let torrent_bytes = shoal_io::create_torrent(
        &content,
        &shoal_io::CreateOptions {
            trackers: vec![format!("http://{tracker_addr}/announce")],
            ..shoal_io::CreateOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(torrents.join("sample.torrent"), &torrent_bytes).map_err(io)?;
    tracker.rescan()?;
    let tracker_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tracker_thread = {
        let stop = tracker_stop.clone();
        thread::spawn(move || tracker.run_until(&stop))
    };
    let url = format!("http://{tracker_addr}/sample.torrent");
    let meta = Arc::new(Metainfo::parse(&torrent_bytes).map_err(|e| e.to_string())?);
    say::err_line(&format!(
        "demo: {} ({}, {} pieces of {}); tracker and web server at http://{tracker_addr}/; 1 seed and {} leechers fetching {url}",
        meta.info.name,
        human(meta.info.total_length),
        meta.info.piece_count(),
        human(u64::from(meta.info.piece_length)),
        opts.leechers
    ));

    let states: Arc<Mutex<Vec<NodeState>>> =
        Arc::new(Mutex::new(vec![NodeState::default(); opts.leechers + 1]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for node in 0..=opts.leechers {
        let dir = if node == 0 {
            seed_dir.clone()
        } else {
            tmp.join(format!("leecher-{node}"))
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        // Leechers get the torrent the way a user would: by its URL on the tracker.
        let meta = if node == 0 {
            meta.clone()
        } else {
            Arc::new(shoal_io::load_torrent(&url).map_err(|e| e.to_string())?.0)
        };
        let storage = Arc::new(Storage::open(&dir, meta.clone()).map_err(|e| e.to_string())?);
        let verified = if node == 0 {
            storage.verify_all(|_, _| {})
        } else {
            shoal_core::bitfield::Bitfield::new(meta.info.piece_count())
        };
        let mut rt = Runtime::new(RuntimeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 2,
            engine: EngineConfig {
                peer_id: random_peer_id(),
                rng_seed: random_u64(),
                ..EngineConfig::default()
            },
        })
        .map_err(|e| e.to_string())?;
        let torrent = rt
            .add_torrent(meta.clone(), storage.clone(), verified)
            .map_err(|e| e.to_string())?;
        // Peers come from the tracker: no addresses are given.
        let _ = torrent;
        let (states, stop) = (states.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            let set = |f: &dyn Fn(&mut NodeState)| {
                if let Ok(mut s) = states.lock() {
                    f(&mut s[node]);
                }
            };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match rt.turn(Some(Duration::from_millis(100))) {
                    Ok(events) => {
                        for e in events {
                            match e {
                                Event::Progress { stats, .. } => {
                                    set(&|s| s.stats = Some(stats.clone()))
                                }
                                Event::Completed { .. } => set(&|s| s.done = true),
                                Event::StorageError { error, .. } => {
                                    set(&|s| s.error = Some(error.to_string()))
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(e) => {
                        set(&|s| s.error = Some(e.to_string()));
                        break;
                    }
                }
            }
            let _ = rt.shutdown(Duration::from_secs(1));
            drop(rt);
            let _ = storage.sync();
        }));
    }

    let start = Instant::now();
    let mut last = Instant::now();
    let outcome = loop {
        thread::sleep(Duration::from_millis(100));
        let snapshot = states
            .lock()
            .map_err(|_| "a node panicked".to_string())?
            .clone();
        if let Some(e) = snapshot.iter().find_map(|s| s.error.clone()) {
            break Err(e);
        }
        let leechers = &snapshot[1..];
        let all_done = leechers.iter().all(|s| s.done);
        if last.elapsed() >= Duration::from_millis(500) || all_done {
            last = Instant::now();
            let line: Vec<String> = leechers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let pct = s.stats.as_ref().map_or(0.0, |st| {
                        100.0 * st.bytes_verified as f64 / st.total_length.max(1) as f64
                    });
                    format!("leecher {}: {pct:5.1}%", i + 1)
                })
                .collect();
            let seed_up = snapshot[0].stats.as_ref().map_or(0, |s| s.uploaded);
            say::err_line(&format!(
                "{:6.1}s  {}  | seed uploaded {}",
                start.elapsed().as_secs_f64(),
                line.join("  "),
                human(seed_up)
            ));
        }
        if all_done {
            break Ok(());
        }
        if start.elapsed() > Duration::from_secs(300) {
            break Err("the demo swarm did not finish in 5 minutes".into());
        }
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    tracker_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tracker_thread.join();
    outcome?;
    // Every leecher must hold exactly the seed's files under their final names.
    for node in 1..=opts.leechers {
        let dir = tmp.join(format!("leecher-{node}"));
        for (name, _) in files {
            let want = std::fs::read(content.join(name)).map_err(io)?;
            let path: PathBuf = dir.join("sample").join(name);
            let got = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if got != want {
                return Err(format!(
                    "{}: content differs from the seed's",
                    path.display()
                ));
            }
        }
    }
    say::err_line(&format!(
        "demo: all {} leechers completed in {:.1} s; every file checked byte for byte against the seed's",
        opts.leechers,
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}
