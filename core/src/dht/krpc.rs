//! KRPC, the DHT's message format (BEP 5): one bencoded dictionary per UDP datagram.
//!
//! Reading uses shoal's bounded bencode reader with limits sized for a datagram
//! ([`MAX_DATAGRAM`] bytes, [`LIMITS`] values), so a hostile packet costs a bounded amount of
//! memory and work and gets a [`DecodeError`], never a panic. A malformed *query* still
//! yields its transaction id when one could be read, so the node can answer with a KRPC
//! error (203) as BEP 5 asks. Writing is done by hand with the keys in sorted order, as
//! bencode requires; every message we write reads back the same (see the tests).
//!
//! IPv4 only (BEP 32 is not implemented): compact node entries are 26 bytes, compact peers
//! 6; IPv6 entries in `values` are skipped, a `nodes6` key is ignored.

use core::net::{Ipv4Addr, SocketAddrV4};

use smallvec::SmallVec;

use super::id::NodeId;
use crate::bencode::{self, put_bytes, put_int, Dict, Limits, Value};
use crate::InfoHash;

/// The largest datagram read. Real KRPC packets stay under the Ethernet MTU; anything
/// larger is refused before parsing.
pub const MAX_DATAGRAM: usize = 2048;

/// Bounds for reading one datagram: shallow, and few values (keys count as values).
pub const LIMITS: Limits = Limits {
    max_depth: 4,
    max_values: 512,
};

/// The longest transaction id echoed back. Ours are 2 bytes; others use up to ~8.
pub const MAX_TID: usize = 16;

/// The longest token accepted from a remote node (ours are 8 bytes).
pub const MAX_TOKEN: usize = 32;

/// A transaction id: opaque bytes chosen by the querier and echoed by the answer.
pub type Tid = SmallVec<[u8; 4]>;

/// A compact node entry: an id and where it listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Contact {
    /// The node's id.
    pub id: NodeId,
    /// Its UDP address.
    pub addr: SocketAddrV4,
}

/// One KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The transaction id.
    pub tid: Tid,
    /// What the message says.
    pub body: Body,
}

/// The three kinds of KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A query (`y` = `q`).
    Query {
        /// The querier's id.
        id: NodeId,
        /// The method and its arguments.
        query: Query,
        /// BEP 43: the querier does not answer queries; do not put it in routing tables.
        read_only: bool,
    },
    /// An answer (`y` = `r`).
    Response(Response),
    /// An error (`y` = `e`): a code and a message.
    Error {
        /// 201 generic, 202 server, 203 protocol, 204 method unknown.
        code: i64,
        /// Human-readable text, as sent.
        message: Vec<u8>,
    },
}

/// A query's method and arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `ping`.
    Ping,
    /// `find_node`: the nodes closest to `target`.
    FindNode {
        /// The id looked for.
        target: NodeId,
    },
    /// `get_peers`: peers of a torrent, or the nodes closest to it, and a token.
    GetPeers {
        /// The torrent.
        info_hash: InfoHash,
    },
    /// `announce_peer`: the querier downloads `info_hash` on `port` (or on the port the
    /// query came from, with `implied_port`).
    AnnouncePeer {
        /// The torrent.
        info_hash: InfoHash,
        /// The announced TCP port.
        port: u16,
        /// Use the UDP source port instead of `port` (BEP 5, for peers behind NAT).
        implied_port: bool,
        /// The token from our earlier `get_peers` answer.
        token: Vec<u8>,
    },
}

/// An answer's arguments: what any of the four methods may return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The answering node's id.
    pub id: NodeId,
    /// Closest nodes (`find_node`, `get_peers`).
    pub nodes: Vec<Contact>,
    /// Peers of the torrent (`get_peers`).
    pub values: Vec<SocketAddrV4>,
    /// The token to announce with (`get_peers`).
    pub token: Option<Vec<u8>>,
}

