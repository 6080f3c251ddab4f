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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use shoal_core::engine::{Event, SeedLimit, TorrentId, TorrentStats, TrackerWatch};
use shoal_core::metainfo::Metainfo;
use shoal_io::Storage;

use crate::runtime::{Runtime, RuntimeConfig};
use crate::say;

/// What `shoal download` and `shoal seed` are told.
#[derive(Clone, Debug)]
pub struct Options {
    /// The torrent: a path or an http(s) URL.
    pub torrent: String,
    /// The folder the content goes in (as `DIR/<name>`).
    pub dir: PathBuf,
    /// The port to listen on; none: [`DEFAULT_PORT`] or the next free one.
    pub port: Option<u16>,
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
    /// Local service discovery (BEP 14) on the `bind` interface.
    pub lsd: bool,
    /// Message stream encryption's policy (MSE/PE).
    pub encryption: shoal_core::engine::Encryption,
    /// Replace files of the torrent's names that are in the way (download only).
    pub overwrite: bool,
    /// The first wait after every tracker failed (doubling after each failed round).
    pub tracker_backoff: Duration,
    /// Upload and download limits (bytes a second; none by default).
    pub rate_limits: shoal_core::engine::RateLimits,
    /// The DHT (BEP 5), and where it starts from (see [`crate::runtime::Runtime::start_dht`]).
    pub dht: Dht,
}

/// The DHT's settings for a command.
#[derive(Clone, Debug, Default)]
pub struct Dht {
    /// Off (`--no-dht`).
    pub off: bool,
    /// `--dht-bootstrap HOST:PORT`s; empty: `SHOAL_DHT_BOOTSTRAP` or the well-known routers.
    pub bootstrap: Vec<String>,
}

impl Dht {
    /// Starts `rt`'s DHT unless it is off, with its table in `folder`; returns whether
    /// the DHT can find peers (it runs and has somewhere to start from).
    pub fn start(&self, rt: &mut Runtime, folder: Option<&std::path::Path>) -> bool {
        !self.off && rt.start_dht(folder, &self.bootstrap)
    }
}

/// How a run ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded (and seeded as asked).
    Done,
    /// Stopped by a signal before the download completed.
    Interrupted,
}

/// The port tried first when none is given, and how many after it (6881-6889, the
/// classic BitTorrent range that libtorrent also walks when its port is taken).
pub const DEFAULT_PORT: u16 = 6881;
const DEFAULT_PORT_TRIES: u16 = 9;

