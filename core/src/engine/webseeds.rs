//! Web seeds (BEP 19) of a torrent: what each is asked for, and what its answers become.
//!
//! # A web seed is a peer to the picker
//!
//! Each web seed of a torrent takes a [`PeerKey`] of its own from the torrent's keys (held
//! by no connection while the web seed keeps it; see `keys`) and is registered with the
//! picker as a peer that has every piece. What it fetches is what the picker proposes for
//! that key, then marked requested under it, so every invariant of the picker
//! (`picker/invariants.rs`: each requested block has its requester recorded, availability
//! counts, partial pieces and their owners, endgame limits) holds with no special case: no
//! block a connected peer is fetching is proposed to the web seed outside endgame, blocks
//! it gave up are free for the peers again (`abort_request`), and a dropped web seed leaves
//! like a peer (`remove_peer`). A separate reservation path would have had to keep those
//! same invariants by hand. Being "a seed" raises every piece's availability by one, which
//! leaves rarest-first order unchanged.
//!
//! # Runs
//!
//! HTTP is cheap per byte and dear per request, so a web seed fetches runs: the picker's
//! first choice for its key (one piece's worth: its own partial pieces first, then
//! abandoned ones, then a new piece by rarity), cut to the contiguous blocks at its
//! start, and, when that ends a piece, extended with the unstarted pieces that follow
//! ([`Picker::extend_run`](crate::picker::Picker::extend_run)) up to
//! [`WebSeedConfig::max_job_bytes`](crate::webseed::WebSeedConfig::max_job_bytes), and
//! up to what the web seed sends in about two seconds at the speed its last job showed
//! (the first job is 64 KiB; each may be at most twice the last). A web seed has up to
//! [`WebSeedConfig::max_jobs`] jobs under way (two by default): while one job's last
//! bytes come, the next one is already asked for, so the server never waits for us
//! between jobs. Each job's speed is its share of the server's, so the two-second limit
//! holds for all its jobs together. The speed limit matters when one server is shared by
//! a crowd: each of them then gets it slowly, and a job's blocks are asked of the web
//! seed alone, so a large job would hold pieces back from peers that could send them at
//! once.
//!
//! # Nothing unverified
//!
//! A job's bytes are cut into the blocks it was asked for and go the way of a peer's
//! blocks: [`Output::WriteBlock`], then [`Output::HashPiece`] once the piece is whole. A
//! piece with bytes from a web seed that fails its hash counts as a failure of that web
//! seed (with backoff, and dropped after too many); a verified one forgives its failures.

use std::time::Instant;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::metainfo::Metainfo;
use crate::webseed::{Failure, Step, WebSeed, WebSeedConfig, WebSeedError};
use crate::wire::Message;
use crate::{BlockRequest, IoError, PeerKey, PieceIndex, BLOCK_SIZE};

use super::bandwidth::{Direction, Waiter};
use super::torrent::Torrent;
use super::{consistent, torrent_in, Engine, Event, Output, TorrentId, WebSeedRequestId};

/// One web seed of a torrent.
pub(super) struct WebSeedSlot {
    pub(super) seed: WebSeed,
    /// Its key in the picker (a reserved engine slot); `None` once dropped.
    pub(super) key: Option<PeerKey>,
    /// The jobs under way (at most [`WebSeedConfig::max_jobs`]), oldest first.
    pub(super) running: Vec<RunningJob>,
    /// Jobs started so far: the number of the latest one.
    pub(super) jobs: u32,
    /// The latest job started when the last failure was counted. A piece of one of these
    /// jobs that fails its hash is that same failure: one bad job is one failure however
    /// many of its pieces fail, and so are the jobs fetched while the first bad piece was
    /// being hashed (counted one by one, they would drop the web seed in a burst, without
    /// the backoff a failing server is given).
    pub(super) counted_through: u32,
    /// The most the next job may fetch (see [`next_job_bytes`]).
    pub(super) job_limit: u64,
}

/// A job of a web seed under way.
pub(super) struct RunningJob {
    /// Its number (see [`WebSeedSlot::jobs`]).
    job: u32,
    /// Its blocks, marked requested under the web seed's key.
    blocks: Vec<BlockRequest>,
    /// When it started, and its size in bytes.
    started: Instant,
    bytes: u64,
}

/// The first job's size: small, as nothing is known yet of the server's speed.
const FIRST_JOB_BYTES: u64 = 4 * BLOCK_SIZE as u64;

