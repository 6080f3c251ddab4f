//! HTTP trackers, sans-IO: announce and scrape requests as bytes, and the framing of the
//! answer from bytes fed in as they arrive.
//!
//! The runtime opens the connection (TLS for `https`), writes the bytes of
//! [`http_announce_request`], feeds what it reads to an [`HttpResponseReader`] and closes
//! when the reader says [`HttpProgress::Done`] or fails, or when its own timer fires. Each
//! request is one connection (`Connection: close`): trackers are asked every half hour, so
//! keeping connections alive would buy nothing and cost a connection-reuse state machine.
//!
//! What the reader accepts, and its bounds:
//!
//! - The head is parsed by `httparse` once its empty line is in, and may be at most
//!   [`MAX_HEAD_LEN`] bytes; interim `1xx` responses are skipped.
//! - The body is framed by `Transfer-Encoding: chunked` (chunk extensions and trailers are
//!   read and dropped), else by `Content-Length`, else by the end of the connection
//!   ([`HttpResponseReader::finish`]). A `Transfer-Encoding` other than chunked also reads
//!   to the end, as RFC 9112 says. `204` and `304` have no body.
//! - The body may be at most the configured limit ([`DEFAULT_MAX_BODY_LEN`] by default); a
//!   `Content-Length` above it is refused before a byte of body is read.
//! - We ask for `Accept-Encoding: identity`; a compressed body is an error rather than
//!   bencode garbage.
//! - Bytes after the end of the body are ignored: the connection is closing anyway.
//!
//! Web seeds read their answers with the same reader and keep their connections alive: once
//! a response is whole, [`HttpResponseReader::keeps_alive`] says whether its connection may
//! carry another request (RFC 9112, 9.3): HTTP/1.1 unless the server said `Connection:
//! close`, HTTP/1.0 only if it said `Connection: keep-alive`, and never after a body read
//! to the close or bytes past the end of the response (a server that sends what was not
//! asked for is not trusted with the next request).

use super::answer::{failure_reason, parse_announce_response, parse_scrape_response};
use super::query::percent_encode_into;
use super::{AnnounceParams, AnnounceResponse, ScrapeStats, TrackerError, TrackerUrl};
use crate::types::InfoHash;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("shoal/", env!("CARGO_PKG_VERSION"));

/// The longest response head (status line, headers and trailers) read, in bytes.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// The default longest body: a tracker answer of 200 peers in dictionary form is ~20 KiB,
/// and a scrape of a few hundred torrents a little more.
pub const DEFAULT_MAX_BODY_LEN: usize = 2 * 1024 * 1024;

/// The longest chunk-size line (size, extensions, CRLF).
const MAX_CHUNK_LINE_LEN: usize = 1024;

/// The most headers in a response head; more is not a tracker.
const MAX_HEADERS: usize = 64;

/// The query of an announce: every field of `params`, binary ones percent-encoded.
///
/// The order is the one BEP 3 lists, then the optional fields. `key` is written as 8
/// upper-case hex digits, as most clients do, so trackers that compare it as text see the
/// same key each time.
pub fn announce_query(params: &AnnounceParams) -> String {
    let mut q = String::with_capacity(256);
    q.push_str("info_hash=");
    percent_encode_into(&params.info_hash.0, &mut q);
    q.push_str("&peer_id=");
    percent_encode_into(&params.peer_id.0, &mut q);
    q.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact={}&numwant={}&key={:08X}",
        params.port,
        params.uploaded,
        params.downloaded,
        params.left,
        u8::from(params.compact),
        params.numwant,
        params.key
    ));
    if let Some(event) = params.event.as_http_str() {
        q.push_str("&event=");
        q.push_str(event);
    }
    if let Some(id) = &params.tracker_id {
        q.push_str("&trackerid=");
        percent_encode_into(id, &mut q);
    }
    if let Some(ip) = params.ip {
        q.push_str("&ip=");
        percent_encode_into(ip.to_string().as_bytes(), &mut q);
    }
    q
}

/// The full HTTP/1.1 request of an announce to `url` (an `http` or `https` tracker URL; its
/// scheme is not looked at). The announce parameters are appended to the URL's own query,
/// if it has one, so passkeys stay where the tracker put them.
pub fn http_announce_request(url: &TrackerUrl, params: &AnnounceParams) -> Vec<u8> {
    get_request(url, url.path_and_query(), &announce_query(params))
}

