//! Strikes and bans: who took part in pieces that failed their hash check.
//!
//! A piece that fails strikes every host that sent a block of it; one that passes takes a
//! strike back from each of its senders, so an honest host that happened to share a
//! piece with a liar now and then does not add up strikes over a long download, while
//! one whose data keeps failing reaches `EngineConfig::ban_strikes` and is banned from
//! the torrent: closed, never dialled, refused when it connects.
//!
//! A host is an IPv4 address, or an IPv6 /64 (the block one subscriber is given: a peer
//! that changes address within it is the same peer). An IPv4-mapped IPv6 address is its
//! IPv4 address.

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

/// The host `ip` belongs to, for strikes and bans.
pub(super) use crate::types::host_of as host;

/// One torrent's strikes and bans.
#[derive(Default)]
pub(super) struct Bans {
    /// Hosts with strikes outstanding (an entry goes when its count is back to zero).
    strikes: BTreeMap<IpAddr, u32>,
    banned: BTreeSet<IpAddr>,
}

impl Bans {
    /// Whether `ip`'s host is banned.
    pub(super) fn is_banned(&self, ip: IpAddr) -> bool {
        !self.banned.is_empty() && self.banned.contains(&host(ip))
    }

    /// A piece `ip` sent part of failed; returns its host if this banned it.
    pub(super) fn strike(&mut self, ip: IpAddr, limit: u32) -> Option<IpAddr> {
        let h = host(ip);
        let s = self.strikes.entry(h).or_default();
        *s += 1;
        (*s >= limit && self.banned.insert(h)).then_some(h)
    }

    /// A piece `ip` sent part of passed: one strike forgiven.
    pub(super) fn forgive(&mut self, ip: IpAddr) {
        if self.strikes.is_empty() {
            return;
        }
        let h = host(ip);
        if let Some(s) = self.strikes.get_mut(&h) {
            *s -= 1;
            if *s == 0 {
                self.strikes.remove(&h);
            }
        }
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
    fn strikes_ban_a_whole_64_and_good_pieces_take_them_back() {
        let mut b = Bans::default();
        assert_eq!(b.strike(ip("2001:db8::1"), 3), None);
        assert_eq!(b.strike(ip("2001:db8::2"), 3), None);
        b.forgive(ip("2001:db8::3"));
        assert_eq!(b.strike(ip("2001:db8::4"), 3), None);
        assert_eq!(
            b.strike(ip("2001:db8::5"), 3),
            Some(ip("2001:db8::")),
            "three strikes outstanding from one /64"
        );
        assert!(b.is_banned(ip("2001:db8::ffff")));
        assert!(!b.is_banned(ip("2001:db8:0:1::1")));
        // Forgiveness ends with the last strike: nothing is kept for a clean host.
        b.strike(ip("192.0.2.1"), 3);
        b.forgive(ip("192.0.2.1"));
        b.forgive(ip("192.0.2.1"));
        assert_eq!(b.strikes.len(), 1);
    }
}