/// How long a job should take at the speed the web seed showed last.
const JOB_SECONDS: f64 = 2.0;

/// The size limit of the next job after one of `bytes` took `secs`: at most twice the
/// last (a fast server reaches `max` in a few jobs), at most what the server sent in
/// [`JOB_SECONDS`] at its last speed, at least one block. A slow web seed thus holds only
/// the blocks it can send soon: a job's blocks are requested from it alone outside
/// endgame, and a web server shared by a crowd is slow for each of them, while their
/// peers could have sent those blocks long before.
fn next_job_bytes(bytes: u64, secs: f64, max: u64) -> u64 {
    let rate = bytes as f64 / secs.max(1e-3);
    let by_rate = (rate * JOB_SECONDS) as u64;
    by_rate
        .min(bytes.saturating_mul(2))
        .clamp(u64::from(BLOCK_SIZE), max.max(u64::from(BLOCK_SIZE)))
}

/// The web seeds of a torrent, and which of them sent bytes of each piece in progress.
#[derive(Default)]
pub(super) struct WebSeeds {
    pub(super) seeds: Vec<WebSeedSlot>,
    /// Per piece in progress: (web seed, job) for each web seed job that sent bytes of it.
    pub(super) contributors: std::collections::BTreeMap<u32, SmallVec<[(u32, u32); 1]>>,
}

impl Engine {
    /// The torrent's web seeds, each with a reserved key registered with its picker as a
    /// seed; events for `url-list` entries that are no web seed URL.
    pub(super) fn add_webseeds(&mut self, id: TorrentId, meta: &Metainfo) {
        let config: WebSeedConfig = self.config.webseed.clone();
        for url in &meta.url_list {
            match WebSeed::new(url, &meta.info, config.clone()) {
                Ok(seed) => {
                    let Some(t) = self.torrent_mut(id) else {
                        return;
                    };
                    let key = t.keys.take(None);
                    consistent(&mut t.faults, t.picker.add_peer(key));
                    consistent(&mut t.faults, t.picker.peer_have_all(key));
                    t.webseeds.seeds.push(WebSeedSlot {
                        seed,
                        key: Some(key),
                        running: Vec::new(),
                        jobs: 0,
                        counted_through: 0,
                        job_limit: FIRST_JOB_BYTES,
                    });
                }
                Err(reason) => self.outputs.push_back(Output::Event(Event::WebSeedDropped {
                    torrent: id,
                    url: url.clone(),
                    reason,
                })),
            }
        }
    }

