//! The mio runtime: shoal-core's engine driven by one event loop.
//!
//! One thread owns the [`Engine`], a TCP listener, a UDP socket (tracker and DHT
//! datagrams), every peer connection and every HTTP tracker exchange, all non-blocking and
//! registered with one [`mio::Poll`]. Disk reads, writes, SHA-1 and host-name lookups go
//! to a [`worker::Pool`]; results come back over a channel that wakes the poll. The loop is the
//! core's: feed the engine what happened, carry out what it asks, sleep until its timeout
//! or the next event. There is no protocol logic here.
//!
//! Backpressure, both ways. Bytes the engine asks to send wait in a per-connection queue;
//! the engine learns through [`Input::Sent`] what has left, and stops reading blocks for a
//! peer whose queue is full. Downloaded bytes on their way to disk (staged in the
//! write-back caches, or queued for a worker to write) are counted in one
//! [`DiskBudget`]: while it says `paused`, a readable socket is parked instead of read,
//! so TCP slows the sender; parked sockets are read again once the workers have caught up.
//! Reads from a socket are capped per wake-up ([`READ_BUDGET`]) so one fast peer cannot
//! starve the others, which also caps how far past the budget's high mark one read goes.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use shoal_core::bitfield::Bitfield;
use shoal_core::engine::{
    AddTorrentError, ConnId, Engine, EngineConfig, Event, Input, Output, RateLimits, TorrentId,
    TorrentOptions,
};
use shoal_core::engine::{FetchingStats, TorrentStats};
use shoal_core::metainfo::Metainfo;
use shoal_core::picker::Priority;
use shoal_core::tracker::TrackerUrl;
use shoal_io::answer_buf::HTTP_TIMEOUT;
use shoal_io::read_buf::{ReadBuf, ReadBuffers, MAX_READ_CHUNK};
use shoal_io::{DiskBudget, DiskEvent, DiskLimits, DiskStats, Dispatcher, Storage};

use crate::http::{Exchange, Purpose};
use crate::worker::{Done, Job, Pool};

mod exchanges;

const LISTENER: Token = Token(0);
const UDP: Token = Token(1);
const WAKER: Token = Token(2);
const SIGNALS: Token = Token(3);
/// The local service discovery socket (BEP 14), when the engine has LSD on.
const LSD: Token = Token(4);
const FIRST_PEER: usize = 16;
/// HTTP exchanges take tokens from here up.
const FIRST_HTTP: usize = 1 << 30;

/// Most bytes read from one connection per wake-up: also the most one read can take the
/// disk budget past its high mark.
pub const READ_BUDGET: usize = 2 << 20;
/// Most datagrams read from the UDP socket per wake-up.
const UDP_BUDGET: usize = 1024;
/// The most one connection's read takes the disk budget past its high mark: the read
/// budget, plus the last read that crossed it (the engine may add one partial message it
/// held, at most its `max_message_len`).
pub const MAX_READ_PER_WAKEUP: usize = READ_BUDGET + MAX_READ_CHUNK;
/// Bytes of chunks read ahead for serving peers, all torrents together.
const READ_AHEAD: usize = 16 << 20;

/// Settings of a [`Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where to accept peer connections (and receive UDP tracker answers).
    pub listen: SocketAddr,
    /// Worker threads for disk and hashing.
    pub workers: usize,
    pub engine: EngineConfig,
}

struct Conn {
    id: ConnId,
    stream: TcpStream,
    connecting: bool,
    /// Bytes waiting to be written, oldest first.
    out: VecDeque<Bytes>,
    /// Where its bytes are read into (see `shoal_io::read_buf`).
    read_buf: ReadBuf,
    /// Readable, but left unread while the disk budget is paused (in `Runtime::parked`).
    parked: bool,
}

struct Http {
    torrent: TorrentId,
    id: Purpose,
    url: TrackerUrl,
    request: Vec<u8>,
    /// For a web seed: the longest body its answer may have.
    max_body: Option<u64>,
    exchange: Option<Exchange>,
    deadline: Instant,
    /// A web seed's exchange left undriven since then while the disk budget is paused
    /// (its deadline is pushed back by as long when it is driven again).
    parked: Option<Instant>,
}

