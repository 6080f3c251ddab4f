//! The session's commands carried out: add, pause, resume, remove, stats, shut down.

use super::*;

impl Driver {
    // ---- commands ----

    pub(super) fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Find { info_hash, reply } => {
                let _ = reply.try_send(self.find(info_hash));
            }
            Command::Add {
                key,
                download,
                options,
                reply,
            } => {
                let result = self.add(key, download, options, now);
                let _ = reply.try_send(result);
            }
            Command::AddMagnet {
                key,
                magnet,
                dir,
                options,
                reply,
            } => {
                let result = self.add_magnet(key, magnet, dir, options, now);
                let _ = reply.try_send(result);
            }
            Command::AddPeer { key, addr, reply } => {
                let result = self.entry(key).map(|e| {
                    if !e.options.peers.contains(&addr) {
                        e.options.peers.push(addr);
                    }
                    match e.run {
                        Run::Running(id) => Some(id),
                        Run::Paused(_) => None,
                    }
                });
                let result = match (result, self.fetching.get(&key)) {
                    (Err(_), Some(f)) => Ok(Some(f.id)),
                    (result, _) => result,
                };
                if let Ok(Some(id)) = result {
                    self.engine.add_peer(id, addr, now);
                }
                let _ = reply.try_send(result.map(drop));
            }
            Command::Pause { key, reply } => {
                let result = self.pause(key, now);
                let _ = reply.try_send(result);
            }
            Command::Resume { key, reply } => {
                let result = self.resume(key, now);
                let _ = reply.try_send(result);
            }
            Command::Remove { key, reply } if self.remove_fetching(key, now) => {
                let _ = reply.try_send(Ok(()));
            }
            Command::Remove { key, reply } => match self.pause(key, now) {
                Ok(()) => {
                    let e = self.torrents.get_mut(&key).expect("just paused");
                    e.removed = Some(vec![reply]);
                    e.save_pending = true;
                    self.settle(key);
                }
                Err(e) => {
                    let _ = reply.try_send(Err(e));
                }
            },
            Command::Stats { key, reply } => {
                let _ = reply.try_send(self.stats(key));
            }
            Command::SetRateLimits { limits, reply } => {
                self.engine.set_rate_limits(limits, now);
                let _ = reply.try_send(());
            }
            Command::List { reply } => {
                let keys = self
                    .torrents
                    .iter()
                    .filter(|(_, e)| e.removed.is_none())
                    .map(|(k, _)| *k)
                    .chain(self.fetching.keys().copied())
                    .collect();
                let _ = reply.try_send(keys);
            }
            Command::DiskStats { reply } => {
                let _ = reply.try_send(self.disk.budget().stats());
            }
            Command::Metainfo { key, reply } => {
                let meta = self.entry(key).map(|e| e.storage.meta().clone());
                let _ = reply.try_send(meta);
            }
            Command::Shutdown { reply } => self.start_shutdown(Some(reply)),
        }
        self.drain();
    }

    pub(super) fn find(&self, info_hash: InfoHash) -> Option<TorrentKey> {
        self.torrents
            .iter()
            .find(|(_, e)| e.storage.meta().info_hash == info_hash)
            .map(|(k, _)| *k)
            .or_else(|| {
                self.fetching
                    .iter()
                    .find(|(_, f)| f.info_hash == info_hash)
                    .map(|(k, _)| *k)
            })
    }

    /// A torrent that is in the session and not being removed.
    pub(super) fn entry(&mut self, key: TorrentKey) -> Result<&mut Entry, Error> {
        entry_in(&mut self.torrents, key)
    }

    pub(super) fn add(
        &mut self,
        key: TorrentKey,
        download: Download,
        options: AddOptions,
        now: Instant,
    ) -> Result<TorrentKey, Error> {
        let Download {
            storage,
            verified,
            lock,
        } = download;
        if self.shutdown.is_some() {
            return Err(Error::Closed);
        }
        if let Some(existing) = self.find(storage.meta().info_hash) {
            return Err(Error::AlreadyAdded(existing));
        }
        let complete = verified.is_full();
        let saved_pieces = shoal_io::saved_pieces(&storage, Some(&verified));
        let id = self.engine.add_torrent(
            storage.meta().clone(),
            TorrentOptions {
                verified: Some(verified),
                sequential: options.sequential,
            },
            now,
        )?;
        for &peer in &options.peers {
            self.engine.add_peer(id, peer, now);
        }
        self.insert_running(key, id, storage, lock, options, saved_pieces, complete, now);
        Ok(key)
    }

    /// Puts a torrent just added to the engine as `id` in the session, running.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert_running(
        &mut self,
        key: TorrentKey,
        id: TorrentId,
        storage: Arc<Storage>,
        lock: DownloadLock,
        options: AddOptions,
        saved_pieces: Option<u32>,
        complete: bool,
        now: Instant,
    ) {
        self.by_engine.insert(id, key);
        self.disk.add(id, key, storage.clone(), saved_pieces, now);
        self.torrents.insert(
            key,
            Entry {
                storage,
                _lock: lock,
                run: Run::Running(id),
                options,
                jobs: 0,
                save_pending: false,
                removed: None,
                complete_since: complete.then_some(now),
                carried_down: 0,
                carried_up: 0,
            },
        );
    }

    pub(super) fn pause(&mut self, key: TorrentKey, now: Instant) -> Result<(), Error> {
        let entry = self.entry(key)?;
        let Run::Running(id) = entry.run else {
            return Ok(());
        };
        if let Some(s) = self.engine.stats(id) {
            let entry = self.torrents.get_mut(&key).expect("looked up");
            entry.carried_down += s.downloaded;
            entry.carried_up += s.uploaded;
        }
        let entry = self.torrents.get_mut(&key).expect("looked up");
        let pieces = entry.storage.meta().info.piece_count();
        let verified = self
            .engine
            .remove_torrent(id, now)
            .unwrap_or_else(|| Bitfield::new(pieces));
        entry.run = Run::Paused(verified);
        // Blocks of pieces not yet verified are dropped with the run.
        self.disk.remove(id);
        let entry = self.torrents.get_mut(&key).expect("looked up");
        entry.complete_since = None;
        entry.save_pending = true;
        self.settle(key);
        self.emit(Event::Paused { torrent: key });
        Ok(())
    }

    pub(super) fn resume(&mut self, key: TorrentKey, now: Instant) -> Result<(), Error> {
        if self.shutdown.is_some() {
            return Err(Error::Closed);
        }
        let entry = entry_in(&mut self.torrents, key)?;
        let Run::Paused(verified) = &entry.run else {
            return Ok(());
        };
        let complete = verified.is_full();
        let saved = verified.count_ones();
        let id = self.engine.add_torrent(
            entry.storage.meta().clone(),
            TorrentOptions {
                verified: Some(verified.clone()),
                sequential: entry.options.sequential,
            },
            now,
        )?;
        entry.run = Run::Running(id);
        entry.complete_since = complete.then_some(now);
        self.disk
            .add(id, key, entry.storage.clone(), Some(saved), now);
        for &peer in &entry.options.peers {
            self.engine.add_peer(id, peer, now);
        }
        self.by_engine.insert(id, key);
        self.emit(Event::Resumed { torrent: key });
        Ok(())
    }

    pub(super) fn stats(&mut self, key: TorrentKey) -> Result<Stats, Error> {
        let entry = self.torrents.get(&key).filter(|e| e.removed.is_none());
        let entry = entry.ok_or(Error::NoSuchTorrent(key))?;
        let meta = entry.storage.meta();
        let (state, mut progress) = match &entry.run {
            Run::Running(id) => (
                State::Running,
                self.engine.stats(*id).ok_or(Error::NoSuchTorrent(key))?,
            ),
            Run::Paused(verified) => (State::Paused, paused_stats(entry, verified)),
        };
        progress.downloaded += entry.carried_down;
        progress.uploaded += entry.carried_up;
        Ok(Stats {
            state,
            name: meta.info.name.clone(),
            info_hash: meta.info_hash,
            progress,
        })
    }

    pub(super) fn start_shutdown(&mut self, reply: Option<Sender<()>>) {
        let now = Instant::now();
        match &mut self.shutdown {
            Some((waiting, _)) => waiting.extend(reply),
            None => {
                let fetching: Vec<TorrentKey> = self.fetching.keys().copied().collect();
                for key in fetching {
                    self.remove_fetching(key, now);
                }
                let keys: Vec<TorrentKey> = self.torrents.keys().copied().collect();
                for key in keys {
                    // Every running torrent: `stopped` to its trackers, record saved.
                    let _ = self.pause(key, now);
                }
                let deadline = now + self.config.shutdown_grace;
                self.shutdown = Some((reply.into_iter().collect(), Some(deadline)));
            }
        }
    }
}
