//! The engine's vocabulary, all of it public and re-exported from [the engine](super):
//! handles ([`ConnId`], [`TorrentId`]), settings ([`EngineConfig`], [`TorrentOptions`]),
//! every fact that comes in ([`Input`]) and every action that goes out ([`Output`],
//! [`Event`]), and the reasons and figures the engine reports ([`CloseReason`],
//! [`TorrentStats`], [`AddTorrentError`]).

use core::net::{IpAddr, SocketAddr};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::bitfield::{Bitfield, BitfieldError};
use crate::choker::ChokerConfig;
use crate::mse::{Methods, MseError, Prefer};

use super::RateLimits;
use crate::storage::LayoutError;
use crate::tracker::{AnnounceId, AnnouncerConfig, TrackerError, TrackerUrl};
use crate::webseed::{WebSeedConfig, WebSeedError};
use crate::wire::WireError;
use crate::{BlockRequest, IoError, PeerId, PeerKey, PieceIndex};

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

/// One request to a web seed: which web seed of its torrent, and which of its requests.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct WebSeedRequestId {
    /// The web seed's index in the torrent's `url-list`.
    pub seed: u32,
    /// Which of its requests: answers to an older one are ignored.
    pub serial: u32,
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
    /// A connection whose handshake is not done this long after it was made is closed.
    pub handshake_timeout: Duration,
    /// A dial ([`Output::Connect`]) not connected in this long is given up and closed.
    pub connect_timeout: Duration,
    /// A connection with nothing received for this long is closed.
    pub idle_timeout: Duration,
    /// We send a keep-alive after this long without sending anything.
    pub keepalive_interval: Duration,
    /// A peer that sends none of the blocks we asked for in this long is snubbed: its
    /// requests go to others and the choker stops counting it.
    pub request_timeout: Duration,
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
    /// Web seed (BEP 19) settings: backoff, failures before one is dropped, redirects,
    /// bytes per job.
    pub webseed: WebSeedConfig,
    /// Upload and download limits for all torrents together (none by default); change
    /// them later with [`Engine::set_rate_limits`](super::Engine::set_rate_limits).
    pub rate_limits: RateLimits,
    /// The most addresses a torrent remembers to dial (from trackers, the user, peer
    /// exchange); beyond it, a new one replaces the one that failed most, or is dropped.
    pub max_candidates: usize,
    /// The largest metadata (`info` dictionary) fetched for a magnet link (BEP 9); a peer
    /// announcing more is not asked for it.
    pub max_metadata_size: u64,
    /// Peer exchange (BEP 11) with peers that offer it, for torrents that are not private.
    pub pex: bool,
    /// Local service discovery (BEP 14) for torrents that are not private: off by default,
    /// since it needs a runtime that owns a multicast socket ([`Output::LsdSend`],
    /// [`Input::LsdReceived`]) and sends beyond the machine.
    pub lsd: bool,
    /// Message stream encryption (MSE/PE) both ways; see [`Encryption`].
    pub encryption: Encryption,
}

/// What the engine does with message stream encryption (MSE, also called protocol
/// encryption). An incoming connection's first bytes tell a plaintext handshake from an
/// encrypted one.
///
/// The default, [`Encryption::Accept`], is what serious clients do by default: take both
/// incoming (libtorrent, for one, dials with MSE first), select plaintext when the dialler
/// offers it (the transfer then costs nothing more), and dial plaintext, which every
/// client accepts by default and which costs no key exchange and no round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encryption {
    /// Plaintext only: an encrypted handshake is refused.
    Off,
    /// Both incoming, plaintext selected when offered (RC4 when it is all that is
    /// offered); plaintext dialled.
    #[default]
    Accept,
    /// Both incoming, RC4 selected when offered; dials with MSE offering RC4 and plaintext,
    /// and dials a peer that closed such a dial again at once in plaintext.
    Prefer,
    /// RC4 only: plaintext handshakes and MSE without RC4 are refused; dials with MSE
    /// offering RC4 alone.
    Require,
}

