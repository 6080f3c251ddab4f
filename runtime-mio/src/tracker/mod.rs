//! `shoal tracker` and `shoal serve`: core's [`TrackerServer`] and a small web server, on
//! a mio event loop and a few UDP threads.
//!
//! One thread runs the event loop: the HTTP listener and every HTTP connection,
//! non-blocking and registered with one [`mio::Poll`], the signals, and the tracker's
//! timer. UDP datagrams are served by `--udp-threads` threads blocked in `recv_from` on
//! the one socket, as opentracker does: a datagram costs two system calls and about a
//! microsecond of tracker work, so a single thread would cap the tracker at one core. The
//! threads share the [`TrackerServer`] behind a mutex, held only for the core's call, never
//! across a system call. Everything is carried as bytes and time: request heads are
//! parsed, announces and scrapes answered, datagrams handled and file answers decided by
//! core ([`shoal_core::tracker::server`], [`shoal_core::webseed::serve`]); what is here is
//! sockets, threads, files and pages.
//!
//! Modules: `conn` (connections: accept, read, answer, write, keep-alive, bounds),
//! `folder` (the `.torrent` folder and the allow file), `page` (the index page, magnet
//! links, URLs), `feed` (`/feed.xml`), and for `shoal serve`: [`content`] (a torrent made
//! for each entry of the served folder), `files` (`/files/…`, the web seed), `sendfile`
//! (file bytes to a socket without a copy), `seeder` (`--seed`).
//!
//! HTTP, per connection: read a request head (at most [`MAX_REQUEST_HEAD`] bytes, else
//! 431), answer, write. Answers held in memory (announces, pages, `.torrent` files,
//! errors) end with `Connection: close`. Files of `shoal serve` keep the connection open
//! when the client allows it (web seeds ask for many ranges of the same files), and
//! requests sent ahead (pipelined) are answered in turn; a request with a body, which is
//! never read, closes it. Paths: `/announce` and `/scrape` (the tracker), `/` (an HTML
//! index: name, size, seeders, leechers, downloads, torrent and magnet links),
//! `/feed.xml`, `/<file>.torrent` (a file of the folder, found by its exact listed name,
//! so no path can reach outside it), `/files/…` (`shoal serve`'s content), anything else
//! 404.
//!
//! Bounds: at most `max_connections` open connections, and at most
//! `max_connections_per_address` from one address (more are answered 503 and closed at
//! once); each must send a whole head within `http_timeout` of being accepted, or of its
//! previous answer being written, and is closed when that passes (slow, silent or idle
//! clients); an answer must keep making progress (each write resets the clock). A
//! connection holds at most one head buffer and one answer; `.torrent` bytes are shared,
//! not copied, between connections, and files are streamed from the page cache, never
//! read into memory. Accepts per wake-up are capped so a flood of connections cannot
//! starve the rest of the loop. UDP: each thread answers one datagram at a time from a
//! fixed buffer.
//!
//! The torrent folder is read at start and looked at again every [`RESCAN_EVERY`], and at
//! once when a request names a `.torrent` file that is in the folder but not yet served: a
//! file put there is served (and its torrent tracked) without a signal. A rescan reads
//! only files that are new or changed (by size and modification time), so an unchanged
//! folder costs a directory listing and a `stat` per file. SIGHUP reads the folder and
//! the `--allow` file again (the allow file is read only then); SIGINT and SIGTERM stop
//! the tracker.

mod conn;
pub mod content;
mod feed;
mod files;
mod folder;
mod page;
mod seeder;
mod sendfile;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use shoal_core::tracker::server::{ServerConfig, TrackerServer};
use shoal_core::InfoHash;

use crate::client::random_u64;
use crate::say;
use conn::Conn;
use folder::{read_allow_file, stamp, Folder};

const HTTP: Token = Token(0);
const SIGNALS: Token = Token(1);
const FIRST_CONN: usize = 16;

/// Connections accepted per wake-up before the others get a turn.
const ACCEPT_BUDGET: usize = 256;
/// The longest the event loop sleeps without looking at the tracker's timer.
const TICK: Duration = Duration::from_secs(1);
/// How often a UDP thread blocked in `recv_from` looks whether it should stop.
const UDP_STOP_CHECK: Duration = Duration::from_millis(200);
/// The largest datagram read; a BEP 15 request is at most a few hundred bytes (a scrape
/// of 74 torrents is 1,496), so anything longer is cut and then refused by the decoder.
const UDP_BUFFER: usize = 2048;
/// Most torrents read from the folder.
const MAX_TORRENTS: usize = 100_000;
/// How often the torrent folder is looked at for new, changed or removed files.
pub const RESCAN_EVERY: Duration = Duration::from_secs(5);

