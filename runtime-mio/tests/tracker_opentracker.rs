//! shoal tracker and opentracker, given the same announces, give the same answers.
//!
//! Both run on loopback with the same allow-list (opentracker's whitelist, shoal's
//! `--allow`), and get the same sequence of raw HTTP announces (and then UDP ones): every
//! event, seeds and leechers, a seed turning leecher, a repeated and an unknown
//! `completed`, a stop of an unknown peer, a peer changing its id, small `numwant`s, a
//! torrent not on the list. After each step the decoded answers are compared with each
//! other and with a model of the swarm:
//!
//! - `complete`, `incomplete` and `downloaded` are equal;
//! - when every peer fits in `numwant`, opentracker's peers are the whole swarm and
//!   shoal's are the whole swarm less the requester, and less the seeds when the requester
//!   is a seed (opentracker hands both out; neither is of use to the client, and shoal
//!   deliberately leaves them out);
//! - when they do not fit, both give `numwant` peers from those sets;
//! - refusals are refusals on both sides; scrapes agree.

mod support;
mod tracker_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use shoal_core::bencode;
use shoal_core::tracker::udp::UdpResponse;
use shoal_core::tracker::{parse_announce_response, parse_scrape_response, TrackerError};
use shoal_core::InfoHash;

use support::*;
use tracker_support::*;

const A: [u8; 20] = [0xa1; 20];
const B: [u8; 20] = [0xb2; 20];
const C: [u8; 20] = [0xc3; 20];
/// Not on either allow-list.
const NOT_LISTED: [u8; 20] = [0xdd; 20];

/// What an announce answer says, decoded.
#[derive(Debug)]
struct Answer {
    complete: u32,
    incomplete: u32,
    downloaded: Option<u32>,
    peers: BTreeSet<SocketAddr>,
    count: usize,
}

fn decode(body: &[u8]) -> Result<Answer, String> {
    let r = parse_announce_response(body).map_err(|e| match e {
        TrackerError::Failure(f) => f,
        other => panic!("not an announce answer ({other}): {body:?}"),
    })?;
    let value = bencode::decode(body).unwrap();
    let downloaded = value
        .as_dict()
        .and_then(|d| d.get(b"downloaded"))
        .and_then(|v| v.as_int())
        .map(|n| n as u32);
    Ok(Answer {
        complete: r.complete.expect("complete"),
        incomplete: r.incomplete.expect("incomplete"),
        downloaded,
        count: r.peers.len(),
        peers: r.peers.into_iter().collect(),
    })
}

