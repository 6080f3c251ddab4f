//! The control server's sockets: a listener thread and a thread per connection (at most
//! [`MAX_CONNECTIONS`]), blocking std sockets with timeouts. Each connection reads whole
//! requests through shoal-daemon's framing and answers them with its [`Api`]; the answers
//! that need the torrents come from the loop's thread through [`Proxy`], so the engine is
//! only ever touched there. Fetching a `.torrent` by URL happens here, not on the loop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use mio::Waker;
use shoal_core::metainfo::Metainfo;
use shoal_daemon::api::Api;
use shoal_daemon::control::{
    AddRequest, Added, Control, FeedView, FileChange, Id, Settings, Source, Stats, TorrentView,
};
use shoal_daemon::http::{parse_request, Response};

use super::torrents::Torrents;
use super::Msg;

/// Connections served at once; more are answered `503` and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// How long a request waits for the loop's answer.
const LOOP_ANSWER: Duration = Duration::from_secs(30);

/// Accepts connections until the process ends.
pub fn serve(listener: TcpListener, api: Arc<Api>, loop_tx: Sender<Msg>, waker: Arc<Waker>) {
    let live = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if live.load(Ordering::Acquire) >= MAX_CONNECTIONS {
            let busy = Response::text(503, "Service Unavailable", "too many connections");
            let _ = stream.write_all(&busy.to_bytes(true));
            continue;
        }
        live.fetch_add(1, Ordering::AcqRel);
        let live_count = live.clone();
        let (api, live, proxy) = (
            api.clone(),
            live.clone(),
            Proxy::new(loop_tx.clone(), waker.clone()),
        );
        let spawned = std::thread::Builder::new()
            .name("shoal-rpc".into())
            .spawn(move || {
                connection(stream, &api, proxy);
                live.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            // The closure (and the stream) is dropped unrun: its place is given back.
            live_count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn connection(mut stream: TcpStream, api: &Api, mut proxy: Proxy) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match parse_request(&buf) {
            Ok(Some((req, used))) => {
                buf.drain(..used);
                let close = req.wants_close();
                let mut resp = api.handle(&req, &mut proxy);
                if req.method == "HEAD" {
                    resp.body.clear();
                }
                let written = stream.write_all(&resp.to_bytes(close)).is_ok();
                if proxy.closing {
                    // `session-close`, answered (or the caller gone): now the loop stops.
                    let _ = stream.flush();
                    let _ = proxy.tx.send(Msg::Close);
                    let _ = proxy.waker.wake();
                    return;
                }
                if !written || close {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = stream.write_all(&e.response().to_bytes(true));
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// [`Control`] for a connection thread: each call runs on the loop's thread.
pub struct Proxy {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
    /// `session-close` was called: the loop is told once the answer is written.
    closing: bool,
}

impl Proxy {
    pub fn new(tx: Sender<Msg>, waker: Arc<Waker>) -> Proxy {
        Proxy {
            tx,
            waker,
            closing: false,
        }
    }

    /// Runs `f` on the loop's thread and returns what it returns.
    pub fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Torrents) -> T + Send + 'static,
    ) -> Result<T, String> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let call = Box::new(move |t: &mut Torrents| {
            let _ = reply_tx.send(f(t));
        });
        self.tx
            .send(Msg::Call(call))
            .map_err(|_| "the daemon is stopping".to_string())?;
        let _ = self.waker.wake();
        reply_rx
            .recv_timeout(LOOP_ANSWER)
            .map_err(|_| "the daemon did not answer in time".to_string())
    }
}

impl Control for Proxy {
    fn add(&mut self, req: AddRequest) -> Result<Added, String> {
        let (meta, bytes) = match &req.source {
            Source::Magnet(link) => {
                let magnet = shoal_core::magnet::Magnet::parse(link)
                    .map_err(|e| format!("not a usable magnet link: {e}"))?;
                // x.pe host names are resolved here, off the loop.
                let peers = crate::magnet::peers(&magnet);
                return self.ask(move |t| t.add_magnet(magnet, peers, &req))?;
            }
            Source::Metainfo(bytes) => {
                let meta =
                    Metainfo::parse(bytes).map_err(|e| format!("not a valid .torrent: {e}"))?;
                (meta, bytes.clone())
            }
            // A path on this machine or a URL (fetched here, off the loop).
            Source::File(name) => shoal_io::load_torrent(name).map_err(|e| e.to_string())?,
        };
        self.ask(move |t| t.add(meta, &bytes, &req))?
    }

    fn torrents(&mut self) -> Vec<TorrentView> {
        self.ask(|t| t.views()).unwrap_or_default()
    }

    fn start(&mut self, ids: &[Id]) {
        let ids = ids.to_vec();
        let _ = self.ask(move |t| t.start(&ids));
    }

    fn stop(&mut self, ids: &[Id]) {
        let ids = ids.to_vec();
        let _ = self.ask(move |t| t.stop(&ids));
    }

    fn remove(&mut self, ids: &[Id], delete_data: bool) {
        let ids = ids.to_vec();
        let _ = self.ask(move |t| t.remove(&ids, delete_data));
    }

    fn set_files(&mut self, id: Id, change: &FileChange) -> Result<(), String> {
        let change = change.clone();
        self.ask(move |t| t.set_files(id, &change))?
    }

    fn settings(&mut self) -> Settings {
        self.ask(|t| t.settings().clone()).unwrap_or_default()
    }

    fn set_settings(&mut self, settings: Settings) {
        let _ = self.ask(move |t| t.set_settings(settings));
    }

    fn stats(&mut self) -> Stats {
        self.ask(|t| t.stats()).unwrap_or_default()
    }

    fn peer_port(&mut self) -> u16 {
        self.ask(|t| t.rt.local_addr().port()).unwrap_or(0)
    }

    fn add_feed(&mut self, url: &str, pattern: Option<&str>) -> Result<FeedView, String> {
        if let Some(p) = pattern {
            regex_check(p)?;
        }
        // Fetched here, off the loop: a bad URL or a malformed feed is said at once.
        let offers = super::feeds::first_look(url)?;
        let (url, pattern) = (url.to_string(), pattern.map(str::to_string));
        self.ask(move |t| t.subscribe(url, pattern, &offers))?
    }

    fn feeds(&mut self) -> Vec<FeedView> {
        self.ask(|t| t.feed_views()).unwrap_or_default()
    }

    fn remove_feeds(&mut self, ids: &[u32]) {
        let ids = ids.to_vec();
        let _ = self.ask(move |t| t.unsubscribe(&ids));
    }
    fn close(&mut self) {
        self.closing = true;
    }
}

/// A pattern that does not compile is refused before the feed is fetched.
fn regex_check(pattern: &str) -> Result<(), String> {
    shoal_daemon::feed::FeedRecord::subscribe(0, String::new(), Some(pattern.to_string()), &[])
        .map(drop)
}
