//! Magnet links in the daemon: a torrent known by its info-hash until peers give its
//! metadata (BEP 9, done by the engine), an ordinary torrent after.
//!
//! The way of one: **fetching** (in the engine under [`Runtime::add_magnet`], its `x.pe`
//! peers dialled, shown with the link's `dn=` name; the link itself kept in `state.json`)
//! → the metadata in ([`Event::MetadataReceived`]): its `.torrent` written to the state
//! folder like any added torrent's, the record sized to its files → **checking** on the
//! opener thread with `attach` set, the engine's torrent kept with its connections →
//! opened: [`Runtime::attach_metainfo`] gives it its storage and the pieces found there,
//! and from then on it is a torrent like the others (stop, start, restart, resume).
//!
//! Invariants: a magnet's record keeps its link (`state.json`): a restart before the
//! `.torrent` is written fetches the metadata again, one after reads the `.torrent`;
//! either way the link's `x.pe` peers are dialled whenever the torrent enters the engine
//! (they may be its only source). A fetching torrent is in the engine exactly while it
//! is not paused.
//!
//! [`Runtime::add_magnet`]: crate::runtime::Runtime::add_magnet
//! [`Runtime::attach_metainfo`]: crate::runtime::Runtime::attach_metainfo
//! [`Event::MetadataReceived`]: shoal_core::engine::Event::MetadataReceived

use std::net::SocketAddr;
use std::sync::Arc;

use shoal_core::engine::{TorrentId, TorrentOptions};
use shoal_core::magnet::Magnet;
use shoal_core::metainfo::Metainfo;
use shoal_daemon::control::{AddRequest, Added};
use shoal_daemon::state::TorrentRecord;

use super::torrents::{fetching, Entry, Opened, Phase, Torrents};

/// The name a magnet's torrent shows until its metadata is in: `dn=`, or the info-hash.
fn shown_name(magnet: &Magnet) -> String {
    magnet
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| magnet.info_hash.to_hex())
}

/// The `x.pe` peers of a record's magnet link (none for a link that does not parse).
pub(super) fn link_peers(link: Option<&str>) -> Vec<SocketAddr> {
    link.and_then(|l| Magnet::parse(l).ok())
        .map(|m| crate::magnet::peers(&m))
        .unwrap_or_default()
}

impl Torrents {
    /// Adds a magnet link (`peers`: its `x.pe` peers, resolved by the caller off the
    /// loop). The same info-hash as a torrent of the list is a duplicate, as for files.
    pub fn add_magnet(
        &mut self,
        magnet: Magnet,
        peers: Vec<SocketAddr>,
        req: &AddRequest,
    ) -> Result<Added, String> {
        let hash = magnet.info_hash.to_hex();
        let dir = match self.admit(&hash, req)? {
            Ok(dir) => dir,
            Err(duplicate) => return Ok(duplicate),
        };
        self.next_id = self.next_id.max(1);
        let id = self.next_id;
        self.next_id += 1;
        // Files are not known yet: choices of files in the request cannot be checked, and
        // are left out (everything wanted, as Transmission does for a magnet).
        let mut rec = TorrentRecord::new(id, hash.clone(), shown_name(&magnet), dir, 0);
        rec.paused = req.paused;
        rec.added_date = super::torrents::unix_now();
        rec.sequential = req.sequential;
        rec.magnet = Some(magnet.to_uri());
        let added = Added {
            id,
            name: rec.name.clone(),
            hash,
            duplicate: false,
        };
        self.entries.push(Entry {
            rec,
            meta: None,
            phase: Phase::Fetching {
                magnet: Box::new(magnet),
                engine: None,
            },
            peers,
        });
        self.files_added += 1;
        self.save_state();
        self.schedule();
        Ok(added)
    }

    /// A record of `state.json` whose metadata had not come when the daemon stopped: it
    /// is fetched again (a link that no longer parses shows as failed).
    pub(super) fn restore_magnet(&mut self, mut rec: TorrentRecord) {
        let link = rec.magnet.clone().unwrap_or_default();
        let phase = match Magnet::parse(&link) {
            Ok(magnet) => Phase::Fetching {
                magnet: Box::new(magnet),
                engine: None,
            },
            Err(e) => {
                rec.error = Some(format!("its magnet link does not parse: {e}"));
                Phase::Failed
            }
        };
        let peers = link_peers(Some(&link));
        self.entries.push(Entry {
            rec,
            meta: None,
            phase,
            peers,
        });
    }

