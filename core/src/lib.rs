//! shoal-core: the sans-IO heart of the shoal BitTorrent engine.
//!
//! This crate is deterministic and performs no IO: it opens no sockets, touches no files,
//! reads no clock and spawns no threads. Bytes, time and randomness come in as arguments;
//! actions go out as values the caller carries out. Everything that parses remote input
//! returns a typed error instead of panicking.
//!
//! Modules, one per protocol concern:
//!
//! - [`bencode`]: a small zero-copy bencode reader for hot paths and lenient parsing
//!   (encoding goes through `bendy`).
//! - [`metainfo`]: `.torrent` (v1) parsing, validation and the info-hash; [`create`] builds
//!   new torrents from file data fed in by the caller.
//! - [`magnet`]: magnet URI parsing and building.
//! - [`wire`]: the peer wire protocol codec (BEP 3, BEP 6, BEP 10 framing).

#![forbid(unsafe_code)]

pub mod bencode;
pub mod bitfield;
pub mod choker;
pub mod create;
pub mod engine;
pub mod magnet;
pub mod metainfo;
pub mod percent;
pub mod picker;
pub mod rate;
pub mod rng;
pub mod storage;
pub mod tracker;
mod types;
pub mod wire;

pub use types::{
    BlockRequest, InfoHash, IoError, ParseHexError, PeerId, PeerKey, PieceIndex, BLOCK_SIZE,
};
