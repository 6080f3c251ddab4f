use serde_json::{json, Value};

use super::*;
use crate::control::{Added, FeedView, FileView, Settings, Stats, Status};

/// A daemon that records what it is asked.
pub struct Fake {
    pub torrents: Vec<TorrentView>,
    pub calls: Vec<String>,
    pub settings: Settings,
}

impl Fake {
    pub fn with_one() -> Fake {
        Fake {
            torrents: vec![view(1, "aa".repeat(20))],
            calls: Vec::new(),
            settings: Settings::default(),
        }
    }
}

pub fn view(id: Id, hash: String) -> TorrentView {
    TorrentView {
        id,
        name: format!("t{id}"),
        hash,
        status: Status::Downloading,
        error: None,
        download_dir: "/d".into(),
        total_size: 1000,
        size_when_done: 800,
        left_until_done: 200,
        have_valid: 700,
        rate_download: 50,
        rate_upload: 0,
        downloaded_ever: 600,
        uploaded_ever: 300,
        peers_connected: 2,
        piece_count: 4,
        piece_size: 256,
        added_date: 1,
        done_date: 0,
        queue_position: 0,
        sequential: false,
        metadata_percent: 1.0,
        files: vec![
            FileView {
                name: format!("t{id}/a"),
                length: 800,
                completed: 600,
                wanted: true,
                priority: 0,
            },
            FileView {
                name: format!("t{id}/b"),
                length: 200,
                completed: 100,
                wanted: false,
                priority: -1,
            },
        ],
        comment: String::new(),
        private: false,
        magnet: String::new(),
    }
}

impl Control for Fake {
    fn add(&mut self, r: AddRequest) -> Result<Added, String> {
        self.calls
            .push(format!("add {:?} paused={}", r.source, r.paused));
        match r.source {
            Source::Magnet(_) => Err("magnet links are not taken yet".into()),
            _ => Ok(Added {
                id: 7,
                name: "new".into(),
                hash: "bb".repeat(20),
                duplicate: false,
            }),
        }
    }
    fn torrents(&mut self) -> Vec<TorrentView> {
        self.torrents.clone()
    }
    fn start(&mut self, ids: &[Id]) {
        self.calls.push(format!("start {ids:?}"));
    }
    fn stop(&mut self, ids: &[Id]) {
        self.calls.push(format!("stop {ids:?}"));
    }
    fn remove(&mut self, ids: &[Id], delete_data: bool) {
        self.calls.push(format!("remove {ids:?} {delete_data}"));
    }
    fn set_files(&mut self, id: Id, c: &FileChange) -> Result<(), String> {
        self.calls.push(format!(
            "set {id} wanted={:?} unwanted={:?} high={:?} seq={:?}",
            c.wanted, c.unwanted, c.high, c.sequential
        ));
        Ok(())
    }
    fn settings(&mut self) -> Settings {
        self.settings.clone()
    }
    fn set_settings(&mut self, s: Settings) {
        self.settings = s;
    }
    fn stats(&mut self) -> Stats {
        Stats {
            torrent_count: self.torrents.len(),
            ..Stats::default()
        }
    }
    fn peer_port(&mut self) -> u16 {
        6881
    }
    fn add_feed(&mut self, url: &str, pattern: Option<&str>) -> Result<FeedView, String> {
        self.calls.push(format!("feed {url} {pattern:?}"));
        Ok(FeedView {
            id: 1,
            url: url.into(),
            pattern: pattern.map(str::to_string),
            taken: 0,
            failures: 0,
            last_error: None,
        })
    }
    fn feeds(&mut self) -> Vec<FeedView> {
        Vec::new()
    }
    fn remove_feeds(&mut self, ids: &[u32]) {
        self.calls.push(format!("unfeed {ids:?}"));
    }
    fn close(&mut self) {
        self.calls.push("close".into());
    }
}

#[test]
fn session_close_stops_the_daemon() {
    let mut fake = Fake::with_one();
    let out = call(&mut fake, json!({"method": "session-close", "tag": 3}));
    assert_eq!(out["result"], "success");
    assert_eq!(out["tag"], 3);
    assert_eq!(fake.calls, vec!["close"]);
}

fn call(fake: &mut Fake, v: Value) -> Value {
    handle(&serde_json::to_vec(&v).unwrap(), fake)
}

#[test]
fn torrent_get_answers_the_fields_asked_for() {
    let mut fake = Fake::with_one();
    let out = call(
        &mut fake,
        json!({"method": "torrent-get", "tag": 5, "arguments": {"fields":
            ["id", "name", "percentDone", "eta", "status", "fileStats", "files", "uploadRatio",
             "peersConnected", "rateDownload", "noSuchField"]}}),
    );
    assert_eq!(out["result"], "success");
    assert_eq!(out["tag"], 5);
    let t = &out["arguments"]["torrents"][0];
    assert_eq!(t["id"], 1);
    assert_eq!(t["percentDone"], 0.75);
    assert_eq!(t["eta"], 4);
    assert_eq!(t["status"], 4);
    assert_eq!(t["uploadRatio"], 0.5);
    assert_eq!(t["peersConnected"], 2);
    assert_eq!(t["files"][1]["name"], "t1/b");
    assert_eq!(
        t["fileStats"][1],
        json!({"bytesCompleted": 100, "wanted": false, "priority": -1})
    );
    assert!(t.get("noSuchField").is_none());
}

