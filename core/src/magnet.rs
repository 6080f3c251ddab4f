//! Magnet URIs (BEP 9, v1 only): parsing them into a [`Magnet`] and building them back.
//!
//! This module owns the text form of a magnet link and nothing else: it turns
//! `magnet:?xt=urn:btih:…&dn=…&tr=…&x.pe=…` into an info-hash, a display name, tracker URLs
//! and peer addresses (and `ws=` web seeds), and back. Fetching the `info` dictionary from peers (the BEP 9
//! `ut_metadata` exchange) belongs to the wire and peer modules; checking that the tracker
//! URLs and peer addresses mean anything belongs to the tracker module and the runtime.
//!
//! Choices made where BEP 9 and RFC 3986 are silent or real links disagree with them:
//!
//! - The scheme `magnet:` and the `urn:btih:` prefix match case-insensitively (RFC 3986
//!   schemes and RFC 8141 namespace ids are case-insensitive), and so do parameter names,
//!   since nothing is gained by refusing `XT=` or `Tr=`. Surrounding whitespace is trimmed,
//!   as links are mostly pasted by hand.
//! - The info-hash is 40 hex digits or 32 base32 characters (RFC 4648 alphabet, either
//!   case, no padding). Other exact topics such as `urn:btmh:` (BitTorrent v2) are skipped;
//!   a link with no `urn:btih:` topic at all is refused with
//!   [`MagnetError::MissingInfoHash`]. The same btih given twice (say once in hex and once
//!   in base32) is fine; two different ones are an error, as the link would be ambiguous.
//! - `xt`, `tr` and their indexed forms `xt.1`, `tr.2`, … (some clients emit those) are all
//!   read. Trackers keep the order in which they appear in the link, not the order of their
//!   indices, and a tracker named twice is kept once. `x.pe` values are kept as given.
//! - Values are percent-decoded (`%XX`, either case). A `+` means a space only in `dn`:
//!   form-encoding clients write spaces in names that way, while in a tracker URL a `+` may
//!   be a literal part of the path or query and turning it into a space would break it.
//!   A `%` not followed by two hex digits, or a value that is not UTF-8 once decoded, is an
//!   error naming the parameter.
//! - A `#` is an ordinary character, not the start of a fragment: a magnet link has no use
//!   for fragments, and cutting a sloppy link at an unescaped `#` in its name would silently
//!   drop every tracker after it.
//! - If `dn` appears more than once, the first one wins.
//! - Parameters this module does not read are skipped without being examined, so a
//!   malformed escape in an unknown parameter does not make the link unusable.
//!
//! [`Magnet::to_uri`] percent-encodes every byte of a value except RFC 3986's unreserved
//! characters, so `Magnet::parse(&m.to_uri()) == Ok(m)` for every `m` whose tracker list has
//! no duplicates (which every parsed [`Magnet`] satisfies).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::types::InfoHash;

/// The contents of a v1 magnet link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    /// From `xt=urn:btih:…`.
    pub info_hash: InfoHash,
    /// From `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// From `tr` (and `tr.N`): tracker URLs in link order, without duplicates.
    pub trackers: Vec<String>,
    /// From `x.pe`: peer addresses (`host:port`), as given.
    pub peers: Vec<String>,
    /// From `ws`: web seed URLs (BEP 19), in link order, without duplicates.
    pub web_seeds: Vec<String>,
}

