//! What the control interfaces (Transmission RPC, the page) may ask of a running daemon,
//! and what they see of it.
//!
//! [`Control`] is the one seam between request handling (this crate, no sockets) and the
//! process that owns the engine (the mio runtime's `daemon` module). Ids are the daemon's
//! own small numbers, stable across restarts, as Transmission's are.

use serde::{Deserialize, Serialize};

pub use crate::feed::FeedView;

/// A torrent's id in the daemon (1, 2, …; never reused while the state folder lives).
pub type Id = u32;

/// What `torrent-add` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `.torrent`'s bytes (the RPC's `metainfo`, the page's upload).
    Metainfo(Vec<u8>),
    /// A path on the daemon's machine, or an `http(s)://` URL to a `.torrent`.
    File(String),
    /// A `magnet:` link.
    Magnet(String),
}

impl Source {
    /// Sorts a `filename` argument: a magnet link, or a path/URL.
    pub fn from_filename(name: &str) -> Source {
        if name
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
        {
            Source::Magnet(name.to_string())
        } else {
            Source::File(name.to_string())
        }
    }
}

/// A torrent to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddRequest {
    pub source: Source,
    /// Where its content goes; the session's download folder if `None`.
    pub download_dir: Option<String>,
    /// Added stopped.
    pub paused: bool,
    /// File indices not to download.
    pub unwanted: Vec<usize>,
    pub priority_high: Vec<usize>,
    pub priority_low: Vec<usize>,
    pub sequential: bool,
}

impl AddRequest {
    pub fn new(source: Source) -> AddRequest {
        AddRequest {
            source,
            download_dir: None,
            paused: false,
            unwanted: Vec::new(),
            priority_high: Vec::new(),
            priority_low: Vec::new(),
            sequential: false,
        }
    }
}

/// What an add came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    pub id: Id,
    pub name: String,
    pub hash: String,
    /// It was there already (`torrent-duplicate`).
    pub duplicate: bool,
}

/// Where a torrent stands, with Transmission's numbers (`status` of `torrent-get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Stopped = 0,
    CheckWait = 1,
    Checking = 2,
    DownloadWait = 3,
    Downloading = 4,
    SeedWait = 5,
    Seeding = 6,
}

/// One file of a torrent as the interfaces show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileView {
    /// Its path inside the torrent, `/`-separated, the torrent's name first.
    pub name: String,
    pub length: u64,
    /// Bytes of verified pieces inside it.
    pub completed: u64,
    pub wanted: bool,
    /// -1 low, 0 normal, 1 high.
    pub priority: i8,
}

/// One torrent as the interfaces show it.
#[derive(Clone, Debug, PartialEq)]
pub struct TorrentView {
    pub id: Id,
    pub name: String,
    pub hash: String,
    pub status: Status,
    /// Why it stopped, if it failed (a full disk, files in the way, a missing .torrent).
    pub error: Option<String>,
    pub download_dir: String,
    pub total_size: u64,
    /// Bytes of the wanted files.
    pub size_when_done: u64,
    /// Bytes of the wanted files not verified yet.
    pub left_until_done: u64,
    /// Verified bytes.
    pub have_valid: u64,
    pub rate_download: u64,
    pub rate_upload: u64,
    pub downloaded_ever: u64,
    pub uploaded_ever: u64,
    pub peers_connected: usize,
    pub piece_count: u32,
    pub piece_size: u32,
    /// Unix seconds.
    pub added_date: i64,
    /// Unix seconds; 0 while not complete.
    pub done_date: i64,
    /// Place in the download queue (0 first).
    pub queue_position: usize,
    pub sequential: bool,
    pub files: Vec<FileView>,
    pub comment: String,
    pub private: bool,
    pub magnet: String,
    /// Share of the metadata in, 0.0 to 1.0: below 1.0 only for a magnet link whose
    /// metadata is still being fetched from peers (then nothing else is known yet).
    pub metadata_percent: f64,
}

impl TorrentView {
    /// Verified share of the wanted bytes, 0.0 to 1.0.
    pub fn percent_done(&self) -> f64 {
        if self.metadata_percent < 1.0 {
            return 0.0;
        }
        if self.size_when_done == 0 {
            return 1.0;
        }
        (self.size_when_done - self.left_until_done) as f64 / self.size_when_done as f64
    }

