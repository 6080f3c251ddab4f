//! `shoal serve`'s content: a torrent made for each file or folder of the served folder,
//! kept in a cache and made again when the content changes.
//!
//! Layout: the served folder `DIR` holds the content; `DIR/.shoal-serve/torrents/` holds
//! one `<entry>.torrent` per entry of `DIR` (the tracker's torrent folder, served and
//! tracked like `shoal tracker --torrents`), and `DIR/.shoal-serve/stamps/<entry>` what
//! the entry looked like when its torrent was made. Each torrent announces to this
//! server (`BASE/announce`) and names it as its web seed (`url-list` = `BASE/files/`),
//! has no creation date (the same content gives the same info-hash, cache or no cache) and
//! the piece size `shoal create` would choose.
//!
//! What counts as content: every entry of `DIR` whose name does not start with `.` and
//! does not end in `.part` (a file still being written by shoal), that is a regular file
//! or a folder, and whose files all resolve inside `DIR` (a symbolic link that leads out
//! of `DIR`, at the top or deeper, keeps its entry out, said once). Inside a folder, the
//! files are those `shoal create` takes.
//!
//! Invariants: a torrent in the cache was made from content whose stamp (every file's
//! path, size and modification time) is the one in its stamp file; a torrent whose entry
//! is gone is removed. At start every torrent that is missing or stale is made before the
//! server answers anything; afterwards the folder is looked at every `RESCAN_EVERY`, and
//! an entry that changed is made again once it has stayed the same for one whole rescan
//! (a file still being copied in is not hashed over and over), on a thread of its own so
//! the server goes on serving. Files are written beside their target and renamed, so a
//! reader never sees half a torrent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, TryRecvError};

use crate::say;
use shoal_io::{human, CreateOptions};

/// The state folder inside the served folder.
pub const STATE_DIR: &str = ".shoal-serve";

/// What an entry looked like: one line per file (size, modification time, path).
type Stamp = String;

/// The served folder and its torrents.
pub struct Content {
    /// The served folder, canonical.
    dir: PathBuf,
    /// Where the torrents are: the tracker's torrent folder.
    torrents: PathBuf,
    stamps: PathBuf,
    base: String,
    /// The stamp of each entry whose torrent is in the cache.
    made: BTreeMap<String, Stamp>,
    /// Entries that changed at the last rescan, with their stamp then: made once the
    /// next rescan finds them the same.
    settling: BTreeMap<String, Stamp>,
    /// Entries refused (and said), with the stamp they had: said again only if it changes.
    refused: BTreeMap<String, Stamp>,
    /// Torrents being made on a worker thread; it says each entry's name when done.
    making: Option<Receiver<String>>,
}

/// One entry of the served folder as it is now.
struct Entry {
    name: String,
    path: PathBuf,
    stamp: Result<Stamp, String>,
}