pub fn run(opts: &Options, seed_only: bool) -> Result<Outcome, String> {
    let mut opts = opts.clone();
    // A magnet link's metadata comes from its peers, unless an earlier run saved it: then
    // the runtime that fetched it goes on with the same connections.
    let mut fetched: Option<(Runtime, TorrentId)> = None;
    // Whether the DHT runs with somewhere to start from (known once a runtime exists).
    let mut dht_usable = false;
    let meta = match crate::magnet::parse(&opts.torrent)? {
        None => Arc::new(
            shoal_io::load_torrent(&opts.torrent)
                .map_err(|e| e.to_string())?
                .0,
        ),
        Some(magnet) => {
            for peer in crate::magnet::peers(&magnet) {
                if !opts.peers.contains(&peer) {
                    opts.peers.push(peer);
                }
            }
            match shoal_io::resume::load_torrent(&opts.dir, &magnet.info_hash) {
                Some(meta) => Arc::new(meta),
                None => {
                    let mut rt = listen(&opts)?;
                    rt.catch_signals().map_err(|e| e.to_string())?;
                    dht_usable = opts
                        .dht
                        .start(&mut rt, dht_folder(&opts, seed_only).as_deref());
                    let id = rt.add_magnet(&magnet);
                    for &peer in &opts.peers {
                        rt.add_peer(id, peer);
                    }
                    say::err_line(&format!("listening on {}", rt.local_addr()));
                    let given = !opts.peers.is_empty();
                    let meta = match crate::magnet::fetch(&mut rt, id, &magnet, given, dht_usable)?
                    {
                        crate::magnet::Fetched::Meta(meta) => meta,
                        crate::magnet::Fetched::Interrupted => {
                            let _ = rt.shutdown(Duration::from_secs(2));
                            return Ok(Outcome::Interrupted);
                        }
                    };
                    if !seed_only {
                        // Saved before any data, so a restart never fetches it again.
                        shoal_io::resume::save_torrent(&opts.dir, &meta)
                            .map_err(|e| e.to_string())?;
                    }
                    fetched = Some((rt, id));
                    meta
                }
            }
        }
    };
    let opts = &opts;
    let ui = Ui::new(&meta, opts.plain);
    // Listen first: a port that is taken ends the command before any file is made.
    let (mut rt, magnet_torrent) = match fetched {
        Some((rt, id)) => (rt, Some(id)),
        None => {
            let mut rt = listen(opts)?;
            dht_usable = opts
                .dht
                .start(&mut rt, dht_folder(opts, seed_only).as_deref());
            (rt, None)
        }
    };
    let dht_usable = dht_usable && !meta.info.private;
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
    let torrent = match magnet_torrent {
        Some(id) => {
            rt.attach_metainfo(id, storage.clone(), verified)
                .map_err(|e| e.to_string())?;
            id
        }
        None => {
            rt.catch_signals().map_err(|e| e.to_string())?;
            let id = rt
                .add_torrent(meta.clone(), storage.clone(), verified)
                .map_err(|e| e.to_string())?;
            for &peer in &opts.peers {
                rt.add_peer(id, peer);
            }
            id
        }
    };
    ui.started(rt.local_addr(), rt.stats(torrent).as_ref());

    let started = Instant::now();
    let result = drive(&mut rt, torrent, &meta, opts, &ui, &storage, dht_usable);
    let stats = rt.stats(torrent);
    // However it ended: say `stopped`, let the writes finish, save the resume record.
    let verified = rt
        .shutdown(Duration::from_secs(5))
        .ok()
        .and_then(|v| v.into_iter().find(|(id, _)| *id == torrent))
        .map(|(_, v)| v);
    if let Err(e) = rt.save_dht() {
        say::err_line(&format!("the DHT's table was not saved: {e}"));
    }
    drop(rt); // joins the workers once their queued writes are done
    let saved = storage.sync().map_err(|e| e.to_string()).and_then(|()| {
        match verified.filter(|_| !storage.is_read_only()) {
            Some(verified) => shoal_io::resume::save(&opts.dir, &meta, &verified, &storage)
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    });
    let result = saved.and(result);
    ui.finish(stats.as_ref(), &result, started.elapsed());
    if let (Some(s), false) = (stats, ui.has_bar()) {
        // One line a script can read: what this run moved. (On a terminal the bar's final
        // state says it in a line that fits.)
        say::err_line(&format!(
            "summary: downloaded {} bytes, uploaded {} bytes, {}/{} pieces verified, {:.1} s",
            s.downloaded,
            s.uploaded,
            s.pieces_verified,
            s.piece_count,
            started.elapsed().as_secs_f64()
        ));
    }
    result
}

/// The runtime, listening on the port asked for; with none asked for, on
/// [`DEFAULT_PORT`] or the first free one after it (and the user is told).
fn listen(opts: &Options) -> Result<Runtime, String> {
    let ports: Vec<u16> = match opts.port {
        Some(port) => vec![port],
        None => (DEFAULT_PORT..DEFAULT_PORT + DEFAULT_PORT_TRIES).collect(),
    };
    let mut taken = Vec::new();
    for port in ports {
        let config = RuntimeConfig {
            listen: SocketAddr::new(opts.bind, port),
            workers: 2,
            engine: shoal_core::engine::EngineConfig {
                peer_id: random_peer_id(),
                rng_seed: random_u64(),
                announcer: shoal_core::tracker::AnnouncerConfig {
                    initial_backoff: opts.tracker_backoff,
                    ..Default::default()
                },
                rate_limits: opts.rate_limits,
                lsd: opts.lsd,
                encryption: opts.encryption,
                ..Default::default()
            },
        };
        match Runtime::new(config) {
            Ok(mut rt) => {
                rt.set_disk_limits(shoal_io::DiskLimits::from_env());
                if !taken.is_empty() {
                    let (what, verb) = if taken.len() == 1 {
                        ("port", "is")
                    } else {
                        ("ports", "are")
                    };
                    say::err_line(&format!(
                        "{what} {} {verb} in use (another BitTorrent program?): using port {port}",
                        join_ports(&taken)
                    ));
                }
                return Ok(rt);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && opts.port.is_none() => {
                taken.push(port);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!(
                    "cannot listen on port {port}: it is in use by another program; \
                     choose another with --port, or leave --port out to use a free one"
                ));
            }
            Err(e) => return Err(format!("cannot listen on {}:{port}: {e}", opts.bind)),
        }
    }
    Err(format!(
        "cannot listen: ports {} are all in use; choose one with --port (0: any free port)",
        join_ports(&taken)
    ))
}

/// Where the DHT's table is kept: beside the resume records (`DIR/.shoal/`); nowhere for
/// a seed, which creates nothing.
fn dht_folder(opts: &Options, seed_only: bool) -> Option<PathBuf> {
    (!seed_only).then(|| opts.dir.join(".shoal"))
}

fn join_ports(ports: &[u16]) -> String {
    match ports {
        [one] => one.to_string(),
        [first, .., last] => format!("{first}-{last}"),
        [] => String::new(),
    }
}

fn drive(
    rt: &mut Runtime,
    torrent: TorrentId,
    meta: &Metainfo,
    opts: &Options,
    ui: &Ui,
    storage: &Arc<Storage>,
    dht: bool,
) -> Result<Outcome, String> {
    let mut complete_at = rt
        .stats(torrent)
        .filter(|s| s.complete)
        .map(|_| Instant::now());
    if complete_at.is_some() {
        // Where the content really is: a seed may have been given the content itself.
        let content = storage.content();
        if opts.no_seed {
            ui.message(&format!(
                "already complete: {}; nothing to download",
                content.display()
            ));
            return Ok(Outcome::Done);
        }
        ui.message(&format!("already complete: {}; seeding", content.display()));
    }
    // Peers named by the user, heard on the local network or found on the DHT are a way
    // besides trackers.
    let mut trackers = TrackerWatch::new(!opts.peers.is_empty() || opts.lsd || dht);
    let seed_limit = SeedLimit {
        ratio: Some(opts.seed_ratio),
        time: opts.seed_time,
    };
    let has_trackers = !meta.trackers().is_empty();
    // Web seeds not dropped yet: while one is left, the download has a source whatever
    // the trackers say.
    let mut web_seeds = meta.url_list.len();
    let mut last_web_seed_error = None;
    loop {
        let events = rt
            .turn(Some(Duration::from_millis(250)))
            .map_err(|e| e.to_string())?;
        for event in events {
            // Tracker trouble (and the first answer) is said as it happens, downloading or
            // seeding; only a download with nowhere else to turn gives up on it.
            if let Some(line) = trackers.report(&event, Instant::now()) {
                ui.message(&line);
            }
            let give_up = trackers.observe(&event);
            if let Some(give_up) = give_up.filter(|_| complete_at.is_none() && web_seeds == 0) {
                return Err(give_up);
            }
            match event {
                Event::Progress { stats, .. } => {
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
                        storage.content().display()
                    ));
                    complete_at = Some(Instant::now());
                    if opts.no_seed {
                        return Ok(Outcome::Done);
                    }
                }
                Event::StorageError { error, .. } => return Err(error.to_string()),
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
                Event::DhtAnswer {
                    peers, announced, ..
                } => ui.verbose(&format!(
                    "DHT: {peers} peers, announced to {announced} nodes"
                )),
                Event::PeerConnected { addr, stream, .. } => {
                    ui.verbose(&format!("peer {addr} connected ({stream})"))
                }
                Event::PeerClosed { addr, reason, .. } => {
                    ui.verbose(&format!("peer {addr} closed: {reason}"))
                }
                Event::HashFailed { piece, .. } => {
                    ui.verbose(&format!("piece {piece} failed its hash check"))
                }
                Event::PeerBanned { ip, .. } => {
                    ui.message(&format!("banned {ip}: sent data that failed hash checks"))
                }
                Event::WebSeedError {
                    url,
                    reason,
                    retry_at: Some(at),
                    ..
                } => ui.message(&format!(
                    "web seed {url}: {reason}; trying again in {} s",
                    at.saturating_duration_since(Instant::now()).as_secs()
                )),
                Event::WebSeedError { .. } => {}
                Event::InternalError { refused, first, .. } => {
                    ui.message(&shoal_core::engine::internal_error_message(refused, &first))
                }
                Event::WebSeedDropped { url, reason, .. } => {
                    ui.message(&format!("web seed {url} dropped: {reason}"));
                    web_seeds = web_seeds.saturating_sub(1);
                    last_web_seed_error = Some(format!("web seed {url}: {reason}"));
                }
                _ => {}
            }
        }
        // The bar follows every turn, not only the once-a-second progress event: it shows
        // verified pieces as they come and a stall as soon as it is one.
        if let Some(stats) = rt.stats(torrent) {
            ui.progress(&stats, Instant::now());
        }
        if rt.interrupted() {
            ui.message("stopping…");
            return Ok(if complete_at.is_some() {
                Outcome::Done
            } else {
                Outcome::Interrupted
            });
        }
        let lsd = opts.lsd && !meta.info.private;
        if !has_trackers
            && opts.peers.is_empty()
            && !lsd
            && !dht
            && web_seeds == 0
            && complete_at.is_none()
        {
            return Err(match last_web_seed_error.take() {
                Some(why) => format!(
                    "no source left: the torrent names no tracker, no --peer was given, \
                     {}, and its web seeds failed ({why})",
                    dht_absence(opts, meta.info.private)
                ),
                None => format!(
                    "the torrent names no tracker, no web seed, and no --peer was given, \
                     and {}: no way to find peers",
                    dht_absence(opts, meta.info.private)
                ),
            });
        }
    }
}

