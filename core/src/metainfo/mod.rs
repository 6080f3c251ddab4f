//! `.torrent` files (BEP 3 v1 metainfo): parsing, validation and the info-hash.
//!
//! [`Metainfo::parse`] turns the bytes of a `.torrent` into a validated [`Metainfo`] or a
//! [`MetainfoError`] that names the field at fault. What it guarantees of a parsed torrent:
//!
//! - the info-hash is the SHA-1 of the `info` value exactly as its bytes stand in the file,
//!   never of a re-encoding (a re-encoding can differ, and then no peer would know us);
//! - `pieces` holds exactly one 20-byte hash per piece of the total length;
//! - every file path is a list of safe components: not empty, not `.` or `..`, no `/`, `\`
//!   or NUL inside, so joining them below a download folder cannot leave it; no two files
//!   share a path and no file's path is a folder of another's;
//! - the piece length is between [`MIN_PIECE_LENGTH`] and [`MAX_PIECE_LENGTH`].
//!
//! Reading goes through [`crate::bencode`] rather than `bendy`'s strict decoder: some real
//! torrents carry dictionaries whose keys are out of order, which `bendy` refuses and this
//! parser accepts (duplicate keys are still refused: they would make a field ambiguous).
//! Writing torrents (see [`crate::create`]) goes through `bendy`.
//!
//! Optional text fields that are not valid UTF-8 (old torrents in legacy code pages) are
//! read lossily; `name.utf-8` and `path.utf-8`, where present, win over `name` and `path`.

use std::collections::HashSet;
use std::fmt;

use sha1::{Digest, Sha1};

use crate::bencode::{self, Dict, Limits, Value};
use crate::magnet::Magnet;
use crate::{InfoHash, PieceIndex};

/// The smallest piece length accepted: below a KiB the hash list outweighs the data.
pub const MIN_PIECE_LENGTH: u32 = 1024;
/// The largest piece length accepted. Real torrents stay at or below 64 MiB; a piece is
/// held in memory while it is hashed, so anything much larger is hostile or broken.
pub const MAX_PIECE_LENGTH: u32 = 256 * 1024 * 1024;

/// A parsed, validated `.torrent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    /// SHA-1 of the raw `info` bytes.
    pub info_hash: InfoHash,
    /// The `info` dictionary, parsed.
    pub info: Info,
    /// The raw bencoded `info` dictionary, as it stood in the file (for BEP 9 metadata
    /// exchange and for writing the torrent back out unchanged).
    pub info_bytes: Vec<u8>,
    /// `announce`: the single tracker of BEP 3.
    pub announce: Option<String>,
    /// `announce-list` (BEP 12): tiers of tracker URLs, empty tiers dropped.
    pub announce_list: Vec<Vec<String>>,
    /// `url-list` (BEP 19): web seeds.
    pub url_list: Vec<String>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// `comment`, free text from the torrent's author.
    pub comment: Option<String>,
    /// `created by`: the program that made the torrent.
    pub created_by: Option<String>,
}

/// The `info` dictionary: what the info-hash covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The torrent's name: the file name of a single-file torrent, the folder name of a
    /// multi-file one. Always one safe path component.
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u32,
    /// One SHA-1 per piece.
    pub pieces: Vec<[u8; 20]>,
    /// BEP 27: peers come from the torrent's trackers only.
    pub private: bool,
    /// Whether the torrent has a `files` list (its content lives in a folder named `name`).
    pub multi_file: bool,
    /// Every file in torrent order, padding files included; a single-file torrent has one.
    pub files: Vec<FileEntry>,
    /// Sum of all file lengths (padding included): the bytes the pieces cover.
    pub total_length: u64,
}

/// One file of a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components relative to the download folder; the first is the torrent's name.
    pub path: Vec<String>,
    /// Its size in bytes.
    pub length: u64,
    /// Offset of the file's first byte in the torrent's concatenated data.
    pub offset: u64,
    /// BEP 47 attributes.
    pub attr: FileAttr,
}

