//! The Transmission RPC protocol (the part `transmission-remote`, the common remotes and
//! *arr-style tools use), answered from a [`Control`].
//!
//! A call is a JSON object `{"method", "arguments", "tag"}`; the answer is `{"result",
//! "arguments", "tag"}`, `result` being `"success"` or a message. Methods: `torrent-add`
//! (`filename` = path, URL or magnet; `metainfo` = base64), `torrent-get` (the usual
//! fields, as objects or as a table), `torrent-start`/`-start-now`/`-stop`, `torrent-remove` (with
//! `delete-local-data`), `torrent-set` (files wanted and priorities, `sequentialDownload`),
//! `session-get`/`-set`/`-stats`; and shoal's own `feed-add` (`url`, `match`), `feed-get`,
//! `feed-remove` (`ids`). Ids are numbers, info-hash strings, or absent (all).
//! Nothing here panics on a malformed call: it gets a `result` that says what was wrong.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::control::{AddRequest, Control, FileChange, Id, Source, TorrentView};

/// The RPC version spoken (Transmission 4.0's).
pub const RPC_VERSION: u64 = 17;
/// The oldest RPC version whose clients are understood.
pub const RPC_VERSION_MINIMUM: u64 = 14;

/// Answers one call (the body of a `POST /transmission/rpc`).
pub fn handle(body: &[u8], ctrl: &mut dyn Control) -> Value {
    let call: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return json!({ "result": format!("the request is not JSON: {e}") }),
    };
    let tag = call.get("tag").cloned();
    let empty = Map::new();
    let args = call
        .get("arguments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let method = call.get("method").and_then(Value::as_str).unwrap_or("");
    let (result, arguments) = match dispatch(method, args, ctrl) {
        Ok(arguments) => ("success".to_string(), arguments),
        Err(e) => (e, Map::new()),
    };
    let mut out = json!({ "result": result, "arguments": arguments });
    if let Some(tag) = tag {
        out["tag"] = tag;
    }
    out
}

type Args = Map<String, Value>;

fn dispatch(method: &str, args: &Args, ctrl: &mut dyn Control) -> Result<Args, String> {
    match method {
        "torrent-add" => torrent_add(args, ctrl),
        "torrent-get" => torrent_get(args, ctrl),
        "torrent-start" | "torrent-start-now" => {
            let ids = ids(args, ctrl)?;
            ctrl.start(&ids);
            Ok(Args::new())
        }
        "torrent-stop" => {
            let ids = ids(args, ctrl)?;
            ctrl.stop(&ids);
            Ok(Args::new())
        }
        "torrent-remove" => {
            let ids = ids(args, ctrl)?;
            let delete = args
                .get("delete-local-data")
                .is_some_and(|v| v.as_bool().unwrap_or(false));
            ctrl.remove(&ids, delete);
            Ok(Args::new())
        }
        "torrent-set" => torrent_set(args, ctrl),
        "session-get" => Ok(session_get(ctrl)),
        "session-set" => session_set(args, ctrl),
        "session-stats" => Ok(session_stats(ctrl)),
        "session-close" => {
            ctrl.close();
            Ok(Args::new())
        }
        "feed-add" => feed_add(args, ctrl),
        "feed-get" => Ok(feed_get(ctrl)),
        "feed-remove" => {
            let ids = indices(args, "ids")?;
            let ids: Vec<u32> = ids
                .into_iter()
                .filter_map(|i| u32::try_from(i).ok())
                .collect();
            ctrl.remove_feeds(&ids);
            Ok(Args::new())
        }
        "" => Err("no method named".into()),
        other => Err(format!("method {other:?} is not supported")),
    }
}

/// The torrents an `ids` argument names: all when absent (or `recently-active`).
fn ids(args: &Args, ctrl: &mut dyn Control) -> Result<Vec<Id>, String> {
    let known: Vec<(Id, String)> = ctrl
        .torrents()
        .iter()
        .map(|t| (t.id, t.hash.clone()))
        .collect();
    let one = |v: &Value| -> Result<Option<Id>, String> {
        match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| Id::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("bad id {n}")),
            Value::String(s) => Ok(known
                .iter()
                .find(|(_, h)| h.eq_ignore_ascii_case(s))
                .map(|(id, _)| *id)),
            other => Err(format!("bad id {other}")),
        }
    };
    match args.get("ids") {
        None => Ok(known.iter().map(|(id, _)| *id).collect()),
        Some(Value::String(s)) if s == "recently-active" => {
            Ok(known.iter().map(|(id, _)| *id).collect())
        }
        Some(Value::Array(list)) => {
            let mut out = Vec::new();
            for v in list {
                out.extend(one(v)?);
            }
            Ok(out)
        }
        Some(v) => Ok(one(v)?.into_iter().collect()),
    }
}

