//! The BEP 3 handshake: the first 68 bytes each side sends.

use bytes::{Buf, BufMut, BytesMut};

use super::WireError;
use crate::{InfoHash, PeerId};

/// The protocol string every BitTorrent handshake starts with, after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The 8 reserved handshake bytes, in which each side advertises the extensions it speaks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Reserved(pub [u8; 8]);

// (byte, mask) of each extension bit we know.
const FAST: (usize, u8) = (7, 0x04); // BEP 6
const EXTENSIONS: (usize, u8) = (5, 0x10); // BEP 10
const DHT: (usize, u8) = (7, 0x01); // BEP 5

impl Reserved {
    /// No extension advertised.
    pub const NONE: Reserved = Reserved([0; 8]);

    /// What shoal advertises: the fast extension and the extension protocol. DHT is not
    /// advertised, because a peer that sees the bit sends a `port` message we would ignore.
    pub fn ours() -> Reserved {
        let mut r = Reserved::NONE;
        r.set_fast(true);
        r.set_extensions(true);
        r
    }

    fn bit(self, (byte, mask): (usize, u8)) -> bool {
        self.0[byte] & mask != 0
    }

    fn set_bit(&mut self, (byte, mask): (usize, u8), on: bool) {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
    }

    /// BEP 6 fast extension: have-all/none, suggest, reject, allowed-fast.
    pub fn supports_fast(self) -> bool {
        self.bit(FAST)
    }

    /// BEP 10 extension protocol: the extended handshake and extended messages.
    pub fn supports_extensions(self) -> bool {
        self.bit(EXTENSIONS)
    }

    /// BEP 5 DHT: the peer may send a `port` message.
    pub fn supports_dht(self) -> bool {
        self.bit(DHT)
    }

    /// Sets or clears the BEP 6 fast extension bit.
    pub fn set_fast(&mut self, on: bool) {
        self.set_bit(FAST, on);
    }

    /// Sets or clears the BEP 10 extension protocol bit.
    pub fn set_extensions(&mut self, on: bool) {
        self.set_bit(EXTENSIONS, on);
    }

    /// Sets or clears the BEP 5 DHT bit.
    pub fn set_dht(&mut self, on: bool) {
        self.set_bit(DHT, on);
    }
}

/// A handshake: `19, "BitTorrent protocol", reserved[8], info_hash[20], peer_id[20]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Handshake {
    /// The extension bits (fast extension, extension protocol, DHT).
    pub reserved: Reserved,
    /// The torrent the sender wants.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

/// Where the info-hash sits in a handshake: after the length byte, the protocol string and
/// the reserved bytes.
const INFO_HASH_AT: usize = 1 + PROTOCOL.len() + 8;
const PEER_ID_AT: usize = INFO_HASH_AT + 20;

impl Handshake {
    /// The size of a handshake on the wire.
    pub const LEN: usize = PEER_ID_AT + 20;

    /// Our handshake for a torrent, advertising [`Reserved::ours`].
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Handshake {
        Handshake {
            reserved: Reserved::ours(),
            info_hash,
            peer_id,
        }
    }

    /// Appends the 68 handshake bytes to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(Self::LEN);
        dst.put_u8(PROTOCOL.len() as u8);
        dst.put_slice(PROTOCOL);
        dst.put_slice(&self.reserved.0);
        dst.put_slice(&self.info_hash.0);
        dst.put_slice(&self.peer_id.0);
    }

    /// Reads a handshake from the front of `src`.
    ///
    /// `Ok(None)`: fewer than 68 bytes are buffered and those that are look like a handshake;
    /// nothing is consumed. `Ok(Some(_))` consumes exactly 68 bytes, leaving whatever the
    /// peer sent after its handshake (usually a bitfield) for the message
    /// [`Decoder`](super::Decoder). A wrong protocol string is reported as soon as its first
    /// differing byte arrives, so a non-BitTorrent peer is dropped without waiting.
    pub fn decode(src: &mut BytesMut) -> Result<Option<Handshake>, WireError> {
        check_protocol(src)?;
        let Some(bytes) = src.get(..Self::LEN) else {
            return Ok(None);
        };
        let mut reserved = [0u8; 8];
        let mut info_hash = [0u8; 20];
        let mut peer_id = [0u8; 20];
        reserved.copy_from_slice(&bytes[INFO_HASH_AT - 8..INFO_HASH_AT]);
        info_hash.copy_from_slice(&bytes[INFO_HASH_AT..PEER_ID_AT]);
        peer_id.copy_from_slice(&bytes[PEER_ID_AT..Self::LEN]);
        src.advance(Self::LEN);
        Ok(Some(Handshake {
            reserved: Reserved(reserved),
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        }))
    }

    /// The info-hash of a partly received handshake, once its first 48 bytes are in.
    ///
    /// An accepting side uses this to route a connection to its torrent (and to answer
    /// with its own handshake) before the peer id arrives: some clients hold their peer id
    /// back until they have seen the other side's handshake. Consumes nothing.
    pub fn peek_info_hash(src: &[u8]) -> Result<Option<InfoHash>, WireError> {
        check_protocol(src)?;
        let Some(bytes) = src.get(INFO_HASH_AT..PEER_ID_AT) else {
            return Ok(None);
        };
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(bytes);
        Ok(Some(InfoHash(info_hash)))
    }
}

