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
//! Downloaded blocks mostly never come here: the engine's task stages them in the torrent's
//! [`WriteBack`] (memory only) and reports them written at once; the hash job then hashes
//! the piece from memory and writes it only if it is good (see `shoal_io::writeback`).

use std::sync::Arc;

use async_channel::{Receiver, Sender};
use shoal_core::bitfield::Bitfield;
use shoal_core::IoError;
use shoal_io::{PieceDone, PieceJob, Storage};

use crate::driver::Msg;
use crate::session::TorrentKey;

/// Work for the pool.
pub enum Job {
    /// A block read, a block write or a piece hash (shared with the mio runtime).
    Piece(PieceJob),
    /// Every piece of a file is verified: give it its final name.
    FileCompleted { file: usize, storage: Arc<Storage> },
    /// Sync the files, then write the resume record for `verified` in the download folder.
    Save {
        verified: Bitfield,
        storage: Arc<Storage>,
    },
}

/// What a job came to.
pub enum Done {
    Piece(PieceDone),
    FileCompleted {
        file: usize,
        result: Result<(), IoError>,
    },
    Saved(Result<(), String>),
}

/// The queue into the workers; dropping it ends them once the queue is empty.
pub struct Pool {
    jobs: Sender<(TorrentKey, Job)>,
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
    pub fn submit(&self, key: TorrentKey, job: Job) {
        // Unbounded in count, so never full: the bytes of queued writes are charged to
        // the disk budget (reading stops past it), reads and hashes are bounded by the
        // engine. The workers outlive the sender, so never closed.
        let _ = self.jobs.try_send((key, job));
    }
}

fn work(queue: &Receiver<(TorrentKey, Job)>, inbox: &Sender<Msg>) {
    while let Ok((key, job)) = queue.recv_blocking() {
        if inbox.send_blocking(Msg::Disk(key, run(job))).is_err() {
            return;
        }
    }
}

fn run(job: Job) -> Done {
    match job {
        Job::Piece(job) => Done::Piece(job.run()),
        Job::FileCompleted { file, storage } => Done::FileCompleted {
            file,
            result: storage.file_completed(file).map_err(IoError::from),
        },
        Job::Save { verified, storage } => Done::Saved(
            storage
                .sync()
                .and_then(|()| {
                    shoal_io::resume::save(storage.dir(), storage.meta(), &verified, &storage)
                })
                .map_err(|e| e.to_string()),
        ),
    }
}
