//! The UDP tracker protocol (BEP 15): every packet as pure encode/decode functions, and
//! [`UdpTrackerClient`], the exchange with one tracker as a state machine over datagrams.
//!
//! The packet functions serve both sides: the client encodes requests and decodes
//! responses, the tracker server does the opposite, with the same code. All integers are
//! big-endian. Decoders check lengths before reading, so any datagram either decodes or is
//! a [`TrackerError::BadUdpPacket`]; none panics. Lenient where it costs nothing: an
//! announce request may carry BEP 41 options after its 98 bytes (ignored), and a trailing
//! partial peer or scrape entry in a response is ignored.
//!
//! A response's peer list is IPv4 (6 bytes per peer) when the tracker was reached over IPv4
//! and IPv6 (18 bytes) over IPv6, so decoding and encoding an announce response takes the
//! [`IpFamily`] of the exchange.

mod client;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use client::{UdpConfig, UdpEvent, UdpTrackerClient};

use super::{message_text, AnnounceEvent, AnnounceParams, AnnounceResponse, ScrapeStats};
use super::{TrackerError, MAX_PEERS};
use crate::types::{InfoHash, PeerId};

/// The magic number that starts every connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// The most info-hashes one scrape request may carry (BEP 15), so that the answer fits a
/// datagram every path lets through.
pub const MAX_SCRAPE_HASHES: usize = 74;

/// The length of an announce request without BEP 41 options.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// The address family of a UDP tracker exchange, which fixes the size of peer entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4: peers are 6 bytes in compact lists.
    V4,
    /// IPv6: peers are 18 bytes in compact lists.
    V6,
}

impl IpFamily {
    /// The family of `addr`.
    pub fn of(addr: &SocketAddr) -> IpFamily {
        match addr {
            SocketAddr::V4(_) => IpFamily::V4,
            SocketAddr::V6(_) => IpFamily::V6,
        }
    }

    fn peer_len(self) -> usize {
        match self {
            IpFamily::V4 => 6,
            IpFamily::V6 => 18,
        }
    }
}

/// An announce request (action 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpAnnounceRequest {
    /// The id from the connect exchange.
    pub connection_id: u64,
    /// The client's id for this exchange, echoed in the answer.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's peer id.
    pub peer_id: PeerId,
    /// Bytes received so far.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Bytes sent so far.
    pub uploaded: u64,
    /// Why it announces now.
    pub event: AnnounceEvent,
    /// The address to announce; 0.0.0.0 means the datagram's source address.
    pub ip: Ipv4Addr,
    /// The client's `key`, to recognise it across address changes.
    pub key: u32,
    /// Peers wanted; -1 means the tracker's default.
    pub num_want: i32,
    /// The port it accepts peer connections on.
    pub port: u16,
}

impl UdpAnnounceRequest {
    /// The request for `params` over a connection. UDP peer lists are always compact, and
    /// only an IPv4 `ip` can be carried (an IPv6 one is left out: the tracker uses the
    /// datagram's source).
    pub fn from_params(connection_id: u64, transaction_id: u32, params: &AnnounceParams) -> Self {
        UdpAnnounceRequest {
            connection_id,
            transaction_id,
            info_hash: params.info_hash,
            peer_id: params.peer_id,
            downloaded: params.downloaded,
            left: params.left,
            uploaded: params.uploaded,
            event: params.event,
            ip: match params.ip {
                Some(IpAddr::V4(ip)) => ip,
                _ => Ipv4Addr::UNSPECIFIED,
            },
            key: params.key,
            num_want: i32::try_from(params.numwant).unwrap_or(i32::MAX),
            port: params.port,
        }
    }
}

