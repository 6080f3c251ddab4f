//! shoal-mio: shoal-core's engine driven by a mio event loop, and the `shoal` command.
//!
//! - [`runtime`]: the event loop (sockets, timers, the worker pool);
//! - [`worker`]: disk, hashing and name lookups off the loop;
//! - [`http`]: one HTTP(S) tracker exchange over a non-blocking socket.

pub mod client;
pub mod demo;
pub mod http;
pub mod runtime;
pub mod tracker;
pub mod worker;

pub use runtime::{Runtime, RuntimeConfig};
