//! The engine's task: the one place the [`Engine`] lives.
//!
//! It waits for the first of three things: a command from a [`Session`](crate::Session)
//! handle, a message in its inbox (from the socket tasks, the tracker exchanges and the
//! disk workers), or the engine's timeout. It hands what happened to the engine, then
//! carries out every output the engine has, until it has none (the core's rule), and waits
//! again. There is no protocol logic here: only bookkeeping of which task or file belongs
//! to which connection or torrent.
//!
//! Back-pressure from disk to socket: every byte between a socket and the disk is counted
//! in the session's [`DiskBudget`] (a reader charges what it read until the engine has
//! taken it; write-back caches and queued writes charge theirs). While the budget says
//! `paused`, socket readers wait at the [`Gate`](net::Gate) before their next read, so TCP
//! slows the senders; the engine's task opens the gate once the disk has caught up.
//!
//! Nothing here ever waits on another task: the inbox is bounded (a reader that gets ahead
//! of the engine waits, which is TCP's own backpressure), but the engine's task only takes
//! from it; writers' queues are filled with `try_send`, disk jobs go to an unbounded queue
//! (the engine bounds them), events are `force_send` (the oldest is dropped for a reader
//! that does not keep up). So no cycle of waits can form.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Receiver, Sender, TrySendError};
use async_io::{Async, Timer};
use bytes::Bytes;
use futures_lite::future;
use shoal_core::bitfield::Bitfield;
use shoal_core::engine::{
    ConnId, Engine, Event as EngineEvent, Input, Output, RateLimits, TorrentId, TorrentOptions,
    TorrentStats,
};
use shoal_core::metainfo::Metainfo;
use shoal_core::{InfoHash, PieceIndex};
use shoal_io::read_buf::ReadBuffers;
use shoal_io::{
    Charge, DiskBudget, DiskDone, DiskEvent, DiskJob, Dispatcher, Download, DownloadLock, Storage,
};

use crate::disk::Pool;

mod commands;
mod dht;
mod events;
mod magnet;
use crate::executor::Executor;
use crate::session::{AddOptions, Error, Event, SessionConfig, State, Stats, TorrentKey};
use crate::{http, net};

/// Messages waiting for the engine's task; a reader that gets this far ahead waits.
const INBOX: usize = 1024;
/// Buffers queued for one connection's writer. The engine bounds the bytes it queues (its
/// `send_buffer`); a peer that lets this many messages pile up is not reading at all and
/// is closed.
const WRITE_QUEUE: usize = 4096;
/// Bytes of chunks read ahead for serving peers, all torrents together.
const READ_AHEAD: usize = 16 << 20;
/// Inbox messages handled before commands and the timer get a look again.
const BATCH: usize = 128;

/// What the tasks tell the engine's task.
pub enum Msg {
    /// An engine input as it is.
    Input(Input),
    /// Bytes read from a connection, charged to the disk budget until the engine has
    /// taken them.
    Received {
        conn: ConnId,
        data: bytes::BytesMut,
        charge: Charge,
    },
    /// An outbound connection is up.
    Connected {
        conn: ConnId,
        stream: Async<TcpStream>,
    },
    Accepted {
        stream: Async<TcpStream>,
        addr: SocketAddr,
    },
    /// A disk job of torrent `key` is done.
    Disk(TorrentKey, DiskDone),
    /// A magnet link's torrent has its folder open (see `magnet`).
    MagnetOpened {
        key: TorrentKey,
        result: Result<Download, Error>,
    },
    /// DHT routers' addresses, resolved (see `dht`).
    DhtRouters(Vec<std::net::SocketAddrV4>),
}