impl Encryption {
    /// The methods taken from an encrypting dialler, and which is selected when both are.
    pub(crate) fn responder(self) -> Option<(Methods, Prefer)> {
        match self {
            Encryption::Off => None,
            Encryption::Accept => Some((Methods::BOTH, Prefer::Plaintext)),
            Encryption::Prefer => Some((Methods::BOTH, Prefer::Rc4)),
            Encryption::Require => Some((Methods::RC4, Prefer::Rc4)),
        }
    }

    /// The methods offered when dialling with MSE; `None`: dial plaintext.
    pub(crate) fn initiator(self) -> Option<Methods> {
        match self {
            Encryption::Off | Encryption::Accept => None,
            Encryption::Prefer => Some(Methods::BOTH),
            Encryption::Require => Some(Methods::RC4),
        }
    }
}

impl core::str::FromStr for Encryption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Encryption::Off),
            "accept" => Ok(Encryption::Accept),
            "prefer" => Ok(Encryption::Prefer),
            "require" => Ok(Encryption::Require),
            _ => Err(format!(
                "unknown encryption policy {s:?} (off, accept, prefer or require)"
            )),
        }
    }
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
            redial_after: Duration::from_secs(60),
            choker: ChokerConfig::default(),
            announcer: AnnouncerConfig::default(),
            udp_max_retransmits: 2,
            client_name: concat!("shoal ", env!("CARGO_PKG_VERSION")).to_string(),
            webseed: WebSeedConfig::default(),
            rate_limits: RateLimits::default(),
            max_candidates: 1000,
            max_metadata_size: crate::metadata::DEFAULT_MAX_METADATA_SIZE,
            pex: true,
            lsd: false,
            encryption: Encryption::Accept,
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

