//! The daemon's web page in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver), opens the page, types the URL of a `.torrent` (served by
//! nginx) into the add field and presses Add; the page shows the torrent reach 100 %
//! (downloaded from a libtorrent seed found through opentracker), its files listed with
//! their wanted boxes; a file unticked, a priority and sequential mode set on the page
//! reach the daemon; the same `.torrent` uploaded through the file field is recognised;
//! a feed followed through the page is listed. A screenshot of the page is kept in the scene (and copied to
//! `$SHOAL_PAGE_SCREENSHOT` when that is set: how docs/daemon-page.png is made).
//!
//! Needs chromium, chromium-driver, nginx, python3-libtorrent, mktorrent and opentracker
//! (`scripts/test` installs them); never skipped.

mod daemon_support;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use daemon_support::*;
use serde_json::{json, Value};
use support::*;

/// One WebDriver call to chromedriver on 127.0.0.1:`port`; its `value`.
fn webdriver(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open: the answer ends at its Content-Length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let (head, json_text) = loop {
        let n = s.read(&mut buf).expect("chromedriver's answer");
        assert!(n > 0, "chromedriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("a Content-Length");
        if raw.len() >= end + 4 + len {
            let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + len]).to_string();
            break (head, body);
        }
    };
    let v: Value = serde_json::from_str(&json_text)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {head}\n{json_text}"));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{method} {path}: {head}\n{v}"
    );
    v["value"].clone()
}

/// Ends the WebDriver session when dropped, so chromium exits even when the test fails
/// (chromedriver, killed after it, would leave the browser running).
struct Session {
    port: u16,
    id: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n",
                self.id, self.port
            );
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
        }
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