fn indices(args: &Args, key: &str) -> Result<Vec<usize>, String> {
    match args.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| format!("{key}: {v} is not a file index"))
            })
            .collect(),
        Some(v) => Err(format!("{key}: {v} is not a list of file indices")),
    }
}

fn torrent_add(args: &Args, ctrl: &mut dyn Control) -> Result<Args, String> {
    let source = if let Some(meta) = args.get("metainfo").and_then(Value::as_str) {
        let cleaned: String = meta.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(cleaned)
            .map_err(|e| format!("metainfo is not base64: {e}"))?;
        Source::Metainfo(bytes)
    } else if let Some(name) = args.get("filename").and_then(Value::as_str) {
        Source::from_filename(name.trim())
    } else {
        return Err("torrent-add needs a filename or a metainfo".into());
    };
    let mut req = AddRequest::new(source);
    req.download_dir = args
        .get("download-dir")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    req.paused = args
        .get("paused")
        .is_some_and(|v| v.as_bool().unwrap_or(false) || v.as_i64() == Some(1));
    req.unwanted = indices(args, "files-unwanted")?;
    req.priority_high = indices(args, "priority-high")?;
    req.priority_low = indices(args, "priority-low")?;
    req.sequential = args
        .get("sequentialDownload")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let added = ctrl.add(req)?;
    let key = if added.duplicate {
        "torrent-duplicate"
    } else {
        "torrent-added"
    };
    let mut out = Args::new();
    out.insert(
        key.into(),
        json!({ "id": added.id, "name": added.name, "hashString": added.hash }),
    );
    Ok(out)
}

