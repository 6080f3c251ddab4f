//! shoal-sim: a deterministic discrete-event simulator of BitTorrent swarms running real
//! shoal engines.
//!
//! Each simulated node is a [`shoal_core::engine::Engine`], the same state machine the
//! runtimes drive: real peer wire protocol, picker, choker and tracker client. The
//! simulator is their runtime. It runs thousands of them in one thread on virtual time.
//!
//! - **Events** ([`sched`]): one time-ordered queue; ties are broken by the order events
//!   were scheduled, so a run is a pure function of its scenario. Every engine call gets
//!   the virtual `now` (a fixed base `Instant` plus virtual nanoseconds). Each engine's
//!   `poll_timeout` is an event; a node keeps one timer that counts, older ones are
//!   recognised as stale when they come out. Time goes in windows as long as the shortest
//!   link latency: nothing a node does reaches another sooner, so within a window each
//!   node's events run together, in its own time order, one node after another (the
//!   `swarm` module's `window`): a node's state is loaded into the cache once per window.
//! - **Network** ([`net`]): a flow-level model. Each node has an uplink and a downlink
//!   capacity, shared equally among its active flows (a flow's rate is the smaller of its
//!   sender's and its receiver's share), recomputed for the sender's flows when a flow
//!   starts or stops, and for the receiver's flows at the end of the window. Links have
//!   latency (per-node access latency plus per-pair jitter), and may fail to open, reset
//!   during their life, or not be answered at all (nodes behind a NAT). Engines' own
//!   connection limits apply. Small protocol messages on an idle connection skip the flow
//!   machinery (they arrive after latency plus serialisation); `Input::Sent` is reported
//!   to an engine only when its count of unsent bytes nears its `send_buffer`, the one
//!   thing it uses that count for.
//! - **Payloads** ([`swarm`]): blocks are slices of one static zero-filled buffer, passed as
//!   `Bytes` without copies; disk reads, writes and piece hashes are answered at once by
//!   the simulator, inside the same drain of the engine's outputs (no event, no disk).
//!   `Input::Received` takes a `BytesMut` the engine may keep, so a block arrives as two
//!   reads: the small messages and the piece header (copied, a few bytes), then the data in
//!   a block-sized buffer of zeros from a pool, which the engine takes without copying
//!   ([`Decoder::decode_across`](shoal_core::wire::Decoder::decode_across)) and which comes
//!   back to the pool with the block's write. A corrupt node's blocks come from another static buffer, which the
//!   receiver's write recognises: the piece then fails its hash check, and the engine's
//!   bans run as they would. Small swarms can use real content and real SHA-1
//!   instead (`real_data`).
//! - **Tracker** ([`tracker`]): engines announce over HTTP as they would to a real tracker;
//!   the request bytes go to a [`tracker::Tracker`] and the answer bytes come back a round
//!   trip later.
//! - **Web server** ([`web`]): a scenario may give the torrent a web seed (BEP 19) served
//!   by a web server node with its own uplink, shared among the ranges it is asked for;
//!   it answers the engines' real HTTP requests with core's server-side answer.
//!   `shoal-sim-server-load` measures what it sends against the number of downloaders.
//! - **Scenarios** ([`scenario`]): TOML files or Rust values: groups of nodes with
//!   bandwidth classes, arrivals (at once, flash crowd, Poisson), departures (after a
//!   while, after seeding for a while), NAT, free riders, corrupt peers.
//! - **Results** ([`report`], [`plot`]): per-node completion times, bytes and share ratios,
//!   how long the last pieces took, piece availability and its entropy over time, the
//!   Kumar–Ross bound; JSON, CSV and SVG plots. A trace hash over every event and every
//!   engine output tells whether two runs were the same.
//!
//! # Free riders
//!
//! A free rider here speaks the protocol fully (it even unchokes, as the choker's
//! optimistic slot always does) but the block data it is asked for never leaves: the
//! simulator drops the `piece` messages it sends. Its peers' requests stall until their
//! engines' request timeout marks it snubbed. This is chosen over a zero uplink, which
//! would also hold back its protocol messages (a zero-rate TCP connection delivers
//! nothing), and over an engine setting, because the engine has none that never
//! unchokes: the optimistic slot comes on top of the regular ones.
//!
//! ```no_run
//! use shoal_sim::{Scenario, Sim};
//! let sc = Scenario::flash_crowd(100, 16 << 20, 256 << 10, 4e6, 1e6, 8e6);
//! let report = Sim::new(sc).unwrap().run();
//! println!("{}", report.text_summary());
//! ```

pub mod dht;
pub mod hostile;
pub mod net;
pub mod plot;
mod prefetch;
pub mod report;
pub mod scenario;
pub mod sched;
pub mod swarm;
pub mod thp;
pub mod trace;
pub mod tracker;
pub mod web;

pub use report::Report;
pub use scenario::Scenario;
pub use swarm::Sim;