/// Who is in each swarm, by announced port: seed or not.
#[derive(Default)]
struct Model {
    swarms: BTreeMap<[u8; 20], BTreeMap<u16, bool>>,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Model {
    fn apply(&mut self, a: &Ann) {
        let swarm = self.swarms.entry(a.info_hash).or_default();
        if a.event == Some("stopped") {
            swarm.remove(&a.port);
        } else {
            swarm.insert(a.port, a.left == 0);
        }
    }

    /// (everyone, what shoal should give the requester).
    fn expected(&self, a: &Ann) -> (BTreeSet<SocketAddr>, BTreeSet<SocketAddr>) {
        let swarm = &self.swarms[&a.info_hash];
        let everyone: BTreeSet<SocketAddr> = swarm.keys().map(|&p| local(p)).collect();
        let requester_is_seed = a.left == 0;
        let for_shoal = swarm
            .iter()
            .filter(|(&p, &seed)| p != a.port && !(requester_is_seed && seed))
            .map(|(&p, _)| local(p))
            .collect();
        (everyone, for_shoal)
    }
}

/// The steps, in order: (announce, on the allow-list).
fn steps() -> Vec<Ann> {
    let mut renamed = Ann::new(A, 1, 0);
    renamed.peer_id = *b"-ZZ0001-renamedpeer1";
    vec![
        Ann::new(A, 1, 500).event("started"),
        Ann::new(A, 2, 500).event("started"),
        Ann::new(A, 3, 0).event("started"),
        Ann::new(A, 4, 0).event("started"),
        Ann::new(A, 1, 0).event("completed"),
        Ann::new(A, 5, 0),
        Ann::new(A, 2, 500).event("stopped"),
        Ann::new(A, 6, 500).event("started").numwant(1),
        Ann::new(A, 1, 0).event("completed"),
        Ann::new(A, 7, 0).event("completed"),
        Ann::new(A, 3, 50),
        renamed,
        Ann::new(A, 8, 10).event("stopped"),
        Ann::new(A, 9, 10).numwant(2),
        Ann::new(A, 9, 10).numwant(0),
        Ann::new(A, 4, 0).numwant(2),
        Ann::new(B, 1, 10).event("started"),
        Ann::new(B, 2, 0).event("started"),
        Ann::new(B, 3, 0).event("started"),
        Ann::new(B, 1, 0).event("completed"),
        Ann::new(B, 4, 10),
        Ann::new(NOT_LISTED, 1, 10).event("started"),
    ]
}

#[test]
fn shoal_tracker_answers_agree_with_opentracker() {
    let scene = Scene::new();
    let hexes: Vec<String> = [A, B, C].iter().map(|h| InfoHash(*h).to_hex()).collect();
    let hex_refs: Vec<&str> = hexes.iter().map(String::as_str).collect();
    let mut ot = Tracker::start(&scene.path("opentracker"), &hex_refs, scene.deadline);
    let allow = scene.path("allow.txt");
    std::fs::write(&allow, hexes.join("\n")).unwrap();
    let mut shoal = ShoalTracker::start(
        scene.dir(),
        &["--allow", allow.to_str().unwrap()],
        scene.deadline,
    );

    let mut model = Model::default();
    for (i, a) in steps().into_iter().enumerate() {
        let target = format!("/announce?{}", a.query());
        let theirs = decode(&get(ot.port, &target).body);
        let ours = decode(&get(shoal.port, &target).body);
        let step = format!("step {i}: {a:?}\nopentracker: {theirs:?}\nshoal: {ours:?}");
        let listed = a.info_hash != NOT_LISTED;
        let (theirs, ours) = match (theirs, ours) {
            (Ok(t), Ok(o)) if listed => (t, o),
            (Err(_), Err(reason)) if !listed => {
                assert!(reason.starts_with("unregistered torrent"), "{step}");
                continue;
            }
            _ => panic!("one refused, the other did not: {step}"),
        };
        model.apply(&a);
        assert_eq!(
            (ours.complete, ours.incomplete),
            (theirs.complete, theirs.incomplete),
            "counts differ: {step}"
        );
        if let (Some(o), Some(t)) = (ours.downloaded, theirs.downloaded) {
            assert_eq!(o, t, "downloaded differs: {step}");
        }
        assert_eq!(ours.count, ours.peers.len(), "a peer twice: {step}");
        let (everyone, for_shoal) = model.expected(&a);
        let want = a.numwant.map_or(usize::MAX, |n| n as usize);
        if a.event == Some("stopped") {
            // A stopping client is given no peers, by either.
            assert!(theirs.peers.is_empty() && ours.peers.is_empty(), "{step}");
        } else if want >= everyone.len() {
            assert_eq!(theirs.peers, everyone, "opentracker vs model: {step}");
            assert_eq!(ours.peers, for_shoal, "shoal vs model: {step}");
            // The two answers side by side: the same, but for the requester and, for a
            // seed, the seeds.
            let mine = local(a.port);
            let seeds = &model.swarms[&a.info_hash];
            let theirs_useful: BTreeSet<SocketAddr> = theirs
                .peers
                .iter()
                .filter(|p| **p != mine && !(a.left == 0 && seeds[&p.port()]))
                .copied()
                .collect();
            assert_eq!(ours.peers, theirs_useful, "{step}");
        } else {
            assert_eq!(theirs.count, want.min(everyone.len()), "{step}");
            assert_eq!(ours.count, want.min(for_shoal.len()), "{step}");
            assert!(theirs.peers.is_subset(&everyone), "{step}");
            assert!(ours.peers.is_subset(&for_shoal), "{step}");
        }
    }

    // Scrapes of both torrents, and of one not announced at all (left out by both).
    let query: String = [A, B, C]
        .iter()
        .map(|h| format!("info_hash={}&", shoal_core::tracker::percent_encode(h)))
        .collect();
    let theirs = parse_scrape_response(&get(ot.port, &format!("/scrape?{query}")).body).unwrap();
    let ours = parse_scrape_response(&get(shoal.port, &format!("/scrape?{query}")).body).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 2);

    // The same over UDP, on the third torrent: counts and peers.
    let mut model = Model::default();
    let mut ot_udp = UdpClient::new(SocketAddr::from(([127, 0, 0, 1], ot.port)));
    let mut shoal_udp = UdpClient::new(shoal.addr());
    let udp_steps = [
        Ann::new(C, 1, 100).event("started"),
        Ann::new(C, 2, 0).event("started"),
        Ann::new(C, 3, 100).event("started"),
        Ann::new(C, 1, 0).event("completed"),
        Ann::new(C, 3, 100).event("stopped"),
        Ann::new(C, 4, 100),
    ];
    for (i, a) in udp_steps.iter().enumerate() {
        model.apply(a);
        let read = |r: UdpResponse| match r {
            UdpResponse::Announce(r) => (
                r.seeders,
                r.leechers,
                r.peers.into_iter().collect::<BTreeSet<_>>(),
            ),
            other => panic!("UDP step {i}: {other:?}"),
        };
        let (ts, tl, tp) = read(ot_udp.announce(a));
        let (os, ol, op) = read(shoal_udp.announce(a));
        let step =
            format!("UDP step {i}: {a:?}: opentracker {ts}/{tl} {tp:?}, shoal {os}/{ol} {op:?}");
        assert_eq!((os, ol), (ts, tl), "{step}");
        if a.event != Some("stopped") {
            let (everyone, for_shoal) = model.expected(a);
            assert_eq!(tp, everyone, "{step}");
            assert_eq!(op, for_shoal, "{step}");
        }
    }
    ot.proc.assert_not_failed();
    shoal.assert_running();
}