/// Where to listen: an address, or nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

pub(crate) fn parse_listen(s: &str) -> Result<Listen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e}"))?
        .next()
        .map(|a| Listen(Some(a)))
        .ok_or_else(|| format!("{s:?}: no address"))
}

/// The options of `shoal tracker`.
#[derive(clap::Args, Clone, Debug)]
pub struct TrackerArgs {
    /// Serve HTTP announces, scrapes and the torrent pages at this address ("off": no HTTP).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6969", value_parser = parse_listen)]
    pub http: Listen,
    /// Serve UDP announces and scrapes (BEP 15) at this address ("off": no UDP).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6969", value_parser = parse_listen)]
    pub udp: Listen,
    /// Serve the .torrent files of DIR (and an index page) and track only them, unless
    /// --open. Files added, changed or removed later are seen within 5 s (at once when a
    /// new file is asked for); SIGHUP re-reads DIR and the --allow file now.
    #[arg(long, value_name = "DIR")]
    pub torrents: Option<PathBuf>,
    /// Track the info-hashes of FILE (40 hex digits a line); with it or --torrents, only the
    /// listed torrents are tracked, unless --open. Read at start and on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// Track any torrent, even with --torrents or --allow.
    #[arg(long)]
    pub open: bool,
    /// Seconds between a client's announces.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub interval: u64,
    /// Most torrents tracked at once (the least recently announced go first).
    #[arg(long, value_name = "N", default_value_t = 250_000)]
    pub max_torrents: usize,
    /// Most peers of one torrent (the least recently seen go first).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_peers_per_torrent: usize,
    /// Most peers in all.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_peers: usize,
    /// Most peers of one torrent from one host (an IPv4 address or an IPv6 /64; loopback
    /// is exempt).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_peers_per_host_per_torrent: u32,
    /// Most peers from one host in all (loopback is exempt).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_peers_per_host: u32,
    /// Most HTTP connections open at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Most HTTP connections open at once from one address.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections_per_address: usize,
    /// Seconds an HTTP client has to send its request (and to keep reading the answer).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub http_timeout: u64,
    /// Record the address a client names in its announce (`ip`) instead of the one it
    /// connects from.
    #[arg(long)]
    pub allow_ip_param: bool,
    /// Threads answering UDP (default: one per core, at most 4).
    #[arg(long, value_name = "N")]
    pub udp_threads: Option<usize>,
}

impl TrackerArgs {
    /// `shoal tracker`'s defaults, serving HTTP only on `http` with the torrents of
    /// `torrents` (for an embedded tracker).
    pub fn local(http: SocketAddr, torrents: Option<PathBuf>) -> TrackerArgs {
        TrackerArgs {
            http: Listen(Some(http)),
            udp: Listen(None),
            torrents,
            allow: None,
            open: false,
            interval: 1800,
            max_torrents: 250_000,
            max_peers_per_torrent: 100_000,
            max_peers: 1_000_000,
            max_peers_per_host_per_torrent: 16,
            max_peers_per_host: 10_000,
            max_connections: 1024,
            max_connections_per_address: 64,
            http_timeout: 10,
            allow_ip_param: false,
            udp_threads: None,
        }
    }
}

/// Runs `shoal tracker` until SIGINT or SIGTERM.
pub fn run(args: &TrackerArgs) -> Result<(), String> {
    let mut service = TrackerService::new(args)?;
    let mut said = String::from("shoal tracker: listening on");
    if let Some(a) = service.http_addr() {
        let _ = write!(said, " http://{a}/announce");
    }
    if let Some(a) = service.udp_addr() {
        let _ = write!(said, " udp://{a}/announce");
    }
    say::out_line(&said);
    say::out_line(&service.describe_scope());
    service.run().map_err(|e| format!("event loop: {e}"))
}
/// The tracker, shared by the event loop and the UDP threads.
type Shared = Arc<Mutex<TrackerServer>>;

/// The tracker's state, whoever held the lock before: the core does not panic on input, and
/// a panic elsewhere leaves the table consistent between calls.
fn lock(tracker: &Mutex<TrackerServer>) -> MutexGuard<'_, TrackerServer> {
    tracker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tracker, its sockets and its connections.
