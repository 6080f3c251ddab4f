//! The embeddable client: a [`Session`] and what goes in and out of it.
//!
//! A session is one engine (one listening port, one peer id) and any number of torrents,
//! each downloaded into its own folder. Every method is a message to the engine's task and
//! its answer, so a [`Session`] is a cheap handle: clone it into as many tasks as you like.
//! When the last handle is dropped the session shuts down as [`Session::shutdown`] does.
//!
//! Torrents are named by [`TorrentKey`]s, which stay the same across
//! [`pause`](Session::pause) and [`resume`](Session::resume). Pausing takes the torrent out
//! of the engine (its connections close, its trackers hear `stopped`) and keeps its
//! verified pieces and open files; resuming puts it back with those pieces, so nothing
//! verified is fetched or checked again.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender, WeakSender};
use async_io::Async;
use shoal_core::engine::{AddTorrentError, CloseReason, EngineConfig, RateLimits, TorrentStats};
use shoal_core::metainfo::{Metainfo, MetainfoError};
use shoal_core::tracker::TrackerError;
use shoal_core::webseed::WebSeedError;
use shoal_core::{InfoHash, IoError, PeerId, PieceIndex};

use crate::driver::{Command, Driver};
use crate::executor::Executor;

/// A torrent's name in a [`Session`]: stable for the life of the session, across pause and
/// resume; never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TorrentKey(pub(crate) u64);

impl fmt::Display for TorrentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "torrent #{}", self.0)
    }
}

/// Where a torrent's metainfo comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorrentSource {
    /// A `.torrent` file.
    File(PathBuf),
    /// The bytes of a `.torrent`.
    Bytes(Vec<u8>),
    /// An `http://` or `https://` URL serving a `.torrent`.
    Url(String),
}

impl TorrentSource {
    /// What a user typed: an `http(s)://` URL, or else a path (the rule of
    /// [`shoal_io::load_torrent`]).
    ///
    /// ```
    /// use shoal_async_std::TorrentSource;
    ///
    /// assert!(matches!(TorrentSource::from_arg("https://example.org/a.torrent"), TorrentSource::Url(_)));
    /// assert!(matches!(TorrentSource::from_arg("a.torrent"), TorrentSource::File(_)));
    /// ```
    pub fn from_arg(arg: &str) -> TorrentSource {
        if shoal_io::is_url(arg) {
            TorrentSource::Url(arg.to_string())
        } else {
            TorrentSource::File(PathBuf::from(arg))
        }
    }

    /// Reads, fetches or parses it. Blocks: call it on a blocking pool.
    fn load(self) -> Result<Metainfo, Error> {
        match self {
            // Read as `shoal` reads its argument: a magnet link or an `ftp://` URL given
            // as a path is named as such, not reported as a missing file.
            TorrentSource::File(path) => match path.to_str() {
                Some(arg) if !shoal_io::is_url(arg) => shoal_io::load_torrent(arg)
                    .map(|(meta, _)| meta)
                    .map_err(Error::Io),
                _ => shoal_io::read_torrent(&path).map_err(Error::Io),
            },
            TorrentSource::Url(url) => shoal_io::load_torrent(&url)
                .map(|(meta, _)| meta)
                .map_err(Error::Io),
            TorrentSource::Bytes(bytes) => Metainfo::parse(&bytes).map_err(Error::Metainfo),
        }
    }
}

impl From<&str> for TorrentSource {
    fn from(arg: &str) -> Self {
        TorrentSource::from_arg(arg)
    }
}

impl From<String> for TorrentSource {
    fn from(arg: String) -> Self {
        TorrentSource::from_arg(&arg)
    }
}

impl From<&Path> for TorrentSource {
    fn from(path: &Path) -> Self {
        TorrentSource::File(path.to_path_buf())
    }
}

impl From<PathBuf> for TorrentSource {
    fn from(path: PathBuf) -> Self {
        TorrentSource::File(path)
    }
}

impl From<Vec<u8>> for TorrentSource {
    fn from(bytes: Vec<u8>) -> Self {
        TorrentSource::Bytes(bytes)
    }
}

