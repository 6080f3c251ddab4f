//! Connections and the bytes on them: dialling, accepting, closing, and the flows of
//! units through the [network model](crate::net) from a sender's pipe to the receiver's
//! engine.

use super::*;

impl Sim {
    pub(super) fn latency(&self, a: u32, b: u32) -> Nanos {
        let ga = &self.sc.groups[self.nodes[a as usize].group as usize];
        let gb = &self.sc.groups[self.nodes[b as usize].group as usize];
        let mut ms = ga.latency_ms + gb.latency_ms;
        let jitter = self.sc.network.jitter_ms;
        if jitter > 0.0 {
            let (lo, hi) = (a.min(b), a.max(b));
            let h = mix(self.sc.seed ^ (u64::from(lo) << 32 | u64::from(hi)));
            ms += jitter * ((h >> 11) as f64 / (1u64 << 53) as f64);
        }
        secs(ms / 1000.0)
    }

    pub(super) fn connect(&mut self, i: u32, conn: ConnId, addr: SocketAddr) {
        let target = self.sybil_addrs.get(&addr).copied().or_else(|| {
            node_of_ip(addr.ip())
                .filter(|&j| (j as usize) < self.nodes.len() && addr.port() == LISTEN_PORT)
        });
        let (j, lat) = match target {
            Some(j) => (j, self.latency(i, j)),
            // Nobody there: the network answers with a reset after a nominal delay.
            None => (i, secs(0.05)),
        };
        let link = self.net.open(i, conn, j, lat);
        self.set_conn(
            i,
            conn,
            Some(ConnEntry {
                conn,
                link,
                side: 0,
            }),
        );
        let gen = self.net.link(link).gen;
        if target.is_none() || j == i {
            self.schedule(self.now + 2 * lat, Ev::Refused { link, gen });
        } else {
            self.schedule(self.now + lat, Ev::Syn { link, gen });
        }
    }

    pub(super) fn syn(&mut self, link: LinkId, gen: u32) {
        let l = self.net.link(link);
        if !l.live || l.gen != gen || !l.ends[0].open {
            return;
        }
        let (i, j, lat) = (l.ends[0].node, l.ends[1].node, l.latency);
        let conn_i = l.ends[0].conn.unwrap();
        let target = &self.nodes[j as usize];
        if target.state == State::Online && target.nat {
            // Behind a NAT: the SYN is dropped and the dialler's engine times out.
            self.t.nat_drops += 1;
            return;
        }
        let fail = self.sc.network.connect_failure > 0.0
            && unit_f64(&mut self.rng) < self.sc.network.connect_failure;
        let accepted = if target.state == State::Online && !fail {
            let from = SocketAddr::new(
                self.nodes[i as usize].addr.ip(),
                10_000 + (conn_i.key().0 % 50_000) as u16,
            );
            let now = self.instant(self.now);
            self.t.calls.accept += 1;
            self.nodes[j as usize]
                .engine
                .as_mut()
                .unwrap()
                .accept(from, now)
        } else {
            None
        };
        match accepted {
            Some(rc) => {
                let l = self.net.link_mut(link);
                l.ends[1].conn = Some(rc);
                l.ends[1].open = true;
                self.set_conn(
                    j,
                    rc,
                    Some(ConnEntry {
                        conn: rc,
                        link,
                        side: 1,
                    }),
                );
                self.drain(j);
                self.schedule(self.now + lat, Ev::Connected { link, gen });
            }
            None => {
                self.t.refused += 1;
                self.schedule(self.now + lat, Ev::Refused { link, gen });
            }
        }
    }

    /// End `side` of `link` is gone from its node (the node closed it, learnt it closed,
    /// or left): its mapping goes, its unsent bytes are dropped, its flow stops.
    pub(super) fn detach(&mut self, link: LinkId, side: u8) {
        let l = self.net.link_mut(link);
        let end = l.ends[side as usize];
        l.ends[side as usize].open = false;
        if let Some(conn) = end.conn {
            if self
                .conn_entry(end.node, conn)
                .is_some_and(|c| c.link == link)
            {
                self.set_conn(end.node, conn, None);
            }
        }
        let flow = Flow { link, dir: side };
        let p = self.net.pipe(flow);
        p.queue.clear();
        p.queued = 0;
        if p.touched > 0 {
            self.touched[p.touched as usize - 1].1 = None;
        }
        self.net.stop(flow, self.now);
        // The other flows of both nodes changed rate: their new ends are due now.
        self.schedule_wakeups();
    }

