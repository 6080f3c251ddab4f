//! The server side of a web seed: the answer to a `GET` or `HEAD` for a file, sans-IO.
//!
//! The runtime finds the file, learns its length and modification time, and asks
//! [`answer_file`] what to send: a response head and, if any, the byte range of the file
//! that follows it as the body. The runtime then streams that range from the file (never
//! loading it whole). What is decided here (RFC 9110):
//!
//! - `If-Modified-Since` (an HTTP-date; anything else is ignored) not older than the
//!   file's modification time, to the second: `304 Not Modified`, no body. It is looked at
//!   before `Range`, as RFC 9110 §13.2.2 orders the preconditions.
//! - One range (`bytes=a-b`, `bytes=a-`, `bytes=-n`): `206` with `Content-Range`, the last
//!   position cut to the end of the file. A first position at or past the end (or a
//!   suffix of 0 bytes, or any range of an empty file): `416` with `Content-Range:
//!   bytes */LEN`.
//! - Several ranges (`bytes=0-1,5-9`): only one is supported, so the header is ignored and
//!   the whole file answered `200`, which §14.2 allows a server to do for any `Range`. This
//!   also answers overlapping or absurdly many ranges with one bounded stream instead of
//!   a multipart body per range.
//! - A `Range` that does not parse (another unit, a range whose last position is before
//!   its first, garbage): ignored, `200` with the whole file (§14.2: an invalid range set
//!   is ignored). Numbers too large for 64 bits count as past the end of any file.
//! - Every answer says `Accept-Ranges: bytes`, `Last-Modified` when the time is known,
//!   and `Connection: keep-alive` or `Connection: close` as the request allows.

use std::time::SystemTime;

use crate::tracker::server::http::reason;
use crate::tracker::server::{Method, RequestHead};

/// What to send for a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileAnswer {
    /// The response head, blank line included.
    pub head: Vec<u8>,
    /// The status it carries.
    pub status: u16,
    /// The body: `len` bytes of the file from `offset` (none for `HEAD`, 304 and 416).
    pub body: Option<BodyRange>,
}

/// A span of a file sent as a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyRange {
    /// The first byte's offset in the file.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// What a `Range` header asks of a file `len` bytes long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// The whole file: no usable `Range`, or one this server does not support.
    Whole,
    /// Bytes `first..=last` (`last < len`).
    Part {
        /// First byte.
        first: u64,
        /// Last byte, included.
        last: u64,
    },
    /// Nothing of the file can satisfy it: 416.
    Unsatisfiable,
}

/// Reads a `Range` header value against a file of `len` bytes (see the module docs).
pub fn parse_range(value: &[u8], len: u64) -> RangeAsk {
    let Some(set) = strip_prefix_ignore_case(value.trim_ascii(), b"bytes=") else {
        return RangeAsk::Whole;
    };
    if set.contains(&b',') {
        return RangeAsk::Whole;
    }
    let Some(dash) = set.iter().position(|&b| b == b'-') else {
        return RangeAsk::Whole;
    };
    let (first, last) = (set[..dash].trim_ascii(), set[dash + 1..].trim_ascii());
    match (number(first), number(last)) {
        // bytes=-n: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || len == 0 {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part {
                    first: len - n.min(len),
                    last: len - 1,
                }
            }
        }
        (Some(a), Some(b)) if a <= b => part_from(a, b, len),
        (Some(a), None) if last.is_empty() => part_from(a, u64::MAX, len),
        _ => RangeAsk::Whole,
    }
}

fn part_from(first: u64, last: u64, len: u64) -> RangeAsk {
    if first >= len {
        RangeAsk::Unsatisfiable
    } else {
        RangeAsk::Part {
            first,
            last: last.min(len - 1),
        }
    }
}

