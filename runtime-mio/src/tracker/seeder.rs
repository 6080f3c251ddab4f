//! `shoal serve --seed`: the served torrents seeded over the peer wire protocol too, by
//! one engine (one [`Runtime`], one listening port) on a thread of its own.
//!
//! The server hands it the list of torrents it serves each time that list changes; the
//! seeder adds the new ones (their content checked first: every piece hashed, or a resume
//! record trusted, as `shoal seed` does, reading only) and removes those that are gone or
//! were made again (content that changed must not be offered under the old hashes). It
//! announces to the torrents' tracker, this server, so leechers find it there.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use shoal_core::engine::{EngineConfig, Event, TorrentId};
use shoal_core::metainfo::Metainfo;
use shoal_core::InfoHash;
use shoal_io::{random_peer_id, random_u64};

use crate::runtime::{Runtime, RuntimeConfig};
use crate::say;

/// The seeding thread, and how to reach it.
pub struct Seeder {
    tx: Option<Sender<Vec<Arc<Metainfo>>>>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Seeder {
    /// Starts seeding from `dir` (the served folder), listening on `listen`.
    pub fn start(dir: PathBuf, listen: SocketAddr) -> Result<Seeder, String> {
        let mut rt = Runtime::new(RuntimeConfig {
            listen,
            workers: 2,
            engine: EngineConfig {
                peer_id: random_peer_id(),
                rng_seed: random_u64(),
                ..EngineConfig::default()
            },
        })
        .map_err(|e| format!("seeding on {listen}: {e}"))?;
        let addr = rt.local_addr();
        let (tx, rx) = channel::<Vec<Arc<Metainfo>>>();
        let thread = std::thread::Builder::new()
            .name("serve-seed".into())
            .spawn(move || {
                let mut seeding: BTreeMap<InfoHash, TorrentId> = BTreeMap::new();
                loop {
                    match rx.try_recv() {
                        Ok(list) => set(&mut rt, &mut seeding, &dir, &list),
                        Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Disconnected) => break,
                    }
                    match rt.turn(Some(Duration::from_millis(200))) {
                        Ok(events) => {
                            for e in events {
                                if let Event::StorageError { error, .. } = e {
                                    say::err_line(&format!("shoal serve: seeding: {error}"));
                                }
                            }
                        }
                        Err(e) => {
                            say::err_line(&format!("shoal serve: seeding stopped: {e}"));
                            break;
                        }
                    }
                }
                let _ = rt.shutdown(Duration::from_secs(2));
            })
            .map_err(|e| e.to_string())?;
        Ok(Seeder {
            tx: Some(tx),
            thread: Some(thread),
            addr,
        })
    }

    /// Where peers reach it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Seed exactly these torrents from now on.
    pub fn set(&self, torrents: Vec<Arc<Metainfo>>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(torrents);
        }
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        // Closing the channel stops the thread, which announces `stopped`.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn set(
    rt: &mut Runtime,
    seeding: &mut BTreeMap<InfoHash, TorrentId>,
    dir: &std::path::Path,
    list: &[Arc<Metainfo>],
) {
    let wanted: BTreeMap<InfoHash, &Arc<Metainfo>> =
        list.iter().map(|m| (m.info_hash, m)).collect();
    let gone: Vec<InfoHash> = seeding
        .keys()
        .filter(|h| !wanted.contains_key(h))
        .copied()
        .collect();
    for hash in gone {
        if let Some(id) = seeding.remove(&hash) {
            rt.remove_torrent(id);
        }
    }
    for (hash, meta) in wanted {
        if seeding.contains_key(&hash) {
            continue;
        }
        let added = shoal_io::open_seed(dir, (*meta).clone(), |_, _| {})
            .map_err(|e| e.to_string())
            .and_then(|(storage, verified)| {
                rt.add_torrent((*meta).clone(), storage, verified)
                    .map_err(|e| e.to_string())
            });
        match added {
            Ok(id) => {
                seeding.insert(hash, id);
                say::out_line(&format!("shoal serve: seeding {}", meta.info.name));
            }
            Err(why) => say::err_line(&format!(
                "shoal serve: not seeding {}: {why}",
                meta.info.name
            )),
        }
    }
}
