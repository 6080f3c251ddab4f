//! Local service discovery (BEP 14) in the engine: a torrent announces itself when LSD is
//! on (never a private one), announces heard name dial candidates, our own are ignored, a
//! flood is bounded.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::engine::{Engine, EngineConfig, Input, Output, LSD_RECEIVE_PER_SECOND};
use shoal_core::lsd::LsdAnnounce;
use shoal_core::metainfo::Metainfo;
use shoal_core::InfoHash;
use support::make_torrent;

fn engine(lsd: bool, private: bool) -> (Engine, Arc<Metainfo>, Instant) {
    let (meta, _) = make_torrent(&[("f", 100_000)], 16384);
    let meta = if private {
        let mut info = meta.info_bytes.clone();
        let at = info.len() - 1;
        info.splice(at..at, b"7:privatei1e".iter().copied());
        Arc::new(Metainfo::from_info_bytes(&info).unwrap())
    } else {
        meta
    };
    let now = Instant::now();
    let mut e = Engine::new(EngineConfig {
        lsd,
        listen_port: 7777,
        ..EngineConfig::default()
    });
    e.add_torrent(meta.clone(), Default::default(), now)
        .unwrap();
    (e, meta, now)
}

fn outs(e: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| e.poll_output()).collect()
}

fn sent(outs: &[Output]) -> Vec<LsdAnnounce> {
    outs.iter()
        .filter_map(|o| match o {
            Output::LsdSend { data } => Some(LsdAnnounce::decode(data).unwrap()),
            _ => None,
        })
        .collect()
}

fn connects(outs: &[Output]) -> Vec<SocketAddr> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Connect { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect()
}

fn hear(
    e: &mut Engine,
    from: &str,
    port: u16,
    hash: InfoHash,
    cookie: Option<String>,
    now: Instant,
) {
    let data = LsdAnnounce {
        port,
        info_hashes: vec![hash],
        cookie,
    }
    .encode();
    e.handle(
        Input::LsdReceived {
            from: from.parse().unwrap(),
            data,
        },
        now,
    );
}

#[test]
fn a_torrent_announces_itself_at_its_first_tick_then_every_few_minutes() {
    let (mut e, meta, mut now) = engine(true, false);
    let _ = outs(&mut e);
    let mut heard = Vec::new();
    for _ in 0..(11 * 60) {
        now += Duration::from_secs(1);
        e.handle(Input::Timer, now);
        heard.extend(sent(&outs(&mut e)));
    }
    // At 1 s, 5 min 1 s and 10 min 1 s.
    assert_eq!(heard.len(), 3, "{heard:?}");
    for a in &heard {
        assert_eq!(a.port, 7777);
        assert_eq!(a.info_hashes, vec![meta.info_hash]);
    }
    // Our own announce, looped back, is ignored.
    hear(
        &mut e,
        "10.0.0.5:6771",
        7777,
        meta.info_hash,
        heard[0].cookie.clone(),
        now,
    );
    assert!(connects(&outs(&mut e)).is_empty());
}

#[test]
fn announces_heard_are_dialled_within_a_bound() {
    let (mut e, meta, now) = engine(true, false);
    let _ = outs(&mut e);
    hear(
        &mut e,
        "10.0.0.9:50000",
        7000,
        meta.info_hash,
        Some("x".into()),
        now,
    );
    assert_eq!(
        connects(&outs(&mut e)),
        vec!["10.0.0.9:7000".parse().unwrap()]
    );
    // Another torrent's announce: nothing.
    hear(&mut e, "10.0.0.8:50000", 7000, InfoHash([3; 20]), None, now);
    assert!(connects(&outs(&mut e)).is_empty());
    // A flood within one second: at most the budget read.
    let later = now + Duration::from_secs(5);
    let mut dialled = 0;
    for i in 0..200u16 {
        hear(
            &mut e,
            "10.0.1.1:50000",
            8000 + i,
            meta.info_hash,
            None,
            later,
        );
        dialled += connects(&outs(&mut e)).len();
    }
    assert_eq!(dialled as u32, LSD_RECEIVE_PER_SECOND);
}

#[test]
fn off_or_private_means_no_lsd() {
    for (lsd, private) in [(false, false), (true, true)] {
        let (mut e, meta, mut now) = engine(lsd, private);
        let _ = outs(&mut e);
        for _ in 0..5 {
            now += Duration::from_secs(1);
            e.handle(Input::Timer, now);
            assert!(sent(&outs(&mut e)).is_empty());
        }
        hear(&mut e, "10.0.0.9:50000", 7000, meta.info_hash, None, now);
        assert!(
            connects(&outs(&mut e)).is_empty(),
            "lsd {lsd} private {private}"
        );
    }
}