/// The full HTTP/1.1 request of a BEP 48 scrape for `info_hashes` (all of the tracker's
/// torrents if empty), or `None` if the announce URL has no scrape URL (see
/// [`TrackerUrl::scrape_url`]).
pub fn http_scrape_request(url: &TrackerUrl, info_hashes: &[InfoHash]) -> Option<Vec<u8>> {
    let scrape = url.scrape_url()?;
    let mut q = String::with_capacity(info_hashes.len() * 72);
    for hash in info_hashes {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str("info_hash=");
        percent_encode_into(&hash.0, &mut q);
    }
    Some(get_request(&scrape, scrape.path_and_query(), &q))
}

fn get_request(url: &TrackerUrl, target: &str, query: &str) -> Vec<u8> {
    let separator = if query.is_empty() || target.ends_with(['?', '&']) {
        ""
    } else if target.contains('?') {
        "&"
    } else {
        "?"
    };
    format!(
        "GET {target}{separator}{query} HTTP/1.1\r\n\
         Host: {}\r\n\
         User-Agent: {USER_AGENT}\r\n\
         Accept-Encoding: identity\r\n\
         Connection: close\r\n\
         \r\n",
        url.host_header()
    )
    .into_bytes()
}

/// A whole HTTP response: its status and its body with any chunking removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The headers of the final response, in order: names as sent, values without
    /// surrounding whitespace (web seeds read `Content-Range`, `Content-Length` and
    /// `Location`; trackers read none).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl HttpResponse {
    /// The value of the first header named `name` (any case), if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Reads the response to an announce. A non-2xx status is
    /// [`TrackerError::HttpStatus`], unless the body is a bencoded `failure reason` (some
    /// trackers send one with a 4xx), which is more useful to show.
    pub fn announce(&self) -> Result<AnnounceResponse, TrackerError> {
        self.check_status()?;
        parse_announce_response(&self.body)
    }

    /// Reads the response to a scrape, as [`announce`](HttpResponse::announce) does.
    pub fn scrape(&self) -> Result<Vec<(InfoHash, ScrapeStats)>, TrackerError> {
        self.check_status()?;
        parse_scrape_response(&self.body)
    }

    fn check_status(&self) -> Result<(), TrackerError> {
        if self.is_success() {
            return Ok(());
        }
        match failure_reason(&self.body) {
            Some(reason) => Err(TrackerError::Failure(reason)),
            None => Err(TrackerError::HttpStatus(self.status)),
        }
    }
}

/// What an [`HttpResponseReader`] has after the bytes fed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpProgress {
    /// Feed more bytes (or call [`HttpResponseReader::finish`] if the peer closed).
    Incomplete,
    /// The response is whole; the reader is spent.
    Done(HttpResponse),
}

/// Frames one HTTP/1.x response from bytes fed in as they arrive (see the module docs).
///
/// After it returns [`HttpProgress::Done`] or an error it is spent: further calls return an
/// error.
#[derive(Debug)]
pub struct HttpResponseReader {
    max_body: usize,
    state: State,
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    /// What the final response's version and `Connection` header allow.
    persistent: bool,
    /// Bytes came after the end of the response.
    surplus: bool,
    /// Whether a body framed by its length or the close is kept (else only counted, and
    /// found again with [`HttpResponseReader::body_range`]).
    keep_body: bool,
    /// Bytes of such a body so far.
    body_len: usize,
    /// Bytes fed and consumed so far (what came after the response not counted).
    consumed: usize,
    /// Where such a body starts in the bytes fed.
    body_start: Option<usize>,
}

#[derive(Debug)]
enum State {
    Head {
        buf: Vec<u8>,
        /// Bytes of the current line so far, not counting CR: a line of none ends the head.
        line_len: usize,
        /// Whether anything but line breaks came yet (leading empty lines are allowed and
        /// must not trigger a parse each).
        started: bool,
    },
    Length {
        remaining: usize,
    },
    UntilClose,
    Chunked(Chunk),
    Spent,
    Failed(TrackerError),
}

#[derive(Debug)]
enum Chunk {
    /// Reading the chunk-size line.
    Size {
        line: Vec<u8>,
    },
    Data {
        remaining: usize,
    },
    /// The CRLF after a chunk's data.
    DataEnd {
        seen_cr: bool,
    },
    /// Trailer lines after the last chunk, up to an empty line.
    Trailer {
        line_len: usize,
        total: usize,
    },
}

impl Default for HttpResponseReader {
    fn default() -> Self {
        HttpResponseReader::new()
    }
}

impl HttpResponseReader {
    /// A reader with the default body limit, [`DEFAULT_MAX_BODY_LEN`].
    pub fn new() -> Self {
        HttpResponseReader::with_max_body(DEFAULT_MAX_BODY_LEN)
    }