/// Why the DHT cannot find peers, for a message.
pub fn dht_absence(opts: &Options, private: bool) -> &'static str {
    if private {
        "a private torrent never uses the DHT"
    } else if opts.dht.off {
        "the DHT is off (--no-dht)"
    } else {
        "the DHT knows no node to start from (no --dht-bootstrap, SHOAL_DHT_BOOTSTRAP empty)"
    }
}

pub use shoal_io::{random_peer_id, random_u64};

/// The width of the name column of the bar.
const NAME_COLUMNS: usize = 16;
/// How far back the download rate looks: the rate shown (and the ETA drawn from it) is
/// what arrived in this window, so it drops to zero when the bytes stop instead of
/// fading out as an average does.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// The finest step of the rate's samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// No payload for this long while downloading: "stalled".
const STALLED_AFTER: Duration = Duration::from_secs(10);
/// In a log, the check of data on disk is told of once it has taken this long, then this
/// often: a quick check (nothing there, or a little) says nothing.
const CHECK_LINE_EVERY: Duration = Duration::from_secs(2);

/// Whether a log gets a `checking` line now: the check began (or the last line went out)
/// at `since`, `said` whether a line went out yet; the last piece closes a check that
/// was told of.
fn check_line_due(since: Instant, said: bool, now: Instant, done: u32, total: u32) -> bool {
    now.saturating_duration_since(since) >= CHECK_LINE_EVERY || (done == total && said)
}

