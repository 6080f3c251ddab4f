//! Interop: other clients download from `shoal serve` with no other peer: the server's
//! tracker and its web seed (BEP 19) are all they have. libtorrent and Transmission, each
//! with a single-file and a multi-file torrent, fetched from the server's own `.torrent`
//! URLs.
//!
//! Needs Debian's python3-libtorrent and transmission-cli (`scripts/test` installs them).
//! A missing tool fails the test: it is never skipped.

mod support;
mod tracker_support;

use std::path::{Path, PathBuf};

use support::*;
use tracker_support::*;

const SINGLE: &str = "one file.iso";

/// A scene whose `www/` holds the standard payload (a folder) and a 6 MB single file, and
/// `shoal serve www` serving them.
fn serving() -> (Scene, ShoalServe, Vec<u8>) {
    let scene = Scene::new();
    let www = scene.path("www");
    scene.payload.write(&www);
    let data: Vec<u8> = (0..6_000_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join(SINGLE), &data).unwrap();
    let serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    (scene, serve, data)
}

/// The server's `.torrent` at `name`, fetched over HTTP into the scene as a file (the
/// clients take a path).
fn fetch_torrent(scene: &Scene, serve: &ShoalServe, name: &str) -> PathBuf {
    let r = request(serve.port, "GET", &format!("/{name}"), "");
    assert_eq!(r.status, 200, "GET /{name}: {}", r.head);
    assert_eq!(r.header("Content-Type"), Some("application/x-bittorrent"));
    let out = scene.path(&name.replace("%20", " "));
    std::fs::write(&out, &r.body).unwrap();
    out
}

fn assert_single(dir: &Path, data: &[u8]) {
    let got = std::fs::read(dir.join(SINGLE)).expect("the single file downloaded");
    assert!(got == data, "the single file's bytes differ");
}

#[test]
fn libtorrent_downloads_from_shoal_serve_alone() {
    let (scene, mut serve, data) = serving();
    let dl = scene.path("dl");
    for (name, torrent) in [
        ("libtorrent-multi", "payload.torrent"),
        ("libtorrent-single", "one%20file.iso.torrent"),
    ] {
        let torrent = fetch_torrent(&scene, &serve, torrent);
        let mut lt = lt_download(name, &torrent, &dl, free_port(), &[], false, scene.dir());
        lt.wait_success(scene.deadline);
    }
    scene.payload.assert_data(&dl);
    assert_single(&dl, &data);
    serve.assert_running();
}

#[test]
fn transmission_downloads_from_shoal_serve_alone() {
    let (scene, mut serve, data) = serving();
    let dl = scene.path("dl");
    for (name, torrent) in [
        ("transmission-multi", "payload.torrent"),
        ("transmission-single", "one%20file.iso.torrent"),
    ] {
        let torrent = fetch_torrent(&scene, &serve, torrent);
        let mut tr = transmission(name, &torrent, &dl, free_port(), scene.dir());
        tr.wait_for("Seeding", scene.deadline);
    }
    scene.payload.assert_data(&dl);
    assert_single(&dl, &data);
    serve.assert_running();
}

/// Reads an RSS feed with Debian's python3-feedparser: one line per item, `title`,
/// enclosure `url`, `length` and `type`, and `guid`, tab-separated.
const FEEDPARSER: &str = r#"
import sys, feedparser
d = feedparser.parse(sys.argv[1])
if d.bozo:
    sys.exit("not a well-formed feed: %r" % d.bozo_exception)
print("version\t" + d.version)
for e in d.entries:
    for enc in e.enclosures:
        print("\t".join(["item", e.title, enc.href, enc.length, enc.type, e.id]))
"#;

/// The magnet links of an index page, `&amp;` unescaped, by display name.
fn magnets(page: &str) -> std::collections::BTreeMap<String, String> {
    page.split("href=\"magnet:")
        .skip(1)
        .map(|rest| {
            let uri = format!("magnet:{}", &rest[..rest.find('"').unwrap()]).replace("&amp;", "&");
            let m = shoal_core::magnet::Magnet::parse(&uri).expect("a magnet link that parses");
            (m.display_name.clone().unwrap(), uri)
        })
        .collect()
}