/// What a [`Session`](crate::Session) handle asks; each carries where the answer goes.
pub enum Command {
    Find {
        info_hash: InfoHash,
        reply: Sender<Option<TorrentKey>>,
    },
    Add {
        key: TorrentKey,
        download: Download,
        options: AddOptions,
        reply: Sender<Result<TorrentKey, Error>>,
    },
    AddMagnet {
        key: TorrentKey,
        magnet: shoal_core::magnet::Magnet,
        dir: std::path::PathBuf,
        options: AddOptions,
        reply: Sender<Result<TorrentKey, Error>>,
    },
    AddPeer {
        key: TorrentKey,
        addr: SocketAddr,
        reply: Sender<Result<(), Error>>,
    },
    Pause {
        key: TorrentKey,
        reply: Sender<Result<(), Error>>,
    },
    Resume {
        key: TorrentKey,
        reply: Sender<Result<(), Error>>,
    },
    Remove {
        key: TorrentKey,
        reply: Sender<Result<(), Error>>,
    },
    Stats {
        key: TorrentKey,
        reply: Sender<Result<Stats, Error>>,
    },
    List {
        reply: Sender<Vec<TorrentKey>>,
    },
    DiskStats {
        reply: Sender<shoal_io::DiskStats>,
    },
    Metainfo {
        key: TorrentKey,
        reply: Sender<Result<Arc<Metainfo>, Error>>,
    },
    SetRateLimits {
        limits: RateLimits,
        reply: Sender<()>,
    },
    Shutdown {
        reply: Sender<()>,
    },
}

/// A connection's tasks, as the engine's task holds them: dropping this closes it.
struct Conn {
    queue: Sender<Bytes>,
    /// Closed (never sent on) to stop the connection's tasks.
    _kill: Sender<()>,
    kill: Receiver<()>,
    /// An outbound connection's queue until it is connected and has a writer.
    pending: Option<Receiver<Bytes>>,
}

enum Run {
    Running(TorrentId),
    Paused(Bitfield),
}

struct Entry {
    storage: Arc<Storage>,
    /// This process's claim on the torrent's folder, released when the entry goes.
    _lock: DownloadLock,
    run: Run,
    options: AddOptions,
    /// Disk jobs in flight.
    jobs: usize,
    /// Save the resume record once no job is in flight (after a pause, a removal, the
    /// completion or the shutdown).
    save_pending: bool,
    /// Removed: dropped (and these told) once the record is saved.
    removed: Option<Vec<Sender<Result<(), Error>>>>,
    complete_since: Option<Instant>,
    /// Payload totals of earlier runs (the engine counts from zero after a resume).
    carried_down: u64,
    carried_up: u64,
}

impl Entry {
    fn settled(&self) -> bool {
        self.jobs == 0 && !self.save_pending
    }
}

enum Wake {
    Command(Option<Command>),
    Msg(Option<Msg>),
    Timer,
}

pub struct Driver {
    engine: Engine,
    config: SessionConfig,
    executor: Executor,
    commands: Receiver<Command>,
    commands_open: bool,
    inbox: Receiver<Msg>,
    inbox_tx: Sender<Msg>,
    events: Sender<Event>,
    /// Closed when the driver ends, which stops the listener and the UDP reader.
    _stop: Sender<()>,
    udp: Arc<Async<UdpSocket>>,
    /// The local service discovery socket, when the engine has LSD on.
    lsd: Option<Arc<Async<UdpSocket>>>,
    pool: Pool,
    /// Where socket readers wait while `budget` is paused.
    gate: Arc<net::Gate>,
    /// Read buffers retired by connections, reused once free.
    read_buffers: Arc<ReadBuffers>,
    /// The engine's disk outputs carried out (write-back, read-ahead, hashing, renames,
    /// the resume-save cadence), shared with the mio runtime.
    disk: Dispatcher<TorrentKey>,
    /// Idle keep-alive connections to web seeds.
    web: http::WebPool,
    conns: BTreeMap<ConnId, Conn>,
    torrents: BTreeMap<TorrentKey, Entry>,
    /// Magnet links' torrents until their folder is open.
    fetching: BTreeMap<TorrentKey, magnet::Fetching>,
    /// Every engine id a torrent has had (ids are never reused by the engine).
    by_engine: BTreeMap<TorrentId, TorrentKey>,
    /// Shutting down: who to tell when done, and until when the network may take.
    shutdown: Option<(Vec<Sender<()>>, Option<Instant>)>,
}