/// Progress on a terminal (a bar) or in a log (a line every few seconds).
///
/// The bar is one line that fits the terminal (80 columns and up): the torrent's name in a
/// column of its own, the bar, then a status that is cut at the terminal's edge, most
/// important first: `42% of 60.0M ↓4.3M/s ↑1.2M/s 12 peers ETA 1m20s`. While the data on
/// disk is checked it says `checking N/M pieces`; at the end it keeps the final state
/// (`complete`, `stopped at 42%`, `failed at 42%`).
struct Ui {
    bar: Option<ProgressBar>,
    total: u64,
    last_line: std::cell::Cell<Option<Instant>>,
    rate: std::cell::RefCell<RateWindow>,
    verbose: bool,
    /// When the check of data on disk began or last printed a line, and whether it did.
    check_line: std::cell::Cell<Option<(Instant, bool)>>,
}

impl Ui {
    fn new(meta: &Metainfo, plain: bool) -> Ui {
        let total = meta.info.total_length;
        let bar = (!plain && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:{NAME_COLUMNS}!}} [{{bar:10}}] {{wide_msg}}"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(meta.info.name.clone());
            bar
        });
        Ui {
            bar,
            total,
            last_line: std::cell::Cell::new(None),
            rate: std::cell::RefCell::new(RateWindow::default()),
            verbose: std::env::var_os("SHOAL_VERBOSE").is_some(),
            check_line: std::cell::Cell::new(None),
        }
    }

    fn checking(&self, done: u32, total: u32) {
        let text = format!("checking {done}/{total} pieces");
        if let Some(bar) = &self.bar {
            bar.set_length(u64::from(total.max(1)));
            bar.set_position(u64::from(done));
            bar.set_message(text);
        } else {
            let now = Instant::now();
            let (since, said) = self.check_line.get().unwrap_or((now, false));
            if check_line_due(since, said, now, done, total) {
                say::err_line(&format!("checking existing data: {done}/{total} pieces"));
                self.check_line.set(Some((now, true)));
            } else {
                self.check_line.set(Some((since, said)));
            }
        }
    }

    /// Listening: the bar shows what is already there (a resumed download's percentage)
    /// at once.
    fn started(&self, addr: SocketAddr, stats: Option<&TorrentStats>) {
        if let Some(bar) = &self.bar {
            bar.set_length(self.total.max(1));
            if let Some(s) = stats {
                self.progress(s, Instant::now());
            }
        }
        self.message(&format!("listening on {addr}"));
    }

    fn progress(&self, s: &TorrentStats, now: Instant) {
        let (rate, stalled) = self.rate.borrow_mut().observe(now, s.downloaded);
        let line = status(s, rate, stalled);
        match &self.bar {
            Some(bar) => {
                bar.set_position(s.bytes_verified);
                bar.set_message(line);
            }
            None => {
                let due = self
                    .last_line
                    .get()
                    .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(2));
                if due {
                    self.last_line.set(Some(now));
                    say::err_line(&format!(
                        "{line}, {}/{} pieces",
                        s.pieces_verified, s.piece_count
                    ));
                }
            }
        }
    }

    fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => say::err_line(text),
        }
    }

    fn verbose(&self, text: &str) {
        if self.verbose {
            self.message(text);
        }
    }

    fn has_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Leaves the bar on its final state.
    fn finish(
        &self,
        stats: Option<&TorrentStats>,
        result: &Result<Outcome, String>,
        took: Duration,
    ) {
        let Some(bar) = &self.bar else { return };
        if let Some(s) = stats {
            bar.set_length(s.total_length.max(1));
            bar.set_position(s.bytes_verified);
            bar.set_message(final_state(s, result, took));
        }
        bar.abandon();
    }
}

