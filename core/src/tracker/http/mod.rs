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

mod reader;
#[cfg(test)]
mod tests;

pub use reader::HttpResponseReader;