/// Why a text is not a usable magnet link. `param` is the parameter name as written in the
/// link (for example `tr.2`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MagnetError {
    /// The text does not start with `magnet:?`.
    NotMagnet,
    /// No `xt` parameter holds a `urn:btih:` info-hash.
    MissingInfoHash,
    /// A `urn:btih:` value that is neither 40 hex digits nor 32 base32 characters.
    InvalidInfoHash {
        /// The parameter, as written.
        param: String,
    },
    /// A `urn:btih:` value naming a different torrent than an earlier one.
    ConflictingInfoHash {
        /// The parameter, as written.
        param: String,
    },
    /// A `%` that is not followed by two hex digits.
    BadEscape {
        /// The parameter, as written.
        param: String,
    },
    /// A value that is not UTF-8 once percent-decoded.
    InvalidUtf8 {
        /// The parameter, as written.
        param: String,
    },
}

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MagnetError::NotMagnet => f.write_str("not a magnet link (expected `magnet:?`)"),
            MagnetError::MissingInfoHash => {
                f.write_str("magnet link has no `xt=urn:btih:` info-hash")
            }
            MagnetError::InvalidInfoHash { param } => write!(
                f,
                "magnet parameter `{param}`: info-hash is neither 40 hex digits nor 32 base32 characters"
            ),
            MagnetError::ConflictingInfoHash { param } => write!(
                f,
                "magnet parameter `{param}`: names a different info-hash than an earlier `xt`"
            ),
            MagnetError::BadEscape { param } => write!(
                f,
                "magnet parameter `{param}`: `%` not followed by two hex digits"
            ),
            MagnetError::InvalidUtf8 { param } => write!(
                f,
                "magnet parameter `{param}`: value is not UTF-8 once percent-decoded"
            ),
        }
    }
}

impl std::error::Error for MagnetError {}

impl Magnet {
    /// A magnet link with only an info-hash: no name, trackers or peers.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            web_seeds: Vec::new(),
        }
    }

    /// Parses a `magnet:?…` link; see the module docs for what is accepted.
    pub fn parse(text: &str) -> Result<Magnet, MagnetError> {
        let text = text.trim();
        let query = match (text.get(..7), text.get(7..)) {
            (Some(scheme), Some(rest)) if scheme.eq_ignore_ascii_case("magnet:") => {
                rest.strip_prefix('?').ok_or(MagnetError::NotMagnet)?
            }
            _ => return Err(MagnetError::NotMagnet),
        };

        let mut info_hash: Option<InfoHash> = None;
        let mut display_name = None;
        let mut trackers = Vec::new();
        let mut peers = Vec::new();
        let mut web_seeds = Vec::new();

        for pair in query.split('&') {
            // A parameter without `=` has an empty value; `&&` gives an empty name that
            // matches nothing.
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if is_param(key, "xt") {
                let urn = percent_decode(value, false).ok_or_else(|| bad_escape(key))?;
                let Some(hash) = strip_prefix_ignore_case(&urn, b"urn:btih:") else {
                    continue; // another kind of topic, such as urn:btmh: (v2)
                };
                let hash = decode_btih(hash).ok_or_else(|| MagnetError::InvalidInfoHash {
                    param: key.to_string(),
                })?;
                match info_hash {
                    Some(earlier) if earlier != hash => {
                        return Err(MagnetError::ConflictingInfoHash {
                            param: key.to_string(),
                        })
                    }
                    _ => info_hash = Some(hash),
                }
            } else if key.eq_ignore_ascii_case("dn") {
                let name = decode_string(key, value, true)?;
                display_name.get_or_insert(name);
            } else if is_param(key, "tr") {
                trackers.push(decode_string(key, value, false)?);
            } else if key.eq_ignore_ascii_case("x.pe") {
                peers.push(decode_string(key, value, false)?);
            } else if key.eq_ignore_ascii_case("ws") {
                web_seeds.push(decode_string(key, value, false)?);
            }
        }

        dedup_keep_first(&mut trackers);
        dedup_keep_first(&mut web_seeds);
        Ok(Magnet {
            info_hash: info_hash.ok_or(MagnetError::MissingInfoHash)?,
            display_name,
            trackers,
            peers,
            web_seeds,
        })
    }

    /// The link as `magnet:?xt=urn:btih:<lower hex>&dn=…&tr=…&x.pe=…`, with every value
    /// percent-encoded except for RFC 3986's unreserved characters.
    pub fn to_uri(&self) -> String {
        self.to_string()
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Magnet::parse(s)
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash)?;
        if let Some(name) = &self.display_name {
            f.write_str("&dn=")?;
            write_encoded(f, name)?;
        }
        for tracker in &self.trackers {
            f.write_str("&tr=")?;
            write_encoded(f, tracker)?;
        }
        for peer in &self.peers {
            f.write_str("&x.pe=")?;
            write_encoded(f, peer)?;
        }
        for url in &self.web_seeds {
            f.write_str("&ws=")?;
            write_encoded(f, url)?;
        }
        Ok(())
    }
}