/// A request from a client to a tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpRequest {
    /// Action 0: asks for a connection id.
    Connect {
        /// The client's id for this exchange.
        transaction_id: u32,
    },
    /// Action 1.
    Announce(UdpAnnounceRequest),
    /// Action 2: counts for up to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape {
        /// The id from the connect exchange.
        connection_id: u64,
        /// The client's id for this exchange.
        transaction_id: u32,
        /// The torrents to count, at most [`MAX_SCRAPE_HASHES`].
        info_hashes: Vec<InfoHash>,
    },
}

/// An announce response (action 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpAnnounceResponse {
    /// The request's transaction id.
    pub transaction_id: u32,
    /// Seconds until the next regular announce.
    pub interval: u32,
    /// Leechers in the swarm.
    pub leechers: u32,
    /// Seeds in the swarm.
    pub seeders: u32,
    /// Peer addresses, in the datagram's family.
    pub peers: Vec<SocketAddr>,
}

impl UdpAnnounceResponse {
    /// The protocol-independent answer: at most [`MAX_PEERS`] peers, none with port 0.
    pub fn into_announce_response(self) -> AnnounceResponse {
        let mut peers = self.peers;
        peers.retain(|p| p.port() != 0);
        peers.truncate(MAX_PEERS);
        AnnounceResponse {
            interval: std::time::Duration::from_secs(self.interval.into()),
            min_interval: None,
            tracker_id: None,
            complete: Some(self.seeders),
            incomplete: Some(self.leechers),
            peers,
            warning: None,
        }
    }
}

/// A response from a tracker to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpResponse {
    /// Action 0: the connection id to use for the next minute.
    Connect {
        /// The request's transaction id.
        transaction_id: u32,
        /// The connection id granted.
        connection_id: u64,
    },
    /// Action 1.
    Announce(UdpAnnounceResponse),
    /// Action 2: counts in the order of the request's info-hashes.
    Scrape {
        /// The request's transaction id.
        transaction_id: u32,
        /// Counts, one per requested info-hash.
        stats: Vec<ScrapeStats>,
    },
    /// Action 3: the request was refused; the message is cut to
    /// [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN) bytes when decoded.
    Error {
        /// The request's transaction id.
        transaction_id: u32,
        /// The tracker's reason.
        message: String,
    },
}

/// Big-endian reads from a slice whose length the caller has checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        // Callers check the length first; a short read would leave zeros, never panic.
        if let Some(src) = self.buf.get(self.pos..self.pos + N) {
            out.copy_from_slice(src);
        }
        self.pos += N;
        out
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
}

fn bad(what: &'static str) -> TrackerError {
    TrackerError::BadUdpPacket(what)
}

impl UdpRequest {
    /// The transaction id, whatever the action.
    pub fn transaction_id(&self) -> u32 {
        match self {
            UdpRequest::Connect { transaction_id } | UdpRequest::Scrape { transaction_id, .. } => {
                *transaction_id
            }
            UdpRequest::Announce(a) => a.transaction_id,
        }
    }

    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
        match self {
            UdpRequest::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            UdpRequest::Announce(a) => {
                out.extend_from_slice(&a.connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                out.extend_from_slice(&a.info_hash.0);
                out.extend_from_slice(&a.peer_id.0);
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&a.event.udp_code().to_be_bytes());
                out.extend_from_slice(&a.ip.octets());
                out.extend_from_slice(&a.key.to_be_bytes());
                out.extend_from_slice(&a.num_want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for hash in info_hashes {
                    out.extend_from_slice(&hash.0);
                }
            }
        }
        out
    }