/// KRPC error codes.
pub mod code {
    /// A generic error.
    pub const GENERIC: i64 = 201;
    /// The server failed.
    pub const SERVER: i64 = 202;
    /// Malformed packet, invalid arguments or bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// Why a datagram is not a KRPC message we can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The transaction id, when the datagram was a dictionary with one.
    pub tid: Option<Tid>,
    /// Whether it claimed to be a query (so it deserves an error answer).
    pub query: bool,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

/// What is wrong with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Larger than [`MAX_DATAGRAM`].
    TooLarge,
    /// Not bencode within [`LIMITS`], or not a dictionary.
    NotBencode,
    /// A key missing or of the wrong type or length.
    BadField(&'static str),
    /// A query method we do not know (answered with error 204).
    UnknownMethod,
}

impl Message {
    /// Reads one datagram.
    pub fn decode(data: &[u8]) -> Result<Message, DecodeError> {
        let fail = |tid, query, kind| DecodeError { tid, query, kind };
        if data.len() > MAX_DATAGRAM {
            return Err(fail(None, false, DecodeErrorKind::TooLarge));
        }
        let value = bencode::decode_with(data, LIMITS)
            .map_err(|_| fail(None, false, DecodeErrorKind::NotBencode))?;
        let dict = value
            .as_dict()
            .ok_or(fail(None, false, DecodeErrorKind::NotBencode))?;
        let tid = match dict.get(b"t").and_then(Value::as_bytes) {
            Some(t) if t.len() <= MAX_TID => Tid::from_slice(t),
            _ => return Err(fail(None, false, DecodeErrorKind::BadField("t"))),
        };
        let kind = dict.get(b"y").and_then(Value::as_bytes);
        let body = match kind {
            Some(b"q") => decode_query(dict).map_err(|k| fail(Some(tid.clone()), true, k))?,
            Some(b"r") => Body::Response(
                decode_response(dict).map_err(|k| fail(Some(tid.clone()), false, k))?,
            ),
            Some(b"e") => decode_error(dict).map_err(|k| fail(Some(tid.clone()), false, k))?,
            _ => return Err(fail(Some(tid), false, DecodeErrorKind::BadField("y"))),
        };
        Ok(Message { tid, body })
    }

    /// Writes the message as one datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(b'd');
        match &self.body {
            Body::Query {
                id,
                query,
                read_only,
            } => {
                put_bytes(&mut out, b"a");
                out.push(b'd');
                put_bytes(&mut out, b"id");
                put_bytes(&mut out, &id.0);
                let method: &[u8] = match query {
                    Query::Ping => b"ping",
                    Query::FindNode { target } => {
                        put_bytes(&mut out, b"target");
                        put_bytes(&mut out, &target.0);
                        b"find_node"
                    }
                    Query::GetPeers { info_hash } => {
                        put_bytes(&mut out, b"info_hash");
                        put_bytes(&mut out, &info_hash.0);
                        b"get_peers"
                    }
                    Query::AnnouncePeer {
                        info_hash,
                        port,
                        implied_port,
                        token,
                    } => {
                        put_bytes(&mut out, b"implied_port");
                        put_int(&mut out, u64::from(*implied_port));
                        put_bytes(&mut out, b"info_hash");
                        put_bytes(&mut out, &info_hash.0);
                        put_bytes(&mut out, b"port");
                        put_int(&mut out, u64::from(*port));
                        put_bytes(&mut out, b"token");
                        put_bytes(&mut out, token);
                        b"announce_peer"
                    }
                };
                out.push(b'e');
                put_bytes(&mut out, b"q");
                put_bytes(&mut out, method);
                if *read_only {
                    put_bytes(&mut out, b"ro");
                    put_int(&mut out, 1);
                }
                put_tail(&mut out, &self.tid, b"q");
            }
            Body::Response(r) => {
                put_bytes(&mut out, b"r");
                out.push(b'd');
                put_bytes(&mut out, b"id");
                put_bytes(&mut out, &r.id.0);
                if !r.nodes.is_empty() {
                    put_bytes(&mut out, b"nodes");
                    put_bytes(&mut out, &compact_nodes(&r.nodes));
                }
                if let Some(token) = &r.token {
                    put_bytes(&mut out, b"token");
                    put_bytes(&mut out, token);
                }
                if !r.values.is_empty() {
                    put_bytes(&mut out, b"values");
                    out.push(b'l');
                    for peer in &r.values {
                        put_bytes(&mut out, &compact_addr(peer));
                    }
                    out.push(b'e');
                }
                out.push(b'e');
                put_tail(&mut out, &self.tid, b"r");
            }
            Body::Error { code, message } => {
                put_bytes(&mut out, b"e");
                out.push(b'l');
                out.push(b'i');
                out.extend_from_slice(code.to_string().as_bytes());
                out.push(b'e');
                put_bytes(&mut out, message);
                out.push(b'e');
                put_tail(&mut out, &self.tid, b"e");
            }
        }
        out
    }

    /// An error answer to the query with transaction id `tid`.
    pub fn error(tid: Tid, code: i64, message: &str) -> Message {
        Message {
            tid,
            body: Body::Error {
                code,
                message: message.as_bytes().to_vec(),
            },
        }
    }
}

/// `t` and `y`, the keys after `a`/`e`/`q`/`r` in sorted order, and the closing `e`.
fn put_tail(out: &mut Vec<u8>, tid: &[u8], kind: &[u8]) {
    put_bytes(out, b"t");
    put_bytes(out, tid);
    put_bytes(out, b"y");
    put_bytes(out, kind);
    out.push(b'e');
}

fn id_field(dict: &Dict<'_>, key: &'static str) -> Result<NodeId, DecodeErrorKind> {
    match dict.get(key.as_bytes()).and_then(Value::as_bytes) {
        Some(b) if b.len() == 20 => {
            let mut id = [0u8; 20];
            id.copy_from_slice(b);
            Ok(NodeId(id))
        }
        _ => Err(DecodeErrorKind::BadField(key)),
    }
}