/// Whether `key` is `base` or an indexed form of it (`base.N`, N decimal digits).
fn is_param(key: &str, base: &str) -> bool {
    let (key, base) = (key.as_bytes(), base.as_bytes());
    match (key.get(..base.len()), key.get(base.len()..)) {
        (Some(head), Some(tail)) if head.eq_ignore_ascii_case(base) => match tail {
            [] => true,
            [b'.', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
            _ => false,
        },
        _ => false,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    match (s.get(..prefix.len()), s.get(prefix.len()..)) {
        (Some(head), Some(tail)) if head.eq_ignore_ascii_case(prefix) => Some(tail),
        _ => None,
    }
}

fn bad_escape(key: &str) -> MagnetError {
    MagnetError::BadEscape {
        param: key.to_string(),
    }
}

fn decode_string(key: &str, value: &str, plus_is_space: bool) -> Result<String, MagnetError> {
    let bytes = percent_decode(value, plus_is_space).ok_or_else(|| bad_escape(key))?;
    String::from_utf8(bytes).map_err(|_| MagnetError::InvalidUtf8 {
        param: key.to_string(),
    })
}

/// Percent-decodes `value`; `None` if a `%` is not followed by two hex digits. A raw `+`
/// is a space where `plus_is_space` (an escaped `%2B` stays a `+`).
fn percent_decode(value: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    if plus_is_space && value.contains('+') {
        crate::percent::percent_decode(value.replace('+', "%20").as_bytes())
    } else {
        crate::percent::percent_decode(value.as_bytes())
    }
}

/// The info-hash in a btih value: 40 hex digits or 32 base32 characters.
fn decode_btih(s: &[u8]) -> Option<InfoHash> {
    match s.len() {
        40 => std::str::from_utf8(s)
            .ok()
            .and_then(|s| InfoHash::from_hex(s).ok()),
        32 => decode_base32_20(s).map(InfoHash),
        _ => None,
    }
}

/// Decodes exactly 32 RFC 4648 base32 characters (either case) into 20 bytes. 32 characters
/// carry 160 bits, exactly 20 bytes, so there is never padding or leftover bits.
fn decode_base32_20(s: &[u8]) -> Option<[u8; 20]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 20];
    // Every 8 characters (40 bits) make 5 bytes.
    for (chars, bytes) in s.chunks_exact(8).zip(out.chunks_exact_mut(5)) {
        let mut bits: u64 = 0;
        for &c in chars {
            bits = bits << 5 | u64::from(base32_value(c)?);
        }
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (bits >> (32 - 8 * i)) as u8;
        }
    }
    Some(out)
}

