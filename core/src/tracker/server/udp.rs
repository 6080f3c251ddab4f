//! The UDP tracker protocol's server side (BEP 15): one datagram in, at most one out.
//!
//! Connection ids are derived, never stored: the id given to an address is SHA-1 of the
//! server's secret, the address (IP and port) and the current time window, cut to 64 bits
//! (see [`TrackerServer::connection_id`]). An announce or scrape is answered only if its id
//! is that of its source address in the current or the previous window, so an id lives one
//! to two windows (with the default minute, BEP 15's "accept for two minutes"), costs no
//! memory per client, and cannot be made by someone who does not receive the answers sent
//! to the address (which is what stops announces with forged source addresses, and the use
//! of the tracker to flood a third party with peer lists).
//!
//! What gets no answer at all: datagrams that are not BEP 15 requests, and requests with a
//! wrong or expired connection id (an error message to a forged source would itself be
//! reflected traffic; a real client whose id expired times out and connects again).
//! Refusals of valid requests (an info-hash not tracked, port 0) are error packets.
//! A scrape is answered for its first [`MAX_SCRAPE_HASHES`] info-hashes, unknown ones as
//! zeros (BEP 15 answers by position).

use core::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::table::family_of;
use super::{AnnounceRequest, TrackerServer};
use crate::tracker::udp::{UdpAnnounceResponse, UdpRequest, UdpResponse, MAX_SCRAPE_HASHES};

impl TrackerServer {
    /// Answers one datagram from `from`: the bytes to send back to it, or `None` when it
    /// gets no answer (see the module docs).
    pub fn handle_udp(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) -> Option<Vec<u8>> {
        let request = UdpRequest::decode(datagram).ok()?;
        // A dual-stack socket shows IPv4 clients as mapped addresses; they still expect
        // 6-byte peers.
        let family = family_of(from.ip());
        let response = match request {
            UdpRequest::Connect { transaction_id } => UdpResponse::Connect {
                transaction_id,
                connection_id: self.connection_id(from, now),
            },
            UdpRequest::Announce(a) => {
                if !self.connection_id_valid(a.connection_id, from, now) {
                    return None;
                }
                let ip = if self.config.allow_ip_param && !a.ip.is_unspecified() {
                    IpAddr::V4(a.ip)
                } else {
                    from.ip()
                };
                let request = AnnounceRequest {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    ip,
                    port: a.port,
                    uploaded: a.uploaded,
                    downloaded: a.downloaded,
                    left: a.left,
                    event: a.event,
                    numwant: u32::try_from(a.num_want).ok(),
                    compact: true,
                    no_peer_id: true,
                    key: Some(a.key),
                    family: Some(family),
                };
                match self.announce(&request, now) {
                    Ok(answer) => UdpResponse::Announce(UdpAnnounceResponse {
                        transaction_id: a.transaction_id,
                        interval: u32::try_from(answer.interval.as_secs()).unwrap_or(u32::MAX),
                        leechers: answer.incomplete,
                        seeders: answer.complete,
                        peers: answer.peers,
                    }),
                    Err(failure) => UdpResponse::Error {
                        transaction_id: a.transaction_id,
                        message: failure.to_string(),
                    },
                }
            }
            UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                if !self.connection_id_valid(connection_id, from, now) {
                    return None;
                }
                let stats = info_hashes
                    .iter()
                    .take(MAX_SCRAPE_HASHES)
                    .map(|h| self.scrape_one(h, now))
                    .collect();
                UdpResponse::Scrape {
                    transaction_id,
                    stats,
                }
            }
        };
        Some(response.encode(family))
    }
}
