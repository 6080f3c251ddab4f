//! One iterative lookup (Kademlia, as BEP 5 uses it): ask the nodes closest to a target
//! for nodes closer still, until the `k` closest known have all answered.
//!
//! The lookup keeps its candidates sorted by distance to the target, at most
//! [`MAX_CANDIDATES`] of them. It keeps up to α requests in flight, always to the closest
//! candidates not yet asked among the `k` closest that have not failed, so it narrows in on
//! the target and stops as soon as those `k` have all answered. Requests that time out
//! mark their candidate failed, which lets the next one into the window. Bootstrap
//! addresses enter with no known id: they sort first (distance zero) until they answer
//! with their real id.
//!
//! The lookup does no IO and keeps no clock: the node sends what [`Lookup::next`] returns,
//! and reports answers and timeouts back.

use core::net::SocketAddrV4;
use std::collections::BTreeSet;
use std::time::Instant;

use super::id::{Distance, NodeId};
use super::krpc::Contact;
use crate::InfoHash;

/// The most candidates a lookup remembers (the closest are kept).
pub const MAX_CANDIDATES: usize = 128;

/// The most distinct peers a `get_peers` lookup collects.
pub const MAX_PEERS: usize = 1024;

/// A lookup's handle, unique within one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupId(pub u64);

/// What a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// `find_node`: the nodes closest to an id (bootstrap, bucket refresh).
    FindNode,
    /// `get_peers`: peers of a torrent.
    GetPeers(InfoHash),
    /// `get_peers`, then `announce_peer` to the closest nodes that gave a token.
    Announce {
        /// The torrent.
        info_hash: InfoHash,
        /// The TCP port we listen on.
        port: u16,
        /// Ask them to use the port our datagrams come from instead (BEP 5 `implied_port`).
        implied_port: bool,
    },
}

/// What a lookup cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Queries sent.
    pub queries: u32,
    /// Answers received.
    pub answers: u32,
    /// Queries that timed out or got an error before the lookup ended.
    pub failures: u32,
    /// Queries that went unanswered for the stall timeout (answered late, failed, or
    /// still pending when the lookup ended).
    pub stalls: u32,
    /// Hops: the longest chain of referrals that led to one of the final closest nodes
    /// (a node from the starting set is hop 1).
    pub hops: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    Asked,
    /// Asked, and slow to answer: no longer counted in flight (an answer still counts).
    Stalled,
    Answered,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    contact: Contact,
    /// Zero until a bootstrap address tells its id.
    distance: Distance,
    known_id: bool,
    state: State,
    token: Option<Vec<u8>>,
    hop: u32,
}

/// One lookup in progress.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The id looked for.
    pub target: NodeId,
    /// What for.
    pub kind: LookupKind,
    /// When it started.
    pub started: Instant,
    /// What it cost so far.
    pub stats: LookupStats,
    k: usize,
    alpha: usize,
    in_flight: usize,
    candidates: Vec<Candidate>,
    /// Every address ever taken as a candidate, so one dropped from the list for being
    /// far is not asked again when someone mentions it later.
    seen: BTreeSet<SocketAddrV4>,
    peers: BTreeSet<SocketAddrV4>,
}

impl Lookup {
    /// A lookup for `target`, starting from known nodes and from addresses of unknown id.
    pub fn new(
        target: NodeId,
        kind: LookupKind,
        start: &[Contact],
        bootstrap: &[SocketAddrV4],
        k: usize,
        alpha: usize,
        now: Instant,
    ) -> Lookup {
        let mut lookup = Lookup {
            target,
            kind,
            started: now,
            stats: LookupStats::default(),
            k: k.max(1),
            alpha: alpha.max(1),
            in_flight: 0,
            candidates: Vec::new(),
            seen: BTreeSet::new(),
            peers: BTreeSet::new(),
        };
        for addr in bootstrap {
            if lookup.seen.insert(*addr) {
                lookup.candidates.push(Candidate {
                    contact: Contact {
                        id: target,
                        addr: *addr,
                    },
                    distance: Distance::default(),
                    known_id: false,
                    state: State::Fresh,
                    token: None,
                    hop: 1,
                });
            }
        }
        lookup.add(start, 1, None);
        lookup
    }