/// A decimal number, saturating at `u64::MAX` (past any file's end); `None` if `digits`
/// is empty or holds anything else.
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Seconds since the epoch, the precision of an HTTP-date.
fn whole_seconds(t: SystemTime) -> Option<u64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// The answer to `head` for a file of `len` bytes last modified at `modified`, served as
/// `content_type`.
pub fn answer_file(
    head: &RequestHead<'_>,
    len: u64,
    modified: Option<SystemTime>,
    content_type: &str,
) -> FileAnswer {
    let keep_alive = head.keep_alive;
    let not_modified = match (head.if_modified_since, modified.and_then(whole_seconds)) {
        (Some(since), Some(mtime)) => std::str::from_utf8(since)
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok())
            .and_then(whole_seconds)
            .is_some_and(|since| mtime <= since),
        _ => false,
    };
    let (status, span) = if not_modified {
        (304, None)
    } else {
        match head.range.map_or(RangeAsk::Whole, |r| parse_range(r, len)) {
            RangeAsk::Whole => (200, Some((0, len))),
            RangeAsk::Part { first, last } => (206, Some((first, last - first + 1))),
            RangeAsk::Unsatisfiable => (416, None),
        }
    };
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if status != 304 {
        out.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    out.push_str("Accept-Ranges: bytes\r\n");
    if let Some(m) = modified {
        out.push_str(&format!(
            "Last-Modified: {}\r\n",
            httpdate::fmt_http_date(m)
        ));
    }
    match (status, span) {
        (206, Some((offset, n))) => out.push_str(&format!(
            "Content-Range: bytes {offset}-{}/{len}\r\nContent-Length: {n}\r\n",
            offset + n - 1
        )),
        (200, Some((_, n))) => out.push_str(&format!("Content-Length: {n}\r\n")),
        (416, _) => out.push_str(&format!(
            "Content-Range: bytes */{len}\r\nContent-Length: 0\r\n"
        )),
        _ => {}
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let body = span
        .filter(|&(_, n)| n > 0 && head.method == Method::Get)
        .map(|(offset, len)| BodyRange { offset, len });
    FileAnswer {
        head: out.into_bytes(),
        status,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::server::{parse_request_head, MAX_REQUEST_HEAD};
    use quickcheck::quickcheck;
    use std::time::Duration;

    fn ask(range: &str, len: u64) -> RangeAsk {
        parse_range(range.as_bytes(), len)
    }

    #[test]
    fn single_ranges() {
        use RangeAsk::*;
        assert_eq!(ask("bytes=0-9", 100), Part { first: 0, last: 9 });
        assert_eq!(
            ask("bytes=90-", 100),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            ask("bytes=90-1000", 100),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            ask("bytes=-10", 100),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(ask("bytes=-1000", 100), Part { first: 0, last: 99 });
        assert_eq!(ask("BYTES= 5-5", 100), Part { first: 5, last: 5 });
        assert_eq!(ask("bytes=100-", 100), Unsatisfiable);
        assert_eq!(ask("bytes=-0", 100), Unsatisfiable);
        assert_eq!(ask("bytes=0-", 0), Unsatisfiable);
        assert_eq!(
            ask("bytes=99999999999999999999999-", 100),
            Unsatisfiable,
            "a first position past 64 bits is past the end"
        );
        assert_eq!(
            ask("bytes=0-99999999999999999999999", 100),
            Part { first: 0, last: 99 }
        );
    }

    #[test]
    fn unsupported_or_invalid_ranges_mean_the_whole_file() {
        for r in [
            "bytes=0-1,5-9",
            "bytes=0-99,0-99,0-99",
            "items=0-9",
            "bytes=9-0",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes",
            "",
        ] {
            assert_eq!(ask(r, 100), RangeAsk::Whole, "{r:?}");
        }
    }

    fn head_of(request: &str) -> RequestHead<'_> {
        parse_request_head(request.as_bytes(), MAX_REQUEST_HEAD)
            .unwrap()
            .unwrap()
    }

    fn text(a: &FileAnswer) -> String {
        String::from_utf8(a.head.clone()).unwrap()
    }

    #[test]
    fn answers() {
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let a = answer_file(
            &head_of("GET /f HTTP/1.1\r\nRange: bytes=10-19\r\n\r\n"),
            100,
            Some(mtime),
            "application/octet-stream",
        );
        assert_eq!(a.status, 206);
        assert_eq!(
            a.body,
            Some(BodyRange {
                offset: 10,
                len: 10
            })
        );
        let t = text(&a);
        assert!(t.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{t}");
        assert!(t.contains("Content-Range: bytes 10-19/100\r\n"), "{t}");
        assert!(t.contains("Content-Length: 10\r\n"), "{t}");
        assert!(
            t.contains("Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
            "{t}"
        );
        assert!(t.ends_with("Connection: keep-alive\r\n\r\n"), "{t}");

        let a = answer_file(
            &head_of("HEAD /f HTTP/1.0\r\n\r\n"),
            100,
            None,
            "text/plain",
        );
        assert_eq!((a.status, a.body), (200, None));
        assert!(text(&a).contains("Content-Length: 100\r\n"));
        assert!(text(&a).ends_with("Connection: close\r\n\r\n"));

        let a = answer_file(
            &head_of("GET /f HTTP/1.1\r\nRange: bytes=100-\r\n\r\n"),
            100,
            None,
            "text/plain",
        );
        assert_eq!((a.status, a.body), (416, None));
        assert!(text(&a).contains("Content-Range: bytes */100\r\n"));

        let since = |s: &str| {
            answer_file(
                &head_of(&format!(
                    "GET /f HTTP/1.1\r\nIf-Modified-Since: {s}\r\nRange: bytes=0-0\r\n\r\n"
                )),
                100,
                Some(mtime),
                "text/plain",
            )
        };
        assert_eq!(since("Sun, 06 Nov 1994 08:49:37 GMT").status, 304);
        assert_eq!(since("Sun, 06 Nov 1994 08:49:37 GMT").body, None);
        assert_eq!(since("Sun, 06 Nov 1994 08:49:36 GMT").status, 206);
        assert_eq!(since("yesterday").status, 206);

        let a = answer_file(&head_of("GET /f HTTP/1.1\r\n\r\n"), 0, None, "text/plain");
        assert_eq!((a.status, a.body), (200, None), "an empty file has no body");
    }

    quickcheck! {
        fn any_range_is_inside_the_file(range: Vec<u8>, len: u64) -> bool {
            match parse_range(&range, len) {
                RangeAsk::Part { first, last } => first <= last && last < len,
                _ => true,
            }
        }
    }
}
