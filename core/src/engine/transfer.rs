//! Blocks both ways. Downloading: requests from the picker's choice up to each peer's
//! pipeline, blocks received and handed to the runtime to write, a piece hashed once all
//! its writes are done (a host proven to have sent wrong data is banned: see `blame`).
//! Uploading: a peer's requests queued while it is unchoked and served through disk
//! reads, as many as its send buffer has room for; none for a piece the peer has.

use core::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::wire::{encode_piece_header, Message};
use crate::{BlockRequest, IoError, PieceIndex};

use super::bandwidth::{Direction, Waiter};
use super::bans;
use super::peer::{Outstanding, Phase};
use super::timers::{Limits, TICK};
use super::{
    consistent, peer_in, CloseReason, ConnId, Engine, Event, Output, ProtocolError, TorrentId,
};
impl Engine {
    /// Requests blocks from a peer up to its pipeline size.
    pub(super) fn fill_requests(&mut self, conn: ConnId, now: Instant) {
        let cap = self.config.max_pipeline;
        // The download limit's say: how many blocks may be asked for now.
        let allowed = self.bandwidth.down.blocks(now);
        let mut picked = std::mem::take(&mut self.scratch);
        let Some((p, t)) = self.both(conn) else {
            self.scratch = picked;
            return;
        };
        if p.phase != Phase::Active || p.peer_choking || !p.am_interested {
            self.scratch = picked;
            return;
        }
        // A snubbed peer takes no endgame duplicates: it would hold the last blocks'
        // duplicate slots and stall the end of the download.
        if p.snubbed && t.picker.in_endgame() {
            self.scratch = picked;
            return;
        }
        // A snubbed peer keeps one request going, to notice when it recovers.
        let want = if p.snubbed {
            1
        } else {
            p.pipeline.min(cap) as usize
        };
        if p.requests.len() >= want {
            self.scratch = picked;
            return;
        }
        let wanted = (want - p.requests.len()) as u32;
        if allowed == 0 {
            self.scratch = picked;
            self.wait_for_bandwidth(Direction::Down, Waiter::Conn(conn), now);
            return;
        }
        picked.clear();
        let was_idle = p.requests.is_empty();
        let asked = wanted.min(allowed);
        t.picker.pick(p.key, asked, &mut picked);
        let mut bytes = 0u64;
        for block in &picked {
            bytes += u64::from(block.length);
            consistent(&mut t.faults, t.picker.mark_requested(p.key, *block));
            p.requests.push_back(Outstanding {
                block: *block,
                sent_at: now,
            });
            p.send(&Message::Request(*block));
        }
        let armed = was_idle && !picked.is_empty();
        // Held back by the limit alone (the picker gave all it was asked for): wait for
        // more credit.
        let held_back = asked < wanted && picked.len() == asked as usize;
        if !picked.is_empty() {
            p.last_sent = now;
            self.bandwidth.down.charge(bytes);
            self.mark_dirty(conn);
        }
        self.scratch = picked;
        if held_back {
            self.wait_for_bandwidth(Direction::Down, Waiter::Conn(conn), now);
        }
        if armed {
            // The one deadline a message moves earlier: the first request's timeout.
            let limit = self.stall_limit(conn);
            let at = Limits::of(&self.config).request_deadline(now, limit);
            self.arm_conn(conn, at);
        }
    }

    pub(super) fn on_piece(
        &mut self,
        conn: ConnId,
        piece: PieceIndex,
        begin: u32,
        data: Bytes,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let cap = self.config.max_pipeline;
        let (p, t) = self.both(conn).ok_or(CloseReason::Remote)?;
        let block = BlockRequest {
            piece,
            begin,
            length: data.len() as u32,
        };
        let Some(index) = t.store.layout().block_index(&block) else {
            return Err(CloseReason::Protocol(ProtocolError::NoSuchBlock(block)));
        };
        let Some(at) = p.requests.iter().position(|o| o.block == block) else {
            // Not asked for (or given up on after a timeout or cancel): ignore it. A peer
            // may legally send a block it had queued before our cancel arrived.
            return Ok(());
        };
        // How long this peer made us wait, as the stall check measures it.
        let waited = p
            .requests
            .front()
            .map(|o| now.saturating_duration_since(o.sent_at.max(p.last_block)));
        p.requests.remove(at);
        if let Some(waited) = waited {
            t.note_block_wait(waited);
        }
        // Rates are folded once a second as blocks come, and the pipeline trimmed to what
        // the rate then justifies.
        if p.down.tick_if_due(now, TICK) {
            p.trim_pipeline(cap);
        }
        p.down.add(block.length.into());
        p.last_block = now;
        p.snubbed = false;
        p.grow_pipeline(cap);
        t.down.add(block.length.into());
        let Ok(received) = t.picker.block_received(p.key, block) else {
            return Ok(());
        };
        if received.duplicate {
            // Already had it (an endgame duplicate that crossed our cancel).
            return Ok(());
        }
        t.blame.received(piece.0, index, p.addr.ip(), &data);
        *t.pending_writes.entry(piece.0).or_default() += 1;
        if received.piece_complete {
            t.awaiting_hash.insert(piece.0);
        }
        let id = p.torrent.ok_or(CloseReason::Remote)?;
        self.outputs.push_back(Output::WriteBlock {
            torrent: id,
            block,
            data,
        });
        for (other, dup) in received.cancel {
            let other_conn = self.conn_of_key(id, other);
            if let Some(o) = other_conn.and_then(|c| self.peer_mut(c)) {
                if let Some(at) = o.requests.iter().position(|r| r.block == dup) {
                    o.requests.remove(at);
                    o.send(&Message::Cancel(dup));
                }
            }
            if let Some(c) = other_conn {
                self.mark_dirty(c);
            }
        }
        Ok(())
    }

