//! HTTP connections: accepted, read, answered, written, closed; their bounds.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Interest, Token};
use shoal_core::tracker::server::http::{error_response, response, response_head};
use shoal_core::tracker::server::{parse_request_head, Method, RequestHead, MAX_REQUEST_HEAD};

use super::{lock, TrackerService, ACCEPT_BUDGET, FIRST_CONN};

/// A response being written: `head`, then `body`, then `file`'s span.
pub(super) struct Outgoing {
    pub(super) head: Vec<u8>,
    pub(super) body: Bytes,
    pub(super) written: usize,
    /// A span of a file streamed after `body`, never held in memory.
    pub(super) file: Option<FileBody>,
    /// Whether the connection stays open for another request once this one is written.
    pub(super) keep_alive: bool,
}

/// A span of an open file still to send.
pub(super) struct FileBody {
    pub(super) file: std::fs::File,
    pub(super) offset: u64,
    pub(super) remaining: u64,
}

impl Outgoing {
    /// A response held whole in `head`, after which the connection is closed.
    pub(super) fn simple(head: Vec<u8>) -> Outgoing {
        Outgoing {
            head,
            body: Bytes::new(),
            written: 0,
            file: None,
            keep_alive: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    fn done(&self) -> bool {
        self.written >= self.len() && self.file.as_ref().is_none_or(|f| f.remaining == 0)
    }
}

pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) remote: SocketAddr,
    /// Bytes read and not yet answered: a head being read, or requests sent ahead
    /// (pipelined) while the previous answer was written.
    pub(super) buf: Vec<u8>,
    pub(super) out: Option<Outgoing>,
    pub(super) deadline: Instant,
    pub(super) registered: Option<Interest>,
}

impl TrackerService {
    pub(super) fn accept(&mut self) {
        for _ in 0..ACCEPT_BUDGET {
            let accepted = match &self.http {
                Some(listener) => listener.accept(),
                None => Err(io::ErrorKind::WouldBlock.into()),
            };
            let (mut stream, remote) = match accepted {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors or the like: try again on the next wake-up, which
                // closed connections or timeouts will bring.
                Err(_) => {
                    self.accept_pending = false;
                    return;
                }
            };
            let from = self.per_address.get(&remote.ip()).copied().unwrap_or(0);
            if self.live >= self.max_connections || from >= self.max_per_address {
                // Best effort: the answer fits any socket buffer, and the client is gone if
                // it does not.
                let _ = stream.write(&error_response(503));
                continue;
            }
            *self.per_address.entry(remote.ip()).or_insert(0) += 1;
            // An answer's head goes out alone before its file: with Nagle's algorithm it
            // would hold the file's first bytes until the head is acknowledged, which a
            // client delaying its ACKs makes a 40 ms pause per request.
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let deadline = Instant::now() + self.http_timeout;
            self.conns[slot] = Some(Conn {
                stream,
                remote,
                buf: Vec::new(),
                out: None,
                deadline,
                registered: None,
            });
            self.deadlines.insert((deadline, slot));
            self.live += 1;
            // Under load the request is often there already: try before registering.
            self.drive(slot);
        }
        // Budget spent: come back after the others had their turn.
    }

