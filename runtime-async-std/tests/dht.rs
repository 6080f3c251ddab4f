//! The DHT (BEP 5) in a session: a session adds a magnet link with no tracker and no peer
//! (`magnet:?xt=urn:btih:HASH`); another session seeding it announced itself on a third
//! session's DHT node, which both know and nothing else: the leech finds the seed there,
//! fetches the metadata and the payload, and keeps its routing table in its state folder.
//! Runs under async-std and under smol (see `common::Exec`).

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use shoal_async_std::{AddOptions, DhtSettings, Event, Session, SessionConfig, TorrentSource};
use shoal_core::metainfo::Metainfo;
use support::Payload;

const DEADLINE: Duration = Duration::from_secs(60);

/// A session on 127.0.0.1 whose DHT starts from `bootstrap` only, its table kept in
/// `state` if given.
fn dht_session<E: Exec>(bootstrap: &[SocketAddr], state: Option<std::path::PathBuf>) -> Session {
    let config = SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        dht: Some(DhtSettings {
            bootstrap: bootstrap.iter().map(ToString::to_string).collect(),
            state,
        }),
        ..SessionConfig::default()
    };
    Session::new(config, E::executor()).expect("bind 127.0.0.1:0")
}

fn a_bare_magnet_through_the_dht<E: Exec>() {
    let tmp = tempfile::Builder::new()
        .prefix("shoal-async-std-dht-")
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
    let meta = Metainfo::parse(&torrent).unwrap();
    let (dl, state) = (tmp.path().join("dl"), tmp.path().join("state"));
    E::block_on(async {
        let deadline = Instant::now() + DEADLINE;
        // The node both start from, which starts from nobody itself.
        let router = dht_session::<E>(&[], None);
        let seed = dht_session::<E>(&[router.local_addr()], None);
        let seed_events = seed.events();
        let mut seen = Seen::default();
        let s = seed
            .add_torrent(
                TorrentSource::Bytes(torrent.clone()),
                tmp.path().join("src"),
                AddOptions::default(),
            )
            .await
            .unwrap();
        wait_event(
            &seed_events,
            &mut seen,
            "the seed announced on the DHT",
            deadline,
            |e| matches!(e, Event::DhtAnswer { torrent, announced, .. } if *torrent == s && *announced > 0),
            || {},
        )
        .await;
        let leech = dht_session::<E>(&[router.local_addr()], Some(state.clone()));
        let events = leech.events();
        let link = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
        let l = leech
            .add_magnet(&link, &dl, AddOptions::default())
            .await
            .unwrap();
        wait_event(
            &events,
            &mut seen,
            "peers from the DHT",
            deadline,
            |e| matches!(e, Event::DhtAnswer { torrent, peers, .. } if *torrent == l && *peers > 0),
            || {},
        )
        .await;
        wait_complete(&events, &mut seen, l, deadline, || {}).await;
        leech.shutdown().await;
        seed.shutdown().await;
        router.shutdown().await;
    });
    payload.assert_exact(&dl);
    // The leech's table (the router and the seed's node, at least) is kept.
    let table = std::fs::read(state.join("dht.state")).unwrap();
    assert!(table.len() >= 20 + 26, "{}", table.len());
}

#[test]
fn a_bare_magnet_link_through_the_dht_under_async_std() {
    a_bare_magnet_through_the_dht::<AsyncStd>();
}

#[test]
fn a_bare_magnet_link_through_the_dht_under_smol() {
    a_bare_magnet_through_the_dht::<Smol>();
}
