//! Assembling a torrent's metadata from its peers (the fetching side of BEP 9).
//!
//! A [`MetadataFetch`] is told which peers can serve the metadata (those whose extended
//! handshake has `ut_metadata` and a `metadata_size`), spreads piece requests over them,
//! takes their data and rejects, and when every piece is in checks the SHA-1 of the whole
//! against the info-hash and parses it. It asks for nothing itself: [`Action`]s say what to
//! send, and which peers to drop; [`MetadataFetch::poll_timeout`] says when to call
//! [`MetadataFetch::handle_timeout`].
//!
//! What it guarantees, whatever the peers send:
//!
//! - **Never wrong metadata.** The outcome is only ever metadata whose SHA-1 is the
//!   info-hash (then parsed; hashing right and failing to parse is the torrent's own fault
//!   and a final error).
//! - **Bounded memory.** A peer announcing more than [`FetchConfig::max_size`] (or 0) is
//!   not used. Pieces are held only as they arrive, each checked for its exact length, so
//!   what is held never exceeds the size being fetched.
//! - **Liars are found.** Peers may disagree on the size; the fetch works towards one size
//!   at a time (the first usable peer's) and asks only peers that announced it. A data
//!   message that contradicts what its peer announced (another `total_size`, a piece out
//!   of range or of the wrong length) drops that peer at once. When the whole fails the
//!   hash: if one peer sent all of it, it is dropped; if several did, the fetch cannot tell
//!   which lied, so from then on it fetches the whole metadata from one peer at a time, and
//!   a peer whose own metadata fails the hash is dropped. Every piece is fetched again each
//!   time. An honest peer therefore gets its turn after at most one failure per liar.
//! - **Rejects and silence** sideline a peer for [`FetchConfig::rest`]; after
//!   [`FetchConfig::max_strikes`] of them it is not asked again (its connection is the
//!   caller's to keep: it may still be useful for the payload).
//!
//! Peers are kept in the order they were added and asked in that order, so the same calls
//! give the same actions.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha1::{Digest, Sha1};
use smallvec::SmallVec;

use super::{piece_count, piece_len, MetadataMessage, DEFAULT_MAX_METADATA_SIZE};
use crate::magnet::Magnet;
use crate::metainfo::{Metainfo, MetainfoError};
use crate::InfoHash;

/// Settings of a [`MetadataFetch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// The largest metadata accepted, in bytes ([`DEFAULT_MAX_METADATA_SIZE`] by default).
    pub max_size: u64,
    /// How long a request may go unanswered before it is asked of another peer.
    pub request_timeout: Duration,
    /// Requests in flight to one peer.
    pub requests_per_peer: usize,
    /// How long a peer that rejected a request or let one time out is left alone.
    pub rest: Duration,
    /// Rejects and timeouts after which a peer is no longer asked.
    pub max_strikes: u32,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_size: DEFAULT_MAX_METADATA_SIZE,
            request_timeout: Duration::from_secs(15),
            requests_per_peer: 4,
            rest: Duration::from_secs(10),
            max_strikes: 3,
        }
    }
}

/// Something the caller is to do for the fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<P> {
    /// Send `peer` a request ([`MetadataMessage::Request`]) for this piece.
    Request {
        /// The peer to ask.
        peer: P,
        /// The piece.
        piece: u32,
    },
    /// Close the connection to `peer`: it sent metadata that cannot be right. The fetch
    /// has already forgotten it.
    Drop {
        /// The peer.
        peer: P,
        /// What it did.
        reason: DropReason,
    },
}

/// Why a peer was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its metadata, all from it, failed the info-hash check.
    WrongMetadata,
    /// A data message that contradicts its own handshake: another `total_size`, a piece
    /// beyond the end, or a piece of the wrong length.
    BadData,
}

/// Why [`MetadataFetch::add_peer`] will not use a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddPeerError {
    /// It announced a `metadata_size` of 0 or above [`FetchConfig::max_size`].
    BadSize(u64),
    /// It was dropped before, or is already known.
    Known,
    /// The metadata is already in (or failed for good).
    Finished,
}

