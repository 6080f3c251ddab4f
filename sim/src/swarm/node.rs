//! Carrying out what a node's engine asks for: sends, closes, block reads and writes,
//! piece hashes, tracker and web requests, events; and a flooder's extra requests
//! (see [`crate::hostile`]).

use super::*;

impl Sim {
    // ---- carrying out outputs ----

    /// Carries out everything node `i` has to say, then starts the flows it fed and
    /// reschedules its timer.
    pub(super) fn drain(&mut self, i: u32) {
        self.batch += 1;
        if self.nodes[i as usize].flood.is_some() {
            self.flood(i);
        }
        let mut outs = std::mem::take(&mut self.outs);
        while let Some(e) = self.nodes[i as usize].engine.as_mut() {
            outs.extend(std::iter::from_fn(|| e.poll_output()));
            if outs.is_empty() {
                break;
            }
            self.warm_links(i, &outs);
            for out in outs.drain(..) {
                self.t.outputs += 1;
                let payload = matches!(&out, Output::Send { data, .. } if self.is_payload(data));
                self.trace.output(i, &out, payload);
                self.carry_out(i, out, payload);
            }
        }
        self.outs = outs;
        self.flush_touched(i);
        let timeout = self.nodes[i as usize]
            .engine
            .as_ref()
            .and_then(|e| e.poll_timeout());
        if let Some(t) = timeout {
            let t = self.nanos(t).max(self.now);
            let node = &mut self.nodes[i as usize];
            if node.timer != Some(t) {
                node.timer = Some(t);
                self.schedule(t, Ev::Timer(i));
            }
        }
    }

    /// A flooder's requests, at most once a second, on the connections whose handshakes
    /// are done. Called before the node's engine is drained: its streams are between two
    /// messages.
    pub(super) fn flood(&mut self, i: u32) {
        let node = &mut self.nodes[i as usize];
        let Some(flood) = node.flood.as_mut() else {
            return;
        };
        if node.state != State::Online || self.now < flood.next {
            return;
        }
        flood.next = self.now + secs(1.0);
        let conns = flood.conns.clone();
        for conn in conns {
            let Some(c) = self.conn_entry(i, conn) else {
                continue;
            };
            let data = hostile::flood_requests(
                &mut self.flood_rng,
                self.piece_count,
                self.sc.torrent.piece_length.0,
            );
            self.t.flood_requests += hostile::FLOOD_REQUESTS as u64;
            self.enqueue(
                Flow {
                    link: c.link,
                    dir: c.side,
                },
                data,
                false,
            );
        }
    }

    /// Reads the pipe of every `Send` in `outs` before any is carried out. Each is
    /// usually a cache miss (a node's connections are scattered over the link table);
    /// loads that do not depend on each other overlap, where carrying the sends out one
    /// by one would wait for each in turn.
    pub(super) fn warm_links(&self, i: u32, outs: &[Output]) {
        let mut acc = 0usize;
        for out in outs {
            if let Output::Send { conn, .. } = out {
                if let Some(c) = self.conn_entry(i, *conn) {
                    acc ^= self.net.warm(Flow {
                        link: c.link,
                        dir: c.side,
                    });
                }
            }
        }
        std::hint::black_box(acc);
    }

    /// Whether a `Send` carries block data: it is then a slice of one of the simulator's
    /// block sources (the shared zero or corrupt buffer, or the content or its corrupt
    /// copy), which the engine hands on without copying.
    pub(super) fn is_payload(&self, data: &Bytes) -> bool {
        let p = data.as_ptr() as usize;
        let within = |s: &[u8]| {
            let a = s.as_ptr() as usize;
            p >= a && p < a + s.len()
        };
        within(&ZEROS)
            || within(&CORRUPT)
            || self.content.as_ref().is_some_and(|c| within(c))
            || self.corrupt_content.as_ref().is_some_and(|c| within(c))
    }

