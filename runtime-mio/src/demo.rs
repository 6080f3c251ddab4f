//! `shoal demo`: a whole swarm on loopback, with no setup and no network.
//!
//! It makes a sample payload (a few files of pseudo-random bytes) in a temporary folder and
//! serves it as `shoal serve` does ([`TrackerService::serving`]): a web server that makes
//! the torrent (its tracker and its web seed this server), serves the files, the torrent
//! and the tracker. Then, with no seed but the web server:
//!
//! - leechers, each a full [`Runtime`] on its own thread and port, fetch the `.torrent` by
//!   URL, download ranges of the files from the server (BEP 19) and find each other
//!   through its tracker, so they trade pieces among themselves;
//! - the last leecher starts from a bare magnet link (the info-hash alone): it finds the
//!   others through the DHT (BEP 5; the leechers' nodes start from each other, never from
//!   the internet's routers) and takes the metadata from them (BEP 9);
//! - a `shoal daemon` (the helper application, a child process with its own state
//!   folder) is handed the server's magnet link over the Transmission RPC, as `shoal add`
//!   or a clicked link would, and downloads with the others; its page is named.
//!
//! It shows their progress, checks every file of every leecher and of the daemon against
//! the payload byte for byte, and says how much the server sent against what plain
//! downloads would have taken: the original paper's claim, measured.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Peers announced to its DHT node.
    dht_stored: usize,
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
    let server_stop = Arc::new(AtomicBool::new(false));
    let server_thread = {
        let stop = server_stop.clone();
        thread::spawn(move || server.run_until(&stop))
    };
    let url = format!("{base}/sample.torrent");
    let meta = Arc::new(shoal_io::load_torrent(&url).map_err(|e| e.to_string())?.0);
    let fetchers = if opts.leechers > 1 {
        format!(
            "leechers 1-{} fetch {url}, download from the server (a web seed, BEP 19) and \
             from each other; leecher {} starts from a bare magnet link (the info-hash \
             alone): it finds the others through the DHT (BEP 5) and its metadata comes from \
             them (BEP 9)",
            opts.leechers - 1,
            opts.leechers
        )
    } else {
        format!("a leecher fetches {url} and downloads from the server (a web seed, BEP 19)")
    };
    say::err_line(&format!(
        "demo: {} ({}, {} pieces of {}) on a web server at {base}/ (as `shoal serve` runs \
         it: the files, their torrent, its tracker, a feed); {fetchers}; a shoal daemon (the \
         helper application a clicked link reaches) is handed the server's magnet link over \
         the Transmission RPC, as `shoal add` would; no other seed",
        meta.info.name,
        human(meta.info.total_length),
        meta.info.piece_count(),
        human(u64::from(meta.info.piece_length)),
    ));

    let states: Arc<Mutex<Vec<NodeState>>> =
        Arc::new(Mutex::new(vec![NodeState::default(); opts.leechers]));
    let stop = Arc::new(AtomicBool::new(false));
    // Set once a leecher's announce is stored on the DHT: then the bare magnet starts, so
    // that its first lookup finds someone.
    let dht_ready = Arc::new(AtomicBool::new(false));
    let by_dht = opts.leechers > 1;
    // The runtimes first, so that each DHT node can start from the others' addresses.
    let mut runtimes = Vec::new();
    for _ in 0..opts.leechers {
        let rt = Runtime::new(RuntimeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 2,
            engine: EngineConfig {
                peer_id: random_peer_id(),
                rng_seed: random_u64(),
                ..EngineConfig::default()
            },
        })
        .map_err(|e| e.to_string())?;
        runtimes.push(rt);
    }
    let addrs: Vec<String> = runtimes
        .iter()
        .map(|rt| rt.local_addr().to_string())
        .collect();
    for (i, rt) in runtimes.iter_mut().enumerate() {
        let others: Vec<String> = (0..addrs.len())
            .filter(|&j| j != i)
            .map(|j| addrs[j].clone())
            .collect();
        if !others.is_empty() {
            rt.start_dht(None, &others);
        }
    }
    let mut threads = Vec::new();
    for (node, mut rt) in runtimes.into_iter().enumerate() {
        let dir = tmp.join(format!("leecher-{}", node + 1));
        std::fs::create_dir_all(&dir).map_err(io)?;
        // Each gets the torrent the way a user would: by its URL on the web server, or (the
        // last) by a bare magnet link, the info-hash alone.
        let bare = (by_dht && node + 1 == opts.leechers).then(|| {
            let mut m = shoal_core::magnet::Magnet::new(meta.info_hash);
            m.display_name = Some(meta.info.name.clone());
            m
        });
        let (mut torrent, mut storage) = if bare.is_some() {
            (None, None)
        } else {
            let meta = Arc::new(shoal_io::load_torrent(&url).map_err(|e| e.to_string())?.0);
            let storage = Arc::new(Storage::open(&dir, meta.clone()).map_err(|e| e.to_string())?);
            let verified = shoal_core::bitfield::Bitfield::new(meta.info.piece_count());
            let torrent = rt
                .add_torrent(meta, storage.clone(), verified)
                .map_err(|e| e.to_string())?;
            (Some(torrent), Some(storage))
        };
        // Peers come from the tracker and the DHT, the rest from the web seed: no address
        // is given.
        let (states, stop, dht_ready) = (states.clone(), stop.clone(), dht_ready.clone());
        threads.push(thread::spawn(move || {
            let set = |f: &dyn Fn(&mut NodeState)| {
                if let Ok(mut s) = states.lock() {
                    f(&mut s[node]);
                }
            };
            while !stop.load(Ordering::Relaxed) {
                if torrent.is_none() && dht_ready.load(Ordering::Relaxed) {
                    if let Some(m) = &bare {
                        torrent = Some(rt.add_magnet(m));
                    }
                }
                let events = match rt.turn(Some(Duration::from_millis(100))) {
                    Ok(events) => events,
                    Err(e) => {
                        set(&|s| s.error = Some(e.to_string()));
                        break;
                    }
                };
                let stored = rt.dht_stats().map_or(0, |d| d.stored.1);
                set(&|s| s.dht_stored = stored);
                for e in events {
                    match e {
                        Event::Progress { stats, .. } => set(&|s| s.stats = Some(stats.clone())),
                        Event::Completed { .. } => set(&|s| s.done = true),
                        Event::MetadataReceived { torrent: t, meta } if Some(t) == torrent => {
                            // The magnet link's metadata, checked against its info-hash:
                            // now the files can be opened.
                            let n = meta.info.piece_count();
                            let opened = Storage::open(&dir, meta)
                                .map_err(|e| e.to_string())
                                .map(Arc::new)
                                .and_then(|st| {
                                    rt.attach_metainfo(
                                        t,
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
            // The final figures (the last progress event may be a second old).
            if let Some(stats) = torrent.and_then(|t| rt.stats(t)) {
                set(&|s| s.stats = Some(stats.clone()));
            }
            let _ = rt.shutdown(Duration::from_secs(1));
            drop(rt);
            if let Some(storage) = storage {
                let _ = storage.sync();
            }
        }));
    }
    // The daemon, handed the magnet link of the server's index page (its tracker, its web
    // seed) over the Transmission RPC.
    let mut daemon = HelperDaemon::start(tmp, &meta.magnet().to_uri())?;
    say::err_line(&format!(
        "demo: the daemon's page: http://{}/ (Transmission RPC at /transmission/rpc)",
        daemon.addr
    ));

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
        let helper = match daemon.poll() {
            Ok(v) => v,
            Err(e) => break Err(e),
        };
        if snapshot.iter().any(|s| s.dht_stored > 0) {
            dht_ready.store(true, Ordering::Relaxed);
        }
        let all_done = snapshot.iter().all(|s| s.done) && helper.done;
        if last.elapsed() >= Duration::from_millis(500) || all_done {
            last = Instant::now();
            let mut line: Vec<String> = snapshot
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    // Progress comes once a second: a node done since is at 100 %.
                    let pct = if s.done {
                        100.0
                    } else {
                        s.stats.as_ref().map_or(0.0, |st| {
                            100.0 * st.bytes_verified as f64 / st.total_length.max(1) as f64
                        })
                    };
                    if by_dht && i + 1 == snapshot.len() {
                        if dht_ready.load(Ordering::Relaxed) {
                            format!("leecher {} (DHT): {pct:5.1}%", i + 1)
                        } else {
                            format!("leecher {} (DHT): waiting for an announce", i + 1)
                        }
                    } else {
                        format!("leecher {}: {pct:5.1}%", i + 1)
                    }
                })
                .collect();
            line.push(format!("daemon: {:5.1}%", helper.percent));
            say::err_line(&format!(
                "{:6.1}s  {}  | from the web server {}",
                start.elapsed().as_secs_f64(),
                line.join("  "),
                human(from_server(&snapshot, &helper))
            ));
        }
        if all_done {
            break Ok((helper, start.elapsed()));
        }
        if start.elapsed() > Duration::from_secs(300) {
            break Err("the demo swarm did not finish in 5 minutes".into());
        }
    };
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let final_states = states.lock().map(|s| s.clone()).unwrap_or_default();
    server_stop.store(true, Ordering::Relaxed);
    let _ = server_thread.join();
    let daemon_downloads = daemon.downloads.clone();
    let stopped = daemon.stop();
    let (helper, took) = outcome?;
    stopped?;
    // Every leecher, and the daemon, must hold exactly the seed's files under their final
    // names.
    let folders = (1..=opts.leechers)
        .map(|node| tmp.join(format!("leecher-{node}")))
        .chain(std::iter::once(daemon_downloads));
    for dir in folders {
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
    let sent = from_server(&final_states, &helper);
    let downloaders = opts.leechers as u64 + 1;
    let plain = meta.info.total_length * downloaders;
    say::err_line(&format!(
        "demo: {} and the daemon completed in {:.1} s; every file checked byte for byte \
         against the server's. The web server sent {} where {} plain downloads would take \
         {} ({:.0} %): the downloaders traded the rest among themselves",
        if opts.leechers == 1 {
            "the leecher".to_string()
        } else {
            format!("all {} leechers", opts.leechers)
        },
        took.as_secs_f64(),
        human(sent),
        downloaders,
        human(plain),
        100.0 * sent as f64 / plain.max(1) as f64
    ));
    Ok(())
}

/// What the daemon's RPC last said of its torrent.
#[derive(Clone, Copy, Default)]
struct HelperView {
    percent: f64,
    downloaded: u64,
    uploaded: u64,
    /// Completed (its files under their final names).
    done: bool,
}

/// The demo's `shoal daemon`: a child process with its own state and download folders,
/// its control server on a free loopback port, no DHT (the magnet link names the tracker
/// and the web seed). Killed if the demo ends early.
struct HelperDaemon {
    child: Child,
    remote: crate::remote::Daemon,
    addr: SocketAddr,
    log: PathBuf,
    downloads: PathBuf,
}

impl HelperDaemon {
    /// Starts it in `tmp` and hands it `magnet` (`torrent-add`).
    fn start(tmp: &Path, magnet: &str) -> Result<HelperDaemon, String> {
        let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
        let state = tmp.join("daemon-state");
        let downloads = tmp.join("daemon-downloads");
        std::fs::create_dir_all(&downloads).map_err(|e| io(&downloads, e))?;
        let log = tmp.join("daemon.log");
        let log_file = std::fs::File::create(&log).map_err(|e| io(&log, e))?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find shoal itself: {e}"))?;
        let mut child = Command::new(exe)
            .arg("daemon")
            .arg("--state")
            .arg(&state)
            .arg("--download-dir")
            .arg(&downloads)
            .args(["--rpc", "127.0.0.1:0", "--bind", "127.0.0.1", "--port", "0"])
            .arg("--no-dht")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start the daemon: {e}"))?;
        let dir = shoal_daemon::state::StateDir::new(&state);
        let deadline = Instant::now() + DAEMON_WAIT;
        let remote = loop {
            if let Some(d) = crate::remote::Daemon::find(&dir) {
                break d;
            }
            let failed = match child.try_wait() {
                Ok(Some(status)) => Some(format!("the daemon stopped at once ({status})")),
                _ if Instant::now() > deadline => Some(format!(
                    "the daemon did not start in {} s",
                    DAEMON_WAIT.as_secs()
                )),
                _ => None,
            };
            if let Some(why) = failed {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{why}: {}", last_line(&log)));
            }
            thread::sleep(Duration::from_millis(50));
        };
        let addr = remote.addr();
        let daemon = HelperDaemon {
            child,
            remote,
            addr,
            log,
            downloads,
        };
        daemon
            .remote
            .call("torrent-add", serde_json::json!({ "filename": magnet }))
            .map_err(|e| format!("the daemon refused the magnet link: {e}"))?;
        Ok(daemon)
    }

    /// Its torrent's progress; an error if it stopped or its torrent failed.
    fn poll(&mut self) -> Result<HelperView, String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!(
                "the daemon stopped ({status}): {}",
                last_line(&self.log)
            ));
        }
        let got = self.remote.call(
            "torrent-get",
            serde_json::json!({ "fields": ["percentDone", "downloadedEver", "uploadedEver",
                "doneDate", "error", "errorString"] }),
        )?;
        let t = &got["torrents"][0];
        if t["error"].as_i64().unwrap_or(0) != 0 {
            return Err(format!(
                "the daemon's download failed: {}",
                t["errorString"].as_str().unwrap_or("?")
            ));
        }
        Ok(HelperView {
            percent: 100.0 * t["percentDone"].as_f64().unwrap_or(0.0),
            downloaded: t["downloadedEver"].as_u64().unwrap_or(0),
            uploaded: t["uploadedEver"].as_u64().unwrap_or(0),
            done: t["doneDate"].as_i64().unwrap_or(0) != 0,
        })
    }

    /// Stops it with `session-close` (it saves its state and its files), as
    /// `transmission-remote --exit` would.
    fn stop(mut self) -> Result<(), String> {
        self.remote
            .call("session-close", serde_json::json!({}))
            .map_err(|e| format!("the daemon refused to stop: {e}"))?;
        let deadline = Instant::now() + DAEMON_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "the daemon stopped with {status}: {}",
                        last_line(&self.log)
                    ))
                };
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the daemon did not stop in {} s",
            DAEMON_WAIT.as_secs()
        ))
    }
}

impl Drop for HelperDaemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How long the daemon may take to start or to stop.
const DAEMON_WAIT: Duration = Duration::from_secs(20);

/// The last line of a log, for an error message.
fn last_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text.lines().last().unwrap_or("(nothing)").to_string();
    format!("{line} (log: {})", log.display())
}

/// What the downloaders got from the web server: all they downloaded less what they
/// uploaded to one another (there is no other source).
fn from_server(leechers: &[NodeState], daemon: &HelperView) -> u64 {
    let (down, up) = leechers
        .iter()
        .filter_map(|s| s.stats.as_ref())
        .fold((daemon.downloaded, daemon.uploaded), |(d, u), s| {
            (d + s.downloaded, u + s.uploaded)
        });
    down.saturating_sub(up)
}
