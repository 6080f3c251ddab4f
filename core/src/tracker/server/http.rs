//! HTTP/1.1 for the tracker server, sans-IO: request heads read, responses written, and
//! `/announce` and `/scrape` answered.
//!
//! The runtime reads bytes into a buffer and calls [`parse_request_head`] after each read
//! until it has a head; it then asks [`TrackerServer::serve_http`] for the tracker's
//! answer, or serves other paths itself (the web server's pages and files), writing
//! responses built by [`response`]. A caller that holds whole requests (the simulator)
//! uses [`TrackerServer::handle_http`]: request bytes in, response bytes out. Bounds and
//! choices:
//!
//! - A head is at most [`MAX_REQUEST_HEAD`] bytes and [`MAX_HEADERS`] headers; past either,
//!   [`HeadError::TooLarge`] (answer 431 and close). Anything `httparse` refuses is
//!   [`HeadError::Malformed`] (400).
//! - A request body is never read: announces and scrapes are `GET`s, and a server that
//!   answers and closes has no use for one.
//! - Every response says `Connection: close`; the runtime closes once it is written. Clients
//!   announce every half hour, so keeping connections open would buy nothing.
//! - Refusals of announces and scrapes are `200 OK` with a bencoded `failure reason`: that
//!   is what clients show to users; some ignore the body of an error status.

use core::net::IpAddr;
use std::time::Instant;

use super::request::{encode_announce_answer, parse_announce_query, parse_scrape_query};
use super::TrackerServer;
use crate::tracker::answer::{encode_failure_response, encode_scrape_response};

/// The longest request head accepted, in bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The most header lines accepted in a request head.
pub const MAX_HEADERS: usize = 64;

/// A request's method, as far as the server cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`: answered with a body.
    Get,
    /// Like `GET`, without the body in the answer.
    Head,
    /// Anything else: answered 405.
    Other,
}

/// A complete request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: Method,
    /// The target's path, still percent-encoded (`/announce`).
    pub path: &'a [u8],
    /// The target's query without the `?` (empty if none).
    pub query: &'a [u8],
    /// The head's length in bytes, empty line included.
    pub len: usize,
    /// The `Host` header's value, if any.
    pub host: Option<&'a [u8]>,
    /// The `Range` header's value, if any (the first one).
    pub range: Option<&'a [u8]>,
    /// The `If-Modified-Since` header's value, if any.
    pub if_modified_since: Option<&'a [u8]>,
    /// Whether the client lets the connection stay open after the answer: HTTP/1.1 unless
    /// it says `Connection: close`, HTTP/1.0 only if it says `Connection: keep-alive`.
    pub keep_alive: bool,
    /// Whether a body follows the head (`Content-Length` other than 0, or
    /// `Transfer-Encoding`): a server that never reads bodies must close after answering.
    pub has_body: bool,
}

/// Why a request head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Longer than the limit, or too many headers: 431.
    TooLarge,
    /// Not HTTP/1.x: 400.
    Malformed,
}

impl HeadError {
    /// The status to answer with.
    pub fn status(self) -> u16 {
        match self {
            HeadError::TooLarge => 431,
            HeadError::Malformed => 400,
        }
    }
}