#[test]
fn a_torrent_added_through_the_page_shows_100_percent_in_chromium() {
    let scene = Scene::new();
    let hash = info_hash(&scene.torrent(None));
    let mut tracker = Tracker::start(&scene.path("tracker"), &[&hash], scene.deadline);
    let torrent = scene.torrent(Some(&tracker.announce_url()));
    let mut seed = scene.ready_seed(Seeder::Libtorrent, &torrent, free_port());
    tracker.wait_seeders(&hash, 1, scene.deadline);
    let web = scene.path("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::copy(&torrent, web.join("payload.torrent")).unwrap();
    std::fs::write(
        web.join("blog.xml"),
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>b</title>\
         <link>http://b.example/</link><description>d</description></channel></rss>",
    )
    .unwrap();
    let nginx = Nginx::start(&web, &scene.path("nginx"), scene.deadline);
    let torrent_url = format!("{}payload.torrent", nginx.url());

    let rpc = free_port();
    let dl = scene.path("dl");
    let mut daemon = ShoalDaemon::start(
        "shoal-daemon",
        &scene.path("state"),
        &dl,
        rpc,
        scene.dir(),
        scene.deadline,
    );

    let wd = free_port();
    let mut cmd = Command::new("chromedriver");
    cmd.arg(format!("--port={wd}"));
    let mut driver = Proc::spawn("chromedriver", cmd, scene.dir());
    wait_until("chromedriver listening", scene.deadline, || {
        driver.assert_not_failed();
        TcpStream::connect(("127.0.0.1", wd))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    let profile = scene.path("chromium-profile");
    let session = webdriver(
        wd,
        "POST",
        "/session",
        Some(json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1000,760", format!("--user-data-dir={}", profile.display())]
            }
        }}})),
    );
    let sid = session["sessionId"]
        .as_str()
        .expect("a session")
        .to_string();
    let _session = Session {
        port: wd,
        id: sid.clone(),
    };
    let at = |p: &str| format!("/session/{sid}{p}");
    let page = format!("http://127.0.0.1:{rpc}/");
    webdriver(wd, "POST", &at("/url"), Some(json!({ "url": page })));
    let find = |css: &str| {
        let v = webdriver(
            wd,
            "POST",
            &at("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        match v[ELEMENT].as_str() {
            Some(e) => e.to_string(),
            None => panic!(
                "no {css} on the page: {v}\n{}",
                webdriver(wd, "GET", &at("/source"), None)
            ),
        }
    };
    let input = find("#add-link");
    webdriver(
        wd,
        "POST",
        &at(&format!("/element/{input}/value")),
        Some(json!({ "text": torrent_url })),
    );
    let button = find("#add-button");
    webdriver(
        wd,
        "POST",
        &at(&format!("/element/{button}/click")),
        Some(json!({})),
    );

    let script = |js: &str| {
        webdriver(
            wd,
            "POST",
            &at("/execute/sync"),
            Some(json!({ "script": js, "args": [] })),
        )
    };
    wait_until(
        "the page shows the torrent at 100 %",
        scene.deadline,
        || {
            seed.assert_not_failed();
            daemon.proc.assert_not_failed();
            let shown = script(
            "const t = document.querySelector('.torrent'); \
             return t ? [t.querySelector('.name').textContent, t.querySelector('.percent').textContent, \
                         document.getElementById('message').textContent] : null;",
        );
            match shown.as_array() {
                Some(a) if a[1] == "100 %" => {
                    assert_eq!(a[0], scene.payload.name.as_str());
                    Ok(())
                }
                _ => Err(format!("{shown}")),
            }
        },
    );
    scene.payload.assert_exact(&dl);
    // Its files with their wanted boxes, all ticked.
    script("document.querySelector('.torrent details').open = true; return null;");
    let boxes = script(
        "return Array.from(document.querySelectorAll('.torrent table.files input[type=checkbox]')).map(b => b.checked);",
    );
    let files = scene.payload.files.len();
    assert_eq!(boxes, json!(vec![true; files]), "one ticked box per file");

    // A file unticked, one set to high priority, and sequential mode, through the page
    // (clicked by a script: the list is redrawn every second, so a found element may be
    // gone by the time a WebDriver click would reach it).
    script(
        "const boxes = document.querySelectorAll('.torrent table.files input[type=checkbox]'); \
         boxes[boxes.length - 1].click(); return null;",
    );
    script(
        "const s = document.querySelector('.torrent select.priority'); s.value = '1'; \
         s.dispatchEvent(new Event('change')); return null;",
    );
    script("document.querySelector('.torrent input.sequential').click(); return null;");
    wait_until("the daemon took the page's choices", scene.deadline, || {
        let t = &daemon.torrents(&["fileStats", "sequentialDownload"])[0];
        let stats = t["fileStats"].as_array().unwrap();
        let last_unwanted = stats.last().unwrap()["wanted"] == false;
        let first_high = stats[0]["priority"] == 1;
        if last_unwanted && first_high && t["sequentialDownload"] == true {
            Ok(())
        } else {
            Err(format!("{t}"))
        }
    });

    // The same .torrent uploaded through the file field: read by the page, sent as
    // base64 metainfo, recognised as the torrent already there.
    let upload = find("#add-file");
    webdriver(
        wd,
        "POST",
        &at(&format!("/element/{upload}/value")),
        Some(json!({ "text": torrent.to_str().unwrap() })),
    );
    wait_until(
        "the page says the upload is already there",
        scene.deadline,
        || {
            let said = script("return document.getElementById('message').textContent;");
            match said.as_str() {
                Some(t) if t == format!("Already there: {}", scene.payload.name) => Ok(()),
                _ => Err(format!("{said}")),
            }
        },
    );

    // A feed followed through the page shows in its list.
    let feed_url = format!("{}blog.xml", nginx.url());
    let feed_input = find("#feed-url");
    webdriver(
        wd,
        "POST",
        &at(&format!("/element/{feed_input}/value")),
        Some(json!({ "text": feed_url })),
    );
    let follow = find("#feed-button");
    webdriver(
        wd,
        "POST",
        &at(&format!("/element/{follow}/click")),
        Some(json!({})),
    );
    wait_until("the page lists the feed", scene.deadline, || {
        let shown = script("return document.getElementById('feeds').textContent;");
        match shown.as_str() {
            Some(t) if t.contains(&feed_url) => Ok(()),
            _ => Err(format!("{shown}")),
        }
    });
    let feeds = daemon.rpc("feed-get", json!({}));
    assert_eq!(feeds["feeds"][0]["url"], feed_url.as_str());

    let png = webdriver(wd, "GET", &at("/screenshot"), None);
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().expect("base64 PNG"))
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(scene.path("page.png"), &png).unwrap();
    if let Some(to) = std::env::var_os("SHOAL_PAGE_SCREENSHOT") {
        std::fs::write(to, &png).unwrap();
    }
}