/// The engine and its sockets; see the module docs.
pub struct Runtime {
    poll: Poll,
    events: Events,
    engine: Engine,
    listener: TcpListener,
    udp: UdpSocket,
    /// Joined to the LSD multicast group, when the engine has LSD on.
    lsd: Option<UdpSocket>,
    local_addr: SocketAddr,
    pool: Pool,
    conns: Vec<Option<Conn>>,
    free_conns: Vec<usize>,
    by_conn: BTreeMap<ConnId, usize>,
    https: Vec<Option<Http>>,
    /// Idle keep-alive connections to web seeds.
    http_pool: crate::http::Pool,
    /// Read buffers retired by connections, reused once free.
    read_buffers: ReadBuffers,
    /// The engine's disk outputs carried out (write-back, read-ahead, hashing, renames,
    /// record saves), and the budget of bytes on their way to disk.
    disk: Dispatcher<TorrentId>,
    /// Slots of readable connections left unread while the disk budget is paused, oldest
    /// first.
    parked: VecDeque<usize>,
    /// The same for web seed exchanges (slots of `https`).
    parked_http: VecDeque<usize>,
    /// Events for the caller, in order.
    pending_events: Vec<Event>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    interrupted: bool,
    /// Failures of background jobs that stop nothing (a resume record not saved).
    warnings: Vec<String>,
    waker: Arc<Waker>,
    /// The DHT's bootstrap routers, as their names resolve (see [`Runtime::start_dht`]).
    dht_routers: Option<Receiver<Vec<SocketAddrV4>>>,
    /// Where the DHT's table is saved, if anywhere.
    dht_folder: Option<PathBuf>,
}