    /// A reader refusing bodies longer than `max_body` bytes.
    pub fn with_max_body(max_body: usize) -> Self {
        HttpResponseReader {
            max_body,
            state: State::Head {
                buf: Vec::new(),
                line_len: 0,
                started: false,
            },
            status: 0,
            body: Vec::new(),
            headers: Vec::new(),
            persistent: false,
            surplus: false,
            keep_body: true,
            body_len: 0,
            consumed: 0,
            body_start: None,
        }
    }

    /// A reader that frames a response without keeping a body framed by its length or by
    /// the close: the response it gives has an empty body, to be taken from the bytes fed
    /// at [`body_range`](Self::body_range). A chunked body is kept, de-chunked, as it
    /// is not one run of the bytes fed. For a caller that keeps the bytes it feeds (a web
    /// seed's answer of megabytes is not copied twice).
    pub fn framing(max_body: usize) -> Self {
        HttpResponseReader {
            keep_body: false,
            ..HttpResponseReader::with_max_body(max_body)
        }
    }

    /// Where the body of the whole response lies in the bytes fed, counted from the first
    /// byte ever fed, when it is one run of them (framed by its length or by the close);
    /// `None` for a chunked body, or before the response is whole.
    pub fn body_range(&self) -> Option<std::ops::Range<usize>> {
        let start = self.body_start?;
        matches!(self.state, State::Spent).then(|| start..start + self.body_len)
    }

    /// Whether the connection may carry another request: the response is whole (the last
    /// [`feed`](Self::feed) gave [`HttpProgress::Done`]), framed by its length (or
    /// chunks, or having no body), nothing came after it, and its version and
    /// `Connection` header allow it (see the module docs).
    pub fn keeps_alive(&self) -> bool {
        matches!(self.state, State::Spent) && self.persistent && !self.surplus
    }

    /// The status of the final response once its head is read (even if its body is then
    /// refused as too long).
    pub fn status(&self) -> Option<u16> {
        (self.status != 0).then_some(self.status)
    }

    /// Whether the head is read and the body under way (or the response whole): a
    /// connection that closes now cut the body short, not the head.
    pub fn head_done(&self) -> bool {
        !matches!(self.state, State::Head { .. })
    }

