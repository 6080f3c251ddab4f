//! Local service discovery (BEP 14): peers on the local network announce the torrents
//! they are in to a multicast group, in an HTTP-like datagram, and dial each other.
//!
//! This module owns the datagram's text form ([`LsdAnnounce`]: `BT-SEARCH * HTTP/1.1`,
//! then `Host`, `Port`, one `Infohash` line per torrent, an optional `cookie` by which a
//! client recognises its own announces, and an empty line) and nothing else: the engine
//! decides when to announce (see `engine::lsd`), the runtime owns the multicast socket.
//!
//! Reading is bounded and forgiving where BEP 14 and real clients differ: header names
//! match case-insensitively (libtorrent writes `cookie`, others `Cookie`), lines may end
//! in `\r\n` or `\n`, unknown headers are skipped, at most [`MAX_DATAGRAM`] bytes and
//! [`MAX_HASHES`] info-hashes are read (the rest are ignored), and an announce without a
//! usable `Port` or any valid `Infohash` is refused.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::fmt;

use crate::InfoHash;

/// The IPv4 multicast group and port of BEP 14.
pub const GROUP_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), 6771);

/// The largest announce read or written: one Ethernet frame's worth.
pub const MAX_DATAGRAM: usize = 1400;

/// The most info-hashes read from one announce.
pub const MAX_HASHES: usize = 16;

/// One announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsdAnnounce {
    /// Where the sender listens for peers.
    pub port: u16,
    /// The torrents it is in.
    pub info_hashes: Vec<InfoHash>,
    /// A token the sender puts in its own announces, to ignore them when they loop back.
    pub cookie: Option<String>,
}

/// Why a datagram is not an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LsdError {
    /// Longer than [`MAX_DATAGRAM`].
    TooLong(usize),
    /// Not text, or not a `BT-SEARCH * HTTP/1.1` request.
    NotAnnounce,
    /// No `Port` header, or one that is not a port other than 0.
    NoPort,
    /// No `Infohash` header with 40 hex digits.
    NoInfoHash,
}

impl fmt::Display for LsdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LsdError::TooLong(n) => write!(f, "LSD announce of {n} bytes, too long"),
            LsdError::NotAnnounce => f.write_str("not an LSD announce"),
            LsdError::NoPort => f.write_str("LSD announce without a port"),
            LsdError::NoInfoHash => f.write_str("LSD announce without an info-hash"),
        }
    }
}

impl std::error::Error for LsdError {}

