//! Choking: which interested peers of one torrent we upload to.
//!
//! A [`Choker`] is a pure decision module. At each rechoke the engine hands it every peer of
//! the torrent as a [`PeerInfo`] (interest, snubbing, rates, whether we unchoke it now) and
//! gets back a [`Decision`]: the peers to unchoke and to choke. It keeps what the rates
//! cannot tell it: who holds which slot since when, which peer is the optimistic one, and
//! when each choked peer last had a turn. It reads no clock (time is an argument) and
//! draws randomness from its own [`Rng`] seeded by the caller, so the same seed and the same
//! calls give the same decisions.
//!
//! # Slots
//!
//! There are `unchoke_slots` regular slots and one optimistic slot. Only interested peers
//! are unchoked: a peer that loses interest keeps its unchoke until the next rechoke (of
//! either kind, below) and is choked then, freeing its slot. So right after every rechoke,
//! at most `unchoke_slots + 1` peers are unchoked, all of them interested.
//!
//! **Leeching**, regular slots go to the interested, non-snubbed peers that give us the
//! most (`download_rate`): tit for tat. Equal rates keep the current holder (no churn for
//! nothing); remaining ties are broken by the seeded generator. A snubbed peer never holds
//! a regular slot, but may be the optimistic one.
//!
//! **Seeding**, nobody gives us anything, so slots are shared out in turns (snubbing, a
//! measure of what a peer sends us, does not apply). The rule, applied at each scheduled
//! rechoke to the interested peers:
//!
//! 1. a holder whose turn (time in its regular slot) is shorter than `seed_turn` keeps it;
//! 2. free slots go to the waiting peers (interested, no regular slot), the one that has
//!    waited longest first: waiting since its last unchoke ended, regular or optimistic,
//!    or since it connected if we never unchoked it; ties by upload rate, then at random;
//! 3. slots still free go back to holders whose turn is over, fastest `upload_rate` first,
//!    so when no one waits the fastest transfers go on; their turn stays over, so each
//!    leaves as soon as someone waits, and the slowest of them leave first.
//!
//! So in a stable swarm of `n` interested peers each one holds a regular slot within about
//! `ceil(n / unchoke_slots) + 1` turns (the extra turn because a peer just served by the
//! optimistic slot queues behind those never served); a test checks this bound.
//!
//! **Optimistic unchoke**: one peer chosen at random among the interested peers without a
//! regular slot (snubbed ones included), a peer connected less than `new_peer_window` ago
//! weighing `new_peer_weight` times as much as the others, because a new peer has nothing
//! to offer yet and this is how it gets its first pieces. It keeps the slot until the
//! first scheduled rechoke at or after `optimistic_interval` from its choice, even if its
//! rate would earn it a regular slot; at that rotation it competes for regular slots like
//! everyone else, and a different peer is chosen where there is one.
//!
//! # When to call
//!
//! [`Choker::poll_timeout`] says when the next scheduled rechoke is due; calling
//! [`Choker::rechoke`] at or after it re-ranks every slot and moves the schedule on by
//! `rechoke_interval`. The engine may also call it early, when a peer leaves, loses or gains
//! interest, or becomes snubbed: such a call only drops holders that no longer qualify and
//! fills free slots (a free optimistic slot too, the newcomer getting a full
//! `optimistic_interval`). It neither re-ranks the holders nor moves the schedule, so calling
//! it on every interest change cannot cause churn. For any call the engine may use
//! [`Choker::refill`] instead and describe only the interested peers and the holders
//! ([`Choker::holders`]): the others cannot gain or lose a slot, so the decision is the
//! same. The choker then keeps what it knows of the peers left out, and must be told of
//! each peer that leaves ([`Choker::forget`]).
//!
//! Peers are told apart by [`PeerKey`] and `connected_at` together: the engine reuses keys,
//! and a new connection under an old key starts afresh.

use std::time::{Duration, Instant};

use crate::rng::Rng;
use crate::PeerKey;

