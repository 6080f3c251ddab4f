//! Torrents added from a magnet link, until they have storage: the engine fetches the
//! metadata from peers (see `shoal_core::engine` `add_magnet`); here, once it is in, the
//! `.torrent` is saved beside the resume record and the folder is opened on the blocking
//! pool (`shoal_io::open_download`, with all its checks), then the torrent becomes an
//! [`Entry`] like any other, under the same key and the same engine id (its connections
//! are kept).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use shoal_core::engine::{Event as EngineEvent, TorrentId, TorrentOptions};
use shoal_core::magnet::Magnet;
use shoal_core::metainfo::Metainfo;
use shoal_io::Download;

use super::{Driver, Msg};
use crate::session::{AddOptions, Error, Event, TorrentKey};

/// A magnet link's torrent whose storage is not open yet.
pub(super) struct Fetching {
    pub(super) id: TorrentId,
    pub(super) info_hash: shoal_core::InfoHash,
    dir: PathBuf,
    options: AddOptions,
}

impl Driver {
    pub(super) fn add_magnet(
        &mut self,
        key: TorrentKey,
        magnet: Magnet,
        dir: PathBuf,
        options: AddOptions,
        now: Instant,
    ) -> Result<TorrentKey, Error> {
        if self.shutdown.is_some() {
            return Err(Error::Closed);
        }
        if let Some(existing) = self.find(magnet.info_hash) {
            return Err(Error::AlreadyAdded(existing));
        }
        let id = self.engine.add_magnet(&magnet, now);
        for &peer in &options.peers {
            self.engine.add_peer(id, peer, now);
        }
        self.by_engine.insert(id, key);
        self.fetching.insert(
            key,
            Fetching {
                id,
                info_hash: magnet.info_hash,
                dir,
                options,
            },
        );
        Ok(key)
    }

    /// The engine's events about fetching metadata, as the session's.
    pub(super) fn magnet_event(&mut self, key: TorrentKey, event: EngineEvent) {
        match event {
            EngineEvent::FetchingMetadata { stats, .. } => self.emit(Event::FetchingMetadata {
                torrent: key,
                peers: stats.peers,
                received: stats.received,
                size: stats.size,
            }),
            EngineEvent::MetadataReceived { meta, .. } => self.open_magnet(key, meta),
            EngineEvent::MetadataFailed { error, .. } => {
                self.emit(Event::Warning {
                    torrent: key,
                    message: format!(
                        "the metadata matches the info-hash but is not a usable torrent: {error}"
                    ),
                });
                self.remove_fetching(key, Instant::now());
            }
            _ => {}
        }
    }

    /// Saves the `.torrent` and opens the folder on the blocking pool; the answer comes
    /// back as [`Msg::MagnetOpened`].
    fn open_magnet(&mut self, key: TorrentKey, meta: Arc<Metainfo>) {
        let Some(f) = self.fetching.get(&key) else {
            return;
        };
        self.emit(Event::MetadataReceived {
            torrent: key,
            name: meta.info.name.clone(),
        });
        let (dir, overwrite) = (f.dir.clone(), f.options.overwrite);
        // Weak, like the session's own: the blocking job must not keep the channel open.
        let events = self.events.downgrade();
        let inbox = self.inbox_tx.clone();
        self.executor.spawn(async move {
            let result = blocking::unblock(move || {
                shoal_io::resume::save_torrent(&dir, &meta).map_err(Error::Io)?;
                shoal_io::open_download(&dir, meta, overwrite, |done, total| {
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
            .await;
            let _ = inbox.send(Msg::MagnetOpened { key, result }).await;
        });
    }

    /// The folder of a magnet link's torrent is open (or could not be): it downloads from
    /// now on (or is removed, and the user told why).
    pub(super) fn magnet_opened(
        &mut self,
        key: TorrentKey,
        result: Result<Download, Error>,
        now: Instant,
    ) {
        let Some(f) = self.fetching.remove(&key) else {
            return; // removed meanwhile: the folder's lock goes with `result`
        };
        let download = match result {
            Ok(d) => d,
            Err(e) => {
                self.emit(Event::Warning {
                    torrent: key,
                    message: e.to_string(),
                });
                let _ = self.engine.remove_torrent(f.id, now);
                return;
            }
        };
        let Download {
            storage,
            verified,
            lock,
        } = download;
        let complete = verified.is_full();
        let saved_pieces = shoal_io::saved_pieces(&storage, Some(&verified));
        let attached = self.engine.attach_metainfo(
            f.id,
            TorrentOptions {
                verified: Some(verified),
                sequential: f.options.sequential,
            },
            now,
        );
        if let Err(e) = attached {
            self.emit(Event::Warning {
                torrent: key,
                message: e.to_string(),
            });
            let _ = self.engine.remove_torrent(f.id, now);
            return;
        }
        self.insert_running(
            key,
            f.id,
            storage,
            lock,
            f.options,
            saved_pieces,
            complete,
            now,
        );
    }

    /// Takes a magnet link's torrent out before it has storage. Returns whether it was one.
    pub(super) fn remove_fetching(&mut self, key: TorrentKey, now: Instant) -> bool {
        let Some(f) = self.fetching.remove(&key) else {
            return false;
        };
        let _ = self.engine.remove_torrent(f.id, now);
        self.emit(Event::Removed { torrent: key });
        true
    }
}