fn torrent_get(args: &Args, ctrl: &mut dyn Control) -> Result<Args, String> {
    let fields: Vec<&str> = match args.get("fields") {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err("torrent-get needs a list of fields".into()),
    };
    let wanted_ids = match args.get("ids") {
        None => None,
        Some(_) => Some(ids(args, ctrl)?),
    };
    let chosen: Vec<TorrentView> = ctrl
        .torrents()
        .into_iter()
        .filter(|t| wanted_ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .collect();
    // `"format": "table"` (Transmission 4's web client): a row of the field names, then a
    // row of values per torrent (a field shoal does not know is null).
    let table = args.get("format").and_then(Value::as_str) == Some("table");
    let torrents: Vec<Value> = if table {
        let names = Value::Array(fields.iter().map(|f| json!(f)).collect());
        std::iter::once(names)
            .chain(chosen.iter().map(|t| {
                Value::Array(
                    fields
                        .iter()
                        .map(|f| field(t, f).unwrap_or(Value::Null))
                        .collect(),
                )
            }))
            .collect()
    } else {
        chosen
            .iter()
            .map(|t| {
                let mut o = Map::new();
                for f in &fields {
                    if let Some(v) = field(t, f) {
                        o.insert((*f).to_string(), v);
                    }
                }
                Value::Object(o)
            })
            .collect()
    };
    let mut out = Args::new();
    out.insert("torrents".into(), Value::Array(torrents));
    if args.get("ids").and_then(Value::as_str) == Some("recently-active") {
        out.insert("removed".into(), json!([]));
    }
    Ok(out)
}

/// One `torrent-get` field of a torrent; `None` for a field shoal does not know.
pub fn field(t: &TorrentView, name: &str) -> Option<Value> {
    let active = matches!(
        t.status,
        crate::control::Status::Downloading | crate::control::Status::Seeding
    );
    Some(match name {
        "id" => json!(t.id),
        "name" => json!(t.name),
        "hashString" => json!(t.hash),
        "status" => json!(t.status as u8),
        "error" => json!(if t.error.is_some() { 3 } else { 0 }),
        "errorString" => json!(t.error.clone().unwrap_or_default()),
        "downloadDir" => json!(t.download_dir),
        "totalSize" => json!(t.total_size),
        "sizeWhenDone" => json!(t.size_when_done),
        "leftUntilDone" => json!(t.left_until_done),
        "haveValid" => json!(t.have_valid),
        "haveUnchecked" | "corruptEver" | "recheckProgress" | "webseedsSendingToUs" => json!(0),
        "desiredAvailable" => json!(if t.peers_connected > 0 {
            t.left_until_done
        } else {
            0
        }),
        "percentDone" => json!(t.percent_done()),
        "percentComplete" => json!(t.have_valid as f64 / t.total_size.max(1) as f64),
        "metadataPercentComplete" => json!(t.metadata_percent),
        "rateDownload" => json!(t.rate_download),
        "rateUpload" => json!(t.rate_upload),
        "downloadedEver" => json!(t.downloaded_ever),
        "uploadedEver" => json!(t.uploaded_ever),
        "uploadRatio" => json!(t.upload_ratio()),
        "eta" | "etaIdle" => json!(if name == "eta" { t.eta() } else { -1 }),
        "peersConnected" => json!(t.peers_connected),
        "peersGettingFromUs" => json!(if t.rate_upload > 0 {
            t.peers_connected
        } else {
            0
        }),
        "peersSendingToUs" => json!(if t.rate_download > 0 {
            t.peers_connected
        } else {
            0
        }),
        "pieceCount" => json!(t.piece_count),
        "pieceSize" => json!(t.piece_size),
        "addedDate" => json!(t.added_date),
        "doneDate" => json!(t.done_date),
        "startDate" | "activityDate" => json!(if active { t.added_date } else { 0 }),
        "isFinished" => json!(false),
        "isStalled" => json!(false),
        "isPrivate" => json!(t.private),
        "queuePosition" => json!(t.queue_position),
        "sequentialDownload" => json!(t.sequential),
        "comment" => json!(t.comment),
        "magnetLink" => json!(t.magnet),
        "files" => Value::Array(
            t.files
                .iter()
                .map(|f| json!({ "name": f.name, "length": f.length, "bytesCompleted": f.completed }))
                .collect(),
        ),
        "fileStats" => Value::Array(
            t.files
                .iter()
                .map(|f| json!({ "bytesCompleted": f.completed, "wanted": f.wanted, "priority": f.priority }))
                .collect(),
        ),
        "wanted" => Value::Array(t.files.iter().map(|f| json!(u8::from(f.wanted))).collect()),
        "priorities" => Value::Array(t.files.iter().map(|f| json!(f.priority)).collect()),
        "peers" | "trackers" | "trackerStats" | "webseeds" | "labels" => json!([]),
        "seedRatioMode" | "seedIdleMode" | "bandwidthPriority" => json!(0),
        "seedRatioLimit" => json!(0.0),
        "honorsSessionLimits" => json!(true),
        _ => return None,
    })
}

fn torrent_set(args: &Args, ctrl: &mut dyn Control) -> Result<Args, String> {
    let ids = ids(args, ctrl)?;
    let change = FileChange {
        wanted: indices(args, "files-wanted")?,
        unwanted: indices(args, "files-unwanted")?,
        high: indices(args, "priority-high")?,
        normal: indices(args, "priority-normal")?,
        low: indices(args, "priority-low")?,
        sequential: args.get("sequentialDownload").and_then(Value::as_bool),
    };
    for id in ids {
        ctrl.set_files(id, &change)?;
    }
    Ok(Args::new())
}

fn session_get(ctrl: &mut dyn Control) -> Args {
    let s = ctrl.settings();
    let port = ctrl.peer_port();
    let v = json!({
        "download-dir": s.download_dir,
        "speed-limit-down": s.speed_limit_down / 1024,
        "speed-limit-down-enabled": s.speed_limit_down_enabled,
        "speed-limit-up": s.speed_limit_up / 1024,
        "speed-limit-up-enabled": s.speed_limit_up_enabled,
        "download-queue-size": s.download_queue_size,
        "download-queue-enabled": s.download_queue_enabled,
        "peer-limit-global": s.peer_limit_global,
        "peer-limit-per-torrent": s.peer_limit_per_torrent,
        "peer-port": port,
        "rpc-version": RPC_VERSION,
        "rpc-version-minimum": RPC_VERSION_MINIMUM,
        "rpc-version-semver": "5.3.0",
        "version": concat!("shoal ", env!("CARGO_PKG_VERSION")),
        "units": {
            "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"], "speed-bytes": 1024,
            "size-units": ["kB", "MB", "GB", "TB"], "size-bytes": 1024,
            "memory-units": ["KiB", "MiB", "GiB", "TiB"], "memory-bytes": 1024
        },
        "dht-enabled": false, "pex-enabled": false, "lpd-enabled": false, "utp-enabled": false,
        "encryption": "tolerated",
        "seed-queue-enabled": false, "seedRatioLimited": false,
        "start-added-torrents": true,
    });
    match v {
        Value::Object(m) => m,
        _ => Args::new(),
    }
}

