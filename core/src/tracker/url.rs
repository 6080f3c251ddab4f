//! Tracker URLs: `http://host[:port]/path?query`, `https://…` and `udp://host:port[/…]`.
//!
//! This is deliberately not a general URL parser. It reads what a tracker URL in a torrent
//! or magnet link is, and refuses the rest with [`TrackerError::InvalidUrl`] or
//! [`TrackerError::UnsupportedScheme`]:
//!
//! - The scheme is `http`, `https` or `udp`, in any case. The default port is 80 or 443;
//!   a UDP tracker has no default port, so its URL must name one.
//! - The host is a name of letters, digits, `-`, `.` and `_` (kept lower-cased, as host
//!   names are case-insensitive), an IPv4 address, or an IPv6 address in brackets. User
//!   info (`user:pass@`) is refused: no tracker uses it and it is a classic way of
//!   disguising a host.
//! - The path and query are kept byte for byte (passkeys live there) and must be printable
//!   ASCII without spaces: they go verbatim into an HTTP request line, where a space, CR or
//!   LF would break or inject into the request. A fragment (`#…`) is dropped, as a browser
//!   would. A URL without a path gets `/`.
//! - Surrounding whitespace is trimmed: announce lists are often hand-edited.
//!
//! The path of a `udp://` URL is kept but not sent (BEP 41's URL data is not implemented).

use core::net::{IpAddr, Ipv6Addr};
use std::fmt;
use std::str::FromStr;

use super::TrackerError;

/// The longest URL accepted, in bytes: longer ones are not tracker URLs, and the request
/// head built from one must fit the 16 KiB a server reads.
pub const MAX_URL_LEN: usize = 4096;

/// The protocol a tracker URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://`.
    Http,
    /// `https://`: HTTP over TLS.
    Https,
    /// `udp://`: the UDP tracker protocol (BEP 15).
    Udp,
}

impl Scheme {
    /// The scheme as written in a URL, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Udp => "udp",
        }
    }

    fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Udp => None,
        }
    }
}

/// A parsed tracker URL. [`as_str`](TrackerUrl::as_str) gives the URL as it was given
/// (trimmed); the parts are checked and normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrackerUrl {
    raw: String,
    scheme: Scheme,
    /// Lower-cased name or IP address, IPv6 without brackets.
    host: String,
    port: u16,
    /// Starts with `/`; includes `?query` if any; no fragment.
    path_and_query: String,
}

impl TrackerUrl {
    /// Parses and checks a tracker URL (see the module docs for what is accepted).
    pub fn parse(url: &str) -> Result<TrackerUrl, TrackerError> {
        let raw = url.trim();
        if raw.len() > MAX_URL_LEN {
            return Err(TrackerError::InvalidUrl("longer than 4096 bytes"));
        }
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or(TrackerError::InvalidUrl("no `scheme://`"))?;
        let scheme = if scheme.is_empty() {
            return Err(TrackerError::InvalidUrl("empty scheme"));
        } else if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else if scheme.eq_ignore_ascii_case("udp") {
            Scheme::Udp
        } else {
            return Err(TrackerError::UnsupportedScheme(scheme.to_ascii_lowercase()));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(TrackerError::InvalidUrl("user info is not supported"));
        }
        let (host, port) = split_host_port(authority)?;
        let port = match (port, scheme.default_port()) {
            (Some(port), _) => port,
            (None, Some(default)) => default,
            (None, None) => return Err(TrackerError::InvalidUrl("a UDP tracker needs a port")),
        };
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        if !tail.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TrackerError::InvalidUrl(
                "path or query has a space, control or non-ASCII character",
            ));
        }
        let path_and_query = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(TrackerUrl {
            raw: raw.to_string(),
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    /// The URL as given, without surrounding whitespace.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Which protocol the URL names.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether this is an `http` or `https` tracker (else it is a UDP one).
    pub fn is_http(&self) -> bool {
        matches!(self.scheme, Scheme::Http | Scheme::Https)
    }

    /// The host: a lower-cased name, or an IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host as an IP address, when it is one (no name resolution needed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path with its query, starting with `/`: the HTTP request target.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The value of an HTTP `Host` header: the host (bracketed if IPv6) and the port
    /// unless it is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if Some(self.port) == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The BEP 48 scrape URL of an HTTP announce URL: the last path segment must start with
    /// `announce`, which becomes `scrape` (`/x/announce.php?pk=1` → `/x/scrape.php?pk=1`).
    /// `None` when the tracker has no scrape convention, and for UDP trackers, which scrape
    /// at the same address.
    pub fn scrape_url(&self) -> Option<TrackerUrl> {
        if !self.is_http() {
            return None;
        }
        let (path, query) = match self.path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.path_and_query.as_str(), None),
        };
        // The path starts with '/', so there is always a last slash.
        let last_slash = path.rfind('/')?;
        let segment = &path[last_slash + 1..];
        let suffix = segment.strip_prefix("announce")?;
        let mut path_and_query = format!("{}scrape{suffix}", &path[..=last_slash]);
        if let Some(query) = query {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let raw = format!(
            "{}://{}{}",
            self.scheme.as_str(),
            self.host_header(),
            path_and_query
        );
        Some(TrackerUrl {
            raw,
            path_and_query,
            ..self.clone()
        })
    }
}