/// BEP 47 file attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileAttr {
    /// `p`: alignment padding; never written to disk, its bytes are zeros.
    pub padding: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
}

impl FileEntry {
    /// The path joined with `/`, for display.
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }
}

impl Info {
    /// How many pieces the torrent has.
    pub fn piece_count(&self) -> u32 {
        // Validation bounds the count: it equals total_length / piece_length, rounded up,
        // and pieces.len() * 20 fits in memory.
        self.pieces.len() as u32
    }

    /// The length of piece `index`: `piece_length` but for a shorter last piece.
    pub fn piece_size(&self, index: PieceIndex) -> u32 {
        let start = u64::from(index.0) * u64::from(self.piece_length);
        let remaining = self.total_length.saturating_sub(start);
        remaining.min(u64::from(self.piece_length)) as u32
    }

    /// The expected SHA-1 of piece `index`, if the torrent has that piece.
    pub fn piece_hash(&self, index: PieceIndex) -> Option<&[u8; 20]> {
        self.pieces.get(index.0 as usize)
    }
}

/// Why a `.torrent` was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetainfoError {
    /// The bytes are not well-formed bencode.
    Bencode(bencode::Error),
    /// A required field is absent.
    Missing {
        /// The field, as a dotted path (`info.piece length`).
        field: String,
    },
    /// A field holds the wrong kind of value.
    WrongType {
        /// The field, as a dotted path (`info.files[2].length`).
        field: String,
        /// The type it should have.
        expected: &'static str,
    },
    /// A field has the right type but a value that cannot be right.
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A file path that could escape the download folder or cannot be created.
    UnsafePath {
        /// The field, as a dotted path.
        field: String,
        /// The path as the torrent gives it.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two files with one path, or a file whose path is another's folder.
    DuplicatePath {
        /// The path, joined with `/`.
        path: String,
    },
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::Bencode(e) => write!(f, "not a torrent file: {e}"),
            MetainfoError::Missing { field } => write!(f, "missing field `{field}`"),
            MetainfoError::WrongType { field, expected } => {
                write!(f, "field `{field}` should be {expected}")
            }
            MetainfoError::Invalid { field, reason } => {
                write!(f, "invalid field `{field}`: {reason}")
            }
            MetainfoError::UnsafePath {
                field,
                path,
                reason,
            } => write!(f, "unsafe file path {path:?} in `{field}`: {reason}"),
            MetainfoError::DuplicatePath { path } => {
                write!(f, "file path {path:?} appears twice (or is also a folder)")
            }
        }
    }
}

impl std::error::Error for MetainfoError {}

impl From<bencode::Error> for MetainfoError {
    fn from(e: bencode::Error) -> Self {
        MetainfoError::Bencode(e)
    }
}

fn missing(field: &str) -> MetainfoError {
    MetainfoError::Missing {
        field: field.to_string(),
    }
}

