//! shoal-core: the sans-IO heart of the shoal BitTorrent engine.
//!
//! This crate is deterministic and performs no IO: it opens no sockets, touches no files,
//! reads no clock and spawns no threads. Bytes, time and randomness come in as arguments;
//! actions go out as values the caller carries out. Everything that parses remote input
//! returns a typed error instead of panicking.
//!
//! # For embedders
//!
//! What a program that uses shoal needs, and all it needs:
//!
//! - [`engine`]: a whole client (every torrent and peer connection) as one state machine,
//!   driven by [`Engine::handle`](engine::Engine::handle),
//!   [`poll_output`](engine::Engine::poll_output) and
//!   [`poll_timeout`](engine::Engine::poll_timeout); its module docs give the loop and
//!   what the engine asks of its caller. Its vocabulary ([`Input`](engine::Input),
//!   [`Output`](engine::Output), [`Event`](engine::Event), the settings and the errors)
//!   is re-exported there, with the value types at the crate root ([`InfoHash`],
//!   [`PeerId`], [`PieceIndex`], [`BlockRequest`], [`IoError`] …).
//! - [`metainfo`] reads `.torrent` files, [`magnet`] reads and writes magnet links,
//!   [`create`] makes new torrents from file data fed in by the caller.
//! - [`tracker::server`]: a BitTorrent tracker (HTTP announce and scrape, UDP), the same
//!   sans-IO way: requests in, answers out.
//!
//! The runtimes in the workspace (`shoal-mio`, `shoal-async-std`) are such embedders, and
//! the simplest example is `examples/std_net.rs`.
//!
//! # Building blocks
//!
//! The engine is made of these; they are public so each can be tested, fuzzed and reused
//! alone, but an embedder of the engine does not need them:
//!
//! - [`wire`]: the peer wire protocol codec (BEP 3, BEP 6, BEP 10 framing).
//! - [`picker`]: which block to request from which peer.
//! - [`choker`]: which peers we upload to.
//! - [`tracker`] (client side): announce scheduling, and the bytes of HTTP and UDP
//!   (BEP 15) trackers.
//! - [`webseed`]: web seeds (BEP 19): file URLs, range requests and the checks on answers.
//! - [`storage`]: where each piece lies in the files, and which pieces are verified.
//! - [`metadata`]: the BEP 9 metadata exchange (`ut_metadata`), both ways; [`pex`]: peer
//!   exchange (BEP 11, `ut_pex`).
//! - [`dht`]: a Mainline DHT node (BEP 5): KRPC, routing table, lookups, tokens, peer store.
//! - [`bitfield`], [`rate`], [`rng`]: piece sets, transfer rates, the seeded generator.
//! - [`bencode`]: a small zero-copy bencode reader for hot paths and lenient parsing
//!   (encoding goes through `bendy`); [`percent`]: RFC 3986 percent-encoding.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bencode;
pub mod bitfield;
pub mod choker;
pub mod create;
pub mod dht;
pub mod engine;
pub mod lsd;
pub mod magnet;
pub mod metadata;
pub mod metainfo;
pub mod mse;
pub mod percent;
pub mod pex;
pub mod picker;
pub mod rate;
pub mod rng;
pub mod storage;
pub mod tracker;
mod types;
pub mod webseed;
pub mod wire;

pub use types::{
    BlockRequest, InfoHash, IoError, ParseHexError, PeerId, PeerKey, PieceIndex, BLOCK_SIZE,
};
