//! The HTTP tracker requests built, and responses framed from bytes fed in pieces.

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
    assert!(q.ends_with("&compact=0&numwant=0&key=DEADBEEF&trackerid=t%201&ip=2001%3Adb8%3A%3A1"));
    assert!(!q.contains("event"));

    let line = |url: &str| {
        let url = TrackerUrl::parse(url).unwrap();
        let req = String::from_utf8(http_announce_request(&url, &p)).unwrap();
        req.lines().next().unwrap().to_string()
    };
    assert!(line("http://t.example/a?passkey=XyZ").starts_with("GET /a?passkey=XyZ&info_hash="));
    assert!(line("http://t.example/a?").starts_with("GET /a?info_hash="));
    assert!(line("http://t.example/a?pk=1&").starts_with("GET /a?pk=1&info_hash="));
    assert!(line("http://t.example/pk123/announce").starts_with("GET /pk123/announce?info_hash="));
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
    assert!(feed_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n").is_err());
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
