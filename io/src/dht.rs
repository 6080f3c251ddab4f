//! What both runtimes need to run the engine's DHT node (BEP 5): its settings from the
//! OS's randomness, the bootstrap addresses (given, from `SHOAL_DHT_BOOTSTRAP`, or the
//! well-known routers), and the routing table saved between runs.
//!
//! The saved state is one small file, `dht.state` in the state folder the caller names
//! (`DIR/.shoal/` for `shoal download`, the daemon's state folder): our 20-byte node id,
//! then the table's nodes in compact form (26 bytes each: id, IPv4, port). It is written
//! to a temporary file and renamed over the old one, so a crash leaves one or the other.
//! Reading it is bounded ([`MAX_SAVED_NODES`]); a file that does not fit the format is
//! ignored (the node starts afresh from the bootstrap addresses), never trusted in part.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::path::{Path, PathBuf};

use shoal_core::dht::krpc::read_compact_nodes;
use shoal_core::dht::{Config, Contact, NodeId};

/// The routers a node bootstraps from when given none: the ones libtorrent, Transmission
/// and µTorrent use.
pub const DEFAULT_ROUTERS: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];

/// When set, the bootstrap addresses used instead of [`DEFAULT_ROUTERS`] where no
/// `--dht-bootstrap` is given: `HOST:PORT` separated by commas or spaces; empty for none
/// (the node then only answers, and learns the nodes that reach it). Test harnesses set it
/// so that nothing leaves the machine.
pub const BOOTSTRAP_ENV: &str = "SHOAL_DHT_BOOTSTRAP";

/// The most nodes read back from a saved table (a full table holds far fewer).
pub const MAX_SAVED_NODES: usize = 2048;

const STATE_FILE: &str = "dht.state";

/// The bootstrap addresses to use: `given` (from the command line) if any, else those of
/// [`BOOTSTRAP_ENV`] if it is set, else [`DEFAULT_ROUTERS`].
pub fn bootstrap_list(given: &[String]) -> Vec<String> {
    if !given.is_empty() {
        return given.to_vec();
    }
    match std::env::var(BOOTSTRAP_ENV) {
        Ok(list) => list
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Err(_) => DEFAULT_ROUTERS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Splits `list` into the addresses that are literal `IP:PORT` (usable at once) and the
/// host names to resolve (on a worker: a lookup may take seconds, or fail offline).
pub fn split_literal(list: &[String]) -> (Vec<SocketAddrV4>, Vec<String>) {
    let mut literal = Vec::new();
    let mut names = Vec::new();
    for s in list {
        match s.parse::<SocketAddr>() {
            Ok(SocketAddr::V4(a)) => literal.push(a),
            // No IPv6 DHT yet (BEP 32): such an address is of no use.
            Ok(SocketAddr::V6(_)) => {}
            Err(_) => names.push(s.clone()),
        }
    }
    (literal, names)
}

/// Resolves `HOST:PORT` to its IPv4 addresses (blocking).
pub fn resolve(host_port: &str) -> io::Result<Vec<SocketAddrV4>> {
    let addrs: Vec<SocketAddrV4> = host_port
        .to_socket_addrs()?
        .filter_map(|a| match a {
            SocketAddr::V4(a) => Some(a),
            SocketAddr::V6(_) => None,
        })
        .take(8)
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host_port}: no IPv4 address"),
        ));
    }
    Ok(addrs)
}

/// The state file in `folder`.
pub fn state_path(folder: &Path) -> PathBuf {
    folder.join(STATE_FILE)
}

/// A node's settings: secrets from the OS, the saved id and table from `folder` if there
/// are any, and the literal `bootstrap` addresses (names come later, through
/// `Engine::add_dht_node`).
pub fn config(folder: Option<&Path>, bootstrap: Vec<SocketAddrV4>) -> Config {
    let (id, saved_nodes) = folder.map(load).unwrap_or_default();
    let mut token_key = [0u8; 20];
    for chunk in token_key.chunks_mut(8) {
        let r = crate::random_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    Config {
        id,
        seed: crate::random_u64(),
        token_key,
        bootstrap,
        saved_nodes,
        ..Config::default()
    }
}

/// The saved id and nodes in `folder`, or nothing if there is no usable file.
pub fn load(folder: &Path) -> (Option<NodeId>, Vec<Contact>) {
    let path = state_path(folder);
    let limit = 20 + 26 * MAX_SAVED_NODES as u64;
    let bytes = match std::fs::metadata(&path) {
        Ok(m) if m.len() <= limit => std::fs::read(&path).unwrap_or_default(),
        _ => return (None, Vec::new()),
    };
    parse(&bytes).unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Option<(Option<NodeId>, Vec<Contact>)> {
    if bytes.len() < 20 || !(bytes.len() - 20).is_multiple_of(26) {
        return None;
    }
    let id: [u8; 20] = bytes[..20].try_into().ok()?;
    let nodes = read_compact_nodes(&bytes[20..]);
    Some((Some(NodeId(id)), nodes))
}

/// Saves our `id` and the table (`nodes`, compact form) in `folder` (made if missing).
pub fn save(folder: &Path, id: NodeId, nodes: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(folder)?;
    let path = state_path(folder);
    let tmp = folder.join(format!("{STATE_FILE}.tmp"));
    let mut bytes = Vec::with_capacity(20 + nodes.len());
    bytes.extend_from_slice(&id.0);
    bytes.extend_from_slice(nodes);
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_table_comes_back_and_bad_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), (None, Vec::new()));
        let contact = Contact {
            id: NodeId([7; 20]),
            addr: "10.1.2.3:6881".parse().unwrap(),
        };
        let compact = shoal_core::dht::krpc::compact_nodes(&[contact]);
        save(dir.path(), NodeId([9; 20]), &compact).unwrap();
        assert_eq!(load(dir.path()), (Some(NodeId([9; 20])), vec![contact]));
        // Cut short, or too long to be ours: ignored whole.
        std::fs::write(state_path(dir.path()), [1u8; 33]).unwrap();
        assert_eq!(load(dir.path()), (None, Vec::new()));
        std::fs::write(
            state_path(dir.path()),
            vec![0u8; 20 + 26 * (MAX_SAVED_NODES + 1)],
        )
        .unwrap();
        assert_eq!(load(dir.path()), (None, Vec::new()));
    }

    #[test]
    fn literal_addresses_are_used_at_once_and_names_resolved_later() {
        let list: Vec<String> = ["127.0.0.1:6881", "router.example:6881", "[::1]:5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (literal, names) = split_literal(&list);
        assert_eq!(literal, vec!["127.0.0.1:6881".parse().unwrap()]);
        assert_eq!(names, vec!["router.example:6881".to_string()]);
        assert_eq!(bootstrap_list(&list[..1]), list[..1].to_vec());
    }
}
