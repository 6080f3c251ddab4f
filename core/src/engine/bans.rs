//! Bans: hosts that sent data proven wrong (see `blame` for what counts as proof) are
//! banned from the torrent: closed, never dialled, refused when they connect.
//!
//! A host is an IPv4 address, or an IPv6 /64 (the block one subscriber is given: a peer
//! that changes address within it is the same peer). An IPv4-mapped IPv6 address is its
//! IPv4 address.

use core::net::IpAddr;
use std::collections::BTreeSet;

/// The host `ip` belongs to, for bans.
pub(super) use crate::types::host_of as host;

/// One torrent's banned hosts.
#[derive(Default)]
pub(super) struct Bans {
    banned: BTreeSet<IpAddr>,
}

impl Bans {
    /// Whether `ip`'s host is banned.
    pub(super) fn is_banned(&self, ip: IpAddr) -> bool {
        !self.banned.is_empty() && self.banned.contains(&host(ip))
    }

    /// `ip` sent data proven wrong: its host is banned. Returns the host if this banned
    /// it (it was not already).
    pub(super) fn ban(&mut self, ip: IpAddr) -> Option<IpAddr> {
        let h = host(ip);
        self.banned.insert(h).then_some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_v6_host_is_its_64_and_a_mapped_v4_its_v4() {
        assert_eq!(host(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(host(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(host(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn a_ban_covers_a_whole_64_once() {
        let mut b = Bans::default();
        assert_eq!(b.ban(ip("2001:db8::5")), Some(ip("2001:db8::")));
        assert_eq!(b.ban(ip("2001:db8::6")), None, "already banned");
        assert!(b.is_banned(ip("2001:db8::ffff")));
        assert!(!b.is_banned(ip("2001:db8:0:1::1")));
        assert!(!b.is_banned(ip("192.0.2.1")));
    }
}
