//! Percent-encoding (RFC 3986) and URL query strings, for announce and scrape requests.
//!
//! Tracker queries carry binary values (the info-hash and peer id are 20 raw bytes), so
//! everything here works on bytes, not text. The client side encodes; the tracker server
//! decodes with [`parse_query`].
//!
//! Choices:
//!
//! - [`percent_encode`] leaves only RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`)
//!   as they are and writes upper-case hex, which every tracker reads.
//! - `+` is a literal `+`, never a space: form encoding is not URL encoding, and a client
//!   that means the byte 0x2b in an info-hash escapes it as `%2B` anyway.
//! - [`percent_decode`] is strict (a `%` not followed by two hex digits is an error);
//!   [`parse_query`] is total: such a `%` is kept as it is, so the server can still read the
//!   other parameters and refuse just the bad one (an info-hash that is not 20 bytes long).
//! - [`parse_query`] keeps at most [`MAX_QUERY_PAIRS`] pairs and drops the rest, so a
//!   hostile query costs bounded memory beyond its own size.

use crate::percent::percent_decode_lenient;
pub use crate::percent::{percent_decode, percent_encode, percent_encode_into};

/// The most pairs [`parse_query`] returns: a scrape of many torrents needs one `info_hash`
/// each, and 256 is more than any request head within 16 KiB could name usefully.
pub const MAX_QUERY_PAIRS: usize = 256;

/// Splits a query string (the part after `?`, without it) into decoded `(name, value)` pairs
/// in their order. Empty segments (`a=1&&b=2`) are skipped; a segment without `=` has an
/// empty value. At most [`MAX_QUERY_PAIRS`] pairs are returned.
pub fn parse_query(query: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .take(MAX_QUERY_PAIRS)
        .map(|segment| {
            let (name, value) = match segment.iter().position(|&b| b == b'=') {
                Some(eq) => (&segment[..eq], &segment[eq + 1..]),
                None => (segment, &b""[..]),
            };
            (percent_decode_lenient(name), percent_decode_lenient(value))
        })
        .collect()
}

/// Builds a query string (without the leading `?`) from `(name, value)` pairs, both
/// percent-encoded. [`parse_query`] reads it back to the same pairs.
pub fn encode_query<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> String
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        percent_encode_into(name.as_ref(), &mut out);
        out.push('=');
        percent_encode_into(value.as_ref(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(percent_encode(b"aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode(b" +/%\x00\xff"), "%20%2B%2F%25%00%FF");
    }

    #[test]
    fn decodes_strictly() {
        assert_eq!(percent_decode(b"a%2b%2B+"), Some(b"a+++".to_vec()));
        assert_eq!(percent_decode(b"%"), None);
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(percent_decode(b"%zz"), None);
    }

    #[test]
    fn query_parsing_is_lenient_and_bounded() {
        let pairs = parse_query(b"a=1&&b&c=%zz&d=%41%&e=x=y");
        assert_eq!(
            pairs,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"".to_vec()),
                (b"c".to_vec(), b"%zz".to_vec()),
                (b"d".to_vec(), b"A%".to_vec()),
                (b"e".to_vec(), b"x=y".to_vec()),
            ]
        );
        let many = "x=1&".repeat(10_000);
        assert_eq!(parse_query(many.as_bytes()).len(), MAX_QUERY_PAIRS);
    }

    quickcheck! {
        fn query_round_trip(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> bool {
            let pairs: Vec<_> = pairs.into_iter().take(MAX_QUERY_PAIRS).collect();
            parse_query(encode_query(pairs.iter().map(|(k, v)| (k, v))).as_bytes()) == pairs
        }

        fn encode_decode_round_trip(bytes: Vec<u8>) -> bool {
            percent_decode(percent_encode(&bytes).as_bytes()) == Some(bytes)
        }

        fn parse_query_never_panics(bytes: Vec<u8>) -> bool {
            parse_query(&bytes).len() <= MAX_QUERY_PAIRS
        }
    }
}