pub struct TrackerService {
    poll: Poll,
    events: Events,
    tracker: Shared,
    http: Option<TcpListener>,
    udp: Option<std::net::UdpSocket>,
    udp_threads: usize,
    /// SIGINT/SIGTERM stop it and SIGHUP reloads, when run as `shoal tracker`; none when
    /// embedded (see [`TrackerService::embedded`]).
    signals: Option<signal_hook_mio::v1_0::Signals>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    /// Connection deadlines, earliest first.
    deadlines: BTreeSet<(Instant, usize)>,
    folder: Folder,
    torrents_dir: Option<PathBuf>,
    allow_file: Option<PathBuf>,
    /// The allow file's info-hashes as last read (on start and SIGHUP).
    allow_listed: Vec<InfoHash>,
    /// When the folder is looked at next.
    next_scan: Instant,
    max_connections: usize,
    /// Open connections by remote address, none at 0.
    per_address: HashMap<IpAddr, usize>,
    max_per_address: usize,
    http_timeout: Duration,
    /// What `shoal serve` serves besides the torrents; none for `shoal tracker`.
    content: Option<content::Content>,
    /// `shoal serve --seed`: seeds what is served.
    seeder: Option<seeder::Seeder>,
    /// Accepts left over from a wake-up that hit its budget.
    accept_pending: bool,
    stop: bool,
}

impl TrackerService {
    /// A tracker that owns SIGINT, SIGTERM and SIGHUP, for `shoal tracker`.
    pub fn new(args: &TrackerArgs) -> Result<TrackerService, String> {
        Self::build(args, true)
    }

    /// A tracker inside another program (the demo): it leaves the signals alone and runs
    /// until told to stop ([`TrackerService::run_until`]).
    pub fn embedded(args: &TrackerArgs) -> Result<TrackerService, String> {
        Self::build(args, false)
    }

    /// The tracker of `shoal serve`: its torrent folder is `content`'s, whose files it
    /// serves too.
    pub fn serving(
        args: &TrackerArgs,
        content: content::Content,
    ) -> Result<TrackerService, String> {
        let mut args = args.clone();
        args.torrents = Some(content.torrents_dir().to_path_buf());
        let mut service = Self::build(&args, true)?;
        service.content = Some(content);
        Ok(service)
    }

    /// Seeds what is served too, listening for peers on `listen`; returns where it
    /// listens.
    pub fn seed(&mut self, listen: SocketAddr) -> Result<SocketAddr, String> {
        let dir = match &self.content {
            Some(c) => c.dir().to_path_buf(),
            None => return Err("nothing to seed: no content folder".into()),
        };
        let seeder = seeder::Seeder::start(dir, listen)?;
        let addr = seeder.addr();
        seeder.set(
            self.folder
                .torrents
                .iter()
                .map(|t| t.meta.clone())
                .collect(),
        );
        self.seeder = Some(seeder);
        Ok(addr)
    }

    /// Reads the torrent folder again (after a new `.torrent` was put there).
    pub fn rescan(&mut self) -> Result<(), String> {
        self.reload()
    }