fn wrong_type(field: &str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        field: field.to_string(),
        expected,
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> MetainfoError {
    MetainfoError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Bounds for reading a `.torrent`: generous for real torrents (hundreds of thousands of
/// files), tight enough that hostile nesting or value counts are refused early.
const LIMITS: Limits = Limits {
    max_depth: 32,
    max_values: 16 << 20,
};

impl Metainfo {
    /// Parses and validates a `.torrent`.
    pub fn parse(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let root = bencode::decode_with(bytes, LIMITS)?;
        let root = root
            .as_dict()
            .ok_or_else(|| wrong_type("", "a dictionary"))?;
        let info_value = root.get(b"info").ok_or_else(|| missing("info"))?;
        let info_dict = info_value
            .as_dict()
            .ok_or_else(|| wrong_type("info", "a dictionary"))?;
        let info = parse_info(info_dict)?;
        let info_hash = InfoHash(Sha1::digest(info_dict.raw).into());

        let announce = opt_url(root, "announce")?;
        let announce_list = match root.get(b"announce-list") {
            None => Vec::new(),
            Some(v) => parse_tiers(v)?,
        };
        let url_list = match root.get(b"url-list") {
            None => Vec::new(),
            // BEP 19 allows a single URL as a plain string.
            Some(Value::Bytes([])) => Vec::new(),
            Some(Value::Bytes(b)) => vec![utf8(b, "url-list")?],
            Some(Value::List(l)) => {
                let mut urls = Vec::new();
                for (i, item) in l.items.iter().enumerate() {
                    let field = format!("url-list[{i}]");
                    let b = item
                        .as_bytes()
                        .ok_or_else(|| wrong_type(&field, "a string"))?;
                    if !b.is_empty() {
                        urls.push(utf8(b, &field)?);
                    }
                }
                urls
            }
            Some(_) => return Err(wrong_type("url-list", "a string or a list of strings")),
        };
        let creation_date = match root.get(b"creation date") {
            None => None,
            Some(v) => Some(
                v.as_int()
                    .ok_or_else(|| wrong_type("creation date", "an integer"))?,
            ),
        };
        let comment = opt_text(root, "comment")?;
        let created_by = opt_text(root, "created by")?;

        Ok(Metainfo {
            info_hash,
            info,
            info_bytes: info_dict.raw.to_vec(),
            announce,
            announce_list,
            url_list,
            creation_date,
            comment,
            created_by,
        })
    }

    /// A torrent from a bare `info` dictionary, as BEP 9 metadata exchange delivers it for
    /// a magnet link: the info-hash is the SHA-1 of `info_bytes` exactly as given, and
    /// every field outside `info` (trackers, web seeds, comment) is empty, for the caller
    /// to fill from the magnet link.
    pub fn from_info_bytes(info_bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let value = bencode::decode_with(info_bytes, LIMITS)?;
        let info_dict = value
            .as_dict()
            .ok_or_else(|| wrong_type("info", "a dictionary"))?;
        let info = parse_info(info_dict)?;
        Ok(Metainfo {
            info_hash: InfoHash(Sha1::digest(info_bytes).into()),
            info,
            info_bytes: info_bytes.to_vec(),
            announce: None,
            announce_list: Vec::new(),
            url_list: Vec::new(),
            creation_date: None,
            comment: None,
            created_by: None,
        })
    }

    /// The torrent as a `.torrent` file: its `info` bytes exactly as they are (so the
    /// info-hash is kept), with `announce`, `announce-list`, `url-list`, `comment`,
    /// `created by` and `creation date` where set. What a client saves of metadata it
    /// fetched from peers.
    pub fn to_torrent_bytes(&self) -> Vec<u8> {
        use crate::bencode::{put_bytes, put_decimal};
        let mut out = Vec::with_capacity(self.info_bytes.len() + 256);
        out.push(b'd');
        // Keys in sorted order, as bencode requires.
        if let Some(a) = &self.announce {
            put_bytes(&mut out, b"announce");
            put_bytes(&mut out, a.as_bytes());
        }
        if !self.announce_list.is_empty() {
            put_bytes(&mut out, b"announce-list");
            out.push(b'l');
            for tier in &self.announce_list {
                out.push(b'l');
                for url in tier {
                    put_bytes(&mut out, url.as_bytes());
                }
                out.push(b'e');
            }
            out.push(b'e');
        }
        if let Some(c) = &self.comment {
            put_bytes(&mut out, b"comment");
            put_bytes(&mut out, c.as_bytes());
        }
        if let Some(c) = &self.created_by {
            put_bytes(&mut out, b"created by");
            put_bytes(&mut out, c.as_bytes());
        }
        if let Some(d) = self.creation_date {
            put_bytes(&mut out, b"creation date");
            out.push(b'i');
            if d < 0 {
                out.push(b'-');
            }
            put_decimal(&mut out, d.unsigned_abs());
            out.push(b'e');
        }
        put_bytes(&mut out, b"info");
        out.extend_from_slice(&self.info_bytes);
        if !self.url_list.is_empty() {
            put_bytes(&mut out, b"url-list");
            out.push(b'l');
            for url in &self.url_list {
                put_bytes(&mut out, url.as_bytes());
            }
            out.push(b'e');
        }
        out.push(b'e');
        out
    }

    /// A magnet link to this torrent: its info-hash, name, trackers and web seeds.
    pub fn magnet(&self) -> Magnet {
        let mut m = Magnet::new(self.info_hash);
        m.display_name = Some(self.info.name.clone());
        for url in self.trackers().into_iter().flatten() {
            if !m.trackers.contains(&url) {
                m.trackers.push(url);
            }
        }
        for url in &self.url_list {
            if !m.web_seeds.contains(url) {
                m.web_seeds.push(url.clone());
            }
        }
        m
    }

    /// Every tracker URL, tier by tier: `announce-list` when present (BEP 12 says it then
    /// replaces `announce`), else `announce` as a tier of its own.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        }
    }
}

fn utf8(bytes: &[u8], field: &str) -> Result<String, MetainfoError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid(field, "not valid UTF-8"))
}

