//! One UDP tracker's client side as a state machine over datagrams (BEP 15).
//!
//! The client carries one operation at a time (an announce or a scrape): it asks for a
//! connection id when it has none that is still valid, then sends the request, and turns
//! the answer into a [`UdpEvent`]. The runtime moves datagrams; the client decides what they
//! say and when to send them.
//!
//! Rules it keeps:
//!
//! - **Connection ids** are used for [`UdpConfig::connection_lifetime`] (60 s) after they
//!   arrive, then a new connect is made first, as BEP 15 asks of clients.
//! - **Retransmission**: a packet not answered within `15 · 2^n` seconds is sent again,
//!   with `n` counting the operation's timeouts from 0 up to
//!   [`UdpConfig::max_retransmits`] (8, so the last wait is 3,840 s); after that wait the
//!   operation fails with [`TrackerError::Timeout`]. `n` counts across connect and request
//!   packets and is not reset by a connect answer: otherwise a tracker that answers connects
//!   but drops announces would be retried forever.
//! - **Transaction ids** come from a generator seeded by the caller, a fresh one for each
//!   new packet; a retransmission keeps its packet's id, so a late answer to an earlier
//!   copy is still taken.
//! - **Datagrams** that are too short, undecodable, carry another transaction id, or answer
//!   a different action than the one awaited are ignored: on UDP anyone can send us
//!   anything, and only an answer that names our transaction id is from the tracker.

use core::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    response_transaction_id, IpFamily, UdpAnnounceRequest, UdpRequest, UdpResponse,
    MAX_SCRAPE_HASHES,
};
use crate::tracker::{AnnounceParams, AnnounceResponse, ScrapeStats, SplitMix64, TrackerError};
use crate::types::InfoHash;

/// Timing of a [`UdpTrackerClient`]; the defaults are BEP 15's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// The first wait for an answer (15 s); each timeout doubles it.
    pub initial_timeout: Duration,
    /// The largest `n` in `initial_timeout · 2^n` (8); a timeout at that `n` gives up.
    /// An engine that fails over to other trackers may want fewer.
    pub max_retransmits: u32,
    /// How long a connection id is used after it arrives (60 s).
    pub connection_lifetime: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            initial_timeout: Duration::from_secs(15),
            max_retransmits: 8,
            connection_lifetime: Duration::from_secs(60),
        }
    }
}

/// What an exchange with a UDP tracker came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpEvent {
    /// The announce was answered.
    Announced(AnnounceResponse),
    /// The scrape was answered: counts in the order of the info-hashes asked for.
    Scraped(Vec<ScrapeStats>),
    /// The operation failed: the tracker's error message, or a timeout after every
    /// retransmission.
    Failed(TrackerError),
}

#[derive(Clone, Debug)]
enum Request {
    Announce(AnnounceParams),
    Scrape(Vec<InfoHash>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packet {
    Connect,
    Request,
}

#[derive(Clone, Debug)]
struct Operation {
    request: Request,
    /// `n`: timeouts so far.
    attempt: u32,
    /// The last packet sent and its transaction id: answers are matched against it.
    sent: Option<(Packet, u32)>,
    /// When the last packet times out; `None` while a packet is due to be sent.
    deadline: Option<Instant>,
}

/// The client side of one UDP tracker (see the module docs).
///
/// Drive it like every state machine of the core: after each call that feeds it
/// ([`announce`](Self::announce), [`scrape`](Self::scrape),
/// [`handle_datagram`](Self::handle_datagram), [`handle_timeout`](Self::handle_timeout)),
/// send every datagram [`poll_transmit`](Self::poll_transmit) gives, then arm a timer for
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Clone, Debug)]
pub struct UdpTrackerClient {
    addr: SocketAddr,
    config: UdpConfig,
    rng: SplitMix64,
    /// The connection id and when it stops being used.
    connection: Option<(u64, Instant)>,
    operation: Option<Operation>,
}

impl UdpTrackerClient {
    /// A client for the tracker at `addr` with BEP 15's timing. `seed` feeds the
    /// transaction ids; draw it from the engine's seeded generator.
    pub fn new(addr: SocketAddr, seed: u64) -> Self {
        UdpTrackerClient::with_config(addr, seed, UdpConfig::default())
    }