impl LsdAnnounce {
    /// The datagram: `Infohash` in lowercase hex, `\r\n` line ends, as libtorrent writes
    /// it. A cookie with characters other than visible ASCII is left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: {GROUP_V4}\r\nPort: {}\r\n",
            self.port
        );
        for h in self.info_hashes.iter().take(MAX_HASHES) {
            out.push_str("Infohash: ");
            out.push_str(&h.to_hex());
            out.push_str("\r\n");
        }
        if let Some(c) = self
            .cookie
            .as_ref()
            .filter(|c| c.bytes().all(|b| b.is_ascii_graphic()))
        {
            out.push_str("cookie: ");
            out.push_str(c);
            out.push_str("\r\n");
        }
        out.push_str("\r\n\r\n");
        out.into_bytes()
    }

    /// Reads an announce (see the module docs for what is accepted).
    pub fn decode(data: &[u8]) -> Result<LsdAnnounce, LsdError> {
        if data.len() > MAX_DATAGRAM {
            return Err(LsdError::TooLong(data.len()));
        }
        let text = std::str::from_utf8(data).map_err(|_| LsdError::NotAnnounce)?;
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        if lines.next() != Some("BT-SEARCH * HTTP/1.1") {
            return Err(LsdError::NotAnnounce);
        }
        let mut port = None;
        let mut info_hashes = Vec::new();
        let mut cookie = None;
        for line in lines {
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("port") {
                port = value.parse::<u16>().ok().filter(|&p| p != 0);
            } else if name.eq_ignore_ascii_case("infohash") {
                if info_hashes.len() < MAX_HASHES {
                    if let Ok(h) = InfoHash::from_hex(value) {
                        if !info_hashes.contains(&h) {
                            info_hashes.push(h);
                        }
                    }
                }
            } else if name.eq_ignore_ascii_case("cookie") {
                cookie = Some(value.to_owned());
            }
        }
        let port = port.ok_or(LsdError::NoPort)?;
        if info_hashes.is_empty() {
            return Err(LsdError::NoInfoHash);
        }
        Ok(LsdAnnounce {
            port,
            info_hashes,
            cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    fn hash(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    #[test]
    fn round_trips_and_reads_what_libtorrent_writes() {
        let a = LsdAnnounce {
            port: 6881,
            info_hashes: vec![hash(1), hash(0xab)],
            cookie: Some("c00k1e".into()),
        };
        assert_eq!(LsdAnnounce::decode(&a.encode()), Ok(a));
        let lt = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\n\
Infohash: 0123456789ABCDEF0123456789abcdef01234567\r\ncookie: 5f2a\r\n\r\n\r\n";
        let got = LsdAnnounce::decode(lt).unwrap();
        assert_eq!(got.port, 51413);
        assert_eq!(
            got.info_hashes,
            vec![InfoHash::from_hex("0123456789abcdef0123456789abcdef01234567").unwrap()]
        );
        assert_eq!(got.cookie.as_deref(), Some("5f2a"));
        // Bare `\n` line ends and other header cases.
        let bare = b"BT-SEARCH * HTTP/1.1\nPORT: 7\nINFOHASH: 0101010101010101010101010101010101010101\n\n";
        assert_eq!(
            LsdAnnounce::decode(bare).unwrap().info_hashes,
            vec![hash(1)]
        );
    }

    #[test]
    fn refuses_what_is_not_a_usable_announce() {
        let h = "Infohash: 0101010101010101010101010101010101010101\r\n";
        let cases: [(String, LsdError); 6] = [
            ("M-SEARCH * HTTP/1.1\r\n\r\n".into(), LsdError::NotAnnounce),
            (format!("BT-SEARCH * HTTP/1.1\r\n{h}\r\n"), LsdError::NoPort),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nPort: 0\r\n{h}\r\n"),
                LsdError::NoPort,
            ),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\n{h}\r\n"),
                LsdError::NoPort,
            ),
            (
                "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: xyz\r\n\r\n".into(),
                LsdError::NoInfoHash,
            ),
            (
                "x".repeat(MAX_DATAGRAM + 1),
                LsdError::TooLong(MAX_DATAGRAM + 1),
            ),
        ];
        for (text, err) in cases {
            assert_eq!(LsdAnnounce::decode(text.as_bytes()), Err(err), "{text:?}");
        }
        assert_eq!(LsdAnnounce::decode(b"\xff\xfe"), Err(LsdError::NotAnnounce));
    }

    #[test]
    fn reads_a_bounded_number_of_hashes() {
        let mut text = "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n".to_string();
        // 25 lines of 52 bytes: within a datagram, past the bound.
        for i in 0..25u8 {
            text.push_str(&format!("Infohash: {}\r\n", hash(i).to_hex()));
        }
        text.push_str("\r\n");
        let got = LsdAnnounce::decode(text.as_bytes()).unwrap();
        assert_eq!(got.info_hashes.len(), MAX_HASHES);
    }

    quickcheck! {
        fn arbitrary_bytes_never_panic(data: Vec<u8>) -> bool {
            let _ = LsdAnnounce::decode(&data);
            true
        }

        fn arbitrary_lines_after_the_request_line_never_panic(tail: String) -> bool {
            let _ = LsdAnnounce::decode(format!("BT-SEARCH * HTTP/1.1\r\n{tail}").as_bytes());
            true
        }
    }
}