/// Tuning of a [`Choker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Regular slots; one optimistic slot comes on top.
    pub unchoke_slots: usize,
    /// Time between scheduled rechokes.
    pub rechoke_interval: Duration,
    /// How long an optimistic unchoke lasts (rounded up to a scheduled rechoke).
    pub optimistic_interval: Duration,
    /// Peers connected more recently than this count as new for the optimistic draw.
    pub new_peer_window: Duration,
    /// How many times a new peer's chance of the optimistic slot is an old peer's.
    pub new_peer_weight: u32,
    /// Seeding: how long a peer holds a regular slot before it yields to one that waits.
    pub seed_turn: Duration,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        ChokerConfig {
            unchoke_slots: 4,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            new_peer_window: Duration::from_secs(60),
            new_peer_weight: 3,
            seed_turn: Duration::from_secs(30),
        }
    }
}

/// What the choker needs to know of one peer at a rechoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub key: PeerKey,
    /// The peer is interested in our pieces.
    pub interested: bool,
    /// The peer has sent us nothing for a while although we asked.
    pub snubbed: bool,
    /// Bytes per second the peer gives us.
    pub download_rate: u64,
    /// Bytes per second we give the peer.
    pub upload_rate: u64,
    /// When its connection was made: new peers are likelier to get the optimistic slot
    /// ([`ChokerConfig::new_peer_weight`]), and waiting is counted from it.
    pub connected_at: Instant,
    /// We unchoke the peer now.
    pub unchoked: bool,
}

/// The changes a rechoke asks for, each list in key order. A key never appears in both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Peers to unchoke (they are choked now).
    pub unchoke: Vec<PeerKey>,
    /// Peers to choke (they are unchoked now).
    pub choke: Vec<PeerKey>,
}

impl Decision {
    /// Whether the decision changes nothing.
    pub fn is_empty(&self) -> bool {
        self.unchoke.is_empty() && self.choke.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Choked,
    Regular { since: Instant },
    Optimistic,
}

/// A peer competing for a regular slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ranked {
    /// Lower is better: (class, then up to three tie-breakers, the last one random).
    rank: (u8, u64, u64, u64),
    key: PeerKey,
    holder: bool,
}

/// The `n` best-ranked of `ranked` (all of them if fewer), in no particular order: a
/// selection, not a sort (the caller wants the set). `Ranked` is totally ordered (the key
/// decides what the rank does not), so the set is the one a sort would give.
fn best(ranked: &mut [Ranked], n: usize) -> &[Ranked] {
    if n == 0 {
        return &[];
    }
    if n < ranked.len() {
        ranked.select_nth_unstable(n - 1);
    }
    &ranked[..n.min(ranked.len())]
}

/// The choker's memory of one connection.
#[derive(Clone, Copy, Debug)]
struct Track {
    connected_at: Instant,
    role: Role,
    /// When its last unchoke ended, or when it connected; read only while it is choked.
    waiting_since: Instant,
}

/// Tit-for-tat unchoking for one torrent. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct Choker {
    config: ChokerConfig,
    rng: Rng,
    next_rechoke: Instant,
    /// The optimistic slot rotates at the first scheduled rechoke at or after this.
    next_optimistic: Instant,
    /// One track per peer of the last call, in key order: after `sync`, entry `i` is the
    /// track of the `i`-th peer of the sorted list the call was given.
    peers: Vec<(PeerKey, Track)>,
    /// The peers holding a slot after the last call: key, `connected_at`, optimistic.
    held: Vec<(PeerKey, Instant, bool)>,
    /// Buffers kept between calls (an early rechoke may come with every interest change).
    scratch: Scratch,
}

/// Reused allocations of [`Choker::rechoke`].
#[derive(Clone, Debug, Default)]
struct Scratch {
    sorted: Vec<PeerInfo>,
    old: Vec<(PeerKey, Track)>,
    /// `refill`: the tracks of the peers it was not given.
    rest: Vec<(PeerKey, Track)>,
    ranked: Vec<Ranked>,
    chosen: Vec<PeerKey>,
    candidates: Vec<(usize, u64)>,
}

