//! A torrent's trackers: when to announce (its [`Announcer`]), the HTTP announce the
//! runtime carries out and whose answer (the raw HTTP response) is parsed here, the UDP
//! exchange (BEP 15) the engine runs itself over the runtime's socket, and the `stopped`
//! announces of removed torrents, awaited for [`STOP_GRACE`] at most. The peers of an
//! answer become dial candidates.

use core::net::SocketAddr;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use crate::rng::Rng;
use crate::tracker::udp::{response_transaction_id, UdpConfig, UdpEvent, UdpTrackerClient};
use crate::tracker::{
    AnnounceId, AnnounceStats, Announcer, HttpProgress, HttpResponseReader, Scheme, TrackerError,
    TrackerEvent,
};
use crate::IoError;

use super::{torrent_in, Engine, Event, Output, TorrentId};
/// A torrent's tracker state: the schedule, and the UDP exchange under way if any.
pub(super) struct Trackers {
    pub(super) announcer: Announcer,
    /// One client per UDP tracker address, kept to reuse its connection id.
    pub(super) udp: BTreeMap<SocketAddr, UdpTrackerClient>,
    /// The UDP tracker answering the announce under way.
    pub(super) udp_pending: Option<(AnnounceId, SocketAddr)>,
}

/// How long a removed torrent's `stopped` announce may take.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Peers taken from one tracker answer.
const MAX_PEERS_PER_ANSWER: usize = 200;

impl Trackers {
    /// Starts the announce that is due, if any: an HTTP request for the runtime, or a UDP
    /// exchange. Returns announces that failed before leaving (a UDP tracker named by a
    /// host name, which needs resolving the engine cannot do).
    fn poll(
        &mut self,
        id: TorrentId,
        now: Instant,
        stats: AnnounceStats,
        udp_retransmits: u32,
        rng: &mut Rng,
        outputs: &mut VecDeque<Output>,
    ) -> SmallVec<[(AnnounceId, TrackerError); 1]> {
        let mut failed = SmallVec::new();
        if self.udp_pending.is_some() {
            return failed;
        }
        let Some((announce_id, url, params)) = self.announcer.poll_announce(now, stats) else {
            return failed;
        };
        match url.scheme() {
            Scheme::Http | Scheme::Https => {
                let request = crate::tracker::http_announce_request(&url, &params);
                outputs.push_back(Output::TrackerHttp {
                    torrent: id,
                    id: announce_id,
                    url,
                    request,
                });
            }
            Scheme::Udp => {
                let addr = match url.ip() {
                    Some(ip) => SocketAddr::new(ip, url.port()),
                    None if url.host().eq_ignore_ascii_case("localhost") => {
                        SocketAddr::from(([127, 0, 0, 1], url.port()))
                    }
                    None => {
                        failed.push((announce_id, TrackerError::UdpHostName));
                        return failed;
                    }
                };
                let client = self.udp.entry(addr).or_insert_with(|| {
                    UdpTrackerClient::with_config(
                        addr,
                        rng.next_u64(),
                        UdpConfig {
                            max_retransmits: udp_retransmits,
                            ..UdpConfig::default()
                        },
                    )
                });
                client.announce(params);
                send_datagrams(client, addr, now, outputs);
                self.udp_pending = Some((announce_id, addr));
            }
        }
        failed
    }
}

/// The trackers of torrent `id` in either list (a free function so the borrow stays apart
/// from the engine's other fields).
fn trackers_in<'a>(
    torrents: &'a mut [Option<super::torrent::Torrent>],
    fetching: &'a mut BTreeMap<TorrentId, super::magnet::Fetching>,
    id: TorrentId,
) -> Option<&'a mut Trackers> {
    match torrent_in(torrents, id) {
        Some(t) => Some(&mut t.trackers),
        None => fetching.get_mut(&id).map(|f| &mut f.trackers),
    }
}

/// Queues every datagram a UDP tracker client has to send now.
fn send_datagrams(
    client: &mut UdpTrackerClient,
    addr: SocketAddr,
    now: Instant,
    outputs: &mut VecDeque<Output>,
) {
    while let Some(data) = client.poll_transmit(now) {
        outputs.push_back(Output::UdpSend { to: addr, data });
    }
}

impl Engine {
    /// The trackers of torrent `id`, known or being fetched.
    fn trackers_mut(&mut self, id: TorrentId) -> Option<&mut Trackers> {
        trackers_in(&mut self.torrents, &mut self.fetching, id)
    }

    /// Sends the torrent's next announce if one is due.
    pub(super) fn announce(&mut self, id: TorrentId, now: Instant) {
        let udp_retransmits = self.config.udp_max_retransmits;
        let (trackers, stats) = match torrent_in(&mut self.torrents, id) {
            Some(t) => {
                let stats = AnnounceStats {
                    uploaded: t.up.total(),
                    downloaded: t.down.total(),
                    left: t.meta.info.total_length - t.store.bytes_verified(),
                };
                (&mut t.trackers, stats)
            }
            None => match self.fetching.get_mut(&id) {
                // The size is not known yet; `left` = 0 would call us a seed.
                Some(f) => (
                    &mut f.trackers,
                    AnnounceStats {
                        left: 1,
                        ..AnnounceStats::default()
                    },
                ),
                None => return,
            },
        };
        let outputs = &mut self.outputs;
        let failed = trackers.poll(id, now, stats, udp_retransmits, &mut self.rng, outputs);
        for (announce_id, error) in failed {
            self.on_tracker_result(id, announce_id, Err(error), now);
        }
    }