#[test]
fn the_feed_read_by_feedparser_leads_to_the_torrents_of_the_index_page() {
    let (scene, serve, _) = serving();
    let out = run(std::process::Command::new(PYTHON)
        .args(["-c", FEEDPARSER])
        .arg(serve.url("feed.xml")));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("version\trss20"), "{out}");
    let page = String::from_utf8(request(serve.port, "GET", "/", "").body).unwrap();
    let magnets = magnets(&page);
    let mut titles = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let [_, title, url, length, kind, guid] = f[..] else {
            panic!("{line:?}");
        };
        assert_eq!(kind, "application/x-bittorrent");
        let path = url
            .strip_prefix(&serve.url(""))
            .unwrap_or_else(|| panic!("{url} is not on the server"));
        let r = request(serve.port, "GET", &format!("/{path}"), "");
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(length, r.body.len().to_string(), "{url}: enclosure length");
        let meta = shoal_core::metainfo::Metainfo::parse(&r.body).expect("a torrent");
        let hash = meta.info_hash.to_string();
        assert_eq!(guid, hash);
        let magnet = &magnets[title];
        assert!(
            magnet.starts_with(&format!("magnet:?xt=urn:btih:{hash}&")),
            "{title}: the index page says {magnet}, the feed's torrent is {hash}"
        );
        titles.push(title.to_string());
    }
    titles.sort();
    assert_eq!(titles, ["one file.iso", "payload"]);
    drop(scene);
}

/// The torrent at `torrent` without its web seed: the same info-hash (`info` is kept byte
/// for byte), only the tracker left, so peers are the only source.
fn without_web_seed(torrent: &Path, out: &Path) {
    let meta = shoal_core::metainfo::Metainfo::parse(&std::fs::read(torrent).unwrap()).unwrap();
    let announce = meta.announce.expect("an announce URL");
    let mut bytes = format!("d8:announce{}:{announce}4:info", announce.len()).into_bytes();
    bytes.extend_from_slice(&meta.info_bytes);
    bytes.push(b'e');
    std::fs::write(out, bytes).unwrap();
}

#[test]
fn shoal_serve_seeds_over_the_peer_protocol_with_seed() {
    let scene = Scene::new();
    let www = scene.path("www");
    scene.payload.write(&www);
    let mut serve = ShoalServe::start(
        &www,
        scene.dir(),
        &["--seed", "--seed-port", &free_port().to_string()],
        scene.deadline,
    );
    serve
        .proc
        .wait_for("shoal serve: seeding payload", scene.deadline);
    let served = fetch_torrent(&scene, &serve, "payload.torrent");
    let peers_only = scene.path("peers-only.torrent");
    without_web_seed(&served, &peers_only);
    // libtorrent finds the seed through the server's tracker; there is no web seed.
    let dl = scene.path("dl");
    let mut lt = lt_download(
        "libtorrent",
        &peers_only,
        &dl,
        free_port(),
        &[],
        false,
        scene.dir(),
    );
    lt.wait_success(scene.deadline);
    scene.payload.assert_data(&dl);
    serve.assert_running();
}

#[test]
fn a_mixed_swarm_around_shoal_serve() {
    // shoal serve over www/, a libtorrent seed over a copy in src/, and a shoal and a
    // libtorrent leecher: all find each other through the server's tracker, and the
    // server's web seed is one source among the peers.
    let scene = Scene::new();
    let www = scene.path("www");
    scene.payload.write(&www);
    let serve = ShoalServe::start(&www, scene.dir(), &[], scene.deadline);
    let torrent = fetch_torrent(&scene, &serve, "payload.torrent");
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    let (shoal_dl, lt_dl) = (scene.path("dl-shoal"), scene.path("dl-lt"));
    let mut shoal = shoal_download(
        "shoal",
        &torrent,
        &shoal_dl,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    let mut lt = lt_download(
        "libtorrent",
        &torrent,
        &lt_dl,
        free_port(),
        &[],
        false,
        scene.dir(),
    );
    shoal.wait_success_watching(&mut seed, scene.deadline);
    lt.wait_success(scene.deadline);
    scene.payload.assert_exact(&shoal_dl);
    scene.payload.assert_data(&lt_dl);
    // The libtorrent seed, still running, is a seeder on the server's tracker.
    let hash = shoal_core::metainfo::Metainfo::parse(&std::fs::read(&torrent).unwrap())
        .unwrap()
        .info_hash;
    let (complete, _, _) = scrape_http(serve.port, &hash);
    assert!(complete >= 1, "the tracker knows the seed");
}