fn session_set(args: &Args, ctrl: &mut dyn Control) -> Result<Args, String> {
    let mut s = ctrl.settings();
    let kib = |key: &str| -> Result<Option<u64>, String> {
        match args.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| n.checked_mul(1024))
                .map(Some)
                .ok_or_else(|| format!("{key}: {v} is not a speed in kB/s")),
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, String> {
        match args.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(format!("{key}: {v} is not true or false")),
        }
    };
    let count = |key: &str| -> Result<Option<usize>, String> {
        match args.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .map(Some)
                .ok_or_else(|| format!("{key}: {v} is not a positive number")),
        }
    };
    if let Some(v) = kib("speed-limit-down")? {
        s.speed_limit_down = v;
    }
    if let Some(v) = kib("speed-limit-up")? {
        s.speed_limit_up = v;
    }
    if let Some(v) = flag("speed-limit-down-enabled")? {
        s.speed_limit_down_enabled = v;
    }
    if let Some(v) = flag("speed-limit-up-enabled")? {
        s.speed_limit_up_enabled = v;
    }
    if let Some(v) = flag("download-queue-enabled")? {
        s.download_queue_enabled = v;
    }
    if let Some(v) = count("download-queue-size")? {
        s.download_queue_size = v;
    }
    if let Some(v) = count("peer-limit-global")? {
        s.peer_limit_global = v;
    }
    if let Some(v) = count("peer-limit-per-torrent")? {
        s.peer_limit_per_torrent = v;
    }
    if let Some(v) = args.get("download-dir") {
        match v.as_str() {
            Some(dir) if dir.starts_with('/') => s.download_dir = dir.to_string(),
            _ => return Err(format!("download-dir: {v} is not an absolute path")),
        }
    }
    ctrl.set_settings(s);
    Ok(Args::new())
}

fn feed_json(f: &crate::feed::FeedView) -> Value {
    json!({ "id": f.id, "url": f.url, "match": f.pattern, "taken": f.taken,
            "failures": f.failures, "error": f.last_error })
}

/// `feed-add` (shoal's own method): `url`, and `match`, a regular expression on titles.
fn feed_add(args: &Args, ctrl: &mut dyn Control) -> Result<Args, String> {
    let url = args
        .get("url")
        .and_then(Value::as_str)
        .ok_or("feed-add needs a url")?;
    let pattern = args
        .get("match")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let f = ctrl.add_feed(url.trim(), pattern)?;
    let mut out = Args::new();
    out.insert("feed-added".into(), feed_json(&f));
    Ok(out)
}

fn feed_get(ctrl: &mut dyn Control) -> Args {
    let mut out = Args::new();
    out.insert(
        "feeds".into(),
        Value::Array(ctrl.feeds().iter().map(feed_json).collect()),
    );
    out
}

fn session_stats(ctrl: &mut dyn Control) -> Args {
    let s = ctrl.stats();
    let totals = json!({
        "uploadedBytes": s.uploaded, "downloadedBytes": s.downloaded,
        "filesAdded": s.files_added, "sessionCount": 1, "secondsActive": s.seconds_active
    });
    let v = json!({
        "activeTorrentCount": s.active_torrent_count,
        "pausedTorrentCount": s.paused_torrent_count,
        "torrentCount": s.torrent_count,
        "downloadSpeed": s.download_speed,
        "uploadSpeed": s.upload_speed,
        "current-stats": totals.clone(),
        "cumulative-stats": totals,
    });
    match v {
        Value::Object(m) => m,
        _ => Args::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
