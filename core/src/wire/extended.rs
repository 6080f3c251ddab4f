//! The BEP 10 extended handshake: the bencoded dictionary in extended message 0.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use smallvec::SmallVec;

use super::WireError;
use crate::bencode::{self, put_bytes, put_int, Limits, Value};

/// Bounds for reading a peer's extended handshake. Real ones are one flat dictionary with a
/// nested `m` of a dozen entries; some clients add small lists. The value bound caps the
/// memory a hostile `m` can make us allocate.
const LIMITS: Limits = Limits {
    max_depth: 4,
    max_values: 512,
};

/// The longest client name (`v`) kept, in bytes; a longer one is cut, so that a peer cannot
/// make us hold a large string for the life of its connection.
pub const MAX_CLIENT_LEN: usize = 128;

/// A BEP 10 extended handshake.
///
/// Decoding is lenient, as real clients are: unknown keys are ignored, and so is a known
/// key whose value has the wrong type or is out of range (a `p` of 70000, a negative `reqq`),
/// while the rest of the handshake still counts.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ExtendedHandshake {
    /// `m`: extension name → the message id the sender wants to receive it under. Id 0
    /// means the extension is disabled (meaningful in a later handshake that turns one off).
    /// Encoding writes the names sorted and drops repeats (keeping the first); decoding keeps
    /// the sender's order.
    pub extensions: SmallVec<[(String, u8); 4]>,
    /// `p`: the TCP port the sender listens on (0 is not a port and reads as absent).
    pub listen_port: Option<u16>,
    /// `v`: the client's name and version, at most [`MAX_CLIENT_LEN`] bytes (invalid UTF-8
    /// replaced).
    pub client: Option<String>,
    /// `reqq`: how many outstanding requests the sender queues before dropping some.
    pub reqq: Option<u32>,
    /// `yourip`: the address the sender sees us at (4 or 16 bytes on the wire).
    pub your_ip: Option<IpAddr>,
    /// `metadata_size`: the size of the info dictionary (BEP 9), for magnet links.
    pub metadata_size: Option<u64>,
}

impl ExtendedHandshake {
    /// The id the sender wants `name` messages sent under, unless absent or disabled.
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, id)| id)
            .filter(|&id| id != 0)
    }

    /// Canonical bencode: keys sorted, those of `m` too.
    ///
    /// Written by hand rather than with `bendy`, whose encoder allocates ~147 KB per
    /// instance: too much for a message every connection sends.
    pub fn encode(&self) -> Bytes {
        let names: usize = self.extensions.iter().map(|(n, _)| n.len() + 10).sum();
        let client = self.client.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(96 + names + client);
        out.push(b'd');

        // Keys in byte order: m, metadata_size, p, reqq, v, yourip.
        put_bytes(&mut out, b"m");
        out.push(b'd');
        let mut sorted: SmallVec<[&(String, u8); 8]> = self.extensions.iter().collect();
        // Stable, so of repeated names the first one given is kept.
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.dedup_by(|later, earlier| later.0 == earlier.0);
        for (name, id) in sorted {
            put_bytes(&mut out, name.as_bytes());
            put_int(&mut out, u64::from(*id));
        }
        out.push(b'e');

        if let Some(size) = self.metadata_size {
            put_bytes(&mut out, b"metadata_size");
            put_int(&mut out, size);
        }
        if let Some(port) = self.listen_port {
            put_bytes(&mut out, b"p");
            put_int(&mut out, u64::from(port));
        }
        if let Some(reqq) = self.reqq {
            put_bytes(&mut out, b"reqq");
            put_int(&mut out, u64::from(reqq));
        }
        if let Some(client) = &self.client {
            put_bytes(&mut out, b"v");
            put_bytes(&mut out, client.as_bytes());
        }
        if let Some(ip) = self.your_ip {
            put_bytes(&mut out, b"yourip");
            match ip {
                IpAddr::V4(ip) => put_bytes(&mut out, &ip.octets()),
                IpAddr::V6(ip) => put_bytes(&mut out, &ip.octets()),
            }
        }
        out.push(b'e');
        Bytes::from(out)
    }

    /// Reads an extended handshake payload (the bytes after the extended message id 0).
    ///
    /// Only input that is not a bencoded dictionary is an error; see the type's docs for
    /// how ill-typed values are treated.
    pub fn decode(payload: &[u8]) -> Result<ExtendedHandshake, WireError> {
        let value = bencode::decode_with(payload, LIMITS).map_err(WireError::ExtendedHandshake)?;
        let dict = value.as_dict().ok_or(WireError::ExtendedHandshakeNotDict)?;
        let mut hs = ExtendedHandshake::default();
        for (key, value) in &dict.entries {
            match *key {
                b"m" => {
                    let Some(m) = value.as_dict() else { continue };
                    for (name, id) in &m.entries {
                        let name = std::str::from_utf8(name);
                        let id = id.as_int().and_then(|i| u8::try_from(i).ok());
                        if let (Ok(name), Some(id)) = (name, id) {
                            hs.extensions.push((name.to_owned(), id));
                        }
                    }
                }
                b"p" => hs.listen_port = int(value).filter(|&p: &u16| p != 0),
                b"v" => {
                    hs.client = value.as_bytes().map(|v| {
                        String::from_utf8_lossy(&v[..v.len().min(MAX_CLIENT_LEN)]).into_owned()
                    });
                }
                b"reqq" => hs.reqq = int(value),
                b"yourip" => {
                    hs.your_ip = match value.as_bytes() {
                        Some(&[a, b, c, d]) => Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
                        Some(b) => <[u8; 16]>::try_from(b)
                            .ok()
                            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
                        None => None,
                    }
                }
                b"metadata_size" => hs.metadata_size = int(value),
                _ => {}
            }
        }
        Ok(hs)
    }
}