    pub(super) fn carry_out(&mut self, i: u32, out: Output, payload: bool) {
        let now_i = self.instant(self.now);
        match out {
            Output::Connect { conn, addr } => self.connect(i, conn, addr),
            Output::Send { conn, data } => {
                let Some(c) = self.conn_entry(i, conn) else {
                    return;
                };
                let flow = Flow {
                    link: c.link,
                    dir: c.side,
                };
                if payload && self.nodes[i as usize].free_rider {
                    self.withhold(flow, data.len());
                    return;
                }
                self.enqueue(flow, data, payload);
            }
            Output::Close { conn } => {
                if let Some(c) = self.conn_entry(i, conn) {
                    self.close_end(c.link, c.side);
                }
            }
            Output::ReadBlock {
                torrent,
                conn,
                block,
            } => {
                let data = self.read_block(i, block);
                self.t.calls.block_read += 1;
                let e = self.nodes[i as usize].engine.as_mut().unwrap();
                e.handle(
                    Input::BlockRead {
                        torrent,
                        conn,
                        block,
                        result: Ok(data),
                    },
                    now_i,
                );
            }
            Output::WriteBlock {
                torrent,
                block,
                data,
            } => {
                let node = &mut self.nodes[i as usize];
                if self.content.is_some() {
                    let off = u64::from(block.piece.0) * self.sc.torrent.piece_length.0
                        + u64::from(block.begin);
                    node.data[off as usize..off as usize + data.len()].copy_from_slice(&data);
                } else if data.first().is_some_and(|&b| b != 0) {
                    node.tainted.set(block.piece.0);
                }
                if self.content.is_none() {
                    self.recycle(data);
                } else {
                    drop(data);
                }
                self.t.calls.block_written += 1;
                let e = self.nodes[i as usize].engine.as_mut().unwrap();
                e.handle(
                    Input::BlockWritten {
                        torrent,
                        block,
                        result: Ok(()),
                    },
                    now_i,
                );
            }
            Output::HashPiece {
                torrent,
                piece,
                expected,
            } => {
                let ok = self.check_piece(i, piece, &expected);
                self.t.calls.piece_hashed += 1;
                let e = self.nodes[i as usize].engine.as_mut().unwrap();
                e.handle(Input::PieceHashed { torrent, piece, ok }, now_i);
            }
            Output::TrackerHttp {
                torrent,
                id,
                request,
                ..
            } => {
                let from = self.nodes[i as usize].addr.ip();
                let response = self.tracker.http(from, &request, now_i);
                self.t.announces += 1;
                let slot = match self.free_answers.pop() {
                    Some(s) => {
                        self.answers[s as usize] = Some((i, torrent, id, response));
                        s
                    }
                    None => {
                        self.answers.push(Some((i, torrent, id, response)));
                        (self.answers.len() - 1) as u32
                    }
                };
                let rtt = secs(self.sc.network.tracker_rtt_ms / 1000.0);
                self.schedule(self.now + rtt, Ev::TrackerAnswer(slot));
            }
            Output::WebSeedRequest {
                torrent,
                id,
                request,
                ..
            } => self.web_request(i, torrent, id, &request),
            // Datagrams (the DHT's): to the node at that address, a link's latency later.
            Output::UdpSend { to, data } => self.datagram(i, to, data),
            Output::Event(e) => self.on_event(i, e),
            // Outputs the simulator does not model yet go nowhere.
            _ => {}
        }
    }

    pub(super) fn read_block(&mut self, i: u32, block: BlockRequest) -> Bytes {
        let node = &self.nodes[i as usize];
        let len = block.length as usize;
        match &self.content {
            None => {
                let src: &'static [u8] = if node.corrupt { &CORRUPT } else { &ZEROS };
                Bytes::from_static(&src[..len.min(src.len())])
            }
            Some(content) => {
                let off = (u64::from(block.piece.0) * self.sc.torrent.piece_length.0
                    + u64::from(block.begin)) as usize;
                let end = (off + len).min(content.len());
                if node.corrupt {
                    let corrupt = self
                        .corrupt_content
                        .as_ref()
                        .expect("made for corrupt nodes");
                    corrupt.slice(off..end)
                } else {
                    // A verified piece holds exactly the content: serve the shared copy.
                    content.slice(off..end)
                }
            }
        }
    }

    pub(super) fn check_piece(&mut self, i: u32, piece: PieceIndex, expected: &[u8; 20]) -> bool {
        let node = &mut self.nodes[i as usize];
        match &self.content {
            None => !node.tainted.clear(piece.0),
            Some(_) => {
                let pl = self.sc.torrent.piece_length.0;
                let start = (u64::from(piece.0) * pl) as usize;
                let end = (start + pl as usize).min(node.data.len());
                let digest: [u8; 20] = Sha1::digest(&node.data[start..end]).into();
                &digest == expected
            }
        }
    }