    /// Node closes its end: detach it and tell the other end, behind the data already
    /// travelling to it.
    pub(super) fn close_end(&mut self, link: LinkId, side: u8) {
        let l = self.net.link(link);
        if !l.live || !l.ends[side as usize].open {
            return;
        }
        let gen = l.gen;
        let other = 1 - side;
        let at = (self.now + l.latency).max(l.pipes[side as usize].last_arrival);
        let other_open = l.ends[other as usize].open;
        self.detach(link, side);
        if other_open {
            self.schedule(
                at,
                Ev::Fin {
                    link,
                    gen,
                    to: other,
                },
            );
        }
        self.net.maybe_free(link);
    }

    // ---- bytes on the wire ----

    pub(super) fn enqueue(&mut self, flow: Flow, data: Bytes, payload: bool) {
        let batch = self.batch;
        let len = data.len() as u32;
        let p = self.net.pipe(flow);
        p.queued += len as usize;
        let k = match p.touched {
            0 => {
                self.touched.push((flow, None));
                p.touched = self.touched.len() as u32;
                self.touched.len() - 1
            }
            k => k as usize - 1,
        };
        let scratch = &mut self.touched[k].1;
        if scratch.is_some() || (!payload && !p.active && p.queue.is_empty()) {
            let unit = scratch.get_or_insert_with(|| Unit {
                batch,
                ..Unit::default()
            });
            if !payload {
                unit.len += len;
                unit.head.extend_from_slice(&data);
                return;
            }
            // A block after them: they travel with it, through the pipe's queue.
            p.queue.extend(scratch.take());
        }
        let head_busy = p.busy && p.queue.len() == 1;
        let tail = match p.queue.back_mut() {
            Some(tail) if tail.batch == batch && tail.block.is_none() && !head_busy => tail,
            _ => {
                p.queue.push_back(Unit {
                    batch,
                    ..Unit::default()
                });
                p.queue.back_mut().expect("just pushed")
            }
        };
        tail.len += len;
        if payload {
            tail.payload = len;
            tail.block = Some(data);
        } else {
            tail.head.extend_from_slice(&data);
        }
    }

    /// A free rider's block leaves nothing on the wire: drop it and the piece header
    /// just before it (which would otherwise announce data that never comes).
    pub(super) fn withhold(&mut self, flow: Flow, len: usize) {
        self.t.withheld_payload += len as u64;
        let batch = self.batch;
        let p = self.net.pipe(flow);
        let head_busy = p.busy && p.queue.len() == 1;
        let scratch = match p.touched {
            0 => None,
            k => self.touched[k as usize - 1].1.as_mut(),
        };
        let (tail, in_queue) = match scratch {
            Some(unit) => (unit, false),
            None => match p
                .queue
                .back_mut()
                .filter(|t| t.batch == batch && !head_busy)
            {
                Some(unit) => (unit, true),
                None => return,
            },
        };
        let n = tail.head.len();
        if n < PIECE_HEADER_LEN {
            return;
        }
        debug_assert_eq!(tail.head[n - 9], 7, "a piece header ends the unit");
        tail.head.truncate(n - PIECE_HEADER_LEN);
        tail.len -= PIECE_HEADER_LEN as u32;
        p.queued -= PIECE_HEADER_LEN;
        if tail.head.is_empty() {
            if in_queue {
                p.queue.pop_back();
            } else {
                self.touched[p.touched as usize - 1].1 = None;
            }
        }
    }