/// A peer that can serve the metadata, and how it has done.
#[derive(Debug)]
struct Source<P> {
    peer: P,
    size: u64,
    in_flight: SmallVec<[(u32, Instant); 4]>,
    strikes: u32,
    resting_until: Option<Instant>,
}

/// A piece of the metadata being fetched.
#[derive(Clone, Debug)]
enum Slot<P> {
    Missing,
    Requested(P),
    Have(Bytes, P),
}

/// How requests are spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode<P> {
    /// Any usable peer that announced the size worked towards.
    Shared,
    /// The whole from one peer, after metadata from several failed the hash (the peer, once
    /// chosen).
    Single(Option<P>),
}

/// The metadata of one torrent being assembled from its peers. `P` names a peer (the
/// engine's connection id, say).
#[derive(Debug)]
pub struct MetadataFetch<P> {
    info_hash: InfoHash,
    trackers: Vec<String>,
    web_seeds: Vec<String>,
    config: FetchConfig,
    sources: Vec<Source<P>>,
    /// Peers dropped for bad metadata: never used again.
    dropped: Vec<P>,
    mode: Mode<P>,
    /// The size being fetched and its pieces.
    size: Option<u64>,
    slots: Vec<Slot<P>>,
    missing: VecDeque<u32>,
    have: u32,
    actions: VecDeque<Action<P>>,
    outcome: Option<Result<Metainfo, MetainfoError>>,
}

impl<P: Copy + Eq + Debug> MetadataFetch<P> {
    /// A fetch for the torrent of `magnet`. Its trackers (`tr=`) become the metainfo's, one
    /// tier each in link order (as libtorrent reads a magnet link), and its web seeds
    /// (`ws=`) the metainfo's `url-list`.
    pub fn new(magnet: &Magnet, config: FetchConfig) -> MetadataFetch<P> {
        MetadataFetch {
            info_hash: magnet.info_hash,
            trackers: magnet.trackers.clone(),
            web_seeds: magnet.web_seeds.clone(),
            config,
            sources: Vec::new(),
            dropped: Vec::new(),
            mode: Mode::Shared,
            size: None,
            slots: Vec::new(),
            missing: VecDeque::new(),
            have: 0,
            actions: VecDeque::new(),
            outcome: None,
        }
    }

    /// The info-hash the metadata must match.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// A peer that announced `ut_metadata` and `metadata_size` = `size`.
    pub fn add_peer(&mut self, peer: P, size: u64, now: Instant) -> Result<(), AddPeerError> {
        if self.outcome.is_some() {
            return Err(AddPeerError::Finished);
        }
        if size == 0 || size > self.config.max_size {
            return Err(AddPeerError::BadSize(size));
        }
        if self.dropped.contains(&peer) || self.sources.iter().any(|s| s.peer == peer) {
            return Err(AddPeerError::Known);
        }
        self.sources.push(Source {
            peer,
            size,
            in_flight: SmallVec::new(),
            strikes: 0,
            resting_until: None,
        });
        self.schedule(now);
        Ok(())
    }

    /// The peer's connection is gone: what it was asked for is asked of others.
    pub fn remove_peer(&mut self, peer: P, now: Instant) {
        self.forget(peer);
        self.schedule(now);
    }

    /// A `ut_metadata` message from `peer`. Requests are not the fetch's business (see
    /// [`super::ServeBudget`]) and are ignored here.
    pub fn on_message(&mut self, peer: P, message: &MetadataMessage, now: Instant) {
        match message {
            MetadataMessage::Request { .. } => {}
            MetadataMessage::Reject { piece } => self.on_reject(peer, *piece, now),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => self.on_data(peer, *piece, *total_size, data),
        }
        self.schedule(now);
    }