/// An integer value that fits `T`; anything else reads as absent.
fn int<T: TryFrom<i64>>(value: &Value<'_>) -> Option<T> {
    value.as_int().and_then(|i| T::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    #[test]
    fn encodes_canonically() {
        let hs = ExtendedHandshake {
            extensions: smallvec![
                ("ut_pex".to_owned(), 2),
                ("ut_metadata".to_owned(), 1),
                ("ut_pex".to_owned(), 9),
            ],
            listen_port: Some(6881),
            client: Some("shoal 0.1".to_owned()),
            reqq: Some(250),
            your_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            metadata_size: Some(31235),
        };
        let bytes = hs.encode();
        assert_eq!(
            &bytes[..],
            &b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei31235e1:pi6881e\
               4:reqqi250e1:v9:shoal 0.16:yourip4:\x0a\x00\x00\x01e"[..]
        );
        let value = bencode::decode(&bytes).unwrap();
        assert!(value.is_canonical());
        assert_eq!(ExtendedHandshake::default().encode(), &b"d1:mdee"[..]);
    }

    #[test]
    fn decodes_a_real_looking_handshake() {
        let payload = b"d12:complete_agoi1e1:md11:lt_donthavei7e10:share_modei8e\
            11:ut_metadatai2e6:ut_pexi1e12:ut_holepunchi0ee13:metadata_sizei5000e\
            1:pi51413e4:reqqi512e11:upload_onlyi0e1:v17:qBittorrent/4.6.26:yourip\
            16:\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01e";
        let hs = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(hs.extension_id("ut_metadata"), Some(2));
        assert_eq!(hs.extension_id("ut_pex"), Some(1));
        assert_eq!(hs.extension_id("ut_holepunch"), None, "0 means disabled");
        assert_eq!(hs.extension_id("nope"), None);
        assert_eq!(hs.extensions.len(), 5);
        assert_eq!(hs.listen_port, Some(51413));
        assert_eq!(hs.reqq, Some(512));
        assert_eq!(hs.client.as_deref(), Some("qBittorrent/4.6.2"));
        assert_eq!(hs.metadata_size, Some(5000));
        assert_eq!(hs.your_ip, Some("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn ill_typed_and_out_of_range_values_are_ignored() {
        let payload = b"d1:md1:ai300e1:bi-1e1:c3:xyz1:di3e2:\xff\xffi4ee\
            13:metadata_sizei-5e1:pi70000e4:reqqi-1e1:vi5e6:yourip3:abce";
        let hs = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(&hs.extensions[..], &[("d".to_owned(), 3)]);
        assert_eq!(hs.listen_port, None);
        assert_eq!(hs.reqq, None);
        assert_eq!(hs.client, None);
        assert_eq!(hs.your_ip, None);
        assert_eq!(hs.metadata_size, None);

        let hs = ExtendedHandshake::decode(b"d1:mi1e1:p3:abc1:pi0ee");
        assert!(matches!(
            hs,
            Err(WireError::ExtendedHandshake(bencode::Error {
                kind: bencode::ErrorKind::DuplicateKey,
                ..
            }))
        ));
        let hs = ExtendedHandshake::decode(b"d1:mi1e1:pi0ee").unwrap();
        assert_eq!(hs.listen_port, None, "port 0 is not a port");
        assert!(hs.extensions.is_empty());
    }

    #[test]
    fn long_client_names_are_cut() {
        let name = "é".repeat(100); // 200 bytes
        let hs = ExtendedHandshake {
            client: Some(name),
            ..Default::default()
        };
        let back = ExtendedHandshake::decode(&hs.encode()).unwrap();
        let client = back.client.unwrap();
        assert_eq!(client, "é".repeat(64));
        assert!(client.len() <= MAX_CLIENT_LEN);
    }

    #[test]
    fn errors() {
        assert_eq!(
            ExtendedHandshake::decode(b"li1ee"),
            Err(WireError::ExtendedHandshakeNotDict)
        );
        assert!(matches!(
            ExtendedHandshake::decode(b"d1:m"),
            Err(WireError::ExtendedHandshake(_))
        ));
        let deep = b"d1:xlllllleeeeeee";
        assert!(matches!(
            ExtendedHandshake::decode(deep),
            Err(WireError::ExtendedHandshake(bencode::Error {
                kind: bencode::ErrorKind::TooDeep,
                ..
            }))
        ));
        let mut huge_m = b"d1:md".to_vec();
        for i in 0..1000 {
            huge_m.extend_from_slice(format!("4:{i:04}i1e").as_bytes());
        }
        huge_m.extend_from_slice(b"ee");
        assert!(matches!(
            ExtendedHandshake::decode(&huge_m),
            Err(WireError::ExtendedHandshake(bencode::Error {
                kind: bencode::ErrorKind::TooManyValues,
                ..
            }))
        ));
    }
}
