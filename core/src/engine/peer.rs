//! One peer connection's state: what the engine knows and has promised on it.
//!
//! The engine drives it; this file holds the data and the small rules that concern one
//! connection alone (the request pipeline's size, its write buffer, its timers).
//!
//! Invariant: what the receive path, serving and the choker read is in [`Peer`], kept in
//! the connection's slot in order of heat; [`PeerCold`] holds only what is read at set-up
//! or rarely (the layout is checked by `engine::tests`).

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::Instant;

use bytes::BytesMut;
use smallvec::SmallVec;

use super::{ConnId, TorrentId};
use crate::metadata::ServeBudget;
use crate::rate::RateMeter;
use crate::wire::{Decoder, DecoderConfig, Message};
use crate::{BlockRequest, PeerId, PeerKey, PieceIndex, BLOCK_SIZE};

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// We asked the runtime to connect; no answer yet.
    Connecting,
    /// Connected; the handshakes are not both done.
    Handshake,
    /// Handshakes done: messages flow.
    Active,
}

/// A request we sent and its time, for timeouts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outstanding {
    pub block: BlockRequest,
    pub sent_at: Instant,
}

/// One connection's state in two parts: this, which the engine keeps in the connection's
/// slot, and [`PeerCold`] behind a pointer.
///
/// The slot holds what the receive path of a `have`, a `request` or a `piece`, the serving
/// of blocks, the flush of the write buffer and the choker read, in that order of heat
/// (`repr(C)` keeps it; the slot is cache-line aligned and starts with the generation):
/// what every message reads fills the slot's first three cache lines, what blocks and the
/// choker read the next three. Everything else (set-up, extension state, PEX, what was
/// said before a magnet's metadata came) is read at set-up or rarely and lives in
/// `cold`. An engine with many connections usually meets a connection with a cold cache:
/// each line a message touches is a miss, and the lines nobody touches stay out of the
/// way of those that are (a slot was ~640 bytes with everything in it; see
/// `engine::tests` for the bounds kept).
#[repr(C)]
pub(crate) struct Peer {
    // -- every message
    pub torrent: Option<TorrentId>,
    pub phase: Phase,
    /// Whether the connection is in the engine's list of buffers to flush.
    pub flush_queued: bool,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Whether any message has come after the handshake (a bitfield may only be first).
    pub got_message: bool,
    pub snubbed: bool,
    /// Both ends set the fast extension's bit (BEP 6).
    pub fast: bool,
    /// The payload is RC4-encrypted (message stream encryption; the ciphers are in
    /// `cold.stream`).
    pub encrypted: bool,
    /// The peer's `reqq` from its extended handshake: the most requests it queues (kept
    /// to 1..=2000; a `u16` beside the flags, so the slot's first line loses no byte).
    pub peer_reqq: u16,
    /// Pieces the peer has (mirrors what the picker was told), for "is it a seed".
    pub have_count: u32,
    /// What its torrent's picker and choker know it by, once it trades on a torrent with
    /// metadata (see `keys`); [`NO_KEY`](super::keys::NO_KEY) until then.
    pub key: PeerKey,
    /// How many requests we keep in flight to this peer.
    pub pipeline: u32,
    /// Bytes handed to the runtime to send that it has not reported written.
    pub unsent: usize,
    pub last_received: Instant,
    pub decoder: Decoder,
    pub read_buf: BytesMut,
    /// Small messages waiting to be handed to the runtime in one `Send`.
    pub write_buf: BytesMut,
    /// Requests the peer made that we will serve, oldest first.
    pub serve_queue: super::serve::ServeQueue,
    // -- blocks both ways, the choker, the deadlines
    /// Requests we sent and are waiting on, oldest first.
    pub requests: VecDeque<Outstanding>,
    /// When the peer last sent us a block we asked for (snub detection).
    pub last_block: Instant,
    pub last_sent: Instant,
    pub down: RateMeter,
    pub up: RateMeter,
    pub id: ConnId,
    /// Read for every block received (the piece's contributors, for strikes).
    pub addr: SocketAddr,
    /// Blocks we asked the runtime to read for this peer and not yet sent, each with
    /// whether the peer cancelled it meanwhile (its data is then dropped when it comes).
    pub reading: SmallVec<[(BlockRequest, bool); 8]>,
    // -- set-up and rare
    pub cold: Box<PeerCold>,
}

