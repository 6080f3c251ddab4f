//! The engine's vocabulary, all of it public and re-exported from [the engine](super):
//! handles ([`ConnId`], [`TorrentId`]), settings ([`EngineConfig`], [`TorrentOptions`]),
//! every fact that comes in ([`Input`]) and every action that goes out ([`Output`],
//! [`Event`]), and the reasons and figures the engine reports ([`CloseReason`],
//! [`TorrentStats`], [`AddTorrentError`]).

use core::net::{IpAddr, SocketAddr};
use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::bitfield::Bitfield;
use crate::choker::ChokerConfig;
use crate::storage::LayoutError;
use crate::tracker::{AnnounceId, AnnouncerConfig, TrackerUrl};
use crate::wire::WireError;
use crate::{BlockRequest, PeerId, PeerKey, PieceIndex};

/// A connection's handle: a slot and a generation, so inputs that arrive for a closed
/// connection are recognised even after its slot is reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId {
    pub(super) slot: u32,
    pub(super) generation: u32,
}

impl ConnId {
    /// The connection's dense key (its slot).
    pub fn key(self) -> PeerKey {
        PeerKey(self.slot)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot, self.generation)
    }
}

/// A torrent's handle in one engine.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TorrentId(pub u32);

/// Settings of an engine. `Default` gives what a desktop client would use.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Our peer id (the runtime makes it, e.g. `-SH0100-` and 12 random bytes).
    pub peer_id: PeerId,
    /// The port we accept connections on, told to peers and trackers.
    pub listen_port: u16,
    /// Seed of every random choice the engine makes.
    pub rng_seed: u64,
    /// Connections we open or accept per torrent.
    pub max_peers_per_torrent: usize,
    /// Connections in all.
    pub max_connections: usize,
    /// Cap on requests in flight to one peer.
    pub max_pipeline: u32,
    /// Requests from one peer we queue to serve (our `reqq`); more are rejected.
    pub max_serve_queue: usize,
    /// Block reads in flight for one peer.
    pub max_reads_per_peer: usize,
    /// Unsent bytes per connection above which no more blocks are read for it.
    pub send_buffer: usize,
    /// Largest message accepted from a peer.
    pub max_message_len: u32,
    pub handshake_timeout: Duration,
    pub connect_timeout: Duration,
    /// A connection with nothing received for this long is closed.
    pub idle_timeout: Duration,
    /// We send a keep-alive after this long without sending anything.
    pub keepalive_interval: Duration,
    /// A peer that sends none of the blocks we asked for in this long is snubbed: its
    /// requests go to others and the choker stops counting it.
    pub request_timeout: Duration,
    /// Hash failures a peer may take part in before it is banned.
    pub ban_strikes: u32,
    /// How long before an address that failed is dialled again.
    pub redial_after: Duration,
    /// Choker settings.
    pub choker: ChokerConfig,
    /// Announce settings.
    pub announcer: AnnouncerConfig,
    /// UDP tracker retransmissions before giving up (BEP 15 allows 8, over an hour; fewer
    /// lets the next tracker of the list take over sooner).
    pub udp_max_retransmits: u32,
    /// Client name and version in the extended handshake.
    pub client_name: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            peer_id: PeerId(*b"-SH0010-000000000000"),
            listen_port: 6881,
            rng_seed: 0,
            max_peers_per_torrent: 50,
            max_connections: 500,
            max_pipeline: 500,
            max_serve_queue: 500,
            max_reads_per_peer: 16,
            // Blocks handed to the runtime can no longer be cancelled or choked away: keep
            // it to what a fast link needs between two writable events.
            send_buffer: 1 << 20,
            max_message_len: crate::wire::DEFAULT_MAX_MESSAGE_LEN,
            handshake_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(180),
            keepalive_interval: Duration::from_secs(90),
            request_timeout: Duration::from_secs(30),
            ban_strikes: 3,
            redial_after: Duration::from_secs(60),
            choker: ChokerConfig::default(),
            announcer: AnnouncerConfig::default(),
            udp_max_retransmits: 2,
            client_name: concat!("shoal ", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Per-torrent options given to [`Engine::add_torrent`](super::Engine::add_torrent).
#[derive(Clone, Debug, Default)]
pub struct TorrentOptions {
    /// Pieces already on disk and verified (a resumed download); never requested again.
    pub verified: Option<Bitfield>,
    /// Download pieces in order, for streaming.
    pub sequential: bool,
}

/// Every fact the engine learns from outside.
#[derive(Debug)]
pub enum Input {
    /// An outbound connection from [`Output::Connect`] is established.
    Connected { conn: ConnId },
    /// It could not be established.
    ConnectFailed { conn: ConnId },
    /// Bytes arrived on a connection. Give a buffer the engine may keep: when it holds no
    /// partial message, the engine adopts it without copying.
    Received { conn: ConnId, data: BytesMut },
    /// The connection closed or failed.
    Closed { conn: ConnId },
    /// `bytes` of what was given in [`Output::Send`] for `conn` have been written out.
    Sent { conn: ConnId, bytes: usize },
    /// The answer to [`Output::ReadBlock`].
    BlockRead {
        torrent: TorrentId,
        conn: ConnId,
        block: BlockRequest,
        result: Result<Bytes, String>,
    },
    /// The answer to [`Output::WriteBlock`].
    BlockWritten {
        torrent: TorrentId,
        block: BlockRequest,
        result: Result<(), String>,
    },
    /// The answer to [`Output::HashPiece`]: whether the piece's data matches its hash.
    PieceHashed {
        torrent: TorrentId,
        piece: PieceIndex,
        ok: bool,
    },
    /// The answer to [`Output::TrackerHttp`]: every byte the tracker sent until it closed
    /// the connection, or why the exchange failed (connect error, timeout, TLS error).
    TrackerHttp {
        torrent: TorrentId,
        id: AnnounceId,
        result: Result<Vec<u8>, String>,
    },
    /// A datagram arrived on the engine's UDP socket (tracker answers).
    UdpReceived { from: SocketAddr, data: Vec<u8> },
    /// The time from [`Engine::poll_timeout`](super::Engine::poll_timeout) has come.
    Timer,
}

/// Every action the engine asks of the outside.
#[derive(Debug)]
pub enum Output {
    Connect {
        conn: ConnId,
        addr: SocketAddr,
    },
    Send {
        conn: ConnId,
        data: Bytes,
    },
    Close {
        conn: ConnId,
    },
    ReadBlock {
        torrent: TorrentId,
        conn: ConnId,
        block: BlockRequest,
    },
    WriteBlock {
        torrent: TorrentId,
        block: BlockRequest,
        data: Bytes,
    },
    HashPiece {
        torrent: TorrentId,
        piece: PieceIndex,
        expected: [u8; 20],
    },
    /// Ask a tracker over HTTP(S): connect to `url.host()`:`url.port()` (TLS when the scheme
    /// is https), send `request` as is, read until the server closes (the request says
    /// `Connection: close`), and answer [`Input::TrackerHttp`].
    TrackerHttp {
        torrent: TorrentId,
        id: AnnounceId,
        url: TrackerUrl,
        request: Vec<u8>,
    },
    /// Send a datagram from the engine's UDP socket.
    UdpSend {
        to: SocketAddr,
        data: Vec<u8>,
    },
    Event(Event),
}

/// Why a connection was closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The remote side closed, or the socket failed.
    Remote,
    ConnectFailed,
    /// The peer broke the protocol.
    Protocol(String),
    /// The handshake named a torrent we don't have.
    UnknownTorrent,
    /// The peer is us (same peer id).
    SelfConnection,
    /// We are already connected to this peer id.
    Duplicate,
    Timeout(&'static str),
    /// Both sides have everything.
    BothSeeds,
    Banned,
    TorrentRemoved,
    TooManyConnections,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Remote => f.write_str("closed by the peer"),
            CloseReason::ConnectFailed => f.write_str("connection failed"),
            CloseReason::Protocol(why) => write!(f, "protocol violation: {why}"),
            CloseReason::UnknownTorrent => f.write_str("unknown torrent"),
            CloseReason::SelfConnection => f.write_str("connected to ourselves"),
            CloseReason::Duplicate => f.write_str("already connected to this peer"),
            CloseReason::Timeout(what) => write!(f, "{what} timed out"),
            CloseReason::BothSeeds => f.write_str("both sides are seeds"),
            CloseReason::Banned => f.write_str("banned"),
            CloseReason::TorrentRemoved => f.write_str("torrent removed"),
            CloseReason::TooManyConnections => f.write_str("too many connections"),
        }
    }
}

