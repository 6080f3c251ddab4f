//! One range request as HTTP/1.1 bytes, and the checks on its answer.
//!
//! The request is a `GET` with `Range: bytes=a-b`, `Connection: keep-alive` (a runtime may
//! reuse the connection: the answer is framed by its length, never by the close) and
//! `Accept-Encoding: identity`. The answer is read by the tracker client's bounded reader
//! ([`HttpResponseReader`]): at most [`MAX_HEAD_LEN`](crate::tracker::http::MAX_HEAD_LEN)
//! of head, and a body of at most the length asked for, so a huge `Content-Length` is
//! refused before a byte of body is read. Then:
//!
//! - `206` must carry `Content-Range: bytes a-b/total` naming exactly the range asked for
//!   (a total, if given, must be the file's length), a `Content-Length`, if any, equal to
//!   the range's length, and a body of exactly that length;
//! - `200` is the whole file: accepted only when the range asked for is the whole file and
//!   the body is exactly that long (a server that ignores `Range` for part of a file would
//!   otherwise hand us the wrong bytes);
//! - `301`, `302`, `303`, `307` and `308` with a `Location` are redirects (absolute
//!   `http(s)` URLs or absolute paths on the same server; never from `https` down to
//!   `http`);
//! - anything else is a [`WebSeedError::Status`]; a connection closed inside the body is
//!   [`WebSeedError::CutShort`].

use bytes::Bytes;

use crate::tracker::http::{HttpProgress, HttpResponse, HttpResponseReader, USER_AGENT};
use crate::tracker::{Scheme, TrackerError, TrackerUrl};

use super::plan::FileRange;
use super::WebSeedError;

/// What a valid answer to a range request is.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The bytes asked for, exactly as many (a slice of the answer: not copied).
    Data(Bytes),
    /// Ask again there.
    Redirect(TrackerUrl),
}

/// The HTTP/1.1 request for `range` of the file at `url`.
pub fn range_request(url: &TrackerUrl, range: &FileRange) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\n\
         Host: {}\r\n\
         User-Agent: {USER_AGENT}\r\n\
         Range: bytes={}-{}\r\n\
         Accept-Encoding: identity\r\n\
         Connection: keep-alive\r\n\
         \r\n",
        url.path_and_query(),
        url.host_header(),
        range.offset,
        range.last(),
    )
    .into_bytes()
}

/// A reader that frames the answer to a request of `len` bytes: the body may be no longer.
/// It keeps no body that is one run of the bytes fed
/// ([`HttpResponseReader::framing`]): a runtime needs only the end of the answer.
pub fn answer_reader(len: u64) -> HttpResponseReader {
    HttpResponseReader::framing(usize::try_from(len).unwrap_or(usize::MAX))
}

/// Reads and checks the whole answer `raw` (every byte the server sent for this request)
/// to a request of `range` of a file `file_len` bytes long, fetched from `url`. The data
/// of an answer framed by its length is a slice of `raw`, not a copy.
pub fn read_answer(
    raw: &Bytes,
    url: &TrackerUrl,
    range: &FileRange,
    file_len: u64,
) -> Result<Answer, WebSeedError> {
    let mut reader = answer_reader(range.len);
    let fed = reader.feed(raw).map_err(|e| match (e, reader.status()) {
        // A body longer than asked for is first of all the wrong answer.
        (TrackerError::BodyTooLarge { .. }, Some(200)) => WebSeedError::NotPartial,
        (TrackerError::BodyTooLarge { .. }, Some(s)) if !(200..300).contains(&s) => {
            WebSeedError::Status(s)
        }
        (e, _) => http_error(e),
    })?;
    let mut response = match fed {
        HttpProgress::Done(r) => r,
        HttpProgress::Incomplete => {
            let in_body = reader.head_done();
            match reader.finish() {
                Ok(r) => r,
                Err(_) if in_body => return Err(WebSeedError::CutShort),
                Err(e) => return Err(http_error(e)),
            }
        }
    };
    let body = match reader.body_range() {
        Some(at) => raw.slice(at),
        None => Bytes::from(std::mem::take(&mut response.body)),
    };
    check(&response, body, url, range, file_len)
}