/// What the engine keeps of a connection that no message of the transfer reads: set-up,
/// the extension protocol's state, PEX, early haves. See [`Peer`].
pub(crate) struct PeerCold {
    pub phase_since: Instant,
    pub connected_at: Instant,
    pub sent_handshake: bool,
    pub extensions: bool,
    pub peer_id: Option<PeerId>,
    pub allowed_fast: SmallVec<[PieceIndex; 8]>,
    /// The id the peer wants `ut_metadata` messages under (0: it does not speak it).
    pub ut_metadata: u8,
    /// How many more of its metadata requests get data (see `extension`).
    pub metadata_budget: ServeBudget,
    /// What it said it has while its torrent's metadata was being fetched (see `magnet`).
    pub early: Option<Box<super::magnet::EarlyHaves>>,
    /// We dialled it (so its address is where it listens).
    pub outbound: bool,
    /// The listen port of its extended handshake, if it said.
    pub listen_port: Option<u16>,
    /// The id the peer wants `ut_pex` messages under (0: it does not speak it).
    pub ut_pex: u8,
    /// Plaintext, MSE under way, or RC4 (see `encryption`).
    pub stream: super::encryption::Stream,
    /// Its entry in its torrent's PEX list, once listed (see `pex`).
    pub pex_listed: Option<crate::pex::Seq>,
    /// When we last read a `ut_pex` message from it.
    pub pex_received: Option<Instant>,
}

/// Requests kept in flight before the rate is known: enough to fill a slow link quickly,
/// few enough not to hog a peer we know nothing about.
pub(crate) const INITIAL_PIPELINE: u32 = 8;
/// Seconds of data at the measured rate to keep requested: covers the round trip and the
/// peer's disk with margin.
pub(crate) const PIPELINE_SECONDS: u64 = 2;
/// What we assume a peer queues when it does not say (libtorrent's and most clients').
pub(crate) const DEFAULT_PEER_REQQ: u16 = 250;

impl Peer {
    pub fn new(
        id: ConnId,
        addr: SocketAddr,
        outbound: bool,
        torrent: Option<TorrentId>,
        max_message_len: u32,
        now: Instant,
    ) -> Peer {
        Peer {
            torrent,
            phase: if outbound {
                Phase::Connecting
            } else {
                Phase::Handshake
            },
            flush_queued: false,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            got_message: false,
            snubbed: false,
            fast: false,
            encrypted: false,
            have_count: 0,
            key: super::keys::NO_KEY,
            pipeline: INITIAL_PIPELINE,
            peer_reqq: DEFAULT_PEER_REQQ,
            unsent: 0,
            last_received: now,
            decoder: Decoder::new(DecoderConfig {
                max_message_len,
                ..DecoderConfig::default()
            }),
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            serve_queue: Default::default(),
            requests: VecDeque::new(),
            last_block: now,
            last_sent: now,
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            id,
            addr,
            reading: SmallVec::new(),
            cold: Box::new(PeerCold {
                phase_since: now,
                connected_at: now,
                sent_handshake: false,
                extensions: false,
                peer_id: None,
                allowed_fast: SmallVec::new(),
                ut_metadata: 0,
                metadata_budget: ServeBudget::new(0),
                early: None,
                outbound,
                listen_port: None,
                ut_pex: 0,
                stream: Default::default(),
                pex_listed: None,
                pex_received: None,
            }),
        }
    }

    /// Queues a message for sending.
    pub fn send(&mut self, message: &Message) {
        message.encode(&mut self.write_buf);
    }

    /// Grows the pipeline by one for a block received (TCP-like slow start: it doubles
    /// each round trip while blocks keep coming), up to what the peer queues and our cap.
    pub fn grow_pipeline(&mut self, cap: u32) {
        if self.pipeline < cap.min(u32::from(self.peer_reqq)) {
            self.pipeline += 1;
        }
    }

    /// Shrinks the pipeline to what the measured rate justifies: `PIPELINE_SECONDS` of data,
    /// never below the initial size. Called after the rate is updated.
    pub fn trim_pipeline(&mut self, cap: u32) {
        let by_rate = self.down.rate() * PIPELINE_SECONDS / u64::from(BLOCK_SIZE);
        let floor = INITIAL_PIPELINE
            .min(cap.min(u32::from(self.peer_reqq)))
            .max(1);
        let by_rate = u32::try_from(by_rate).unwrap_or(u32::MAX).max(floor);
        self.pipeline = self.pipeline.min(by_rate).max(floor);
    }

    pub fn is_seed(&self, piece_count: u32) -> bool {
        self.have_count >= piece_count
    }
}