    /// A client for the tracker at `addr`, its transaction ids drawn from `seed`, with
    /// `config`'s retry schedule.
    pub fn with_config(addr: SocketAddr, seed: u64, config: UdpConfig) -> Self {
        UdpTrackerClient {
            addr,
            config,
            rng: SplitMix64::new(seed),
            connection: None,
            operation: None,
        }
    }

    /// The tracker's address: where datagrams go, and the only source to take them from.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts an announce, replacing any operation under way (the newest counts are the
    /// ones to report, and a `stopped` must not wait behind a periodic announce). The
    /// connection id, if still valid, is kept.
    pub fn announce(&mut self, params: AnnounceParams) {
        self.start(Request::Announce(params));
    }

    /// Starts a scrape of up to [`MAX_SCRAPE_HASHES`] torrents (more are left out),
    /// replacing any operation under way.
    pub fn scrape(&mut self, mut info_hashes: Vec<InfoHash>) {
        info_hashes.truncate(MAX_SCRAPE_HASHES);
        self.start(Request::Scrape(info_hashes));
    }

    fn start(&mut self, request: Request) {
        self.operation = Some(Operation {
            request,
            attempt: 0,
            sent: None,
            deadline: None,
        });
    }

    /// Drops the operation under way without an event.
    pub fn cancel(&mut self) {
        self.operation = None;
    }

    /// Whether an operation is under way.
    pub fn is_busy(&self) -> bool {
        self.operation.is_some()
    }

    /// The transaction id an answer must carry now, if one is awaited: lets a runtime with
    /// many clients on one socket route a datagram (see [`response_transaction_id`]).
    pub fn awaited_transaction_id(&self) -> Option<u32> {
        self.operation.as_ref()?.sent.map(|(_, tid)| tid)
    }