    /// Puts every fetching torrent that is not paused into the engine: a fetch is small
    /// and is not held back by the download queue.
    pub(super) fn start_fetches(&mut self) {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            let Phase::Fetching {
                magnet,
                engine: None,
            } = &e.phase
            else {
                continue;
            };
            if e.rec.paused {
                continue;
            }
            let tid = self.rt.add_magnet(magnet);
            for &peer in &e.peers {
                self.rt.add_peer(tid, peer);
            }
            if let Phase::Fetching { engine, .. } = &mut self.entries[i].phase {
                *engine = Some(tid);
            }
        }
    }

    /// Takes a fetching torrent out of the engine (what was fetched is dropped; it starts
    /// again when started). False if torrent `i` is not fetching.
    pub(super) fn stop_fetch(&mut self, i: usize) -> bool {
        let Phase::Fetching { engine, .. } = &mut self.entries[i].phase else {
            return false;
        };
        if let Some(tid) = engine.take() {
            self.rt.remove_torrent(tid);
        }
        true
    }

    /// The metadata of fetching torrent `tid` is in: its `.torrent` goes to the state
    /// folder, then its folder is opened (the engine keeps the torrent meanwhile).
    pub(super) fn metadata_received(&mut self, tid: TorrentId, meta: Arc<Metainfo>) {
        let Some(i) = self.entries.iter().position(|e| fetching(e) == Some(tid)) else {
            return;
        };
        let path = self.dir.torrent_file(&self.entries[i].rec.info_hash);
        let saved = shoal_daemon::state::write_atomic(&path, &meta.to_torrent_bytes());
        let e = &mut self.entries[i];
        if let Err(err) = saved {
            // Without its .torrent it could not survive a restart: stopped, said why.
            crate::say::err_line(&format!("{}: {}: {err}", e.rec.name, path.display()));
            e.rec.error = Some(format!(
                "cannot keep the .torrent in the state folder: {err}"
            ));
            e.rec.paused = true;
            self.stop_fetch(i);
            self.save_state();
            return;
        }
        let files = meta.info.files.len();
        e.rec.name = meta.info.name.clone();
        e.rec.wanted = vec![true; files];
        e.rec.priorities = vec![0; files];
        e.rec.error = None;
        e.meta = Some(meta.clone());
        e.phase = Phase::Checking { attach: Some(tid) };
        let (id, dir) = (e.rec.id, e.rec.download_dir.clone());
        self.open(id, &dir, &meta);
        self.save_state();
    }

    /// The opener's answer for torrent `i`, whose metadata came to engine torrent `tid`.
    /// Stopped meanwhile, or the download queue full: the engine's torrent goes and it
    /// waits as an open torrent ([`Torrents::schedule`] starts it, a seed at once).
    pub(super) fn attach(&mut self, i: usize, tid: TorrentId, result: Opened) {
        let wait = self.entries[i].rec.paused || self.queue_full();
        let e = &mut self.entries[i];
        match result {
            Ok(d) if !wait => {
                let opts = TorrentOptions {
                    verified: Some(d.verified.clone()),
                    sequential: e.rec.sequential,
                };
                let engine = match self.rt.attach_metainfo_with(tid, d.storage.clone(), opts) {
                    Ok(()) => {
                        self.rt.set_file_priorities(tid, &e.rec.engine_priorities());
                        e.rec.error = None;
                        Some(tid)
                    }
                    Err(err) => {
                        self.rt.remove_torrent(tid);
                        e.rec.error = Some(err.to_string());
                        e.rec.paused = true;
                        None
                    }
                };
                e.phase = Phase::Open {
                    storage: d.storage,
                    lock: d.lock,
                    verified: d.verified,
                    engine,
                };
            }
            Ok(d) => {
                self.rt.remove_torrent(tid);
                e.phase = Phase::Open {
                    storage: d.storage,
                    lock: d.lock,
                    verified: d.verified,
                    engine: None,
                };
            }
            Err(why) => {
                self.rt.remove_torrent(tid);
                e.rec.error = Some(why);
                e.phase = Phase::Failed;
            }
        }
        self.save_state();
        self.schedule();
    }
}