fn http_error(e: TrackerError) -> WebSeedError {
    match e {
        TrackerError::BodyTooLarge { .. } => WebSeedError::TooLong,
        e => WebSeedError::Http(e),
    }
}

fn check(
    response: &HttpResponse,
    body: Bytes,
    url: &TrackerUrl,
    range: &FileRange,
    file_len: u64,
) -> Result<Answer, WebSeedError> {
    let expected = range.len;
    match response.status {
        206 => {
            let content_range = response
                .header("content-range")
                .ok_or(WebSeedError::ContentRange)?;
            let (first, last, total) =
                parse_content_range(content_range).ok_or(WebSeedError::ContentRange)?;
            if first != range.offset || last != range.last() || total.is_some_and(|t| t != file_len)
            {
                return Err(WebSeedError::ContentRange);
            }
        }
        200 => {
            if range.offset != 0 || range.len != file_len {
                return Err(WebSeedError::NotPartial);
            }
        }
        301 | 302 | 303 | 307 | 308 => {
            let location = response
                .header("location")
                .ok_or(WebSeedError::BadRedirect)?;
            return redirect_target(url, location).map(Answer::Redirect);
        }
        status => return Err(WebSeedError::Status(status)),
    }
    if let Some(length) = response.header("content-length") {
        let length = std::str::from_utf8(length)
            .ok()
            .and_then(|l| l.parse::<u64>().ok());
        if length != Some(expected) {
            return Err(WebSeedError::Length {
                expected,
                got: length.unwrap_or(u64::MAX),
            });
        }
    }
    let got = body.len() as u64;
    if got < expected {
        return Err(WebSeedError::CutShort);
    }
    if got > expected {
        return Err(WebSeedError::TooLong);
    }
    Ok(Answer::Data(body))
}

/// `bytes first-last/total` (total may be `*`).
fn parse_content_range(value: &[u8]) -> Option<(u64, u64, Option<u64>)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let rest = value.strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.trim().split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let total = match total.trim() {
        "*" => None,
        t => Some(number(t)?),
    };
    let (first, last) = (number(first)?, number(last)?);
    (first <= last).then_some((first, last, total))
}

