//! The engine's events passed on under the torrents' keys, with the session's own rules
//! applied on the way: seeding limits, progress; and the disk dispatcher's events (a
//! file under its final name, the torrent complete: its record saved).

use super::*;

impl Driver {
    /// Passes an engine event on under the torrent's key, and applies the session's own
    /// rules: seeding limits.
    pub(super) fn engine_event(&mut self, event: EngineEvent, now: Instant) {
        let key_of = |id: TorrentId| self.by_engine.get(&id).copied();
        if let EngineEvent::FetchingMetadata { torrent, .. }
        | EngineEvent::MetadataReceived { torrent, .. }
        | EngineEvent::MetadataFailed { torrent, .. } = &event
        {
            if let Some(key) = key_of(*torrent) {
                self.magnet_event(key, event);
            }
            return;
        }
        let event = match event {
            EngineEvent::Progress { torrent, stats } => {
                let Some(key) = key_of(torrent) else { return };
                match self.progress(key, stats, now) {
                    Some(event) => event,
                    None => return,
                }
            }
            EngineEvent::PieceVerified { torrent, piece } => {
                let Some(key) = key_of(torrent) else { return };
                Event::PieceVerified {
                    torrent: key,
                    piece,
                }
            }
            EngineEvent::HashFailed { torrent, piece } => {
                let Some(key) = key_of(torrent) else { return };
                Event::HashFailed {
                    torrent: key,
                    piece,
                }
            }
            // The dispatcher's (see `disk_event`): these come here only for a torrent it
            // no longer has.
            EngineEvent::FileCompleted { .. } | EngineEvent::Completed { .. } => return,
            EngineEvent::PeerConnected {
                torrent,
                addr,
                peer_id,
                stream,
                ..
            } => {
                let Some(key) = key_of(torrent) else { return };
                Event::PeerConnected {
                    torrent: key,
                    addr,
                    peer_id,
                    stream,
                }
            }
            EngineEvent::PeerClosed {
                torrent,
                addr,
                reason,
                ..
            } => Event::PeerClosed {
                torrent: torrent.and_then(key_of),
                addr,
                reason,
            },
            EngineEvent::PeerBanned { torrent, ip } => {
                let Some(key) = key_of(torrent) else { return };
                Event::PeerBanned { torrent: key, ip }
            }
            EngineEvent::TrackerAnswer {
                torrent,
                url,
                peers,
                seeders,
                leechers,
                warning,
            } => {
                let Some(key) = key_of(torrent) else { return };
                Event::TrackerAnswer {
                    torrent: key,
                    url,
                    peers,
                    seeders,
                    leechers,
                    warning,
                }
            }
            EngineEvent::TrackerError {
                torrent,
                url,
                error,
                failures,
                next_try,
            } => {
                let Some(key) = key_of(torrent) else { return };
                Event::TrackerError {
                    torrent: key,
                    url,
                    error,
                    failures,
                    next_try,
                }
            }
            EngineEvent::DhtAnswer {
                torrent,
                peers,
                announced,
                ..
            } => {
                let Some(key) = key_of(torrent) else { return };
                Event::DhtAnswer {
                    torrent: key,
                    peers,
                    announced,
                }
            }
            EngineEvent::StorageError { torrent, error } => {
                let Some(key) = key_of(torrent) else { return };
                Event::StorageError {
                    torrent: key,
                    error,
                }
            }
            EngineEvent::InternalError {
                torrent,
                refused,
                first,
            } => {
                let Some(key) = key_of(torrent) else { return };
                Event::Warning {
                    torrent: key,
                    message: shoal_core::engine::internal_error_message(refused, &first),
                }
            }
            EngineEvent::WebSeedError {
                torrent,
                url,
                reason,
                failures,
                retry_at,
            } => {
                let Some(key) = key_of(torrent) else { return };
                Event::WebSeedError {
                    torrent: key,
                    url,
                    reason,
                    failures,
                    retry_at,
                }
            }
            EngineEvent::WebSeedDropped {
                torrent,
                url,
                reason,
            } => {
                let Some(key) = key_of(torrent) else { return };
                Event::WebSeedDropped {
                    torrent: key,
                    url,
                    reason,
                }
            }
            // An event added to the engine that the session does not pass on yet.
            _ => return,
        };
        self.emit(event);
    }

    /// A running torrent's once-a-second figures: the seeding limit. Returns the event to
    /// pass on.
    pub(super) fn progress(
        &mut self,
        key: TorrentKey,
        mut stats: TorrentStats,
        now: Instant,
    ) -> Option<Event> {
        let e = self.torrents.get_mut(&key)?;
        stats.downloaded += e.carried_down;
        stats.uploaded += e.carried_up;
        let e = self.torrents.get(&key)?;
        let limit_reached = e.complete_since.is_some_and(|since| {
            stats.complete
                && e.options
                    .seed_limit
                    .reached(&stats, now.saturating_duration_since(since))
        });
        let event = Event::Progress {
            torrent: key,
            stats,
        };
        if limit_reached {
            self.emit(event);
            self.emit(Event::SeedingDone { torrent: key });
            let _ = self.pause(key, now);
            return None;
        }
        Some(event)
    }

    /// An event of the disk dispatcher's, for torrent `key`.
    pub(super) fn disk_event(&mut self, event: DiskEvent<TorrentKey>, now: Instant) {
        match event {
            DiskEvent::FileCompleted { torrent, file } => {
                let path = self
                    .torrents
                    .get(&torrent)
                    .and_then(|e| e.storage.path(file));
                if let Some(path) = path {
                    self.emit(Event::FileCompleted {
                        torrent,
                        file,
                        path,
                    });
                }
            }
            DiskEvent::Completed { torrent } => {
                if let Some(e) = self.torrents.get_mut(&torrent) {
                    e.complete_since = Some(now);
                    // A record saying "complete" makes the next start instant; it waits for
                    // the last writes.
                    e.save_pending = true;
                }
                self.settle(torrent);
                self.emit(Event::Completed { torrent });
            }
            DiskEvent::StorageError { torrent, error } => {
                self.emit(Event::StorageError { torrent, error })
            }
            DiskEvent::Saved { torrent, result } => {
                if let Err(e) = result {
                    self.emit(Event::Warning {
                        torrent,
                        message: format!("resume record not saved: {e}"),
                    });
                }
            }
        }
    }
}