    /// Gives each web seed of the torrent jobs up to its [`WebSeedConfig::max_jobs`], as
    /// far as the picker has work for it.
    pub(super) fn pump_webseeds(&mut self, id: TorrentId, now: Instant) {
        let max_job = self.config.webseed.max_job_bytes;
        let Some(t) = torrent_in(&mut self.torrents, id) else {
            return;
        };
        if t.webseeds.seeds.is_empty() || t.storage_error || t.is_complete() {
            return;
        }
        let mut steps = Vec::new();
        let mut starved = false;
        'seeds: for (i, ws) in t.webseeds.seeds.iter_mut().enumerate() {
            let Some(key) = ws.key else { continue };
            while ws.seed.is_ready(now) {
                // The download limit's say, as for a peer's requests.
                let allowed = self.bandwidth.down.blocks(now);
                if allowed == 0 {
                    starved = true;
                    break 'seeds;
                }
                let limit = ws.job_limit.min(max_job);
                let max_blocks = (limit / u64::from(BLOCK_SIZE)).max(1) as u32;
                let Some(blocks) = choose_run(&mut t.picker, key, max_blocks.min(allowed)) else {
                    continue 'seeds;
                };
                let layout = t.store.layout();
                let first = blocks[0];
                let start =
                    piece_start(layout.piece_length(), first.piece) + u64::from(first.begin);
                let len: u64 = blocks.iter().map(|b| u64::from(b.length)).sum();
                self.bandwidth.down.charge(len);
                for b in &blocks {
                    consistent(&mut t.faults, t.picker.mark_requested(key, *b));
                }
                ws.jobs = ws.jobs.wrapping_add(1);
                ws.running.push(RunningJob {
                    job: ws.jobs,
                    blocks,
                    started: now,
                    bytes: len,
                });
                steps.push((i as u32, ws.seed.start(ws.jobs, start, len)));
            }
        }
        for (i, step) in steps {
            self.webseed_step(id, i, step, now);
        }
        if starved {
            self.wait_for_bandwidth(Direction::Down, Waiter::WebSeeds(id), now);
        }
    }

    /// The answer to a web seed request.
    pub(super) fn on_webseed_response(
        &mut self,
        id: TorrentId,
        req: WebSeedRequestId,
        result: Result<Vec<u8>, IoError>,
        now: Instant,
    ) {
        let Some(ws) = self
            .torrent_mut(id)
            .and_then(|t| t.webseeds.seeds.get_mut(req.seed as usize))
        else {
            return;
        };
        let step = ws
            .seed
            .on_answer_bytes(req.serial, result.map(Bytes::from), now);
        if let Some(step) = step {
            self.webseed_step(id, req.seed, step, now);
        }
    }

    fn webseed_step(&mut self, id: TorrentId, i: u32, step: Step, now: Instant) {
        match step {
            Step::Get(get) => self.outputs.push_back(Output::WebSeedRequest {
                torrent: id,
                id: WebSeedRequestId {
                    seed: i,
                    serial: get.serial,
                },
                url: get.url,
                request: get.request,
                max_body: get.max_body,
            }),
            Step::Done { job, start, data } => {
                let max = self.config.webseed.max_job_bytes;
                let Some(ws) = self
                    .torrent_mut(id)
                    .and_then(|t| t.webseeds.seeds.get_mut(i as usize))
                else {
                    return;
                };
                let Some(at) = ws.running.iter().position(|r| r.job == job) else {
                    return;
                };
                let done = ws.running.remove(at);
                let secs = now.saturating_duration_since(done.started).as_secs_f64();
                ws.job_limit = next_job_bytes(done.bytes, secs, max);
                self.webseed_data(id, i, job, done.blocks, start, data);
                self.pump_webseeds(id, now);
            }
            Step::Failed(failure) => self.webseed_failed(id, i, failure),
        }
    }

    /// Job `job`'s bytes, cut into its `blocks` and written like a peer's.
    fn webseed_data(
        &mut self,
        id: TorrentId,
        i: u32,
        job: u32,
        blocks: Vec<BlockRequest>,
        start: u64,
        data: Bytes,
    ) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        let Some(key) = t.webseeds.seeds.get(i as usize).and_then(|ws| ws.key) else {
            return;
        };
        let piece_length = t.store.layout().piece_length();
        let mut cancels = Vec::new();
        let mut writes = Vec::new();
        for block in blocks {
            let at = piece_start(piece_length, block.piece) + u64::from(block.begin);
            let from = (at - start) as usize;
            let to = from + block.length as usize;
            if at < start || to > data.len() {
                // Not in the answer (cannot happen: the job covered these blocks).
                consistent(&mut t.faults, t.picker.abort_request(key, block));
                t.refill_wanted = true;
                continue;
            }
            let Ok(received) = t.picker.block_received(key, block) else {
                continue;
            };
            t.down.add(block.length.into());
            if received.duplicate {
                continue;
            }
            let seeds = t.webseeds.contributors.entry(block.piece.0).or_default();
            if !seeds.contains(&(i, job)) {
                seeds.push((i, job));
            }
            *t.pending_writes.entry(block.piece.0).or_default() += 1;
            if received.piece_complete {
                t.awaiting_hash.insert(block.piece.0);
            }
            writes.push((block, data.slice(from..to)));
            cancels.extend(received.cancel);
        }
        for (block, data) in writes {
            self.outputs.push_back(Output::WriteBlock {
                torrent: id,
                block,
                data,
            });
        }
        // Endgame duplicates other peers were asked for.
        for (other, dup) in cancels {
            let Some(conn) = self.conn_of_key(id, other) else {
                continue;
            };
            if let Some(o) = self.peer_mut(conn) {
                if let Some(at) = o.requests.iter().position(|r| r.block == dup) {
                    o.requests.remove(at);
                    o.send(&Message::Cancel(dup));
                }
            }
            self.mark_dirty(conn);
        }
    }

    /// A failure of web seed `i`: the blocks of its jobs go back to the picker (a failure
    /// ends them all); the user hears why; a web seed failing too often leaves the
    /// picker.
    pub(super) fn webseed_failed(&mut self, id: TorrentId, i: u32, failure: Failure) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        let Some(ws) = t.webseeds.seeds.get_mut(i as usize) else {
            return;
        };
        ws.counted_through = ws.jobs;
        let url = ws.seed.url().to_string();
        let blocks: Vec<BlockRequest> = ws.running.drain(..).flat_map(|r| r.blocks).collect();
        let key = ws.key;
        if let Some(key) = key {
            for block in &blocks {
                consistent(&mut t.faults, t.picker.abort_request(key, *block));
            }
            t.refill_wanted |= !blocks.is_empty();
        }
        let dropped = failure.retry_at.is_none();
        let reason = failure.reason.clone();
        self.outputs.push_back(Output::Event(Event::WebSeedError {
            torrent: id,
            url: url.clone(),
            reason: failure.reason,
            failures: failure.failures,
            retry_at: failure.retry_at,
        }));
        if dropped {
            if let Some(key) = key {
                if let Some(t) = self.torrent_mut(id) {
                    consistent(&mut t.faults, t.picker.remove_peer(key));
                    t.keys.release(key);
                    if let Some(ws) = t.webseeds.seeds.get_mut(i as usize) {
                        ws.key = None;
                    }
                }
            }
            self.outputs.push_back(Output::Event(Event::WebSeedDropped {
                torrent: id,
                url,
                reason,
            }));
        }
    }

    /// A piece was hashed: the web seeds that sent bytes of it are forgiven, or fail.
    pub(super) fn webseeds_piece_hashed(
        &mut self,
        id: TorrentId,
        piece: PieceIndex,
        ok: bool,
        now: Instant,
    ) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        let Some(seeds) = t.webseeds.contributors.remove(&piece.0) else {
            return;
        };
        for (i, job) in seeds {
            let Some(t) = self.torrent_mut(id) else {
                return;
            };
            let Some(ws) = t.webseeds.seeds.get_mut(i as usize) else {
                continue;
            };
            if ok {
                ws.seed.piece_verified();
            } else if !ws.seed.is_dropped() && job > ws.counted_through {
                let failure = ws.seed.fail(WebSeedError::HashFailed(piece), now);
                self.webseed_failed(id, i, failure);
            }
        }
    }

    /// Releases the keys of a removed torrent's web seeds.
    pub(super) fn remove_webseeds(&mut self, t: &mut Torrent) {
        for ws in t.webseeds.seeds.drain(..) {
            if let Some(key) = ws.key {
                self.free_slots.push(key.0);
            }
        }
    }
}

