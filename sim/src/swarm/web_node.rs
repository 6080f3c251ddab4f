//! The simulator's side of its web server ([`crate::web`]): requests from engines in,
//! answers out a latency after their last byte left the server.

use shoal_core::engine::{Input, TorrentId, WebSeedRequestId};

use super::{Ev, Sim, State};
use crate::web::WebJob;

impl Sim {
    /// Node `i` asks the web server for a range: core's server answer to the request,
    /// sent at the server's share of its uplink.
    pub(super) fn web_request(
        &mut self,
        i: u32,
        torrent: TorrentId,
        id: WebSeedRequestId,
        request: &[u8],
    ) {
        use shoal_core::tracker::server::{parse_request_head, MAX_REQUEST_HEAD};
        let Some(web) = self.web.as_mut() else {
            return;
        };
        // The engine's own request: it parses (anything else would be a bug to show).
        let head = parse_request_head(request, MAX_REQUEST_HEAD)
            .ok()
            .flatten()
            .expect("an engine's web seed request parses");
        let answer = shoal_core::webseed::serve::answer_file(
            &head,
            self.sc.torrent.size.0,
            None,
            "application/octet-stream",
        );
        let cap = self.sc.groups[self.nodes[i as usize].group as usize]
            .download
            .0;
        let job = WebJob {
            node: i,
            torrent,
            id,
            head: answer.head,
            body: answer.body,
        };
        if let Some((at, version)) = web.start(self.now, job, cap) {
            self.schedule(at, Ev::WebDone(version));
        }
    }

    /// The web server's answers that are through travel to their nodes.
    pub(super) fn web_done(&mut self, version: u32) {
        let Some(web) = self.web.as_mut() else {
            return;
        };
        let (done, next) = web.due(self.now, version);
        let latency = web.latency;
        if let Some((at, v)) = next {
            self.schedule(at, Ev::WebDone(v));
        }
        for job in done {
            let mut bytes = job.head;
            if let Some(b) = job.body {
                match &self.content {
                    Some(c) => {
                        bytes.extend_from_slice(&c[b.offset as usize..(b.offset + b.len) as usize])
                    }
                    None => bytes.resize(bytes.len() + b.len as usize, 0),
                }
            }
            let answer = (job.node, job.torrent, job.id, bytes);
            let slot = match self.free_web_answers.pop() {
                Some(s) => {
                    self.web_answers[s as usize] = Some(answer);
                    s
                }
                None => {
                    self.web_answers.push(Some(answer));
                    (self.web_answers.len() - 1) as u32
                }
            };
            self.schedule(self.now + latency, Ev::WebAnswer(slot));
        }
    }

    /// A web answer arrives: its engine reads it, if its node is still there.
    pub(super) fn web_answer(&mut self, slot: u32) {
        let (i, torrent, id, bytes) = self.web_answers[slot as usize].take().unwrap();
        self.free_web_answers.push(slot);
        if self.nodes[i as usize].state == State::Online {
            self.call(
                i,
                Input::WebSeedResponse {
                    torrent,
                    id,
                    result: Ok(bytes),
                },
            );
        }
    }
}
