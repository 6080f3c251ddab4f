//! The swarm table's storage: swarms and peers in slabs, found through keyed hash maps,
//! ordered by staleness through intrusive lists.
//!
//! - Every peer lives in one slab (`peers`) and is found by `(swarm, address)`. Within its
//!   swarm it also sits in a dense array, by role (seed or leecher) and address family,
//!   which is what makes picking random peers O(peers wanted) rather than O(swarm);
//!   removal is a swap-remove that fixes the moved peer's position. The arrays hold the
//!   addresses in their compact form (6 bytes for IPv4, 18 for IPv6), so an answer is
//!   made from a few cache lines of the swarm's own arrays rather than a cache miss per
//!   peer in the slab; each array has a parallel one of slots, read only to move entries
//!   and for peer ids.
//! - Each swarm keeps its peers in a doubly linked list, least recently seen first: a peer
//!   that announces moves to the end, so the expired peers of a swarm are always a prefix
//!   of it and the stalest peer is its head. Expiry and eviction never scan.
//! - Swarms are in the same kind of list, least recently announced to first: the sweep
//!   walks it from the head and stops at the first swarm with a live peer.
//! - Swarms with no peer are also in a second list, in the order they became empty. A new
//!   swarm in a full table evicts the head of that list if there is one, else the head of
//!   the first: announcing and stopping in a loop (which leaves empty swarms behind) then
//!   only ever evicts empty swarms, never one whose peers still use it.
//! - Peers are counted per host (an IPv4 address or an IPv6 /64), in the whole table and
//!   per swarm, so the server can cap what one host holds. The counts are kept where
//!   peers are added and removed, so they can never disagree with the table.
//!
//! Slots freed by removals are reused, so the slabs grow to the high-water mark of live
//! entries and no further; the server's caps bound that mark.

use core::net::{IpAddr, SocketAddr};
use std::collections::HashMap;
use std::time::Instant;

use super::hash::KeyedState;
use crate::rng::Rng;
use crate::tracker::udp::IpFamily;
use crate::tracker::ScrapeStats;
use crate::types::{host_of, InfoHash, PeerId};

/// "No slot": the end of a list, a free entry's swarm.
pub(super) const NIL: u32 = u32::MAX;

pub(super) type SwarmId = u32;
pub(super) type PeerSlot = u32;

#[derive(Clone, Debug)]
struct Peer {
    /// The swarm it belongs to; `NIL` when the slot is free.
    swarm: SwarmId,
    addr: SocketAddr,
    peer_id: PeerId,
    left: u64,
    last_seen: Instant,
    seed: bool,
    /// It sent `completed` already: counted once in its swarm's `downloaded`.
    completed: bool,
    /// Its index in its swarm's array of its role and family.
    pos: u32,
    prev: PeerSlot,
    next: PeerSlot,
}

/// A swarm's seeds or leechers: compact addresses by family, and their slots alongside.
#[derive(Debug, Default)]
struct Group {
    v4: Vec<[u8; 6]>,
    v4_slots: Vec<PeerSlot>,
    v6: Vec<[u8; 18]>,
    v6_slots: Vec<PeerSlot>,
}

impl Group {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Adds a peer; returns its position in its family's array.
    fn push(&mut self, addr: SocketAddr, slot: PeerSlot) -> u32 {
        match addr.ip() {
            IpAddr::V4(ip) => {
                self.v4.push(compact_v4(ip.octets(), addr.port()));
                self.v4_slots.push(slot);
                (self.v4.len() - 1) as u32
            }
            IpAddr::V6(ip) => {
                self.v6.push(compact_v6(ip.octets(), addr.port()));
                self.v6_slots.push(slot);
                (self.v6.len() - 1) as u32
            }
        }
    }

    /// Removes the entry at `pos` of the family of `v6`; returns the slot of the entry
    /// moved into its place, if any.
    fn swap_remove(&mut self, v6: bool, pos: usize) -> Option<PeerSlot> {
        if v6 {
            self.v6.swap_remove(pos);
            self.v6_slots.swap_remove(pos);
            self.v6_slots.get(pos).copied()
        } else {
            self.v4.swap_remove(pos);
            self.v4_slots.swap_remove(pos);
            self.v4_slots.get(pos).copied()
        }
    }

