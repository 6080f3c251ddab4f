//! A session adds a magnet link whose only peer (`x.pe=`) is another session seeding the
//! torrent: the metadata comes from that seed (BEP 9), then the payload; the data is
//! checked byte for byte, the `.torrent` is saved beside the resume record, and a new
//! session given the same link uses it instead of fetching again. Runs under async-std and
//! under smol (see `common::Exec`).

mod common;
#[path = "../../runtime-mio/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::*;
use shoal_async_std::{AddOptions, Error, Event, TorrentSource};
use shoal_core::metainfo::Metainfo;
use support::Payload;

const DEADLINE: Duration = Duration::from_secs(60);

fn magnet_from_a_session<E: Exec>() {
    let tmp = tempfile::Builder::new()
        .prefix("shoal-async-std-magnet-")
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
    let dl = tmp.path().join("dl");
    E::block_on(async {
        let deadline = Instant::now() + DEADLINE;
        let seed = session::<E>();
        seed.add_torrent(
            TorrentSource::Bytes(torrent.clone()),
            tmp.path().join("src"),
            AddOptions::default(),
        )
        .await
        .unwrap();
        let link = format!(
            "magnet:?xt=urn:btih:{}&x.pe={}",
            meta.info_hash.to_hex(),
            seed.local_addr()
        );
        let leech = session::<E>();
        let events = leech.events();
        let mut seen = Seen::default();
        assert!(matches!(
            leech
                .add_magnet("magnet:?xt=urn:btih:nope", &dl, AddOptions::default())
                .await,
            Err(Error::Magnet(_))
        ));
        let l = leech
            .add_magnet(&link, &dl, AddOptions::default())
            .await
            .unwrap();
        assert_eq!(leech.torrents().await.unwrap(), vec![l]);
        assert!(matches!(
            leech.add_magnet(&link, &dl, AddOptions::default()).await,
            Err(Error::AlreadyAdded(k)) if k == l
        ));
        let got = wait_event(
            &events,
            &mut seen,
            "metadata",
            deadline,
            |e| matches!(e, Event::MetadataReceived { torrent, .. } if *torrent == l),
            || {},
        )
        .await;
        assert_eq!(
            got,
            Event::MetadataReceived {
                torrent: l,
                name: payload.name.clone()
            }
        );
        wait_complete(&events, &mut seen, l, deadline, || {}).await;
        assert_eq!(leech.metainfo(l).await.unwrap().info_hash, meta.info_hash);
        leech.shutdown().await;
        seed.shutdown().await;
    });
    payload.assert_exact(&dl);
    let saved = shoal_io::resume::torrent_path(&dl, &meta.info_hash);
    let saved = Metainfo::parse(&std::fs::read(saved).unwrap()).unwrap();
    assert_eq!(saved.info_bytes, meta.info_bytes);

    // The same link again, with no peer alive: the saved .torrent is used, the data found
    // complete.
    E::block_on(async {
        let again = session::<E>();
        let events = again.events();
        let link = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
        let t = again
            .add_magnet(&link, &dl, AddOptions::default())
            .await
            .unwrap();
        assert!(again.stats(t).await.unwrap().progress.complete);
        while let Ok(e) = events.try_recv() {
            assert!(
                !matches!(e, Event::FetchingMetadata { .. }),
                "fetched again: {e:?}"
            );
        }
        again.shutdown().await;
    });
}

#[test]
fn a_magnet_link_from_a_session_under_async_std() {
    magnet_from_a_session::<AsyncStd>();
}

#[test]
fn a_magnet_link_from_a_session_under_smol() {
    magnet_from_a_session::<Smol>();
}