/// The download rate over the last [`RATE_WINDOW`], and whether nothing arrived for
/// [`STALLED_AFTER`].
#[derive(Default)]
struct RateWindow {
    /// (when, payload bytes received by then), oldest first, within the window.
    samples: std::collections::VecDeque<(Instant, u64)>,
    /// When the count last grew (or was first seen).
    last_arrival: Option<Instant>,
    last_count: u64,
}

impl RateWindow {
    /// Takes the count of bytes received at `now`; (bytes per second, stalled).
    fn observe(&mut self, now: Instant, downloaded: u64) -> (u64, bool) {
        if self.last_arrival.is_none() || downloaded > self.last_count {
            self.last_arrival = Some(now);
            self.last_count = downloaded;
        }
        // A sample every tenth of a second at most: the loop may turn far more often.
        let due = self
            .samples
            .back()
            .is_none_or(|&(t, _)| now.saturating_duration_since(t) >= SAMPLE_EVERY);
        if due {
            self.samples.push_back((now, downloaded));
        }
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let stalled = self
            .last_arrival
            .is_some_and(|t| now.saturating_duration_since(t) >= STALLED_AFTER);
        let Some(&(t0, n0)) = self.samples.front() else {
            return (0, stalled);
        };
        // Over the whole window even when the samples cover less of it (the first
        // seconds): a rate from a fraction of a second would jump about.
        let span = now
            .saturating_duration_since(t0)
            .max(Duration::from_secs(1));
        let rate = (downloaded.saturating_sub(n0) as f64 / span.as_secs_f64()) as u64;
        (rate, stalled)
    }
}

