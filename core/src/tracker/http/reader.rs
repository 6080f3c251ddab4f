//! [`HttpResponseReader`]: one HTTP/1.x response framed from bytes fed in as they arrive
//! (see the parent module for what it accepts and its bounds).

use super::{HttpProgress, HttpResponse, DEFAULT_MAX_BODY_LEN, MAX_HEAD_LEN};
use crate::tracker::TrackerError;

/// The longest chunk-size line (size, extensions, CRLF).
const MAX_CHUNK_LINE_LEN: usize = 1024;

/// The most headers in a response head; more is not a tracker.
const MAX_HEADERS: usize = 64;

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