    /// Reads a client's datagram (the tracker server's side). A scrape may name more than
    /// [`MAX_SCRAPE_HASHES`] torrents here; the server decides how many to answer.
    pub fn decode(buf: &[u8]) -> Result<UdpRequest, TrackerError> {
        if buf.len() < 16 {
            return Err(bad("request shorter than 16 bytes"));
        }
        let mut r = Reader::new(buf);
        let connection_id = r.u64();
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT => {
                if connection_id != PROTOCOL_ID {
                    return Err(bad("connect request without the protocol id"));
                }
                Ok(UdpRequest::Connect { transaction_id })
            }
            ACTION_ANNOUNCE => {
                if buf.len() < ANNOUNCE_REQUEST_LEN {
                    return Err(bad("announce request shorter than 98 bytes"));
                }
                Ok(UdpRequest::Announce(UdpAnnounceRequest {
                    connection_id,
                    transaction_id,
                    info_hash: InfoHash(r.take()),
                    peer_id: PeerId(r.take()),
                    downloaded: r.u64(),
                    left: r.u64(),
                    uploaded: r.u64(),
                    event: AnnounceEvent::from_udp_code(r.u32()),
                    ip: Ipv4Addr::from(r.u32()),
                    key: r.u32(),
                    num_want: r.u32() as i32,
                    port: r.u16(),
                }))
            }
            ACTION_SCRAPE => {
                let hashes = r.rest().chunks_exact(20);
                if hashes.len() == 0 || !hashes.remainder().is_empty() {
                    return Err(bad("scrape request is not a whole number of info-hashes"));
                }
                let info_hashes = hashes
                    .map(|h| {
                        let mut hash = [0u8; 20];
                        hash.copy_from_slice(h);
                        InfoHash(hash)
                    })
                    .collect();
                Ok(UdpRequest::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            _ => Err(bad("unknown request action")),
        }
    }
}

impl UdpResponse {
    /// The transaction id, whatever the action.
    pub fn transaction_id(&self) -> u32 {
        match self {
            UdpResponse::Connect { transaction_id, .. }
            | UdpResponse::Scrape { transaction_id, .. }
            | UdpResponse::Error { transaction_id, .. } => *transaction_id,
            UdpResponse::Announce(a) => a.transaction_id,
        }
    }

    /// Writes the response. An announce response carries only the peers of `family`
    /// (IPv4-mapped IPv6 addresses count as IPv4): a peer of the other family cannot be
    /// written in the exchange's entry size.
    pub fn encode(&self, family: IpFamily) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        match self {
            UdpResponse::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            UdpResponse::Announce(a) => {
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                out.extend_from_slice(&a.interval.to_be_bytes());
                out.extend_from_slice(&a.leechers.to_be_bytes());
                out.extend_from_slice(&a.seeders.to_be_bytes());
                for peer in &a.peers {
                    match (peer.ip().to_canonical(), family) {
                        (IpAddr::V4(ip), IpFamily::V4) => out.extend_from_slice(&ip.octets()),
                        (IpAddr::V6(ip), IpFamily::V6) => out.extend_from_slice(&ip.octets()),
                        _ => continue,
                    }
                    out.extend_from_slice(&peer.port().to_be_bytes());
                }
            }
            UdpResponse::Scrape {
                transaction_id,
                stats,
            } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats {
                    out.extend_from_slice(&s.complete.to_be_bytes());
                    out.extend_from_slice(&s.downloaded.to_be_bytes());
                    out.extend_from_slice(&s.incomplete.to_be_bytes());
                }
            }
            UdpResponse::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
        out
    }

