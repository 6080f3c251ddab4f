//! Blog torrents: a daemon follows an RSS 2.0 feed shaped like a blog's (items with
//! `<enclosure>`) and an Atom feed, both served by nginx. What the feeds held when it
//! subscribed is left alone; an item published afterwards is added (and downloaded from a
//! libtorrent seed), an item that does not match `--match` is not; polls are conditional
//! (nginx answers 304 while the feed is unchanged); after a restart nothing is taken twice.
//!
//! Needs nginx, python3-libtorrent, mktorrent and opentracker (`scripts/test` installs
//! them); never skipped.

mod daemon_support;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_support::*;
use support::*;

fn rss(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .enumerate()
        .map(|(i, (title, url))| {
            format!(
                "<item><title>{title}</title><link>http://blog.example/{i}.html</link>\
                 <guid isPermaLink=\"false\">item-{title}</guid>\
                 <pubDate>Tue, 01 Dec 2026 10:00:0{i} GMT</pubDate>\
                 <description>&lt;p&gt;A post.&lt;/p&gt;</description>\
                 <enclosure url=\"{url}\" length=\"1000\" type=\"application/x-bittorrent\"/></item>\n"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>A blog</title><link>http://blog.example/</link><description>posts</description>\n\
         {items}</channel></rss>\n"
    )
}

fn atom(entries: &[(&str, &str)]) -> String {
    let entries: String = entries
        .iter()
        .map(|(title, url)| {
            format!(
                "<entry><title>{title}</title><id>urn:shoal-test:{title}</id>\
                 <updated>2026-12-01T10:00:00Z</updated>\
                 <link rel=\"alternate\" href=\"http://releases.example/{title}\"/>\
                 <link rel=\"enclosure\" type=\"application/x-bittorrent\" href=\"{url}\"/></entry>\n"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Releases</title>\
         <id>urn:shoal-test</id><updated>2026-12-01T10:00:00Z</updated>\n{entries}</feed>\n"
    )
}

/// Replaces `path` whole (nginx never serves half a feed).
fn publish(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Lines of nginx's access log for `path` answered with `status`.
fn served(nginx_dir: &Path, path: &str, status: u16) -> usize {
    let log = std::fs::read_to_string(nginx_dir.join("access.log")).unwrap_or_default();
    let needle = format!("\"GET {path} HTTP/1.1\" {status} ");
    log.lines().filter(|l| l.contains(&needle)).count()
}

fn names(d: &ShoalDaemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .torrents(&["name"])
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn items_published_after_subscribing_are_downloaded_once() {
    let scene = Scene::new();
    let hash = info_hash(&scene.torrent(None));
    let mut tracker = Tracker::start(&scene.path("tracker"), &[&hash], scene.deadline);
    let torrent = scene.torrent(Some(&tracker.announce_url()));
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    tracker.wait_seeders(&hash, 1, scene.deadline);
    // A second torrent, for the Atom feed (nobody seeds it: being added is enough).
    let other = Payload::new("release-v2", &[("v2.bin", 40_000)]);
    let other_torrent = scene.path("web/v2.torrent");
    std::fs::create_dir_all(scene.path("web")).unwrap();
    mktorrent(&other.write(&scene.path("other")), &other_torrent, 15, None);
    std::fs::copy(&torrent, scene.path("web/episode2.torrent")).unwrap();

    let web = scene.path("web");
    let nginx_dir = scene.path("nginx");
    let nginx = Nginx::start(&web, &nginx_dir, scene.deadline);
    let base = nginx.url();
    let old = format!("{base}episode1.torrent"); // never fetched: it was there before
    publish(&web.join("blog.xml"), &rss(&[("Episode 1 (video)", &old)]));
    publish(
        &web.join("releases.atom"),
        &atom(&[("v1", &format!("{base}v1.torrent"))]),
    );

    let (state, dl) = (scene.path("state"), scene.path("dl"));
    let rpc = free_port();
    let daemon = ShoalDaemon::start_with(
        "daemon-1",
        &state,
        &dl,
        rpc,
        &["--feed-interval", "1"],
        scene.dir(),
        scene.deadline,
    );
    let shoal = |args: &[&str]| {
        run(support::shoal_command()
            .args(args)
            .arg("--state")
            .arg(&state))
    };
    let out = shoal(&[
        "feed",
        "add",
        &format!("{base}blog.xml"),
        "--match",
        "(?i)video",
    ]);
    assert!(out.starts_with("following feed 1"), "{out}");
    shoal(&["feed", "add", &format!("{base}releases.atom")]);
    // A malformed feed is refused with a clear message.
    std::fs::write(
        web.join("not-a-feed.xml"),
        "<html><body>hello</body></html>",
    )
    .unwrap();
    let out = support::shoal_command()
        .args(["feed", "add", &format!("{base}not-a-feed.xml"), "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a feed"));

    // Polled again, unchanged (304): the items that were there are not taken.
    wait_until(
        "conditional polls of both feeds",
        scene.deadline,
        || match (
            served(&nginx_dir, "/blog.xml", 304),
            served(&nginx_dir, "/releases.atom", 304),
        ) {
            (a, b) if a >= 1 && b >= 1 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(names(&daemon).is_empty(), "{:?}", names(&daemon));

    // New posts: a video (taken), an audio one (not matching, left).
    publish(
        &web.join("blog.xml"),
        &rss(&[
            ("Episode 3 (audio)", &format!("{base}audio.torrent")),
            ("Episode 2 (video)", &format!("{base}episode2.torrent")),
            ("Episode 1 (video)", &old),
        ]),
    );
    publish(
        &web.join("releases.atom"),
        &atom(&[
            ("v2", &format!("{base}v2.torrent")),
            ("v1", &format!("{base}v1.torrent")),
        ]),
    );
    wait_until("the new video downloaded", scene.deadline, || {
        seed.assert_not_failed();
        let ts = daemon.torrents(&["name", "percentDone"]);
        let done = ts
            .iter()
            .any(|t| t["name"] == scene.payload.name.as_str() && t["percentDone"] == 1.0);
        if done && ts.len() == 2 {
            Ok(())
        } else {
            Err(format!("{ts:?}"))
        }
    });
    // (The Atom feed's torrent has no seed: its `.part` file stays beside.)
    for (path, data) in &scene.payload.files {
        let on_disk = std::fs::read(dl.join(&scene.payload.name).join(path)).unwrap();
        assert!(on_disk == *data, "{} differs", path.display());
    }
    assert_eq!(
        names(&daemon),
        vec![scene.payload.name.clone(), other.name.clone()]
    );
    assert_eq!(
        served(&nginx_dir, "/audio.torrent", 200) + served(&nginx_dir, "/audio.torrent", 404),
        0
    );
    assert_eq!(served(&nginx_dir, "/episode1.torrent", 404), 0);

    // After a restart, the feeds are still followed and nothing is taken twice.
    let mut daemon = daemon;
    run(Command::new("kill").args(["-TERM", &daemon.proc.id().to_string()]));
    daemon
        .proc
        .wait_exit(Instant::now() + Duration::from_secs(20));
    let polls_before = served(&nginx_dir, "/blog.xml", 200) + served(&nginx_dir, "/blog.xml", 304);
    let daemon = ShoalDaemon::start_with(
        "daemon-2",
        &state,
        &dl,
        rpc,
        &["--feed-interval", "1"],
        scene.dir(),
        scene.deadline,
    );
    wait_until("polled again after the restart", scene.deadline, || {
        let polls = served(&nginx_dir, "/blog.xml", 200) + served(&nginx_dir, "/blog.xml", 304);
        if polls > polls_before + 1 {
            Ok(())
        } else {
            Err(format!("{polls} polls"))
        }
    });
    assert_eq!(
        names(&daemon),
        vec![scene.payload.name.clone(), other.name.clone()]
    );
    let list = shoal(&["feed", "list"]);
    assert!(
        list.contains("blog.xml  taken 1  match \"(?i)video\""),
        "{list}"
    );
    assert!(list.contains("releases.atom  taken 1"), "{list}");
}