fn base32_value(c: u8) -> Option<u8> {
    match c.to_ascii_uppercase() {
        c @ b'A'..=b'Z' => Some(c - b'A'),
        c @ b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

/// Writes `value` percent-encoded, leaving only RFC 3986 unreserved characters as they are.
/// Encoding this much (`:` and `/` included) is what most clients emit for `tr`, and it is
/// what keeps `+`, `&` and `=` inside a value from being read as syntax.
fn write_encoded(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str(&crate::percent::percent_encode(value.as_bytes()))
}

/// Removes later duplicates, keeping the first occurrence and the order. A `BTreeSet` rather
/// than a `HashSet` keeps this O(n log n) on hostile links without a randomly seeded hasher.
fn dedup_keep_first(items: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    let keep: Vec<bool> = items.iter().map(|s| seen.insert(s.as_str())).collect();
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    fn hash() -> InfoHash {
        InfoHash::from_hex(HEX).unwrap()
    }

    fn with_hash(params: &str) -> String {
        format!("magnet:?xt=urn:btih:{HEX}{params}")
    }

    #[test]
    fn hex_info_hash_in_either_case() {
        let m = Magnet::parse(&with_hash("")).unwrap();
        assert_eq!(m, Magnet::new(hash()));
        let upper = format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase());
        assert_eq!(Magnet::parse(&upper).unwrap().info_hash, hash());
    }

    #[test]
    fn base32_info_hash() {
        // RFC 4648 base32 of the ASCII bytes "12345678901234567890".
        let expected = InfoHash(*b"12345678901234567890");
        assert_eq!(
            expected.to_hex(),
            "3132333435363738393031323334353637383930"
        );
        for b32 in [
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
        ] {
            let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
            assert_eq!(m.info_hash, expected);
        }
        // The extremes of the alphabet: every bit clear, every bit set.
        let zero = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", "A".repeat(32))).unwrap();
        assert_eq!(zero.info_hash, InfoHash([0; 20]));
        let ones = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", "7".repeat(32))).unwrap();
        assert_eq!(ones.info_hash, InfoHash([0xff; 20]));
    }

    #[test]
    fn same_hash_in_hex_and_base32_is_not_a_conflict() {
        let uri = "magnet:?xt=urn:btih:GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                   &xt.1=urn:btih:3132333435363738393031323334353637383930";
        assert_eq!(
            Magnet::parse(uri).unwrap().info_hash,
            InfoHash(*b"12345678901234567890")
        );
    }

    #[test]
    fn scheme_prefix_and_names_ignore_case() {
        let uri = format!("  MAGNET:?XT=URN:BTIH:{HEX}&DN=x&Tr=http%3A%2F%2Ft\n");
        let m = Magnet::parse(&uri).unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.display_name.as_deref(), Some("x"));
        assert_eq!(m.trackers, ["http://t"]);
    }

    #[test]
    fn trackers_keep_order_and_drop_duplicates() {
        let m = Magnet::parse(&with_hash(
            "&tr=udp%3A%2F%2Fa.example%3A6969%2Fannounce\
             &tr.2=http://b.example/announce\
             &tr.1=udp://a.example:6969/announce\
             &tr=https%3A%2F%2Fc.example%2Fannounce%3Fk%3Dv",
        ))
        .unwrap();
        assert_eq!(
            m.trackers,
            [
                "udp://a.example:6969/announce",
                "http://b.example/announce",
                "https://c.example/announce?k=v",
            ]
        );
    }

    #[test]
    fn indexed_topic() {
        let m = Magnet::parse(&format!("magnet:?xt.1=urn:btih:{HEX}")).unwrap();
        assert_eq!(m.info_hash, hash());
        // Only `.` and digits make an index: `xtx` and `xt.` are unknown names.
        let e = Magnet::parse(&format!("magnet:?xtx=urn:btih:{HEX}&xt.=urn:btih:{HEX}"));
        assert_eq!(e, Err(MagnetError::MissingInfoHash));
    }

    #[test]
    fn display_name_is_percent_decoded_utf8() {
        let m = Magnet::parse(&with_hash("&dn=Caf%C3%a9%20%E2%98%95")).unwrap();
        assert_eq!(m.display_name.as_deref(), Some("Café ☕"));
        // Unescaped non-ASCII text passes through as it is.
        let m = Magnet::parse(&with_hash("&dn=Café")).unwrap();
        assert_eq!(m.display_name.as_deref(), Some("Café"));
        // The first `dn` wins.
        let m = Magnet::parse(&with_hash("&dn=one&dn=two")).unwrap();
        assert_eq!(m.display_name.as_deref(), Some("one"));
    }

    #[test]
    fn plus_is_a_space_only_in_the_name() {
        let m = Magnet::parse(&with_hash(
            "&dn=a+b%2Bc&tr=http://t.example/a+b&x.pe=h+1:80",
        ))
        .unwrap();
        assert_eq!(m.display_name.as_deref(), Some("a b+c"));
        assert_eq!(m.trackers, ["http://t.example/a+b"]);
        assert_eq!(m.peers, ["h+1:80"]);
    }

    #[test]
    fn peers_are_kept_as_given() {
        let m = Magnet::parse(&with_hash(
            "&x.pe=10.0.0.1:6881&x.pe=%5B::1%5D:6881&x.pe=10.0.0.1:6881",
        ))
        .unwrap();
        assert_eq!(m.peers, ["10.0.0.1:6881", "[::1]:6881", "10.0.0.1:6881"]);
    }

    #[test]
    fn unknown_parameters_and_topics_are_ignored() {
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btmh:1220{}&xl=10826029&&xs=%zz&as&xt=urn:btih:{HEX}&kt=a+b",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(m, Magnet::new(hash()));
        // `ws` is read: web seeds, kept once each.
        let m = Magnet::parse(&with_hash("&ws=http://w&ws=http%3A%2F%2Fv%2F&ws=http://w")).unwrap();
        assert_eq!(m.web_seeds, ["http://w", "http://v/"]);
        // `#` is data, not a fragment.
        let m = Magnet::parse(&with_hash("&dn=C#&tr=http://t")).unwrap();
        assert_eq!(m.display_name.as_deref(), Some("C#"));
        assert_eq!(m.trackers, ["http://t"]);
    }

    #[test]
    fn builds_the_canonical_form() {
        let m = Magnet {
            info_hash: InfoHash::from_hex(&HEX.to_uppercase()).unwrap(),
            display_name: Some("Café au lait+1 (2024).mkv".into()),
            trackers: vec![
                "udp://a.example:6969/announce".into(),
                "http://b.example/ann?x=1&y=2".into(),
            ],
            peers: vec!["[::1]:6881".into()],
            web_seeds: vec!["http://w.example/files/".into()],
        };
        let uri = m.to_uri();
        assert_eq!(
            uri,
            format!(
                "magnet:?xt=urn:btih:{HEX}\
                 &dn=Caf%C3%A9%20au%20lait%2B1%20%282024%29.mkv\
                 &tr=udp%3A%2F%2Fa.example%3A6969%2Fannounce\
                 &tr=http%3A%2F%2Fb.example%2Fann%3Fx%3D1%26y%3D2\
                 &x.pe=%5B%3A%3A1%5D%3A6881\
                 &ws=http%3A%2F%2Fw.example%2Ffiles%2F"
            )
        );
        assert_eq!(m.to_string(), uri);
        assert_eq!(uri.parse::<Magnet>(), Ok(m));
        assert_eq!(
            Magnet::new(hash()).to_uri(),
            format!("magnet:?xt=urn:btih:{HEX}")
        );
    }

    #[test]
    fn not_a_magnet_link() {
        for text in [
            "",
            "magnet",
            "magnet:",
            "magnet:xt=urn:btih:",
            "magnet://?xt=urn:btih:",
            "http://example.com/?xt=urn:btih:",
            "magné:?",
            "ü",
        ] {
            assert_eq!(Magnet::parse(text), Err(MagnetError::NotMagnet), "{text:?}");
        }
    }

    #[test]
    fn missing_info_hash() {
        for text in [
            "magnet:?",
            "magnet:?dn=x&tr=http://t",
            "magnet:?xt=urn:btmh:1220abcd",
            "magnet:?xt",
            "magnet:?xt=urn:sha1:abc",
        ] {
            assert_eq!(
                Magnet::parse(text),
                Err(MagnetError::MissingInfoHash),
                "{text:?}"
            );
        }
    }

    #[test]
    fn invalid_info_hash() {
        let invalid = |param: &str| MagnetError::InvalidInfoHash {
            param: param.to_string(),
        };
        for value in [
            String::new(),
            HEX[..39].to_string(),
            format!("{HEX}0"),
            format!("{}g", &HEX[..39]),
            // `0`, `1`, `8` and `9` are not in the base32 alphabet.
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1".to_string(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ8".to_string(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQO==".to_string(),
            // 40 bytes but not 40 hex digits.
            "é".repeat(20),
        ] {
            let text = format!("magnet:?xt.3=urn:btih:{value}");
            assert_eq!(Magnet::parse(&text), Err(invalid("xt.3")), "{text:?}");
        }
    }

    #[test]
    fn conflicting_info_hash() {
        let text = format!("magnet:?xt=urn:btih:{HEX}&xt.2=urn:btih:{}", "A".repeat(32));
        assert_eq!(
            Magnet::parse(&text),
            Err(MagnetError::ConflictingInfoHash {
                param: "xt.2".into()
            })
        );
    }

    #[test]
    fn bad_escapes() {
        for (params, param) in [
            ("&dn=%", "dn"),
            ("&dn=%4", "dn"),
            ("&tr=http://t/%zz", "tr"),
            ("&tr.7=%%41", "tr.7"),
            ("&x.pe=a%g0", "x.pe"),
            ("&xt=urn%3Abtih%3", "xt"),
        ] {
            assert_eq!(
                Magnet::parse(&with_hash(params)),
                Err(MagnetError::BadEscape {
                    param: param.into()
                }),
                "{params:?}"
            );
        }
        // An escaped topic is decoded before its kind is read.
        let m = Magnet::parse(&format!("magnet:?xt=urn%3Abtih%3A{HEX}")).unwrap();
        assert_eq!(m.info_hash, hash());
    }

    #[test]
    fn invalid_utf8() {
        for (params, param) in [
            ("&dn=%FF", "dn"),
            ("&tr=http://t/%C3", "tr"),
            ("&x.pe=%C3%28:1", "x.pe"),
        ] {
            assert_eq!(
                Magnet::parse(&with_hash(params)),
                Err(MagnetError::InvalidUtf8 {
                    param: param.into()
                }),
                "{params:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = Magnet::parse(&with_hash("&tr.2=%FF")).unwrap_err();
        assert!(e.to_string().contains("`tr.2`"), "{e}");
        let e = Magnet::parse("magnet:?dn=x").unwrap_err();
        assert!(e.to_string().contains("xt"), "{e}");
        let _: &dyn std::error::Error = &e;
    }

    impl Arbitrary for Magnet {
        fn arbitrary(g: &mut Gen) -> Self {
            let mut hash = [0u8; 20];
            for b in &mut hash {
                *b = u8::arbitrary(g);
            }
            let mut trackers = Vec::<String>::arbitrary(g);
            // Parsing drops repeated trackers and web seeds, so only distinct ones can
            // round-trip.
            dedup_keep_first(&mut trackers);
            let mut web_seeds = Vec::<String>::arbitrary(g);
            dedup_keep_first(&mut web_seeds);
            Magnet {
                info_hash: InfoHash(hash),
                display_name: Option::arbitrary(g),
                trackers,
                peers: Vec::arbitrary(g),
                web_seeds,
            }
        }
    }

    /// Pieces of magnet syntax, so that arbitrary links get past the scheme and reach every
    /// branch of the parser.
    const TOKENS: &[&str] = &[
        "magnet:?",
        "&tr=",
        "&tr.2=",
        "&dn=",
        "&DN=",
        "&x.pe=",
        "&xt=urn:btih:",
        "&xt.1=",
        "xt",
        "tr",
        "=",
        "&",
        "%",
        "%4",
        "%C3",
        "%a9",
        "%2B",
        "+",
        "urn:btih:",
        "urn:btmh:",
        "GEZDGNBVGY3TQOJQ",
        "3132333435363738",
        "é",
        "#",
        "a",
        ":",
    ];

    quickcheck! {
        fn to_uri_round_trips(m: Magnet) -> bool {
            Magnet::parse(&m.to_uri()) == Ok(m)
        }

        fn arbitrary_text_never_panics(text: String) -> bool {
            let _ = Magnet::parse(&text);
            let _ = Magnet::parse(&format!("magnet:?{text}"));
            let _ = Magnet::parse(&format!("magnet:?xt=urn:btih:{text}"));
            true
        }

        fn arbitrary_token_soup_never_panics(picks: Vec<u8>) -> bool {
            let soup: String = picks
                .iter()
                .map(|&i| TOKENS[usize::from(i) % TOKENS.len()])
                .collect();
            let _ = Magnet::parse(&soup);
            // Behind a valid topic the soup mostly parses: whatever does must build a link
            // that parses to the same magnet.
            match Magnet::parse(&with_hash(&format!("&{soup}"))) {
                Ok(m) => Magnet::parse(&m.to_uri()) == Ok(m),
                Err(_) => true,
            }
        }
    }
}