    pub(super) fn close(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.deadlines.remove(&(conn.deadline, slot));
        self.free.push(slot);
        self.live -= 1;
        if let Some(n) = self.per_address.get_mut(&conn.remote.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&conn.remote.ip());
            }
        }
        // Dropping the socket closes it, which also takes it out of the poll (epoll forgets
        // a closed descriptor): no deregister call needed on the way out.
        drop(conn);
    }

    /// Moves a connection on as far as it goes without blocking: read a head, answer,
    /// write; then close, or read the next head on a connection kept alive.
    pub(super) fn drive(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if conn.out.is_none() {
                match read_head(conn) {
                    HeadRead::Closed => return self.close(slot),
                    HeadRead::More => return self.want(slot, Interest::READABLE),
                    HeadRead::Head => {}
                }
                let remote = conn.remote;
                let buf = std::mem::take(&mut conn.buf);
                let (out, used) = match parse_request_head(&buf, MAX_REQUEST_HEAD) {
                    Ok(Some(head)) => (self.respond(&head, remote), head.len),
                    // read_head stops at the limit; a partial head that reached it is too
                    // large.
                    Ok(None) => (Outgoing::simple(error_response(431)), buf.len()),
                    Err(e) => (Outgoing::simple(error_response(e.status())), buf.len()),
                };
                let conn = self.conns[slot].as_mut().expect("present");
                conn.buf = buf;
                conn.buf.drain(..used.min(conn.buf.len()));
                conn.out = Some(out);
            }
            match self.write_out(slot) {
                Written::Blocked => return self.want(slot, Interest::WRITABLE),
                Written::Failed => return self.close(slot),
                Written::Done => {}
            }
            let conn = self.conns[slot].as_mut().expect("present");
            if !conn.out.take().is_some_and(|o| o.keep_alive) {
                return self.close(slot);
            }
            // The next request must come within the timeout, like the first.
            self.set_deadline(slot);
        }
    }

    /// The connection's deadline, `http_timeout` from now.
    fn set_deadline(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let deadline = Instant::now() + self.http_timeout;
        self.deadlines.remove(&(conn.deadline, slot));
        conn.deadline = deadline;
        self.deadlines.insert((deadline, slot));
    }

    /// Writes what the socket takes of the connection's answer.
    fn write_out(&mut self, slot: usize) -> Written {
        let conn = self.conns[slot].as_mut().expect("present");
        let out = conn.out.as_mut().expect("an answer to write");
        let mut progressed = false;
        let result = loop {
            if out.done() {
                break Written::Done;
            }
            let step = if out.written < out.len() {
                let (head_rest, body_rest) = if out.written < out.head.len() {
                    (&out.head[out.written..], &out.body[..])
                } else {
                    (&[][..], &out.body[out.written - out.head.len()..])
                };
                let slices = [IoSlice::new(head_rest), IoSlice::new(body_rest)];
                conn.stream
                    .write_vectored(&slices)
                    .inspect(|&n| out.written += n)
            } else {
                let body = out.file.as_mut().expect("not done");
                super::sendfile::send(&conn.stream, body)
            };
            match step {
                // A file that shrank under the answer ends it short: the client sees a body
                // cut short and asks again.
                Ok(0) => break Written::Failed,
                Ok(_) => progressed = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Written::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Written::Failed,
            }
        };
        if progressed && matches!(result, Written::Blocked) {
            // A reader that keeps reading keeps its connection.
            self.set_deadline(slot);
        }
        result
    }

    /// Makes sure the connection is registered for `interest`.
    pub(super) fn want(&mut self, slot: usize, interest: Interest) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let registry = self.poll.registry();
        let result = match conn.registered {
            Some(i) if i == interest => return,
            Some(_) => registry.reregister(&mut conn.stream, Token(FIRST_CONN + slot), interest),
            None => registry.register(&mut conn.stream, Token(FIRST_CONN + slot), interest),
        };
        match result {
            Ok(()) => conn.registered = Some(interest),
            Err(_) => self.close(slot),
        }
    }

    /// The response to a complete request head.
    pub(super) fn respond(&mut self, head: &RequestHead<'_>, remote: SocketAddr) -> Outgoing {
        let now = Instant::now();
        let simple = Outgoing::simple;
        let answer = lock(&self.tracker).serve_http(head, remote.ip(), now);
        if let Some(answer) = answer {
            return simple(answer);
        }
        if head.method == Method::Other {
            return simple(error_response(405));
        }
        if head.path == b"/feed.xml" {
            let feed = self.feed(&self.base_url(head));
            return simple(response(
                200,
                "application/rss+xml; charset=utf-8",
                &feed,
                head.method,
            ));
        }
        if let Some(rest) = head.path.strip_prefix(b"/files/") {
            return self.serve_file(head, rest);
        }
        if head.path == b"/" || head.path == b"/index.html" {
            let page = self.index_page(&self.base_url(head));
            return simple(response(
                200,
                "text/html; charset=utf-8",
                page.as_bytes(),
                head.method,
            ));
        }
        let file = head
            .path
            .strip_prefix(b"/")
            .and_then(shoal_core::tracker::percent_decode)
            .and_then(|name| String::from_utf8(name).ok());
        if let Some(f) = file.as_deref().filter(|f| self.folder.get(f).is_none()) {
            self.rescan_for(f);
        }
        match file.as_deref().and_then(|f| self.folder.get(f)) {
            Some(listed) => Outgoing {
                head: response_head(200, "application/x-bittorrent", listed.bytes.len()),
                body: if head.method == Method::Head {
                    Bytes::new()
                } else {
                    listed.bytes.clone()
                },
                written: 0,
                file: None,
                keep_alive: false,
            },
            None => simple(error_response(404)),
        }
    }
}

/// How far an answer got.
enum Written {
    Done,
    Blocked,
    Failed,
}

pub(super) enum HeadRead {
    /// The peer closed or failed before sending a whole head.
    Closed,
    /// Need more bytes.
    More,
    /// A whole head, a bad one, or the limit reached: time to answer.
    Head,
}

/// Reads what is available of a request head, at most [`MAX_REQUEST_HEAD`] + 1 bytes.
pub(super) fn read_head(conn: &mut Conn) -> HeadRead {
    // A request sent ahead may already be whole.
    if !conn.buf.is_empty() && !matches!(parse_request_head(&conn.buf, MAX_REQUEST_HEAD), Ok(None))
    {
        return HeadRead::Head;
    }
    let mut chunk = [0u8; 4096];
    loop {
        let room = (MAX_REQUEST_HEAD + 1).saturating_sub(conn.buf.len());
        if room == 0 {
            return HeadRead::Head;
        }
        let want = room.min(chunk.len());
        match conn.stream.read(&mut chunk[..want]) {
            Ok(0) => return HeadRead::Closed,
            Ok(n) => {
                conn.buf.extend_from_slice(&chunk[..n]);
                // The usual case, a whole head in: parsed once, by the caller. Otherwise a
                // parse tells garbage (answered 400 now) from a head still coming.
                let from = conn.buf.len().saturating_sub(n + 3);
                if conn.buf[from..].windows(4).any(|w| w == b"\r\n\r\n")
                    || !matches!(parse_request_head(&conn.buf, MAX_REQUEST_HEAD), Ok(None))
                {
                    return HeadRead::Head;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return HeadRead::More,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return HeadRead::Closed,
        }
    }
}