#[test]
fn ids_are_numbers_hashes_or_all() {
    let mut fake = Fake::with_one();
    fake.torrents.push(view(2, "cc".repeat(20)));
    call(&mut fake, json!({"method": "torrent-stop"}));
    call(
        &mut fake,
        json!({"method": "torrent-start", "arguments": {"ids": 2}}),
    );
    call(
        &mut fake,
        json!({"method": "torrent-start-now", "arguments": {"ids": ["CC".repeat(20), 1]}}),
    );
    call(
        &mut fake,
        json!({"method": "torrent-remove", "arguments": {"ids": [1], "delete-local-data": true}}),
    );
    assert_eq!(
        fake.calls,
        vec![
            "stop [1, 2]",
            "start [2]",
            "start [2, 1]",
            "remove [1] true"
        ]
    );
    let bad = call(
        &mut fake,
        json!({"method": "torrent-stop", "arguments": {"ids": [-1]}}),
    );
    assert_ne!(bad["result"], "success");
}

#[test]
fn torrent_add_takes_base64_metainfo_filenames_and_magnets() {
    let mut fake = Fake::with_one();
    let out = call(
        &mut fake,
        json!({"method": "torrent-add", "arguments": {"metainfo": "ZDQ6aW5mb2Vl\n", "paused": true}}),
    );
    assert_eq!(out["arguments"]["torrent-added"]["id"], 7);
    let out = call(
        &mut fake,
        json!({"method": "torrent-add", "arguments": {"filename": "http://h/x.torrent"}}),
    );
    assert_eq!(out["result"], "success");
    let out = call(
        &mut fake,
        json!({"method": "torrent-add", "arguments": {"filename": "magnet:?xt=urn:btih:x"}}),
    );
    assert_eq!(out["result"], "magnet links are not taken yet");
    let out = call(
        &mut fake,
        json!({"method": "torrent-add", "arguments": {"metainfo": "not base64!"}}),
    );
    assert!(out["result"].as_str().unwrap().contains("base64"));
    assert_eq!(
        fake.calls,
        vec![
            "add Metainfo([100, 52, 58, 105, 110, 102, 111, 101, 101]) paused=true",
            "add File(\"http://h/x.torrent\") paused=false",
            "add Magnet(\"magnet:?xt=urn:btih:x\") paused=false",
        ]
    );
}

#[test]
fn torrent_set_and_session_set_change_what_they_name() {
    let mut fake = Fake::with_one();
    call(
        &mut fake,
        json!({"method": "torrent-set", "arguments": {"ids": [1], "files-unwanted": [1],
            "files-wanted": [0], "priority-high": [0], "sequentialDownload": true}}),
    );
    assert_eq!(
        fake.calls,
        vec!["set 1 wanted=[0] unwanted=[1] high=[0] seq=Some(true)"]
    );
    let out = call(
        &mut fake,
        json!({"method": "session-set", "arguments": {"speed-limit-down": 2048,
            "speed-limit-down-enabled": true, "download-queue-size": 2}}),
    );
    assert_eq!(out["result"], "success");
    assert_eq!(fake.settings.rate_limits(), (None, Some(2048 * 1024)));
    assert_eq!(fake.settings.download_queue_size, 2);
    let got = call(&mut fake, json!({"method": "session-get"}));
    assert_eq!(got["arguments"]["speed-limit-down"], 2048);
    assert_eq!(got["arguments"]["rpc-version"], RPC_VERSION);
    let bad = call(
        &mut fake,
        json!({"method": "session-set", "arguments": {"speed-limit-up": "fast"}}),
    );
    assert_ne!(bad["result"], "success");
    assert_eq!(
        fake.settings.speed_limit_up,
        Settings::default().speed_limit_up
    );
}

#[test]
fn malformed_calls_get_a_message_not_a_panic() {
    let mut fake = Fake::with_one();
    for body in [
        &b"not json"[..],
        b"[]",
        b"{}",
        b"{\"method\": 3}",
        b"{\"method\": \"torrent-get\"}",
        b"{\"method\": \"torrent-get\", \"arguments\": {\"fields\": \"id\"}}",
        b"{\"method\": \"no-such\"}",
        b"{\"method\": \"torrent-set\", \"arguments\": {\"files-wanted\": [\"x\"]}}",
    ] {
        let out = handle(body, &mut fake);
        let result = out["result"].as_str().unwrap();
        assert_ne!(result, "success", "{}", String::from_utf8_lossy(body));
    }
    assert!(fake.calls.is_empty());
}

#[test]
fn feeds_are_added_listed_and_removed_over_the_rpc() {
    let mut fake = Fake::with_one();
    let out = call(
        &mut fake,
        json!({"method": "feed-add", "arguments": {"url": " http://b/feed.xml ", "match": "video"}}),
    );
    assert_eq!(out["arguments"]["feed-added"]["match"], "video");
    call(
        &mut fake,
        json!({"method": "feed-remove", "arguments": {"ids": [1]}}),
    );
    let out = call(&mut fake, json!({"method": "feed-add", "arguments": {}}));
    assert_ne!(out["result"], "success");
    assert_eq!(
        fake.calls,
        vec!["feed http://b/feed.xml Some(\"video\")", "unfeed [1]"]
    );
}

#[test]
fn torrent_get_answers_a_table_when_asked() {
    let mut fake = Fake::with_one();
    let out = call(
        &mut fake,
        json!({"method": "torrent-get", "arguments": {"format": "table", "fields": ["id", "name", "nope"]}}),
    );
    assert_eq!(
        out["arguments"]["torrents"],
        json!([["id", "name", "nope"], [1, "t1", null]])
    );
}