fn opt_url(dict: &Dict<'_>, key: &str) -> Result<Option<String>, MetainfoError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => {
            let b = v.as_bytes().ok_or_else(|| wrong_type(key, "a string"))?;
            if b.is_empty() {
                Ok(None)
            } else {
                utf8(b, key).map(Some)
            }
        }
    }
}

fn opt_text(dict: &Dict<'_>, key: &str) -> Result<Option<String>, MetainfoError> {
    let utf8_key = format!("{key}.utf-8");
    if let Some(s) = dict.get(utf8_key.as_bytes()).and_then(Value::as_str) {
        return Ok(Some(s.to_string()));
    }
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => {
            let b = v.as_bytes().ok_or_else(|| wrong_type(key, "a string"))?;
            Ok(Some(String::from_utf8_lossy(b).into_owned()))
        }
    }
}

fn parse_tiers(v: &Value<'_>) -> Result<Vec<Vec<String>>, MetainfoError> {
    let tiers = v
        .as_list()
        .ok_or_else(|| wrong_type("announce-list", "a list of lists of strings"))?;
    let mut out = Vec::new();
    for (t, tier) in tiers.iter().enumerate() {
        let field = format!("announce-list[{t}]");
        let urls = tier
            .as_list()
            .ok_or_else(|| wrong_type(&field, "a list of strings"))?;
        let mut tier_out: Vec<String> = Vec::new();
        for (u, url) in urls.iter().enumerate() {
            let field = format!("announce-list[{t}][{u}]");
            let b = url
                .as_bytes()
                .ok_or_else(|| wrong_type(&field, "a string"))?;
            let url = utf8(b, &field)?;
            if !url.is_empty() && !tier_out.contains(&url) {
                tier_out.push(url);
            }
        }
        if !tier_out.is_empty() {
            out.push(tier_out);
        }
    }
    Ok(out)
}