    /// Adds referred nodes at hop `hop`, skipping `own` and addresses already seen.
    fn add(&mut self, contacts: &[Contact], hop: u32, own: Option<&NodeId>) {
        for c in contacts {
            if Some(&c.id) == own || c.addr.port() == 0 || c.addr.ip().is_unspecified() {
                continue;
            }
            let distance = c.id.distance(&self.target);
            if self.candidates.len() >= MAX_CANDIDATES
                && self
                    .candidates
                    .last()
                    .is_some_and(|l| l.distance <= distance)
            {
                continue;
            }
            if !self.seen.insert(c.addr) {
                continue;
            }
            let at = self.candidates.partition_point(|x| x.distance <= distance);
            self.candidates.insert(
                at,
                Candidate {
                    contact: *c,
                    distance,
                    known_id: true,
                    state: State::Fresh,
                    token: None,
                    hop,
                },
            );
            self.candidates.truncate(MAX_CANDIDATES);
        }
    }

    /// The next nodes to query, at most `room`, marked as asked: their address and their
    /// id when known (not for bootstrap addresses).
    pub fn next(&mut self, room: usize) -> Vec<(SocketAddrV4, Option<NodeId>)> {
        let mut out = Vec::new();
        let mut window = 0;
        for c in &mut self.candidates {
            if window >= self.k || self.in_flight >= self.alpha || out.len() >= room {
                break;
            }
            match c.state {
                State::Failed | State::Stalled => continue,
                State::Fresh => {
                    c.state = State::Asked;
                    self.in_flight += 1;
                    self.stats.queries += 1;
                    out.push((c.contact.addr, c.known_id.then_some(c.contact.id)));
                }
                State::Asked | State::Answered => {}
            }
            window += 1;
        }
        out
    }

    /// An answer from `addr`: its id, the nodes it knows closer to the target, the peers
    /// it holds and its token. `own` is our id, never a candidate. `stalled` when the
    /// request was reported [`Lookup::stalled`] before.
    #[allow(clippy::too_many_arguments)]
    pub fn answered(
        &mut self,
        addr: SocketAddrV4,
        stalled: bool,
        id: NodeId,
        nodes: &[Contact],
        peers: &[SocketAddrV4],
        token: Option<Vec<u8>>,
        own: &NodeId,
    ) -> Vec<SocketAddrV4> {
        if !stalled {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.stats.answers += 1;
        let mut hop = 1;
        if let Some(pos) = self.candidates.iter().position(|c| c.contact.addr == addr) {
            let mut c = self.candidates.remove(pos);
            hop = c.hop;
            c.state = State::Answered;
            c.token = token;
            if !c.known_id || c.contact.id != id {
                c.contact.id = id;
                c.known_id = true;
            }
            c.distance = id.distance(&self.target);
            if id != *own {
                let at = self
                    .candidates
                    .partition_point(|x| x.distance <= c.distance);
                self.candidates.insert(at, c);
            }
        }
        self.add(nodes, hop + 1, Some(own));
        let mut fresh = Vec::new();
        for p in peers {
            if self.peers.len() >= MAX_PEERS {
                break;
            }
            if p.port() != 0 && self.peers.insert(*p) {
                fresh.push(*p);
            }
        }
        fresh
    }

    /// The query to `addr` has gone unanswered for a while: it stops counting against α,
    /// so one slow or silent node does not hold the lookup back (libtorrent's "short
    /// timeout"); its answer is still taken if it comes.
    pub fn stalled(&mut self, addr: SocketAddrV4) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.stats.stalls += 1;
        if let Some(c) = self.candidates.iter_mut().find(|c| c.contact.addr == addr) {
            if c.state == State::Asked {
                c.state = State::Stalled;
            }
        }
    }