/// The status column while running.
fn status(s: &TorrentStats, down_rate: u64, stalled: bool) -> String {
    let pct = percent(s);
    if s.complete {
        return format!(
            "seeding {} ↑{}/s {} peers ratio {:.2}",
            short(s.total_length),
            short(s.upload_rate),
            s.peers,
            s.uploaded as f64 / s.total_length.max(1) as f64
        );
    }
    let left = s.total_length.saturating_sub(s.bytes_verified);
    let eta = match left.checked_div(down_rate) {
        _ if stalled => "stalled".to_string(),
        Some(secs) => format!("ETA {}", duration(secs)),
        None => String::new(),
    };
    format!(
        "{pct}% of {} ↓{}/s ↑{}/s {} peers {eta}",
        short(s.total_length),
        short(down_rate),
        short(s.upload_rate),
        s.peers,
    )
    .trim_end()
    .to_string()
}

/// The status column once the command is over.
fn final_state(s: &TorrentStats, result: &Result<Outcome, String>, took: Duration) -> String {
    let how = match result {
        Ok(Outcome::Done) if s.complete => format!("complete {}", short(s.total_length)),
        Ok(_) => format!("stopped at {}%", percent(s)),
        Err(_) => format!("failed at {}%", percent(s)),
    };
    format!(
        "{how} in {}, ↓{} ↑{}",
        duration(took.as_secs()),
        short(s.downloaded),
        short(s.uploaded)
    )
}

/// Whole percent verified, 100 only when complete.
fn percent(s: &TorrentStats) -> u64 {
    if s.complete {
        return 100;
    }
    (s.bytes_verified.saturating_mul(100) / s.total_length.max(1)).min(99)
}

