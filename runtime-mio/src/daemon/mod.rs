//! `shoal daemon`: many torrents in one long-running process, driven over HTTP.
//!
//! Three kinds of thread:
//!
//! - **the loop** (this module): owns the [`Runtime`] and the torrent list
//!   ([`torrents::Torrents`]; magnet links' torrents until their metadata is in:
//!   [`magnets`]); turns the runtime, carries out control calls sent to it, saves resume
//!   records and the list as it goes;
//! - **the opener**: takes each torrent's folder ([`shoal_io::open_download`]: lock,
//!   resume record or hash check, refusal of files in the way) one at a time, so a big
//!   check never stalls the loop or the control server;
//! - **the control server** ([`server`]): the page and the Transmission RPC;
//! - **the feed poller** ([`feeds`]): fetches due feeds, adds what they newly offer.
//!
//! The state folder (see [`shoal_daemon::state`]) holds the list, the `.torrent` files,
//! the DHT's routing table (`dht.state`, saved at a clean stop; one DHT node serves every
//! torrent) and the address bound; it is locked while the daemon runs. A clean stop (SIGINT, SIGTERM)
//! tells trackers, finishes writes and saves every resume record; after a `kill -9` the
//! next start finds the list and each folder's resume record (or hashes what is there),
//! so no verified piece is downloaded again.

pub mod feeds;
pub mod magnets;
pub mod server;
pub mod torrents;

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use shoal_daemon::api::Api;
use shoal_daemon::guard::Guard;
use shoal_daemon::state::{write_atomic, StateDir};

use crate::runtime::{Runtime, RuntimeConfig};
use crate::say;
use torrents::{OpenJob, Opened, Torrents};

/// Transmission's control address, which remotes try first.
pub const DEFAULT_RPC: &str = "127.0.0.1:9091";

/// What `shoal daemon` is told.
#[derive(Clone, Debug)]
pub struct Options {
    /// The state folder; `$XDG_STATE_HOME/shoal` if `None`.
    pub state: Option<PathBuf>,
    /// Where the control server listens; if `None`, where it was last told to, or
    /// [`DEFAULT_RPC`].
    pub rpc: Option<SocketAddr>,
    /// `user:password` required of every request.
    pub rpc_auth: Option<String>,
    /// Where content goes unless an add says otherwise; kept in the state folder.
    pub download_dir: Option<PathBuf>,
    /// The peer port (0: any); none: 6881 or the next free one up to 6889.
    pub port: Option<u16>,
    /// The address peers reach us at.
    pub bind: std::net::IpAddr,
    /// How often feeds are polled.
    pub feed_interval: Duration,
    /// The DHT: one node for every torrent, its table kept in the state folder.
    pub dht: crate::client::Dht,
}

/// A message for the loop.
pub enum Msg {
    /// A control call from a connection thread.
    Call(Box<dyn FnOnce(&mut Torrents) + Send>),
    /// The opener's answer.
    Opened(shoal_daemon::control::Id, Opened),
    /// `session-close` was answered: stop as on SIGTERM.
    Close,
}

/// The state folder of `opts` (or the default one).
pub fn state_dir(state: Option<&PathBuf>) -> Result<StateDir, String> {
    match state {
        Some(p) => Ok(StateDir::new(p)),
        None => StateDir::default_path()
            .map(StateDir::new)
            .ok_or_else(|| "no state folder: set XDG_STATE_HOME or HOME, or give --state".into()),
    }
}

pub fn run(opts: &Options) -> Result<(), String> {
    let dir = state_dir(opts.state.as_ref())?;
    std::fs::create_dir_all(dir.root()).map_err(|e| format!("{}: {e}", dir.root().display()))?;
    let _lock = lock_state(&dir)?;
    let (store, mut state) = shoal_daemon::store::Store::open(dir.clone())?;
    if let Some(d) = &opts.download_dir {
        let d = std::path::absolute(d).map_err(|e| format!("{}: {e}", d.display()))?;
        state.settings.download_dir = d.to_string_lossy().into_owned();
    }
    if state.settings.download_dir.is_empty() {
        state.settings.download_dir = default_download_dir()?.to_string_lossy().into_owned();
    }
    let rpc = match opts.rpc {
        Some(a) => a,
        None => state
            .settings
            .rpc_address
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| DEFAULT_RPC.parse().expect("a valid address")),
    };
    state.settings.rpc_address = Some(rpc.to_string());
    let auth = credentials(&dir, rpc, opts.rpc_auth.as_deref())?;
    let listener = TcpListener::bind(rpc).map_err(|e| {
        format!(
            "cannot listen for control on {rpc}: {e} (another daemon or Transmission? choose \
             another address with --rpc)"
        )
    })?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;

    let mut rt = listen(opts, &state.settings)?;
    rt.catch_signals().map_err(|e| e.to_string())?;
    opts.dht.start(&mut rt, Some(dir.root()));
    let (tx, rx) = mpsc::channel::<Msg>();
    let (open_tx, open_rx) = mpsc::channel::<OpenJob>();
    let waker = rt.waker();
    {
        let (tx, waker) = (tx.clone(), waker.clone());
        std::thread::Builder::new()
            .name("shoal-open".into())
            .spawn(move || opener(open_rx, tx, waker))
            .map_err(|e| e.to_string())?;
    }
    let peer_addr = rt.local_addr();
    let mut torrents = Torrents::new(rt, dir.clone(), store, state, open_tx);
    torrents.set_feed_interval(opts.feed_interval);
    {
        let (tx, waker) = (tx.clone(), waker.clone());
        std::thread::Builder::new()
            .name("shoal-feeds".into())
            .spawn(move || feeds::poller(tx, waker))
            .map_err(|e| e.to_string())?;
    }
    let session_id = format!(
        "{:016x}{:016x}",
        crate::client::random_u64(),
        crate::client::random_u64()
    );
    let api = Arc::new(Api::new(Guard::new(bound, session_id, auth)));
    {
        let (tx, waker) = (tx.clone(), waker.clone());
        std::thread::Builder::new()
            .name("shoal-rpc-listen".into())
            .spawn(move || server::serve(listener, api, tx, waker))
            .map_err(|e| e.to_string())?;
    }
    drop(tx);
    write_atomic(&dir.address_file(), format!("{bound}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", dir.address_file().display()))?;
    say::err_line(&format!(
        "shoal daemon: control on http://{bound}/ (Transmission RPC at /transmission/rpc), \
         peers on {peer_addr}, state in {}",
        dir.root().display()
    ));
    torrents.schedule();
    let result = drive(&mut torrents, &rx);
    say::err_line("stopping…");
    let _ = std::fs::remove_file(dir.address_file());
    if let Err(e) = torrents.rt.save_dht() {
        say::err_line(&format!("the DHT's table was not saved: {e}"));
    }
    torrents.shutdown();
    result
}

