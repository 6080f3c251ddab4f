//! `shoal demo`: a whole swarm in one process, on loopback, with no setup and no network.
//!
//! It makes a sample payload (a few files of pseudo-random bytes) in a temporary folder and
//! serves it as `shoal serve` does ([`TrackerService::serving`]): a web server that makes
//! the torrent (its tracker and its web seed this server), serves the files, the torrent
//! and the tracker. Then a few leechers start, each a full [`Runtime`] on its own thread
//! and port, with no seed but the web server: they fetch the `.torrent` by URL, download
//! ranges of the files from the server (BEP 19) and find each other through its tracker,
//! so they trade pieces among themselves. It shows their progress, checks every leecher's
//! files against the payload byte for byte, and says how much the server sent against
//! what plain downloads would have taken: the original paper's claim, measured.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use shoal_core::engine::{EngineConfig, Event, TorrentStats};
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
    // The web server: what `shoal serve` runs. It makes the torrent of `sample/` (its
    // tracker this server, its web seed this server's copy of the files), serves it, the
    // files themselves and the tracker. The torrent must name the real port: take a free
    // one first.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_err(io)?
        .port();
    let server_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let base = format!("http://{server_addr}");
    let served = crate::tracker::content::Content::open(&seed_dir, &base)?;
    let mut server_args = TrackerArgs::local(server_addr, None);
    server_args.udp = crate::tracker::Listen(None);
    let mut server = TrackerService::serving(&server_args, served)?;
    let server_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server_thread = {
        let stop = server_stop.clone();
        thread::spawn(move || server.run_until(&stop))
    };
    let url = format!("{base}/sample.torrent");
    let meta = Arc::new(shoal_io::load_torrent(&url).map_err(|e| e.to_string())?.0);
    say::err_line(&format!(
        "demo: {} ({}, {} pieces of {}) on a web server at {base}/ (as `shoal serve` runs \
         it: the files, their torrent, its tracker); {} leechers fetch {url} (the last one \
         starts from the torrent's magnet link instead: its metadata comes from the others, \
         BEP 9), download from the server (a web seed, BEP 19) and from each other; no other \
         seed",
        meta.info.name,
        human(meta.info.total_length),
        meta.info.piece_count(),
        human(u64::from(meta.info.piece_length)),
        opts.leechers
    ));

    let states: Arc<Mutex<Vec<NodeState>>> =
        Arc::new(Mutex::new(vec![NodeState::default(); opts.leechers]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for node in 0..opts.leechers {
        let dir = tmp.join(format!("leecher-{}", node + 1));
        std::fs::create_dir_all(&dir).map_err(io)?;
        // Each gets the torrent the way a user would: by its URL on the web server, or (the
        // last) by the magnet link the server's index page gives (its tracker, its web seed).
        let by_magnet = opts.leechers > 1 && node + 1 == opts.leechers;
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
        let (torrent, mut storage) = if by_magnet {
            (rt.add_magnet(&meta.magnet()), None)
        } else {
            let meta = Arc::new(shoal_io::load_torrent(&url).map_err(|e| e.to_string())?.0);
            let storage = Arc::new(Storage::open(&dir, meta.clone()).map_err(|e| e.to_string())?);
            let verified = shoal_core::bitfield::Bitfield::new(meta.info.piece_count());
            let torrent = rt
                .add_torrent(meta, storage.clone(), verified)
                .map_err(|e| e.to_string())?;
            (torrent, Some(storage))
        };
        // Peers come from the tracker, the rest from the web seed: no address is given.
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
                                Event::MetadataReceived { torrent: t, meta } if t == torrent => {
                                    // The magnet link's metadata, checked against its
                                    // info-hash: now the files can be opened.
                                    let n = meta.info.piece_count();
                                    let opened = Storage::open(&dir, meta)
                                        .map_err(|e| e.to_string())
                                        .map(Arc::new)
                                        .and_then(|st| {
                                            rt.attach_metainfo(
                                                torrent,
                                                st.clone(),
                                                shoal_core::bitfield::Bitfield::new(n),
                                            )
                                            .map_err(|e| e.to_string())?;
                                            Ok(st)
                                        });
                                    match opened {
                                        Ok(st) => storage = Some(st),
                                        Err(e) => set(&|s| s.error = Some(e.clone())),
                                    }
                                }
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
            // The final figures (the last progress event may be a second old).
            if let Some(stats) = rt.stats(torrent) {
                set(&|s| s.stats = Some(stats.clone()));
            }
            let _ = rt.shutdown(Duration::from_secs(1));
            drop(rt);
            if let Some(storage) = storage {
                let _ = storage.sync();
            }
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
        let leechers = &snapshot[..];
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
            say::err_line(&format!(
                "{:6.1}s  {}  | from the web server {}",
                start.elapsed().as_secs_f64(),
                line.join("  "),
                human(from_server(leechers))
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
    let final_states = states.lock().map(|s| s.clone()).unwrap_or_default();
    server_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server_thread.join();
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
    let sent = from_server(&final_states);
    let plain = meta.info.total_length * opts.leechers as u64;
    say::err_line(&format!(
        "demo: all {} leechers completed in {:.1} s; every file checked byte for byte against \
         the server's. The web server sent {} where {} plain downloads would take {} ({:.0} %): \
         the leechers traded the rest among themselves",
        opts.leechers,
        start.elapsed().as_secs_f64(),
        human(sent),
        opts.leechers,
        human(plain),
        100.0 * sent as f64 / plain.max(1) as f64
    ));
    Ok(())
}

/// What the leechers got from the web server: all they downloaded less what they
/// uploaded to one another (there is no other source).
fn from_server(leechers: &[NodeState]) -> u64 {
    let (down, up) = leechers
        .iter()
        .filter_map(|s| s.stats.as_ref())
        .fold((0u64, 0u64), |(d, u), s| (d + s.downloaded, u + s.uploaded));
    down.saturating_sub(up)
}
