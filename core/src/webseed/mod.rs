//! Web seeds (BEP 19, `url-list`): downloading a torrent's pieces from a plain HTTP server,
//! sans-IO like the tracker client.
//!
//! - `url`: the URL of each file ([`file_urls`]): `name` or `name/path…` appended to a
//!   URL ending in `/`, each component percent-encoded.
//! - `plan`: a run of the torrent's bytes → the byte range of each file it spans
//!   ([`plan`]), one request each.
//! - `answer`: the `GET` with `Range: bytes=a-b` ([`range_request`]) and the checks on its
//!   answer ([`read_answer`]): `206` with a matching `Content-Range` and length, `200` only
//!   for a whole file, bounded redirects, bodies neither cut short nor too long. The
//!   answer is framed by the tracker client's bounded HTTP reader, not a second parser.
//! - `seed`: [`WebSeed`], one web seed's state machine: the jobs under way (two side by
//!   side by default, each on a connection of its own), failures with exponential backoff, dropped after too many in a row, each failure with a
//!   [`WebSeedError`] saying why.
//!
//! - `serve`: the other end, a web server's answer to a request for a file
//!   ([`serve::answer_file`]): single ranges, 416, `If-Modified-Since`.
//!
//! What to fetch is the engine's choice (it asks its picker, see `engine::webseeds`), and
//! what comes back is data like a peer's blocks: written, hashed and verified before any
//! of it counts. Nothing here trusts a byte.

mod answer;
mod plan;
mod seed;
pub mod serve;
mod url;

use std::fmt;

use crate::tracker::TrackerError;
use crate::IoError;

pub use answer::{answer_reader, range_request, read_answer, Answer};
pub use plan::{plan, FileRange};
pub use seed::{Failure, HttpGet, Step, WebSeed, WebSeedConfig};
pub use url::file_urls;

/// Why a web seed failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebSeedError {
    /// The `url-list` entry (or a file's URL built from it) is not an `http(s)` URL.
    InvalidUrl(TrackerError),
    /// The runtime could not carry out the request (connect, name lookup, TLS, time out).
    Transport(IoError),
    /// The answer is not HTTP/1.x as we read it, or its head is too long.
    Http(TrackerError),
    /// A status that is neither `206`, `200` nor a redirect (`404`, `5xx` …).
    Status(u16),
    /// `200` (the whole file) for a request of part of it: the server ignores ranges.
    NotPartial,
    /// A `206` without a `Content-Range` naming exactly the range asked for.
    ContentRange,
    /// A `Content-Length` that is not the length asked for.
    Length {
        /// The length asked for.
        expected: u64,
        /// The length the server said (`u64::MAX` if unreadable).
        got: u64,
    },
    /// The connection closed before the whole body came.
    CutShort,
    /// More body than asked for.
    TooLong,
    /// A redirect without a usable `Location` (missing, not `http(s)`, not a URL).
    BadRedirect,
    /// More redirects in a row than allowed.
    TooManyRedirects,
    /// A piece with bytes from this web seed failed its hash check.
    HashFailed(crate::PieceIndex),
}

impl fmt::Display for WebSeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebSeedError::InvalidUrl(e) => write!(f, "not a web seed URL: {e}"),
            WebSeedError::Transport(e) => write!(f, "{e}"),
            WebSeedError::Http(e) => write!(f, "bad HTTP answer: {e}"),
            WebSeedError::Status(s) => write!(f, "HTTP status {s}"),
            WebSeedError::NotPartial => f.write_str("200 (whole file) for a range request"),
            WebSeedError::ContentRange => {
                f.write_str("Content-Range missing or not the range asked for")
            }
            WebSeedError::Length { expected, got } => {
                write!(f, "Content-Length {got}, expected {expected}")
            }
            WebSeedError::CutShort => f.write_str("body cut short"),
            WebSeedError::TooLong => f.write_str("body longer than asked for"),
            WebSeedError::BadRedirect => f.write_str("redirect without a usable Location"),
            WebSeedError::TooManyRedirects => f.write_str("too many redirects"),
            WebSeedError::HashFailed(p) => write!(f, "piece {p} failed its hash check"),
        }
    }
}

impl std::error::Error for WebSeedError {}

#[cfg(test)]
mod tests;
