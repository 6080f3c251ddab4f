//! shoal-mio: shoal-core's engine driven by a mio event loop, and the `shoal` command.
//!
//! - [`runtime`]: the event loop (sockets, timers, the worker pool);
//! - [`worker`]: disk, hashing and name lookups off the loop;
//! - [`http`]: one HTTP(S) tracker exchange over a non-blocking socket;
//! - [`magnet`]: magnet links, and waiting for their metadata from peers;
//! - [`say`]: lines for the user that never panic on a closed stream;
//! - [`daemon`]: `shoal daemon`, many torrents driven over HTTP (page, Transmission RPC);
//! - [`remote`]: the commands that talk to a running daemon (`add`, `list`, …) and the
//!   link handler's installation.

pub mod client;
pub mod daemon;
pub mod demo;
pub mod http;
pub mod magnet;
pub mod remote;
pub mod runtime;
pub mod say;
pub mod serve;
pub mod tracker;
pub mod worker;

pub use runtime::{Runtime, RuntimeConfig};