/// Every fact the engine learns from outside, given to
/// [`Engine::handle`](super::Engine::handle).
///
/// Most are answers to an [`Output`]; each variant names the one it answers. An answer for
/// a connection or torrent that is gone meanwhile is ignored, so a runtime never has to
/// cancel work it has started.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// An outbound connection from [`Output::Connect`] is established.
    Connected {
        /// The handle [`Output::Connect`] named.
        conn: ConnId,
    },
    /// An outbound connection from [`Output::Connect`] could not be established. The
    /// address is dialled again only after [`EngineConfig::redial_after`].
    ConnectFailed {
        /// The handle [`Output::Connect`] named.
        conn: ConnId,
    },
    /// Bytes arrived on a connection. Give a buffer the engine may keep: when it holds no
    /// partial message, the engine adopts it without copying.
    Received {
        /// The connection they came on.
        conn: ConnId,
        /// The bytes, in the order received.
        data: BytesMut,
    },
    /// The connection was closed by the peer, or failed. Not needed after
    /// [`Output::Close`].
    Closed {
        /// The connection that ended.
        conn: ConnId,
    },
    /// Some of what was given in [`Output::Send`] has been written out.
    Sent {
        /// The connection written to.
        conn: ConnId,
        /// How many bytes left for the socket since the last report.
        bytes: usize,
    },
    /// The answer to [`Output::ReadBlock`].
    BlockRead {
        /// As in the [`Output::ReadBlock`].
        torrent: TorrentId,
        /// As in the [`Output::ReadBlock`].
        conn: ConnId,
        /// As in the [`Output::ReadBlock`].
        block: BlockRequest,
        /// The block's bytes, or why they could not be read; a failure stops the torrent
        /// (see [`Event::StorageError`]).
        result: Result<Bytes, IoError>,
    },
    /// The answer to [`Output::WriteBlock`].
    BlockWritten {
        /// As in the [`Output::WriteBlock`].
        torrent: TorrentId,
        /// As in the [`Output::WriteBlock`].
        block: BlockRequest,
        /// Whether the block is stored; a failure drops the piece (it is fetched again) and
        /// stops the torrent (see [`Event::StorageError`]).
        result: Result<(), IoError>,
    },
    /// The answer to [`Output::HashPiece`]: whether the piece's data matches its hash.
    PieceHashed {
        /// As in the [`Output::HashPiece`].
        torrent: TorrentId,
        /// As in the [`Output::HashPiece`].
        piece: PieceIndex,
        /// Whether the SHA-1 of the piece's data is the one expected. A piece that could
        /// not be read back is not a failed hash: answer [`Input::PieceUnreadable`].
        ok: bool,
    },
    /// The other answer to [`Output::HashPiece`]: our own storage could not write or read
    /// the piece back, so nothing is known of its data. No peer is blamed; the piece is
    /// fetched again and the torrent stops as after any storage failure (see
    /// [`Event::StorageError`]).
    PieceUnreadable {
        /// As in the [`Output::HashPiece`].
        torrent: TorrentId,
        /// As in the [`Output::HashPiece`].
        piece: PieceIndex,
        /// What the storage said.
        error: IoError,
    },
    /// The answer to [`Output::TrackerHttp`].
    TrackerHttp {
        /// As in the [`Output::TrackerHttp`].
        torrent: TorrentId,
        /// As in the [`Output::TrackerHttp`].
        id: AnnounceId,
        /// Every byte the tracker sent until it closed the connection, unparsed (the
        /// engine reads the HTTP response itself), or why the exchange failed: connect
        /// error, name not found, TLS error, no answer in time (kind
        /// [`TimedOut`](std::io::ErrorKind::TimedOut)). Name the URL in the message: it
        /// reaches the user as [`TrackerError::Transport`].
        result: Result<Vec<u8>, IoError>,
    },
    /// The answer to [`Output::WebSeedRequest`].
    WebSeedResponse {
        /// As in the [`Output::WebSeedRequest`].
        torrent: TorrentId,
        /// As in the [`Output::WebSeedRequest`].
        id: WebSeedRequestId,
        /// Every byte the server sent for this request, unparsed (the engine reads the
        /// HTTP response itself): up to the end of the response or the close of the
        /// connection, whichever came first. Or why the exchange failed (connect, name
        /// lookup, TLS, no answer in time); name the URL in the message.
        result: Result<Vec<u8>, IoError>,
    },
    /// A datagram arrived on the engine's UDP socket: a UDP tracker's answer, or a DHT
    /// message once the DHT runs (told apart by the engine: KRPC starts with `d`).
    UdpReceived {
        /// Who sent it.
        from: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// A datagram arrived on the local service discovery socket (BEP 14: the multicast
    /// group [`crate::lsd::GROUP_V4`]), when [`EngineConfig::lsd`] is on.
    LsdReceived {
        /// Who sent it (its port is not where it listens; the announce says that).
        from: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// The time from [`Engine::poll_timeout`](super::Engine::poll_timeout) has come. The
    /// engine does only what is due by `now`, so a runtime may wake early.
    Timer,
}

/// Every action the engine asks of the outside, taken from
/// [`Engine::poll_output`](super::Engine::poll_output) in the order they must be carried
/// out.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Open a TCP connection to `addr`, then answer [`Input::Connected`] or
    /// [`Input::ConnectFailed`]. The engine sends its handshake once connected.
    Connect {
        /// The handle the engine chose for the connection, used by every input and output
        /// about it.
        conn: ConnId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Write `data` on the connection, after whatever was given before, and report with
    /// [`Input::Sent`] as it leaves.
    Send {
        /// The connection to write on.
        conn: ConnId,
        /// The bytes: a message, several, or a block's payload handed on without a copy.
        data: Bytes,
    },
    /// Close the connection. The engine has forgotten it: inputs about it are ignored. An
    /// [`Event::PeerClosed`] follows with the reason.
    Close {
        /// The connection to close.
        conn: ConnId,
    },
    /// Read a block from the torrent's storage, to serve it to `conn`; answer
    /// [`Input::BlockRead`]. Only blocks of verified pieces are asked for.
    ReadBlock {
        /// The torrent whose data it is.
        torrent: TorrentId,
        /// The peer the block is for (give it back in the answer).
        conn: ConnId,
        /// The block: a piece, an offset in it and a length.
        block: BlockRequest,
    },
    /// Write a block received from a peer to the torrent's storage; answer
    /// [`Input::BlockWritten`].
    WriteBlock {
        /// The torrent whose data it is.
        torrent: TorrentId,
        /// Where the data goes.
        block: BlockRequest,
        /// The block's payload, exactly `block.length` bytes.
        data: Bytes,
    },
    /// Hash a piece whose blocks are all written (every [`Output::WriteBlock`] of it has
    /// been answered); answer [`Input::PieceHashed`].
    HashPiece {
        /// The torrent whose piece it is.
        torrent: TorrentId,
        /// The piece to read back and hash.
        piece: PieceIndex,
        /// Its SHA-1 from the metainfo.
        expected: [u8; 20],
    },
    /// Ask a tracker over HTTP(S): connect to `url.host()`:`url.port()` (TLS when the scheme
    /// is https), send `request` as is, read until the server closes (the request says
    /// `Connection: close`), and answer [`Input::TrackerHttp`]. Give up after some time
    /// (the runtimes wait 30 s): the engine does not time HTTP exchanges itself.
    TrackerHttp {
        /// The torrent announcing.
        torrent: TorrentId,
        /// The announce this request is (give it back in the answer).
        id: AnnounceId,
        /// The tracker's URL, parsed.
        url: TrackerUrl,
        /// The whole HTTP/1.1 request, head and all.
        request: Vec<u8>,
    },
    /// Ask a web seed (BEP 19) for a range of a file: connect to `url.host()`:`url.port()`
    /// (TLS when the scheme is https), send `request` as is, read the answer and give
    /// every byte of it in [`Input::WebSeedResponse`]. The request says `Connection:
    /// keep-alive`, so the server may not close: the answer ends where
    /// [`webseed::answer_reader`](crate::webseed::answer_reader)`(max_body)` says it is
    /// whole (or fails), and the connection may then carry the next request to the same
    /// server if the reader
    /// [keeps it alive](crate::tracker::http::HttpResponseReader::keeps_alive). A web
    /// seed may have several requests under way at once
    /// ([`WebSeedConfig::max_jobs`]): give each a connection of its own (never pipeline
    /// them on one). Stop reading past `max_body` bytes of body. Give up after some time (the
    /// runtimes allow 30 s per request): the engine does not time HTTP exchanges itself.
    /// Redirects are the engine's business: do not follow them.
    WebSeedRequest {
        /// The torrent whose data it is.
        torrent: TorrentId,
        /// Which request it is (give it back in the answer).
        id: WebSeedRequestId,
        /// The URL of the file (or where a redirect pointed), parsed.
        url: TrackerUrl,
        /// The whole HTTP/1.1 request, head and all.
        request: Vec<u8>,
        /// The longest body the answer may have.
        max_body: u64,
    },
    /// Send a datagram from the engine's UDP socket (UDP trackers, BEP 15, and the DHT,
    /// BEP 5). A lost datagram needs no report: the engine retransmits.
    UdpSend {
        /// Where to.
        to: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Send a local service discovery announce (BEP 14) to the multicast group
    /// [`crate::lsd::GROUP_V4`]; only when [`EngineConfig::lsd`] is on.
    LsdSend {
        /// The datagram.
        data: Vec<u8>,
    },
    /// Something a user may want to know; nothing to carry out.
    Event(Event),
}

/// Why a connection was closed, as in [`Event::PeerClosed`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The remote side closed, or the socket failed ([`Input::Closed`]).
    Remote,
    /// Our outbound connection could not be established ([`Input::ConnectFailed`]).
    ConnectFailed,
    /// The peer broke the protocol.
    Protocol(ProtocolError),
    /// The handshake named a torrent we don't have.
    UnknownTorrent,
    /// The peer is us (same peer id).
    SelfConnection,
    /// We are already connected to this peer id.
    Duplicate,
    /// A deadline passed: the connect, the handshake, or anything received at all (the
    /// text names which).
    Timeout(&'static str),
    /// Both sides have everything.
    BothSeeds,
    /// The peer's host is banned: it sent data proven wrong (see [`Event::PeerBanned`]).
    Banned,
    /// Its torrent was removed from the engine.
    TorrentRemoved,
    /// The engine or the torrent is at its connection limit, and no peer could make room.
    TooManyConnections,
    /// The peer sent metadata (BEP 9) that cannot be right: it contradicts its own
    /// `metadata_size`, or all of it failed the info-hash check.
    BadMetadata,
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
            CloseReason::BadMetadata => f.write_str("sent wrong metadata"),
        }
    }
}

