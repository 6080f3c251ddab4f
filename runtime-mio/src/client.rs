//! The `download` and `seed` commands: one torrent, from its file or URL to a finished,
//! verified folder, then seeding.
//!
//! What a user can count on:
//!
//! - data already on disk is checked first (a resume record written by an earlier run is
//!   trusted when the files' sizes and modification times still match; otherwise every
//!   piece is hashed), and a verified piece is never downloaded again;
//! - incomplete files carry a `.part` suffix and get their final name only once every piece
//!   covering them is verified;
//! - Ctrl-C (or SIGTERM) stops cleanly: `stopped` goes to the trackers, writes finish, the
//!   files are synced and the resume record is saved, so the next run resumes;
//! - every failure ends the command with one clear message and a non-zero exit code.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use shoal_core::engine::{Event, SeedLimit, TorrentId, TorrentStats, TrackerWatch};
use shoal_core::metainfo::Metainfo;
use shoal_io::{human, Storage};

use crate::runtime::{Runtime, RuntimeConfig};

/// What `shoal download` and `shoal seed` are told.
#[derive(Clone, Debug)]
pub struct Options {
    /// The torrent: a path or an http(s) URL.
    pub torrent: String,
    /// The folder the content goes in (as `DIR/<name>`).
    pub dir: PathBuf,
    pub port: u16,
    /// Where to listen (0.0.0.0 unless told).
    pub bind: std::net::IpAddr,
    pub peers: Vec<SocketAddr>,
    /// Stop seeding once uploaded ≥ ratio × size (0 = no ratio limit).
    pub seed_ratio: f64,
    /// Stop seeding after this long (none = no time limit).
    pub seed_time: Option<Duration>,
    /// Exit as soon as the download is complete.
    pub no_seed: bool,
    /// Plain progress lines even on a terminal.
    pub plain: bool,
    /// Replace files of the torrent's names that are in the way (download only).
    pub overwrite: bool,
    /// The first wait after every tracker failed (doubling after each failed round).
    pub tracker_backoff: Duration,
}

/// How a run ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded (and seeded as asked).
    Done,
    /// Stopped by a signal before the download completed.
    Interrupted,
}

/// How often the resume record is saved while running.
const RESUME_EVERY: Duration = Duration::from_secs(30);

pub fn run(opts: &Options, seed_only: bool) -> Result<Outcome, String> {
    let (meta, _) = shoal_io::load_torrent(&opts.torrent).map_err(|e| e.to_string())?;
    let meta = Arc::new(meta);
    let ui = Ui::new(&meta, opts.plain);
    let checking = |done, total| ui.checking(done, total);
    // A seed reads its content and creates nothing; a download holds its folder's lock
    // until the end (`_lock` lives as long as this function).
    let (storage, verified, _lock) = if seed_only {
        let (storage, verified) =
            shoal_io::open_seed(&opts.dir, meta.clone(), checking).map_err(|e| e.to_string())?;
        (storage, verified, None)
    } else {
        let d = shoal_io::open_download(&opts.dir, meta.clone(), opts.overwrite, checking)
            .map_err(|e| e.to_string())?;
        (d.storage, d.verified, Some(d.lock))
    };

    let mut rt = Runtime::new(RuntimeConfig {
        listen: SocketAddr::new(opts.bind, opts.port),
        workers: 2,
        engine: shoal_core::engine::EngineConfig {
            peer_id: random_peer_id(),
            rng_seed: random_u64(),
            announcer: shoal_core::tracker::AnnouncerConfig {
                initial_backoff: opts.tracker_backoff,
                ..Default::default()
            },
            ..Default::default()
        },
    })
    .map_err(|e| format!("cannot listen on port {}: {e}", opts.port))?;
    rt.catch_signals().map_err(|e| e.to_string())?;
    let torrent = rt
        .add_torrent(meta.clone(), storage.clone(), verified)
        .map_err(|e| e.to_string())?;
    for &peer in &opts.peers {
        rt.add_peer(torrent, peer);
    }
    ui.started(rt.local_addr());

    let started = Instant::now();
    let result = drive(&mut rt, torrent, &meta, opts, &ui, &storage);
    let stats = rt.engine.stats(torrent);
    // However it ended: say `stopped`, let the writes finish, save the resume record.
    let verified = rt
        .shutdown(Duration::from_secs(5))
        .ok()
        .and_then(|v| v.into_iter().find(|(id, _)| *id == torrent))
        .map(|(_, v)| v);
    drop(rt); // joins the workers once their queued writes are done
    if let Err(e) = storage.sync() {
        return Err(e.to_string());
    }
    if let Some(verified) = verified.filter(|_| !storage.is_read_only()) {
        shoal_io::resume::save(&opts.dir, &meta, &verified, &storage).map_err(|e| e.to_string())?;
    }
    ui.finish();
    if let Some(s) = stats {
        // One line a script can read: what this run moved.
        eprintln!(
            "summary: downloaded {} bytes, uploaded {} bytes, {}/{} pieces verified, {:.1} s",
            s.downloaded,
            s.uploaded,
            s.pieces_verified,
            s.piece_count,
            started.elapsed().as_secs_f64()
        );
    }
    result
}