/// Reads the request head at the start of `buf`: `Ok(None)` while it is incomplete (and
/// still within `max_len` bytes).
pub fn parse_request_head(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<RequestHead<'_>>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            if len > max_len {
                return Err(HeadError::TooLarge);
            }
            let method = match req.method {
                Some("GET") => Method::Get,
                Some("HEAD") => Method::Head,
                _ => Method::Other,
            };
            let target = req.path.unwrap_or("/").as_bytes();
            let (path, query) = split_target(target);
            let mut head = RequestHead {
                method,
                path,
                query,
                len,
                host: None,
                range: None,
                if_modified_since: None,
                keep_alive: req.version == Some(1),
                has_body: false,
            };
            for h in req.headers.iter() {
                let name = h.name.as_bytes();
                let value = h.value.trim_ascii();
                if name.eq_ignore_ascii_case(b"host") {
                    head.host.get_or_insert(value);
                } else if name.eq_ignore_ascii_case(b"range") {
                    head.range.get_or_insert(value);
                } else if name.eq_ignore_ascii_case(b"if-modified-since") {
                    head.if_modified_since.get_or_insert(value);
                } else if name.eq_ignore_ascii_case(b"connection") {
                    for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                        if token.eq_ignore_ascii_case(b"close") {
                            head.keep_alive = false;
                        } else if token.eq_ignore_ascii_case(b"keep-alive")
                            && req.version == Some(0)
                        {
                            head.keep_alive = true;
                        }
                    }
                } else if name.eq_ignore_ascii_case(b"content-length") {
                    head.has_body |= value != b"0";
                } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    head.has_body = true;
                }
            }
            // A body is never read, so what follows the head would be taken for the next
            // request: a connection that has one is closed after the answer.
            head.keep_alive &= !head.has_body;
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) if buf.len() > max_len => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// Path and query of a request target; an absolute-form target (`http://host/path?q`, as
/// sent to proxies) loses its scheme and authority, and a fragment is dropped.
fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let mut target = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            target = match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(at) => &rest[at..],
                None => b"/",
            };
        }
    }
    if let Some(hash) = target.iter().position(|&b| b == b'#') {
        target = &target[..hash];
    }
    match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, b""),
    }
}

/// The reason phrase of the statuses the server uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A response head for a body of `content_length` bytes, with `Connection: close`.
pub fn response_head(status: u16, content_type: &str, content_length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_head(&mut out, status, content_type, content_length);
    out
}

fn write_head(out: &mut Vec<u8>, status: u16, content_type: &str, content_length: usize) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\nConnection: close\r\n\r\n",
        reason(status)
    );
}

/// A whole response: head and `body` (left out, with its length still announced, when
/// answering a `HEAD`).
pub fn response(status: u16, content_type: &str, body: &[u8], method: Method) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    write_head(&mut out, status, content_type, body.len());
    if method != Method::Head {
        out.extend_from_slice(body);
    }
    out
}

/// A short plain-text response for an error status.
pub fn error_response(status: u16) -> Vec<u8> {
    let body = format!("{status} {}\n", reason(status));
    response(status, "text/plain", body.as_bytes(), Method::Get)
}

impl TrackerServer {
    /// The whole response to a request for `/announce` or `/scrape`; `None` for any other
    /// path (not the tracker's to answer).
    pub fn serve_http(
        &mut self,
        head: &RequestHead<'_>,
        remote: IpAddr,
        now: Instant,
    ) -> Option<Vec<u8>> {
        let announce = match head.path {
            b"/announce" => true,
            b"/scrape" => false,
            _ => return None,
        };
        if head.method == Method::Other {
            return Some(error_response(405));
        }
        let body = if announce {
            self.http_announce(head.query, remote, now)
        } else {
            self.http_scrape(head.query, now)
        };
        Some(response(200, "text/plain", &body, head.method))
    }

    /// A whole request in, the whole response out, for callers that hold complete
    /// requests (the simulator, tests): the tracker's paths answered, other paths 404, a
    /// malformed or incomplete head 400, an oversized one 431.
    pub fn handle_http(&mut self, request: &[u8], remote: IpAddr, now: Instant) -> Vec<u8> {
        match parse_request_head(request, MAX_REQUEST_HEAD) {
            Ok(Some(head)) => self
                .serve_http(&head, remote, now)
                .unwrap_or_else(|| error_response(404)),
            Ok(None) => error_response(400),
            Err(e) => error_response(e.status()),
        }
    }

    /// The bencoded answer to an announce query from `remote`: peers, or a failure reason.
    pub fn http_announce(&mut self, query: &[u8], remote: IpAddr, now: Instant) -> Vec<u8> {
        let answer =
            parse_announce_query(query, remote, self.config.allow_ip_param).and_then(|req| {
                let answer = self.announce(&req, now)?;
                Ok(encode_announce_answer(&answer, req.compact, req.no_peer_id))
            });
        answer.unwrap_or_else(|failure| encode_failure_response(&failure.to_string()))
    }

