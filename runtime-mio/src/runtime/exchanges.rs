//! The runtime's HTTP exchanges: tracker announces and web seed requests, each in a slot
//! of `Runtime::https` with a deadline, and the pool of idle web seed connections they
//! take from and give back to (see [`crate::http`]).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::{Interest, Token};
use shoal_core::engine::{Input, IoError, TorrentId};
use shoal_core::tracker::{Scheme, TrackerUrl};
use shoal_io::http_pool::ServerKey;

use super::{Http, Runtime, FIRST_HTTP, HTTP_TIMEOUT};
use crate::http::{Exchange, Finished, Purpose, MAX_RESPONSE};
use crate::worker::Job;

impl Runtime {
    pub(super) fn start_http(
        &mut self,
        torrent: TorrentId,
        id: Purpose,
        url: TrackerUrl,
        request: Vec<u8>,
        max_body: Option<u64>,
    ) {
        let slot = match self.https.iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                self.https.push(None);
                self.https.len() - 1
            }
        };
        let ip = url.ip();
        let (host, port) = (url.host().to_string(), url.port());
        // A web seed's request goes on an idle connection to its server if there is one.
        let idle = match max_body {
            Some(_) => self.http_pool.take(&ServerKey::of(&url), Instant::now()),
            None => None,
        };
        self.https[slot] = Some(Http {
            torrent,
            id,
            url,
            request,
            max_body,
            exchange: None,
            deadline: Instant::now() + HTTP_TIMEOUT,
            parked: None,
        });
        if let Some(idle) = idle {
            self.reuse_http(slot, idle);
            return;
        }
        match ip {
            Some(ip) => self.connect_http(slot, SocketAddr::new(ip, port)),
            // Name lookups block: a worker does them.
            None => self.pool.submit(Job::Resolve {
                torrent,
                id,
                host,
                port,
            }),
        }
    }

    pub(super) fn resolved(
        &mut self,
        torrent: TorrentId,
        id: Purpose,
        result: Result<SocketAddr, IoError>,
    ) {
        let Some(slot) = self.https.iter().position(|h| {
            h.as_ref()
                .is_some_and(|h| h.torrent == torrent && h.id == id)
        }) else {
            return;
        };
        match result {
            Ok(addr) => self.connect_http(slot, addr),
            Err(e) => self.finish_http(slot, Err(e)),
        }
    }

    fn connect_http(&mut self, slot: usize, addr: SocketAddr) {
        let Some(h) = self.https[slot].as_mut() else {
            return;
        };
        let tls_host = (h.url.scheme() == Scheme::Https).then(|| h.url.host().to_string());
        let (framer, limit) = match h.max_body {
            // A web seed's answer ends where the core's reader says, not at the close.
            Some(max_body) => (
                Some(shoal_core::webseed::answer_reader(max_body)),
                web_seed_limit(max_body),
            ),
            None => (None, MAX_RESPONSE),
        };
        let request = std::mem::take(&mut h.request);
        match Exchange::start(addr, tls_host.as_deref(), request, framer, limit) {
            Ok(exchange) => self.install_exchange(slot, exchange),
            Err(e) => self.finish_http(slot, Err(e)),
        }
    }

    /// Sends slot `slot`'s request on an idle connection from the pool.
    fn reuse_http(&mut self, slot: usize, idle: crate::http::Idle) {
        let Some(h) = self.https[slot].as_mut() else {
            return;
        };
        let max_body = h.max_body.unwrap_or(0);
        let request = std::mem::take(&mut h.request);
        let exchange = Exchange::reuse(
            idle,
            request,
            shoal_core::webseed::answer_reader(max_body),
            web_seed_limit(max_body),
        );
        self.install_exchange(slot, exchange);
    }

    /// Registers `exchange`'s socket under slot `slot`'s token and keeps it in the slot; a
    /// registration that fails ends the exchange with its error.
    fn install_exchange(&mut self, slot: usize, mut exchange: Exchange) {
        let registered = self.poll.registry().register(
            &mut exchange.stream,
            Token(FIRST_HTTP + slot),
            Interest::READABLE | Interest::WRITABLE,
        );
        match registered {
            Ok(()) => {
                if let Some(h) = self.https[slot].as_mut() {
                    h.exchange = Some(exchange);
                }
            }
            Err(e) => self.finish_http(slot, Err(IoError::from(e))),
        }
    }

    /// An exchange's socket is ready. A web seed's answer is data for the disk: while the
    /// disk budget is paused its socket is left unread like a peer's (so TCP slows the
    /// server, and no finished answer adds to the write-back or starts the next request),
    /// and it is driven again once the budget allows.
    pub(super) fn http_event(&mut self, slot: usize) {
        let paused = self.disk.budget().paused();
        let Some(h) = self.https.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if paused && matches!(h.id, Purpose::WebSeed(_)) {
            if h.parked.is_none() {
                h.parked = Some(Instant::now());
                self.parked_http.push_back(slot);
            }
            return;
        }
        self.drive_http(slot);
    }

    /// Drives parked web seed exchanges, oldest first, while the disk budget allows.
    pub(super) fn unpark_http(&mut self) {
        while !self.disk.budget().paused() {
            let Some(slot) = self.parked_http.pop_front() else {
                return;
            };
            let Some(h) = self.https.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let Some(since) = h.parked.take() else {
                continue;
            };
            h.deadline += since.elapsed();
            self.drive_http(slot);
        }
    }

    pub(super) fn drive_http(&mut self, slot: usize) {
        let Some(h) = self.https.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(exchange) = h.exchange.as_mut() else {
            return;
        };
        let finished = exchange.drive();
        if finished.is_some() && exchange.is_stale() {
            // The server closed the idle connection before we used it: once more on a new
            // one (a new exchange is never stale).
            let Some(mut exchange) = h.exchange.take() else {
                return;
            };
            h.request = exchange.take_request();
            let _ = self.poll.registry().deregister(&mut exchange.stream);
            self.connect_http(slot, exchange.addr());
            return;
        }
        match finished {
            None => {}
            Some(Finished::Closed) => {
                let response = exchange.take_response();
                self.finish_http(slot, Ok(response));
            }
            Some(Finished::Failed(e)) => self.finish_http(slot, Err(e)),
        }
    }

    pub(super) fn http_timeouts(&mut self) {
        let now = Instant::now();
        self.http_pool.expire(now);
        for slot in 0..self.https.len() {
            // A parked exchange waits for our disk, not for its server.
            if self.https[slot]
                .as_ref()
                .is_some_and(|h| h.parked.is_none() && now >= h.deadline)
            {
                self.finish_http(
                    slot,
                    Err(IoError::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer in {} s", HTTP_TIMEOUT.as_secs()),
                    )),
                );
            }
        }
    }

    fn finish_http(&mut self, slot: usize, result: Result<Vec<u8>, IoError>) {
        let Some(mut h) = self.https.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Some(mut exchange) = h.exchange.take() {
            let _ = self.poll.registry().deregister(&mut exchange.stream);
            if result.is_ok() && h.max_body.is_some() {
                if let Some(idle) = exchange.into_idle() {
                    self.http_pool
                        .put(ServerKey::of(&h.url), idle, Instant::now());
                }
            }
        }
        let result = result.map_err(|e| e.context(h.url.as_str()));
        let input = match h.id {
            Purpose::Tracker(id) => Input::TrackerHttp {
                torrent: h.torrent,
                id,
                result,
            },
            Purpose::WebSeed(id) => Input::WebSeedResponse {
                torrent: h.torrent,
                id,
                result,
            },
        };
        self.engine.handle(input, Instant::now());
        self.drain();
    }
}

/// The most bytes a web seed's answer with a body of at most `max_body` may take: the body
/// and room for its head.
fn web_seed_limit(max_body: u64) -> usize {
    usize::try_from(max_body)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024)
}