fn drive(
    rt: &mut Runtime,
    torrent: TorrentId,
    meta: &Metainfo,
    opts: &Options,
    ui: &Ui,
    storage: &Arc<Storage>,
) -> Result<Outcome, String> {
    let mut complete_at = rt
        .engine
        .stats(torrent)
        .filter(|s| s.complete)
        .map(|_| Instant::now());
    if complete_at.is_some() {
        ui.message("all pieces verified: seeding");
        if opts.no_seed {
            return Ok(Outcome::Done);
        }
    }
    let mut trackers = TrackerWatch::new(!opts.peers.is_empty());
    let seed_limit = SeedLimit {
        ratio: Some(opts.seed_ratio),
        time: opts.seed_time,
    };
    let mut last_save = Instant::now();
    let has_trackers = !meta.trackers().is_empty();
    loop {
        let events = rt
            .turn(Some(Duration::from_millis(250)))
            .map_err(|e| e.to_string())?;
        for event in events {
            if complete_at.is_none() {
                if let Some(give_up) = trackers.observe(&event) {
                    return Err(give_up);
                }
            }
            match event {
                Event::Progress { stats, .. } => {
                    ui.progress(&stats, complete_at.is_some());
                    if let Some(at) = complete_at {
                        if seed_limit.reached(&stats, at.elapsed()) {
                            ui.message("seeding limit reached");
                            return Ok(Outcome::Done);
                        }
                    }
                }
                Event::Completed { .. } => {
                    ui.message(&format!(
                        "download complete: {}",
                        opts.dir.join(&meta.info.name).display()
                    ));
                    complete_at = Some(Instant::now());
                    if opts.no_seed {
                        return Ok(Outcome::Done);
                    }
                }
                Event::StorageError { message, .. } => return Err(message),
                Event::TrackerAnswer {
                    url,
                    peers,
                    warning,
                    ..
                } => {
                    ui.verbose(&format!("{url}: {peers} peers"));
                    if let Some(w) = warning {
                        ui.message(&format!("tracker warning from {url}: {w}"));
                    }
                }
                Event::TrackerError { url, error, .. } => {
                    ui.verbose(&format!("{url}: {error}"));
                }
                Event::HashFailed { piece, .. } => {
                    ui.verbose(&format!("piece {piece} failed its hash check"))
                }
                Event::PeerBanned { ip, .. } => {
                    ui.message(&format!("banned {ip}: sent data that failed hash checks"))
                }
                _ => {}
            }
        }
        if rt.interrupted() {
            ui.message("stopping…");
            return Ok(if complete_at.is_some() {
                Outcome::Done
            } else {
                Outcome::Interrupted
            });
        }
        if !has_trackers && opts.peers.is_empty() && complete_at.is_none() {
            return Err(
                "the torrent names no tracker and no --peer was given: no way to find peers".into(),
            );
        }
        if last_save.elapsed() >= RESUME_EVERY && !storage.is_read_only() {
            last_save = Instant::now();
            if let Some(verified) = rt.engine.verified(torrent).cloned() {
                // Writes still queued may be left out of the record: they are re-fetched
                // or re-verified next time, never trusted unverified.
                let (dir, meta, storage) =
                    (opts.dir.clone(), Arc::new(meta.clone()), storage.clone());
                rt.spawn(move || {
                    storage.sync().map_err(|e| e.to_string())?;
                    shoal_io::resume::save(&dir, &meta, &verified, &storage)
                        .map_err(|e| e.to_string())
                });
            }
        }
    }
}

pub use shoal_io::{random_peer_id, random_u64};

/// Progress on a terminal (a bar) or in a log (a line every few seconds).
struct Ui {
    bar: Option<ProgressBar>,
    total: u64,
    last_line: std::cell::Cell<Option<Instant>>,
    verbose: bool,
}

impl Ui {
    fn new(meta: &Metainfo, plain: bool) -> Ui {
        let total = meta.info.total_length;
        let bar = (!plain && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:20} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {wide_msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(truncate(&meta.info.name, 20));
            bar
        });
        Ui {
            bar,
            total,
            last_line: std::cell::Cell::new(None),
            verbose: std::env::var_os("SHOAL_VERBOSE").is_some(),
        }
    }

    fn checking(&self, done: u32, total: u32) {
        if let Some(bar) = &self.bar {
            bar.set_length(u64::from(total));
            bar.set_position(u64::from(done));
        } else if done == total || done.is_multiple_of(256) {
            eprintln!("checking existing data: {done}/{total} pieces");
        }
    }

    fn started(&self, addr: SocketAddr) {
        if let Some(bar) = &self.bar {
            bar.set_length(self.total);
            bar.set_position(0);
        }
        self.message(&format!("listening on {addr}"));
    }

    fn progress(&self, s: &TorrentStats, seeding: bool) {
        let eta = if s.download_rate > 0 && !s.complete {
            format!(
                "ETA {}s",
                (s.total_length - s.bytes_verified) / s.download_rate
            )
        } else {
            String::new()
        };
        let line = format!(
            "{} down {}/s up {}/s, {} peers, ratio {:.2} {eta}",
            if seeding { "seeding," } else { "" },
            human(s.download_rate),
            human(s.upload_rate),
            s.peers,
            s.uploaded as f64 / s.total_length.max(1) as f64,
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(s.bytes_verified);
                bar.set_message(line);
            }
            None => {
                let due = self
                    .last_line
                    .get()
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
                if due {
                    self.last_line.set(Some(Instant::now()));
                    eprintln!(
                        "{:5.1}% {}/{} pieces {line}",
                        100.0 * s.bytes_verified as f64 / s.total_length.max(1) as f64,
                        s.pieces_verified,
                        s.piece_count
                    );
                }
            }
        }
    }

    fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn verbose(&self, text: &str) {
        if self.verbose {
            self.message(text);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Where `download -o DIR` leaves a torrent's content.
pub fn content_path(dir: &Path, meta: &Metainfo) -> PathBuf {
    dir.join(&meta.info.name)
}