impl Driver {
    pub fn new(
        config: SessionConfig,
        executor: Executor,
        listener: Async<TcpListener>,
        udp: Async<UdpSocket>,
        lsd: Option<Async<UdpSocket>>,
        commands: Receiver<Command>,
        events: Sender<Event>,
    ) -> Driver {
        let (inbox_tx, inbox) = async_channel::bounded(INBOX);
        let (stop, stopped) = async_channel::bounded(1);
        let udp = Arc::new(udp);
        let lsd = lsd.map(Arc::new);
        executor.spawn(net::listen(listener, inbox_tx.clone(), stopped.clone()));
        if let Some(lsd) = &lsd {
            executor.spawn(net::receive_lsd(
                lsd.clone(),
                inbox_tx.clone(),
                stopped.clone(),
            ));
        }
        executor.spawn(net::receive_udp(udp.clone(), inbox_tx.clone(), stopped));
        let budget = DiskBudget::new(config.disk);
        let mut driver = Driver {
            gate: Arc::new(net::Gate::new(budget.clone())),
            read_buffers: Arc::default(),
            disk: {
                let mut disk = Dispatcher::new(budget, READ_AHEAD);
                disk.set_resume_interval(Some(config.resume_interval));
                disk
            },
            engine: Engine::new(config.engine.clone()),
            pool: Pool::new(config.workers, inbox_tx.clone()),
            web: http::WebPool::default(),
            config,
            executor,
            commands,
            commands_open: true,
            inbox,
            inbox_tx,
            events,
            _stop: stop,
            udp,
            lsd,
            conns: BTreeMap::new(),
            torrents: BTreeMap::new(),
            fetching: BTreeMap::new(),
            by_engine: BTreeMap::new(),
            shutdown: None,
        };
        driver.start_dht();
        driver
    }

