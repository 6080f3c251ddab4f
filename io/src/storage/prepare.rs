//! What is on disk before a download starts: [`Storage::create_missing`] makes the folders
//! and `.part` files that are missing, and [`Storage::prepare`] refuses whatever of the
//! user's is in the way before anything is created (see the parent module's rules).

use super::*;

impl Storage {
    /// Creates what is missing, touching nothing that exists: the folders, a sparse `.part`
    /// of full length for each file absent under both names (space is allocated as writes
    /// reach it: see `allocate`), and zero-length files under their final names. Padding
    /// files are skipped.
    pub fn create_missing(&self) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::Io {
                path: self.content.clone(),
                source: io::Error::new(io::ErrorKind::PermissionDenied, "opened read-only"),
            });
        }
        let mut made_dir: Option<&Path> = None;
        for slot in &self.files {
            if slot.padding {
                continue;
            }
            if let Some(parent) = slot.final_path.parent() {
                // Files of one folder come together in torrent order: one check each.
                if made_dir != Some(parent) {
                    fs::create_dir_all(parent).map_err(io_at(parent))?;
                    made_dir = Some(parent);
                }
            }
            let mut is_final = slot.lock();
            if *is_final {
                continue;
            }
            if slot.length == 0 {
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&slot.final_path)
                {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_at(&slot.final_path)(e)),
                }
                *is_final = true;
            } else if !exists(&slot.part_path)? {
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&slot.part_path)
                    .map_err(io_at(&slot.part_path))?;
                f.set_len(slot.length).map_err(io_at(&slot.part_path))?;
                slot.fresh.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Makes the folder ready to download into, after the startup check found `verified`,
    /// and keeps the rule that shoal never overwrites, truncates or renames what it did not
    /// create unless its pieces verify or the user says so. First everything is checked and
    /// nothing changed; anything in the way is an [`Error::InTheWay`] naming it:
    ///
    /// - a folder, or anything but a regular file, where a file of the torrent goes; a file
    ///   where one of its folders goes;
    /// - a file under a final name that is not the torrent's: of another length, or with a
    ///   piece that could be checked and did not match (another file of that name, or a
    ///   damaged copy), or with no piece that could be checked; or a non-empty `.part` file
    ///   of another length than the torrent's file; unless `may_replace(path)` (the user
    ///   said `--overwrite`, or shoal's own resume record names that file: shoal made it);
    /// - a zero-length file of the torrent found with content, under the same condition.
    ///
    /// Then a replaceable final-named file gets its `.part` name back (until its pieces are
    /// in; [`file_completed`](Self::file_completed) names it again) and
    /// [`create_missing`](Self::create_missing) runs. Returns the files renamed.
    pub fn prepare(
        &self,
        verified: &Bitfield,
        may_replace: impl Fn(&Path) -> bool,
    ) -> Result<Vec<usize>, Error> {
        let in_the_way = |path: &Path, why: String| Error::InTheWay {
            path: path.to_path_buf(),
            why,
            replaceable: true,
        };
        let blocking = |path: &Path, why: String| Error::InTheWay {
            path: path.to_path_buf(),
            why,
            replaceable: false,
        };
        let mut demote = Vec::new();
        let mut empty = Vec::new();
        // Which files hold data, looked at once (as `verify_all` does).
        let usable: Vec<bool> = (0..self.files.len()).map(|f| self.holds_data(f)).collect();
        for (file, slot) in self.files.iter().enumerate() {
            if slot.padding {
                continue;
            }
            self.check_folders(&slot.final_path)?;
            let total = self.layout.pieces_of_file(file).len();
            let good = self
                .layout
                .pieces_of_file(file)
                .filter(|&p| verified.get(p))
                .count();
            // Pieces that could be checked (all their files hold data) and did not match:
            // the evidence that a file is not the torrent's. A piece shared with a missing
            // neighbour says nothing either way.
            let failed = || {
                self.layout
                    .pieces_of_file(file)
                    .filter(|&p| {
                        !verified.get(p)
                            && self.layout.files_of_piece(PieceIndex(p)).all(|f| usable[f])
                    })
                    .count()
            };
            match kind(&slot.final_path)? {
                Kind::Missing => {}
                Kind::File(len) if slot.length == 0 => {
                    if len != 0 && !may_replace(&slot.final_path) {
                        return Err(in_the_way(
                            &slot.final_path,
                            format!("holds {len} bytes where the torrent has an empty file"),
                        ));
                    }
                }
                Kind::File(_) if good == total => {}
                Kind::File(len) => {
                    // The torrent's file, short of pieces shared with missing files: to be
                    // completed, not refused.
                    let failed = failed();
                    let partial = len == slot.length && failed == 0 && good > 0;
                    if !partial && !may_replace(&slot.final_path) {
                        let why = if len != slot.length {
                            format!(
                                "holds {len} bytes where the torrent's file has {}",
                                slot.length
                            )
                        } else if failed > 0 {
                            format!("is not this torrent's file ({failed} of its {total} pieces do not match)")
                        } else {
                            "cannot be checked: each of its pieces spans a missing file".into()
                        };
                        return Err(in_the_way(&slot.final_path, why));
                    }
                    if exists(&slot.part_path)? {
                        // Both names on disk: the `.part` would be silently replaced.
                        return Err(blocking(
                            &slot.part_path,
                            "both this and the complete name exist; move one away".into(),
                        ));
                    }
                    demote.push(file);
                    continue;
                }
                Kind::Other(what) => {
                    return Err(blocking(
                        &slot.final_path,
                        format!("is {what} where the torrent has a file"),
                    ))
                }
            }
            if slot.length == 0 || *slot.lock() {
                continue;
            }
            match kind(&slot.part_path)? {
                Kind::Missing => {}
                Kind::File(len) if len == slot.length || may_replace(&slot.part_path) => {}
                // What a crash between making a `.part` and giving it its length leaves
                // (before any resume record names it); empty, it holds nothing to lose.
                Kind::File(0) => empty.push(file),
                Kind::File(len) => {
                    return Err(in_the_way(
                        &slot.part_path,
                        format!(
                            "holds {len} bytes where this torrent's partial file has {}",
                            slot.length
                        ),
                    ))
                }
                Kind::Other(what) => {
                    return Err(blocking(
                        &slot.part_path,
                        format!("is {what} where the torrent keeps a partial file"),
                    ))
                }
            }
        }
        for &file in &demote {
            let slot = &self.files[file];
            let mut is_final = slot.lock();
            fs::rename(&slot.final_path, &slot.part_path).map_err(io_at(&slot.final_path))?;
            *is_final = false;
            if let Some(parent) = slot.final_path.parent() {
                sync_dir(parent);
            }
        }
        for &file in &empty {
            let slot = &self.files[file];
            let f = OpenOptions::new()
                .write(true)
                .open(&slot.part_path)
                .map_err(io_at(&slot.part_path))?;
            f.set_len(slot.length).map_err(io_at(&slot.part_path))?;
            slot.fresh.store(true, Ordering::Relaxed);
        }
        self.create_missing()?;
        // A replaced zero-length file gets its length back.
        for slot in self.files.iter().filter(|s| !s.padding && s.length == 0) {
            if matches!(kind(&slot.final_path)?, Kind::File(len) if len > 0) {
                OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&slot.final_path)
                    .map_err(io_at(&slot.final_path))?;
            }
        }
        Ok(demote)
    }

    /// Refuses a file (or anything but a folder) where a folder above `path`, inside the
    /// download folder, goes.
    fn check_folders(&self, path: &Path) -> Result<(), Error> {
        let mut at = path.parent();
        while let Some(folder) = at {
            if folder == self.dir || !folder.starts_with(&self.dir) {
                break;
            }
            match kind(folder)? {
                Kind::Missing => {}
                Kind::Other("a folder") => {}
                Kind::File(_) => {
                    return Err(Error::InTheWay {
                        path: folder.to_path_buf(),
                        why: "is a file where the torrent has a folder".into(),
                        replaceable: false,
                    })
                }
                Kind::Other(what) => {
                    return Err(Error::InTheWay {
                        path: folder.to_path_buf(),
                        why: format!("is {what} where the torrent has a folder"),
                        replaceable: false,
                    })
                }
            }
            at = folder.parent();
        }
        Ok(())
    }
}