    pub(super) fn on_request(
        &mut self,
        conn: ConnId,
        block: BlockRequest,
    ) -> Result<(), CloseReason> {
        let max_queue = self.config.max_serve_queue;
        let (p, t) = self.both(conn).ok_or(CloseReason::Remote)?;
        // Any range inside a piece is served (the wire decoder already bounds its length);
        // only one outside the piece breaks the protocol.
        let piece_size = t.store.layout().piece_size(block.piece);
        let inside = block.piece.0 < t.meta.info.piece_count()
            && u64::from(block.begin) + u64::from(block.length) <= u64::from(piece_size);
        if !inside {
            return Err(CloseReason::Protocol(ProtocolError::OutsidePiece(block)));
        }
        let allowed = !p.am_choking;
        let have = t.store.is_verified(block.piece);
        // A piece the peer said it has is not sent again: asking for it is a flood's
        // doing, not a download's (a peer's `have` travels before any later request of
        // its on the same stream, so no honest peer crosses this).
        let theirs = t.picker.peer_has(p.key, block.piece);
        if !allowed || !have || theirs || p.serve_queue.len() >= max_queue {
            // Choked peers' requests are dropped (BEP 3) or rejected (BEP 6).
            if p.fast {
                p.send(&Message::Reject(block));
            }
            return Ok(());
        }
        p.serve_queue.push(block);
        Ok(())
    }

    /// Asks the runtime to read queued blocks while the connection has room (and the
    /// upload limit has credit).
    pub(super) fn pump_reads(&mut self, conn: ConnId, now: Instant) {
        let max_reads = self.config.max_reads_per_peer;
        let send_buffer = self.config.send_buffer;
        let Some(p) = peer_in(&mut self.slots, conn) else {
            return;
        };
        let Some(id) = p.torrent else {
            return;
        };
        let mut starved = false;
        // The queue first: it is usually empty, and `reading` lies on a colder line.
        // Blocks being read count at their real length: requests of up to 128 KiB are
        // served, not only 16 KiB ones.
        let mut reading_bytes: usize = p.reading.iter().map(|(b, _)| b.length as usize).sum();
        while let Some(block) = p.serve_queue.front() {
            if p.reading.len() >= max_reads || p.unsent + reading_bytes >= send_buffer {
                break;
            }
            if !self.bandwidth.up.open(now) {
                starved = true;
                break;
            }
            self.bandwidth.up.charge(block.length.into());
            p.serve_queue.pop_front();
            p.reading.push((block, false));
            reading_bytes += block.length as usize;
            self.outputs.push_back(Output::ReadBlock {
                torrent: id,
                conn,
                block,
            });
        }
        if starved {
            self.wait_for_bandwidth(Direction::Up, Waiter::Conn(conn), now);
        }
    }

    pub(super) fn on_block_read(
        &mut self,
        id: TorrentId,
        conn: ConnId,
        block: BlockRequest,
        result: Result<Bytes, IoError>,
        now: Instant,
    ) {
        let data = match result {
            Ok(data) => data,
            Err(error) => {
                if let Some(t) = self.torrent_mut(id) {
                    t.storage_error = true;
                }
                self.outputs
                    .push_back(Output::Event(Event::StorageError { torrent: id, error }));
                return;
            }
        };
        let Some((p, t)) = self.both(conn) else {
            return;
        };
        let Some(at) = p.reading.iter().position(|(b, _)| *b == block) else {
            return;
        };
        let (_, cancelled) = p.reading.remove(at);
        if cancelled || p.am_choking || data.len() != block.length as usize {
            self.pump_reads(conn, now);
            return;
        }
        // Header into the connection's buffer, payload as its own buffer: no copy.
        encode_piece_header(block.piece, block.begin, block.length, &mut p.write_buf);
        p.up.tick_if_due(now, TICK);
        p.up.add(block.length.into());
        t.up.add(block.length.into());
        self.flush(conn);
        let data = self.seal(conn, data);
        if let Some(p) = self.peer_mut(conn) {
            p.unsent += data.len();
        }
        self.outputs.push_back(Output::Send { conn, data });
        self.pump_reads(conn, now);
    }

