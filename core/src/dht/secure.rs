//! BEP 42: node ids tied to IP addresses, so one machine cannot choose where in the id
//! space it sits (and so cannot surround an info-hash with nodes of its own).
//!
//! The first 21 bits of a valid id are the top bits of CRC-32C over the masked IPv4
//! address (octets AND `03 0f 3f ff`) whose first octet carries three random bits `r` in
//! its top bits; the id's last byte holds `r` in its low bits. Addresses that cannot be
//! seen from the Internet (loopback, private, link-local, unspecified) are exempt: any id
//! is valid for them, as BEP 42 asks.

use core::net::Ipv4Addr;

use crc::{Crc, CRC_32_ISCSI};

use super::id::NodeId;
use crate::rng::Rng;

const CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Whether BEP 42 leaves `ip` alone (loopback, private, link-local, unspecified).
pub fn is_exempt(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
}

fn prefix(ip: Ipv4Addr, r: u8) -> u32 {
    let o = ip.octets();
    let masked = [
        (o[0] & 0x03) | ((r & 0x07) << 5),
        o[1] & 0x0f,
        o[2] & 0x3f,
        o[3],
    ];
    CASTAGNOLI.checksum(&masked)
}

/// A valid id for `ip` whose last byte is `last` (its low 3 bits are BEP 42's `r`), the
/// rest from `rng`.
pub fn id_for(ip: Ipv4Addr, last: u8, rng: &mut Rng) -> NodeId {
    let mut id = NodeId::random(rng).0;
    let crc = prefix(ip, last).to_be_bytes();
    id[0] = crc[0];
    id[1] = crc[1];
    id[2] = (crc[2] & 0xf8) | (id[2] & 0x07);
    id[19] = last;
    NodeId(id)
}

/// Whether `id` is valid for a node at `ip`.
pub fn is_valid(id: &NodeId, ip: Ipv4Addr) -> bool {
    if is_exempt(ip) {
        return true;
    }
    let crc = prefix(ip, id.0[19]).to_be_bytes();
    id.0[0] == crc[0] && id.0[1] == crc[1] && (id.0[2] & 0xf8) == (crc[2] & 0xf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of BEP 42: address, random byte, the id's first three bytes.
    const VECTORS: [([u8; 4], u8, [u8; 3]); 5] = [
        ([124, 31, 75, 21], 1, [0x5f, 0xbf, 0xbf]),
        ([21, 75, 31, 124], 86, [0x5a, 0x3c, 0xe9]),
        ([65, 23, 51, 170], 22, [0xa5, 0xd4, 0x32]),
        ([84, 124, 73, 14], 65, [0x1b, 0x03, 0x21]),
        ([43, 213, 53, 83], 90, [0xe5, 0x6f, 0x6c]),
    ];

    #[test]
    fn the_examples_of_bep_42() {
        let mut rng = Rng::new(1);
        for (ip, rand, start) in VECTORS {
            let ip = Ipv4Addr::from(ip);
            let id = id_for(ip, rand, &mut rng);
            assert_eq!(&id.0[..2], &start[..2], "{ip}");
            assert_eq!(id.0[2] & 0xf8, start[2] & 0xf8, "{ip}");
            assert_eq!(id.0[19], rand);
            assert!(is_valid(&id, ip));
            let mut other = id;
            other.0[1] ^= 0x01;
            assert!(!is_valid(&other, ip), "{ip}: a flipped bit");
            assert!(!is_valid(&id, Ipv4Addr::new(8, 8, 8, 8)), "another address");
        }
    }

    #[test]
    fn local_addresses_are_exempt() {
        let any = NodeId([0xab; 20]);
        for ip in [
            [127, 0, 0, 1],
            [10, 1, 2, 3],
            [192, 168, 1, 1],
            [172, 16, 0, 9],
            [169, 254, 0, 1],
        ] {
            assert!(is_valid(&any, Ipv4Addr::from(ip)));
        }
        assert!(!is_valid(&any, Ipv4Addr::new(124, 31, 75, 21)));
    }
}
