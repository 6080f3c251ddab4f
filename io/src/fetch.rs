//! Getting a `.torrent` from where the user points: an `http://` or `https://` URL, or a path.
//!
//! Fetching is a one-shot blocking download done through `ureq` (HTTP/1.1, TLS by rustls
//! trusting the certificates of [`crate::tls`]), rather than a second hand-written HTTP/TLS
//! client:
//! the runtimes' own tracker transport is non-blocking and lives in their event loops, while
//! this runs once, before any torrent exists, on a plain thread.
//!
//! Bounds, so a hostile or broken server cannot hold us or fill memory: at most
//! [`FetchOptions::max_redirects`] redirects, [`FetchOptions::timeout`] for name lookup,
//! connecting and each read (a stalled server), [`FetchOptions::total_timeout`] for the whole
//! exchange, and at most [`FetchOptions::max_len`] bytes of body. A status outside 2xx is
//! an error that names it; the body of an error page is never parsed as a torrent.
//! A URL as people write it (`http://host/Données été.torrent`, pasted from a page or
//! typed) is sent percent-encoded: every character a URL may not hold is written as `%XX`
//! escapes of its UTF-8 bytes, and nothing else is touched (an existing `%XX` stays as
//! it is). Proxies named in the usual environment variables (`HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`) are honoured, as users of a command-line tool expect.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use shoal_core::metainfo::Metainfo;
use ureq::http::StatusCode;

use crate::{read_torrent_bytes, Error, MAX_TORRENT_FILE};

/// How a `.torrent` is fetched.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// For name lookup, connecting, and each read from the server.
    pub timeout: Duration,
    /// For the whole exchange, redirects and body included.
    pub total_timeout: Duration,
    pub max_redirects: u32,
    /// The largest body accepted.
    pub max_len: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: Duration::from_secs(30),
            // Generous: a 64 MiB torrent over a slow link still arrives.
            total_timeout: Duration::from_secs(600),
            max_redirects: 5,
            max_len: MAX_TORRENT_FILE,
        }
    }
}