    pub(super) fn on_event(&mut self, i: u32, e: Event) {
        let now = self.now;
        match e {
            Event::MetadataReceived { torrent, .. } => {
                // A runtime would open storage here; the simulator's is in memory.
                let at = self.instant(now);
                let node = &mut self.nodes[i as usize];
                node.r.metadata_s = Some(as_secs(now));
                if let Some(e) = node.engine.as_mut() {
                    e.attach_metainfo(torrent, TorrentOptions::default(), at)
                        .expect("the simulator's torrent is valid");
                }
            }
            Event::PieceVerified { piece, .. } => {
                let node = &mut self.nodes[i as usize];
                if node.have.set(piece.0) {
                    self.avail[piece.0 as usize] += 1;
                    let n = node.have.count_ones();
                    let p = self.piece_count;
                    if n + 1 == p {
                        node.r.second_to_last_piece_s = Some(as_secs(now));
                    }
                    if node.r.p95_s.is_none() && u64::from(n) * 20 >= u64::from(p) * 19 {
                        node.r.p95_s = Some(as_secs(now));
                    }
                    if n == 1 {
                        node.r.first_piece_s = Some(as_secs(now));
                    }
                }
            }
            Event::Completed { .. } => {
                let node = &mut self.nodes[i as usize];
                if node.r.completed_s.is_none() && !node.seed {
                    node.r.completed_s = Some(as_secs(now));
                    node.r.payload_up_leeching = Some(node.r.payload_up);
                    self.completed += 1;
                    self.pending_leechers -= 1;
                    let g = &self.sc.groups[node.group as usize];
                    if let Some(st) = g.seed_time_s {
                        self.schedule(now + secs(st), Ev::Depart(i));
                    }
                    self.check_done();
                }
            }
            Event::HashFailed { .. } => {
                self.nodes[i as usize].r.hash_failures += 1;
                self.t.hash_failures += 1;
            }
            Event::InternalError { refused, .. } => {
                self.t.internal_errors += u64::from(refused);
            }
            Event::PeerBanned { ip, .. } => {
                self.nodes[i as usize].r.banned_hosts.push(ip);
                self.nodes[i as usize].r.bans += 1;
                self.t.bans += 1;
            }
            Event::PeerConnected { conn, .. } => {
                self.t.connections += 1;
                if let Some(flood) = self.nodes[i as usize].flood.as_mut() {
                    flood.connected(conn);
                }
            }
            Event::PeerClosed { conn, reason, .. } => {
                *self.t.closes.entry(reason.to_string()).or_default() += 1;
                if let Some(flood) = self.nodes[i as usize].flood.as_mut() {
                    flood.closed(conn);
                }
            }
            Event::Progress { stats, .. } => {
                let r = &mut self.nodes[i as usize].r;
                r.engine_downloaded = stats.downloaded;
                r.engine_uploaded = stats.uploaded;
            }
            _ => {}
        }
    }

    pub(super) fn conn_entry(&self, i: u32, conn: ConnId) -> Option<ConnEntry> {
        if let Some((node, c)) = self.replying {
            if node == i && c.conn == conn {
                return Some(c);
            }
        }
        let c = (*self.nodes[i as usize].conns.get(conn.key().0 as usize)?)?;
        (c.conn == conn).then_some(c)
    }

    pub(super) fn set_conn(&mut self, i: u32, conn: ConnId, entry: Option<ConnEntry>) {
        if self
            .replying
            .is_some_and(|(node, c)| node == i && c.conn == conn)
        {
            self.replying = None;
        }
        let conns = &mut self.nodes[i as usize].conns;
        let k = conn.key().0 as usize;
        if conns.len() <= k {
            conns.resize(k + 1, None);
        }
        conns[k] = entry;
    }

    /// Node `i` sends a datagram to `to`: it reaches the node there (if any) after the
    /// latency between them; one for nobody is lost, as on a network.
    pub(super) fn datagram(&mut self, i: u32, to: SocketAddr, data: Vec<u8>) {
        self.t.datagrams += 1;
        let target = self.sybil_addrs.get(&to).copied().or_else(|| {
            node_of_ip(to.ip())
                .filter(|&j| (j as usize) < self.nodes.len() && to.port() == LISTEN_PORT)
        });
        let Some(j) = target else {
            return;
        };
        let from = self.nodes[i as usize].addr;
        let entry = Some((j, from, data));
        let slot = match self.free_datagrams.pop() {
            Some(s) => {
                self.datagrams[s as usize] = entry;
                s
            }
            None => {
                self.datagrams.push(entry);
                (self.datagrams.len() - 1) as u32
            }
        };
        let at = self.now + self.latency(i, j);
        self.schedule(at, Ev::Datagram(slot));
    }
}