impl Runtime {
    pub fn new(mut config: RuntimeConfig) -> io::Result<Runtime> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        let mut udp = UdpSocket::bind(local_addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        let lsd = if config.engine.lsd {
            let mut socket = UdpSocket::from_std(shoal_io::lsd_socket(config.listen.ip())?);
            poll.registry()
                .register(&mut socket, LSD, Interest::READABLE)?;
            Some(socket)
        } else {
            None
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        config.engine.listen_port = local_addr.port();
        Ok(Runtime {
            events: Events::with_capacity(1024),
            engine: Engine::new(config.engine),
            listener,
            udp,
            lsd,
            local_addr,
            pool: Pool::new(config.workers, waker.clone()),
            waker,
            poll,
            conns: Vec::new(),
            free_conns: Vec::new(),
            by_conn: BTreeMap::new(),
            https: Vec::new(),
            http_pool: crate::http::Pool::default(),
            read_buffers: ReadBuffers::new(),
            disk: Dispatcher::new(DiskBudget::new(DiskLimits::default()), READ_AHEAD),
            parked: VecDeque::new(),
            parked_http: VecDeque::new(),
            pending_events: Vec::new(),
            signals: None,
            interrupted: false,
            warnings: Vec::new(),
            dht_routers: None,
            dht_folder: None,
        })
    }

    /// Starts the engine's DHT node (BEP 5) on our UDP socket, shared with UDP trackers
    /// (the engine tells their datagrams apart). Its table is read from `folder` and saved
    /// there by [`Runtime::save_dht`]. `bootstrap`: `HOST:PORT`s to start from; empty: those
    /// of `SHOAL_DHT_BOOTSTRAP` if set, else the well-known routers. Names are resolved on a
    /// thread of their own, never joined: a lookup that hangs delays nothing, one that fails
    /// costs nothing. Returns whether the node has anywhere to start from (bootstrap
    /// addresses or a saved table).
    pub fn start_dht(&mut self, folder: Option<&Path>, bootstrap: &[String]) -> bool {
        let list = shoal_io::dht::bootstrap_list(bootstrap);
        let (literal, names) = shoal_io::dht::split_literal(&list);
        let config = shoal_io::dht::config(folder, literal);
        let sources = !list.is_empty() || !config.saved_nodes.is_empty();
        self.engine.start_dht(config, Instant::now());
        self.dht_folder = folder.map(Path::to_path_buf);
        if !names.is_empty() {
            let (tx, rx) = mpsc::channel();
            let waker = self.waker.clone();
            let spawned = std::thread::Builder::new()
                .name("shoal-dht-routers".into())
                .spawn(move || {
                    for name in names {
                        if let Ok(addrs) = shoal_io::dht::resolve(&name) {
                            if tx.send(addrs).is_err() {
                                return;
                            }
                            let _ = waker.wake();
                        }
                    }
                });
            if spawned.is_ok() {
                self.dht_routers = Some(rx);
            }
        }
        self.drain();
        sources
    }

    /// Saves the DHT's routing table in the folder given to [`Runtime::start_dht`] (an
    /// empty table is not saved: it would replace a useful one).
    pub fn save_dht(&self) -> Result<(), String> {
        let (Some(folder), Some((id, nodes))) = (&self.dht_folder, self.engine.dht_export()) else {
            return Ok(());
        };
        if nodes.is_empty() {
            return Ok(());
        }
        shoal_io::dht::save(folder, id, &nodes)
            .map_err(|e| format!("{}: {e}", shoal_io::dht::state_path(folder).display()))
    }

    /// Sets the bounds of the bytes on their way to disk; for torrents added from now on
    /// (call it before adding any).
    pub fn set_disk_limits(&mut self, limits: DiskLimits) {
        self.disk.set_budget(DiskBudget::new(limits));
    }

    /// How often each torrent's resume record is saved while its verified pieces change
    /// (default [`shoal_io::dispatch::RESUME_INTERVAL`]); `None`: never by itself.
    pub fn set_resume_interval(&mut self, interval: Option<Duration>) {
        self.disk.set_resume_interval(interval);
    }

    /// Saves torrent `id`'s resume record now (on a worker).
    pub fn save_resume(&mut self, id: TorrentId) {
        self.disk.save(&self.engine, id, Instant::now());
        self.submit_disk_jobs();
    }

    /// A torrent's figures now.
    pub fn stats(&self, id: TorrentId) -> Option<TorrentStats> {
        self.engine.stats(id)
    }

    /// The pieces of a torrent verified now.
    pub fn verified(&self, id: TorrentId) -> Option<&Bitfield> {
        self.engine.verified(id)
    }

    /// Whether files of torrent `id` whose pieces are all verified are still being synced
    /// and given their final names: until then the torrent is not done on disk.
    pub fn renaming(&self, id: TorrentId) -> bool {
        self.disk.renaming(id)
    }

    /// A magnet link's torrent's metadata download, while it lasts.
    pub fn fetching(&self, id: TorrentId) -> Option<FetchingStats> {
        self.engine.fetching(id)
    }

    /// Whether the DHT node runs.
    pub fn dht_enabled(&self) -> bool {
        self.engine.dht_enabled()
    }

    /// What the DHT node has done, if it runs.
    pub fn dht_stats(&self) -> Option<shoal_core::engine::DhtStats> {
        self.engine.dht_stats()
    }

    /// Sets a torrent's file priorities (one per file).
    pub fn set_file_priorities(&mut self, id: TorrentId, priorities: &[Priority]) {
        self.engine.set_file_priorities(id, priorities);
        self.drain();
    }

    /// The bytes on their way to disk now, and the most there have been.
    pub fn disk_stats(&self) -> DiskStats {
        self.disk.budget().stats()
    }

    /// The address peers reach us at.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Makes Ctrl-C (SIGINT) and SIGTERM visible through [`Runtime::interrupted`] instead of
    /// killing the process, so a download can stop cleanly.
    pub fn catch_signals(&mut self) -> io::Result<()> {
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Runs `job` on a worker thread; a failure shows up in [`Runtime::take_warnings`].
    pub fn spawn(&mut self, job: impl FnOnce() -> Result<(), String> + Send + 'static) {
        self.pool.submit(Job::Run(Box::new(job)));
    }

    /// Failures of background jobs since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Whether a signal asked us to stop since the last call.
    pub fn interrupted(&mut self) -> bool {
        std::mem::take(&mut self.interrupted)
    }

    /// Wakes [`Runtime::turn`] from another thread (a control request for the loop).
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    pub fn add_torrent(
        &mut self,
        meta: Arc<Metainfo>,
        storage: Arc<Storage>,
        verified: Bitfield,
    ) -> Result<TorrentId, AddTorrentError> {
        self.add_torrent_with(
            meta,
            storage,
            TorrentOptions {
                verified: Some(verified),
                ..TorrentOptions::default()
            },
        )
    }

    /// [`Runtime::add_torrent`] with every option of the engine's (`opts.verified`: the
    /// pieces found on disk).
    pub fn add_torrent_with(
        &mut self,
        meta: Arc<Metainfo>,
        storage: Arc<Storage>,
        opts: TorrentOptions,
    ) -> Result<TorrentId, AddTorrentError> {
        let saved = shoal_io::saved_pieces(&storage, opts.verified.as_ref());
        let now = Instant::now();
        let id = self.engine.add_torrent(meta, opts, now)?;
        self.disk.add(id, id, storage, saved, now);
        self.drain();
        Ok(id)
    }

    /// Sets the upload and download limits for all torrents together, in force at once
    /// (the engine holds its transfers to them).
    pub fn set_rate_limits(&mut self, limits: RateLimits) {
        self.engine.set_rate_limits(limits, Instant::now());
        self.drain();
    }

    /// The rate limits in force.
    pub fn rate_limits(&self) -> RateLimits {
        self.engine.rate_limits()
    }

    /// Removes a torrent: its peers closed, `stopped` announced; disk jobs still under
    /// way for it finish and are dropped. Returns the pieces verified by then.
    pub fn remove_torrent(&mut self, torrent: TorrentId) -> Option<Bitfield> {
        let verified = self.engine.remove_torrent(torrent, Instant::now());
        self.disk.remove(torrent);
        self.disk.forget_renames(torrent);
        self.drain();
        verified
    }

    /// Adds a torrent known by its magnet link; its metadata is fetched from peers
    /// ([`Event::MetadataReceived`]), then [`Runtime::attach_metainfo`] gives it storage.
    pub fn add_magnet(&mut self, magnet: &shoal_core::magnet::Magnet) -> TorrentId {
        let id = self.engine.add_magnet(magnet, Instant::now());
        self.drain();
        id
    }

    /// Gives a magnet link's torrent, whose metadata is in, its storage and the pieces
    /// found verified there: it downloads from now on.
    pub fn attach_metainfo(
        &mut self,
        id: TorrentId,
        storage: Arc<Storage>,
        verified: Bitfield,
    ) -> Result<(), AddTorrentError> {
        let opts = TorrentOptions {
            verified: Some(verified),
            ..TorrentOptions::default()
        };
        self.attach_metainfo_with(id, storage, opts)
    }

    /// [`Runtime::attach_metainfo`] with the torrent's options (sequential mode too).
    pub fn attach_metainfo_with(
        &mut self,
        id: TorrentId,
        storage: Arc<Storage>,
        opts: TorrentOptions,
    ) -> Result<(), AddTorrentError> {
        let saved = shoal_io::saved_pieces(&storage, opts.verified.as_ref());
        let now = Instant::now();
        self.disk.add(id, id, storage, saved, now);
        let attached = self.engine.attach_metainfo(id, opts, now);
        if attached.is_err() {
            self.disk.remove(id);
        }
        self.drain();
        attached
    }

    pub fn add_peer(&mut self, torrent: TorrentId, addr: SocketAddr) {
        self.engine.add_peer(torrent, addr, Instant::now());
        self.drain();
    }

    /// Removes every torrent (announcing `stopped`) and runs until the engine is idle or
    /// `grace` has passed. Returns each torrent's verified pieces.
    pub fn shutdown(&mut self, grace: Duration) -> io::Result<Vec<(TorrentId, Bitfield)>> {
        let verified = self.engine.shutdown(Instant::now());
        self.drain();
        let deadline = Instant::now() + grace;
        while !self.engine.is_idle() && Instant::now() < deadline {
            self.turn(Some(deadline.saturating_duration_since(Instant::now())))?;
        }
        Ok(verified)
    }

    /// Runs the loop once: waits for something to happen (at most `max_wait`, and never
    /// past the engine's timeout or the dispatcher's), handles it, and returns the user
    /// events it produced.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<Vec<Event>> {
        let now = Instant::now();
        let due = self.engine.poll_timeout().into_iter();
        let mut wait = due
            .chain(self.disk.poll_timeout())
            .min()
            .map(|t| t.saturating_duration_since(now));
        if let Some(cap) = max_wait {
            wait = Some(wait.map_or(cap, |w| w.min(cap)));
        }
        let driven = self.https.iter().flatten().filter(|h| h.parked.is_none());
        if let Some(deadline) = driven.map(|h| h.deadline).min() {
            let until = deadline.saturating_duration_since(now);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let tokens: Vec<(Token, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token(),
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable(),
                )
            })
            .collect();
        for (token, readable, writable) in tokens {
            match token {
                LISTENER => self.accept()?,
                UDP => self.receive_udp(),
                LSD => self.receive_lsd(),
                WAKER => {}
                SIGNALS => {
                    if let Some(signals) = &mut self.signals {
                        if signals.pending().next().is_some() {
                            self.interrupted = true;
                        }
                    }
                }
                Token(t) if t >= FIRST_HTTP => self.http_event(t - FIRST_HTTP),
                Token(t) => self.conn_event(t - FIRST_PEER, readable, writable),
            }
        }
        self.worker_results();
        self.unpark();
        self.http_timeouts();
        let now = Instant::now();
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle(Input::Timer, now);
        }
        self.disk.saves_due(&self.engine, now);
        self.disk.hashes_due(now);
        self.drain();
        Ok(std::mem::take(&mut self.pending_events))
    }

    fn accept(&mut self) -> io::Result<()> {
        loop {
            let (stream, addr) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A failed accept (the peer left, out of descriptors) loses that one.
                Err(_) => return Ok(()),
            };
            let Some(id) = self.engine.accept(addr, Instant::now()) else {
                continue; // dropped: over the connection limit
            };
            let _ = stream.set_nodelay(true);
            self.insert_conn(id, stream, false);
            self.drain();
        }
    }

    fn insert_conn(&mut self, id: ConnId, mut stream: TcpStream, connecting: bool) {
        let slot = self.free_conns.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let registered = self.poll.registry().register(
            &mut stream,
            Token(FIRST_PEER + slot),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            self.free_conns.push(slot);
            self.engine.handle(
                if connecting {
                    Input::ConnectFailed { conn: id }
                } else {
                    Input::Closed { conn: id }
                },
                Instant::now(),
            );
            return;
        }
        self.conns[slot] = Some(Conn {
            id,
            stream,
            connecting,
            out: VecDeque::new(),
            read_buf: ReadBuf::new(),
            parked: false,
        });
        self.by_conn.insert(id, slot);
    }

    fn remove_conn(&mut self, slot: usize) -> Option<Conn> {
        let mut conn = self.conns.get_mut(slot)?.take()?;
        let _ = self.poll.registry().deregister(&mut conn.stream);
        std::mem::take(&mut conn.read_buf).release(&self.read_buffers);
        self.by_conn.remove(&conn.id);
        self.free_conns.push(slot);
        Some(conn)
    }

    fn conn_event(&mut self, slot: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let id = conn.id;
        if conn.connecting {
            if !(readable || writable) {
                return;
            }
            let failed = matches!(conn.stream.take_error(), Ok(Some(_)) | Err(_))
                || conn.stream.peer_addr().is_err();
            if failed {
                self.remove_conn(slot);
                self.engine
                    .handle(Input::ConnectFailed { conn: id }, Instant::now());
                return;
            }
            conn.connecting = false;
            let _ = conn.stream.set_nodelay(true);
            self.engine
                .handle(Input::Connected { conn: id }, Instant::now());
            self.drain();
        }
        if writable {
            self.flush_conn(slot);
        }
        if readable {
            if self.disk.budget().paused() {
                self.park(slot);
            } else {
                self.read_conn(slot);
            }
        }
    }

    /// Leaves a readable connection unread until the disk catches up (mio says readable
    /// once per edge, so it is remembered here).
    fn park(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
            if !conn.parked {
                conn.parked = true;
                self.parked.push_back(slot);
            }
        }
    }

    /// Reads parked connections, then parked web seed exchanges, oldest first, while the
    /// disk budget allows.
    fn unpark(&mut self) {
        while !self.disk.budget().paused() {
            let Some(slot) = self.parked.pop_front() else {
                self.unpark_http();
                return;
            };
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if std::mem::take(&mut conn.parked) {
                self.read_conn(slot);
            }
        }
    }

    fn read_conn(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let id = conn.id;
        let mut total = 0;
        let mut closed = false;
        // What is read goes to the engine as the front of the connection's buffer, split
        // off without a copy; the engine joins consecutive chunks of one buffer. When its
        // room runs low the buffer is renewed from `read_buffers` (recycled when free).
        'reading: while total < READ_BUDGET {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            let buf = conn.read_buf.room(&self.read_buffers);
            let mut filled = 0;
            let mut blocked = false;
            let mut grow = false;
            while filled < buf.len() {
                let room = buf.len() - filled;
                match conn.stream.read(&mut buf[filled..]) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        filled += n;
                        grow |= n == room;
                        if total + filled >= READ_BUDGET {
                            break;
                        }
                    }
                    Err(e) => match e.kind() {
                        io::ErrorKind::WouldBlock => {
                            blocked = true;
                            break;
                        }
                        io::ErrorKind::Interrupted => continue,
                        _ => {
                            closed = true;
                            break;
                        }
                    },
                }
            }
            if grow {
                conn.read_buf.grow();
            }
            total += filled;
            let data = conn.read_buf.take(filled);
            if !data.is_empty() {
                self.engine
                    .handle(Input::Received { conn: id, data }, Instant::now());
            }
            if closed || blocked {
                break 'reading;
            }
        }
        let now = Instant::now();
        if closed {
            self.remove_conn(slot);
            self.engine.handle(Input::Closed { conn: id }, now);
        } else if total >= READ_BUDGET {
            // More may be waiting and mio is edge-triggered: come back to it next turn.
            if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                let _ = self.poll.registry().reregister(
                    &mut conn.stream,
                    Token(FIRST_PEER + slot),
                    Interest::READABLE | Interest::WRITABLE,
                );
            }
        }
        self.drain();
    }

    /// Writes what the socket takes; reports it to the engine.
    fn flush_conn(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if conn.connecting {
            return;
        }
        let id = conn.id;
        let mut sent = 0;
        let mut failed = false;
        while !conn.out.is_empty() {
            let slices: Vec<IoSlice<'_>> =
                conn.out.iter().take(64).map(|b| IoSlice::new(b)).collect();
            match conn.stream.write_vectored(&slices) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(mut n) => {
                    sent += n;
                    while n > 0 {
                        let front = conn.out.front_mut().expect("wrote from it");
                        if n >= front.len() {
                            n -= front.len();
                            conn.out.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        let now = Instant::now();
        if sent > 0 {
            self.engine.handle(
                Input::Sent {
                    conn: id,
                    bytes: sent,
                },
                now,
            );
        }
        if failed {
            self.remove_conn(slot);
            self.engine.handle(Input::Closed { conn: id }, now);
        }
    }

    /// Datagrams (trackers' and the DHT's) are handed to the engine as they are read,
    /// never queued here; at most [`UDP_BUDGET`] a wake-up, so a flood cannot starve the
    /// peers (the kernel drops what its buffer cannot hold meanwhile).
    fn receive_udp(&mut self) {
        let mut buf = [0u8; 2048];
        let mut read = 0;
        loop {
            if read == UDP_BUDGET {
                // mio is edge-triggered: come back to the rest next turn.
                let _ = self
                    .poll
                    .registry()
                    .reregister(&mut self.udp, UDP, Interest::READABLE);
                break;
            }
            match self.udp.recv_from(&mut buf) {
                Ok((n, from)) => {
                    read += 1;
                    self.engine.handle(
                        Input::UdpReceived {
                            from,
                            data: buf[..n].to_vec(),
                        },
                        Instant::now(),
                    );
                    if read.is_multiple_of(64) {
                        self.drain();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.drain();
    }

    fn receive_lsd(&mut self) {
        let mut buf = [0u8; 2048];
        while let Some(socket) = &self.lsd {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => self.engine.handle(
                    Input::LsdReceived {
                        from,
                        data: buf[..n].to_vec(),
                    },
                    Instant::now(),
                ),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.drain();
    }

    fn worker_results(&mut self) {
        let routers: Vec<SocketAddrV4> = match &self.dht_routers {
            Some(rx) => rx.try_iter().flatten().collect(),
            None => Vec::new(),
        };
        for addr in routers {
            self.engine.add_dht_node(addr, Instant::now());
        }
        while let Ok(done) = self.pool.done.try_recv() {
            let now = Instant::now();
            match done {
                Done::Disk(torrent, done) => self.disk.done(&mut self.engine, torrent, done, now),
                Done::Resolved {
                    torrent,
                    id,
                    result,
                } => self.resolved(torrent, id, result),
                Done::Ran(result) => {
                    if let Err(e) = result {
                        self.warnings.push(e);
                    }
                }
            }
        }
        self.drain();
    }

    /// Carries out everything the engine asks for now, until it asks nothing more
    /// (writing reports `Sent`, which can free room for more block reads).
    fn drain(&mut self) {
        loop {
            let mut touched: Vec<usize> = Vec::new();
            let mut any = false;
            while let Some(out) = self.engine.poll_output() {
                any = true;
                if let Some(out) = self.disk.carry_out(&mut self.engine, out, Instant::now()) {
                    self.carry_out(out, &mut touched);
                }
            }
            self.submit_disk_jobs();
            for slot in touched {
                self.flush_conn(slot);
            }
            if !any {
                return;
            }
        }
    }

    /// Hands the dispatcher's disk jobs to the workers and its events to the caller.
    fn submit_disk_jobs(&mut self) {
        for (torrent, job) in self.disk.take_jobs() {
            self.pool.submit(Job::Disk(torrent, job));
        }
        for event in self.disk.take_events() {
            match event {
                DiskEvent::FileCompleted { torrent, file } => self
                    .pending_events
                    .push(Event::FileCompleted { torrent, file }),
                DiskEvent::Completed { torrent } => {
                    self.pending_events.push(Event::Completed { torrent })
                }
                DiskEvent::StorageError { torrent, error } => self
                    .pending_events
                    .push(Event::StorageError { torrent, error }),
                DiskEvent::Saved { result, .. } => {
                    if let Err(e) = result {
                        self.warnings.push(format!("resume record not saved: {e}"));
                    }
                }
            }
        }
    }

    /// Carries out an output that is not the disk's (see [`Dispatcher::carry_out`]).
    fn carry_out(&mut self, out: Output, touched: &mut Vec<usize>) {
        match out {
            Output::Connect { conn, addr } => match TcpStream::connect(addr) {
                Ok(stream) => self.insert_conn(conn, stream, true),
                Err(_) => self
                    .engine
                    .handle(Input::ConnectFailed { conn }, Instant::now()),
            },
            Output::Send { conn, data } => {
                if let Some(&slot) = self.by_conn.get(&conn) {
                    if let Some(c) = self.conns[slot].as_mut() {
                        c.out.push_back(data);
                        if !touched.contains(&slot) {
                            touched.push(slot);
                        }
                    }
                }
            }
            Output::Close { conn } => {
                if let Some(&slot) = self.by_conn.get(&conn) {
                    // Say what is queued (a reject, a last have) before closing.
                    self.flush_conn(slot);
                    self.remove_conn(slot);
                }
            }
            Output::TrackerHttp {
                torrent,
                id,
                url,
                request,
            } => self.start_http(torrent, Purpose::Tracker(id), url, request, None),
            Output::WebSeedRequest {
                torrent,
                id,
                url,
                request,
                max_body,
            } => self.start_http(torrent, Purpose::WebSeed(id), url, request, Some(max_body)),
            Output::LsdSend { data } => {
                if let Some(socket) = &self.lsd {
                    // A lost announce is sent again at the next one's time.
                    let _ = socket.send_to(&data, shoal_core::lsd::GROUP_V4.into());
                }
            }
            Output::UdpSend { to, data } => {
                // A lost datagram is retransmitted by the engine's UDP tracker client.
                let _ = self.udp.send_to(&data, to);
            }
            Output::Event(e) => self.pending_events.push(e),
            // An output added to the engine that this runtime does not carry out yet: loud
            // in tests, ignored in release.
            other => debug_assert!(false, "output not carried out: {other:?}"),
        }
    }
}