/// When a complete torrent stops seeding (the rule both runtimes share, from the core).
/// Both unset (the default): it seeds until paused or removed.
///
/// ```
/// use std::time::Duration;
/// use shoal_async_std::{SeedLimit, TorrentStats};
///
/// let stats = TorrentStats {
///     pieces_verified: 4, piece_count: 4, bytes_verified: 1000, total_length: 1000,
///     downloaded: 1000, uploaded: 1500, download_rate: 0, upload_rate: 0, peers: 1,
///     complete: true,
/// };
/// let ratio = SeedLimit { ratio: Some(1.0), time: None };
/// assert!(ratio.reached(&stats, Duration::ZERO));
/// assert!(!SeedLimit::default().reached(&stats, Duration::MAX)); // seeds forever
/// ```
pub use shoal_core::engine::SeedLimit;

/// How a torrent is added.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// Peers to dial (besides what the trackers give).
    pub peers: Vec<SocketAddr>,
    /// Download pieces in order, for streaming.
    pub sequential: bool,
    /// When a complete torrent is paused ([`Event::SeedingDone`]).
    pub seed_limit: SeedLimit,
    /// Replace files in the folder that have the torrent's file names but not its data;
    /// without it they are an error (`shoal_io::Error::InTheWay`) and nothing is touched.
    pub overwrite: bool,
}

/// Settings of a [`Session`]. `Default` gives what a desktop client would use, with a
/// random peer id and random seed.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Where to accept peers (TCP) and tracker answers (UDP); port 0 picks a free one.
    pub listen: SocketAddr,
    /// Threads of the blocking pool doing disk IO and SHA-1 at once.
    pub workers: usize,
    /// Bounds of the bytes between sockets and disk (`shoal_io::budget`): read from
    /// sockets and not yet through the engine, held in memory until their piece is hashed
    /// (then written only if good), queued for the disk. Past `high` the session stops
    /// reading peers' sockets until the disk has caught up to `low`.
    pub disk: shoal_io::DiskLimits,
    /// How often a running torrent's resume record is saved (when it gained pieces).
    pub resume_interval: Duration,
    /// How long [`Session::shutdown`] waits for trackers to hear `stopped` and peers to be
    /// told goodbye. Writes still queued are always finished, however long they take.
    pub shutdown_grace: Duration,
    /// Events kept for a slow reader of [`Session::events`]; past this the oldest are
    /// dropped (the session never waits for its reader).
    pub event_capacity: usize,
    /// The engine's settings. `listen_port` is set from `listen`. Message stream
    /// encryption (MSE/PE) is `engine.encryption` (default: accept both, dial plaintext).
    pub engine: EngineConfig,
    /// The Mainline DHT (BEP 5) on the session's UDP socket: peers for every torrent that
    /// is not private, magnet links with no tracker and no peer included. Off (`None`)
    /// unless set, since it talks to nodes all over the Internet:
    /// `Some(DhtSettings::default())` starts from the well-known routers.
    pub dht: Option<DhtSettings>,
}

/// Where a session's DHT starts from and keeps its table.
#[derive(Clone, Debug)]
pub struct DhtSettings {
    /// Nodes to start from, `HOST:PORT` (none: the node only answers, and learns the
    /// nodes that reach it). Names are resolved in the background; failures are harmless.
    /// Default: those of `SHOAL_DHT_BOOTSTRAP` if it is set, else
    /// router.bittorrent.com:6881, dht.transmissionbt.com:6881 and
    /// router.utorrent.com:6881.
    pub bootstrap: Vec<String>,
    /// A folder to read the routing table from at the start and save it in (`dht.state`)
    /// when the session ends; `None`: not kept.
    pub state: Option<PathBuf>,
}