    /// Requests that have waited too long are asked of others, and their peers rest.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.request_timeout;
        let rest = self.config.rest;
        for s in &mut self.sources {
            let before = s.in_flight.len();
            let mut expired: SmallVec<[u32; 4]> = SmallVec::new();
            s.in_flight.retain(|&mut (piece, at)| {
                let late = now.saturating_duration_since(at) >= timeout;
                if late {
                    expired.push(piece);
                }
                !late
            });
            if s.in_flight.len() != before {
                s.strikes += 1;
                s.resting_until = Some(now + rest);
            }
            for piece in expired {
                if let Some(slot @ Slot::Requested(_)) = self.slots.get_mut(piece as usize) {
                    *slot = Slot::Missing;
                    self.missing.push_back(piece);
                }
            }
        }
        self.schedule(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do: the earliest
    /// request deadline or end of a rest.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        let timeout = self.config.request_timeout;
        self.sources
            .iter()
            .flat_map(|s| {
                s.in_flight
                    .iter()
                    .map(move |&(_, at)| at + timeout)
                    .chain(s.resting_until)
            })
            .min()
    }

    /// The next thing to do, oldest first.
    pub fn poll_action(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }

    /// Peers that can still be asked (whether resting or not).
    pub fn peer_count(&self) -> usize {
        self.sources
            .iter()
            .filter(|s| s.strikes < self.config.max_strikes)
            .count()
    }

    /// Bytes of the size being fetched that are in, and that size (if one is chosen).
    pub fn progress(&self) -> (u64, Option<u64>) {
        let got = self
            .slots
            .iter()
            .map(|s| match s {
                Slot::Have(b, _) => b.len() as u64,
                _ => 0,
            })
            .sum();
        (got, self.size)
    }

    /// The end of the fetch, once there is one: the verified, parsed metainfo, or why
    /// metadata that matches the info-hash is not a usable torrent.
    pub fn outcome(&self) -> Option<Result<&Metainfo, &MetainfoError>> {
        self.outcome.as_ref().map(Result::as_ref)
    }

    /// The fetch's end, taken (see [`outcome`](Self::outcome)).
    pub fn into_outcome(self) -> Option<Result<Metainfo, MetainfoError>> {
        self.outcome
    }

    // ------------------------------------------------------------------ internals

    fn on_reject(&mut self, peer: P, piece: u32, now: Instant) {
        let rest = self.config.rest;
        let Some(s) = self.sources.iter_mut().find(|s| s.peer == peer) else {
            return;
        };
        let Some(at) = s.in_flight.iter().position(|&(p, _)| p == piece) else {
            return;
        };
        s.in_flight.remove(at);
        s.strikes += 1;
        s.resting_until = Some(now + rest);
        self.put_back(piece);
    }

    fn on_data(&mut self, peer: P, piece: u32, total_size: u64, data: &Bytes) {
        let Some(i) = self.sources.iter().position(|s| s.peer == peer) else {
            return;
        };
        let s = &mut self.sources[i];
        let Some(at) = s.in_flight.iter().position(|&(p, _)| p == piece) else {
            // Unasked for, or late after a timeout: ignored.
            return;
        };
        s.in_flight.remove(at);
        let announced = s.size;
        let right_len = piece_len(announced, piece);
        if total_size != announced || right_len != Some(data.len() as u32) {
            self.put_back(piece);
            self.drop_peer(peer, DropReason::BadData);
            return;
        }
        // Requests only go to peers of the size worked towards, for pieces of that size.
        match self.slots.get_mut(piece as usize) {
            Some(slot @ Slot::Requested(_)) => {
                // A copy, so as not to keep the connection's whole read buffer alive.
                *slot = Slot::Have(Bytes::copy_from_slice(data), peer);
            }
            _ => return,
        }
        self.have += 1;
        if self.have as usize == self.slots.len() {
            self.verify();
        }
    }

    fn verify(&mut self) {
        let mut whole = Vec::with_capacity(self.size.unwrap_or(0) as usize);
        let mut contributors: SmallVec<[P; 8]> = SmallVec::new();
        for slot in &self.slots {
            if let Slot::Have(bytes, peer) = slot {
                whole.extend_from_slice(bytes);
                if !contributors.contains(peer) {
                    contributors.push(*peer);
                }
            }
        }
        if InfoHash(Sha1::digest(&whole).into()) == self.info_hash {
            self.outcome = Some(Metainfo::from_info_bytes(&whole).map(|mut meta| {
                meta.announce = self.trackers.first().cloned();
                if self.trackers.len() > 1 {
                    meta.announce_list = self.trackers.iter().map(|t| vec![t.clone()]).collect();
                }
                meta.url_list = self.web_seeds.clone();
                meta
            }));
            self.sources.clear();
            self.slots.clear();
            self.missing.clear();
            return;
        }
        if contributors.len() == 1 {
            self.drop_peer(contributors[0], DropReason::WrongMetadata);
        } else {
            // Someone lied and it cannot be told who: one peer at a time from now on.
            self.mode = Mode::Single(None);
        }
        self.reset(None);
    }