/// A torrent's figures, as in [`Event::Progress`] and [`Engine::stats`](super::Engine::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentStats {
    pub pieces_verified: u32,
    pub piece_count: u32,
    pub bytes_verified: u64,
    pub total_length: u64,
    /// Payload bytes received / sent.
    pub downloaded: u64,
    pub uploaded: u64,
    /// Bytes per second, payload.
    pub download_rate: u64,
    pub upload_rate: u64,
    pub peers: usize,
    pub complete: bool,
}

/// What users want to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Once a second per torrent.
    Progress {
        torrent: TorrentId,
        stats: TorrentStats,
    },
    PieceVerified {
        torrent: TorrentId,
        piece: PieceIndex,
    },
    HashFailed {
        torrent: TorrentId,
        piece: PieceIndex,
    },
    /// Every piece covering file `file` (its index in the metainfo) is verified: the runtime
    /// may now give it its final name.
    FileCompleted {
        torrent: TorrentId,
        file: usize,
    },
    /// Every piece is verified.
    Completed {
        torrent: TorrentId,
    },
    PeerConnected {
        torrent: TorrentId,
        conn: ConnId,
        addr: SocketAddr,
        peer_id: PeerId,
    },
    PeerClosed {
        torrent: Option<TorrentId>,
        conn: ConnId,
        addr: SocketAddr,
        reason: CloseReason,
    },
    PeerBanned {
        torrent: TorrentId,
        ip: IpAddr,
    },
    /// A tracker answered an announce.
    TrackerAnswer {
        torrent: TorrentId,
        url: String,
        peers: usize,
        seeders: Option<u32>,
        leechers: Option<u32>,
        warning: Option<String>,
    },
    /// A tracker could not be reached or refused the announce (`failures` in a row).
    TrackerError {
        torrent: TorrentId,
        url: String,
        error: String,
        failures: u32,
    },
    /// A disk read or write failed: the torrent stops asking for more data until it is
    /// re-added.
    StorageError {
        torrent: TorrentId,
        message: String,
    },
}

/// Why [`Engine::add_torrent`](super::Engine::add_torrent) refused a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddTorrentError {
    /// The metainfo's layout is inconsistent (only possible for a hand-built `Info`).
    Layout(LayoutError),
    Picker(crate::picker::PickerError),
    /// The resume bitfield has the wrong number of pieces.
    ResumeLength {
        got: u32,
        expected: u32,
    },
}

impl fmt::Display for AddTorrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddTorrentError::Layout(e) => write!(f, "bad torrent layout: {e}"),
            AddTorrentError::Picker(e) => write!(f, "bad torrent layout: {e}"),
            AddTorrentError::ResumeLength { got, expected } => write!(
                f,
                "resume data covers {got} pieces, the torrent has {expected}"
            ),
        }
    }
}

impl std::error::Error for AddTorrentError {}

/// Errors from the wire show up as close reasons.
impl From<WireError> for CloseReason {
    fn from(e: WireError) -> Self {
        CloseReason::Protocol(e.to_string())
    }
}
