//! A Mainline DHT node (BEP 5), sans-IO: datagrams and timer ticks in, datagrams and
//! events out.
//!
//! [`Node`] follows the engine's contract: [`Node::handle`] takes every fact from outside
//! (a datagram received, a timer firing) with the current instant, [`Node::poll_output`]
//! yields what to send and what happened, [`Node::poll_timeout`] says when to call again.
//! After every call to `handle` (and to [`Node::get_peers`] / [`Node::announce`]), drain
//! `poll_output` until it returns `None`, then wait until `poll_timeout` or the next
//! datagram. Randomness comes from the seed in [`Config`]; announce tokens from the secret
//! key in it, which the caller draws from the OS. Same config and same inputs give the same
//! outputs, byte for byte.
//!
//! The parts, one concern each:
//! - [`id`]: 160-bit ids and the XOR metric;
//! - [`krpc`]: the message codec (bounded reader, sorted writer);
//! - [`table`]: the routing table (k-buckets with splitting, node health, replacement cache);
//! - [`lookup`]: one iterative lookup (α parallel requests towards the k closest);
//! - [`tokens`]: announce tokens from a rotating secret;
//! - [`store`]: the peers announced to us, bounded and expiring;
//! - [`secure`]: BEP 42 node ids tied to addresses;
//! - [`node`]: the composition: answering queries, bootstrap, bucket refresh, lookups and
//!   announces, per-source rate limits, request timeouts.
//!
//! IPv4 only for now (no BEP 32). BEP 42: our id can be made from our external address
//! ([`Config::external_ip`]), and the routing table can refuse nodes whose id does not
//! match theirs ([`Config::enforce_node_ids`], off by default as in libtorrent).
//!
//! # In the engine and the runtimes
//!
//! The engine runs one node once a runtime calls `Engine::start_dht` (see the engine's
//! `dht` module): on the engine's UDP socket with the UDP trackers (BEP 15), told apart by
//! the first byte (every KRPC message is a bencoded dictionary, so it starts with `d`;
//! every UDP tracker answer starts with a big-endian action number 0–3, so with 0); each
//! torrent that is not private announces itself ([`Node::announce`]) and its peers come
//! from [`Event::Peers`] like a tracker's. [`LookupError::Busy`](node::LookupError) means:
//! try again at the next tick. The runtimes draw [`Config::token_key`] and [`Config::seed`]
//! from the OS, save [`Node::id`] and [`Node::export_table`] on exit and give them back as
//! [`Config::id`] and [`Config::saved_nodes`] ([`krpc::read_compact_nodes`]), and resolve
//! the bootstrap routers' names in the background ([`Node::add_bootstrap`]).
//!
//! libtorrent on loopback (interop tests) needs `dht_restrict_routing_ips` and
//! `dht_restrict_search_ips` off, a literal listen address and a raised
//! `dht_block_ratelimit` (see issue 23). This node accepts loopback and private addresses;
//! its per-source limit ([`RateLimit`]) is 250 queries per 10 s.

pub mod id;
pub mod krpc;
pub mod lookup;
pub mod node;
pub mod secure;
pub mod store;
pub mod table;
pub mod tokens;

pub use id::{Distance, NodeId};
pub use krpc::Contact;
pub use lookup::{LookupId, LookupKind, LookupStats};
pub use node::{Config, Event, Input, LookupDone, Node, NodeStats, Output, RateLimit};
