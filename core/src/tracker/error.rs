//! Why an announce or scrape did not give an answer.

use std::fmt;

use crate::{bencode, IoError};

/// Everything that can go wrong between asking a tracker and having its answer.
///
/// Errors from remote input carry what was found, never a panic. Texts that come from the
/// tracker ([`Failure`](TrackerError::Failure), [`UdpError`](TrackerError::UdpError)) are
/// cut to [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN) bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackerError {
    /// The tracker refused the request and said why (`failure reason`).
    Failure(String),
    /// The HTTP status was not 2xx and the body held no `failure reason`.
    HttpStatus(u16),
    /// The HTTP response is not HTTP/1.x as we can read it: a bad head, a bad chunk, or the
    /// connection closed before the end of the body.
    MalformedHttp(&'static str),
    /// The response head is longer than the limit.
    HeadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is longer than the limit.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not bencode.
    Bencode(bencode::Error),
    /// The body is bencode but not an answer: not a dictionary, or a field of the wrong type.
    /// The text names what is wrong.
    MalformedResponse(&'static str),
    /// An announce answer without an `interval`.
    MissingInterval,
    /// An `interval` or `min interval` that is not a non-negative integer.
    InvalidInterval,
    /// A UDP tracker datagram that is not a BEP 15 packet.
    BadUdpPacket(&'static str),
    /// A UDP tracker answered with an error message.
    UdpError(String),
    /// No answer in time from a UDP tracker, after every retransmission. (An HTTP request
    /// the runtime gave up on is a [`Transport`](TrackerError::Transport) error of kind
    /// [`TimedOut`](std::io::ErrorKind::TimedOut).)
    Timeout,
    /// A URL whose scheme is neither `http`, `https` nor `udp`.
    UnsupportedScheme(String),
    /// A URL that cannot be a tracker's; the text says why.
    InvalidUrl(&'static str),
    /// The runtime could not carry the request: connection refused, name not found, TLS
    /// failure, no answer in time … (its kind and words, which name the URL).
    Transport(IoError),
    /// A UDP tracker named by a host name: the engine cannot resolve names, and only UDP
    /// trackers given by IP address (or `localhost`) are supported so far.
    UdpHostName,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Failure(reason) => write!(f, "tracker failure: {reason}"),
            TrackerError::HttpStatus(code) => write!(f, "tracker answered HTTP status {code}"),
            TrackerError::MalformedHttp(what) => write!(f, "malformed HTTP response: {what}"),
            TrackerError::HeadTooLarge { limit } => {
                write!(f, "HTTP response head exceeds {limit} bytes")
            }
            TrackerError::BodyTooLarge { limit } => {
                write!(f, "tracker response body exceeds {limit} bytes")
            }
            TrackerError::Bencode(e) => write!(f, "tracker response: {e}"),
            TrackerError::MalformedResponse(what) => write!(f, "tracker response: {what}"),
            TrackerError::MissingInterval => f.write_str("tracker response has no interval"),
            TrackerError::InvalidInterval => {
                f.write_str("tracker response has an interval that is not a non-negative integer")
            }
            TrackerError::BadUdpPacket(what) => write!(f, "bad UDP tracker packet: {what}"),
            TrackerError::UdpError(message) => write!(f, "UDP tracker error: {message}"),
            TrackerError::Timeout => f.write_str("tracker did not answer in time"),
            TrackerError::UnsupportedScheme(scheme) => {
                write!(f, "unsupported tracker URL scheme `{scheme}`")
            }
            TrackerError::InvalidUrl(what) => write!(f, "invalid tracker URL: {what}"),
            TrackerError::Transport(e) => write!(f, "cannot reach the tracker: {e}"),
            TrackerError::UdpHostName => f.write_str(
                "cannot reach the tracker: UDP trackers named by host name are not supported \
                 yet, only IP addresses",
            ),
        }
    }
}

impl std::error::Error for TrackerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrackerError::Bencode(e) => Some(e),
            TrackerError::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl From<bencode::Error> for TrackerError {
    fn from(e: bencode::Error) -> Self {
        TrackerError::Bencode(e)
    }
}
