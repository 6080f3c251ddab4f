//! The socket tasks: a reader and a writer per peer connection, the outbound connect, the
//! listener and the UDP socket. Each turns what its socket does into a [`Msg`] for the
//! engine's task and never decides anything itself.
//!
//! Lifetimes: every task of a connection also watches the connection's `kill` channel,
//! whose only sender the engine's task holds; dropping it (the engine closed the
//! connection, or the session ended) stops the reader and the connect at once and gives
//! the writer [`LINGER`] to send what is queued (a last `have`, a reject) before the socket
//! is shut. Nothing is ever sent on a `kill` channel: its closing is the signal.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use bytes::{Buf, Bytes};
use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use shoal_core::engine::{ConnId, Input};
use shoal_io::read_buf::{ReadBuf, ReadBuffers, MAX_READ_CHUNK};
use shoal_io::{DiskBudget, Stage};

use crate::driver::Msg;

/// The most one connection's reader takes the disk budget past its high mark: it passes
/// the gate, then reads at most one chunk.
pub const MAX_READ_PER_WAKEUP: usize = MAX_READ_CHUNK;
/// Most queued buffers written in one vectored write.
const WRITE_BATCH: usize = 64;
/// How long a closed connection may take to write out what was queued before it.
pub const LINGER: Duration = Duration::from_secs(5);
/// After a failed accept (out of descriptors), wait before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where socket readers wait while the disk budget says reading is paused (see
/// `shoal_io::budget`); the engine's task wakes them once it is not.
pub struct Gate {
    budget: Arc<DiskBudget>,
    opened: event_listener::Event,
}

impl Gate {
    pub fn new(budget: Arc<DiskBudget>) -> Gate {
        Gate {
            budget,
            opened: event_listener::Event::new(),
        }
    }

    /// Returns once reading is allowed.
    pub async fn pass(&self) {
        while self.budget.paused() {
            let listener = self.opened.listen();
            // Checked again after listening, so a wake between the two is not lost.
            if !self.budget.paused() {
                return;
            }
            listener.await;
        }
    }

    /// Lets every waiting reader go if reading is allowed now.
    pub fn wake(&self) {
        if !self.budget.paused() {
            self.opened.notify(usize::MAX);
        }
    }

    fn budget(&self) -> &Arc<DiskBudget> {
        &self.budget
    }
}

/// Resolves when `kill`'s sender is dropped.
async fn killed(kill: &Receiver<()>) {
    let _ = kill.recv().await;
}

/// Dials `addr` for `conn`: [`Msg::Connected`] with the stream, or `ConnectFailed`.
pub async fn connect(conn: ConnId, addr: SocketAddr, inbox: Sender<Msg>, kill: Receiver<()>) {
    let attempt = async { Some(Async::<TcpStream>::connect(addr).await) };
    let msg = match future::or(attempt, async {
        killed(&kill).await;
        None
    })
    .await
    {
        // Closed meanwhile (the engine's connect timeout): nobody waits for an answer.
        None => return,
        Some(Ok(stream)) => Msg::Connected { conn, stream },
        Some(Err(_)) => Msg::Input(Input::ConnectFailed { conn }),
    };
    let _ = inbox.send(msg).await;
}