/// `now + d`, saturating instead of panicking for absurd durations.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(1 << 32)))
        .unwrap_or(now)
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Choker {
    /// A choker whose first rechoke is due at `now`; `seed` drives every random choice.
    pub fn new(config: ChokerConfig, seed: u64, now: Instant) -> Choker {
        Choker {
            config,
            rng: Rng::new(seed),
            next_rechoke: now,
            next_optimistic: now,
            peers: Vec::new(),
            held: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// The settings the choker was made with.
    pub fn config(&self) -> &ChokerConfig {
        &self.config
    }

    /// When the next scheduled rechoke is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_rechoke
    }

    /// When every slot, regular and optimistic, has a holder (as of the last call): the
    /// holders, as (key, `connected_at`, in the optimistic slot). An early call then
    /// changes nothing as long as each of them is still there and still qualifies
    /// (interested; for a regular slot while leeching, not snubbed) and no scheduled
    /// rechoke is due, so a caller may check these few peers and skip the call instead of
    /// describing every peer to it. (A skipped call draws no random tie-breaks: the random
    /// stream, and so the run, differs from calling, equally valid.)
    pub fn full_holders(&self) -> Option<&[(PeerKey, Instant, bool)]> {
        (self.held.len() == self.config.unchoke_slots + 1).then_some(&self.held[..])
    }

    /// The peers holding a slot (key, `connected_at`, in the optimistic slot), as of the
    /// last call, less those forgotten since.
    pub fn holders(&self) -> &[(PeerKey, Instant, bool)] {
        &self.held
    }

    /// Forgets a peer that left (its slot, if it held one, is free for the next call). A
    /// caller that uses [`Choker::refill`] must forget every peer that leaves; for
    /// [`Choker::rechoke`] leaving a peer out does the same.
    pub fn forget(&mut self, key: PeerKey) {
        if let Ok(at) = self.peers.binary_search_by_key(&key, |&(k, _)| k) {
            self.peers.remove(at);
        }
        self.held.retain(|h| h.0 != key);
    }

    /// The peer in the optimistic slot, as of the last rechoke.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.peers
            .iter()
            .find(|(_, t)| t.role == Role::Optimistic)
            .map(|&(k, _)| k)
    }

    /// Decides who is unchoked, given every peer of the torrent (peers left out are
    /// forgotten; a repeated key counts once, at its first appearance). A full rechoke if
    /// one is due, else only the refill described in the module docs.
    pub fn rechoke(&mut self, now: Instant, seeding: bool, peers: &[PeerInfo]) -> Decision {
        let sorted = self.sorted_unique(peers);
        let decision = self.rechoke_sorted(now, seeding, &sorted);
        self.scratch.sorted = sorted;
        decision
    }

    /// [`Choker::rechoke`] given only some of the peers: at least every interested one
    /// and every holder ([`Choker::holders`]). The peers left out keep what the choker
    /// remembers of them, so peers that left must have been [`forget`](Choker::forget)-ten.
    /// Only those peers can gain or lose a slot, early or scheduled: an uninterested peer
    /// that holds no slot is never unchoked, draws no tie-break, and keeps its track
    /// (waiting time) unchanged. So the decision and the random draws are those of
    /// `rechoke` given every peer — for a caller that keeps a list of the interested
    /// peers, without describing all of them.
    pub fn refill(&mut self, now: Instant, seeding: bool, peers: &[PeerInfo]) -> Decision {
        let sorted = self.sorted_unique(peers);
        // Set the tracks of the peers not given aside; the call sees only the others.
        let mut rest = std::mem::take(&mut self.scratch.rest);
        rest.clear();
        self.peers.retain(|&(k, t)| {
            let given = sorted.binary_search_by_key(&k, |p| p.key).is_ok();
            if !given {
                rest.push((k, t));
            }
            given
        });
        let decision = self.rechoke_sorted(now, seeding, &sorted);
        if !rest.is_empty() {
            // Both in key order: merge them back.
            let mut merged = std::mem::take(&mut self.scratch.old);
            merged.clear();
            let (mut a, mut b) = (self.peers.iter().peekable(), rest.iter().peekable());
            while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
                if x.0 < y.0 {
                    merged.push(*a.next().unwrap());
                } else {
                    merged.push(*b.next().unwrap());
                }
            }
            merged.extend(a.chain(b));
            std::mem::swap(&mut merged, &mut self.peers);
            self.scratch.old = merged;
            // Normally none of them holds a slot (holders must be given); if one does,
            // it still counts.
            if rest.iter().any(|(_, t)| t.role != Role::Choked) {
                self.collect_held();
            }
        }
        self.scratch.rest = rest;
        self.scratch.sorted = sorted;
        decision
    }

    /// `peers` in key order, each key once (the first given), in the scratch list (the
    /// caller puts it back).
    fn sorted_unique(&mut self, peers: &[PeerInfo]) -> Vec<PeerInfo> {
        let mut sorted = std::mem::take(&mut self.scratch.sorted);
        sorted.clear();
        sorted.extend_from_slice(peers);
        // Stable: of repeated keys, the first one given stays.
        sorted.sort_by_key(|p| p.key);
        sorted.dedup_by_key(|p| p.key);
        sorted
    }

    fn collect_held(&mut self) {
        self.held.clear();
        self.held.extend(
            self.peers
                .iter()
                .filter(|(_, t)| t.role != Role::Choked)
                .map(|(k, t)| (*k, t.connected_at, t.role == Role::Optimistic)),
        );
    }

    fn rechoke_sorted(&mut self, now: Instant, seeding: bool, peers: &[PeerInfo]) -> Decision {
        self.sync(peers);

        let full = now >= self.next_rechoke;
        if full {
            self.next_rechoke = later(now, self.config.rechoke_interval);
        }
        let rotate = full && now >= self.next_optimistic;

        // Unchokes that end now, whatever the ranking below says.
        let mut outgoing_optimistic = None;
        for (p, (_, t)) in peers.iter().zip(self.peers.iter_mut()) {
            let keep = match t.role {
                Role::Choked => true,
                Role::Regular { .. } => p.interested && (seeding || !p.snubbed),
                Role::Optimistic => {
                    if rotate && p.interested {
                        outgoing_optimistic = Some(p.key);
                    }
                    p.interested && !rotate
                }
            };
            if !keep {
                t.role = Role::Choked;
                t.waiting_since = now;
            }
        }

        self.fill_regular(now, seeding, full, peers);
        self.fill_optimistic(now, peers, outgoing_optimistic);

        self.collect_held();
        let mut decision = Decision::default();
        for (p, (_, t)) in peers.iter().zip(&self.peers) {
            let target = t.role != Role::Choked;
            if target && !p.unchoked {
                decision.unchoke.push(p.key);
            } else if !target && p.unchoked {
                decision.choke.push(p.key);
            }
        }
        decision
    }

    /// Keeps a track for exactly the peers given (sorted by key, no repeats), fresh for a
    /// key whose connection is new: a merge of two sorted lists.
    fn sync(&mut self, peers: &[PeerInfo]) {
        let mut old = std::mem::take(&mut self.scratch.old);
        std::mem::swap(&mut old, &mut self.peers);
        self.peers.clear();
        let mut j = 0;
        for p in peers {
            while old.get(j).is_some_and(|(k, _)| *k < p.key) {
                j += 1;
            }
            let track = match old.get(j) {
                Some(&(k, t)) if k == p.key && t.connected_at == p.connected_at => t,
                _ => Track {
                    connected_at: p.connected_at,
                    role: Role::Choked,
                    waiting_since: p.connected_at,
                },
            };
            self.peers.push((p.key, track));
        }
        old.clear();
        self.scratch.old = old;
    }

    /// Fills the regular slots: all of them by rank on a full rechoke, the free ones only
    /// otherwise. Holders that no longer qualify were choked by the caller.
    fn fill_regular(&mut self, now: Instant, seeding: bool, full: bool, peers: &[PeerInfo]) {
        let slots = self.config.unchoke_slots;
        let mut ranked = std::mem::take(&mut self.scratch.ranked);
        ranked.clear();
        let mut holders = 0;
        for (p, (_, t)) in peers.iter().zip(&self.peers) {
            let eligible = p.interested && (seeding || !p.snubbed);
            // The optimistic peer keeps its own slot until it rotates out.
            if !eligible || t.role == Role::Optimistic {
                continue;
            }
            // Drawn for every eligible peer in key order, so the stream stays reproducible.
            let tie = self.rng.next_u64();
            let holder = matches!(t.role, Role::Regular { .. });
            holders += usize::from(holder);
            let rank = if !seeding {
                (0, u64::MAX - p.download_rate, u64::from(!holder), tie)
            } else if let Role::Regular { since } = t.role {
                let class = if now.saturating_duration_since(since) < self.config.seed_turn {
                    0
                } else {
                    2
                };
                (class, u64::MAX - p.upload_rate, 0, tie)
            } else {
                let waited = duration_nanos(now.saturating_duration_since(t.waiting_since));
                (1, u64::MAX - waited, u64::MAX - p.upload_rate, tie)
            };
            ranked.push(Ranked {
                rank,
                key: p.key,
                holder,
            });
        }
        let mut chosen = std::mem::take(&mut self.scratch.chosen);
        chosen.clear();
        if full {
            chosen.extend(best(&mut ranked, slots).iter().map(|r| r.key));
        } else {
            chosen.extend(ranked.iter().filter(|r| r.holder).map(|r| r.key));
            let free = slots.saturating_sub(holders);
            ranked.retain(|r| !r.holder);
            chosen.extend(best(&mut ranked, free).iter().map(|r| r.key));
        }
        chosen.sort_unstable();

        for (key, t) in self.peers.iter_mut() {
            let picked = chosen.binary_search(key).is_ok();
            match t.role {
                Role::Regular { .. } if !picked => {
                    t.role = Role::Choked;
                    t.waiting_since = now;
                }
                Role::Choked if picked => t.role = Role::Regular { since: now },
                _ => {}
            }
        }
        self.scratch.ranked = ranked;
        self.scratch.chosen = chosen;
    }

    /// Fills a free optimistic slot by the weighted draw, avoiding the peer that just
    /// rotated out unless it is the only one left.
    fn fill_optimistic(&mut self, now: Instant, peers: &[PeerInfo], outgoing: Option<PeerKey>) {
        if self.optimistic().is_some() {
            return;
        }
        let mut candidates = std::mem::take(&mut self.scratch.candidates);
        candidates.clear();
        for (i, (p, (_, t))) in peers.iter().zip(&self.peers).enumerate() {
            if !p.interested || Some(p.key) == outgoing || t.role != Role::Choked {
                continue;
            }
            let new = now.saturating_duration_since(p.connected_at) < self.config.new_peer_window;
            let weight = if new {
                u64::from(self.config.new_peer_weight)
            } else {
                1
            };
            candidates.push((i, weight));
        }
        let mut total: u64 = candidates.iter().map(|c| c.1).sum();
        if total == 0 {
            // Only new peers, weighted 0: draw evenly rather than not at all.
            candidates.iter_mut().for_each(|c| c.1 = 1);
            total = candidates.len() as u64;
        }
        let pick = if total > 0 {
            let mut x = self.rng.below_u64(total);
            candidates
                .iter()
                .find(|&&(_, w)| {
                    if x < w {
                        return true;
                    }
                    x -= w;
                    false
                })
                .map(|c| c.0)
        } else {
            outgoing
                .and_then(|k| self.peers.binary_search_by_key(&k, |e| e.0).ok())
                .filter(|&i| self.peers[i].1.role == Role::Choked)
        };
        self.scratch.candidates = candidates;
        if let Some(i) = pick {
            self.peers[i].1.role = Role::Optimistic;
            self.next_optimistic = later(now, self.config.optimistic_interval);
        }
    }
}

#[cfg(test)]
mod tests;
