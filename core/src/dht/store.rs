//! The peers other nodes announced to us (`announce_peer`), served to `get_peers`.
//!
//! Bounded twice: at most [`StoreLimits::swarms`] info-hashes and
//! [`StoreLimits::peers_per_swarm`] peers in each. An announce for a new swarm when the
//! store is full is dropped (the swarms already held are not evicted by a flood of new
//! info-hashes); a new peer in a full swarm replaces the one whose announce is oldest.
//! Entries expire [`StoreLimits::ttl`] after their last announce; expired entries are removed
//! whenever their swarm is touched and by [`Store::expire`], which the node calls on a timer.
//! Ordered maps keep every answer independent of hashing seeds.

use core::net::SocketAddrV4;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rng::Rng;
use crate::InfoHash;

/// The store's bounds.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Most info-hashes held.
    pub swarms: usize,
    /// Most peers held per info-hash.
    pub peers_per_swarm: usize,
    /// How long an announce is kept.
    pub ttl: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            swarms: 2048,
            peers_per_swarm: 512,
            ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// The announced peers, by info-hash, with the instant each was last announced.
#[derive(Debug, Default)]
pub struct Store {
    limits: StoreLimits,
    swarms: BTreeMap<InfoHash, BTreeMap<SocketAddrV4, Instant>>,
}

impl Store {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Store {
        Store {
            limits,
            swarms: BTreeMap::new(),
        }
    }

    /// Records an announce. Returns false when it was dropped for lack of room.
    pub fn announce(&mut self, hash: InfoHash, peer: SocketAddrV4, now: Instant) -> bool {
        let ttl = self.limits.ttl;
        if !self.swarms.contains_key(&hash) {
            if self.swarms.len() >= self.limits.swarms {
                return false;
            }
            self.swarms.insert(hash, BTreeMap::new());
        }
        let Some(swarm) = self.swarms.get_mut(&hash) else {
            return false;
        };
        swarm.retain(|_, at| now.saturating_duration_since(*at) < ttl);
        if !swarm.contains_key(&peer) && swarm.len() >= self.limits.peers_per_swarm {
            let oldest = swarm
                .iter()
                .min_by_key(|(a, at)| (**at, **a))
                .map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                swarm.remove(&oldest);
            }
        }
        if self.limits.peers_per_swarm == 0 {
            return false;
        }
        swarm.insert(peer, now);
        true
    }

    /// Up to `max` live peers of `hash`, a random sample when there are more.
    pub fn peers(
        &self,
        hash: &InfoHash,
        max: usize,
        now: Instant,
        rng: &mut Rng,
    ) -> Vec<SocketAddrV4> {
        let Some(swarm) = self.swarms.get(hash) else {
            return Vec::new();
        };
        let mut live: Vec<SocketAddrV4> = swarm
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) < self.limits.ttl)
            .map(|(a, _)| *a)
            .collect();
        if live.len() > max {
            rng.shuffle(&mut live);
            live.truncate(max);
        }
        live
    }

    /// Removes expired peers and empty swarms.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.limits.ttl;
        self.swarms.retain(|_, swarm| {
            swarm.retain(|_, at| now.saturating_duration_since(*at) < ttl);
            !swarm.is_empty()
        });
    }

    /// How many info-hashes and peers are held.
    pub fn len(&self) -> (usize, usize) {
        (
            self.swarms.len(),
            self.swarms.values().map(BTreeMap::len).sum(),
        )
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.swarms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn peer(n: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 6881)
    }

    #[test]
    fn bounded_in_swarms_and_peers_and_expiring() {
        let t0 = shoal_test_clock::epoch();
        let limits = StoreLimits {
            swarms: 2,
            peers_per_swarm: 3,
            ttl: Duration::from_secs(60),
        };
        let mut store = Store::new(limits);
        let mut rng = Rng::new(1);
        let (a, b, c) = (InfoHash([1; 20]), InfoHash([2; 20]), InfoHash([3; 20]));
        assert!(store.announce(a, peer(1), t0));
        assert!(store.announce(b, peer(1), t0));
        assert!(
            !store.announce(c, peer(1), t0),
            "a third swarm does not fit"
        );
        for n in 2..=5 {
            assert!(store.announce(a, peer(n), t0 + Duration::from_secs(u64::from(n))));
        }
        let mut held = store.peers(&a, 10, t0 + Duration::from_secs(6), &mut rng);
        held.sort();
        assert_eq!(
            held,
            vec![peer(3), peer(4), peer(5)],
            "the oldest were replaced"
        );
        assert_eq!(store.peers(&a, 2, t0, &mut rng).len(), 2);
        let later = t0 + Duration::from_millis(63_500);
        assert_eq!(
            store.peers(&a, 10, later, &mut rng).len(),
            3 - 1,
            "peer 3 expired"
        );
        let end = t0 + Duration::from_secs(120);
        store.expire(end);
        assert!(store.is_empty());
        assert!(store.announce(c, peer(1), end), "room again after expiry");
    }
}