impl Content {
    /// Opens `dir` for serving at `base` (`http://HOST:PORT`, no trailing `/`): makes the
    /// state folders and every missing or stale torrent, and removes those of entries that
    /// are gone.
    pub fn open(dir: &Path, base: &str) -> Result<Content, String> {
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !dir.is_dir() {
            return Err(format!("{}: not a folder", dir.display()));
        }
        let state = dir.join(STATE_DIR);
        let (torrents, stamps) = (state.join("torrents"), state.join("stamps"));
        for d in [&torrents, &stamps] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let mut content = Content {
            dir,
            torrents,
            stamps,
            base: base.trim_end_matches('/').to_string(),
            made: BTreeMap::new(),
            settling: BTreeMap::new(),
            refused: BTreeMap::new(),
            making: None,
        };
        // What the cache holds, as its stamp files say.
        if let Ok(list) = std::fs::read_dir(&content.stamps) {
            for e in list.flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                let torrent = content.torrent_path(&name);
                match std::fs::read_to_string(e.path()) {
                    Ok(stamp) if torrent.is_file() => {
                        content.made.insert(name, stamp);
                    }
                    _ => {}
                }
            }
        }
        let entries = content.entries()?;
        content.drop_gone(&entries);
        for entry in entries {
            match entry.stamp {
                Ok(stamp) if content.made.get(&entry.name) != Some(&stamp) => {
                    let made = make(&entry.name, &entry.path, &stamp, &content.jobs_target());
                    if made.is_ok() {
                        content.made.insert(entry.name, stamp);
                    }
                }
                Ok(_) => {}
                Err(why) => content.refuse(&entry.name, why),
            }
        }
        Ok(content)
    }

    /// The tracker's torrent folder.
    pub fn torrents_dir(&self) -> &Path {
        &self.torrents
    }

    /// The served folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `BASE/files/`: the web seed URL of every torrent.
    pub fn files_url(&self) -> String {
        format!("{}/files/", self.base)
    }

    /// `BASE/announce`.
    pub fn announce_url(&self) -> String {
        format!("{}/announce", self.base)
    }

    /// `BASE`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn torrent_path(&self, name: &str) -> PathBuf {
        self.torrents.join(format!("{name}.torrent"))
    }

    fn jobs_target(&self) -> Target {
        Target {
            torrents: self.torrents.clone(),
            stamps: self.stamps.clone(),
            announce: self.announce_url(),
            web_seed: self.files_url(),
        }
    }

    fn refuse(&mut self, name: &str, why: String) {
        if self.refused.get(name) != Some(&why) {
            say::err_line(&format!("shoal serve: not serving {name}: {why}"));
            self.refused.insert(name.to_string(), why);
        }
    }

    /// Removes the torrents of entries that are no longer there (or no longer served).
    fn drop_gone(&mut self, entries: &[Entry]) {
        let present: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.stamp.is_ok())
            .map(|e| e.name.as_str())
            .collect();
        let gone: Vec<String> = self
            .made
            .keys()
            .filter(|n| !present.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            let _ = std::fs::remove_file(self.torrent_path(&name));
            let _ = std::fs::remove_file(self.stamps.join(&name));
            self.made.remove(&name);
        }
    }

    /// The entries of the served folder, sorted by name.
    fn entries(&self) -> Result<Vec<Entry>, String> {
        let list =
            std::fs::read_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mut out = Vec::new();
        for e in list.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || name.ends_with(".part") {
                continue;
            }
            let path = e.path();
            let stamp = stamp_of(&self.dir, &path);
            out.push(Entry { name, path, stamp });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Looks at the folder again: gone entries dropped now; changed ones made again once
    /// settled, on a worker thread. Returns whether the torrent folder changed (so the
    /// caller reads it again).
    pub fn rescan(&mut self) -> bool {
        let mut changed = self.finished_making();
        let Ok(entries) = self.entries() else {
            return changed;
        };
        let before = self.made.len();
        self.drop_gone(&entries);
        changed |= self.made.len() != before;
        if self.making.is_some() {
            // One batch at a time; what changed meanwhile is seen on the next rescan.
            return changed;
        }
        let mut jobs = Vec::new();
        let mut settling = BTreeMap::new();
        for entry in entries {
            let stamp = match entry.stamp {
                Ok(s) => s,
                Err(why) => {
                    self.refuse(&entry.name, why);
                    continue;
                }
            };
            self.refused.remove(&entry.name);
            if self.made.get(&entry.name) == Some(&stamp) {
                continue;
            }
            if self.settling.get(&entry.name) == Some(&stamp) {
                jobs.push((entry.name, entry.path, stamp));
            } else {
                settling.insert(entry.name, stamp);
            }
        }
        self.settling = settling;
        if !jobs.is_empty() {
            let (tx, rx) = channel();
            let target = self.jobs_target();
            let spawned = std::thread::Builder::new()
                .name("serve-make".into())
                .spawn(move || {
                    for (name, path, stamp) in jobs {
                        if make(&name, &path, &stamp, &target).is_ok() {
                            let _ = tx.send(format!("{name}\n{stamp}"));
                        }
                    }
                });
            if spawned.is_ok() {
                self.making = Some(rx);
            }
        }
        changed
    }

    /// Takes in what the worker made; whether it made anything.
    fn finished_making(&mut self) -> bool {
        let mut any = false;
        while let Some(rx) = &self.making {
            match rx.try_recv() {
                Ok(done) => {
                    let (name, stamp) = done.split_once('\n').unwrap_or((&done, ""));
                    self.made.insert(name.to_string(), stamp.to_string());
                    any = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.making = None,
            }
        }
        any
    }

    /// The file of the served folder that a torrent names by `path` (its name first), if
    /// it is served: inside the folder after every link is followed, and a regular file.
    pub fn file(&self, path: &[String]) -> Option<PathBuf> {
        let mut full = self.dir.clone();
        for c in path {
            if c.is_empty() || c == "." || c == ".." || c.contains(['/', '\\', '\0']) {
                return None;
            }
            full.push(c);
        }
        let real = std::fs::canonicalize(&full).ok()?;
        (real.starts_with(&self.dir) && real.is_file()).then_some(real)
    }
}

/// Where a worker writes what it makes.
struct Target {
    torrents: PathBuf,
    stamps: PathBuf,
    announce: String,
    web_seed: String,
}

/// The stamp of the entry at `path`: one line per file, or why it is not served.
fn stamp_of(dir: &Path, path: &Path) -> Result<Stamp, String> {
    let link = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    let meta = link.clone();
    if link.file_type().is_symlink() {
        // Its torrent would be named after the link's target, not the link; and a link
        // may lead out of the folder.
        return Err("a symbolic link (serve what it points to instead)".into());
    }
    let files: Vec<(String, PathBuf)> = if meta.is_dir() {
        shoal_io::folder_files(path)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(components, p, _)| (components.join("/"), p))
            .collect()
    } else if meta.is_file() {
        vec![(String::new(), path.to_path_buf())]
    } else {
        return Err("neither a file nor a folder".into());
    };
    if meta.is_dir() && files.is_empty() {
        return Err("an empty folder".into());
    }
    let mut stamp = String::new();
    for (rel, p) in files {
        let real = std::fs::canonicalize(&p).map_err(|e| format!("{rel}: {e}"))?;
        if !real.starts_with(dir) {
            return Err(format!("{rel}: a link that leads out of the served folder"));
        }
        let m = std::fs::metadata(&real).map_err(|e| format!("{rel}: {e}"))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let _ = writeln!(stamp, "{} {mtime} {rel}", m.len());
    }
    Ok(stamp)
}

/// Makes the torrent of entry `name` at `path` and writes it and its stamp; says what it
/// did or why it could not.
fn make(name: &str, path: &Path, stamp: &str, target: &Target) -> Result<(), String> {
    let opts = CreateOptions {
        trackers: vec![target.announce.clone()],
        web_seeds: vec![target.web_seed.clone()],
        created_by: Some(concat!("shoal/", env!("CARGO_PKG_VERSION")).to_string()),
        ..CreateOptions::default()
    };
    let result = shoal_io::create_torrent(path, &opts)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let torrent = target.torrents.join(format!("{name}.torrent"));
            write_replacing(&torrent, &bytes)?;
            write_replacing(&target.stamps.join(name), stamp.as_bytes())?;
            let size: u64 = stamp
                .lines()
                .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
                .sum();
            say::out_line(&format!(
                "shoal serve: made {name}.torrent ({})",
                human(size)
            ));
            Ok(())
        });
    if let Err(why) = &result {
        say::err_line(&format!(
            "shoal serve: cannot make a torrent of {name}: {why}"
        ));
    }
    result
}

/// Writes `bytes` to `path` through a file beside it and a rename.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