/// Splits `host[:port]` or `[v6][:port]` and checks both.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), TrackerError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or(TrackerError::InvalidUrl("`[` without `]` in the host"))?;
        let addr = Ipv6Addr::from_str(v6)
            .map_err(|_| TrackerError::InvalidUrl("not an IPv6 address in brackets"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or(TrackerError::InvalidUrl("junk after `]` in the host"))?,
            ),
        };
        (addr.to_string(), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(TrackerError::InvalidUrl("no host"));
        }
        if host.len() > 253 {
            return Err(TrackerError::InvalidUrl("host name longer than 253 bytes"));
        }
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err(TrackerError::InvalidUrl("host has a character not allowed"));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

fn parse_port(s: &str) -> Result<u16, TrackerError> {
    let bad = TrackerError::InvalidUrl("port is not a number in 1..=65535");
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad),
        Ok(port) => Ok(port),
    }
}

impl FromStr for TrackerUrl {
    type Err = TrackerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrackerUrl::parse(s)
    }
}

impl fmt::Display for TrackerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> TrackerUrl {
        TrackerUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn plain_http_with_default_port() {
        let u = parse("http://Tracker.Example.org/announce");
        assert_eq!(u.scheme(), Scheme::Http);
        assert_eq!(u.host(), "tracker.example.org");
        assert_eq!(u.port(), 80);
        assert_eq!(u.path_and_query(), "/announce");
        assert_eq!(u.host_header(), "tracker.example.org");
        assert_eq!(u.as_str(), "http://Tracker.Example.org/announce");
        assert_eq!(u.ip(), None);
    }

    #[test]
    fn https_and_explicit_ports() {
        let u = parse("HTTPS://t.example:8443/a");
        assert_eq!((u.scheme(), u.port()), (Scheme::Https, 8443));
        assert_eq!(u.host_header(), "t.example:8443");
        assert_eq!(parse("https://t.example/").port(), 443);
        assert_eq!(parse("https://t.example:443/").host_header(), "t.example");
    }

    #[test]
    fn passkeys_in_path_and_query_are_kept() {
        let u = parse("http://t.example:6969/9f8e7d6c5b4a/announce?passkey=AbC%2Fd&x=1");
        assert_eq!(
            u.path_and_query(),
            "/9f8e7d6c5b4a/announce?passkey=AbC%2Fd&x=1"
        );
    }

    #[test]
    fn missing_path_and_fragment() {
        assert_eq!(parse("http://t.example").path_and_query(), "/");
        assert_eq!(parse("http://t.example?pk=1").path_and_query(), "/?pk=1");
        assert_eq!(
            parse("http://t.example/announce?pk=1#frag").path_and_query(),
            "/announce?pk=1"
        );
        assert_eq!(
            parse("  http://t.example/a \n").as_str(),
            "http://t.example/a"
        );
    }

    #[test]
    fn ip_hosts() {
        let u = parse("http://[2001:DB8::1]:6969/announce");
        assert_eq!(u.host(), "2001:db8::1");
        assert_eq!(u.ip(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port(), 6969);
        assert_eq!(u.host_header(), "[2001:db8::1]:6969");
        assert_eq!(parse("http://[::1]/a").host_header(), "[::1]");
        let v4 = parse("udp://10.0.0.1:1337/announce");
        assert_eq!(v4.ip(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!((v4.scheme(), v4.port()), (Scheme::Udp, 1337));
        assert!(!v4.is_http());
    }

    #[test]
    fn refusals() {
        let unsupported = |s: &str| match TrackerUrl::parse(s) {
            Err(TrackerError::UnsupportedScheme(scheme)) => scheme,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(unsupported("wss://t.example/announce"), "wss");
        assert_eq!(unsupported("ftp://t.example/"), "ftp");
        for bad in [
            "t.example/announce",
            "://t.example/announce",
            "http:/t.example/announce",
            "http:///announce",
            "http://:80/announce",
            "http://t.example:/a",
            "http://t.example:0/a",
            "http://t.example:65536/a",
            "http://t.example:+80/a",
            "http://t.example:80:81/a",
            "http://user:pw@t.example/a",
            "http://t example/a",
            "http://t.example/a b",
            "http://t.example/a\r\nX-Injected: 1",
            "http://t.exämple/a",
            "http://t.example/ä",
            "http://[::1/a",
            "http://[::1]x/a",
            "http://[t.example]/a",
            "http://[fe80::1%25eth0]/a",
            "udp://t.example/announce",
        ] {
            assert!(
                matches!(TrackerUrl::parse(bad), Err(TrackerError::InvalidUrl(_))),
                "{bad:?} parsed as {:?}",
                TrackerUrl::parse(bad)
            );
        }
        let long = format!("http://t.example/{}", "a".repeat(MAX_URL_LEN));
        assert!(TrackerUrl::parse(&long).is_err());
    }

    #[test]
    fn scrape_urls() {
        let scrape = |s: &str| parse(s).scrape_url().map(|u| u.as_str().to_string());
        assert_eq!(
            scrape("http://t.example/announce").as_deref(),
            Some("http://t.example/scrape")
        );
        assert_eq!(
            scrape("http://t.example:81/x/announce.php?pk=a/announce").as_deref(),
            Some("http://t.example:81/x/scrape.php?pk=a/announce")
        );
        assert_eq!(
            scrape("https://[::1]/announce?x").as_deref(),
            Some("https://[::1]/scrape?x")
        );
        assert_eq!(scrape("http://t.example/a"), None);
        assert_eq!(scrape("http://t.example/announce/x"), None);
        assert_eq!(scrape("http://t.example/x%064announce"), None);
        assert_eq!(scrape("udp://t.example:1/announce"), None);
        let u = parse("http://t.example/pk/announce?pk=1")
            .scrape_url()
            .unwrap();
        assert_eq!(u.path_and_query(), "/pk/scrape?pk=1");
        assert_eq!(u.host(), "t.example");
    }
}