impl Default for DhtSettings {
    fn default() -> Self {
        DhtSettings {
            bootstrap: shoal_io::dht::bootstrap_list(&[]),
            state: None,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 6881)),
            workers: 2,
            disk: shoal_io::DiskLimits::default(),
            resume_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            event_capacity: 4096,
            engine: EngineConfig {
                peer_id: shoal_io::random_peer_id(),
                rng_seed: shoal_io::random_u64(),
                ..EngineConfig::default()
            },
            dht: None,
        }
    }
}

/// What a session tells its user, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Checking the data already on disk, before the torrent starts: `done` of `total`
    /// pieces (a trusted resume record makes this one event with `done == total`).
    Checking {
        torrent: TorrentKey,
        done: u32,
        total: u32,
    },
    /// Once a second for a magnet link's torrent while its metadata is fetched: the peers
    /// connected, the bytes of metadata in, and its size once a peer has said.
    FetchingMetadata {
        torrent: TorrentKey,
        peers: usize,
        received: u64,
        size: Option<u64>,
    },
    /// A magnet link's metadata is in and checked; its folder is being opened (`Checking`
    /// events follow), and its `.torrent` saved as `DIR/.shoal/<info-hash>.torrent`.
    MetadataReceived {
        torrent: TorrentKey,
        name: String,
    },
    /// Once a second for a running torrent. `downloaded` and `uploaded` count every run
    /// of the torrent in this session, across pauses.
    Progress {
        torrent: TorrentKey,
        stats: TorrentStats,
    },
    PieceVerified {
        torrent: TorrentKey,
        piece: PieceIndex,
    },
    /// A piece's data did not match its hash; it is fetched again.
    HashFailed {
        torrent: TorrentKey,
        piece: PieceIndex,
    },
    /// A file has every piece verified and now has its final name (no `.part`).
    FileCompleted {
        torrent: TorrentKey,
        file: usize,
        path: PathBuf,
    },
    /// Every piece is verified.
    Completed {
        torrent: TorrentKey,
    },
    /// The torrent's [`SeedLimit`] is reached: it is paused.
    SeedingDone {
        torrent: TorrentKey,
    },
    PeerConnected {
        torrent: TorrentKey,
        addr: SocketAddr,
        peer_id: PeerId,
        /// Plaintext, or after a message stream encryption handshake (and then RC4 or not).
        stream: shoal_core::engine::PeerStream,
    },
    /// `torrent` is `None` for a peer that left before naming a torrent.
    PeerClosed {
        torrent: Option<TorrentKey>,
        addr: SocketAddr,
        reason: CloseReason,
    },
    /// A peer took part in too many pieces that failed their hash checks.
    PeerBanned {
        torrent: TorrentKey,
        ip: std::net::IpAddr,
    },
    TrackerAnswer {
        torrent: TorrentKey,
        url: String,
        peers: usize,
        seeders: Option<u32>,
        leechers: Option<u32>,
        warning: Option<String>,
    },
    /// A tracker could not be reached or refused us, `failures` times in a row
    /// ([`TrackerError::Failure`] when it refused and said why).
    TrackerError {
        torrent: TorrentKey,
        url: String,
        error: TrackerError,
        failures: u32,
        /// When the next announce is due, if any.
        next_try: Option<std::time::Instant>,
    },
    /// A web seed (BEP 19) failed, `failures` times in a row; it is asked again at
    /// `retry_at`, or dropped if `None` ([`Event::WebSeedDropped`] follows).
    WebSeedError {
        torrent: TorrentKey,
        url: String,
        reason: WebSeedError,
        failures: u32,
        retry_at: Option<std::time::Instant>,
    },
    /// A web seed is given up: its URL is unusable, or it failed too often.
    WebSeedDropped {
        torrent: TorrentKey,
        url: String,
        reason: WebSeedError,
    },
    /// A DHT lookup for the torrent ended: it found `peers` peers (each dialled as it
    /// came) and announced us to `announced` nodes.
    DhtAnswer {
        torrent: TorrentKey,
        peers: usize,
        announced: usize,
    },
    /// A disk read or write failed: the torrent asks for no more data (pause and resume it
    /// once the cause is fixed).
    StorageError {
        torrent: TorrentKey,
        error: IoError,
    },
    /// Something failed that stops nothing (a resume record not saved). `torrent` is
    /// `TorrentKey(0)`, which names no torrent, for the session's own (the DHT's table not
    /// saved at the end).
    Warning {
        torrent: TorrentKey,
        message: String,
    },
    Paused {
        torrent: TorrentKey,
    },
    Resumed {
        torrent: TorrentKey,
    },
    /// Removed, its files synced and its resume record saved.
    Removed {
        torrent: TorrentKey,
    },
}

