//! shoal-async-std: shoal-core's engine driven by async tasks, and a [`Session`] to embed
//! it in an application.
//!
//! # Design
//!
//! One task owns the [`Engine`](shoal_core::engine::Engine) and is the only one that
//! touches it. Everything else is a small task that turns one socket or one job into
//! messages for it: a reader and a writer per peer connection (the writer reports
//! `Input::Sent` as bytes leave, so the engine's own send budget is the backpressure), an
//! outbound connect, the listener, the UDP socket for tracker datagrams, one task per HTTP(S)
//! tracker exchange; disk IO and SHA-1 run on the `blocking` crate's thread pool. The
//! engine's task waits for the first of: a command from a [`Session`] handle, a message from
//! those tasks, the engine's timeout; it hands it to the engine and carries out every output
//! until there is none (the core's rule). There is no protocol logic here: the engine
//! builds tracker requests and parses answers; the file IO is `shoal-io`'s, the same as the
//! mio runtime uses.
//!
//! # Which executor
//!
//! Sockets and timers come from `async-io` (`Async<TcpStream>`, `Timer`), futures from
//! `futures-lite`, channels from `async-channel`, blocking work from `blocking`: the crates
//! that async-std and smol are both built on. The crate asks an executor for nothing but
//! `spawn` (see [`Executor`]), so a session runs under async-std
//! ([`Executor::async_std`]) or under smol (`Executor::new(|t| smol::spawn(t).detach())`)
//! alike; the end-to-end tests run under both. See the README for why that matters now that
//! async-std is discontinued.
//!
//! # Modules
//!
//! - [`session`]: the public API: [`Session`], [`Event`], [`TorrentKey`], options;
//! - `driver`: the engine's task;
//! - `net`: the socket tasks; `http`: one HTTP(S) tracker exchange;
//! - `disk`: the disk and hashing jobs on the blocking pool.

mod disk;
mod driver;
mod executor;
mod http;
mod net;
pub mod session;

pub use executor::{Executor, Task};
pub use net::MAX_READ_PER_WAKEUP;
pub use session::{
    AddOptions, DhtSettings, Error, Event, SeedLimit, Session, SessionConfig, State, Stats,
    TorrentKey, TorrentSource,
};
/// The engine's types that appear in this crate's API.
pub use shoal_core::engine::{CloseReason, EngineConfig, RateLimits, TorrentStats};