    /// Announces `stopped` for removed torrents and forgets them once done.
    pub(super) fn announce_stopping(&mut self, now: Instant) {
        let udp_retransmits = self.config.udp_max_retransmits;
        let stats = AnnounceStats::default();
        let mut i = 0;
        while i < self.stopping.len() {
            let (id, trackers, deadline) = &mut self.stopping[i];
            let id = *id;
            for e in trackers.udp.values_mut() {
                if e.poll_timeout().is_some_and(|t| now >= t) {
                    if let Some(UdpEvent::Failed(_)) = e.handle_timeout(now) {
                        trackers.udp_pending = None;
                    }
                }
            }
            // A stopped announce that fails is not retried: nothing to do with the errors.
            let _ = trackers.poll(
                id,
                now,
                stats,
                udp_retransmits,
                &mut self.rng,
                &mut self.outputs,
            );
            if trackers.announcer.is_finished() || now >= *deadline {
                self.stopping.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// An HTTP tracker's answer as the runtime received it (the whole HTTP response, or
    /// why there is none): parsed here, then handled like any tracker answer.
    pub(super) fn on_tracker_http(
        &mut self,
        id: TorrentId,
        announce: AnnounceId,
        result: Result<Vec<u8>, IoError>,
        now: Instant,
    ) {
        let result = result
            .map_err(TrackerError::Transport)
            .and_then(|bytes| {
                let mut reader = HttpResponseReader::new();
                match reader.feed(&bytes)? {
                    HttpProgress::Done(response) => Ok(response),
                    HttpProgress::Incomplete => reader.finish(),
                }
            })
            .and_then(|response| response.announce());
        self.on_tracker_result(id, announce, result, now);
    }

    fn on_tracker_result(
        &mut self,
        id: TorrentId,
        announce_id: AnnounceId,
        result: Result<crate::tracker::AnnounceResponse, TrackerError>,
        now: Instant,
    ) {
        if let Some((_, trackers, _)) = self.stopping.iter_mut().find(|(s, _, _)| *s == id) {
            trackers.announcer.on_response(announce_id, result, now);
            // The answer may free the way for `stopped` (an announce was in flight) or end
            // the wait for it: act now rather than at the next tick, or every shutdown
            // would take a tick or two longer than its announces.
            self.announce_stopping(now);
            return;
        }
        let Some(trackers) = self.trackers_mut(id) else {
            return;
        };
        let event = trackers.announcer.on_response(announce_id, result, now);
        match event {
            Some(TrackerEvent::Announced {
                url,
                peers,
                complete,
                incomplete,
                warning,
                ..
            }) => {
                self.outputs.push_back(Output::Event(Event::TrackerAnswer {
                    torrent: id,
                    url,
                    peers: peers.len(),
                    seeders: complete,
                    leechers: incomplete,
                    warning,
                }));
                for addr in peers.into_iter().take(MAX_PEERS_PER_ANSWER) {
                    self.add_peer(id, addr, now);
                }
            }
            Some(TrackerEvent::Failed {
                url,
                error,
                failures,
                next_try,
                ..
            }) => {
                self.outputs.push_back(Output::Event(Event::TrackerError {
                    torrent: id,
                    url,
                    error,
                    failures,
                    next_try,
                }));
            }
            None => {}
        }
        // A failure passes the announce to the next tracker at once.
        self.announce(id, now);
    }

    pub(super) fn on_udp(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        let Some(tid) = response_transaction_id(data) else {
            return;
        };
        let mut answer = None;
        let live = self
            .torrents
            .iter_mut()
            .enumerate()
            .filter_map(|(i, t)| Some((TorrentId(i as u32), &mut t.as_mut()?.trackers)));
        let fetching = self
            .fetching
            .iter_mut()
            .map(|(id, f)| (*id, &mut f.trackers));
        let live = live.chain(fetching);
        let stopping = self.stopping.iter_mut().map(|(id, t, _)| (*id, t));
        for (id, trackers) in live.chain(stopping) {
            let Some((announce_id, addr)) = trackers.udp_pending else {
                continue;
            };
            if addr != from {
                continue;
            }
            let Some(client) = trackers.udp.get_mut(&addr) else {
                continue;
            };
            if client.awaited_transaction_id() != Some(tid) {
                continue;
            }
            if let Some(event) = client.handle_datagram(data, now) {
                trackers.udp_pending = None;
                answer = Some((id, announce_id, event));
            } else {
                // A connect answer: the announce itself goes out now.
                send_datagrams(client, addr, now, &mut self.outputs);
            }
            break;
        }
        if let Some((id, announce_id, event)) = answer {
            let result = match event {
                UdpEvent::Announced(r) => Ok(r),
                UdpEvent::Failed(e) => Err(e),
                UdpEvent::Scraped(_) => return,
            };
            self.on_tracker_result(id, announce_id, result, now);
        }
    }

    pub(super) fn udp_timeouts(&mut self, id: TorrentId, now: Instant) {
        let Some(trackers) = trackers_in(&mut self.torrents, &mut self.fetching, id) else {
            return;
        };
        let Some((announce_id, addr)) = trackers.udp_pending else {
            return;
        };
        let Some(client) = trackers.udp.get_mut(&addr) else {
            return;
        };
        if client.poll_timeout().is_none_or(|at| now < at) {
            return;
        }
        match client.handle_timeout(now) {
            Some(UdpEvent::Failed(e)) => {
                trackers.udp_pending = None;
                self.on_tracker_result(id, announce_id, Err(e), now);
            }
            _ => {
                send_datagrams(client, addr, now, &mut self.outputs);
            }
        }
    }
}
