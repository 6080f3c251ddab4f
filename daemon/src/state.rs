//! The state folder (`$XDG_STATE_HOME/shoal` unless told): everything a daemon needs to
//! carry on after a restart, a crash or a `kill -9`.
//!
//! ```text
//! state.json          the torrent list (ids, folders, paused, wanted files, priorities,
//!                     sequential, dates, totals), the session's settings, the feeds
//!                     followed (with what was taken from them), the next ids
//! state.journal       the torrents added, changed and removed since state.json was
//!                     written, a line each (see `store`)
//! torrents/HASH.torrent  each torrent's .torrent, as added
//! rpc-address         the control address actually bound (`127.0.0.1:9091`): how
//!                     `shoal add/list/…` find the daemon
//! rpc-auth            generated `user:password`, when listening beyond loopback
//!                     without `--rpc-auth` (mode 0600)
//! daemon.lock         flock'd while a daemon runs on this folder (one at a time)
//! ```
//!
//! Resume records are not here: each lives beside its data, in the download folder's
//! `.shoal/` (shoal-io's), so a torrent's folder carries its own; `state.json` points to
//! the folder. Every other file here is written whole to a temporary name, synced and
//! renamed: a crash leaves the old version or the new one, never a mix.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shoal_core::picker::Priority;

use crate::control::{FileChange, Id, Settings};

/// One torrent of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorrentRecord {
    pub id: Id,
    /// Lower-case hex; names `torrents/HASH.torrent`.
    pub info_hash: String,
    pub name: String,
    /// The folder its content goes in (as `DIR/<name>`).
    pub download_dir: String,
    /// Stopped by the user (or by a failure, with `error`).
    pub paused: bool,
    #[serde(default)]
    pub error: Option<String>,
    /// Per file: downloaded or skipped.
    pub wanted: Vec<bool>,
    /// Per file: -1 low, 0 normal, 1 high (Transmission's numbers).
    pub priorities: Vec<i8>,
    #[serde(default)]
    pub sequential: bool,
    /// Unix seconds.
    pub added_date: i64,
    /// Unix seconds; 0 until complete.
    #[serde(default)]
    pub done_date: i64,
    /// Payload totals of earlier runs (the running one adds its own).
    #[serde(default)]
    pub downloaded_ever: u64,
    #[serde(default)]
    pub uploaded_ever: u64,
    /// The magnet link it was added by: until its metadata is saved as
    /// `torrents/HASH.torrent` a restart fetches the metadata again; its `x.pe` peers are
    /// dialled at every start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub magnet: Option<String>,
}

impl TorrentRecord {
    /// A new record for a torrent of `files` files, everything wanted at normal priority.
    pub fn new(
        id: Id,
        info_hash: String,
        name: String,
        download_dir: String,
        files: usize,
    ) -> Self {
        TorrentRecord {
            id,
            info_hash,
            name,
            download_dir,
            paused: false,
            error: None,
            wanted: vec![true; files],
            priorities: vec![0; files],
            sequential: false,
            added_date: 0,
            done_date: 0,
            downloaded_ever: 0,
            uploaded_ever: 0,
            magnet: None,
        }
    }

    /// Applies a change of wanted files and priorities; indices past the file list are an
    /// error and change nothing.
    pub fn apply(&mut self, change: &FileChange) -> Result<(), String> {
        let n = self.wanted.len();
        let lists = [
            &change.wanted,
            &change.unwanted,
            &change.high,
            &change.normal,
            &change.low,
        ];
        if let Some(bad) = lists.iter().flat_map(|l| l.iter()).find(|&&i| i >= n) {
            return Err(format!(
                "file index {bad} out of range: the torrent has {n} files"
            ));
        }
        for &i in &change.wanted {
            self.wanted[i] = true;
        }
        for &i in &change.unwanted {
            self.wanted[i] = false;
        }
        for (list, p) in [(&change.high, 1), (&change.normal, 0), (&change.low, -1)] {
            for &i in list {
                self.priorities[i] = p;
            }
        }
        if let Some(s) = change.sequential {
            self.sequential = s;
        }
        Ok(())
    }

    /// What the engine's picker is told per file. The engine knows skip, normal and high:
    /// Transmission's "low" downloads as normal.
    pub fn engine_priorities(&self) -> Vec<Priority> {
        self.wanted
            .iter()
            .zip(&self.priorities)
            .map(|(&wanted, &p)| match (wanted, p) {
                (false, _) => Priority::Skip,
                (true, p) if p > 0 => Priority::High,
                _ => Priority::Normal,
            })
            .collect()
    }
}

/// What `state.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub next_id: Id,
    pub settings: Settings,
    pub torrents: Vec<TorrentRecord>,
    pub next_feed_id: u32,
    pub feeds: Vec<crate::feed::FeedRecord>,
}

impl State {
    /// A fresh id (1 for the first torrent).
    pub fn take_id(&mut self) -> Id {
        self.next_id = self.next_id.max(1);
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

/// The state folder and the paths inside it.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// `$XDG_STATE_HOME/shoal`, or `~/.local/state/shoal`.
    pub fn default_path() -> Option<PathBuf> {
        let from = |var: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        from("XDG_STATE_HOME")
            .or_else(|| from("HOME").map(|h| h.join(".local/state")))
            .map(|p| p.join("shoal"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }

    pub fn journal_file(&self) -> PathBuf {
        self.root.join("state.journal")
    }

    pub fn torrent_file(&self, info_hash: &str) -> PathBuf {
        self.root
            .join("torrents")
            .join(format!("{info_hash}.torrent"))
    }

    pub fn address_file(&self) -> PathBuf {
        self.root.join("rpc-address")
    }

    pub fn auth_file(&self) -> PathBuf {
        self.root.join("rpc-auth")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced, then
/// renamed over it, and syncs the folder: after a crash the file is whole, old or new.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_survives_a_save_and_a_load() {
        let tmp = std::env::temp_dir().join(format!("shoal-state-test-{}", std::process::id()));
        let dir = StateDir::new(&tmp);
        fs::create_dir_all(&tmp).unwrap();
        let load = || crate::store::Store::open(dir.clone()).map(|(_, state)| state);
        let (mut store, empty) = crate::store::Store::open(dir.clone()).unwrap();
        assert_eq!(empty, State::default());
        let mut state = State::default();
        let id = state.take_id();
        assert_eq!(id, 1);
        let mut rec = TorrentRecord::new(id, "ab".repeat(20), "x".into(), "/d".into(), 3);
        rec.apply(&FileChange {
            unwanted: vec![2],
            high: vec![0],
            ..FileChange::default()
        })
        .unwrap();
        state.torrents.push(rec);
        store.save(&state).unwrap();
        assert_eq!(load().unwrap(), state);
        fs::write(dir.state_file(), b"{ not json").unwrap();
        assert!(load().unwrap_err().contains("not a shoal state file"));
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn file_changes_map_to_engine_priorities_and_bad_indices_change_nothing() {
        let mut rec = TorrentRecord::new(1, String::new(), String::new(), String::new(), 3);
        rec.apply(&FileChange {
            unwanted: vec![1],
            high: vec![2],
            low: vec![0],
            ..FileChange::default()
        })
        .unwrap();
        assert_eq!(
            rec.engine_priorities(),
            vec![Priority::Normal, Priority::Skip, Priority::High]
        );
        let before = rec.clone();
        assert!(rec
            .apply(&FileChange {
                wanted: vec![1],
                unwanted: vec![3],
                ..FileChange::default()
            })
            .is_err());
        assert_eq!(rec, before);
    }
}