/// Reads until the peer closes or the connection is killed, handing every chunk to the
/// engine as `Received` (charged to the disk budget until the engine has it) and the end
/// as `Closed`. Before each read it passes the `gate`: while the disk lags it reads
/// nothing, and TCP slows the peer.
pub async fn read(
    conn: ConnId,
    stream: Arc<Async<TcpStream>>,
    inbox: Sender<Msg>,
    gate: Arc<Gate>,
    buffers: Arc<ReadBuffers>,
    kill: Receiver<()>,
) {
    let reading = async {
        let mut socket = &*stream;
        // What is read goes to the engine as the front of the buffer, split off without a
        // copy: consecutive chunks of one allocation, which the engine joins. When its room
        // runs low the buffer is renewed from `buffers` (recycled when free).
        let mut buf = ReadBuf::new();
        loop {
            gate.pass().await;
            let room = buf.room(&buffers);
            let len = room.len();
            match socket.read(room).await {
                Ok(0) => break,
                Ok(n) => {
                    if n == len {
                        buf.grow();
                    }
                    let data = buf.take(n);
                    let charge = gate.budget().charge(Stage::Received, n);
                    let msg = Msg::Received { conn, data, charge };
                    if inbox.send(msg).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        buf.release(&buffers);
        let _ = inbox.send(Msg::Input(Input::Closed { conn })).await;
    };
    future::or(reading, killed(&kill)).await;
}

/// Writes what the engine queues for `conn`, in order, reporting `Sent` as bytes leave.
/// When the queue's sender is dropped (the engine closed the connection) it writes what is
/// left, for at most [`LINGER`], and shuts the socket, which also ends the reader.
pub async fn write(
    conn: ConnId,
    stream: Arc<Async<TcpStream>>,
    queue: Receiver<Bytes>,
    inbox: Sender<Msg>,
    kill: Receiver<()>,
) {
    let writing = async {
        let mut socket = &*stream;
        let mut batch: Vec<Bytes> = Vec::with_capacity(WRITE_BATCH);
        while let Ok(first) = queue.recv().await {
            batch.push(first);
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let mut at = 0;
            while at < batch.len() {
                let slices: Vec<IoSlice<'_>> =
                    batch[at..].iter().map(|b| IoSlice::new(b)).collect();
                let mut n = match socket.write_vectored(&slices).await {
                    Ok(0) => return false,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                };
                drop(slices);
                let sent = n;
                while n > 0 {
                    let front = &mut batch[at];
                    if n >= front.len() {
                        n -= front.len();
                        at += 1;
                    } else {
                        front.advance(n);
                        n = 0;
                    }
                }
                let msg = Msg::Input(Input::Sent { conn, bytes: sent });
                if inbox.send(msg).await.is_err() {
                    return true;
                }
            }
            batch.clear();
        }
        true
    };
    let linger = async {
        killed(&kill).await;
        Timer::after(LINGER).await;
        true
    };
    let clean = future::or(writing, linger).await;
    if !clean {
        let _ = inbox.send(Msg::Input(Input::Closed { conn })).await;
    }
    let _ = stream.get_ref().shutdown(Shutdown::Both);
}

/// Accepts peers until `stop`'s sender is dropped.
pub async fn listen(listener: Async<TcpListener>, inbox: Sender<Msg>, stop: Receiver<()>) {
    let accepting = async {
        loop {
            match listener.accept().await {
                Ok((stream, addr)) => {
                    if inbox.send(Msg::Accepted { stream, addr }).await.is_err() {
                        return;
                    }
                }
                // The peer left before we took it, or we are out of descriptors: that one
                // is lost; pause so a persistent failure does not spin.
                Err(_) => {
                    Timer::after(ACCEPT_BACKOFF).await;
                }
            }
        }
    };
    future::or(accepting, killed(&stop)).await;
}

/// Hands every datagram to the engine (tracker answers) until `stop`'s sender is dropped.
pub async fn receive_udp(socket: Arc<Async<UdpSocket>>, inbox: Sender<Msg>, stop: Receiver<()>) {
    receive_datagrams(socket, inbox, stop, |from, data| Input::UdpReceived {
        from,
        data,
    })
    .await
}

/// Reads the local service discovery socket (BEP 14) into the engine's inbox.
pub async fn receive_lsd(socket: Arc<Async<UdpSocket>>, inbox: Sender<Msg>, stop: Receiver<()>) {
    receive_datagrams(socket, inbox, stop, |from, data| Input::LsdReceived {
        from,
        data,
    })
    .await
}

async fn receive_datagrams(
    socket: Arc<Async<UdpSocket>>,
    inbox: Sender<Msg>,
    stop: Receiver<()>,
    input: fn(std::net::SocketAddr, Vec<u8>) -> Input,
) {
    let receiving = async {
        let mut buf = vec![0u8; 2048];
        loop {
            match socket.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    let data = buf[..n].to_vec();
                    let msg = Msg::Input(input(from, data));
                    if inbox.send(msg).await.is_err() {
                        return;
                    }
                }
                // ICMP errors of earlier sends show up here on some systems: not ours to
                // act on (the engine retransmits); pause so a persistent failure does not
                // spin.
                Err(_) => {
                    Timer::after(ACCEPT_BACKOFF).await;
                }
            }
        }
    };
    future::or(receiving, killed(&stop)).await;
}