/// The blocks of the next job for `key`: the contiguous start of the picker's choice,
/// extended with the unstarted pieces after it when it ends a piece.
fn choose_run(
    picker: &mut crate::picker::Picker,
    key: PeerKey,
    max_blocks: u32,
) -> Option<Vec<BlockRequest>> {
    let mut picked = Vec::new();
    let bpp = picker.blocks_in_piece(PieceIndex(0)).max(1);
    picker.pick(key, bpp.min(max_blocks), &mut picked);
    if picked.is_empty() {
        return None;
    }
    picked.sort_by_key(|b| (b.piece, b.begin));
    let mut run = 1;
    while run < picked.len() {
        let (a, b) = (picked[run - 1], picked[run]);
        if a.piece != b.piece || a.begin + a.length != b.begin {
            break;
        }
        run += 1;
    }
    picked.truncate(run);
    let last = picked[run - 1];
    let piece_end = last.begin + last.length;
    let ends_piece = picker
        .block(last.piece, picker.blocks_in_piece(last.piece) - 1)
        .is_some_and(|b| b.begin + b.length == piece_end);
    if ends_piece {
        let room = max_blocks.saturating_sub(run as u32);
        picker.extend_run(key, last.piece, room, &mut picked);
    }
    Some(picked)
}

fn piece_start(piece_length: u32, piece: PieceIndex) -> u64 {
    u64::from(piece.0) * u64::from(piece_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_sizes_follow_the_server() {
        let max = 4 << 20;
        // Fast: doubling up to the maximum.
        assert_eq!(
            next_job_bytes(FIRST_JOB_BYTES, 0.001, max),
            2 * FIRST_JOB_BYTES
        );
        assert_eq!(next_job_bytes(max, 0.01, max), max);
        // Slow: 20 KiB/s gives 40 KiB jobs, never less than a block.
        assert_eq!(next_job_bytes(64 << 10, 3.2, max), 40 << 10);
        assert_eq!(next_job_bytes(16 << 10, 100.0, max), 16 << 10);
    }
}