fn drive(torrents: &mut Torrents, rx: &Receiver<Msg>) -> Result<(), String> {
    loop {
        let events = torrents
            .rt
            .turn(Some(Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        for event in events {
            torrents.event(event);
        }
        for w in torrents.rt.take_warnings() {
            say::err_line(&w);
        }
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Call(f) => f(torrents),
                Msg::Opened(id, result) => torrents.opened(id, result),
                Msg::Close => return Ok(()),
            }
        }
        torrents.tick();
        if torrents.rt.interrupted() {
            return Ok(());
        }
    }
}

/// Opens torrents' folders one after the other, off the loop.
fn opener(jobs: Receiver<OpenJob>, tx: mpsc::Sender<Msg>, waker: Arc<mio::Waker>) {
    for job in jobs {
        let result = shoal_io::open_download(&job.dir, job.meta, false, |_, _| {})
            .map_err(|e| e.to_string());
        if tx.send(Msg::Opened(job.id, result)).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

/// Takes the state folder's lock (one daemon per folder) and writes our process id in it.
fn lock_state(dir: &StateDir) -> Result<File, String> {
    let path = dir.lock_file();
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::Write;
            let noted = file
                .set_len(0)
                .and_then(|()| writeln!(file, "{}", std::process::id()));
            noted.map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another shoal daemon runs on {} (its address is in {})",
            dir.root().display(),
            dir.address_file().display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: {e}", path.display())),
    }
}

/// The credentials to require: `--rpc-auth`, or, listening beyond loopback without it,
/// ones generated once and kept in the state folder (mode 0600).
fn credentials(
    dir: &StateDir,
    rpc: SocketAddr,
    given: Option<&str>,
) -> Result<Option<String>, String> {
    if let Some(a) = given {
        if !a.contains(':') {
            return Err("--rpc-auth takes USER:PASSWORD".into());
        }
        return Ok(Some(a.to_string()));
    }
    if rpc.ip().is_loopback() {
        return Ok(None);
    }
    let path = dir.auth_file();
    if let Ok(text) = std::fs::read_to_string(&path) {
        if text.trim().contains(':') {
            return Ok(Some(text.trim().to_string()));
        }
    }
    let made = format!("shoal:{:016x}", crate::client::random_u64());
    write_atomic(&path, format!("{made}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    say::err_line(&format!(
        "listening beyond loopback: credentials required; generated ones are in {}",
        path.display()
    ));
    Ok(Some(made))
}

/// `$XDG_DOWNLOAD_DIR`, or `~/Downloads`.
fn default_download_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join("Downloads"))
        .ok_or_else(|| "no download folder: give --download-dir".into())
}

/// The runtime on the peer port asked for, or the first free one of 6881-6889.
fn listen(opts: &Options, settings: &shoal_daemon::control::Settings) -> Result<Runtime, String> {
    let ports: Vec<u16> = match opts.port {
        Some(p) => vec![p],
        None => (crate::client::DEFAULT_PORT..crate::client::DEFAULT_PORT + 9).collect(),
    };
    let mut last = String::new();
    for port in ports {
        let config = RuntimeConfig {
            listen: SocketAddr::new(opts.bind, port),
            workers: 2,
            engine: shoal_core::engine::EngineConfig {
                peer_id: crate::client::random_peer_id(),
                rng_seed: crate::client::random_u64(),
                max_connections: settings.peer_limit_global,
                max_peers_per_torrent: settings.peer_limit_per_torrent,
                ..Default::default()
            },
        };
        match Runtime::new(config) {
            Ok(rt) => return Ok(rt),
            Err(e) => last = format!("cannot listen for peers on {}:{port}: {e}", opts.bind),
        }
    }
    Err(last)
}