    /// The bencoded answer to a scrape query (BEP 48): counts of the torrents named, or of
    /// every torrent (up to [`ServerConfig::max_scrape`](super::ServerConfig::max_scrape)).
    pub fn http_scrape(&mut self, query: &[u8], now: Instant) -> Vec<u8> {
        match parse_scrape_query(query, self.config.max_scrape) {
            Ok(hashes) => encode_scrape_response(&self.scrape(&hashes, now)),
            Err(failure) => encode_failure_response(&failure.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn heads_are_read_when_complete() {
        let req = b"GET /announce?info_hash=x&port=1 HTTP/1.1\r\nHost: t\r\n\r\nbody";
        for end in 0..req.len() - 4 {
            assert_eq!(parse_request_head(&req[..end], MAX_REQUEST_HEAD), Ok(None));
        }
        let head = parse_request_head(req, MAX_REQUEST_HEAD).unwrap().unwrap();
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path, b"/announce");
        assert_eq!(head.query, b"info_hash=x&port=1");
        assert_eq!(head.len, req.len() - 4);

        let head = parse_request_head(b"HEAD http://t:80/scrape#f HTTP/1.0\r\n\r\n", 100)
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.method, head.path, head.query),
            (Method::Head, &b"/scrape"[..], &b""[..])
        );
        let head = parse_request_head(b"POST / HTTP/1.1\r\n\r\n", 100)
            .unwrap()
            .unwrap();
        assert_eq!(head.method, Method::Other);
    }

    #[test]
    fn headers_the_web_server_reads() {
        let head = |r: &'static str| {
            parse_request_head(r.as_bytes(), MAX_REQUEST_HEAD)
                .unwrap()
                .unwrap()
        };
        let h = head(
            "GET /f HTTP/1.1\r\nHost: a:1\r\nRange:  bytes=0-1 \r\nIf-Modified-Since: x\r\n\r\n",
        );
        assert_eq!(h.host, Some(&b"a:1"[..]));
        assert_eq!(h.range, Some(&b"bytes=0-1"[..]));
        assert_eq!(h.if_modified_since, Some(&b"x"[..]));
        assert!(h.keep_alive && !h.has_body);
        assert!(!head("GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        let h = head("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
        assert!(
            h.has_body && !h.keep_alive,
            "a body never read ends the connection"
        );
        assert!(!head("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").has_body);
    }

    #[test]
    fn oversized_and_malformed_heads_are_refused() {
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD));
        assert_eq!(
            parse_request_head(&long, MAX_REQUEST_HEAD),
            Err(HeadError::TooLarge)
        );
        let mut complete = long.clone();
        complete.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(
            parse_request_head(&complete, MAX_REQUEST_HEAD),
            Err(HeadError::TooLarge)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            parse_request_head(many.as_bytes(), MAX_REQUEST_HEAD),
            Err(HeadError::TooLarge)
        );
        assert_eq!(
            parse_request_head(b"\x16\x03\x01\x02\x00garbage\r\n\r\n", 100),
            Err(HeadError::Malformed)
        );
        assert_eq!(HeadError::TooLarge.status(), 431);
    }

    #[test]
    fn responses() {
        let r = response(200, "text/plain", b"d5:filesdee", Method::Get);
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nd5:filesdee"
        );
        let r = response(200, "text/plain", b"d5:filesdee", Method::Head);
        assert!(r.ends_with(b"Content-Length: 11\r\nConnection: close\r\n\r\n"));
        assert!(error_response(404).starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    }

    #[test]
    fn whole_requests() {
        let now = shoal_test_clock::epoch();
        let mut t = TrackerServer::new(super::super::ServerConfig::default(), now);
        let ip = IpAddr::from([10, 0, 0, 1]);
        let r = t.handle_http(b"GET /scrape HTTP/1.1\r\n\r\n", ip, now);
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n") && r.ends_with(b"d5:filesdee"));
        let r = t.handle_http(b"GET /elsewhere HTTP/1.1\r\n\r\n", ip, now);
        assert!(r.starts_with(b"HTTP/1.1 404 "));
        let r = t.handle_http(b"GET /scrape HTTP/1.1\r\n", ip, now);
        assert!(r.starts_with(b"HTTP/1.1 400 "));
    }

    quickcheck! {
        fn arbitrary_heads_never_panic(buf: Vec<u8>) -> bool {
            let _ = parse_request_head(&buf, 64);
            let mut req = b"GET /".to_vec();
            req.extend_from_slice(&buf);
            let _ = parse_request_head(&req, MAX_REQUEST_HEAD);
            true
        }
    }
}