/// Checks whatever part of the `pstrlen` + protocol string prefix has arrived.
fn check_protocol(src: &[u8]) -> Result<(), WireError> {
    let Some(&pstrlen) = src.first() else {
        return Ok(());
    };
    let seen = &src[1..src.len().min(1 + PROTOCOL.len())];
    if usize::from(pstrlen) != PROTOCOL.len() || !PROTOCOL.starts_with(seen) {
        return Err(WireError::WrongProtocol { pstrlen });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake::new(InfoHash([0xaa; 20]), PeerId(*b"-SH0100-123456789012"))
    }

    #[test]
    fn exact_bytes() {
        let mut buf = BytesMut::new();
        sample().encode(&mut buf);
        let mut expected = vec![19u8];
        expected.extend_from_slice(b"BitTorrent protocol");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        expected.extend_from_slice(&[0xaa; 20]);
        expected.extend_from_slice(b"-SH0100-123456789012");
        assert_eq!(&buf[..], &expected[..]);
        assert_eq!(buf.len(), Handshake::LEN);
        assert_eq!(Handshake::LEN, 68);
    }

    #[test]
    fn reserved_bits() {
        let ours = Reserved::ours();
        assert!(ours.supports_fast() && ours.supports_extensions() && !ours.supports_dht());
        assert_eq!(ours.0, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);

        let mut r = Reserved([0xff; 8]);
        r.set_fast(false);
        assert_eq!(r.0[7], 0xfb);
        assert!(!r.supports_fast() && r.supports_dht() && r.supports_extensions());
        r.set_dht(false);
        r.set_extensions(false);
        assert_eq!(r.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0xff, 0xfa]);
        r.set_dht(true);
        assert!(r.supports_dht());
        assert!(!Reserved::NONE.supports_fast());
    }

    #[test]
    fn decode_is_incremental_and_leaves_what_follows() {
        let mut wire = BytesMut::new();
        sample().encode(&mut wire);
        wire.extend_from_slice(&[0, 0, 0, 1, 2]); // an interested message follows

        let mut buf = BytesMut::new();
        for (i, &b) in wire[..Handshake::LEN - 1].iter().enumerate() {
            buf.extend_from_slice(&[b]);
            assert_eq!(Handshake::decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), i + 1, "nothing consumed while waiting");
            let peek = Handshake::peek_info_hash(&buf).unwrap();
            assert_eq!(peek.is_some(), buf.len() >= 48);
        }
        assert_eq!(
            Handshake::peek_info_hash(&buf[..48]),
            Ok(Some(InfoHash([0xaa; 20])))
        );
        buf.extend_from_slice(&wire[Handshake::LEN - 1..]);
        assert_eq!(Handshake::decode(&mut buf), Ok(Some(sample())));
        assert_eq!(&buf[..], &[0, 0, 0, 1, 2]);
    }

    #[test]
    fn wrong_protocol_is_refused_early() {
        let mut http = BytesMut::from(&b"GET /announce"[..]);
        assert_eq!(
            Handshake::decode(&mut http),
            Err(WireError::WrongProtocol { pstrlen: b'G' })
        );
        assert_eq!(http.len(), 13, "nothing consumed on error");

        // Right length, wrong string: refused at the first differing byte.
        let mut almost = BytesMut::from(&b"\x13BitTorrent"[..]);
        assert_eq!(Handshake::decode(&mut almost), Ok(None));
        almost.extend_from_slice(b"-");
        assert_eq!(
            Handshake::decode(&mut almost),
            Err(WireError::WrongProtocol { pstrlen: 19 })
        );
        assert_eq!(
            Handshake::peek_info_hash(&almost),
            Err(WireError::WrongProtocol { pstrlen: 19 })
        );
        assert_eq!(Handshake::decode(&mut BytesMut::new()), Ok(None));
    }
}
