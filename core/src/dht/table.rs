//! The routing table (BEP 5): the nodes we know, in buckets of at most `k` by how many
//! leading bits their id shares with ours.
//!
//! Bucket `i` (for `i` below the last) holds ids sharing exactly `i` leading bits with ours;
//! the last bucket holds every id sharing at least as many. Only the last bucket splits
//! (it is the one that covers our own id), so the table has at most 160 buckets and about
//! `k · log2(N)` nodes in a network of `N`.
//!
//! A node is *good* if it answered one of our queries within [`GOOD_FOR`], *bad* after
//! [`BAD_AFTER`] queries in a row went unanswered, *questionable* otherwise. A new node that
//! finds its bucket full takes the place of a bad node; if there is none it waits in the
//! bucket's replacement cache (at most `k`, the newest kept) and the table asks the caller
//! to ping the least recently seen questionable node, whose failure later makes room.
//! A known id seen from a different address is ignored unless the known entry went bad,
//! so a forged packet cannot move a good node; likewise a known address with a new id,
//! so one socket holds one place.

use core::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::id::{Distance, NodeId};
use super::krpc::Contact;

/// How long an answer keeps a node good.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);

/// Unanswered queries in a row that make a node bad.
pub const BAD_AFTER: u8 = 2;

/// How long to wait before pinging the same questionable node again.
const PING_AGAIN_AFTER: Duration = Duration::from_secs(60);

/// One known node.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its id and address.
    pub contact: Contact,
    /// When it last answered one of our queries.
    pub last_answer: Option<Instant>,
    /// When we last heard from it at all (a query or an answer).
    pub last_seen: Instant,
    /// Queries in a row it left unanswered.
    pub fails: u8,
    /// When we last pinged it because its bucket was full.
    pinged: Option<Instant>,
}

impl Entry {
    /// Answered within [`GOOD_FOR`] and not failing since.
    pub fn is_good(&self, now: Instant) -> bool {
        self.fails == 0
            && self
                .last_answer
                .is_some_and(|at| now.saturating_duration_since(at) < GOOD_FOR)
    }

    /// Failed [`BAD_AFTER`] times in a row.
    pub fn is_bad(&self) -> bool {
        self.fails >= BAD_AFTER
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    entries: Vec<Entry>,
    cache: Vec<Contact>,
    changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            entries: Vec::new(),
            cache: Vec::new(),
            changed: now,
        }
    }
}

/// What became of a node offered to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Now in the table.
    Added,
    /// Already there; its times were updated.
    Updated,
    /// Its bucket is full: kept in the replacement cache. Ping `ping` (when given) to find
    /// out whether it still lives.
    Cached {
        /// A questionable node of the bucket to ping.
        ping: Option<Contact>,
    },
    /// Refused: our own id, an unusable address, or a known id at another address.
    Refused,
}

/// The routing table.
#[derive(Clone, Debug)]
pub struct Table {
    own: NodeId,
    k: usize,
    buckets: Vec<Bucket>,
}

impl Table {
    /// An empty table for the node `own`, with buckets of `k`.
    pub fn new(own: NodeId, k: usize, now: Instant) -> Table {
        Table {
            own,
            k: k.max(1),
            buckets: vec![Bucket::new(now)],
        }
    }

    fn index(&self, id: &NodeId) -> usize {
        self.own.common_prefix(id).min(self.buckets.len() - 1)
    }