    /// The query to `addr` timed out or was answered with an error (`stalled` as for
    /// [`Lookup::answered`]).
    pub fn failed(&mut self, addr: SocketAddrV4, stalled: bool) {
        if !stalled {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.stats.failures += 1;
        if let Some(c) = self.candidates.iter_mut().find(|c| c.contact.addr == addr) {
            c.state = State::Failed;
        }
    }

    /// Done when the `k` closest live candidates have all answered, or when nothing is in
    /// flight and no one is left to ask. Stalled requests count as failed here (a dead
    /// node would hold every lookup for the full timeout) but an answer that comes before
    /// the end is still taken.
    pub fn is_done(&self) -> bool {
        let mut window = 0;
        let mut all_answered = true;
        let mut fresh = false;
        for c in self
            .candidates
            .iter()
            .filter(|c| !matches!(c.state, State::Failed | State::Stalled))
        {
            if window >= self.k {
                break;
            }
            window += 1;
            match c.state {
                State::Answered => {}
                State::Fresh => {
                    fresh = true;
                    all_answered = false;
                }
                _ => all_answered = false,
            }
        }
        (window == self.k && all_answered) || (self.in_flight == 0 && !fresh)
    }

    /// The `k` closest nodes that answered, nearest first, with the token each gave.
    pub fn closest(&self) -> Vec<(Contact, Option<&[u8]>)> {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Answered && c.known_id)
            .take(self.k)
            .map(|c| (c.contact, c.token.as_deref()))
            .collect()
    }

    /// Fills in the hop count of the result.
    pub fn finish(&mut self) {
        self.stats.hops = self
            .candidates
            .iter()
            .filter(|c| c.state == State::Answered)
            .take(self.k)
            .map(|c| c.hop)
            .max()
            .unwrap_or(0);
    }

    /// Distinct peers found so far.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use core::net::Ipv4Addr;

    #[test]
    fn narrows_to_the_k_closest_with_alpha_in_flight() {
        // A static world of 500 nodes where everyone knows everyone: each answer gives the
        // 8 nodes closest to the target among a few random ones, and the lookup must end
        // with the true 8 closest.
        let now = shoal_test_clock::epoch();
        let mut rng = Rng::new(5);
        let world: Vec<Contact> = (0..500u32)
            .map(|n| Contact {
                id: NodeId::random(&mut rng),
                addr: SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 1),
            })
            .collect();
        let own = NodeId::random(&mut rng);
        let target = NodeId::random(&mut rng);
        let mut sorted = world.clone();
        sorted.sort_by_key(|c| c.id.distance(&target));
        let mut lookup = Lookup::new(target, LookupKind::FindNode, &world[..3], &[], 8, 3, now);
        let mut rounds = 0;
        while !lookup.is_done() {
            rounds += 1;
            assert!(rounds < 200, "a lookup ends");
            let asked = lookup.next(usize::MAX);
            assert!(asked.len() <= 3 && !asked.is_empty());
            for (addr, id) in asked {
                let c = Contact {
                    addr,
                    id: id.expect("no bootstrap address here"),
                };
                // Each node knows the nodes sharing a longer prefix with the target than
                // itself, as a converged table would.
                let cpl = c.id.common_prefix(&target);
                let mut known: Vec<Contact> = world
                    .iter()
                    .filter(|w| w.id.common_prefix(&target) > cpl)
                    .copied()
                    .collect();
                known.sort_by_key(|w| w.id.distance(&target));
                known.truncate(8);
                if known.len() < 8 {
                    known = sorted[..8].to_vec();
                }
                lookup.answered(c.addr, false, c.id, &known, &[], None, &own);
            }
        }
        let found: Vec<Contact> = lookup.closest().into_iter().map(|(c, _)| c).collect();
        assert_eq!(found, sorted[..8].to_vec());
        lookup.finish();
        assert!(lookup.stats.hops >= 2);
    }

    #[test]
    fn failures_let_the_next_candidates_in_and_the_lookup_still_ends() {
        let now = shoal_test_clock::epoch();
        let mut rng = Rng::new(6);
        let start: Vec<Contact> = (0..20u32)
            .map(|n| Contact {
                id: NodeId::random(&mut rng),
                addr: SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 1),
            })
            .collect();
        let target = NodeId::random(&mut rng);
        let mut lookup = Lookup::new(target, LookupKind::FindNode, &start, &[], 8, 3, now);
        let mut asked = 0;
        while !lookup.is_done() {
            for (addr, _) in lookup.next(usize::MAX) {
                asked += 1;
                lookup.failed(addr, false);
            }
        }
        assert_eq!(asked, 20, "every candidate tried once");
        assert!(lookup.closest().is_empty());
    }
}