/// A byte count in at most 6 columns: `512B`, `4.3K`, `60.0M`, `1.2G`, `120G`.
fn short(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else if v < 100.0 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

/// Seconds as `45s`, `3m20s`, `2h05m`, `3d04h`.
fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(verified: u64, downloaded: u64, complete: bool) -> TorrentStats {
        TorrentStats {
            pieces_verified: 0,
            piece_count: 10,
            bytes_verified: verified,
            total_length: 60 << 20,
            downloaded,
            uploaded: 0,
            download_rate: 4 << 20,
            upload_rate: 0,
            peers: 12,
            complete,
        }
    }

    #[test]
    fn a_check_is_told_of_in_a_log_only_once_it_takes_a_while() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        // Quick, to the end: nothing, not even the last piece.
        assert!(!check_line_due(t0, false, t0, 10, 4096));
        assert!(!check_line_due(t0, false, s(1), 4096, 4096));
        // Slow: a line every CHECK_LINE_EVERY, and the last piece once one went out.
        assert!(check_line_due(t0, false, s(2), 100, 4096));
        assert!(!check_line_due(s(2), true, s(3), 200, 4096));
        assert!(check_line_due(s(2), true, s(3), 4096, 4096));
    }

    #[test]
    fn short_sizes_and_durations() {
        assert_eq!(short(512), "512B");
        assert_eq!(short(4403), "4.3K");
        assert_eq!(short(60 << 20), "60.0M");
        assert_eq!(short(120 << 30), "120G");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(200), "3m20s");
        assert_eq!(duration(7500), "2h05m");
    }

    #[test]
    fn the_rate_is_what_arrived_lately_and_a_stall_is_named() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = RateWindow::default();
        assert_eq!(w.observe(at(0), 0), (0, false));
        // 1 MiB a second for 5 seconds.
        for s in 1..=5 {
            w.observe(at(s), s << 20);
        }
        let (rate, stalled) = w.observe(at(6), 6 << 20);
        assert_eq!((rate, stalled), (1 << 20, false));
        // Then nothing: the rate is 0 once the window has passed, not a fading average,
        // and there is no ETA.
        let (rate, stalled) = w.observe(at(12), 6 << 20);
        assert_eq!((rate, stalled), (0, false));
        let line = status(&stats(6 << 20, 6 << 20, false), rate, stalled);
        assert!(!line.contains("ETA"), "{line}");
        // Ten seconds without a byte: stalled.
        let (rate, stalled) = w.observe(at(16), 6 << 20);
        assert_eq!((rate, stalled), (0, true));
        let line = status(&stats(6 << 20, 6 << 20, false), rate, stalled);
        assert!(line.ends_with("stalled"), "{line}");
        // Bytes again: no longer stalled.
        assert!(!w.observe(at(17), 7 << 20).1);
    }

    #[test]
    fn the_eta_comes_from_the_current_rate() {
        let line = status(&stats(30 << 20, 30 << 20, false), 1 << 20, false);
        assert_eq!(line, "50% of 60.0M ↓1.0M/s ↑0B/s 12 peers ETA 30s");
    }

    #[test]
    fn the_status_fits_beside_the_name_and_bar_in_80_columns() {
        // name column, space, [bar], space: what is left for the status.
        let room = 80 - (NAME_COLUMNS + 1 + 12 + 1);
        let worst = TorrentStats {
            pieces_verified: 1,
            piece_count: 2,
            bytes_verified: 999 << 30,
            total_length: 1000 << 30,
            downloaded: 1,
            uploaded: 999 << 30,
            download_rate: 999 << 20,
            upload_rate: 999 << 20,
            peers: 9999,
            complete: false,
        };
        let line = status(&worst, 999 << 20, false);
        assert!(line.chars().count() <= room, "{line}");
        let done = TorrentStats {
            complete: true,
            ..worst.clone()
        };
        assert!(status(&done, 0, false).chars().count() <= room);
        let end = final_state(&done, &Ok(Outcome::Done), Duration::from_secs(100_000));
        assert!(end.chars().count() <= room, "{end}");
    }

    #[test]
    fn percent_is_100_only_when_complete() {
        assert_eq!(percent(&stats((60 << 20) - 1, 0, false)), 99);
        assert_eq!(percent(&stats(60 << 20, 0, true)), 100);
        assert_eq!(percent(&stats(0, 0, false)), 0);
    }
}