/// Why fetching a URL failed.
#[derive(Debug)]
pub enum FetchError {
    /// Not an `http://` or `https://` URL.
    UnsupportedScheme,
    /// The server answered with a status outside 2xx.
    Status(u16),
    /// The body is larger than the limit.
    TooLarge { limit: u64 },
    /// The server did not answer, or stopped sending, in time.
    Timeout,
    /// More redirects than the limit.
    TooManyRedirects { limit: u32 },
    /// Name lookup, connection, TLS or protocol failure, as the HTTP client words it.
    Transport(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::UnsupportedScheme => f.write_str("only http:// and https:// URLs"),
            FetchError::Status(code) => {
                let reason = StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason());
                match reason {
                    Some(r) => write!(f, "server answered HTTP {code} {r}"),
                    None => write!(f, "server answered HTTP {code}"),
                }
            }
            FetchError::TooLarge { limit } => {
                write!(f, "larger than {limit} bytes, too large for a torrent file")
            }
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::TooManyRedirects { limit } => {
                write!(f, "more than {limit} redirects")
            }
            FetchError::Transport(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for FetchError {}

/// Whether `arg` is an `http://` or `https://` URL (the scheme in any case).
pub fn is_url(arg: &str) -> bool {
    let lower = |n: usize| arg.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

/// `url` with every character a URL may not hold (RFC 3986: anything but letters, digits,
/// `-._~`, the delimiters `:/?#[]@!$&'()*+,;=` and `%`) percent-encoded as its UTF-8
/// bytes. A `%` that starts a `%XX` escape is kept, so an encoded URL is left as it is; a
/// lone `%` becomes `%25`.
pub fn encode_url(url: &str) -> String {
    const ALLOWED: &[u8] = b"-._~:/?#[]@!$&'()*+,;=";
    let bytes = url.as_bytes();
    let mut out = String::with_capacity(url.len());
    for (i, &b) in bytes.iter().enumerate() {
        let escape = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if b.is_ascii_alphanumeric() || ALLOWED.contains(&b) || escape {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Downloads the bytes of a `.torrent` from an `http://` or `https://` URL, with the
/// default [`FetchOptions`]. The bytes are not parsed (see [`load_torrent`]).
pub fn fetch_torrent(url: &str) -> Result<Vec<u8>, Error> {
    fetch_torrent_with(url, &FetchOptions::default())
}

/// [`fetch_torrent`] with explicit bounds.
pub fn fetch_torrent_with(url: &str, opts: &FetchOptions) -> Result<Vec<u8>, Error> {
    let fail = |source| Error::Fetch {
        url: url.to_string(),
        source,
    };
    if !is_url(url) {
        return Err(fail(FetchError::UnsupportedScheme));
    }
    let agent = agent(opts);
    let translate = |e: ureq::Error| fail(translate(e, opts));
    let mut response = agent.get(&encode_url(url)).call().map_err(translate)?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(FetchError::Status(status.as_u16())));
    }
    response
        .body_mut()
        .with_config()
        .limit(opts.max_len)
        .read_to_vec()
        .map_err(translate)
}

/// The HTTP client, with the bounds of `opts`.
fn agent(opts: &FetchOptions) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(opts.total_timeout))
        .timeout_resolve(Some(opts.timeout))
        .timeout_connect(Some(opts.timeout))
        .timeout_per_read(Some(opts.timeout))
        .max_redirects(opts.max_redirects)
        .max_redirects_will_error(true)
        // A 404 is read as a response so the error can name the status.
        .http_status_as_error(false)
        .user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(crate::tls::ureq_roots())
                .build(),
        )
        .build()
        .into()
}

fn translate(e: ureq::Error, opts: &FetchOptions) -> FetchError {
    match e {
        ureq::Error::Timeout(_) => FetchError::Timeout,
        ureq::Error::TooManyRedirects => FetchError::TooManyRedirects {
            limit: opts.max_redirects,
        },
        ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge {
            limit: opts.max_len,
        },
        ureq::Error::StatusCode(code) => FetchError::Status(code),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => FetchError::Timeout,
        other => FetchError::Transport(other.to_string()),
    }
}

/// What a conditional GET ([`fetch_if_changed`]) came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// `304 Not Modified`: what the validators named is still current.
    NotModified,
    /// The body, and the validators to send next time.
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// A conditional GET of `url` (a feed, polled): `If-None-Match: etag` and
/// `If-Modified-Since: last_modified` when given, the bounds of `opts` (`max_len` for the
/// body). A status outside 2xx and 304 is an error.
pub fn fetch_if_changed(
    url: &str,
    etag: Option<&str>,
    last_modified: Option<&str>,
    opts: &FetchOptions,
) -> Result<Fetched, Error> {
    let fail = |source| Error::Fetch {
        url: url.to_string(),
        source,
    };
    if !is_url(url) {
        return Err(fail(FetchError::UnsupportedScheme));
    }
    let mut req = agent(opts).get(&encode_url(url));
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    if let Some(m) = last_modified {
        req = req.header("If-Modified-Since", m);
    }
    let mut response = req.call().map_err(|e| fail(translate(e, opts)))?;
    let status = response.status();
    if status.as_u16() == 304 {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(fail(FetchError::Status(status.as_u16())));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, last_modified) = (header("etag"), header("last-modified"));
    let bytes = response
        .body_mut()
        .with_config()
        .limit(opts.max_len)
        .read_to_vec()
        .map_err(|e| fail(translate(e, opts)))?;
    Ok(Fetched::Body {
        bytes,
        etag,
        last_modified,
    })
}

/// The torrent the user named: an `http(s)://` URL is fetched, anything else is read as a
/// path. Returns it parsed, with its bytes (to store or serve unchanged).
pub fn load_torrent(arg: &str) -> Result<(Metainfo, Vec<u8>), Error> {
    let magnet = arg
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"));
    // (A file of that name, however unlikely, is still read.)
    if magnet && !Path::new(arg).exists() {
        return Err(Error::Magnet {
            link: arg.to_string(),
        });
    }
    // `ftp://…` and the like: a URL shoal cannot fetch, not a missing file.
    let other_scheme = arg.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if !is_url(arg) && other_scheme && !Path::new(arg).exists() {
        return Err(Error::Fetch {
            url: arg.to_string(),
            source: FetchError::UnsupportedScheme,
        });
    }
    if is_url(arg) {
        let bytes = fetch_torrent(arg)?;
        let meta = Metainfo::parse(&bytes).map_err(|source| Error::MetainfoUrl {
            url: arg.to_string(),
            source,
        })?;
        Ok((meta, bytes))
    } else {
        let path = Path::new(arg);
        let bytes = read_torrent_bytes(path)?;
        let meta = Metainfo::parse(&bytes).map_err(|source| Error::Metainfo {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((meta, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnet_links_and_other_urls_are_refused_by_name() {
        let link = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
        let e = load_torrent(link).unwrap_err();
        assert!(matches!(e, Error::Magnet { .. }), "{e:?}");
        assert!(
            e.to_string().contains("a magnet link, not a .torrent"),
            "{e}"
        );
        assert!(matches!(
            load_torrent("MAGNET:?xt=x"),
            Err(Error::Magnet { .. })
        ));
        let e = load_torrent("ftp://example.org/t.torrent").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ftp://example.org/t.torrent: only http:// and https:// URLs"
        );
    }

    #[test]
    fn urls_are_encoded_where_they_must_be_and_only_there() {
        assert_eq!(
            encode_url("http://127.0.0.1:8/Données été.torrent"),
            "http://127.0.0.1:8/Donn%C3%A9es%20%C3%A9t%C3%A9.torrent"
        );
        // Already encoded: unchanged, and encoding twice changes nothing.
        let encoded = "http://h/a%20b%c3%a9.torrent?x=1&y=%2F#frag";
        assert_eq!(encode_url(encoded), encoded);
        let once = encode_url("http://h/ü \"<>^`{|}.torrent");
        assert_eq!(once, "http://h/%C3%BC%20%22%3C%3E%5E%60%7B%7C%7D.torrent");
        assert_eq!(encode_url(&once), once);
        // A `%` that starts no escape is itself encoded.
        assert_eq!(
            encode_url("http://h/100%.torrent"),
            "http://h/100%25.torrent"
        );
        assert_eq!(encode_url("http://h/%zz%4"), "http://h/%25zz%254");
        // IPv6 literals and user info keep their delimiters.
        assert_eq!(encode_url("http://u@[::1]:80/a"), "http://u@[::1]:80/a");
    }

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("http://a/t.torrent"));
        assert!(is_url("HTTPS://a/t.torrent"));
        assert!(!is_url("https:/a"));
        assert!(!is_url("ftp://a/t.torrent"));
        assert!(!is_url("./http://x"));
        assert!(!is_url("t.torrent"));
        assert!(!is_url("é"));
    }

    #[test]
    fn other_schemes_are_refused_without_network() {
        let e = fetch_torrent("ftp://example.invalid/t.torrent").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ftp://example.invalid/t.torrent: only http:// and https:// URLs"
        );
    }
}