    /// Feeds bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) -> Result<HttpProgress, TrackerError> {
        self.check_usable()?;
        match self.advance(data) {
            Ok(true) => Ok(HttpProgress::Done(self.take_response())),
            Ok(false) => Ok(HttpProgress::Incomplete),
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// The peer closed the connection: the response is whole if its body runs to the
    /// close, and cut short otherwise.
    pub fn finish(&mut self) -> Result<HttpResponse, TrackerError> {
        self.check_usable()?;
        let error = match &self.state {
            State::UntilClose => {
                // Framed by the close: there is no connection left to reuse.
                self.persistent = false;
                return Ok(self.take_response());
            }
            State::Head { buf, .. } if buf.is_empty() => {
                TrackerError::MalformedHttp("connection closed without a response")
            }
            State::Head { .. } => {
                TrackerError::MalformedHttp("connection closed inside the response head")
            }
            _ => TrackerError::MalformedHttp("connection closed before the end of the body"),
        };
        self.state = State::Failed(error.clone());
        Err(error)
    }

    fn check_usable(&self) -> Result<(), TrackerError> {
        match &self.state {
            State::Spent => Err(TrackerError::MalformedHttp("the response was already read")),
            State::Failed(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn take_response(&mut self) -> HttpResponse {
        self.state = State::Spent;
        HttpResponse {
            status: self.status,
            body: std::mem::take(&mut self.body),
            headers: std::mem::take(&mut self.headers),
        }
    }

    /// Consumes `data`; true once the response is whole.
    fn advance(&mut self, mut data: &[u8]) -> Result<bool, TrackerError> {
        while !data.is_empty() {
            match &mut self.state {
                State::Head {
                    buf,
                    line_len,
                    started,
                } => {
                    // Take bytes up to and including the next line break, so that the head
                    // buffer never holds body bytes.
                    let (line, ends_line) = match data.iter().position(|&b| b == b'\n') {
                        Some(i) => (&data[..=i], true),
                        None => (data, false),
                    };
                    if buf.len() + line.len() > MAX_HEAD_LEN {
                        return Err(TrackerError::HeadTooLarge {
                            limit: MAX_HEAD_LEN,
                        });
                    }
                    buf.extend_from_slice(line);
                    data = &data[line.len()..];
                    self.consumed += line.len();
                    *line_len += line.iter().filter(|&&b| b != b'\r' && b != b'\n').count();
                    if !ends_line {
                        continue;
                    }
                    let empty_line = *line_len == 0;
                    *line_len = 0;
                    if !*started {
                        *started = !empty_line;
                        continue;
                    }
                    if empty_line {
                        let head = std::mem::take(buf);
                        if self.start_body(&head)? {
                            self.surplus = !data.is_empty();
                            return Ok(true);
                        }
                    }
                }
                State::Length { remaining } => {
                    let take = data.len().min(*remaining);
                    if self.keep_body {
                        self.body.extend_from_slice(&data[..take]);
                    }
                    self.body_len += take;
                    self.consumed += take;
                    *remaining -= take;
                    self.surplus = take < data.len();
                    return Ok(*remaining == 0);
                }
                State::UntilClose => {
                    if self.body_len + data.len() > self.max_body {
                        return Err(TrackerError::BodyTooLarge {
                            limit: self.max_body,
                        });
                    }
                    if self.keep_body {
                        self.body.extend_from_slice(data);
                    }
                    self.body_len += data.len();
                    self.consumed += data.len();
                    return Ok(false);
                }
                State::Chunked(chunk) => {
                    let (used, done) = advance_chunked(chunk, data, &mut self.body, self.max_body)?;
                    self.consumed += used;
                    if done {
                        self.surplus = used < data.len();
                        return Ok(true);
                    }
                    data = &data[used..];
                }
                State::Spent | State::Failed(_) => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Reads a complete head and sets up the body's framing; true if the response is
    /// already whole (no body).
    fn start_body(&mut self, head: &[u8]) -> Result<bool, TrackerError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(TrackerError::MalformedHttp("incomplete response head"))
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(TrackerError::MalformedHttp("too many headers"))
            }
            Err(_) => return Err(TrackerError::MalformedHttp("invalid response head")),
        }
        let status = response
            .code
            .ok_or(TrackerError::MalformedHttp("no status code"))?;
        if status == 101 {
            return Err(TrackerError::MalformedHttp("unexpected protocol switch"));
        }
        if (100..200).contains(&status) {
            // An interim response: the real one follows.
            self.state = State::Head {
                buf: Vec::new(),
                line_len: 0,
                started: false,
            };
            return Ok(false);
        }
        self.status = status;
        let mut close = false;
        let mut keep_alive = false;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("connection") {
                for token in header.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        self.persistent = !close && (response.version == Some(1) || keep_alive);
        self.headers = response
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.trim_ascii().to_vec()))
            .collect();

        let mut content_length: Option<usize> = None;
        let mut chunked: Option<bool> = None;
        for header in response.headers.iter() {
            let value = header.value.trim_ascii();
            if header.name.eq_ignore_ascii_case("content-length") {
                let length = parse_content_length(value)?;
                if content_length.is_some_and(|l| l != length) {
                    return Err(TrackerError::MalformedHttp("conflicting Content-Length"));
                }
                content_length = Some(length);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                // Several headers form one list, and only its last coding says whether the
                // body is chunked. Codings we cannot undo are refused, as for
                // Content-Encoding.
                for coding in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    if coding.is_empty() {
                        // Empty list elements are allowed and mean nothing.
                    } else if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked = Some(true);
                    } else if coding.eq_ignore_ascii_case(b"identity") {
                        chunked = Some(false);
                    } else {
                        return Err(TrackerError::MalformedHttp(
                            "a transfer coding other than chunked",
                        ));
                    }
                }
            } else if header.name.eq_ignore_ascii_case("content-encoding")
                && !value.is_empty()
                && !value.eq_ignore_ascii_case(b"identity")
            {
                return Err(TrackerError::MalformedHttp(
                    "compressed body (we asked for identity)",
                ));
            }
        }

        // The body, unless chunked, is the run of bytes from here.
        self.body_start = Some(self.consumed);
        self.state = if status == 204 || status == 304 {
            return Ok(true);
        } else if let Some(chunked) = chunked {
            // Transfer-Encoding overrides Content-Length (RFC 9112, 6.3).
            if chunked {
                self.body_start = None;
                State::Chunked(Chunk::Size { line: Vec::new() })
            } else {
                State::UntilClose
            }
        } else if let Some(length) = content_length {
            if length > self.max_body {
                return Err(TrackerError::BodyTooLarge {
                    limit: self.max_body,
                });
            }
            if length == 0 {
                return Ok(true);
            }
            if self.keep_body {
                self.body.reserve_exact(length);
            }
            State::Length { remaining: length }
        } else {
            State::UntilClose
        };
        Ok(false)
    }
}

fn parse_content_length(value: &[u8]) -> Result<usize, TrackerError> {
    let bad = TrackerError::MalformedHttp("invalid Content-Length");
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    // At most 19 digits: the value fits a u64.
    let n = value
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    // A length past usize is past any body limit.
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Consumes chunked body bytes from `data`; returns how many were used and whether the
/// body (with its trailers) is complete.
fn advance_chunked(
    chunk: &mut Chunk,
    data: &[u8],
    body: &mut Vec<u8>,
    max_body: usize,
) -> Result<(usize, bool), TrackerError> {
    let mut i = 0;
    while i < data.len() {
        match chunk {
            Chunk::Size { line } => {
                let (part, ends_line) = match data[i..].iter().position(|&b| b == b'\n') {
                    Some(n) => (&data[i..i + n], true),
                    None => (&data[i..], false),
                };
                if line.len() + part.len() > MAX_CHUNK_LINE_LEN {
                    return Err(TrackerError::MalformedHttp("chunk size line too long"));
                }
                line.extend_from_slice(part);
                i += part.len();
                if !ends_line {
                    continue;
                }
                i += 1; // the line feed
                let size = parse_chunk_size(line)?;
                if size == 0 {
                    *chunk = Chunk::Trailer {
                        line_len: 0,
                        total: 0,
                    };
                } else {
                    if size > max_body - body.len() {
                        return Err(TrackerError::BodyTooLarge { limit: max_body });
                    }
                    *chunk = Chunk::Data { remaining: size };
                }
            }
            Chunk::Data { remaining } => {
                let take = (data.len() - i).min(*remaining);
                body.extend_from_slice(&data[i..i + take]);
                i += take;
                *remaining -= take;
                if *remaining == 0 {
                    *chunk = Chunk::DataEnd { seen_cr: false };
                }
            }
            Chunk::DataEnd { seen_cr } => {
                match data[i] {
                    b'\r' if !*seen_cr => *seen_cr = true,
                    b'\n' => *chunk = Chunk::Size { line: Vec::new() },
                    _ => {
                        return Err(TrackerError::MalformedHttp(
                            "chunk data not followed by CRLF",
                        ))
                    }
                }
                i += 1;
            }
            Chunk::Trailer { line_len, total } => {
                let b = data[i];
                i += 1;
                *total += 1;
                if *total > MAX_HEAD_LEN {
                    return Err(TrackerError::HeadTooLarge {
                        limit: MAX_HEAD_LEN,
                    });
                }
                match b {
                    b'\n' if *line_len == 0 => return Ok((i, true)),
                    b'\n' => *line_len = 0,
                    b'\r' => {}
                    _ => *line_len += 1,
                }
            }
        }
    }
    Ok((i, false))
}

/// Reads `1a3f[;ext=…][\r]`: hex digits, optional extensions (ignored).
fn parse_chunk_size(line: &[u8]) -> Result<usize, TrackerError> {
    let bad = TrackerError::MalformedHttp("invalid chunk size");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let size = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad);
    }
    let n = size.iter().fold(0u64, |n, &d| {
        // Checked above: every byte is a hex digit.
        let digit = (d as char).to_digit(16).unwrap_or(0);
        n * 16 + u64::from(digit)
    });
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{AnnounceEvent, AnnounceParams};
    use crate::types::{InfoHash, PeerId};
    use quickcheck::quickcheck;