fn parse_info(info: &Dict<'_>) -> Result<Info, MetainfoError> {
    let name = text_preferring_utf8(info, "name", "info.name")?;
    check_component(&name, "info.name", &name)?;

    let piece_length = info
        .get(b"piece length")
        .ok_or_else(|| missing("info.piece length"))?
        .as_int()
        .ok_or_else(|| wrong_type("info.piece length", "an integer"))?;
    if !(i64::from(MIN_PIECE_LENGTH)..=i64::from(MAX_PIECE_LENGTH)).contains(&piece_length) {
        return Err(invalid(
            "info.piece length",
            format!("{piece_length} is outside {MIN_PIECE_LENGTH}..={MAX_PIECE_LENGTH} bytes"),
        ));
    }
    let piece_length = piece_length as u32;

    let pieces_raw = info
        .get(b"pieces")
        .ok_or_else(|| missing("info.pieces"))?
        .as_bytes()
        .ok_or_else(|| wrong_type("info.pieces", "a string"))?;
    if pieces_raw.len() % 20 != 0 {
        return Err(invalid(
            "info.pieces",
            format!("length {} is not a multiple of 20", pieces_raw.len()),
        ));
    }

    let private = match info.get(b"private") {
        None => false,
        Some(v) => {
            v.as_int()
                .ok_or_else(|| wrong_type("info.private", "an integer"))?
                != 0
        }
    };

    let (files, multi_file) = match (info.get(b"length"), info.get(b"files")) {
        (Some(_), Some(_)) => {
            return Err(invalid("info", "has both `length` and `files`"));
        }
        (None, None) => return Err(missing("info.length or info.files")),
        (Some(len), None) => {
            let length = file_length(len).map_err(|p| p.at("info.length"))?;
            let attr = parse_attr(info.get(b"attr")).map_err(|p| p.at("info.attr"))?;
            let entry = FileEntry {
                path: vec![name.clone()],
                length,
                offset: 0,
                attr,
            };
            (vec![entry], false)
        }
        (None, Some(list)) => (parse_files(list, &name)?, true),
    };

    let total_length = files.last().map_or(0, |f| f.offset + f.length);
    if total_length == 0 {
        return Err(invalid(
            "info",
            "the torrent holds no data (total length 0)",
        ));
    }
    let expected_pieces = total_length.div_ceil(u64::from(piece_length));
    let got_pieces = (pieces_raw.len() / 20) as u64;
    if got_pieces != expected_pieces {
        return Err(invalid(
            "info.pieces",
            format!(
                "{got_pieces} hashes for {total_length} bytes in pieces of {piece_length}; \
                 expected {expected_pieces}"
            ),
        ));
    }
    let pieces = pieces_raw
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect();

    Ok(Info {
        name,
        piece_length,
        pieces,
        private,
        multi_file,
        files,
        total_length,
    })
}

fn text_preferring_utf8(dict: &Dict<'_>, key: &str, field: &str) -> Result<String, MetainfoError> {
    let utf8_key = format!("{key}.utf-8");
    if let Some(s) = dict.get(utf8_key.as_bytes()).and_then(Value::as_str) {
        return Ok(s.to_string());
    }
    let b = dict
        .get(key.as_bytes())
        .ok_or_else(|| missing(field))?
        .as_bytes()
        .ok_or_else(|| wrong_type(field, "a string"))?;
    Ok(String::from_utf8_lossy(b).into_owned())
}

