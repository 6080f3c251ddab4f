//! Planning: a run of the torrent's bytes (whole blocks, usually whole pieces) becomes the
//! byte ranges of the files it spans, one HTTP request each. A piece that spans two files
//! is two requests; a run inside one file is one, however many pieces it covers.

use crate::metainfo::FileEntry;

/// Part of one file, to fetch with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRange {
    /// The file's index in the metainfo's file list.
    pub file: usize,
    /// The first byte wanted, from the start of the file.
    pub offset: u64,
    /// How many bytes (at least one).
    pub len: u64,
}

impl FileRange {
    /// The last byte wanted, as `Range: bytes=offset-last` says it.
    pub fn last(&self) -> u64 {
        self.offset + self.len - 1
    }
}

/// The file ranges holding bytes `start..start + len` of the torrent, in order. Zero-length
/// files hold nothing and are passed over; a range past the last file is cut at its end.
pub fn plan(files: &[FileEntry], start: u64, len: u64) -> Vec<FileRange> {
    let end = start.saturating_add(len);
    let mut out = Vec::new();
    let mut i = files.partition_point(|f| f.offset + f.length <= start);
    let mut pos = start;
    while pos < end {
        let Some(f) = files.get(i) else { break };
        i += 1;
        if f.length == 0 {
            continue;
        }
        let to = (f.offset + f.length).min(end);
        out.push(FileRange {
            file: i - 1,
            offset: pos - f.offset,
            len: to - pos,
        });
        pos = to;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::FileAttr;
    use quickcheck::quickcheck;

    fn files(lengths: &[u64]) -> Vec<FileEntry> {
        let mut offset = 0;
        lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| {
                let f = FileEntry {
                    path: vec![format!("f{i}")],
                    length,
                    offset,
                    attr: FileAttr::default(),
                };
                offset += length;
                f
            })
            .collect()
    }

    #[test]
    fn a_piece_across_files_is_several_requests() {
        let fs = files(&[10, 0, 5, 20]);
        assert_eq!(
            plan(&fs, 8, 10),
            vec![
                FileRange {
                    file: 0,
                    offset: 8,
                    len: 2
                },
                FileRange {
                    file: 2,
                    offset: 0,
                    len: 5
                },
                FileRange {
                    file: 3,
                    offset: 0,
                    len: 3
                },
            ]
        );
        assert_eq!(
            plan(&fs, 15, 20),
            vec![FileRange {
                file: 3,
                offset: 0,
                len: 20
            }]
        );
        assert_eq!(
            plan(&fs, 30, 100),
            vec![FileRange {
                file: 3,
                offset: 15,
                len: 5
            }]
        );
        assert_eq!(plan(&fs, 35, 1), vec![]);
        assert_eq!(plan(&fs, 0, 0), vec![]);
    }

    quickcheck! {
        fn ranges_cover_the_run_exactly(lengths: Vec<u16>, start: u16, len: u16) -> bool {
            let lengths: Vec<u64> = lengths.into_iter().map(|l| u64::from(l % 50)).collect();
            let fs = files(&lengths);
            let total: u64 = lengths.iter().sum();
            let (start, len) = (u64::from(start) % (total + 1), u64::from(len));
            let ranges = plan(&fs, start, len);
            let mut pos = start;
            for r in &ranges {
                let f = &fs[r.file];
                if r.len == 0 || f.offset + r.offset != pos || r.offset + r.len > f.length {
                    return false;
                }
                pos += r.len;
            }
            pos == (start + len).min(total)
        }
    }
}
