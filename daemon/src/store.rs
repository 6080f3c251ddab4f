//! The torrent list on disk, saved after every change at a cost that does not grow with
//! the list: `state.json` holds a whole [`State`] (a snapshot), and `state.journal` the
//! changes made since, one JSON line each, appended and synced.
//!
//! A save writes the torrents added, changed or removed and the next id as journal lines
//! when those describe the whole change (the list's order kept, nothing else changed: the
//! lines are replayed on a copy of what was saved to check); anything else (settings,
//! feeds, an order changed), or a journal grown past the snapshot's size (at least
//! [`JOURNAL_MIN`]), is written as a new snapshot and starts a new journal. Adding the
//! thousandth torrent thus appends one line instead of rewriting a thousand records.
//!
//! What a crash leaves, whenever it comes:
//!
//! - Each snapshot has a number (`journal_epoch`), and its journal starts with the same
//!   number. A journal whose number is not the snapshot's (the crash came after a new
//!   snapshot was renamed in, before its journal was started) is left unread: the
//!   snapshot already holds its changes.
//! - A change is acknowledged only once its line is synced. A last line cut short by a
//!   crash was never acknowledged and is skipped; a line that cannot be read before the
//!   last is an error, as an unreadable `state.json` is: the list is never silently
//!   replaced.
//! - After a failed append nothing more is appended to that journal: the next save writes
//!   a snapshot. The journal read at start is not appended to either (its last line may
//!   be cut short): the first save of a run writes a snapshot.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::control::Id;
use crate::state::{write_atomic, State, StateDir, TorrentRecord};

/// The journal may grow to the snapshot's size, and to this much however small the
/// snapshot: past it the next save writes a snapshot.
pub const JOURNAL_MIN: u64 = 64 * 1024;

/// A line of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// The first line: the snapshot this journal follows.
    Epoch(u64),
    /// A torrent added or changed: its whole record (replaces the one of its id, or is
    /// added at the end of the list).
    Torrent(TorrentRecord),
    /// A torrent removed.
    Removed(Id),
    /// The next torrent id.
    NextId(Id),
}

/// `state.json` as written: the state and the number its journal must carry.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    journal_epoch: u64,
    #[serde(flatten)]
    state: &'a State,
}

/// `state.json` as read (one written before the journal existed has no number).
#[derive(Deserialize)]
struct SnapshotIn {
    #[serde(default)]
    journal_epoch: u64,
    #[serde(flatten)]
    state: State,
}

/// Where the list is saved, and what was saved last.
#[derive(Debug)]
pub struct Store {
    dir: StateDir,
    /// What the files hold now (the snapshot with its journal replayed).
    saved: State,
    epoch: u64,
    /// The journal to append to; `None` until a snapshot starts one.
    journal: Option<File>,
    journal_bytes: u64,
    snapshot_bytes: u64,
}