    fn build(args: &TrackerArgs, own_signals: bool) -> Result<TrackerService, String> {
        let poll = Poll::new().map_err(|e| e.to_string())?;
        let interval = Duration::from_secs(args.interval.max(1));
        let mut secret = [0u8; 32];
        for chunk in secret.chunks_mut(8) {
            chunk.copy_from_slice(&random_u64().to_le_bytes());
        }
        let config = ServerConfig {
            interval,
            min_interval: interval / 2,
            peer_timeout: interval * 2 + Duration::from_secs(300),
            max_swarms: args.max_torrents,
            max_peers_per_swarm: args.max_peers_per_torrent,
            max_peers: args.max_peers,
            max_peers_per_host_in_swarm: args.max_peers_per_host_per_torrent,
            max_peers_per_host: args.max_peers_per_host,
            open: args.open || (args.torrents.is_none() && args.allow.is_none()),
            allow_ip_param: args.allow_ip_param,
            rng_seed: random_u64(),
            secret,
            ..ServerConfig::default()
        };
        let mut http = match args.http.0 {
            Some(addr) => Some(TcpListener::bind(addr).map_err(|e| format!("HTTP {addr}: {e}"))?),
            None => None,
        };
        let udp = match args.udp.0 {
            Some(addr) => {
                let socket =
                    std::net::UdpSocket::bind(addr).map_err(|e| format!("UDP {addr}: {e}"))?;
                socket
                    .set_read_timeout(Some(UDP_STOP_CHECK))
                    .map_err(|e| e.to_string())?;
                Some(socket)
            }
            None => None,
        };
        if http.is_none() && udp.is_none() {
            return Err("nothing to serve: both --http and --udp are off".into());
        }
        let registry = poll.registry();
        if let Some(l) = &mut http {
            registry
                .register(l, HTTP, Interest::READABLE)
                .map_err(|e| e.to_string())?;
        }
        let signals = if own_signals {
            let mut signals = signal_hook_mio::v1_0::Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGHUP,
            ])
            .map_err(|e| e.to_string())?;
            registry
                .register(&mut signals, SIGNALS, Interest::READABLE)
                .map_err(|e| e.to_string())?;
            Some(signals)
        } else {
            None
        };
        let mut service = TrackerService {
            events: Events::with_capacity(1024),
            tracker: Arc::new(Mutex::new(TrackerServer::new(config, Instant::now()))),
            poll,
            http,
            udp,
            udp_threads: args.udp_threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
            }),
            signals,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            deadlines: BTreeSet::new(),
            folder: Folder::default(),
            torrents_dir: args.torrents.clone(),
            allow_file: args.allow.clone(),
            allow_listed: Vec::new(),
            next_scan: Instant::now() + RESCAN_EVERY,
            max_connections: args.max_connections.max(1),
            per_address: HashMap::new(),
            max_per_address: args.max_connections_per_address.max(1),
            content: None,
            seeder: None,
            http_timeout: Duration::from_secs(args.http_timeout.max(1)),
            accept_pending: false,
            stop: false,
        };
        service.reload()?;
        Ok(service)
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|u| u.local_addr().ok())
    }

    fn describe_scope(&self) -> String {
        let mut s = match &self.torrents_dir {
            Some(dir) => format!(
                "serving {} torrent(s) from {}",
                self.folder.torrents.len(),
                dir.display()
            ),
            None => "no torrent folder".to_string(),
        };
        if lock(&self.tracker).config().open {
            s.push_str("; open: tracking any info-hash");
        } else {
            s.push_str("; tracking only the listed info-hashes");
        }
        s
    }

    /// Reads the torrent folder and the allow file (again), and sets the allow-list.
    fn reload(&mut self) -> Result<(), String> {
        let allow_listed = match &self.allow_file {
            Some(file) => read_allow_file(file)?,
            None => Vec::new(),
        };
        let folder = match &self.torrents_dir {
            Some(dir) => Folder::read(dir, Folder::default())?,
            None => Folder::default(),
        };
        self.allow_listed = allow_listed;
        self.set_folder(folder);
        Ok(())
    }

    fn set_folder(&mut self, folder: Folder) {
        let mut allowed: Vec<InfoHash> = folder.torrents.iter().map(|t| t.meta.info_hash).collect();
        allowed.extend_from_slice(&self.allow_listed);
        self.folder = folder;
        self.next_scan = Instant::now() + RESCAN_EVERY;
        if let Some(seeder) = &self.seeder {
            seeder.set(
                self.folder
                    .torrents
                    .iter()
                    .map(|t| t.meta.clone())
                    .collect(),
            );
        }
        lock(&self.tracker).set_allowed(allowed);
    }

    /// Looks at the torrent folder again: new and changed files are read, removed ones
    /// dropped, the others kept as they are. A folder that cannot be listed keeps the
    /// torrents served.
    fn rescan_folder(&mut self) {
        let Some(dir) = self.torrents_dir.clone() else {
            return;
        };
        let before: BTreeSet<String> = self.folder.by_file.keys().cloned().collect();
        match Folder::read(&dir, std::mem::take(&mut self.folder)) {
            Ok(folder) => {
                for name in folder.by_file.keys().filter(|n| !before.contains(*n)) {
                    say::out_line(&format!("shoal tracker: serving {name}"));
                }
                for name in before.iter().filter(|n| !folder.by_file.contains_key(*n)) {
                    say::out_line(&format!("shoal tracker: no longer serving {name}"));
                }
                self.set_folder(folder);
            }
            Err(e) => {
                say::err_line(&format!("shoal tracker: {e}; keeping the torrents served"));
                self.next_scan = Instant::now() + RESCAN_EVERY;
            }
        }
    }

    /// A request named `file`, which is not served: if the folder holds such a file,
    /// new or changed since it was last looked at, look at the folder again now.
    fn rescan_for(&mut self, file: &str) {
        let Some(dir) = &self.torrents_dir else {
            return;
        };
        let plain_name = !file.is_empty()
            && file.ends_with(".torrent")
            && !file.contains(['/', '\\', '\0'])
            && !file.starts_with('.');
        if !plain_name {
            return;
        }
        let Ok(meta) = std::fs::metadata(dir.join(file)) else {
            return;
        };
        if meta.is_file() && self.folder.skipped.get(file) != Some(&stamp(&meta)) {
            self.rescan_folder();
        }
    }

    /// Serves until SIGINT or SIGTERM.
    pub fn run(&mut self) -> io::Result<()> {
        self.run_until(&AtomicBool::new(false))
    }

    /// Serves until `stop` is set (checked at least every `TICK`), or a signal says so.
    pub fn run_until(&mut self, halt: &AtomicBool) -> io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        if let Some(socket) = &self.udp {
            for n in 0..self.udp_threads.max(1) {
                let socket = socket.try_clone()?;
                let (tracker, stop) = (self.tracker.clone(), stop.clone());
                workers.push(
                    std::thread::Builder::new()
                        .name(format!("udp-{n}"))
                        .spawn(move || serve_udp(&socket, &tracker, &stop))?,
                );
            }
        }
        let mut result = Ok(());
        while !self.stop && !halt.load(Ordering::Relaxed) && result.is_ok() {
            result = self.turn();
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.join();
        }
        result
    }

    fn turn(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let mut wake = lock(&self.tracker).poll_timeout();
        if let Some(&(deadline, _)) = self.deadlines.first() {
            wake = Some(wake.map_or(deadline, |w| w.min(deadline)));
        }
        // The UDP threads change the table behind the loop's back (a first swarm makes the
        // timer due where there was none): look at it again at least every `TICK`.
        let timeout = if self.accept_pending {
            Duration::ZERO
        } else {
            wake.map_or(TICK, |w| w.saturating_duration_since(now).min(TICK))
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let ready: Vec<Token> = self.events.iter().map(|e| e.token()).collect();
        for token in ready {
            match token {
                HTTP => self.accept_pending = true,
                SIGNALS => self.signals(),
                Token(t) if t >= FIRST_CONN => self.drive(t - FIRST_CONN),
                Token(_) => {}
            }
        }
        if self.accept_pending {
            self.accept();
        }
        let now = Instant::now();
        while let Some(&(deadline, slot)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            // Silent, slow or stuck: no answer is owed.
            self.close(slot);
        }
        if self.torrents_dir.is_some() && now >= self.next_scan {
            if let Some(content) = &mut self.content {
                content.rescan();
            }
            self.rescan_folder();
        }
        let mut tracker = lock(&self.tracker);
        if tracker.poll_timeout().is_some_and(|t| t <= now) {
            tracker.handle_timeout(now);
        }
        Ok(())
    }

    fn signals(&mut self) {
        let pending: Vec<i32> = match &mut self.signals {
            Some(signals) => signals.pending().collect(),
            None => return,
        };
        for signal in pending {
            if signal == signal_hook::consts::SIGHUP {
                match self.reload() {
                    Ok(()) => say::out_line(&format!(
                        "shoal tracker: reloaded; {}",
                        self.describe_scope()
                    )),
                    Err(e) => say::err_line(&format!(
                        "shoal tracker: reload failed, keeping the old list: {e}"
                    )),
                }
            } else {
                self.stop = true;
            }
        }
    }
}

/// One UDP thread: answers datagrams until `stop`.
fn serve_udp(socket: &std::net::UdpSocket, tracker: &Mutex<TrackerServer>, stop: &AtomicBool) {
    let mut buf = [0u8; UDP_BUFFER];
    while !stop.load(Ordering::Relaxed) {
        // An error is the read timeout (time to look at `stop`) or one queued by ICMP (a
        // client's port unreachable), which concerns one datagram: either way, go on.
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let answer = lock(tracker).handle_udp(from, &buf[..n], Instant::now());
            if let Some(answer) = answer {
                // A failed send loses the answer; the client asks again.
                let _ = socket.send_to(&answer, from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("off"), Ok(Listen(None)));
        assert_eq!(
            parse_listen("127.0.0.1:1"),
            Ok(Listen(Some("127.0.0.1:1".parse().unwrap())))
        );
        assert!(parse_listen("nope").is_err());
    }
}