    /// The next datagram to send to [`addr`](Self::addr), if one is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let op = self.operation.as_mut()?;
        if op.deadline.is_some() {
            return None;
        }
        let connection = self
            .connection
            .filter(|&(_, expires)| now < expires)
            .map(|(id, _)| id);
        if connection.is_none() {
            self.connection = None;
        }
        let packet = if connection.is_some() {
            Packet::Request
        } else {
            Packet::Connect
        };
        // A retransmission keeps its transaction id; a new packet gets a new one.
        let tid = match op.sent {
            Some((sent, tid)) if sent == packet => tid,
            _ => self.rng.next_u32(),
        };
        op.sent = Some((packet, tid));
        let wait = self
            .config
            .initial_timeout
            .saturating_mul(1u32 << op.attempt.min(31));
        op.deadline = Some(now + wait);
        let request = match (connection, &op.request) {
            (None, _) => UdpRequest::Connect {
                transaction_id: tid,
            },
            (Some(id), Request::Announce(params)) => {
                UdpRequest::Announce(UdpAnnounceRequest::from_params(id, tid, params))
            }
            (Some(id), Request::Scrape(hashes)) => UdpRequest::Scrape {
                connection_id: id,
                transaction_id: tid,
                info_hashes: hashes.clone(),
            },
        };
        Some(request.encode())
    }

    /// Takes a datagram received from [`addr`](Self::addr). Returns the operation's outcome
    /// when this datagram settles it; anything not awaited is ignored.
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Instant) -> Option<UdpEvent> {
        let op = self.operation.as_mut()?;
        let (sent, tid) = op.sent?;
        if response_transaction_id(datagram)? != tid {
            return None;
        }
        let response = UdpResponse::decode(datagram, IpFamily::of(&self.addr)).ok()?;
        let event = match (sent, response, &op.request) {
            (_, UdpResponse::Error { message, .. }, _) => {
                UdpEvent::Failed(TrackerError::UdpError(message))
            }
            (Packet::Connect, UdpResponse::Connect { connection_id, .. }, _) => {
                self.connection = Some((connection_id, now + self.config.connection_lifetime));
                // The request goes out at once, under the current attempt's timeout.
                op.sent = None;
                op.deadline = None;
                return None;
            }
            (Packet::Request, UdpResponse::Announce(answer), Request::Announce(_)) => {
                UdpEvent::Announced(answer.into_announce_response())
            }
            (Packet::Request, UdpResponse::Scrape { stats, .. }, Request::Scrape(_)) => {
                UdpEvent::Scraped(stats)
            }
            _ => return None,
        };
        self.operation = None;
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called, if anything waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.operation.as_ref()?.deadline
    }

    /// Lets time pass: an unanswered packet whose wait is over is due again, or the
    /// operation fails with [`TrackerError::Timeout`] after the last wait.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<UdpEvent> {
        let op = self.operation.as_mut()?;
        if op.deadline.is_none_or(|deadline| now < deadline) {
            return None;
        }
        if op.attempt >= self.config.max_retransmits {
            self.operation = None;
            return Some(UdpEvent::Failed(TrackerError::Timeout));
        }
        op.attempt += 1;
        op.deadline = None;
        None
    }

    /// The connection id in use at `now`, if any (for tests and diagnostics).
    pub fn connection_id(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|&(_, expires)| now < expires)
            .map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::udp::UdpAnnounceResponse;
    use crate::tracker::AnnounceEvent;
    use crate::types::PeerId;

    fn tracker() -> SocketAddr {
        "192.0.2.1:6969".parse().unwrap()
    }

    fn params() -> AnnounceParams {
        let mut p = AnnounceParams::new(InfoHash([1; 20]), PeerId([2; 20]), 6881);
        p.event = AnnounceEvent::Started;
        p.left = 100;
        p
    }

    fn connect_tid(datagram: &[u8]) -> u32 {
        match UdpRequest::decode(datagram).unwrap() {
            UdpRequest::Connect { transaction_id } => transaction_id,
            other => panic!("expected a connect, got {other:?}"),
        }
    }

    fn announce_of(datagram: &[u8]) -> UdpAnnounceRequest {
        match UdpRequest::decode(datagram).unwrap() {
            UdpRequest::Announce(a) => a,
            other => panic!("expected an announce, got {other:?}"),
        }
    }

    fn connect_answer(tid: u32, id: u64) -> Vec<u8> {
        UdpResponse::Connect {
            transaction_id: tid,
            connection_id: id,
        }
        .encode(IpFamily::V4)
    }

    fn announce_answer(tid: u32) -> Vec<u8> {
        UdpResponse::Announce(UdpAnnounceResponse {
            transaction_id: tid,
            interval: 1800,
            leechers: 1,
            seeders: 2,
            peers: vec!["10.0.0.1:6881".parse().unwrap()],
        })
        .encode(IpFamily::V4)
    }

    /// Connects the client at `now` with connection id 42.
    fn connected(now: Instant) -> (UdpTrackerClient, Vec<u8>) {
        let mut c = UdpTrackerClient::new(tracker(), 1);
        c.announce(params());
        let tid = connect_tid(&c.poll_transmit(now).unwrap());
        assert_eq!(c.handle_datagram(&connect_answer(tid, 42), now), None);
        let announce = c.poll_transmit(now).unwrap();
        (c, announce)
    }

    #[test]
    fn connect_then_announce() {
        let now = shoal_test_clock::epoch();
        let mut c = UdpTrackerClient::new(tracker(), 1);
        assert_eq!(c.poll_transmit(now), None);
        c.announce(params());
        let connect = c.poll_transmit(now).unwrap();
        let tid = connect_tid(&connect);
        assert_eq!(c.poll_transmit(now), None, "one packet in flight");
        assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(15)));
        assert_eq!(c.awaited_transaction_id(), Some(tid));

        let t1 = now + Duration::from_millis(30);
        assert_eq!(c.handle_datagram(&connect_answer(tid, 0xabcd), t1), None);
        assert_eq!(c.connection_id(t1), Some(0xabcd));
        let announce = announce_of(&c.poll_transmit(t1).unwrap());
        assert_eq!(announce.connection_id, 0xabcd);
        assert_ne!(announce.transaction_id, tid);
        assert_eq!(announce.event, AnnounceEvent::Started);
        assert_eq!(
            (announce.left, announce.port, announce.num_want),
            (100, 6881, 50)
        );

        let t2 = t1 + Duration::from_millis(30);
        let event = c.handle_datagram(&announce_answer(announce.transaction_id), t2);
        let Some(UdpEvent::Announced(answer)) = event else {
            panic!("{event:?}");
        };
        assert_eq!(answer.interval, Duration::from_secs(1800));
        assert_eq!((answer.complete, answer.incomplete), (Some(2), Some(1)));
        assert_eq!(answer.peers, vec!["10.0.0.1:6881".parse().unwrap()]);
        assert!(!c.is_busy());
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.poll_transmit(t2), None);

        // Within the minute the next announce skips the connect.
        c.announce(params());
        let again = announce_of(&c.poll_transmit(t2 + Duration::from_secs(30)).unwrap());
        assert_eq!(again.connection_id, 0xabcd);
    }

    #[test]
    fn wrong_transaction_ids_and_junk_are_ignored() {
        let now = shoal_test_clock::epoch();
        let mut c = UdpTrackerClient::new(tracker(), 9);
        c.announce(params());
        let tid = connect_tid(&c.poll_transmit(now).unwrap());
        for junk in [
            connect_answer(tid.wrapping_add(1), 5),
            connect_answer(tid, 5)[..15].to_vec(),
            vec![0, 0, 0],
            vec![],
            // The right id but the wrong action for a connect.
            announce_answer(tid),
        ] {
            assert_eq!(c.handle_datagram(&junk, now), None);
            assert_eq!(c.connection_id(now), None);
        }
        let announce = {
            assert_eq!(c.handle_datagram(&connect_answer(tid, 5), now), None);
            announce_of(&c.poll_transmit(now).unwrap())
        };
        assert_eq!(c.handle_datagram(&announce_answer(tid), now), None);
        assert_eq!(
            c.handle_datagram(&announce_answer(announce.transaction_id ^ 1), now),
            None
        );
        assert!(c.is_busy());
        assert!(matches!(
            c.handle_datagram(&announce_answer(announce.transaction_id), now),
            Some(UdpEvent::Announced(_))
        ));
        // Once settled, even a copy of the right answer is ignored.
        assert_eq!(
            c.handle_datagram(&announce_answer(announce.transaction_id), now),
            None
        );
    }

    #[test]
    fn error_message_fails_the_operation() {
        let now = shoal_test_clock::epoch();
        let (mut c, announce) = connected(now);
        let tid = announce_of(&announce).transaction_id;
        let error = UdpResponse::Error {
            transaction_id: tid,
            message: "torrent not registered".into(),
        }
        .encode(IpFamily::V4);
        assert_eq!(
            c.handle_datagram(&error, now),
            Some(UdpEvent::Failed(TrackerError::UdpError(
                "torrent not registered".into()
            )))
        );
        assert!(!c.is_busy());
    }

    #[test]
    fn retransmit_schedule_then_give_up() {
        let start = shoal_test_clock::epoch();
        let mut c = UdpTrackerClient::new(tracker(), 3);
        c.announce(params());
        let first = c.poll_transmit(start).unwrap();
        let tid = connect_tid(&first);
        let mut now = start;
        let mut waits = Vec::new();
        loop {
            let deadline = c.poll_timeout().unwrap();
            waits.push((deadline - now).as_secs());
            // Nothing happens before the deadline.
            assert_eq!(c.handle_timeout(deadline - Duration::from_millis(1)), None);
            assert_eq!(c.poll_transmit(deadline - Duration::from_millis(1)), None);
            now = deadline;
            match c.handle_timeout(now) {
                Some(event) => {
                    assert_eq!(event, UdpEvent::Failed(TrackerError::Timeout));
                    break;
                }
                None => {
                    let again = c.poll_transmit(now).unwrap();
                    assert_eq!(again, first, "a retransmission is the same packet");
                }
            }
        }
        assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1920, 3840]);
        assert_eq!(now - start, Duration::from_secs(15 * 511));
        assert!(!c.is_busy());
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(tid, connect_tid(&first));
    }

    #[test]
    fn a_late_answer_to_an_earlier_copy_counts() {
        let now = shoal_test_clock::epoch();
        let mut c = UdpTrackerClient::new(tracker(), 4);
        c.announce(params());
        let tid = connect_tid(&c.poll_transmit(now).unwrap());
        let t1 = now + Duration::from_secs(15);
        c.handle_timeout(t1);
        // The answer to the first copy arrives before the retransmission is even sent.
        assert_eq!(c.handle_datagram(&connect_answer(tid, 7), t1), None);
        let announce = announce_of(&c.poll_transmit(t1).unwrap());
        assert_eq!(announce.connection_id, 7);
        // The attempt count carries over: the announce waits 30 s, not 15.
        assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(30)));
    }

    #[test]
    fn connection_id_expires_after_a_minute() {
        let now = shoal_test_clock::epoch();
        let (mut c, announce) = connected(now);
        let tid = announce_of(&announce).transaction_id;
        assert!(c.handle_datagram(&announce_answer(tid), now).is_some());
        assert_eq!(c.connection_id(now + Duration::from_secs(59)), Some(42));
        assert_eq!(c.connection_id(now + Duration::from_secs(60)), None);

        c.announce(params());
        let late = now + Duration::from_secs(60);
        connect_tid(&c.poll_transmit(late).unwrap());

        // An announce retransmitted past the minute reconnects first.
        let (mut c, announce) = connected(now);
        let tid = announce_of(&announce).transaction_id;
        let mut t = now;
        for wait in [15, 30] {
            t += Duration::from_secs(wait);
            assert_eq!(c.handle_timeout(t), None);
            assert_eq!(
                announce_of(&c.poll_transmit(t).unwrap()).transaction_id,
                tid
            );
        }
        t += Duration::from_secs(60);
        assert_eq!(c.handle_timeout(t), None);
        let connect = c.poll_transmit(t).unwrap();
        let new_tid = connect_tid(&connect);
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(120)));
        assert_eq!(c.handle_datagram(&connect_answer(new_tid, 43), t), None);
        let fresh = announce_of(&c.poll_transmit(t).unwrap());
        assert_eq!(fresh.connection_id, 43);
        assert_ne!(fresh.transaction_id, tid);
    }

    #[test]
    fn scrape_exchange() {
        let now = shoal_test_clock::epoch();
        let mut c = UdpTrackerClient::new(tracker(), 5);
        c.scrape(vec![InfoHash([3; 20]); 100]);
        let tid = connect_tid(&c.poll_transmit(now).unwrap());
        c.handle_datagram(&connect_answer(tid, 1), now);
        let UdpRequest::Scrape {
            info_hashes,
            transaction_id,
            ..
        } = UdpRequest::decode(&c.poll_transmit(now).unwrap()).unwrap()
        else {
            panic!("not a scrape");
        };
        assert_eq!(info_hashes.len(), MAX_SCRAPE_HASHES);
        let stats = vec![ScrapeStats::default(); 2];
        let answer = UdpResponse::Scrape {
            transaction_id,
            stats: stats.clone(),
        }
        .encode(IpFamily::V4);
        // An announce answer with the scrape's id is not the answer.
        assert_eq!(
            c.handle_datagram(&announce_answer(transaction_id), now),
            None
        );
        assert_eq!(
            c.handle_datagram(&answer, now),
            Some(UdpEvent::Scraped(stats))
        );
    }

    #[test]
    fn a_new_announce_replaces_the_one_under_way() {
        let now = shoal_test_clock::epoch();
        let (mut c, announce) = connected(now);
        let old = announce_of(&announce).transaction_id;
        let mut stop = params();
        stop.event = AnnounceEvent::Stopped;
        stop.numwant = 0;
        c.announce(stop);
        let new = announce_of(&c.poll_transmit(now).unwrap());
        assert_eq!(new.event, AnnounceEvent::Stopped);
        assert_ne!(new.transaction_id, old);
        assert_eq!(c.handle_datagram(&announce_answer(old), now), None);
        assert!(c
            .handle_datagram(&announce_answer(new.transaction_id), now)
            .is_some());
    }

    #[test]
    fn same_seed_same_packets() {
        let run = |seed| {
            let now = shoal_test_clock::epoch();
            let mut c = UdpTrackerClient::new(tracker(), seed);
            c.announce(params());
            c.poll_transmit(now).unwrap()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn ipv6_trackers_get_18_byte_peers() {
        let now = shoal_test_clock::epoch();
        let addr: SocketAddr = "[2001:db8::9]:6969".parse().unwrap();
        let mut c = UdpTrackerClient::new(addr, 6);
        c.announce(params());
        let tid = connect_tid(&c.poll_transmit(now).unwrap());
        c.handle_datagram(&connect_answer(tid, 1), now);
        let a = announce_of(&c.poll_transmit(now).unwrap());
        let answer = UdpResponse::Announce(UdpAnnounceResponse {
            transaction_id: a.transaction_id,
            interval: 60,
            leechers: 0,
            seeders: 0,
            peers: vec!["[2001:db8::5]:7000".parse().unwrap()],
        })
        .encode(IpFamily::V6);
        let Some(UdpEvent::Announced(r)) = c.handle_datagram(&answer, now) else {
            panic!("no answer");
        };
        assert_eq!(r.peers, vec!["[2001:db8::5]:7000".parse().unwrap()]);
    }
}