/// Whether a torrent is in the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
}

/// A torrent's state and figures, from [`Session::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub state: State,
    pub name: String,
    pub info_hash: InfoHash,
    /// `downloaded` and `uploaded` count every run of the torrent in this session; a
    /// paused torrent has no rates and no peers.
    pub progress: TorrentStats,
}

/// Why a session call failed.
#[derive(Debug)]
pub enum Error {
    /// Reading or fetching the torrent, opening or checking its files.
    Io(shoal_io::Error),
    /// The bytes given are not a torrent.
    Metainfo(MetainfoError),
    /// The text given is not a usable magnet link.
    Magnet(shoal_core::magnet::MagnetError),
    /// The engine refused the torrent.
    Engine(AddTorrentError),
    /// The torrent (same info-hash) is already in the session, under this key.
    AlreadyAdded(TorrentKey),
    NoSuchTorrent(TorrentKey),
    /// The session has shut down.
    Closed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => e.fmt(f),
            Error::Metainfo(e) => write!(f, "not a torrent: {e}"),
            Error::Magnet(e) => e.fmt(f),
            Error::Engine(e) => e.fmt(f),
            Error::AlreadyAdded(key) => write!(f, "the torrent is already added as {key}"),
            Error::NoSuchTorrent(key) => write!(f, "no {key} in this session"),
            Error::Closed => f.write_str("the session has shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Metainfo(e) => Some(e),
            Error::Magnet(e) => Some(e),
            Error::Engine(e) => Some(e),
            _ => None,
        }
    }
}