/// Where a `Location` points: an absolute `http(s)` URL, or an absolute path on the server
/// of `url`.
fn redirect_target(url: &TrackerUrl, location: &[u8]) -> Result<TrackerUrl, WebSeedError> {
    let location = std::str::from_utf8(location).map_err(|_| WebSeedError::BadRedirect)?;
    let target = if location.starts_with('/') && !location.starts_with("//") {
        format!(
            "{}://{}{location}",
            url.scheme().as_str(),
            url.host_header()
        )
    } else {
        location.to_string()
    };
    let parsed = TrackerUrl::parse(&target).map_err(|_| WebSeedError::BadRedirect)?;
    super::url::check(&parsed).map_err(|_| WebSeedError::BadRedirect)?;
    // No way down from TLS: an https web seed stays https.
    if url.scheme() == Scheme::Https && parsed.scheme() != Scheme::Https {
        return Err(WebSeedError::BadRedirect);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        raw: &[u8],
        url: &TrackerUrl,
        range: &FileRange,
        file_len: u64,
    ) -> Result<Answer, WebSeedError> {
        read_answer(&Bytes::copy_from_slice(raw), url, range, file_len)
    }

    fn url() -> TrackerUrl {
        TrackerUrl::parse("http://h:8080/d/f.bin").unwrap()
    }

    const R: FileRange = FileRange {
        file: 0,
        offset: 10,
        len: 5,
    };

    #[test]
    fn request_bytes() {
        let req = String::from_utf8(range_request(&url(), &R)).unwrap();
        assert!(
            req.starts_with("GET /d/f.bin HTTP/1.1\r\nHost: h:8080\r\n"),
            "{req}"
        );
        assert!(req.contains("\r\nRange: bytes=10-14\r\n"));
        assert!(req.contains("\r\nConnection: keep-alive\r\n"));
        assert!(req.ends_with("\r\n\r\n"));
    }

    #[test]
    fn partial_content() {
        let ok = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-14/100\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            read(ok, &url(), &R, 100),
            Ok(Answer::Data(Bytes::from_static(b"hello")))
        );
        let star = b"HTTP/1.1 206 x\r\nContent-Range: bytes 10-14/*\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(
            read(star, &url(), &R, 100),
            Ok(Answer::Data(Bytes::from_static(b"hello")))
        );
    }

    #[test]
    fn refusals() {
        let cases: &[(&[u8], WebSeedError)] = &[
            (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", WebSeedError::Status(404)),
            (b"HTTP/1.1 503 x\r\nContent-Length: 0\r\n\r\n", WebSeedError::Status(503)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", WebSeedError::NotPartial),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", WebSeedError::NotPartial),
            (b"HTTP/1.1 500 x\r\nContent-Length: 100\r\n\r\n", WebSeedError::Status(500)),
            (b"HTTP/1.1 206 x\r\nContent-Length: 5\r\n\r\nhello", WebSeedError::ContentRange),
            (b"HTTP/1.1 206 x\r\nContent-Range: bytes 0-4/100\r\nContent-Length: 5\r\n\r\nhello", WebSeedError::ContentRange),
            (b"HTTP/1.1 206 x\r\nContent-Range: bytes 10-14/99\r\n\r\nhello", WebSeedError::ContentRange),
            (b"HTTP/1.1 206 x\r\nContent-Range: bytes 10-14/100\r\nContent-Length: 5\r\n\r\nhel", WebSeedError::CutShort),
            (b"HTTP/1.1 206 x\r\nContent-Range: bytes 10-14/100\r\nContent-Length: 6\r\n\r\nhello!", WebSeedError::TooLong),
            (b"HTTP/1.1 206 x\r\nContent-Range: bytes 10-14/100\r\nContent-Length: 99999999999\r\n\r\n", WebSeedError::TooLong),
            (b"HTTP/1.1 206 x\r\nContent-Range: bytes 10-14/100\r\n\r\nhelloworld", WebSeedError::TooLong),
            (b"HTTP/1.1 206 x\r\nContent-Range: bytes 10-14/100\r\n\r\nhel", WebSeedError::CutShort),
            (b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", WebSeedError::BadRedirect),
            (b"HTTP/1.1 302 Found\r\nLocation: ftp://x/\r\nContent-Length: 0\r\n\r\n", WebSeedError::BadRedirect),
        ];
        for (raw, want) in cases {
            assert_eq!(
                read(raw, &url(), &R, 100).as_ref(),
                Err(want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            read(b"garbage\r\n\r\n", &url(), &R, 100),
            Err(WebSeedError::Http(_))
        ));
    }

    #[test]
    fn whole_file_may_be_a_200() {
        let whole = FileRange {
            file: 0,
            offset: 0,
            len: 5,
        };
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            read(raw, &url(), &whole, 5),
            Ok(Answer::Data(Bytes::from_static(b"hello")))
        );
    }

    #[test]
    fn redirects() {
        let raw = b"HTTP/1.1 301 Moved\r\nLocation: /other/f.bin\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            read(raw, &url(), &R, 100),
            Ok(Answer::Redirect(
                TrackerUrl::parse("http://h:8080/other/f.bin").unwrap()
            ))
        );
        let https = TrackerUrl::parse("https://h/f").unwrap();
        let down = b"HTTP/1.1 302 x\r\nLocation: http://h/f\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(read(down, &https, &R, 100), Err(WebSeedError::BadRedirect));
        let raw = b"HTTP/1.1 307 x\r\nLocation: https://mirror/f\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            read(raw, &url(), &R, 100),
            Ok(Answer::Redirect(
                TrackerUrl::parse("https://mirror/f").unwrap()
            ))
        );
    }
}