    #[cfg(test)]
    fn slot_at(&self, v6: bool, pos: usize) -> PeerSlot {
        if v6 {
            self.v6_slots[pos]
        } else {
            self.v4_slots[pos]
        }
    }
}

/// Takes one from `key`'s count, dropping the entry at zero (so the maps hold only hosts
/// that have peers: their size is bounded by the peers')
fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32, KeyedState>, key: K) {
    if let std::collections::hash_map::Entry::Occupied(mut e) = counts.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

fn compact_v4(ip: [u8; 4], port: u16) -> [u8; 6] {
    let p = port.to_be_bytes();
    [ip[0], ip[1], ip[2], ip[3], p[0], p[1]]
}

fn compact_v6(ip: [u8; 16], port: u16) -> [u8; 18] {
    let mut out = [0u8; 18];
    out[..16].copy_from_slice(&ip);
    out[16..].copy_from_slice(&port.to_be_bytes());
    out
}

/// One array of a sample's walk.
#[derive(Clone, Copy)]
enum Segment<'a> {
    V4(&'a [[u8; 6]], &'a [PeerSlot]),
    V6(&'a [[u8; 18]], &'a [PeerSlot]),
}

impl Segment<'_> {
    fn len(&self) -> usize {
        match self {
            Segment::V4(a, _) => a.len(),
            Segment::V6(a, _) => a.len(),
        }
    }
}

#[derive(Debug)]
struct Swarm {
    live: bool,
    info_hash: InfoHash,
    seeds: Group,
    leechers: Group,
    downloaded: u32,
    /// Its peers, least recently seen first.
    head: PeerSlot,
    tail: PeerSlot,
    last_active: Instant,
    /// Neighbours in the table's list of swarms, least recently announced to first.
    prev: SwarmId,
    next: SwarmId,
    /// In the list of empty swarms (it has no peer), and its neighbours there.
    empty: bool,
    empty_prev: SwarmId,
    empty_next: SwarmId,
}