/// A BitTorrent client: one engine, its sockets and its torrents, run by tasks on an
/// [`Executor`]. See the [module docs](self).
///
/// ```no_run
/// use shoal_async_std::{AddOptions, Event, Executor, Session, SessionConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// async_std::task::block_on(async {
///     let session = Session::new(SessionConfig::default(), Executor::async_std())?;
///     let events = session.events();
///     let torrent = session
///         .add_torrent("https://example.org/debian.iso.torrent", "downloads", AddOptions::default())
///         .await?;
///     while let Ok(event) = events.recv().await {
///         match event {
///             Event::Progress { stats, .. } => {
///                 println!("{}/{} pieces", stats.pieces_verified, stats.piece_count)
///             }
///             Event::Completed { torrent: t } if t == torrent => break,
///             _ => {}
///         }
///     }
///     session.shutdown().await;
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    commands: Sender<Command>,
    events: Receiver<Event>,
    /// For `Checking` events, sent from the blocking pool; weak, so the channel closes
    /// when the engine's task ends.
    events_tx: WeakSender<Event>,
    local_addr: SocketAddr,
    next_key: AtomicU64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Binds the listening sockets and starts the engine's task on `executor`. Call it
    /// from anywhere: it does not need to run inside the executor.
    ///
    /// ```
    /// use shoal_async_std::{Executor, Session, SessionConfig};
    ///
    /// let config = SessionConfig {
    ///     listen: "127.0.0.1:0".parse().unwrap(),
    ///     ..SessionConfig::default()
    /// };
    /// let session = Session::new(config, Executor::async_std())?;
    /// assert_ne!(session.local_addr().port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(mut config: SessionConfig, executor: Executor) -> io::Result<Session> {
        let listener = Async::<TcpListener>::bind(config.listen)?;
        let local_addr = listener.get_ref().local_addr()?;
        let udp = Async::<UdpSocket>::bind(local_addr)?;
        // Local service discovery (BEP 14) only when asked for: it joins a multicast group
        // and sends beyond the machine.
        let lsd = match config.engine.lsd {
            true => Some(Async::new(shoal_io::lsd_socket(config.listen.ip())?)?),
            false => None,
        };
        config.engine.listen_port = local_addr.port();
        let (commands, command_rx) = async_channel::unbounded();
        let (events_tx, events) = async_channel::bounded(config.event_capacity.max(1));
        let shared = Shared {
            commands,
            events,
            events_tx: events_tx.downgrade(),
            local_addr,
            next_key: AtomicU64::new(1),
        };
        let driver = Driver::new(
            config,
            executor.clone(),
            listener,
            udp,
            lsd,
            command_rx,
            events_tx,
        );
        executor.spawn(driver.run());
        Ok(Session {
            shared: Arc::new(shared),
        })
    }

    /// The address peers reach us at.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The session's events. Every clone of the receiver reads the same queue (each event
    /// goes to one reader). It ends once the session has shut down.
    ///
    /// ```
    /// use shoal_async_std::{Executor, Session, SessionConfig};
    ///
    /// smol::block_on(async {
    ///     let config = SessionConfig {
    ///         listen: "127.0.0.1:0".parse().unwrap(),
    ///         ..SessionConfig::default()
    ///     };
    ///     let session = Session::new(config, Executor::new(|t| smol::spawn(t).detach()))?;
    ///     let events = session.events();
    ///     session.shutdown().await;
    ///     while let Ok(event) = events.recv().await {
    ///         println!("{event:?}");
    ///     }
    ///     // The loop ended: the session is gone.
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn events(&self) -> Receiver<Event> {
        self.shared.events.clone()
    }

    /// Adds a torrent, its content in `dir/<name>`: loads the metainfo (reading the file,
    /// fetching the URL), opens or creates the files (`.part` names until complete),
    /// checks what is already there (a resume record it can trust, or hashing), and starts
    /// it. Returns once it runs.
    ///
    /// ```no_run
    /// # use shoal_async_std::{AddOptions, Session, TorrentSource};
    /// # async fn demo(session: Session) -> Result<(), shoal_async_std::Error> {
    /// // From a file, from an http(s) URL, or from bytes in hand:
    /// let a = session.add_torrent("a.torrent", "downloads", AddOptions::default()).await?;
    /// let b = session
    ///     .add_torrent("https://example.org/b.torrent", "downloads", AddOptions::default())
    ///     .await?;
    /// let bytes = std::fs::read("c.torrent").unwrap();
    /// let c = session
    ///     .add_torrent(TorrentSource::Bytes(bytes), "downloads", AddOptions::default())
    ///     .await?;
    /// # let _ = (a, b, c);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn add_torrent(
        &self,
        source: impl Into<TorrentSource>,
        dir: impl Into<PathBuf>,
        options: AddOptions,
    ) -> Result<TorrentKey, Error> {
        let source = source.into();
        let dir = dir.into();
        let key = TorrentKey(self.shared.next_key.fetch_add(1, Ordering::Relaxed));
        let meta = Arc::new(blocking::unblock(move || source.load()).await?);
        let info_hash = meta.info_hash;
        if let Some(existing) = self
            .call(|reply| Command::Find { info_hash, reply })
            .await?
        {
            return Err(Error::AlreadyAdded(existing));
        }
        let events = self.shared.events_tx.clone();
        let opened = meta.clone();
        let overwrite = options.overwrite;
        let download = blocking::unblock(move || {
            shoal_io::open_download(&dir, opened, overwrite, |done, total| {
                // About a hundred events for a whole check.
                if done == total || done % (total / 100).max(1) == 0 {
                    if let Some(events) = events.upgrade() {
                        let _ = events.force_send(Event::Checking {
                            torrent: key,
                            done,
                            total,
                        });
                    }
                }
            })
            .map_err(Error::Io)
        })
        .await?;
        self.call(|reply| Command::Add {
            key,
            download,
            options,
            reply,
        })
        .await?
    }

    /// Adds a torrent from a magnet link (`magnet:?xt=urn:btih:…`): its metadata is fetched
    /// from the link's peers (`x.pe`, and `options.peers`) and trackers (`tr`)
    /// ([`Event::FetchingMetadata`], then [`Event::MetadataReceived`]), saved as
    /// `DIR/.shoal/<info-hash>.torrent`, and the torrent then downloads into `dir` like
    /// one added with [`add_torrent`](Self::add_torrent). A `.torrent` saved there by an
    /// earlier run is used instead of fetching again. Errors only for a link that does
    /// not parse or a torrent already added; the metadata's own troubles come as
    /// [`Event::Warning`] (and the torrent is removed). Until its folder is open, the
    /// torrent is listed by [`torrents`](Self::torrents) and can be removed, while
    /// [`stats`](Self::stats), [`pause`](Self::pause) and [`metainfo`](Self::metainfo)
    /// answer [`Error::NoSuchTorrent`].
    pub async fn add_magnet(
        &self,
        link: &str,
        dir: impl Into<PathBuf>,
        mut options: AddOptions,
    ) -> Result<TorrentKey, Error> {
        let magnet = shoal_core::magnet::Magnet::parse(link).map_err(Error::Magnet)?;
        let dir = dir.into();
        // Host names in `x.pe` are resolved on the blocking pool; one that does not
        // resolve is left out (the others and the trackers may do).
        let named = magnet.peers.clone();
        let resolved = blocking::unblock(move || shoal_io::resolve_peers(&named, |_, _| {})).await;
        for peer in resolved {
            if !options.peers.contains(&peer) {
                options.peers.push(peer);
            }
        }
        let (saved_dir, hash) = (dir.clone(), magnet.info_hash);
        let saved =
            blocking::unblock(move || shoal_io::resume::load_torrent(&saved_dir, &hash)).await;
        if let Some(meta) = saved {
            return self
                .add_torrent(TorrentSource::Bytes(meta.to_torrent_bytes()), dir, options)
                .await;
        }
        let key = TorrentKey(self.shared.next_key.fetch_add(1, Ordering::Relaxed));
        self.call(|reply| Command::AddMagnet {
            key,
            magnet,
            dir,
            options,
            reply,
        })
        .await?
    }

    /// Gives a torrent a peer to dial. It is remembered: a resumed torrent dials it again.
    ///
    /// ```no_run
    /// # async fn demo(session: shoal_async_std::Session, torrent: shoal_async_std::TorrentKey)
    /// # -> Result<(), shoal_async_std::Error> {
    /// session.add_peer(torrent, "192.0.2.7:6881".parse().unwrap()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn add_peer(&self, torrent: TorrentKey, addr: SocketAddr) -> Result<(), Error> {
        self.call(|reply| Command::AddPeer {
            key: torrent,
            addr,
            reply,
        })
        .await?
    }

    /// Takes a torrent out of the engine, keeping its verified pieces: its connections
    /// close, its trackers hear `stopped`, its resume record is saved once its writes are
    /// done. Pausing a paused torrent does nothing.
    ///
    /// ```no_run
    /// # async fn demo(session: shoal_async_std::Session, torrent: shoal_async_std::TorrentKey)
    /// # -> Result<(), shoal_async_std::Error> {
    /// use shoal_async_std::State;
    ///
    /// session.pause(torrent).await?;
    /// assert_eq!(session.stats(torrent).await?.state, State::Paused);
    /// session.resume(torrent).await?; // back in the engine, every verified piece kept
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pause(&self, torrent: TorrentKey) -> Result<(), Error> {
        self.call(|reply| Command::Pause {
            key: torrent,
            reply,
        })
        .await?
    }

    /// Puts a paused torrent back in the engine with the pieces it had. Resuming a running
    /// torrent does nothing.
    pub async fn resume(&self, torrent: TorrentKey) -> Result<(), Error> {
        self.call(|reply| Command::Resume {
            key: torrent,
            reply,
        })
        .await?
    }

    /// Removes a torrent, keeping its files: returns once its writes are done, its files
    /// synced and its resume record saved (adding it again later resumes from there).
    ///
    /// ```no_run
    /// # async fn demo(session: shoal_async_std::Session, torrent: shoal_async_std::TorrentKey)
    /// # -> Result<(), shoal_async_std::Error> {
    /// session.remove(torrent).await?;
    /// assert!(!session.torrents().await?.contains(&torrent));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove(&self, torrent: TorrentKey) -> Result<(), Error> {
        self.call(|reply| Command::Remove {
            key: torrent,
            reply,
        })
        .await?
    }

    /// A torrent's state and figures now.
    ///
    /// ```no_run
    /// # async fn demo(session: shoal_async_std::Session, torrent: shoal_async_std::TorrentKey)
    /// # -> Result<(), shoal_async_std::Error> {
    /// let stats = session.stats(torrent).await?;
    /// println!(
    ///     "{}: {:?}, {} of {} bytes, {} peers",
    ///     stats.name, stats.state, stats.progress.bytes_verified, stats.progress.total_length,
    ///     stats.progress.peers
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stats(&self, torrent: TorrentKey) -> Result<Stats, Error> {
        self.call(|reply| Command::Stats {
            key: torrent,
            reply,
        })
        .await?
    }

    /// A torrent's metainfo: its files, trackers, piece size, info-hash.
    pub async fn metainfo(&self, torrent: TorrentKey) -> Result<Arc<Metainfo>, Error> {
        self.call(|reply| Command::Metainfo {
            key: torrent,
            reply,
        })
        .await?
    }

    /// Sets the session's upload and download limits (bytes a second, all torrents
    /// together; `None`: no limit), in force at once. Set them from the start with
    /// [`SessionConfig::engine`]'s `rate_limits`.
    ///
    /// ```no_run
    /// # async fn demo(session: shoal_async_std::Session) -> Result<(), shoal_async_std::Error> {
    /// use shoal_async_std::RateLimits;
    ///
    /// session
    ///     .set_rate_limits(RateLimits { upload: Some(512 << 10), download: Some(2 << 20) })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set_rate_limits(&self, limits: RateLimits) -> Result<(), Error> {
        self.call(|reply| Command::SetRateLimits { limits, reply })
            .await
    }

    /// The bytes on their way to disk now (all torrents), and the most there have been.
    pub async fn disk_stats(&self) -> Result<shoal_io::DiskStats, Error> {
        self.call(|reply| Command::DiskStats { reply }).await
    }

    /// Every torrent in the session, oldest first.
    pub async fn torrents(&self) -> Result<Vec<TorrentKey>, Error> {
        self.call(|reply| Command::List { reply }).await
    }

    /// Stops every torrent (trackers hear `stopped`, for at most
    /// [`SessionConfig::shutdown_grace`]), finishes the queued writes, syncs the files and
    /// saves the resume records, then ends the session's tasks. Later calls fail with
    /// [`Error::Closed`]. Dropping every handle of the session does the same, unawaited.
    pub async fn shutdown(&self) {
        let _ = self.call(|reply| Command::Shutdown { reply }).await;
    }

    async fn call<T>(&self, command: impl FnOnce(Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, answer) = async_channel::bounded(1);
        self.shared
            .commands
            .try_send(command(reply))
            .map_err(|_| Error::Closed)?;
        answer.recv().await.map_err(|_| Error::Closed)
    }
}

impl From<shoal_io::Error> for Error {
    fn from(e: shoal_io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<AddTorrentError> for Error {
    fn from(e: AddTorrentError) -> Self {
        Error::Engine(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_magnet_link_is_answered_as_one_not_as_a_missing_file() {
        let link = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
        let e = TorrentSource::from_arg(link).load().unwrap_err();
        assert!(
            e.to_string()
                .ends_with(": a magnet link, not a .torrent file or an http(s):// URL to one (add it as a magnet link)"),
            "{e}"
        );
        let e = TorrentSource::from_arg("/no/such/file.torrent")
            .load()
            .unwrap_err();
        assert!(e.to_string().contains("No such file"), "{e}");
    }
}
