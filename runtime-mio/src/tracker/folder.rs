//! The folder of `.torrent` files served and tracked, read again when it changes, and the
//! `--allow` file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use shoal_core::metainfo::Metainfo;
use shoal_core::InfoHash;

use crate::say;

use super::MAX_TORRENTS;

/// A `.torrent` of the folder.
pub(super) struct Listed {
    /// Its file name in the folder, the one its URL names.
    pub(super) file: String,
    pub(super) bytes: Bytes,
    pub(super) meta: Arc<Metainfo>,
    pub(super) stamp: Stamp,
}

/// What tells a changed file from the one read before: its size and modification time.
pub(super) type Stamp = (u64, Option<std::time::SystemTime>);

pub(super) fn stamp(meta: &std::fs::Metadata) -> Stamp {
    (meta.len(), meta.modified().ok())
}

/// The folder's torrents, by file name.
#[derive(Default)]
pub(super) struct Folder {
    pub(super) torrents: Vec<Listed>,
    pub(super) by_file: BTreeMap<String, usize>,
    /// Files that were skipped (unreadable, too large, not a torrent) as they were then:
    /// read again, and reported again, only once they change.
    pub(super) skipped: BTreeMap<String, Stamp>,
}

impl Folder {
    /// Reads every `*.torrent` of `dir` that parses; the others are reported and skipped.
    /// What `previous` read is kept without reading it again while its stamp is the same.
    pub(super) fn read(dir: &Path, mut previous: Folder) -> Result<Folder, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut names: Vec<(String, PathBuf, Stamp)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if !name.ends_with(".torrent") {
                    return None;
                }
                // Follows a link, as reading it does.
                let meta = std::fs::metadata(e.path()).ok().filter(|m| m.is_file())?;
                Some((name, e.path(), stamp(&meta)))
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: BTreeMap<String, Listed> = previous
            .torrents
            .drain(..)
            .map(|l| (l.file.clone(), l))
            .collect();
        let mut folder = Folder::default();
        for (file, path, stamp) in names.into_iter().take(MAX_TORRENTS) {
            if let Some(listed) = kept.remove(&file).filter(|l| l.stamp == stamp) {
                folder.by_file.insert(file, folder.torrents.len());
                folder.torrents.push(listed);
                continue;
            }
            if previous.skipped.get(&file) == Some(&stamp) {
                folder.skipped.insert(file, stamp);
                continue;
            }
            match read_listed(&path) {
                Ok((bytes, meta)) => {
                    folder.by_file.insert(file.clone(), folder.torrents.len());
                    folder.torrents.push(Listed {
                        file,
                        bytes: Bytes::from(bytes),
                        meta: Arc::new(meta),
                        stamp,
                    });
                }
                Err(why) => {
                    say::err_line(&format!(
                        "shoal tracker: skipping {}: {why}",
                        path.display()
                    ));
                    folder.skipped.insert(file, stamp);
                }
            }
        }
        Ok(folder)
    }

    pub(super) fn get(&self, file: &str) -> Option<&Listed> {
        self.by_file.get(file).map(|&i| &self.torrents[i])
    }
}

/// A `.torrent` file's bytes and what they say.
pub(super) fn read_listed(path: &Path) -> Result<(Vec<u8>, Metainfo), String> {
    let bytes = std::fs::File::open(path)
        .and_then(|f| {
            let mut bytes = Vec::new();
            f.take(shoal_io::MAX_TORRENT_FILE + 1)
                .read_to_end(&mut bytes)
                .map(|_| bytes)
        })
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > shoal_io::MAX_TORRENT_FILE {
        return Err("too large".into());
    }
    let meta = Metainfo::parse(&bytes).map_err(|e| e.to_string())?;
    Ok((bytes, meta))
}

/// Reads an allow file: 40-digit hex info-hashes, one a line; blank lines and `#` comments
/// are skipped.
pub(super) fn read_allow_file(path: &Path) -> Result<Vec<InfoHash>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hash =
            InfoHash::from_hex(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        out.push(hash);
    }
    Ok(out)
}
