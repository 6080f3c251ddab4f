//! The engine's events passed on under the torrents' keys, with the session's own rules
//! applied on the way: resume records saved now and then and on completion, seeding
//! limits, progress.

use super::*;

impl Driver {
    /// Passes an engine event on under the torrent's key, and applies the session's own
    /// rules: resume records saved now and then and on completion, seeding limits.
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
                match self.progress(key, torrent, stats, now) {
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
            EngineEvent::FileCompleted { .. } => return, // see `carry_out`
            EngineEvent::Completed { torrent } => {
                let Some(key) = key_of(torrent) else { return };
                if let Some(e) = self.torrents.get_mut(&key) {
                    e.complete_since = Some(now);
                    // A record saying "complete" makes the next start instant; it waits for
                    // the last writes and renames.
                    e.save_pending = true;
                }
                self.settle(key);
                // Told once every file has its final name (see `renames`).
                if !self.renames.completed(key) {
                    return;
                }
                Event::Completed { torrent: key }
            }
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

    /// A running torrent's once-a-second figures: the periodic record save and the
    /// seeding limit. Returns the event to pass on.
    pub(super) fn progress(
        &mut self,
        key: TorrentKey,
        torrent: TorrentId,
        mut stats: TorrentStats,
        now: Instant,
    ) -> Option<Event> {
        let e = self.torrents.get_mut(&key)?;
        stats.downloaded += e.carried_down;
        stats.uploaded += e.carried_up;
        let due = now.saturating_duration_since(e.last_save) >= self.config.resume_interval;
        if due && e.saved_pieces != Some(stats.pieces_verified) {
            // Writes still queued may be left out of the record: they are re-fetched or
            // re-verified next time, never trusted unverified.
            e.last_save = now;
            e.saved_pieces = Some(stats.pieces_verified);
            if let Some(verified) = self.engine.verified(torrent).cloned() {
                let storage = e.storage.clone();
                self.submit(key, Job::Save { verified, storage });
            }
        }
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
}