/// How a peer broke the protocol: its connection is closed with
/// [`CloseReason::Protocol`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that do not decode as the wire protocol.
    Wire(WireError),
    /// A bitfield that does not fit the torrent.
    Bitfield(BitfieldError),
    /// The handshake of a peer we dialled names another torrent than the one we dialled
    /// it for.
    OtherTorrent,
    /// A message of the fast extension (BEP 6; the text names it) from a peer that did not
    /// offer the extension.
    NotFast(&'static str),
    /// A `have` naming a piece past the torrent's last.
    HaveOutOfRange(PieceIndex),
    /// A `piece` message carrying a block that is not in the torrent.
    NoSuchBlock(BlockRequest),
    /// A `request` for a range that is not inside its piece.
    OutsidePiece(BlockRequest),
    /// The peer reads nothing of what it makes us send (rejects of a request flood, for
    /// one): more than four send buffers' worth is waiting for it.
    NotReading {
        /// Bytes handed to the runtime and not yet sent.
        unsent: usize,
    },
    /// More `have` messages than [`super::MAX_EARLY_HAVES`] before the metadata is in.
    TooManyEarlyHaves,
    /// The message stream encryption handshake failed.
    Encryption(MseError),
    /// A plaintext handshake while encryption is required, or an encrypted one while it
    /// is off.
    EncryptionPolicy,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Wire(e) => e.fmt(f),
            ProtocolError::Bitfield(e) => e.fmt(f),
            ProtocolError::OtherTorrent => f.write_str("handshake for another torrent"),
            ProtocolError::NotFast(what) => write!(f, "{what} without the fast extension"),
            ProtocolError::HaveOutOfRange(piece) => write!(f, "have out of range (piece {piece})"),
            ProtocolError::NoSuchBlock(block) => {
                write!(
                    f,
                    "piece message for a block that does not exist: {block:?}"
                )
            }
            ProtocolError::OutsidePiece(block) => {
                write!(f, "request outside the piece: {block:?}")
            }
            ProtocolError::NotReading { unsent } => {
                write!(f, "the peer reads nothing: {unsent} bytes wait for it")
            }
            ProtocolError::TooManyEarlyHaves => {
                f.write_str("too many haves before the metadata is known")
            }
            ProtocolError::Encryption(e) => e.fmt(f),
            ProtocolError::EncryptionPolicy => {
                f.write_str("handshake refused by the encryption policy")
            }
        }
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProtocolError::Wire(e) => Some(e),
            ProtocolError::Bitfield(e) => Some(e),
            ProtocolError::Encryption(e) => Some(e),
            _ => None,
        }
    }
}