fn decode_query(dict: &Dict<'_>) -> Result<Body, DecodeErrorKind> {
    let args = dict
        .get(b"a")
        .and_then(Value::as_dict)
        .ok_or(DecodeErrorKind::BadField("a"))?;
    let id = id_field(args, "id")?;
    let method = dict
        .get(b"q")
        .and_then(Value::as_bytes)
        .ok_or(DecodeErrorKind::BadField("q"))?;
    let query = match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: id_field(args, "target")?,
        },
        b"get_peers" => Query::GetPeers {
            info_hash: InfoHash(id_field(args, "info_hash")?.0),
        },
        b"announce_peer" => {
            let implied_port = args.get(b"implied_port").and_then(Value::as_int) == Some(1);
            let port = args.get(b"port").and_then(Value::as_int);
            let port = match (implied_port, port.map(u16::try_from)) {
                (_, Some(Ok(p))) if p != 0 => p,
                // With implied_port the port argument is ignored and may be anything.
                (true, _) => 0,
                _ => return Err(DecodeErrorKind::BadField("port")),
            };
            let token = match args.get(b"token").and_then(Value::as_bytes) {
                Some(t) if t.len() <= MAX_TOKEN => t.to_vec(),
                _ => return Err(DecodeErrorKind::BadField("token")),
            };
            Query::AnnouncePeer {
                info_hash: InfoHash(id_field(args, "info_hash")?.0),
                port,
                implied_port,
                token,
            }
        }
        _ => return Err(DecodeErrorKind::UnknownMethod),
    };
    let read_only = dict.get(b"ro").and_then(Value::as_int) == Some(1);
    Ok(Body::Query {
        id,
        query,
        read_only,
    })
}

fn decode_response(dict: &Dict<'_>) -> Result<Response, DecodeErrorKind> {
    let r = dict
        .get(b"r")
        .and_then(Value::as_dict)
        .ok_or(DecodeErrorKind::BadField("r"))?;
    let id = id_field(r, "id")?;
    let nodes = match r.get(b"nodes") {
        None => Vec::new(),
        Some(v) => match v.as_bytes() {
            Some(b) if b.len() % 26 == 0 => b.chunks_exact(26).map(read_contact).collect(),
            _ => return Err(DecodeErrorKind::BadField("nodes")),
        },
    };
    let values = match r.get(b"values") {
        None => Vec::new(),
        Some(v) => v
            .as_list()
            .ok_or(DecodeErrorKind::BadField("values"))?
            .iter()
            .filter_map(Value::as_bytes)
            .filter(|b| b.len() == 6)
            .map(read_addr)
            .collect(),
    };
    let token = match r.get(b"token") {
        None => None,
        Some(v) => match v.as_bytes() {
            Some(t) if t.len() <= MAX_TOKEN => Some(t.to_vec()),
            _ => return Err(DecodeErrorKind::BadField("token")),
        },
    };
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

fn decode_error(dict: &Dict<'_>) -> Result<Body, DecodeErrorKind> {
    let list = dict
        .get(b"e")
        .and_then(Value::as_list)
        .ok_or(DecodeErrorKind::BadField("e"))?;
    let code = list
        .first()
        .and_then(Value::as_int)
        .unwrap_or(code::GENERIC);
    let message = list
        .get(1)
        .and_then(Value::as_bytes)
        .unwrap_or_default()
        .to_vec();
    Ok(Body::Error { code, message })
}

/// Reads a 6-byte compact address (caller checks the length).
fn read_addr(b: &[u8]) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(b[0], b[1], b[2], b[3]),
        u16::from_be_bytes([b[4], b[5]]),
    )
}

/// Reads a 26-byte compact node entry (caller checks the length).
fn read_contact(b: &[u8]) -> Contact {
    let mut id = [0u8; 20];
    id.copy_from_slice(&b[..20]);
    Contact {
        id: NodeId(id),
        addr: read_addr(&b[20..26]),
    }
}

/// A 6-byte compact address.
pub fn compact_addr(addr: &SocketAddrV4) -> [u8; 6] {
    let ip = addr.ip().octets();
    let port = addr.port().to_be_bytes();
    [ip[0], ip[1], ip[2], ip[3], port[0], port[1]]
}

/// Compact node entries, 26 bytes each: the `nodes` value, and the routing table's saved
/// form.
pub fn compact_nodes(nodes: &[Contact]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * 26);
    for node in nodes {
        out.extend_from_slice(&node.id.0);
        out.extend_from_slice(&compact_addr(&node.addr));
    }
    out
}

/// Reads compact node entries; a trailing partial entry is ignored.
pub fn read_compact_nodes(data: &[u8]) -> Vec<Contact> {
    data.chunks_exact(26).map(read_contact).collect()
}

#[cfg(test)]
mod tests;
