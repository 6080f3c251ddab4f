//! `shoal tracker --torrents DIR` as its folder changes, and torrent URLs as people write
//! them: a `.torrent` put in the folder after the start is served and tracked without a
//! signal, the index page says which protocols are on, and a URL with spaces and
//! non-ASCII letters in it is fetched.

mod support;
mod tracker_support;

use std::fs;

use shoal_core::metainfo::Metainfo;
use shoal_core::tracker::{parse_announce_response, percent_encode};

use support::*;
use tracker_support::*;

#[test]
fn a_torrent_added_later_is_served_and_tracked_and_its_url_may_hold_spaces_and_accents() {
    let scene = Scene::new();
    let folder = scene.path("torrents");
    fs::create_dir_all(&folder).unwrap();
    fs::copy(scene.torrent(None), folder.join("first.torrent")).unwrap();
    let port = free_port();
    let mut cmd = support::shoal_command();
    cmd.args([
        "tracker",
        "--http",
        &local(port),
        "--udp",
        "off",
        "--torrents",
    ])
    .arg(&folder);
    let mut tracker = Proc::spawn("shoal-tracker", cmd, scene.dir());
    tracker.wait_for("listening on", scene.deadline);

    // The index page names what is on: HTTP, not UDP.
    let index = get(port, "/");
    assert_eq!(index.status, 200);
    let page = String::from_utf8_lossy(&index.body);
    assert!(page.contains("HTTP only: UDP is off"), "{page}");
    assert!(!page.contains("UDP (BEP 15)"), "{page}");

    // A torrent made after the start, under a name with a space and accents.
    let name = "Données été.torrent";
    let made = support::shoal_command()
        .arg("create")
        .arg(scene.content().join("tiny.txt"))
        .arg("-o")
        .arg(folder.join(name))
        .args(["-t", &format!("http://{}/announce", local(port))])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let bytes = fs::read(folder.join(name)).unwrap();
    let meta = Metainfo::parse(&bytes).unwrap();

    // Served at once: the request for a file of the folder that is not served yet makes
    // the tracker look at the folder.
    let encoded = format!("/{}", percent_encode(name.as_bytes()));
    let r = get(port, &encoded);
    assert_eq!(r.status, 200, "{}", tracker.tail(20));
    assert_eq!(r.body, bytes);
    // And tracked: an announce for it is answered with peers, not refused.
    let ann = Ann::new(meta.info_hash.0, 1, 0).event("started");
    let r = get(port, &format!("/announce?{}", ann.query()));
    assert_eq!(r.status, 200);
    assert!(
        parse_announce_response(&r.body).is_ok(),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    // A name the folder does not hold is still 404.
    assert_eq!(get(port, "/nothing%20here.torrent").status, 404);

    // The URL as a user types or pastes it, spaces and accents unencoded; and the same
    // URL already encoded (not encoded twice).
    for url in [
        format!("http://{}/{name}", local(port)),
        format!("http://{}{encoded}", local(port)),
    ] {
        let out = support::shoal_command()
            .arg("info")
            .arg(&url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("name:         tiny.txt"), "{text}");
        assert!(text.contains(&meta.info_hash.to_hex()), "{text}");
    }
    tracker.assert_not_failed();
}