    /// Offers a node we heard from; `answered` when it answered a query of ours.
    pub fn insert(&mut self, contact: Contact, answered: bool, now: Instant) -> Insert {
        if contact.id == self.own || contact.addr.port() == 0 || contact.addr.ip().is_unspecified()
        {
            return Insert::Refused;
        }
        // One id per address: a node that answers with a new id every time would
        // otherwise fill buckets from one socket.
        if self
            .entries()
            .any(|e| e.contact.addr == contact.addr && e.contact.id != contact.id && !e.is_bad())
        {
            return Insert::Refused;
        }
        loop {
            let last = self.buckets.len() - 1;
            let i = self.index(&contact.id);
            let k = self.k;
            let bucket = &mut self.buckets[i];
            if let Some(e) = bucket
                .entries
                .iter_mut()
                .find(|e| e.contact.id == contact.id)
            {
                if e.contact.addr != contact.addr {
                    if !e.is_bad() {
                        return Insert::Refused;
                    }
                    e.contact.addr = contact.addr;
                    e.last_answer = None;
                }
                e.last_seen = now;
                if answered {
                    e.last_answer = Some(now);
                    e.fails = 0;
                    bucket.changed = now;
                }
                return Insert::Updated;
            }
            let entry = Entry {
                contact,
                last_answer: answered.then_some(now),
                last_seen: now,
                fails: 0,
                pinged: None,
            };
            if bucket.entries.len() < k {
                bucket.entries.push(entry);
                bucket.cache.retain(|c| c.id != contact.id);
                bucket.changed = now;
                return Insert::Added;
            }
            if i == last && last < 159 {
                self.split(now);
                continue;
            }
            if let Some(bad) = bucket.entries.iter_mut().find(|e| e.is_bad()) {
                *bad = entry;
                bucket.changed = now;
                return Insert::Added;
            }
            bucket.cache.retain(|c| c.id != contact.id);
            if bucket.cache.len() >= k {
                bucket.cache.remove(0);
            }
            bucket.cache.push(contact);
            let ping = bucket
                .entries
                .iter_mut()
                .filter(|e| !e.is_good(now))
                .filter(|e| {
                    e.pinged
                        .is_none_or(|at| now.saturating_duration_since(at) >= PING_AGAIN_AFTER)
                })
                .min_by_key(|e| e.last_seen)
                .map(|e| {
                    e.pinged = Some(now);
                    e.contact
                });
            return Insert::Cached { ping };
        }
    }

    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len() - 1;
        let own = self.own;
        let old = self.buckets.last_mut().expect("a table has a bucket");
        let (stay, go): (Vec<Entry>, Vec<Entry>) = old
            .entries
            .drain(..)
            .partition(|e| own.common_prefix(&e.contact.id) == depth);
        let (cache_stay, cache_go): (Vec<Contact>, Vec<Contact>) = old
            .cache
            .drain(..)
            .partition(|c| own.common_prefix(&c.id) == depth);
        old.entries = stay;
        old.cache = cache_stay;
        let mut new = Bucket::new(now);
        new.entries = go;
        new.cache = cache_go;
        self.buckets.push(new);
    }

    /// A query to `id` went unanswered. A node that goes bad is replaced by the newest
    /// node of its bucket's replacement cache, if there is one.
    pub fn failed(&mut self, id: &NodeId, addr: SocketAddrV4) {
        let i = self.index(id);
        let bucket = &mut self.buckets[i];
        let Some(pos) = bucket
            .entries
            .iter()
            .position(|e| e.contact.id == *id && e.contact.addr == addr)
        else {
            return;
        };
        let e = &mut bucket.entries[pos];
        e.fails = e.fails.saturating_add(1);
        if e.is_bad() {
            if let Some(next) = bucket.cache.pop() {
                let last_seen = e.last_seen;
                bucket.entries[pos] = Entry {
                    contact: next,
                    last_answer: None,
                    last_seen,
                    fails: 0,
                    pinged: None,
                };
            }
        }
    }

    /// Up to `n` nodes closest to `target`, nearest first; bad nodes are left out.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<Contact> {
        let mut all: Vec<(Distance, Contact)> = self
            .buckets
            .iter()
            .flat_map(|b| &b.entries)
            .filter(|e| !e.is_bad())
            .map(|e| (e.contact.id.distance(target), e.contact))
            .collect();
        if all.len() > n && n > 0 {
            all.select_nth_unstable_by_key(n - 1, |(d, _)| *d);
        }
        all.truncate(n);
        all.sort_unstable_by_key(|(d, _)| *d);
        all.into_iter().map(|(_, c)| c).collect()
    }

    /// Every node in the table, bucket by bucket: what a runtime saves.
    pub fn contacts(&self) -> Vec<Contact> {
        self.buckets
            .iter()
            .flat_map(|b| &b.entries)
            .filter(|e| !e.is_bad())
            .map(|e| e.contact)
            .collect()
    }

    /// Every entry, for inspection.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| &b.entries)
    }

    /// Number of nodes held.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.entries.len()).sum()
    }

    /// Whether the table holds no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The bucket that has gone longest without change and when it falls due for a
    /// refresh (`interval` after its last change).
    pub fn next_refresh(&self, interval: Duration) -> Option<(usize, Instant)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.changed + interval))
            .min_by_key(|(i, at)| (*at, *i))
    }

    /// Marks bucket `i` as refreshed now (its refresh lookup has started).
    pub fn touch(&mut self, i: usize, now: Instant) {
        if let Some(b) = self.buckets.get_mut(i) {
            b.changed = now;
        }
    }
}

#[cfg(test)]
mod tests;
