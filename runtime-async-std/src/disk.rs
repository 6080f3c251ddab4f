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
use bytes::Bytes;
use shoal_core::bitfield::Bitfield;
use shoal_core::engine::{ConnId, Input, TorrentId};
use shoal_core::{BlockRequest, PieceIndex};
use shoal_io::{Storage, WriteBack};

use crate::driver::Msg;
use crate::session::TorrentKey;

/// Work for the pool.
pub enum Job {
    Read {
        torrent: TorrentId,
        conn: ConnId,
        block: BlockRequest,
        storage: Arc<Storage>,
    },
    Write {
        torrent: TorrentId,
        block: BlockRequest,
        data: Bytes,
        storage: Arc<Storage>,
    },
    /// Hash a piece (from the write-back cache if it holds all of it) and write it if good.
    Hash {
        torrent: TorrentId,
        piece: PieceIndex,
        expected: [u8; 20],
        storage: Arc<Storage>,
        cache: Arc<WriteBack>,
    },
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
    /// An answer for the engine as it is.
    Input(Input),
    /// A hash, or the failure to read the piece back.
    Hashed {
        torrent: TorrentId,
        piece: PieceIndex,
        result: Result<bool, String>,
    },
    FileCompleted {
        file: usize,
        result: Result<(), String>,
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
        // Unbounded (the engine bounds what it asks for), so never full; the workers
        // outlive the sender, so never closed.
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
        Job::Read {
            torrent,
            conn,
            block,
            storage,
        } => Done::Input(Input::BlockRead {
            torrent,
            conn,
            block,
            result: storage
                .read_block(block.piece, block.begin, block.length)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
        }),
        Job::Write {
            torrent,
            block,
            data,
            storage,
        } => Done::Input(Input::BlockWritten {
            torrent,
            block,
            result: storage
                .write_block(block.piece, block.begin, &data)
                .map_err(|e| e.to_string()),
        }),
        Job::Hash {
            torrent,
            piece,
            expected,
            storage,
            cache,
        } => Done::Hashed {
            torrent,
            piece,
            result: cache
                .hash_and_write(&storage, piece, &expected)
                .map_err(|e| e.to_string()),
        },
        Job::FileCompleted { file, storage } => Done::FileCompleted {
            file,
            result: storage.file_completed(file).map_err(|e| e.to_string()),
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
