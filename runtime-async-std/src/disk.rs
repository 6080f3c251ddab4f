//! Disk reads and writes, SHA-1 of pieces, renames and resume records, on the `blocking`
//! crate's thread pool (the pool async-std's `spawn_blocking` uses too, and smol's
//! `unblock`), so the engine's task never waits on a disk or a hash.
//!
//! A fixed number of workers (the session's `workers`) each run a loop on a pool thread,
//! taking jobs from one queue: that bounds how many disk operations and hashes run at once
//! (a burst of block writes does not become hundreds of threads), and costs no task spawn
//! per block. Results go back to the engine's task through its inbox. Jobs of one torrent
//! may finish in any order: the engine never asks for a hash before the piece's writes are
//! reported done.
//!
//! The jobs are the disk dispatcher's ([`shoal_io::Dispatcher`], shared with the mio
//! runtime): downloaded blocks mostly never come here, being staged in memory and reported
//! written at once; the hash job then hashes the piece from memory and writes it only if
//! it is good (see `shoal_io::writeback`).

use async_channel::{Receiver, Sender};
use shoal_io::DiskJob;

use crate::driver::Msg;
use crate::session::TorrentKey;

/// The queue into the workers; dropping it ends them once the queue is empty.
pub struct Pool {
    jobs: Sender<(TorrentKey, DiskJob)>,
}

impl Pool {
    pub fn new(workers: usize, inbox: Sender<Msg>) -> Pool {
        let (jobs, queue) = async_channel::unbounded();
        for _ in 0..workers.max(1) {
            let (queue, inbox) = (queue.clone(), inbox.clone());
            blocking::unblock(move || work(&queue, &inbox)).detach();
        }
        Pool { jobs }
    }

    /// Queues `job` for torrent `key`; its result comes back as [`Msg::Disk`].
    pub fn submit(&self, key: TorrentKey, job: DiskJob) {
        // Unbounded in count, so never full: the bytes of queued writes are charged to
        // the disk budget (reading stops past it), reads and hashes are bounded by the
        // engine. The workers outlive the sender, so never closed.
        let _ = self.jobs.try_send((key, job));
    }
}

fn work(queue: &Receiver<(TorrentKey, DiskJob)>, inbox: &Sender<Msg>) {
    while let Ok((key, job)) = queue.recv_blocking() {
        if inbox.send_blocking(Msg::Disk(key, job.run())).is_err() {
            return;
        }
    }
}