    /// Reads a tracker's datagram; `family` is the address family the exchange runs over.
    pub fn decode(buf: &[u8], family: IpFamily) -> Result<UdpResponse, TrackerError> {
        if buf.len() < 8 {
            return Err(bad("response shorter than 8 bytes"));
        }
        let mut r = Reader::new(buf);
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT => {
                if buf.len() < 16 {
                    return Err(bad("connect response shorter than 16 bytes"));
                }
                Ok(UdpResponse::Connect {
                    transaction_id,
                    connection_id: r.u64(),
                })
            }
            ACTION_ANNOUNCE => {
                if buf.len() < 20 {
                    return Err(bad("announce response shorter than 20 bytes"));
                }
                let interval = r.u32();
                let leechers = r.u32();
                let seeders = r.u32();
                let peers = r
                    .rest()
                    .chunks_exact(family.peer_len())
                    .map(|entry| {
                        let (ip, port) = entry.split_at(entry.len() - 2);
                        let ip = match <[u8; 4]>::try_from(ip) {
                            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                            // The only other entry size is 18: a 16-byte address.
                            Err(_) => {
                                let mut v6 = [0u8; 16];
                                v6.copy_from_slice(&ip[..16]);
                                IpAddr::V6(Ipv6Addr::from(v6))
                            }
                        };
                        SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]]))
                    })
                    .collect();
                Ok(UdpResponse::Announce(UdpAnnounceResponse {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                }))
            }
            ACTION_SCRAPE => {
                let stats = r
                    .rest()
                    .chunks_exact(12)
                    .map(|entry| {
                        let mut e = Reader::new(entry);
                        ScrapeStats {
                            complete: e.u32(),
                            downloaded: e.u32(),
                            incomplete: e.u32(),
                        }
                    })
                    .collect();
                Ok(UdpResponse::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => Ok(UdpResponse::Error {
                transaction_id,
                message: message_text(r.rest()),
            }),
            _ => Err(bad("unknown response action")),
        }
    }
}