    /// The task: runs until the session has shut down.
    pub async fn run(mut self) {
        let mut timer = Timer::never();
        // What `timer` is set to: re-arming it costs the reactor a wake-up, so it is done
        // only when the deadline changes (the engine's moves about once a second).
        let mut armed = None;
        loop {
            let now = Instant::now();
            if self.finished(now) {
                break;
            }
            let wake_at = self.next_wake(now);
            if wake_at != armed {
                armed = wake_at;
                match wake_at {
                    Some(at) => timer.set_at(at),
                    None => timer = Timer::never(),
                }
            }
            let wake = {
                let (commands, open, inbox) = (&self.commands, self.commands_open, &self.inbox);
                let command = async move {
                    if open {
                        Wake::Command(commands.recv().await.ok())
                    } else {
                        future::pending().await
                    }
                };
                let msg = async { Wake::Msg(inbox.recv().await.ok()) };
                let tick = async {
                    (&mut timer).await;
                    Wake::Timer
                };
                future::or(command, future::or(msg, tick)).await
            };
            match wake {
                Wake::Command(Some(command)) => self.command(command),
                Wake::Command(None) => {
                    // Every handle is gone: shut down with nobody to tell.
                    self.commands_open = false;
                    self.start_shutdown(None);
                }
                Wake::Msg(Some(msg)) => {
                    self.message(msg);
                    for _ in 0..BATCH {
                        match self.inbox.try_recv() {
                            Ok(msg) => self.message(msg),
                            Err(_) => break,
                        }
                    }
                }
                // A fired timer is spent: arm it again whatever the next deadline is.
                Wake::Timer => armed = None,
                Wake::Msg(None) => {}
            }
            let now = Instant::now();
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle(Input::Timer, now);
            }
            self.disk.saves_due(&self.engine, now);
            self.disk.hashes_due(now);
            self.drain();
            // Writes done, reads taken, a torrent paused or removed (its cache dropped):
            // any of them may have brought the disk budget back down.
            self.gate.wake();
        }
        if let Some(message) = self.save_dht() {
            let _ = self.events.force_send(Event::Warning {
                torrent: TorrentKey(0),
                message,
            });
        }
        if let Some((waiting, _)) = self.shutdown.take() {
            for reply in waiting {
                let _ = reply.try_send(());
            }
        }
        // Dropping `self` closes every connection, the listener, the UDP reader and the
        // disk workers' queue, and the event channel (readers see its end).
    }

    fn next_wake(&mut self, now: Instant) -> Option<Instant> {
        let engine = self.engine.poll_timeout().into_iter();
        let engine = engine.chain(self.disk.poll_timeout()).min();
        let grace = match &mut self.shutdown {
            Some((_, deadline)) => {
                if deadline.is_some_and(|d| d <= now) {
                    *deadline = None;
                }
                *deadline
            }
            None => None,
        };
        match (engine, grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Shutting down and done: the network is quiet (or out of time) and every torrent's
    /// writes and record are done.
    fn finished(&self, now: Instant) -> bool {
        let Some((_, deadline)) = &self.shutdown else {
            return false;
        };
        let network_done = self.engine.is_idle() || deadline.is_none_or(|d| now >= d);
        network_done && self.torrents.values().all(Entry::settled)
    }

    fn emit(&self, event: Event) {
        // Never waits: a reader that does not keep up loses the oldest events.
        let _ = self.events.force_send(event);
    }

    // ---- the disk ----

    fn submit(&mut self, key: TorrentKey, job: DiskJob) {
        if let Some(e) = self.torrents.get_mut(&key) {
            e.jobs += 1;
            self.pool.submit(key, job);
        }
    }

    /// Starts the record save a torrent waits for once its jobs are done; drops a removed
    /// torrent once that is done too.
    fn settle(&mut self, key: TorrentKey) {
        let Some(e) = self.torrents.get_mut(&key) else {
            return;
        };
        if e.jobs > 0 {
            return;
        }
        if e.save_pending {
            e.save_pending = false;
            match &e.run {
                Run::Paused(verified) => {
                    let (verified, storage) = (verified.clone(), e.storage.clone());
                    self.submit(key, DiskJob::Save { verified, storage });
                }
                Run::Running(id) => {
                    self.disk.save(&self.engine, *id, Instant::now());
                    self.submit_disk_jobs();
                }
            }
            return;
        }
        if e.removed.is_some() {
            let e = self.torrents.remove(&key).expect("looked up");
            self.by_engine.retain(|_, k| *k != key);
            self.disk.forget_renames(key);
            for reply in e.removed.into_iter().flatten() {
                let _ = reply.try_send(Ok(()));
            }
            self.emit(Event::Removed { torrent: key });
        }
    }

    fn disk_done(&mut self, key: TorrentKey, done: DiskDone) {
        let now = Instant::now();
        if let Some(e) = self.torrents.get_mut(&key) {
            e.jobs = e.jobs.saturating_sub(1);
        }
        self.disk.done(&mut self.engine, key, done, now);
        self.submit_disk_jobs();
        self.settle(key);
        self.drain();
    }

    /// Hands the dispatcher's disk jobs to the pool and passes its events on.
    fn submit_disk_jobs(&mut self) {
        let jobs: Vec<(TorrentKey, DiskJob)> = self.disk.take_jobs().collect();
        for (key, job) in jobs {
            self.submit(key, job);
        }
        let events: Vec<DiskEvent<TorrentKey>> = self.disk.take_events().collect();
        let now = Instant::now();
        for event in events {
            self.disk_event(event, now);
        }
    }

    // ---- messages from the tasks ----

    fn message(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Input(input) => {
                if let Input::Closed { conn } | Input::ConnectFailed { conn } = &input {
                    self.conns.remove(conn);
                }
                self.engine.handle(input, now);
            }
            Msg::Received { conn, data, charge } => {
                // Its blocks are charged again as they are staged or queued for the disk
                // (below, in `drain`): released first, so no byte counts twice.
                drop(charge);
                self.engine.handle(Input::Received { conn, data }, now);
            }
            Msg::Connected { conn, stream } => {
                let Some(pending) = self.conns.get_mut(&conn).and_then(|c| c.pending.take()) else {
                    return; // closed meanwhile
                };
                let _ = stream.get_ref().set_nodelay(true);
                self.engine.handle(Input::Connected { conn }, now);
                self.start_io(conn, stream, pending);
            }
            Msg::Accepted { stream, addr } => {
                if self.shutdown.is_some() {
                    return;
                }
                let Some(conn) = self.engine.accept(addr, now) else {
                    return; // over the connection limit: dropped
                };
                let _ = stream.get_ref().set_nodelay(true);
                let queue = self.new_conn(conn);
                self.start_io(conn, stream, queue);
            }
            Msg::Disk(key, done) => return self.disk_done(key, done),
            Msg::MagnetOpened { key, result } => self.magnet_opened(key, result, now),
            Msg::DhtRouters(addrs) => self.dht_routers(addrs),
        }
        self.drain();
    }

    /// Registers a connection; returns its writer's end of the queue.
    fn new_conn(&mut self, conn: ConnId) -> Receiver<Bytes> {
        let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
        let (kill_tx, kill) = async_channel::bounded(1);
        self.conns.insert(
            conn,
            Conn {
                queue,
                _kill: kill_tx,
                kill,
                pending: None,
            },
        );
        rx
    }

    fn start_io(&mut self, conn: ConnId, stream: Async<TcpStream>, queue: Receiver<Bytes>) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let stream = Arc::new(stream);
        let inbox = &self.inbox_tx;
        self.executor.spawn(net::read(
            conn,
            stream.clone(),
            inbox.clone(),
            self.gate.clone(),
            self.read_buffers.clone(),
            c.kill.clone(),
        ));
        self.executor.spawn(net::write(
            conn,
            stream,
            queue,
            inbox.clone(),
            c.kill.clone(),
        ));
    }

    // ---- the engine's outputs ----

    /// Carries out everything the engine asks for now, until it asks nothing more.
    fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            if let Some(out) = self.disk.carry_out(&mut self.engine, out, Instant::now()) {
                self.carry_out(out);
            }
        }
        self.submit_disk_jobs();
    }

    /// Carries out an output that is not the disk's (see [`Dispatcher::carry_out`]).
    fn carry_out(&mut self, out: Output) {
        let now = Instant::now();
        match out {
            Output::Connect { conn, addr } => {
                let queue = self.new_conn(conn);
                let c = self.conns.get_mut(&conn).expect("just added");
                c.pending = Some(queue);
                let kill = c.kill.clone();
                self.executor
                    .spawn(net::connect(conn, addr, self.inbox_tx.clone(), kill));
            }
            Output::Send { conn, data } => {
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                if let Err(TrySendError::Full(_)) = c.queue.try_send(data) {
                    self.conns.remove(&conn);
                    self.engine.handle(Input::Closed { conn }, now);
                }
                // Closed: the writer failed and its `Closed` is on the way.
            }
            Output::Close { conn } => {
                // The writer sends what is queued, then shuts the socket.
                self.conns.remove(&conn);
            }
            Output::TrackerHttp {
                torrent,
                id,
                url,
                request,
            } => {
                let inbox = self.inbox_tx.clone();
                self.executor.spawn(async move {
                    let result = http::exchange(&url, &request).await;
                    let input = Input::TrackerHttp {
                        torrent,
                        id,
                        result,
                    };
                    let _ = inbox.send(Msg::Input(input)).await;
                });
            }
            Output::WebSeedRequest {
                torrent,
                id,
                url,
                request,
                max_body,
            } => {
                let inbox = self.inbox_tx.clone();
                let web = self.web.clone();
                let gate = self.gate.clone();
                self.executor.spawn(async move {
                    let result = http::web_seed_exchange(&web, &url, &request, max_body).await;
                    // An answer is data for the disk: while the disk lags it waits here, as
                    // peers' readers do, so answers do not pile up in the write-back (nor
                    // does the engine start the next request).
                    gate.pass().await;
                    let input = Input::WebSeedResponse {
                        torrent,
                        id,
                        result,
                    };
                    let _ = inbox.send(Msg::Input(input)).await;
                });
            }
            Output::LsdSend { data } => {
                if let Some(lsd) = &self.lsd {
                    // A lost announce is sent again at the next one's time.
                    let _ = lsd.get_ref().send_to(&data, shoal_core::lsd::GROUP_V4);
                }
            }
            Output::UdpSend { to, data } => {
                // A lost datagram is retransmitted by the engine's UDP tracker client.
                let _ = self.udp.get_ref().send_to(&data, to);
            }
            Output::Event(event) => self.engine_event(event, now),
            // An output added to the engine that this runtime does not carry out yet: loud
            // in tests, ignored in release.
            other => debug_assert!(false, "output not carried out: {other:?}"),
        }
    }
}

/// A torrent that is in the session and not being removed (a free function, so the borrow
/// stays apart from the driver's other fields).
fn entry_in(
    torrents: &mut BTreeMap<TorrentKey, Entry>,
    key: TorrentKey,
) -> Result<&mut Entry, Error> {
    torrents
        .get_mut(&key)
        .filter(|e| e.removed.is_none())
        .ok_or(Error::NoSuchTorrent(key))
}

/// A paused torrent's figures, from its verified pieces.
fn paused_stats(entry: &Entry, verified: &Bitfield) -> TorrentStats {
    let info = &entry.storage.meta().info;
    let bytes_verified = verified
        .iter_ones()
        .map(|i| u64::from(info.piece_size(PieceIndex(i))))
        .sum();
    TorrentStats {
        pieces_verified: verified.count_ones(),
        piece_count: info.piece_count(),
        bytes_verified,
        total_length: info.total_length,
        downloaded: 0,
        uploaded: 0,
        download_rate: 0,
        upload_rate: 0,
        peers: 0,
        complete: verified.is_full(),
    }
}
