//! shoal-mio: shoal-core's engine driven by a mio event loop, and the `shoal` command.
//!
//! - [`runtime`]: the event loop (sockets, timers, the worker pool);
//! - [`worker`]: disk, hashing and name lookups off the loop;
//! - [`http`]: one HTTP(S) tracker exchange over a non-blocking socket;
//! - [`magnet`]: magnet links, and waiting for their metadata from peers;
//! - [`say`]: lines for the user that never panic on a closed stream.

pub mod client;
pub mod demo;
pub mod http;
pub mod magnet;
pub mod runtime;
pub mod say;
pub mod tracker;
pub mod worker;

pub use runtime::{Runtime, RuntimeConfig};