/// The transaction id of a tracker's datagram without decoding the rest, for routing it to
/// the client that waits for it; `None` if it is too short to have one.
pub fn response_transaction_id(buf: &[u8]) -> Option<u32> {
    let id = buf.get(4..8)?;
    Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    #[test]
    fn connect_bytes() {
        let req = UdpRequest::Connect {
            transaction_id: 0x0102_0304,
        };
        let bytes = req.encode();
        assert_eq!(
            bytes,
            [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(UdpRequest::decode(&bytes), Ok(req));
        let mut wrong = bytes.clone();
        wrong[0] = 1;
        assert!(UdpRequest::decode(&wrong).is_err());

        let resp = UdpResponse::Connect {
            transaction_id: 7,
            connection_id: 0x1122_3344_5566_7788,
        };
        let bytes = resp.encode(IpFamily::V4);
        assert_eq!(
            bytes,
            [0, 0, 0, 0, 0, 0, 0, 7, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert_eq!(UdpResponse::decode(&bytes, IpFamily::V4), Ok(resp));
        assert_eq!(response_transaction_id(&bytes), Some(7));
        assert_eq!(response_transaction_id(&bytes[..7]), None);
    }

    #[test]
    fn announce_request_layout() {
        let mut params = AnnounceParams::new(InfoHash([0xaa; 20]), PeerId([0xbb; 20]), 0x1ae1);
        params.downloaded = 1;
        params.left = 2;
        params.uploaded = 3;
        params.event = AnnounceEvent::Started;
        params.key = 0xdead_beef;
        params.numwant = u32::MAX;
        params.ip = Some("10.1.2.3".parse().unwrap());
        let req = UdpRequest::Announce(UdpAnnounceRequest::from_params(9, 5, &params));
        let bytes = req.encode();
        assert_eq!(bytes.len(), ANNOUNCE_REQUEST_LEN);
        assert_eq!(
            &bytes[..16],
            &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 5]
        );
        assert_eq!(&bytes[16..36], &[0xaa; 20]);
        assert_eq!(&bytes[36..56], &[0xbb; 20]);
        assert_eq!(&bytes[56..64], &1u64.to_be_bytes());
        assert_eq!(&bytes[64..72], &2u64.to_be_bytes());
        assert_eq!(&bytes[72..80], &3u64.to_be_bytes());
        assert_eq!(&bytes[80..84], &[0, 0, 0, 2]);
        assert_eq!(&bytes[84..88], &[10, 1, 2, 3]);
        assert_eq!(&bytes[88..92], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&bytes[92..96], &i32::MAX.to_be_bytes());
        assert_eq!(&bytes[96..98], &[0x1a, 0xe1]);
        assert_eq!(UdpRequest::decode(&bytes), Ok(req.clone()));
        // BEP 41 options after the fixed part are ignored.
        let mut with_options = bytes.clone();
        with_options
            .extend_from_slice(&[2, 9, b'/', b'a', b'n', b'n', b'o', b'u', b'n', b'c', b'e']);
        assert_eq!(UdpRequest::decode(&with_options), Ok(req));
        assert!(UdpRequest::decode(&bytes[..97]).is_err());
    }

    #[test]
    fn announce_response_v4_and_v6() {
        let resp = UdpAnnounceResponse {
            transaction_id: 5,
            interval: 1800,
            leechers: 3,
            seeders: 4,
            peers: vec![
                "1.2.3.4:5".parse().unwrap(),
                "[::ffff:5.6.7.8]:9".parse().unwrap(),
                "[2001:db8::1]:10".parse().unwrap(),
            ],
        };
        let v4 = UdpResponse::Announce(resp.clone()).encode(IpFamily::V4);
        assert_eq!(v4.len(), 20 + 12);
        assert_eq!(&v4[20..], &[1, 2, 3, 4, 0, 5, 5, 6, 7, 8, 0, 9]);
        let UdpResponse::Announce(read) = UdpResponse::decode(&v4, IpFamily::V4).unwrap() else {
            panic!("not an announce");
        };
        assert_eq!(
            read.peers,
            vec!["1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap()]
        );
        let a = read.into_announce_response();
        assert_eq!(
            (a.interval.as_secs(), a.complete, a.incomplete),
            (1800, Some(4), Some(3))
        );

        let v6 = UdpResponse::Announce(resp).encode(IpFamily::V6);
        assert_eq!(v6.len(), 20 + 18);
        let UdpResponse::Announce(read) = UdpResponse::decode(&v6, IpFamily::V6).unwrap() else {
            panic!("not an announce");
        };
        assert_eq!(read.peers, vec!["[2001:db8::1]:10".parse().unwrap()]);
        // A trailing partial entry is ignored; a short header is refused.
        let mut partial = v4.clone();
        partial.extend_from_slice(&[1, 2, 3]);
        assert!(UdpResponse::decode(&partial, IpFamily::V4).is_ok());
        assert!(UdpResponse::decode(&v4[..19], IpFamily::V4).is_err());
    }

    #[test]
    fn scrape_and_error_packets() {
        let req = UdpRequest::Scrape {
            connection_id: 1,
            transaction_id: 2,
            info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        };
        let bytes = req.encode();
        assert_eq!(bytes.len(), 16 + 40);
        assert_eq!(UdpRequest::decode(&bytes), Ok(req));
        assert!(UdpRequest::decode(&bytes[..55]).is_err());
        assert!(UdpRequest::decode(&bytes[..16]).is_err());

        let resp = UdpResponse::Scrape {
            transaction_id: 2,
            stats: vec![ScrapeStats {
                complete: 1,
                downloaded: 2,
                incomplete: 3,
            }],
        };
        let bytes = resp.encode(IpFamily::V4);
        assert_eq!(&bytes[8..], &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
        assert_eq!(UdpResponse::decode(&bytes, IpFamily::V4), Ok(resp));

        let err = UdpResponse::Error {
            transaction_id: 3,
            message: "unknown torrent".into(),
        };
        let bytes = err.encode(IpFamily::V4);
        assert_eq!(&bytes[..8], &[0, 0, 0, 3, 0, 0, 0, 3]);
        assert_eq!(UdpResponse::decode(&bytes, IpFamily::V4), Ok(err));
        let mut huge = bytes[..8].to_vec();
        huge.extend_from_slice(&[0xff; 60_000]);
        let UdpResponse::Error { message, .. } = UdpResponse::decode(&huge, IpFamily::V4).unwrap()
        else {
            panic!("not an error");
        };
        assert!(message.len() <= super::super::MAX_MESSAGE_LEN);
        assert!(UdpResponse::decode(&[0, 0, 0, 9, 0, 0, 0, 0], IpFamily::V4).is_err());
    }

    #[derive(Clone, Debug)]
    struct AnyRequest(UdpRequest);

    impl Arbitrary for AnyRequest {
        fn arbitrary(g: &mut Gen) -> Self {
            let hash = |g: &mut Gen| InfoHash(std::array::from_fn(|_| u8::arbitrary(g)));
            let request = match u8::arbitrary(g) % 3 {
                0 => UdpRequest::Connect {
                    transaction_id: u32::arbitrary(g),
                },
                1 => UdpRequest::Announce(UdpAnnounceRequest {
                    connection_id: u64::arbitrary(g),
                    transaction_id: u32::arbitrary(g),
                    info_hash: hash(g),
                    peer_id: PeerId(hash(g).0),
                    downloaded: u64::arbitrary(g),
                    left: u64::arbitrary(g),
                    uploaded: u64::arbitrary(g),
                    event: AnnounceEvent::from_udp_code(u32::arbitrary(g) % 4),
                    ip: Ipv4Addr::from(u32::arbitrary(g)),
                    key: u32::arbitrary(g),
                    num_want: i32::arbitrary(g),
                    port: u16::arbitrary(g),
                }),
                _ => UdpRequest::Scrape {
                    connection_id: u64::arbitrary(g),
                    transaction_id: u32::arbitrary(g),
                    info_hashes: (0..=usize::arbitrary(g) % MAX_SCRAPE_HASHES)
                        .map(|_| hash(g))
                        .collect(),
                },
            };
            AnyRequest(request)
        }
    }

    quickcheck! {
        fn requests_round_trip(req: AnyRequest) -> bool {
            UdpRequest::decode(&req.0.encode()) == Ok(req.0)
        }

        fn responses_round_trip(
            tid: u32,
            numbers: (u32, u32, u32, u64),
            peers: Vec<(u32, u16)>,
            stats: Vec<(u32, u32, u32)>,
            message: String
        ) -> bool {
            let (interval, leechers, seeders, connection_id) = numbers;
            let announce = UdpResponse::Announce(UdpAnnounceResponse {
                transaction_id: tid,
                interval,
                leechers,
                seeders,
                peers: peers.iter().map(|&(ip, port)| SocketAddr::new(Ipv4Addr::from(ip).into(), port)).collect(),
            });
            let scrape = UdpResponse::Scrape {
                transaction_id: tid,
                stats: stats.iter().map(|&(complete, downloaded, incomplete)| ScrapeStats { complete, downloaded, incomplete }).collect(),
            };
            let error = UdpResponse::Error { transaction_id: tid, message: message_text(message.as_bytes()) };
            let connect = UdpResponse::Connect { transaction_id: tid, connection_id };
            [announce, scrape, error, connect].into_iter().all(|r| {
                UdpResponse::decode(&r.encode(IpFamily::V4), IpFamily::V4).as_ref() == Ok(&r)
            })
        }

        fn arbitrary_datagrams_never_panic(buf: Vec<u8>) -> bool {
            let _ = UdpRequest::decode(&buf);
            let _ = UdpResponse::decode(&buf, IpFamily::V4);
            let _ = UdpResponse::decode(&buf, IpFamily::V6);
            let _ = response_transaction_id(&buf);
            true
        }

        fn arbitrary_datagrams_with_valid_headers_never_panic(action: u8, body: Vec<u8>) -> bool {
            let mut buf = vec![0, 0, 0, action % 5, 0, 0, 0, 1];
            buf.extend_from_slice(&body);
            let _ = UdpResponse::decode(&buf, IpFamily::V4);
            let _ = UdpResponse::decode(&buf, IpFamily::V6);
            let mut req = PROTOCOL_ID.to_be_bytes().to_vec();
            req.extend_from_slice(&buf);
            let _ = UdpRequest::decode(&req);
            true
        }
    }
}
