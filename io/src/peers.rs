//! Peer addresses given as text (a magnet link's `x.pe=`): `ip:port` as they are,
//! `host:port` resolved with the system's resolver (blocking: call it off any event loop
//! that must not wait, or before it starts).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Each of `peers` as an address: `ip:port` (IPv6 in brackets) directly, `host:port` by
/// its first resolved address. One that is neither, or does not resolve, goes to
/// `skipped` with why, and is left out.
pub fn resolve_peers(
    peers: &[String],
    mut skipped: impl FnMut(&str, io::Error),
) -> Vec<SocketAddr> {
    let mut out = Vec::with_capacity(peers.len());
    for peer in peers {
        if let Ok(addr) = peer.parse::<SocketAddr>() {
            out.push(addr);
            continue;
        }
        match peer.as_str().to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => out.push(addr),
            Ok(None) => skipped(peer, io::Error::new(io::ErrorKind::NotFound, "no address")),
            Err(e) => skipped(peer, e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_they_are_and_host_names_resolved() {
        let mut skipped = Vec::new();
        let got = resolve_peers(
            &[
                "10.0.0.1:6881".into(),
                "[::1]:7000".into(),
                "localhost:6882".into(),
                "no port".into(),
            ],
            |p, _| skipped.push(p.to_string()),
        );
        assert_eq!(got[0], "10.0.0.1:6881".parse().unwrap());
        assert_eq!(got[1], "[::1]:7000".parse().unwrap());
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[2].ip().is_loopback() && got[2].port() == 6882,
            "{got:?}"
        );
        assert_eq!(skipped, ["no port"]);
    }
}