    pub(super) fn on_block_written(
        &mut self,
        id: TorrentId,
        block: BlockRequest,
        result: Result<(), IoError>,
    ) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        if let Err(error) = result {
            t.storage_error = true;
            // The piece cannot be trusted: fetch it again later.
            consistent(&mut t.faults, t.picker.hash_failed(block.piece));
            t.awaiting_hash.remove(&block.piece.0);
            t.pending_writes.remove(&block.piece.0);
            self.outputs
                .push_back(Output::Event(Event::StorageError { torrent: id, error }));
            return;
        }
        let piece = block.piece.0;
        let left = match t.pending_writes.get_mut(&piece) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => return,
        };
        if left == 0 {
            t.pending_writes.remove(&piece);
            if t.awaiting_hash.remove(&piece) {
                t.hashing.insert(piece);
                let expected = t.meta.info.pieces[piece as usize];
                self.outputs.push_back(Output::HashPiece {
                    torrent: id,
                    piece: PieceIndex(piece),
                    expected,
                });
            }
        }
    }

    /// Tells of hosts just banned from torrent `id` and closes their connections.
    fn banned(&mut self, id: TorrentId, hosts: Vec<IpAddr>) {
        for ip in hosts {
            self.outputs
                .push_back(Output::Event(Event::PeerBanned { torrent: id, ip }));
            let peers = self
                .torrent_mut(id)
                .map(|t| t.peers.clone())
                .unwrap_or_default();
            for conn in peers {
                if self
                    .peer(conn)
                    .is_some_and(|p| bans::host(p.addr.ip()) == ip)
                {
                    self.close(conn, CloseReason::Banned);
                }
            }
        }
    }

    /// Our storage could not give the piece back to be hashed: a fault of ours, not of
    /// its senders. It is fetched again, and the torrent stops as after a failed write.
    pub(super) fn on_piece_unreadable(&mut self, id: TorrentId, piece: PieceIndex, error: IoError) {
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        if !t.hashing.remove(&piece.0) {
            return;
        }
        t.webseeds.contributors.remove(&piece.0);
        t.blame.unread(piece.0);
        t.storage_error = true;
        consistent(&mut t.faults, t.picker.hash_failed(piece));
        t.refill_wanted = true;
        self.outputs
            .push_back(Output::Event(Event::StorageError { torrent: id, error }));
    }

    pub(super) fn on_piece_hashed(
        &mut self,
        id: TorrentId,
        piece: PieceIndex,
        ok: bool,
        now: Instant,
    ) {
        // Whether web seeds sent bytes of it: then no peer is its sole sender.
        let from_web = self
            .torrent(id)
            .is_some_and(|t| t.webseeds.contributors.contains_key(&piece.0));
        if self
            .torrent(id)
            .is_some_and(|t| t.hashing.contains(&piece.0))
        {
            self.webseeds_piece_hashed(id, piece, ok, now);
        }
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        if !t.hashing.remove(&piece.0) {
            return;
        }
        let verdict = t.blame.hashed(piece.0, ok, from_web);
        if !ok {
            consistent(&mut t.faults, t.picker.hash_failed(piece));
            // Its blocks are free again for whoever can take them.
            t.refill_wanted = true;
            let newly_banned: Vec<IpAddr> = verdict
                .ban
                .iter()
                .filter_map(|&ip| t.bans.ban(ip))
                .collect();
            self.outputs
                .push_back(Output::Event(Event::HashFailed { torrent: id, piece }));
            self.banned(id, newly_banned);
            return;
        }
        let proven: Vec<IpAddr> = verdict
            .ban
            .iter()
            .filter_map(|&ip| t.bans.ban(ip))
            .collect();
        self.banned(id, proven);
        let Some(t) = self.torrent_mut(id) else {
            return;
        };
        consistent(&mut t.faults, t.picker.piece_verified(piece));
        let files = t.store.mark_verified(piece);
        let complete = t.is_complete();
        let peers = t.peers.clone();
        self.outputs
            .push_back(Output::Event(Event::PieceVerified { torrent: id, piece }));
        for file in files {
            self.outputs
                .push_back(Output::Event(Event::FileCompleted { torrent: id, file }));
        }
        // Every active peer hears of the piece, those that have it too: what libtorrent
        // does by default (`send_redundant_have`), so a peer's view of our progress (its
        // "both seeds" check, its statistics) is right. Leaving those out was measured in
        // the simulator (about half of all `have`s are redundant there) and saves little:
        // a receiver pays per `have` in the picker either way.
        for conn in &peers {
            if let Some(p) = self.peer_mut(*conn) {
                if p.phase == Phase::Active {
                    p.send(&Message::Have(piece));
                    self.mark_dirty(*conn);
                }
            }
            self.update_interest(*conn);
        }
        if complete {
            let report = self.torrent_mut(id).is_some_and(|t| {
                let first = !t.completed_reported;
                t.completed_reported = true;
                first
            });
            if report {
                self.outputs
                    .push_back(Output::Event(Event::Completed { torrent: id }));
                if let Some(t) = self.torrent_mut(id) {
                    t.trackers.announcer.on_completed(now);
                }
                self.announce(id, now);
            }
            for conn in peers {
                self.close_if_both_seeds(conn);
            }
        } else {
            for conn in peers {
                self.fill_requests(conn, now);
            }
        }
    }
}