impl Store {
    /// Reads the list of `dir`: its snapshot, then the changes journalled since. A missing
    /// snapshot is an empty list.
    pub fn open(dir: StateDir) -> Result<(Store, State), String> {
        let path = dir.state_file();
        let (epoch, mut state, snapshot_bytes) = match fs::read(&path) {
            Ok(bytes) => {
                let s: SnapshotIn = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: not a shoal state file: {e}", path.display()))?;
                (s.journal_epoch, s.state, bytes.len() as u64)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, State::default(), 0),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let journal = dir.journal_file();
        match fs::read(&journal) {
            Ok(bytes) => replay(&mut state, epoch, &bytes)
                .map_err(|e| format!("{}: {e}", journal.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", journal.display())),
        }
        let store = Store {
            dir,
            saved: state.clone(),
            epoch,
            journal: None,
            journal_bytes: 0,
            snapshot_bytes,
        };
        Ok((store, state))
    }

    /// Makes `state` what is on disk, synced before it returns: as journal lines when they
    /// say it all and the journal has room, else as a new snapshot.
    pub fn save(&mut self, state: &State) -> io::Result<()> {
        if *state == self.saved {
            return Ok(());
        }
        if let (Some(journal), Some(lines)) = (&mut self.journal, changes(&self.saved, state)) {
            let mut bytes = Vec::new();
            for line in &lines {
                serde_json::to_writer(&mut bytes, line).map_err(io::Error::other)?;
                bytes.push(b'\n');
            }
            let room = self.snapshot_bytes.max(JOURNAL_MIN);
            if self.journal_bytes + bytes.len() as u64 <= room {
                match journal.write_all(&bytes).and_then(|()| journal.sync_data()) {
                    Ok(()) => {
                        self.journal_bytes += bytes.len() as u64;
                        self.saved = state.clone();
                        return Ok(());
                    }
                    // Perhaps half written: never appended to again.
                    Err(_) => self.journal = None,
                }
            }
        }
        self.snapshot(state)
    }

    /// Writes `state` whole, then starts its journal. A journal that cannot be started
    /// leaves the next save to write a snapshot again.
    fn snapshot(&mut self, state: &State) -> io::Result<()> {
        let epoch = self.epoch + 1;
        let out = SnapshotOut {
            journal_epoch: epoch,
            state,
        };
        let bytes = serde_json::to_vec_pretty(&out).map_err(io::Error::other)?;
        write_atomic(&self.dir.state_file(), &bytes)?;
        self.epoch = epoch;
        self.saved = state.clone();
        self.snapshot_bytes = bytes.len() as u64;
        self.journal = None;
        let mut header = serde_json::to_vec(&Line::Epoch(epoch)).map_err(io::Error::other)?;
        header.push(b'\n');
        // Its old lines belong to the snapshot before: cut before the new number goes in.
        let started = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(self.dir.journal_file())
            .and_then(|mut f| {
                f.write_all(&header)?;
                f.sync_all()?;
                if let Ok(d) = File::open(self.dir.root()) {
                    d.sync_all()?;
                }
                Ok(f)
            });
        if let Ok(f) = started {
            self.journal = Some(f);
            self.journal_bytes = header.len() as u64;
        }
        Ok(())
    }
}

/// The journal lines that take `old` to `new`, if lines can say it all.
fn changes(old: &State, new: &State) -> Option<Vec<Line>> {
    if old.settings != new.settings
        || old.feeds != new.feeds
        || old.next_feed_id != new.next_feed_id
    {
        return None;
    }
    let mut lines = Vec::new();
    if old.next_id != new.next_id {
        lines.push(Line::NextId(new.next_id));
    }
    let was: HashMap<Id, &TorrentRecord> = old.torrents.iter().map(|t| (t.id, t)).collect();
    let is: HashMap<Id, &TorrentRecord> = new.torrents.iter().map(|t| (t.id, t)).collect();
    for t in &old.torrents {
        if !is.contains_key(&t.id) {
            lines.push(Line::Removed(t.id));
        }
    }
    for t in &new.torrents {
        if was.get(&t.id) != Some(&t) {
            lines.push(Line::Torrent(t.clone()));
        }
    }
    // The lines must rebuild `new` exactly, its order included.
    let mut check = old.clone();
    for line in &lines {
        apply(&mut check, line.clone());
    }
    (check == *new).then_some(lines)
}

fn apply(state: &mut State, line: Line) {
    match line {
        Line::Epoch(_) => {}
        Line::Torrent(rec) => match state.torrents.iter_mut().find(|t| t.id == rec.id) {
            Some(t) => *t = rec,
            None => state.torrents.push(rec),
        },
        Line::Removed(id) => state.torrents.retain(|t| t.id != id),
        Line::NextId(id) => state.next_id = id,
    }
}

/// Applies the journal `bytes` to `state` if it follows snapshot `epoch`.
fn replay(state: &mut State, epoch: u64, bytes: &[u8]) -> Result<(), String> {
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len() - 1;
    for (n, text) in lines.iter().enumerate() {
        if text.is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_slice(text) {
            Ok(line) => line,
            // Cut short by a crash before it was synced: never acknowledged.
            Err(_) if n == last => break,
            Err(e) => return Err(format!("line {}: not a shoal journal line: {e}", n + 1)),
        };
        if n == 0 {
            if line != Line::Epoch(epoch) || epoch == 0 {
                // Another snapshot's journal (the snapshot after it already holds it).
                return Ok(());
            }
            continue;
        }
        apply(state, line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: Id, name: &str) -> TorrentRecord {
        TorrentRecord::new(id, format!("{id:040x}"), name.into(), "/d".into(), 2)
    }

    fn folder(tag: &str) -> StateDir {
        let root = std::env::temp_dir().join(format!("shoal-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        StateDir::new(root)
    }

    fn reopened(dir: &StateDir) -> State {
        Store::open(dir.clone()).unwrap().1
    }

    #[test]
    fn adds_and_changes_are_journal_lines_and_come_back_in_order() {
        let dir = folder("lines");
        let (mut store, mut state) = Store::open(dir.clone()).unwrap();
        assert_eq!(state, State::default());
        for i in 1..=50 {
            state.next_id = i + 1;
            state.torrents.push(record(i, "t"));
            store.save(&state).unwrap();
        }
        state.torrents[7].paused = true;
        state.torrents.retain(|t| t.id != 3);
        store.save(&state).unwrap();
        // The first save wrote a snapshot; every later one appended.
        let snapshot = fs::read(dir.state_file()).unwrap();
        let on_disk: SnapshotIn = serde_json::from_slice(&snapshot).unwrap();
        assert_eq!(on_disk.state.torrents.len(), 1);
        let journal = fs::read_to_string(dir.journal_file()).unwrap();
        assert_eq!(journal.lines().count(), 1 + 49 * 2 + 2, "{journal}");
        assert_eq!(reopened(&dir), state);

        // A change the lines cannot say (the order) is a snapshot, and its journal starts
        // empty.
        state.torrents.swap(0, 1);
        store.save(&state).unwrap();
        assert_eq!(
            fs::read_to_string(dir.journal_file())
                .unwrap()
                .lines()
                .count(),
            1
        );
        assert_eq!(reopened(&dir), state);
        fs::remove_dir_all(dir.root()).unwrap();
    }

    #[test]
    fn the_journal_is_folded_into_a_snapshot_when_it_outgrows_it() {
        let dir = folder("fold");
        let (mut store, mut state) = Store::open(dir.clone()).unwrap();
        state.torrents.push(record(1, "t"));
        store.save(&state).unwrap();
        for i in 0..600u64 {
            state.torrents[0].uploaded_ever = i;
            store.save(&state).unwrap();
            assert!(store.journal_bytes <= store.snapshot_bytes.max(JOURNAL_MIN));
        }
        assert!(fs::metadata(dir.journal_file()).unwrap().len() <= JOURNAL_MIN);
        assert_eq!(reopened(&dir), state);
        fs::remove_dir_all(dir.root()).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_a_bad_one_before_it_is_an_error() {
        let dir = folder("torn");
        let (mut store, mut state) = Store::open(dir.clone()).unwrap();
        state.torrents.push(record(1, "one"));
        store.save(&state).unwrap();
        let before = state.clone();
        state.torrents.push(record(2, "two"));
        store.save(&state).unwrap();
        drop(store);
        let journal = fs::read(dir.journal_file()).unwrap();
        // A crash in the middle of the last append.
        fs::write(dir.journal_file(), &journal[..journal.len() - 20]).unwrap();
        assert_eq!(reopened(&dir), before);
        // Damage before the last line.
        let mut bad = journal.clone();
        bad.splice(0..0, b"{\"torrent\": 12\n".iter().copied());
        fs::write(dir.journal_file(), &bad).unwrap();
        let e = Store::open(dir.clone()).unwrap_err();
        assert!(e.contains("line 1: not a shoal journal line"), "{e}");
        fs::remove_dir_all(dir.root()).unwrap();
    }

    #[test]
    fn a_journal_of_an_older_snapshot_is_not_replayed() {
        let dir = folder("stale");
        let (mut store, mut state) = Store::open(dir.clone()).unwrap();
        state.torrents.push(record(1, "one"));
        store.save(&state).unwrap();
        state.torrents[0].paused = true;
        store.save(&state).unwrap();
        let old_journal = fs::read(dir.journal_file()).unwrap();
        // A new snapshot (settings changed) that undoes the pause; then the crash comes
        // before its journal replaced the old one.
        state.torrents[0].paused = false;
        state.settings.download_dir = "/elsewhere".into();
        store.save(&state).unwrap();
        fs::write(dir.journal_file(), &old_journal).unwrap();
        assert_eq!(reopened(&dir), state);
        fs::remove_dir_all(dir.root()).unwrap();
    }

    #[test]
    fn a_state_file_from_before_the_journal_is_read() {
        let dir = folder("old");
        let state = State {
            next_id: 2,
            torrents: vec![record(1, "one")],
            ..State::default()
        };
        fs::write(dir.state_file(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
        assert_eq!(reopened(&dir), state);
        fs::remove_dir_all(dir.root()).unwrap();
    }
}