    /// After node `i`'s drain: pipes that got bytes and were idle start a flow, or, with
    /// small messages only, send them at once.
    pub(super) fn flush_touched(&mut self, i: u32) {
        let mut touched = std::mem::take(&mut self.touched);
        for (flow, scratch) in touched.drain(..) {
            let p = self.net.pipe(flow);
            p.touched = 0;
            if let Some(unit) = scratch {
                self.express(i, flow, Some(unit));
                continue;
            }
            if p.active || p.queue.is_empty() {
                continue;
            }
            if p.queue.iter().all(|u| u.payload == 0) {
                self.express(i, flow, None);
            } else {
                self.net.start_head(flow, self.now);
                self.schedule_wakeups();
            }
        }
        self.touched = touched;
    }

    /// Sends an idle pipe's small messages without a flow: they arrive after the latency
    /// plus their serialisation at the sender's (node `i`'s) full uplink. `first` is the
    /// drain's unit for a pipe that had nothing queued (kept out of the queue: one cache
    /// miss less).
    pub(super) fn express(&mut self, i: u32, flow: Flow, mut first: Option<Unit>) {
        let up = self.net.nodes[i as usize].up;
        let lat = self.net.link(flow.link).latency;
        let now = self.now;
        let mut sent = 0;
        while let Some(unit) = first
            .take()
            .or_else(|| self.net.pipe(flow).queue.pop_front())
        {
            let len = unit.len;
            let p = self.net.pipe(flow);
            p.queued -= len as usize;
            p.owed_sent += len as usize;
            let ser = (f64::from(len) / up).ceil() as Nanos;
            self.dispatch_unit(flow, now + ser + lat, unit);
            sent += u64::from(len);
        }
        let p = self.net.pipe(flow);
        if p.owed_sent + p.queued + ACK_MARGIN >= self.send_buffer {
            // Only small messages, megabytes of them: rare enough for an event of its own.
            self.schedule(self.now, Ev::Ack(flow));
        }
        self.in_flight_bytes += sent;
        self.nodes[i as usize].r.bytes_up += sent;
    }

    /// Sends a unit through the uplink on its way: it arrives at `at`, or after the unit
    /// sent before it on the pipe.
    pub(super) fn dispatch_unit(&mut self, flow: Flow, at: Nanos, unit: Unit) {
        let p = self.net.pipe(flow);
        let at = at.max(p.last_arrival);
        p.last_arrival = at;
        p.travelling += 1;
        let small = match Small::of(&unit) {
            Some(small) => small,
            None => {
                p.in_flight.push_back((at, unit));
                Small::NONE
            }
        };
        self.schedule(at, Ev::Deliver(flow, small));
    }

    /// Tells the sender's engine how much of what it handed over has left, if it needs to
    /// know: the engine uses `Sent` only to stop reading blocks for a connection whose
    /// unsent bytes pass its `send_buffer`. Reporting each unit would cost an engine call
    /// per block; reporting when the engine's count nears that bound changes nothing it
    /// does. (It models a socket buffer as large as the engine allows.)
    pub(super) fn ack(&mut self, flow: Flow, force: bool) {
        let l = self.net.link(flow.link);
        if !l.live {
            return;
        }
        let end = l.ends[flow.dir as usize];
        let p = &l.pipes[flow.dir as usize];
        if p.owed_sent == 0 || !end.open {
            return;
        }
        if force || p.owed_sent + p.queued + ACK_MARGIN >= self.send_buffer {
            let bytes = std::mem::take(&mut self.net.pipe(flow).owed_sent);
            self.call(
                end.node,
                Input::Sent {
                    conn: end.conn.unwrap(),
                    bytes,
                },
            );
        }
    }

    pub(super) fn schedule_wakeups(&mut self) {
        let mut wakeups = std::mem::take(&mut self.net.wakeups);
        for (at, flow, version) in wakeups.drain(..) {
            self.schedule(at, Ev::PipeDone { flow, version });
        }
        self.net.wakeups = wakeups;
    }

