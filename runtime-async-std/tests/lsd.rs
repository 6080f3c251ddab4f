//! Local service discovery (BEP 14) between two sessions that know nothing of each other
//! (no tracker, no peer): a seed and a download with `EngineConfig::lsd` find each other
//! through the multicast group, and the download completes.
//!
//! Plain loopback carries no multicast here, and LSD must never reach a real network. So
//! this test is a `main` of its own (`harness = false`): run plainly, it makes a network
//! namespace (`support::Netns`, as root) and runs itself again inside it with
//! `SHOAL_LSD_INNER` set; that inner run holds the sessions, under async-std and then
//! under smol. The outer run fails if the inner one does.

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use shoal_async_std::{AddOptions, Session, SessionConfig, TorrentSource};
use support::{Netns, Payload};

const INNER: &str = "SHOAL_LSD_INNER";

fn main() {
    if std::env::var_os(INNER).is_some() {
        sessions_find_each_other::<AsyncStd>();
        sessions_find_each_other::<Smol>();
        println!("lsd: both executors done");
        return;
    }
    let ns = Netns::new();
    let me = std::env::current_exe().unwrap();
    let out = ns
        .command(me.to_str().unwrap(), &[])
        .env(INNER, "1")
        .output()
        .expect("run the test inside the namespace");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the run inside the namespace failed");
    assert!(String::from_utf8_lossy(&out.stdout).contains("lsd: both executors done"));
    println!("test lsd ... ok");
}

fn lsd_session<E: Exec>() -> Session {
    let mut config = SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SessionConfig::default()
    };
    config.engine.lsd = true;
    Session::new(config, E::executor()).expect("bind 127.0.0.1:0 and join the LSD group")
}

fn sessions_find_each_other<E: Exec>() {
    let tmp = tempfile::Builder::new()
        .prefix("shoal-async-std-lsd-")
        .tempdir()
        .unwrap();
    let payload = Payload::standard();
    let content = payload.write(&tmp.path().join("src"));
    let torrent = shoal_io::create_torrent(
        &content,
        &shoal_io::CreateOptions {
            piece_length: Some(32 * 1024),
            ..Default::default()
        },
    )
    .unwrap();
    let dl = tmp.path().join("dl");
    E::block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let seed = lsd_session::<E>();
        seed.add_torrent(
            TorrentSource::Bytes(torrent.clone()),
            tmp.path().join("src"),
            AddOptions::default(),
        )
        .await
        .unwrap();
        let leech = lsd_session::<E>();
        let events = leech.events();
        let mut seen = Seen::default();
        let l = leech
            .add_torrent(TorrentSource::Bytes(torrent), &dl, AddOptions::default())
            .await
            .unwrap();
        wait_complete(&events, &mut seen, l, deadline, || {}).await;
        leech.shutdown().await;
        seed.shutdown().await;
    });
    payload.assert_exact(&dl);
    println!("lsd under {}: complete", E::NAME);
}
