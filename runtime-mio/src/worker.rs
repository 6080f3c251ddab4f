//! The worker pool: disk reads and writes, SHA-1 of pieces, renames and name lookups, done
//! off the event loop so it never waits on a disk or a hash.
//!
//! Jobs go in through a shared queue; each result goes back through a channel and wakes the
//! loop with its [`mio::Waker`]. Jobs of one torrent may finish in any order: the engine
//! never asks for a hash before the piece's writes are reported done, so nothing here
//! needs ordering.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use mio::Waker;
use shoal_core::engine::{IoError, TorrentId};
use shoal_io::{DiskDone, DiskJob};

use crate::http::Purpose;

/// Work for a worker thread.
pub enum Job {
    /// Disk work of a torrent's, from the dispatcher (shared with the async runtime).
    Disk(TorrentId, DiskJob),
    /// Anything else that may block (saving a resume record).
    Run(Box<dyn FnOnce() -> Result<(), String> + Send>),
    /// Look up a tracker's host name.
    Resolve {
        torrent: TorrentId,
        id: Purpose,
        host: String,
        port: u16,
    },
}

/// What a job came to.
pub enum Done {
    Disk(TorrentId, DiskDone),
    Resolved {
        torrent: TorrentId,
        id: Purpose,
        result: Result<SocketAddr, IoError>,
    },
    Ran(Result<(), String>),
}

pub struct Pool {
    jobs: Option<Sender<Job>>,
    pub done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn new(threads: usize, waker: Arc<Waker>) -> Pool {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let threads = (0..threads.max(1))
            .map(|n| {
                let job_rx = job_rx.clone();
                let done_tx = done_tx.clone();
                let waker = waker.clone();
                thread::Builder::new()
                    .name(format!("shoal-worker-{n}"))
                    .spawn(move || work(&job_rx, &done_tx, &waker))
                    .expect("spawn a worker thread")
            })
            .collect();
        Pool {
            jobs: Some(job_tx),
            done: done_rx,
            threads,
        }
    }

    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The workers outlive the sender: a send can only fail after `drop`.
            let _ = jobs.send(job);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, waker: &Waker) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        let result = run(job);
        if done.send(result).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

fn run(job: Job) -> Done {
    match job {
        Job::Disk(torrent, job) => Done::Disk(torrent, job.run()),
        Job::Run(f) => Done::Ran(f()),
        Job::Resolve {
            torrent,
            id,
            host,
            port,
        } => Done::Resolved {
            torrent,
            id,
            result: (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| IoError::from(e).context(&host))
                .and_then(|mut addrs| {
                    addrs.next().ok_or_else(|| {
                        IoError::new(io::ErrorKind::NotFound, format!("{host}: no address found"))
                    })
                }),
        },
    }
}
