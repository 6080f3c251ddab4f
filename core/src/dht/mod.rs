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
//! - [`node`]: the composition: answering queries, bootstrap, bucket refresh, lookups and
//!   announces, per-source rate limits, request timeouts.
//!
//! IPv4 only for now (no BEP 32), and no BEP 42 id rules yet.

pub mod id;
pub mod krpc;
pub mod lookup;
pub mod node;
pub mod store;
pub mod table;
pub mod tokens;

pub use id::{Distance, NodeId};
pub use krpc::Contact;
pub use lookup::{LookupId, LookupKind, LookupStats};
pub use node::{Config, Event, Input, LookupDone, Node, NodeStats, Output, RateLimit};