/// How a connection's bytes travel (see [`Encryption`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerStream {
    /// A plaintext BitTorrent handshake and everything after it in the clear.
    Plaintext,
    /// A message stream encryption handshake that selected plaintext: the rest in the
    /// clear.
    MsePlaintext,
    /// A message stream encryption handshake that selected RC4: every byte encrypted.
    Rc4,
}

impl fmt::Display for PeerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerStream::Plaintext => "plaintext",
            PeerStream::MsePlaintext => "MSE, plaintext",
            PeerStream::Rc4 => "MSE, RC4",
        })
    }
}

/// A torrent's figures, as in [`Event::Progress`] and [`Engine::stats`](super::Engine::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentStats {
    /// Pieces we have and have verified.
    pub pieces_verified: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Bytes of the verified pieces (the last piece may be short).
    pub bytes_verified: u64,
    /// Bytes in the torrent.
    pub total_length: u64,
    /// Payload bytes received since the torrent was added: blocks we asked for, endgame
    /// duplicates included.
    pub downloaded: u64,
    /// Payload bytes sent since the torrent was added.
    pub uploaded: u64,
    /// Payload bytes per second received, a moving average over a few seconds (see
    /// [`rate`](crate::rate)).
    pub download_rate: u64,
    /// Payload bytes per second sent, averaged the same way.
    pub upload_rate: u64,
    /// Connections of this torrent: dialled, handshaking or connected.
    pub peers: usize,
    /// Whether every piece is verified.
    pub complete: bool,
}

