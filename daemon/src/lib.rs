//! shoal-daemon: the helper application's state and control, without sockets.
//!
//! `shoal daemon` (in shoal-mio) runs many torrents on the mio runtime; everything here is
//! what it is told and what it answers, testable without a network:
//!
//! - [`control`]: the [`Control`](control::Control) trait, the one seam between request
//!   handling and the process that owns the engine, and what it shows of a torrent;
//! - [`http`]: HTTP/1.1 request framing and response bytes, with their bounds;
//! - [`guard`]: who may talk to the daemon (credentials, Host, Origin) and the
//!   session-id exchange every state change needs;
//! - [`api`]: the routes (the page, the RPC);
//! - [`rpc`]: the Transmission RPC protocol;
//! - [`page`]: the web page's assets, compiled in;
//! - [`state`]: the state folder (torrent list, settings, `.torrent` files, bound address);
//! - [`desktop`]: the freedesktop entry that makes clicked links reach the daemon;
//! - [`feed`]: the feeds a daemon follows and what it takes from them.

#![forbid(unsafe_code)]

pub mod api;
pub mod control;
pub mod desktop;
pub mod feed;
pub mod guard;
pub mod http;
pub mod page;
pub mod rpc;
pub mod state;
pub mod store;