    /// Seconds until done at the current rate: -1 when not downloading, -2 when unknown
    /// (Transmission's `TR_ETA_NOT_AVAIL` and `TR_ETA_UNKNOWN`).
    pub fn eta(&self) -> i64 {
        if self.left_until_done == 0 || self.status != Status::Downloading {
            return -1;
        }
        match self.left_until_done.checked_div(self.rate_download) {
            Some(secs) => secs.min(i64::MAX as u64) as i64,
            None => -2,
        }
    }

    /// Uploaded over downloaded, or over what we have when nothing was downloaded (a
    /// seed); -1 when neither (Transmission's rule).
    pub fn upload_ratio(&self) -> f64 {
        let base = if self.downloaded_ever > 0 {
            self.downloaded_ever
        } else {
            self.have_valid
        };
        if base == 0 {
            return -1.0;
        }
        self.uploaded_ever as f64 / base as f64
    }
}

/// How to change a torrent's files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileChange {
    pub wanted: Vec<usize>,
    pub unwanted: Vec<usize>,
    pub high: Vec<usize>,
    pub normal: Vec<usize>,
    pub low: Vec<usize>,
    pub sequential: Option<bool>,
}

/// The session's settings (`session-get`/`session-set`), kept in the state folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub download_dir: String,
    /// Bytes per second; applies while `speed_limit_down_enabled`.
    pub speed_limit_down: u64,
    pub speed_limit_down_enabled: bool,
    pub speed_limit_up: u64,
    pub speed_limit_up_enabled: bool,
    /// How many torrents download at once (the others wait in the queue).
    pub download_queue_size: usize,
    pub download_queue_enabled: bool,
    /// Connections in all (the engine's limit; a change applies from the next start).
    pub peer_limit_global: usize,
    /// Connections per torrent (likewise from the next start).
    pub peer_limit_per_torrent: usize,
    /// The control address the daemon was last told (`--rpc`): a daemon started without
    /// one (by `shoal add`) listens there again.
    pub rpc_address: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            download_dir: String::new(),
            speed_limit_down: 100 * 1024,
            speed_limit_down_enabled: false,
            speed_limit_up: 100 * 1024,
            speed_limit_up_enabled: false,
            download_queue_size: 5,
            download_queue_enabled: true,
            peer_limit_global: 500,
            peer_limit_per_torrent: 50,
            rpc_address: None,
        }
    }
}

impl Settings {
    /// The rate limits in force, bytes per second (upload, download); `None`: no limit.
    pub fn rate_limits(&self) -> (Option<u64>, Option<u64>) {
        (
            self.speed_limit_up_enabled.then_some(self.speed_limit_up),
            self.speed_limit_down_enabled
                .then_some(self.speed_limit_down),
        )
    }
}

/// `session-stats` figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub download_speed: u64,
    pub upload_speed: u64,
    pub torrent_count: usize,
    pub active_torrent_count: usize,
    pub paused_torrent_count: usize,
    /// Since the daemon started.
    pub downloaded: u64,
    pub uploaded: u64,
    pub seconds_active: u64,
    pub files_added: u64,
}

/// The daemon as request handlers see it. Every call may block briefly (it is answered by
/// the daemon's loop); `add` may fetch a URL first.
pub trait Control {
    fn add(&mut self, request: AddRequest) -> Result<Added, String>;
    fn torrents(&mut self) -> Vec<TorrentView>;
    fn start(&mut self, ids: &[Id]);
    fn stop(&mut self, ids: &[Id]);
    /// Forgets the torrents; with `delete_data`, deletes their files (and `.part` files).
    fn remove(&mut self, ids: &[Id], delete_data: bool);
    fn set_files(&mut self, id: Id, change: &FileChange) -> Result<(), String>;
    fn settings(&mut self) -> Settings;
    fn set_settings(&mut self, settings: Settings);
    fn stats(&mut self) -> Stats;
    /// The daemon's peer port.
    fn peer_port(&mut self) -> u16;
    /// Follows the feed at `url` (fetched once now: a bad URL or a malformed feed is an
    /// error), taking new items whose title matches `pattern`.
    fn add_feed(&mut self, url: &str, pattern: Option<&str>) -> Result<FeedView, String>;
    fn feeds(&mut self) -> Vec<FeedView>;
    fn remove_feeds(&mut self, ids: &[u32]);
    /// Stops the daemon once this call is answered (Transmission's `session-close`,
    /// `transmission-remote --exit`): it saves its state and exits as on SIGTERM.
    fn close(&mut self);
}