/// What users want to know, carried by [`Output::Event`]. Nothing is asked of the runtime:
/// an embedder that ignores every event still works.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A torrent's figures, once a second per torrent.
    Progress {
        /// Whose figures.
        torrent: TorrentId,
        /// The figures.
        stats: TorrentStats,
    },
    /// A piece passed its hash check: it is ours, and we offer it to peers.
    PieceVerified {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
    },
    /// A piece failed its hash check: it is fetched again, and the peers that sent it
    /// take a strike.
    HashFailed {
        /// The torrent.
        torrent: TorrentId,
        /// The piece.
        piece: PieceIndex,
    },
    /// Every piece covering a file is verified: the runtime may now give it its final name.
    FileCompleted {
        /// The torrent.
        torrent: TorrentId,
        /// The file's index in the metainfo's file list.
        file: usize,
    },
    /// Every piece is verified: the torrent seeds from now on.
    Completed {
        /// The torrent.
        torrent: TorrentId,
    },
    /// A peer finished its handshake.
    PeerConnected {
        /// The torrent it is for.
        torrent: TorrentId,
        /// Its connection.
        conn: ConnId,
        /// Its address.
        addr: SocketAddr,
        /// The id it sent in its handshake.
        peer_id: PeerId,
        /// How its bytes travel: plaintext, or after a message stream encryption handshake.
        stream: PeerStream,
    },
    /// A connection ended, whoever ended it.
    PeerClosed {
        /// The torrent it was for; `None` for an inbound peer that left before naming one.
        torrent: Option<TorrentId>,
        /// Its connection; the handle is dead from now on.
        conn: ConnId,
        /// Its address.
        addr: SocketAddr,
        /// Why it ended.
        reason: CloseReason,
    },
    /// A host is banned from a torrent: it sent data proven wrong (a piece that failed
    /// its hash check and came from it alone, or a block that differs from the good copy
    /// of a piece that failed before).
    PeerBanned {
        /// The torrent it is banned from.
        torrent: TorrentId,
        /// The host, all its ports: an IPv4 address, or the first address of an IPv6
        /// /64 (every address in it is banned).
        ip: IpAddr,
    },
    /// A tracker answered an announce.
    TrackerAnswer {
        /// The torrent announced.
        torrent: TorrentId,
        /// The tracker.
        url: String,
        /// How many peer addresses it gave.
        peers: usize,
        /// Seeds in the swarm, if it said.
        seeders: Option<u32>,
        /// Leechers in the swarm, if it said.
        leechers: Option<u32>,
        /// Its `warning message`, if any.
        warning: Option<String>,
    },
    /// A tracker could not be reached or refused the announce; the next tracker of the
    /// list is tried at once.
    TrackerError {
        /// The torrent announced.
        torrent: TorrentId,
        /// The tracker.
        url: String,
        /// What went wrong: [`TrackerError::Failure`] when the tracker refused us and said
        /// why, [`TrackerError::Transport`] when it could not be reached, others when its
        /// answer could not be read.
        error: TrackerError,
        /// Failures of this tracker in a row, this one included.
        failures: u32,
        /// When the torrent's next announce is due (to this tracker or another), if any.
        next_try: Option<Instant>,
    },
    /// A DHT lookup for a torrent ended (see [`Engine::start_dht`](super::Engine::start_dht)).
    DhtAnswer {
        /// The torrent.
        torrent: TorrentId,
        /// Distinct peers it found (each given to the torrent as it came).
        peers: usize,
        /// The closest nodes that answered (at most 8).
        nodes: usize,
        /// Nodes we sent `announce_peer` to.
        announced: usize,
    },
    /// A web seed failed: an error answer, a transport error, or a piece with its bytes
    /// that failed the hash check. Its blocks go back to the picker, and it is asked again
    /// after a backoff, or dropped ([`Event::WebSeedDropped`] follows).
    WebSeedError {
        /// The torrent.
        torrent: TorrentId,
        /// The web seed's URL, as in the torrent.
        url: String,
        /// What went wrong.
        reason: WebSeedError,
        /// Failures of this web seed in a row, this one included.
        failures: u32,
        /// When it is asked again; `None` if it is dropped.
        retry_at: Option<Instant>,
    },
    /// A web seed is given up for this torrent: its URL is unusable, or it failed
    /// [`WebSeedConfig::max_failures`] times in a row.
    WebSeedDropped {
        /// The torrent.
        torrent: TorrentId,
        /// The web seed's URL, as in the torrent.
        url: String,
        /// The last failure.
        reason: WebSeedError,
    },
    /// A magnet link's torrent is fetching its metadata: its figures, once a second.
    FetchingMetadata {
        /// The torrent.
        torrent: TorrentId,
        /// The figures.
        stats: super::FetchingStats,
    },
    /// A magnet link's metadata is in and matches the info-hash: open storage for it (and
    /// save `meta.info_bytes` as the `.torrent`'s `info`), then call
    /// [`Engine::attach_metainfo`](super::Engine::attach_metainfo).
    MetadataReceived {
        /// The torrent.
        torrent: TorrentId,
        /// The metainfo: the verified `info` and the magnet link's trackers.
        meta: std::sync::Arc<crate::metainfo::Metainfo>,
    },
    /// A magnet link's metadata matches the info-hash but is not a usable torrent: the
    /// torrent can go no further.
    MetadataFailed {
        /// The torrent.
        torrent: TorrentId,
        /// Why the `info` dictionary was refused.
        error: crate::metainfo::MetainfoError,
    },
    /// A disk read or write failed: the torrent stops asking for more data until it is
    /// re-added.
    StorageError {
        /// The torrent.
        torrent: TorrentId,
        /// What the runtime reported.
        error: IoError,
    },
    /// A bug in shoal: the engine's records of a torrent and its piece picker disagreed,
    /// and the picker refused `refused` calls since the last report (at most one report a
    /// second). Each refused call changed nothing and the torrent goes on, but pieces may
    /// be requested again or later than they should; please report it with `first`.
    /// (Debug builds stop at the first one instead.)
    InternalError {
        /// The torrent.
        torrent: TorrentId,
        /// How many calls were refused since the last report.
        refused: u32,
        /// Why the first of them was refused.
        first: crate::picker::PickerError,
    },
}

