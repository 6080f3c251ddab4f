//! HTTP/1.1 requests and responses of the control server, as bytes: no socket here.
//!
//! [`parse_request`] takes what a connection has received so far and says whether a whole
//! request is there (and how many bytes it took), is still coming, or is malformed. Every
//! bound is checked before anything is kept: the head is at most [`MAX_HEAD`] bytes, a body
//! at most [`MAX_BODY`] (a base64 `.torrent` of the largest size shoal reads fits), and a
//! chunked body is refused (no remote in use sends one; `411`/`400` say so clearly).

use std::fmt::Write as _;

/// The most bytes a request's head (request line and headers) may take.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most bytes a request's body may take: a 64 MiB `.torrent` in base64, and some JSON.
pub const MAX_BODY: usize = 90 << 20;
/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// One parsed request. Header names are lower-case; the path has no query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// `HTTP/1.0` requests close the connection after the answer.
    pub http10: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the connection should close after the answer.
    pub fn wants_close(&self) -> bool {
        let conn = self.header("connection").map(str::to_ascii_lowercase);
        match conn.as_deref() {
            Some(v) if v.contains("close") => true,
            Some(v) if v.contains("keep-alive") => false,
            _ => self.http10,
        }
    }
}

/// Why a request could not be read; each maps to the status it is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not HTTP, or a header that does not parse.
    Malformed(String),
    /// The head or the body is larger than allowed.
    TooLarge(&'static str),
    /// A body without a `Content-Length` (chunked).
    LengthRequired,
}

impl RequestError {
    /// The answer to send before closing the connection.
    pub fn response(&self) -> Response {
        match self {
            RequestError::Malformed(why) => Response::text(400, "Bad Request", why),
            RequestError::TooLarge(what) => {
                Response::text(413, "Payload Too Large", &format!("{what} too large"))
            }
            RequestError::LengthRequired => Response::text(
                411,
                "Length Required",
                "a body needs a Content-Length (chunked bodies are not taken)",
            ),
        }
    }
}

/// Reads one request from the front of `buf`: `Ok(Some((request, bytes used)))` when it is
/// whole, `Ok(None)` while more is needed.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(RequestError::TooLarge("request head"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge("header list")),
        Err(e) => return Err(RequestError::Malformed(format!("not an HTTP request: {e}"))),
    };
    if head_len > MAX_HEAD {
        return Err(RequestError::TooLarge("request head"));
    }
    let mut out = Request {
        method: req.method.unwrap_or("").to_string(),
        http10: req.version == Some(0),
        ..Request::default()
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    out.path = path.to_string();
    out.query = query.to_string();
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| RequestError::Malformed(format!("header {} is not UTF-8", h.name)))?;
        out.headers
            .push((h.name.to_ascii_lowercase(), value.trim().to_string()));
    }
    if out
        .header("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(RequestError::LengthRequired);
    }
    let body_len = match out.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| RequestError::Malformed(format!("Content-Length {v:?}")))?,
    };
    if body_len > MAX_BODY {
        return Err(RequestError::TooLarge("request body"));
    }
    let Some(body) = buf.get(head_len..head_len + body_len) else {
        return Ok(None);
    };
    out.body = body.to_vec();
    Ok(Some((out, head_len + body_len)))
}

/// An answer; [`Response::to_bytes`] frames it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, reason: &'static str, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            reason,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    /// A plain-text answer (errors), the text followed by a newline.
    pub fn text(status: u16, reason: &'static str, text: &str) -> Response {
        Response::new(
            status,
            reason,
            "text/plain; charset=utf-8",
            format!("{text}\n").into_bytes(),
        )
    }

    /// A JSON answer.
    pub fn json(value: &serde_json::Value) -> Response {
        Response::new(
            200,
            "OK",
            "application/json",
            serde_json::to_vec(value).unwrap_or_default(),
        )
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Status line, headers (with `Content-Length`, and `Connection: close` if `close`),
    /// body.
    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (n, v) in &self.headers {
            // Header values are ours; a stray line break would split the answer.
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            let _ = write!(head, "{n}: {v}\r\n");
        }
        let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        // The page and the API answers are never cached: they are live state.
        head.push_str("Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n");
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_arrives_in_pieces_and_is_read_once_whole() {
        let raw = b"POST /transmission/rpc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9091\r\nContent-Length: 5\r\n\r\nhelloGET";
        for cut in 0..raw.len() - 3 {
            assert_eq!(parse_request(&raw[..cut]), Ok(None), "cut at {cut}");
        }
        let (req, used) = parse_request(raw).unwrap().unwrap();
        assert_eq!(used, raw.len() - 3);
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/transmission/rpc");
        assert_eq!(req.query, "x=1");
        assert_eq!(req.header("host"), Some("127.0.0.1:9091"));
        assert_eq!(req.body, b"hello");
        assert!(!req.wants_close());
    }

    #[test]
    fn bad_and_oversized_requests_are_refused() {
        assert!(matches!(
            parse_request(b"\x00\x01 garbage\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
        let long = vec![b'a'; MAX_HEAD + 10];
        let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
        req.extend_from_slice(&long);
        assert_eq!(
            parse_request(&req),
            Err(RequestError::TooLarge("request head"))
        );
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(
            parse_request(big.as_bytes()),
            Err(RequestError::TooLarge("request body"))
        );
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(RequestError::LengthRequired)
        );
        assert!(matches!(
            parse_request(b"POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n"),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn responses_are_framed_and_header_values_cannot_split_them() {
        let r = Response::text(200, "OK", "hi").with_header("X-A", "1\r\nEvil: yes");
        let bytes = String::from_utf8(r.to_bytes(true)).unwrap();
        assert!(bytes.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(bytes.contains("X-A: 1Evil: yes\r\n"));
        assert!(bytes.contains("Content-Length: 3\r\n"));
        assert!(bytes.contains("Connection: close\r\n"));
        assert!(bytes.ends_with("\r\n\r\nhi\n"));
    }
}