    pub(super) fn pipe_done(&mut self, flow: Flow, version: u32) {
        let l = self.net.link(flow.link);
        let p = &l.pipes[flow.dir as usize];
        if !l.live || p.version != version || !p.busy {
            return;
        }
        let lat = l.latency;
        let (i, _) = self.net.ends_of(flow);
        let unit = self.net.finish_head(flow);
        let (len, payload) = (unit.len, unit.payload);
        self.net.pipe(flow).owed_sent += len as usize;
        self.dispatch_unit(flow, self.now + lat, unit);
        self.in_flight_bytes += u64::from(len);
        self.in_flight_payload += u64::from(payload);
        let r = &mut self.nodes[i as usize].r;
        r.bytes_up += u64::from(len);
        r.payload_up += u64::from(payload);
        self.payload_sent += u64::from(payload);
        self.ack(flow, false);
        // The engine may have queued more on this pipe, or closed it.
        let p = self.net.pipe(flow);
        if p.active && !p.busy {
            if p.queue.is_empty() {
                self.net.stop(flow, self.now);
            } else {
                self.net.start_head(flow, self.now);
            }
            self.schedule_wakeups();
        }
    }

    pub(super) fn deliver(&mut self, flow: Flow, small: Small) {
        let l = self.net.link_mut(flow.link);
        let to = l.ends[1 - flow.dir as usize];
        let p = &mut l.pipes[flow.dir as usize];
        p.travelling -= 1;
        let unit = if small.len > 0 {
            None
        } else {
            let (at, unit) = p.in_flight.pop_front().expect("a delivery has its unit");
            debug_assert_eq!(at, self.now);
            Some(unit)
        };
        let (len, payload) = match &unit {
            Some(u) => (u.len, u.payload),
            None => (u32::from(small.len), 0),
        };
        self.in_flight_bytes -= u64::from(len);
        self.in_flight_payload -= u64::from(payload);
        let r = &mut self.nodes[to.node as usize].r;
        r.bytes_down += u64::from(len);
        r.payload_down += u64::from(payload);
        if to.open && self.nodes[to.node as usize].state == State::Online {
            let conn = to.conn.unwrap();
            let entry = ConnEntry {
                conn,
                link: flow.link,
                side: 1 - flow.dir,
            };
            self.replying = Some((to.node, entry));
            match unit {
                Some(unit) if payload > 0 && self.content.is_none() => {
                    self.deliver_block(to.node, conn, unit)
                }
                unit => {
                    let data = match unit {
                        Some(unit) => unit.into_bytes_mut(),
                        None => BytesMut::from(&small.bytes[..usize::from(small.len)]),
                    };
                    self.call(to.node, Input::Received { conn, data });
                }
            }
            self.replying = None;
        } else {
            self.t.payload_to_closed += u64::from(payload);
        }
        self.net.maybe_free(flow.link);
    }

    /// Hands a unit ending in a block to its receiver as two reads: the messages before
    /// the block's data, then the data in a buffer of the pool (the same bytes: zeros, or
    /// the corrupt byte). The engine takes the data without copying it (the header ended
    /// the first read), and the buffer comes back to the pool with the engine's write.
    pub(super) fn deliver_block(&mut self, node: u32, conn: ConnId, mut unit: Unit) {
        let block = unit.block.take().expect("a unit with a payload ends in it");
        let head = BytesMut::from(&unit.head[..]);
        let fill = usize::from(block.first().is_some_and(|&b| b != 0));
        let pooled = if block.len() == BLOCK_SIZE as usize {
            self.pools[fill].pop()
        } else {
            None
        };
        let data = pooled.unwrap_or_else(|| BytesMut::from(&block[..]));
        let now = self.instant(self.now);
        let Some(e) = self.nodes[node as usize].engine.as_mut() else {
            return;
        };
        for data in [head, data] {
            if data.is_empty() {
                continue;
            }
            let input = Input::Received { conn, data };
            self.t.calls.count(&input);
            e.handle(input, now);
        }
        self.drain(node);
    }

    /// Takes a written block's buffer back into the pool if nothing else holds it.
    pub(super) fn recycle(&mut self, data: Bytes) {
        if data.len() != BLOCK_SIZE as usize {
            return;
        }
        let fill = usize::from(data[0] != 0);
        if self.pools[fill].len() < POOL_MAX {
            if let Ok(buf) = data.try_into_mut() {
                self.pools[fill].push(buf);
            }
        }
    }
}