/// What to tell a user of an [`Event::InternalError`], in every runtime's words.
pub fn internal_error_message(refused: u32, first: &crate::picker::PickerError) -> String {
    format!(
        "internal error (a bug in shoal, please report it): the piece picker refused \
         {refused} calls, the first with: {first}"
    )
}

/// Why [`Engine::add_torrent`](super::Engine::add_torrent) refused a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddTorrentError {
    /// The metainfo's layout is inconsistent (only possible for a hand-built `Info`).
    Layout(LayoutError),
    /// The picker cannot take the layout (only possible for a hand-built `Info`).
    Picker(crate::picker::PickerError),
    /// [`Engine::attach_metainfo`](super::Engine::attach_metainfo) for a torrent whose
    /// metadata is not in (or that is not a magnet link's).
    NoMetadata,
    /// The resume bitfield has the wrong number of pieces.
    ResumeLength {
        /// Pieces in the bitfield.
        got: u32,
        /// Pieces in the torrent.
        expected: u32,
    },
}

impl fmt::Display for AddTorrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddTorrentError::Layout(e) => write!(f, "bad torrent layout: {e}"),
            AddTorrentError::Picker(e) => write!(f, "bad torrent layout: {e}"),
            AddTorrentError::NoMetadata => f.write_str("the torrent's metadata is not in"),
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
        CloseReason::Protocol(ProtocolError::Wire(e))
    }
}

/// A bitfield that does not fit closes the connection.
impl From<BitfieldError> for CloseReason {
    fn from(e: BitfieldError) -> Self {
        CloseReason::Protocol(ProtocolError::Bitfield(e))
    }
}