/// What is wrong with a value, before the field's name (costly to format for each of
/// thousands of files) is known.
enum Problem {
    WrongType(&'static str),
    Invalid(String),
}

impl Problem {
    fn at(self, field: &str) -> MetainfoError {
        match self {
            Problem::WrongType(expected) => wrong_type(field, expected),
            Problem::Invalid(reason) => invalid(field, reason),
        }
    }
}

fn file_length(v: &Value<'_>) -> Result<u64, Problem> {
    let n = v.as_int().ok_or(Problem::WrongType("an integer"))?;
    u64::try_from(n).map_err(|_| Problem::Invalid(format!("negative length {n}")))
}

fn parse_attr(v: Option<&Value<'_>>) -> Result<FileAttr, Problem> {
    let Some(v) = v else {
        return Ok(FileAttr::default());
    };
    let s = v.as_bytes().ok_or(Problem::WrongType("a string"))?;
    Ok(FileAttr {
        padding: s.contains(&b'p'),
        executable: s.contains(&b'x'),
        hidden: s.contains(&b'h'),
    })
}

fn parse_files(list: &Value<'_>, name: &str) -> Result<Vec<FileEntry>, MetainfoError> {
    let items = list
        .as_list()
        .ok_or_else(|| wrong_type("info.files", "a list of dictionaries"))?;
    if items.is_empty() {
        return Err(invalid("info.files", "the list is empty"));
    }
    let mut files = Vec::with_capacity(items.len());
    let mut offset: u64 = 0;
    for (i, item) in items.iter().enumerate() {
        // Field names are only formatted on the error path: a torrent can list 100,000 files.
        let field = |suffix: &str| format!("info.files[{i}]{suffix}");
        let dict = item
            .as_dict()
            .ok_or_else(|| wrong_type(&field(""), "a dictionary"))?;
        let length = dict
            .get(b"length")
            .ok_or_else(|| missing(&field(".length")))?;
        let length = file_length(length).map_err(|p| p.at(&field(".length")))?;
        let attr = parse_attr(dict.get(b"attr")).map_err(|p| p.at(&field(".attr")))?;
        let path_value = match dict.get(b"path.utf-8") {
            Some(v)
                if v.as_list()
                    .is_some_and(|l| l.iter().all(|c| c.as_str().is_some())) =>
            {
                v
            }
            _ => dict.get(b"path").ok_or_else(|| missing(&field(".path")))?,
        };
        let not_strings = || wrong_type(&field(".path"), "a list of strings");
        let components = path_value.as_list().ok_or_else(not_strings)?;
        let mut path = Vec::with_capacity(components.len() + 1);
        path.push(name.to_string());
        for c in components {
            let c = c.as_bytes().ok_or_else(not_strings)?;
            path.push(String::from_utf8_lossy(c).into_owned());
        }
        let unsafe_path = |reason| MetainfoError::UnsafePath {
            field: field(".path"),
            path: path[1..].join("/"),
            reason,
        };
        if path.len() == 1 {
            return Err(unsafe_path("the path is empty"));
        }
        if let Some(reason) = path[1..].iter().find_map(|c| component_problem(c)) {
            return Err(unsafe_path(reason));
        }
        files.push(FileEntry {
            path,
            length,
            offset,
            attr,
        });
        offset = offset
            .checked_add(length)
            .ok_or_else(|| invalid(&field(".length"), "total length overflows"))?;
    }
    check_unique(&files)?;
    Ok(files)
}

/// Why a path component could climb out of, or escape, the download folder, or could not
/// be created by any file system; `None` for a safe one.
fn component_problem(c: &str) -> Option<&'static str> {
    if c.is_empty() {
        Some("empty path component")
    } else if c == "." || c == ".." {
        Some("`.` or `..` component")
    } else if c.contains('/') || c.contains('\\') {
        Some("path separator inside a component")
    } else if c.contains('\0') {
        Some("NUL byte in a component")
    } else if c.len() > 255 {
        Some("component longer than 255 bytes")
    } else {
        None
    }
}

/// Refuses an unsafe path component (see [`component_problem`]), naming `field` and `path`.
pub(crate) fn check_component(c: &str, field: &str, path: &str) -> Result<(), MetainfoError> {
    match component_problem(c) {
        Some(reason) => Err(MetainfoError::UnsafePath {
            field: field.to_string(),
            path: path.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// No two real files may share a path, and no file may stand where another needs a folder
/// (`a` and `a/b`). Padding files are never written, and clients name them alike
/// (`.pad/16384` many times over), so they are left out.
fn check_unique(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let real: Vec<&FileEntry> = files.iter().filter(|f| !f.attr.padding).collect();
    let mut paths: HashSet<&[String]> = HashSet::with_capacity(real.len());
    for f in &real {
        if !paths.insert(f.path.as_slice()) {
            return Err(MetainfoError::DuplicatePath {
                path: f.display_path(),
            });
        }
    }
    for f in &real {
        for end in 1..f.path.len() {
            if paths.contains(&f.path[..end]) {
                return Err(MetainfoError::DuplicatePath {
                    path: f.path[..end].join("/"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