impl Swarm {
    fn len(&self) -> usize {
        self.seeds.len() + self.leechers.len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct PeerKey {
    swarm: SwarmId,
    addr: SocketAddr,
}

/// What the table holds; the server decides what goes in and out.
#[derive(Debug)]
pub(super) struct Table {
    swarms: Vec<Swarm>,
    free_swarms: Vec<SwarmId>,
    swarm_index: HashMap<InfoHash, SwarmId, KeyedState>,
    peers: Vec<Peer>,
    free_peers: Vec<PeerSlot>,
    peer_index: HashMap<PeerKey, PeerSlot, KeyedState>,
    /// Swarms, least recently announced to first.
    head: SwarmId,
    tail: SwarmId,
    /// Swarms with no peer, in the order they became empty.
    empty_head: SwarmId,
    empty_tail: SwarmId,
    /// Peers per host, in the whole table; a host with none has no entry.
    per_host: HashMap<IpAddr, u32, KeyedState>,
    /// Peers per host in one swarm; likewise.
    per_host_in_swarm: HashMap<(SwarmId, IpAddr), u32, KeyedState>,
    live_swarms: usize,
    live_peers: usize,
}

impl Table {
    pub(super) fn new(hasher: KeyedState) -> Table {
        Table {
            swarms: Vec::new(),
            free_swarms: Vec::new(),
            swarm_index: HashMap::with_hasher(hasher),
            peers: Vec::new(),
            free_peers: Vec::new(),
            peer_index: HashMap::with_hasher(hasher),
            head: NIL,
            tail: NIL,
            empty_head: NIL,
            empty_tail: NIL,
            per_host: HashMap::with_hasher(hasher),
            per_host_in_swarm: HashMap::with_hasher(hasher),
            live_swarms: 0,
            live_peers: 0,
        }
    }

    pub(super) fn swarm_count(&self) -> usize {
        self.live_swarms
    }

    pub(super) fn peer_count(&self) -> usize {
        self.live_peers
    }

    /// Slots allocated (live or free): what the table's memory is proportional to.
    pub(super) fn capacity(&self) -> (usize, usize) {
        (self.swarms.len(), self.peers.len())
    }

    pub(super) fn find_swarm(&self, info_hash: &InfoHash) -> Option<SwarmId> {
        self.swarm_index.get(info_hash).copied()
    }

    pub(super) fn swarm_len(&self, s: SwarmId) -> usize {
        self.swarms[s as usize].len()
    }

    pub(super) fn info_hash(&self, s: SwarmId) -> InfoHash {
        self.swarms[s as usize].info_hash
    }

    pub(super) fn stats(&self, s: SwarmId) -> ScrapeStats {
        let swarm = &self.swarms[s as usize];
        ScrapeStats {
            complete: swarm.seeds.len() as u32,
            downloaded: swarm.downloaded,
            incomplete: swarm.leechers.len() as u32,
        }
    }

    /// The swarm announced to least recently, if any.
    pub(super) fn stalest_swarm(&self) -> Option<SwarmId> {
        (self.head != NIL).then_some(self.head)
    }

    /// The swarm to make room with: the one empty the longest, else the one announced to
    /// least recently.
    pub(super) fn evictable_swarm(&self) -> Option<SwarmId> {
        if self.empty_head != NIL {
            return Some(self.empty_head);
        }
        self.stalest_swarm()
    }

    /// Peers of `host` (see [`host_of`](crate::types::host_of)) in the whole table.
    pub(super) fn host_peers(&self, host: IpAddr) -> u32 {
        self.per_host.get(&host).copied().unwrap_or(0)
    }

    /// Peers of `host` in swarm `s`.
    pub(super) fn host_peers_in(&self, s: SwarmId, host: IpAddr) -> u32 {
        self.per_host_in_swarm.get(&(s, host)).copied().unwrap_or(0)
    }

    pub(super) fn last_active(&self, s: SwarmId) -> Instant {
        self.swarms[s as usize].last_active
    }

    /// Live swarms in slab order (stable for the same inputs), for a scrape of everything.
    pub(super) fn swarm_ids(&self) -> impl Iterator<Item = SwarmId> + '_ {
        self.swarms
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, _)| i as SwarmId)
    }

    /// A new, empty swarm, the most recently active. The caller has checked it is not there.
    pub(super) fn insert_swarm(&mut self, info_hash: InfoHash, now: Instant) -> SwarmId {
        let swarm = Swarm {
            live: true,
            info_hash,
            seeds: Group::default(),
            leechers: Group::default(),
            downloaded: 0,
            head: NIL,
            tail: NIL,
            last_active: now,
            prev: NIL,
            next: NIL,
            empty: false,
            empty_prev: NIL,
            empty_next: NIL,
        };
        let s = match self.free_swarms.pop() {
            Some(s) => {
                self.swarms[s as usize] = swarm;
                s
            }
            None => {
                self.swarms.push(swarm);
                (self.swarms.len() - 1) as SwarmId
            }
        };
        self.swarm_index.insert(info_hash, s);
        self.link_swarm_at_tail(s);
        self.link_empty(s);
        self.live_swarms += 1;
        s
    }

    /// Removes a swarm and every peer in it.
    pub(super) fn remove_swarm(&mut self, s: SwarmId) {
        while let Some(p) = self.stalest_peer(s) {
            self.remove_peer(p);
        }
        self.unlink_swarm(s);
        self.unlink_empty(s);
        let swarm = &mut self.swarms[s as usize];
        swarm.live = false;
        // Give the arrays' memory back: a big swarm's may not be needed again.
        swarm.seeds = Group::default();
        swarm.leechers = Group::default();
        let info_hash = swarm.info_hash;
        self.swarm_index.remove(&info_hash);
        self.free_swarms.push(s);
        self.live_swarms -= 1;
    }

    /// Marks a swarm announced to at `now`: it becomes the last to be evicted.
    pub(super) fn touch_swarm(&mut self, s: SwarmId, now: Instant) {
        self.swarms[s as usize].last_active = now;
        if self.tail != s {
            self.unlink_swarm(s);
            self.link_swarm_at_tail(s);
        }
    }

    pub(super) fn count_download(&mut self, s: SwarmId) {
        let swarm = &mut self.swarms[s as usize];
        swarm.downloaded = swarm.downloaded.saturating_add(1);
    }

    fn link_swarm_at_tail(&mut self, s: SwarmId) {
        let old_tail = self.tail;
        {
            let swarm = &mut self.swarms[s as usize];
            swarm.prev = old_tail;
            swarm.next = NIL;
        }
        if old_tail == NIL {
            self.head = s;
        } else {
            self.swarms[old_tail as usize].next = s;
        }
        self.tail = s;
    }

    /// Puts `s` (which has no peer) at the end of the list of empty swarms.
    fn link_empty(&mut self, s: SwarmId) {
        let old_tail = self.empty_tail;
        {
            let swarm = &mut self.swarms[s as usize];
            debug_assert!(!swarm.empty);
            swarm.empty = true;
            swarm.empty_prev = old_tail;
            swarm.empty_next = NIL;
        }
        if old_tail == NIL {
            self.empty_head = s;
        } else {
            self.swarms[old_tail as usize].empty_next = s;
        }
        self.empty_tail = s;
    }

    /// Takes `s` out of the list of empty swarms, if it is there.
    fn unlink_empty(&mut self, s: SwarmId) {
        let (prev, next) = {
            let swarm = &mut self.swarms[s as usize];
            if !swarm.empty {
                return;
            }
            swarm.empty = false;
            (swarm.empty_prev, swarm.empty_next)
        };
        if prev == NIL {
            self.empty_head = next;
        } else {
            self.swarms[prev as usize].empty_next = next;
        }
        if next == NIL {
            self.empty_tail = prev;
        } else {
            self.swarms[next as usize].empty_prev = prev;
        }
    }

    fn unlink_swarm(&mut self, s: SwarmId) {
        let (prev, next) = {
            let swarm = &self.swarms[s as usize];
            (swarm.prev, swarm.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.swarms[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.swarms[next as usize].prev = prev;
        }
    }

    // ---- peers ----

    pub(super) fn find_peer(&self, s: SwarmId, addr: SocketAddr) -> Option<PeerSlot> {
        self.peer_index.get(&PeerKey { swarm: s, addr }).copied()
    }

    /// The peer of `s` seen least recently.
    pub(super) fn stalest_peer(&self, s: SwarmId) -> Option<PeerSlot> {
        let head = self.swarms[s as usize].head;
        (head != NIL).then_some(head)
    }

    pub(super) fn last_seen(&self, p: PeerSlot) -> Instant {
        self.peers[p as usize].last_seen
    }

    pub(super) fn is_seed(&self, p: PeerSlot) -> bool {
        self.peers[p as usize].seed
    }

    /// Records `completed` for the peer; true the first time.
    pub(super) fn mark_completed(&mut self, p: PeerSlot) -> bool {
        let peer = &mut self.peers[p as usize];
        !std::mem::replace(&mut peer.completed, true)
    }

    /// A new peer in `s`, the most recently seen. The caller has checked it is not there.
    pub(super) fn insert_peer(
        &mut self,
        s: SwarmId,
        addr: SocketAddr,
        peer_id: PeerId,
        left: u64,
        now: Instant,
    ) -> PeerSlot {
        let seed = left == 0;
        let peer = Peer {
            swarm: s,
            addr,
            peer_id,
            left,
            last_seen: now,
            seed,
            completed: false,
            pos: 0,
            prev: NIL,
            next: NIL,
        };
        let p = match self.free_peers.pop() {
            Some(p) => {
                self.peers[p as usize] = peer;
                p
            }
            None => {
                self.peers.push(peer);
                (self.peers.len() - 1) as PeerSlot
            }
        };
        self.peer_index.insert(PeerKey { swarm: s, addr }, p);
        self.unlink_empty(s);
        self.push_dense(s, p, seed);
        self.link_peer_at_tail(s, p);
        let host = host_of(addr.ip());
        *self.per_host.entry(host).or_insert(0) += 1;
        *self.per_host_in_swarm.entry((s, host)).or_insert(0) += 1;
        self.live_peers += 1;
        p
    }

    /// A known peer announced again: new id and `left`, seen at `now`.
    pub(super) fn update_peer(&mut self, p: PeerSlot, peer_id: PeerId, left: u64, now: Instant) {
        let (s, was_seed) = {
            let peer = &mut self.peers[p as usize];
            peer.peer_id = peer_id;
            peer.left = left;
            peer.last_seen = now;
            (peer.swarm, peer.seed)
        };
        let seed = left == 0;
        if seed != was_seed {
            self.remove_dense(s, p);
            self.peers[p as usize].seed = seed;
            self.push_dense(s, p, seed);
        }
        if self.swarms[s as usize].tail != p {
            self.unlink_peer(s, p);
            self.link_peer_at_tail(s, p);
        }
    }

    pub(super) fn remove_peer(&mut self, p: PeerSlot) {
        let (s, addr) = {
            let peer = &self.peers[p as usize];
            (peer.swarm, peer.addr)
        };
        self.remove_dense(s, p);
        self.unlink_peer(s, p);
        self.peer_index.remove(&PeerKey { swarm: s, addr });
        self.peers[p as usize].swarm = NIL;
        self.free_peers.push(p);
        self.live_peers -= 1;
        let host = host_of(addr.ip());
        decrement(&mut self.per_host, host);
        decrement(&mut self.per_host_in_swarm, (s, host));
        if self.swarms[s as usize].len() == 0 {
            self.link_empty(s);
        }
    }

    fn push_dense(&mut self, s: SwarmId, p: PeerSlot, seed: bool) {
        let swarm = &mut self.swarms[s as usize];
        let group = if seed {
            &mut swarm.seeds
        } else {
            &mut swarm.leechers
        };
        let peer = &mut self.peers[p as usize];
        peer.pos = group.push(peer.addr, p);
    }

    fn remove_dense(&mut self, s: SwarmId, p: PeerSlot) {
        let (pos, seed, v6) = {
            let peer = &self.peers[p as usize];
            (peer.pos as usize, peer.seed, peer.addr.is_ipv6())
        };
        let swarm = &mut self.swarms[s as usize];
        let group = if seed {
            &mut swarm.seeds
        } else {
            &mut swarm.leechers
        };
        if let Some(moved) = group.swap_remove(v6, pos) {
            self.peers[moved as usize].pos = pos as u32;
        }
    }

    fn link_peer_at_tail(&mut self, s: SwarmId, p: PeerSlot) {
        let old_tail = self.swarms[s as usize].tail;
        {
            let peer = &mut self.peers[p as usize];
            peer.prev = old_tail;
            peer.next = NIL;
        }
        if old_tail == NIL {
            self.swarms[s as usize].head = p;
        } else {
            self.peers[old_tail as usize].next = p;
        }
        self.swarms[s as usize].tail = p;
    }

    fn unlink_peer(&mut self, s: SwarmId, p: PeerSlot) {
        let (prev, next) = {
            let peer = &self.peers[p as usize];
            (peer.prev, peer.next)
        };
        if prev == NIL {
            self.swarms[s as usize].head = next;
        } else {
            self.peers[prev as usize].next = next;
        }
        if next == NIL {
            self.swarms[s as usize].tail = prev;
        } else {
            self.peers[next as usize].prev = prev;
        }
    }

    /// Removes the peers of `s` last seen at or before `cutoff`; returns how many.
    pub(super) fn expire(&mut self, s: SwarmId, cutoff: Option<Instant>, budget: usize) -> usize {
        let Some(cutoff) = cutoff else { return 0 };
        let mut removed = 0;
        while removed < budget {
            match self.stalest_peer(s) {
                Some(p) if self.last_seen(p) <= cutoff => {
                    self.remove_peer(p);
                    removed += 1;
                }
                _ => break,
            }
        }
        removed
    }

    /// Appends up to `want` peers of `s` to `peers`, in a pseudo-random order drawn from
    /// `rng`: never `me`; only leechers if `leechers_only`; only addresses of `family` if
    /// given. With `ids`, their peer ids go to `ids` in the same order (which reads the
    /// slab).
    ///
    /// The order is a walk over the swarm's arrays (seeds then leechers, IPv4 then IPv6),
    /// seen as one of `n` entries: from a random start, by a random odd step, modulo the
    /// power of two `m` ≥ `n`, skipping indexes past `n`. An odd step is coprime to `m`, so
    /// the walk is a permutation: no peer comes twice, every one can come, and it costs
    /// O(peers returned + peers skipped) — fewer than `m` < 2`n` steps even when all are
    /// wanted — with no division.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sample(
        &self,
        s: SwarmId,
        me: SocketAddr,
        leechers_only: bool,
        family: Option<IpFamily>,
        want: usize,
        rng: &mut Rng,
        peers: &mut Vec<SocketAddr>,
        mut ids: Option<&mut Vec<PeerId>>,
    ) {
        let swarm = &self.swarms[s as usize];
        let mut segments: [Segment<'_>; 4] = [Segment::V4(&[], &[]); 4];
        let mut count = 0;
        let groups: &[&Group] = if leechers_only {
            &[&swarm.leechers]
        } else {
            &[&swarm.seeds, &swarm.leechers]
        };
        for group in groups {
            if family != Some(IpFamily::V6) && !group.v4.is_empty() {
                segments[count] = Segment::V4(&group.v4, &group.v4_slots);
                count += 1;
            }
            if family != Some(IpFamily::V4) && !group.v6.is_empty() {
                segments[count] = Segment::V6(&group.v6, &group.v6_slots);
                count += 1;
            }
        }
        let segments = &segments[..count];
        let n: usize = segments.iter().map(Segment::len).sum();
        if n == 0 || want == 0 {
            return;
        }
        let (me4, me6) = match me.ip() {
            IpAddr::V4(ip) => (Some(compact_v4(ip.octets(), me.port())), None),
            IpAddr::V6(ip) => (None, Some(compact_v6(ip.octets(), me.port()))),
        };
        let target = peers.len() + want.min(n);
        peers.reserve(want.min(n));
        let mask = n.next_power_of_two() - 1;
        let mut at = rng.next_u64() as usize & mask;
        let step = (rng.next_u64() as usize | 1) & mask;
        for _ in 0..=mask {
            if at >= n {
                at = (at + step) & mask;
                continue;
            }
            let mut i = at;
            let mut segment = segments[0];
            for seg in segments {
                segment = *seg;
                if i < seg.len() {
                    break;
                }
                i -= seg.len();
            }
            let slot = match segment {
                Segment::V4(addrs, slots) if Some(addrs[i]) != me4 => {
                    let a = addrs[i];
                    let ip = core::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]);
                    peers.push(SocketAddr::new(ip.into(), u16::from_be_bytes([a[4], a[5]])));
                    Some(slots[i])
                }
                Segment::V6(addrs, slots) if Some(addrs[i]) != me6 => {
                    let a = &addrs[i];
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(&a[..16]);
                    let ip = core::net::Ipv6Addr::from(octets);
                    peers.push(SocketAddr::new(
                        ip.into(),
                        u16::from_be_bytes([a[16], a[17]]),
                    ));
                    Some(slots[i])
                }
                _ => None,
            };
            if let (Some(slot), Some(ids)) = (slot, ids.as_deref_mut()) {
                ids.push(self.peers[slot as usize].peer_id);
            }
            if peers.len() >= target {
                return;
            }
            at = (at + step) & mask;
        }
    }

    /// Checks the table's invariants (tests only): indexes, lists and counts agree.
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut peers = 0;
        let mut swarms = 0;
        for (s, swarm) in self.swarms.iter().enumerate().filter(|(_, s)| s.live) {
            swarms += 1;
            assert_eq!(self.swarm_index.get(&swarm.info_hash), Some(&(s as u32)));
            let mut walked = 0;
            let mut p = swarm.head;
            let mut prev = NIL;
            let mut last = None;
            while p != NIL {
                let peer = &self.peers[p as usize];
                assert_eq!(peer.swarm, s as u32);
                assert_eq!(peer.prev, prev);
                if let Some(last) = last {
                    assert!(peer.last_seen >= last, "peer list out of order");
                }
                last = Some(peer.last_seen);
                let group = if peer.seed {
                    &swarm.seeds
                } else {
                    &swarm.leechers
                };
                assert_eq!(group.slot_at(peer.addr.is_ipv6(), peer.pos as usize), p);
                assert_eq!(peer.addr.ip(), peer.addr.ip().to_canonical());
                assert_eq!(peer.seed, peer.left == 0);
                assert_eq!(
                    self.peer_index.get(&PeerKey {
                        swarm: s as u32,
                        addr: peer.addr
                    }),
                    Some(&p)
                );
                walked += 1;
                prev = p;
                p = peer.next;
            }
            assert_eq!(swarm.tail, prev);
            assert_eq!(walked, swarm.len());
            peers += walked;
        }
        assert_eq!(peers, self.live_peers);
        assert_eq!(peers, self.peer_index.len());
        assert_eq!(swarms, self.live_swarms);
        assert_eq!(swarms, self.swarm_index.len());
        let mut s = self.head;
        let mut walked = 0;
        let mut last = None;
        while s != NIL {
            let swarm = &self.swarms[s as usize];
            assert!(swarm.live);
            if let Some(last) = last {
                assert!(swarm.last_active >= last, "swarm list out of order");
            }
            last = Some(swarm.last_active);
            walked += 1;
            s = swarm.next;
        }
        assert_eq!(walked, swarms);
        // The empty list holds exactly the live swarms with no peer, linked both ways.
        let mut s = self.empty_head;
        let mut prev = NIL;
        let mut empties = 0;
        while s != NIL {
            let swarm = &self.swarms[s as usize];
            assert!(swarm.live && swarm.empty && swarm.len() == 0);
            assert_eq!(swarm.empty_prev, prev);
            empties += 1;
            prev = s;
            s = swarm.empty_next;
        }
        assert_eq!(self.empty_tail, prev);
        let want_empty = self
            .swarms
            .iter()
            .filter(|s| s.live && s.len() == 0)
            .count();
        assert_eq!(empties, want_empty);
        // Host counts are the peers, counted again.
        let mut per_host: HashMap<IpAddr, u32> = HashMap::new();
        let mut per_host_in_swarm: HashMap<(SwarmId, IpAddr), u32> = HashMap::new();
        for peer in self.peers.iter().filter(|p| p.swarm != NIL) {
            let host = host_of(peer.addr.ip());
            *per_host.entry(host).or_default() += 1;
            *per_host_in_swarm.entry((peer.swarm, host)).or_default() += 1;
        }
        assert_eq!(per_host.len(), self.per_host.len());
        for (host, n) in per_host {
            assert_eq!(self.host_peers(host), n);
        }
        assert_eq!(per_host_in_swarm.len(), self.per_host_in_swarm.len());
        for ((s, host), n) in per_host_in_swarm {
            assert_eq!(self.host_peers_in(s, host), n);
        }
    }
}

/// The family of an address, IPv4-mapped IPv6 counting as IPv4.
pub(super) fn family_of(ip: IpAddr) -> IpFamily {
    match ip.to_canonical() {
        IpAddr::V4(_) => IpFamily::V4,
        IpAddr::V6(_) => IpFamily::V6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_steps_modulo_a_power_of_two_visit_everything_once() {
        let mut rng = Rng::new(5);
        for n in 1..200usize {
            let mask = n.next_power_of_two() - 1;
            let step = (rng.next_u64() as usize | 1) & mask;
            let mut at = rng.next_u64() as usize & mask;
            let mut seen = vec![false; mask + 1];
            for _ in 0..=mask {
                assert!(!seen[at]);
                seen[at] = true;
                at = (at + step) & mask;
            }
        }
    }
}