    fn params() -> AnnounceParams {
        let mut hash = [0u8; 20];
        for (i, b) in hash.iter_mut().enumerate() {
            *b = (i as u8) * 13;
        }
        let mut p = AnnounceParams::new(InfoHash(hash), PeerId(*b"-SH0100-a b~c.d_e%f\xff"), 6881);
        p.uploaded = 1;
        p.downloaded = 2;
        p.left = 3;
        p.key = 0xdead_beef;
        p.event = AnnounceEvent::Started;
        p
    }

    #[test]
    fn announce_request_bytes() {
        let url = TrackerUrl::parse("http://tracker.example:6969/announce").unwrap();
        let request = http_announce_request(&url, &params());
        let expected = format!(
            "GET /announce?info_hash=%00%0D%1A%274AN%5Bhu%82%8F%9C%A9%B6%C3%D0%DD%EA%F7\
             &peer_id=-SH0100-a%20b~c.d_e%25f%FF\
             &port=6881&uploaded=1&downloaded=2&left=3&compact=1&numwant=50&key=DEADBEEF\
             &event=started HTTP/1.1\r\n\
             Host: tracker.example:6969\r\n\
             User-Agent: shoal/{}\r\n\
             Accept-Encoding: identity\r\n\
             Connection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8(request).unwrap(), expected);
    }

    #[test]
    fn optional_fields_and_existing_queries() {
        let mut p = params();
        p.event = AnnounceEvent::None;
        p.compact = false;
        p.numwant = 0;
        p.tracker_id = Some(b"t 1".to_vec());
        p.ip = Some("2001:db8::1".parse().unwrap());
        let q = announce_query(&p);
        assert!(
            q.ends_with("&compact=0&numwant=0&key=DEADBEEF&trackerid=t%201&ip=2001%3Adb8%3A%3A1")
        );
        assert!(!q.contains("event"));

        let line = |url: &str| {
            let url = TrackerUrl::parse(url).unwrap();
            let req = String::from_utf8(http_announce_request(&url, &p)).unwrap();
            req.lines().next().unwrap().to_string()
        };
        assert!(line("http://t.example/a?passkey=XyZ").starts_with("GET /a?passkey=XyZ&info_hash="));
        assert!(line("http://t.example/a?").starts_with("GET /a?info_hash="));
        assert!(line("http://t.example/a?pk=1&").starts_with("GET /a?pk=1&info_hash="));
        assert!(
            line("http://t.example/pk123/announce").starts_with("GET /pk123/announce?info_hash=")
        );
        let v6 = TrackerUrl::parse("https://[::1]:8443/announce").unwrap();
        let req = String::from_utf8(http_announce_request(&v6, &p)).unwrap();
        assert!(req.contains("\r\nHost: [::1]:8443\r\n"));
    }

    #[test]
    fn scrape_request_bytes() {
        let url = TrackerUrl::parse("http://t.example/x/announce?pk=1").unwrap();
        let req = http_scrape_request(&url, &[InfoHash([0xaa; 20]), InfoHash([b'a'; 20])]).unwrap();
        let req = String::from_utf8(req).unwrap();
        let first = req.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "GET /x/scrape?pk=1&info_hash={}&info_hash={} HTTP/1.1",
                "%AA".repeat(20),
                "a".repeat(20)
            )
        );
        let all = http_scrape_request(
            &TrackerUrl::parse("http://t.example/announce").unwrap(),
            &[],
        )
        .unwrap();
        assert!(all.starts_with(b"GET /scrape HTTP/1.1\r\n"));
        let none = TrackerUrl::parse("http://t.example/tracker").unwrap();
        assert_eq!(http_scrape_request(&none, &[]), None);
    }

    fn feed_all(input: &[u8]) -> Result<HttpProgress, TrackerError> {
        no_headers(HttpResponseReader::new().feed(input))
    }

    /// The progress with the headers dropped, to compare with [`done`].
    fn no_headers(p: Result<HttpProgress, TrackerError>) -> Result<HttpProgress, TrackerError> {
        p.map(|p| match p {
            HttpProgress::Done(mut r) => {
                r.headers.clear();
                HttpProgress::Done(r)
            }
            other => other,
        })
    }

    fn done(status: u16, body: &[u8]) -> HttpProgress {
        HttpProgress::Done(HttpResponse {
            status,
            body: body.to_vec(),
            headers: Vec::new(),
        })
    }

    /// Feeds `input` split at `at`, then finishes if still incomplete.
    fn split_read(input: &[u8], at: usize) -> Result<HttpResponse, TrackerError> {
        let mut r = HttpResponseReader::new();
        for part in [&input[..at], &input[at..]] {
            if let HttpProgress::Done(resp) = r.feed(part)? {
                return Ok(resp);
            }
        }
        r.finish()
    }

    #[test]
    fn keep_alive_follows_version_header_and_framing() {
        let cases: &[(&[u8], bool)] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", true),
            (b"HTTP/1.1 206 x\r\nConnection: Close\r\nContent-Length: 2\r\n\r\nhi", false),
            (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nhi", false),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", false),
            (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi", true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", true),
            (b"HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
            // Bytes past the end: not trusted with the next request.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiX", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nX", false),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", false),
        ];
        for (raw, want) in cases {
            let mut r = HttpResponseReader::new();
            assert!(matches!(r.feed(raw), Ok(HttpProgress::Done(_))));
            assert_eq!(r.keeps_alive(), *want, "{}", String::from_utf8_lossy(raw));
        }
        // Read to the close: never.
        let mut r = HttpResponseReader::new();
        assert!(matches!(
            r.feed(b"HTTP/1.1 200 OK\r\n\r\nabc"),
            Ok(HttpProgress::Incomplete)
        ));
        assert!(!r.keeps_alive());
        assert!(r.finish().is_ok());
        assert!(!r.keeps_alive());
        // Not whole yet: no.
        let mut r = HttpResponseReader::new();
        let _ = r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab");
        assert!(!r.keeps_alive());
    }

    #[test]
    fn framing_finds_the_body_in_the_bytes_fed() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"HTTP/1.1 206 x\r\nContent-Length: 5\r\n\r\nhello", None),
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
                None,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXYZ", None),
            (b"HTTP/1.1 204 x\r\n\r\n", None),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
                Some(b"hi"),
            ),
        ];
        for (raw, chunked_body) in cases {
            let mut keep = HttpResponseReader::new();
            let Ok(HttpProgress::Done(kept)) = keep.feed(raw) else {
                panic!("{}", String::from_utf8_lossy(raw))
            };
            // Fed in two parts at every split: the same body, found where it is.
            for split in 0..=raw.len() {
                let mut frame = HttpResponseReader::framing(100);
                let first = frame.feed(&raw[..split]).unwrap();
                let framed = match first {
                    HttpProgress::Done(r) => r,
                    HttpProgress::Incomplete => match frame.feed(&raw[split..]).unwrap() {
                        HttpProgress::Done(r) => r,
                        HttpProgress::Incomplete => panic!("not whole"),
                    },
                };
                assert_eq!(framed.status, kept.status);
                match frame.body_range() {
                    Some(range) => {
                        assert!(framed.body.is_empty());
                        assert_eq!(&raw[range], &kept.body[..]);
                        assert!(chunked_body.is_none());
                    }
                    None => assert_eq!(Some(&framed.body[..]), *chunked_body),
                }
            }
        }
        // Read to the close: the rest of the bytes.
        let mut frame = HttpResponseReader::framing(100);
        let raw = b"HTTP/1.1 200 OK\r\n\r\nabc";
        assert_eq!(frame.feed(raw), Ok(HttpProgress::Incomplete));
        assert_eq!(frame.body_range(), None, "not whole yet");
        assert!(frame.finish().unwrap().body.is_empty());
        assert_eq!(&raw[frame.body_range().unwrap()], b"abc");
        // Bounds hold without a body kept.
        let mut frame = HttpResponseReader::framing(2);
        assert!(frame.feed(b"HTTP/1.1 200 OK\r\n\r\nabc").is_err());
    }

    #[test]
    fn content_length() {
        let input =
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloEXTRA";
        assert_eq!(feed_all(input), Ok(done(200, b"hello")));
        let mut r = HttpResponseReader::new();
        assert_eq!(r.feed(&input[..40]), Ok(HttpProgress::Incomplete));
        assert_eq!(no_headers(r.feed(&input[40..])), Ok(done(200, b"hello")));
        assert!(r.feed(b"more").is_err());
        assert!(r.finish().is_err());
        for at in 0..=input.len() {
            assert_eq!(split_read(input, at).unwrap().body, b"hello");
        }
    }

    #[test]
    fn bodiless_and_interim_responses() {
        assert_eq!(
            feed_all(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Ok(done(204, b""))
        );
        assert_eq!(
            feed_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Ok(done(200, b""))
        );
        assert_eq!(
            feed_all(
                b"\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\nContent-Length: 2\n\nno"
            ),
            Ok(done(404, b"no"))
        );
    }

    #[test]
    fn chunked_split_at_every_byte_boundary() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 3\r\n\r\n\
                      5;name=value\r\nhello\r\n1\r\n \r\n00006\nworld!\n0\r\nX-Trailer: 1\r\n\r\nJUNK";
        assert_eq!(feed_all(input), Ok(done(200, b"hello world!")));
        for at in 0..=input.len() {
            assert_eq!(
                split_read(input, at).unwrap().body,
                b"hello world!",
                "split at {at}"
            );
        }
        // Byte by byte.
        let mut r = HttpResponseReader::new();
        let mut result = None;
        for (i, b) in input.iter().enumerate() {
            if let HttpProgress::Done(resp) = r.feed(std::slice::from_ref(b)).unwrap() {
                result = Some((i, resp));
                break;
            }
        }
        let (at, resp) = result.unwrap();
        assert_eq!(at, input.len() - 5);
        assert_eq!(resp.body, b"hello world!");
    }

    #[test]
    fn chunked_errors() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for bad in [
            "x\r\n",
            "+5\r\nhello\r\n",
            "5\r\nhelloX",
            "\r\n",
            "fffffffffffffffff\r\n",
        ] {
            let input = format!("{head}{bad}");
            assert!(
                matches!(
                    feed_all(input.as_bytes()),
                    Err(TrackerError::MalformedHttp(_))
                ),
                "{bad:?}"
            );
        }
        let long_ext = format!("{head}5;{}", "x".repeat(2000));
        assert!(feed_all(long_ext.as_bytes()).is_err());
        let big = format!("{head}300000\r\n");
        assert_eq!(
            feed_all(big.as_bytes()),
            Err(TrackerError::BodyTooLarge {
                limit: DEFAULT_MAX_BODY_LEN
            })
        );
        let mut r = HttpResponseReader::new();
        assert_eq!(
            r.feed(format!("{head}5\r\nhel").as_bytes()),
            Ok(HttpProgress::Incomplete)
        );
        assert!(matches!(r.finish(), Err(TrackerError::MalformedHttp(_))));
        let endless_trailer = format!("{head}0\r\n{}", "X: y\r\n".repeat(3000));
        assert_eq!(
            feed_all(endless_trailer.as_bytes()),
            Err(TrackerError::HeadTooLarge {
                limit: MAX_HEAD_LEN
            })
        );
    }

    #[test]
    fn close_delimited() {
        let mut r = HttpResponseReader::new();
        assert_eq!(
            r.feed(b"HTTP/1.0 200 OK\r\n\r\nd8:intervali"),
            Ok(HttpProgress::Incomplete)
        );
        assert_eq!(r.feed(b"1800ee"), Ok(HttpProgress::Incomplete));
        let resp = r.finish().unwrap();
        assert_eq!(resp.body, b"d8:intervali1800ee");
        assert_eq!(resp.announce().unwrap().interval.as_secs(), 1800);

        let mut small = HttpResponseReader::with_max_body(10);
        assert_eq!(
            small.feed(b"HTTP/1.1 200 OK\r\n\r\n0123456789"),
            Ok(HttpProgress::Incomplete)
        );
        assert_eq!(
            small.feed(b"x"),
            Err(TrackerError::BodyTooLarge { limit: 10 })
        );
        assert_eq!(
            small.feed(b"x"),
            Err(TrackerError::BodyTooLarge { limit: 10 })
        );
    }

    #[test]
    fn oversized_head_and_body() {
        let huge_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD_LEN));
        assert_eq!(
            feed_all(huge_head.as_bytes()),
            Err(TrackerError::HeadTooLarge {
                limit: MAX_HEAD_LEN
            })
        );
        // Endless tiny lines are bounded too.
        let mut r = HttpResponseReader::new();
        r.feed(b"HTTP/1.1 200 OK\r\n").unwrap();
        let mut result = Ok(HttpProgress::Incomplete);
        for _ in 0..10_000 {
            result = r.feed(b"A: b\r\n");
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
        let mut small = HttpResponseReader::with_max_body(100);
        assert_eq!(
            small.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n"),
            Err(TrackerError::BodyTooLarge { limit: 100 })
        );
        assert!(
            feed_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n").is_err()
        );
    }

    #[test]
    fn malformed_heads() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 101 Switching\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ] {
            assert!(
                matches!(feed_all(bad), Err(TrackerError::MalformedHttp(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            feed_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx"),
            Ok(done(200, b"x"))
        );
        let mut r = HttpResponseReader::new();
        assert!(matches!(r.finish(), Err(TrackerError::MalformedHttp(_))));
        let mut r = HttpResponseReader::new();
        r.feed(b"HTTP/1.1 200").unwrap();
        assert!(matches!(r.finish(), Err(TrackerError::MalformedHttp(_))));
    }

    #[test]
    fn status_and_failure_bodies() {
        let resp = HttpResponse {
            status: 403,
            body: b"d14:failure reason9:forbiddene".to_vec(),
            headers: Vec::new(),
        };
        assert_eq!(
            resp.announce(),
            Err(TrackerError::Failure("forbidden".into()))
        );
        let resp = HttpResponse {
            status: 502,
            body: b"<html>bad gateway</html>".to_vec(),
            headers: Vec::new(),
        };
        assert_eq!(resp.announce(), Err(TrackerError::HttpStatus(502)));
        assert_eq!(resp.scrape(), Err(TrackerError::HttpStatus(502)));
    }

    quickcheck! {
        fn arbitrary_bytes_never_panic_the_reader(input: Vec<u8>, splits: Vec<usize>) -> bool {
            let mut r = HttpResponseReader::with_max_body(1000);
            let mut rest = &input[..];
            for s in splits {
                let at = s % (rest.len() + 1);
                let _ = r.feed(&rest[..at]);
                rest = &rest[at..];
            }
            let _ = r.feed(rest);
            let _ = r.finish();
            true
        }

        fn arbitrary_bodies_after_a_valid_head(body: Vec<u8>, chunked: bool) -> bool {
            let head: &[u8] = if chunked {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\n\r\n"
            };
            let mut r = HttpResponseReader::with_max_body(1000);
            let _ = r.feed(head);
            for b in &body {
                if r.feed(std::slice::from_ref(b)).is_err() {
                    return true;
                }
            }
            let _ = r.finish();
            true
        }

        fn chunked_bodies_decode_at_any_split(payload: Vec<Vec<u8>>, at: usize) -> bool {
            let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for chunk in payload.iter().filter(|c| !c.is_empty()) {
                input.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                input.extend_from_slice(chunk);
                input.extend_from_slice(b"\r\n");
            }
            input.extend_from_slice(b"0\r\n\r\n");
            let at = at % (input.len() + 1);
            split_read(&input, at).map(|r| r.body) == Ok(payload.concat())
        }
    }
}