    /// Starts over on `size` (or none yet): every piece missing.
    fn reset(&mut self, size: Option<u64>) {
        for s in &mut self.sources {
            s.in_flight.clear();
        }
        self.size = size;
        let count = size.map_or(0, piece_count);
        self.slots = vec![Slot::Missing; count as usize];
        self.missing = (0..count).collect();
        self.have = 0;
    }

    fn put_back(&mut self, piece: u32) {
        if let Some(slot @ Slot::Requested(_)) = self.slots.get_mut(piece as usize) {
            *slot = Slot::Missing;
            self.missing.push_front(piece);
        }
    }

    fn drop_peer(&mut self, peer: P, reason: DropReason) {
        self.forget(peer);
        self.dropped.push(peer);
        self.actions.push_back(Action::Drop { peer, reason });
    }

    fn forget(&mut self, peer: P) {
        let Some(i) = self.sources.iter().position(|s| s.peer == peer) else {
            return;
        };
        let s = self.sources.remove(i);
        for (piece, _) in s.in_flight {
            self.put_back(piece);
        }
        if self.mode == Mode::Single(Some(peer)) {
            self.mode = Mode::Single(None);
        }
    }

    fn usable(&self, s: &Source<P>, now: Instant) -> bool {
        s.strikes < self.config.max_strikes && s.resting_until.is_none_or(|t| t <= now)
    }

    /// Chooses what to fetch if need be, then sends requests where there is room.
    fn schedule(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        for s in &mut self.sources {
            if s.resting_until.is_some_and(|t| t <= now) {
                s.resting_until = None;
            }
        }
        match self.mode {
            Mode::Shared => {
                // Keep the size worked towards while a usable peer announced it; otherwise
                // take the first usable peer's.
                let keep = self.size.is_some_and(|size| {
                    self.sources
                        .iter()
                        .any(|s| s.size == size && s.strikes < self.config.max_strikes)
                });
                if !keep {
                    let next = self
                        .sources
                        .iter()
                        .find(|s| self.usable(s, now))
                        .map(|s| s.size);
                    if next.is_some() && next != self.size {
                        self.reset(next);
                    }
                }
            }
            Mode::Single(current) => {
                let keep = current.is_some_and(|p| {
                    self.sources
                        .iter()
                        .any(|s| s.peer == p && s.strikes < self.config.max_strikes)
                });
                if !keep {
                    let next = self
                        .sources
                        .iter()
                        .find(|s| self.usable(s, now))
                        .map(|s| (s.peer, s.size));
                    if let Some((peer, size)) = next {
                        self.mode = Mode::Single(Some(peer));
                        self.reset(Some(size));
                    }
                }
            }
        }
        let Some(size) = self.size else { return };
        let per_peer = self.config.requests_per_peer.max(1);
        for i in 0..self.sources.len() {
            if self.missing.is_empty() {
                break;
            }
            let s = &self.sources[i];
            let eligible = s.size == size
                && self.usable(s, now)
                && match self.mode {
                    Mode::Shared => true,
                    Mode::Single(p) => p == Some(s.peer),
                };
            if !eligible {
                continue;
            }
            let peer = s.peer;
            while self.sources[i].in_flight.len() < per_peer {
                let Some(piece) = self.missing.pop_front() else {
                    break;
                };
                self.slots[piece as usize] = Slot::Requested(peer);
                self.sources[i].in_flight.push((piece, now));
                self.actions.push_back(Action::Request { peer, piece });
            }
        }
    }
}

#[cfg(test)]
mod tests;
