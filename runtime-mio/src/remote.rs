//! `shoal add`, `list`, `pause`, `resume`, `remove` and `install-handler`: the commands
//! that talk to a running daemon.
//!
//! They find it through its state folder (the address it bound is in `rpc-address`, its
//! generated credentials, if any, in `rpc-auth`) and speak the Transmission RPC to it like
//! any remote, session-id exchange included. `shoal add` starts a daemon on that state
//! folder when none answers, so a clicked link works with nothing running.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use shoal_daemon::state::StateDir;

use crate::say;

/// How long `shoal add` waits for a daemon it started to answer.
const START_WAIT: Duration = Duration::from_secs(20);
/// How long a call may take (an add by URL fetches first).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// An HTTP answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A running daemon's control address and credentials.
pub struct Daemon {
    addr: SocketAddr,
    auth: Option<String>,
}

impl Daemon {
    /// The daemon of `dir` if one answers there.
    pub fn find(dir: &StateDir) -> Option<Daemon> {
        let text = std::fs::read_to_string(dir.address_file()).ok()?;
        let addr: SocketAddr = text.trim().parse().ok()?;
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        let auth = std::fs::read_to_string(dir.auth_file())
            .ok()
            .map(|s| s.trim().to_string());
        Some(Daemon { addr, auth })
    }

    /// The daemon of `dir`, started (in the background, its messages in
    /// `dir/daemon.log`) if none answers.
    pub fn find_or_start(dir: &StateDir) -> Result<Daemon, String> {
        if let Some(d) = Daemon::find(dir) {
            return Ok(d);
        }
        std::fs::create_dir_all(dir.root())
            .map_err(|e| format!("{}: {e}", dir.root().display()))?;
        let log_path = dir.root().join("daemon.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find shoal itself: {e}"))?;
        let _ = std::fs::remove_file(dir.address_file());
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(exe)
            .arg("daemon")
            .arg("--state")
            .arg(dir.root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a Ctrl-C meant for the caller does not stop it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the daemon: {e}"))?;
        say::err_line(&format!(
            "started a shoal daemon (state in {}, messages in {})",
            dir.root().display(),
            log_path.display()
        ));
        let deadline = Instant::now() + START_WAIT;
        while Instant::now() < deadline {
            if let Some(d) = Daemon::find(dir) {
                return Ok(d);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let last = log.lines().last().unwrap_or("").to_string();
                return Err(format!("the daemon stopped at once ({status}): {last}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the daemon did not start in {} s; see {}",
            START_WAIT.as_secs(),
            log_path.display()
        ))
    }

    /// Its control address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One RPC call: its `arguments` on success, its `result` as the error otherwise.
    pub fn call(&self, method: &str, arguments: Value) -> Result<Value, String> {
        let body = serde_json::to_vec(&json!({ "method": method, "arguments": arguments }))
            .map_err(|e| e.to_string())?;
        let mut session = String::new();
        for _ in 0..2 {
            let (status, headers, answer) = self.post(&body, &session)?;
            if status == 409 {
                session = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(shoal_daemon::guard::SESSION_HEADER))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                continue;
            }
            if status != 200 {
                return Err(format!(
                    "the daemon at {} answered {status}: {}",
                    self.addr,
                    String::from_utf8_lossy(&answer).trim()
                ));
            }
            let v: Value = serde_json::from_slice(&answer)
                .map_err(|e| format!("the daemon's answer is not JSON: {e}"))?;
            return match v["result"].as_str() {
                Some("success") => Ok(v["arguments"].clone()),
                Some(why) => Err(why.to_string()),
                None => Err("the daemon's answer has no result".into()),
            };
        }
        Err("the daemon kept refusing the session id".into())
    }

    fn post(&self, body: &[u8], session: &str) -> Result<Answer, String> {
        let fail = |e: std::io::Error| format!("talking to the daemon at {}: {e}", self.addr);
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).map_err(fail)?;
        s.set_read_timeout(Some(CALL_TIMEOUT)).map_err(fail)?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            shoal_daemon::api::RPC_PATH,
            self.addr,
            body.len()
        );
        if !session.is_empty() {
            head.push_str(&format!(
                "{}: {session}\r\n",
                shoal_daemon::guard::SESSION_HEADER
            ));
        }
        if let Some(auth) = &self.auth {
            let b64 = base64::engine::general_purpose::STANDARD.encode(auth);
            head.push_str(&format!("Authorization: Basic {b64}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(fail)?;
        s.write_all(body).map_err(fail)?;
        let mut raw = Vec::new();
        s.take(64 << 20).read_to_end(&mut raw).map_err(fail)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| "the daemon's answer is not HTTP".to_string())?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| "the daemon's answer is not HTTP".to_string())?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok((status, headers, raw[split + 4..].to_vec()))
    }
}

/// `shoal add TORRENT|URL|MAGNET`.
pub fn add(dir: &StateDir, what: &str) -> Result<(), String> {
    // `file://` URLs are what some browsers and file managers hand a handler.
    let what = what.strip_prefix("file://").map_or(what.to_string(), |p| {
        String::from_utf8_lossy(&shoal_core::percent::percent_decode_lenient(p.as_bytes()))
            .into_owned()
    });
    let args = if Path::new(&what).is_file() {
        // Sent as bytes, so the daemon needs no access to the caller's files.
        let bytes = std::fs::read(&what).map_err(|e| format!("{what}: {e}"))?;
        if bytes.len() as u64 > shoal_io::MAX_TORRENT_FILE {
            return Err(format!("{what}: too large for a .torrent"));
        }
        json!({ "metainfo": base64::engine::general_purpose::STANDARD.encode(bytes) })
    } else {
        json!({ "filename": what })
    };
    let daemon = Daemon::find_or_start(dir)?;
    let r = daemon.call("torrent-add", args)?;
    if let Some(t) = r.get("torrent-added") {
        say::out_line(&format!(
            "added {}: {}",
            t["id"],
            t["name"].as_str().unwrap_or("")
        ));
    } else if let Some(t) = r.get("torrent-duplicate") {
        say::out_line(&format!(
            "already there as {}: {}",
            t["id"],
            t["name"].as_str().unwrap_or("")
        ));
    }
    Ok(())
}

fn running(dir: &StateDir) -> Result<Daemon, String> {
    Daemon::find(dir).ok_or_else(|| {
        format!(
            "no shoal daemon runs on {} (start one with `shoal daemon`)",
            dir.root().display()
        )
    })
}

/// `shoal list`: one line per torrent.
pub fn list(dir: &StateDir) -> Result<(), String> {
    let daemon = running(dir)?;
    let fields = [
        "id",
        "name",
        "percentDone",
        "status",
        "rateDownload",
        "rateUpload",
        "peersConnected",
        "eta",
        "sizeWhenDone",
        "uploadRatio",
        "errorString",
    ];
    let r = daemon.call("torrent-get", json!({ "fields": fields }))?;
    let empty = Vec::new();
    let torrents = r["torrents"].as_array().unwrap_or(&empty);
    say::out_line(&format!(
        "{:>4}  {:>6}  {:>9}  {:>9}  {:>9}  {:>5}  {:>5}  {:<11}  name",
        "id", "done", "size", "down/s", "up/s", "peers", "ratio", "status"
    ));
    for t in torrents {
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        let status = match n("status") {
            0 => "stopped",
            1 => "check wait",
            2 => "checking",
            3 => "queued",
            4 => "downloading",
            5 => "seed wait",
            _ => "seeding",
        };
        let ratio = t["uploadRatio"].as_f64().unwrap_or(-1.0);
        let mut line = format!(
            "{:>4}  {:>5.1}%  {:>9}  {:>9}  {:>9}  {:>5}  {:>5}  {:<11}  {}",
            n("id"),
            (t["percentDone"].as_f64().unwrap_or(0.0) * 100.0 * 10.0).floor() / 10.0,
            shoal_io::human(n("sizeWhenDone")),
            shoal_io::human(n("rateDownload")),
            shoal_io::human(n("rateUpload")),
            n("peersConnected"),
            if ratio < 0.0 {
                "-".to_string()
            } else {
                format!("{ratio:.2}")
            },
            status,
            t["name"].as_str().unwrap_or("")
        );
        if let Some(e) = t["errorString"].as_str().filter(|e| !e.is_empty()) {
            line.push_str(&format!("  ({e})"));
        }
        say::out_line(&line);
    }
    Ok(())
}

/// `shoal pause|resume|remove ID…`.
pub fn act(dir: &StateDir, method: &str, ids: &[u32], delete: bool) -> Result<(), String> {
    let daemon = running(dir)?;
    let mut args = json!({ "ids": ids });
    if delete {
        args["delete-local-data"] = json!(true);
    }
    daemon.call(method, args)?;
    Ok(())
}

/// `shoal files ID`: one line per file.
pub fn files(dir: &StateDir, id: u32) -> Result<(), String> {
    let daemon = running(dir)?;
    let r = daemon.call(
        "torrent-get",
        json!({ "ids": [id], "fields": ["files", "fileStats", "sequentialDownload"] }),
    )?;
    let t = r["torrents"]
        .get(0)
        .ok_or_else(|| format!("no torrent {id}"))?;
    let empty = Vec::new();
    let files = t["files"].as_array().unwrap_or(&empty);
    let stats = t["fileStats"].as_array().unwrap_or(&empty);
    say::out_line(&format!(
        "{:>4}  {:>6}  {:>9}  {:<6}  {:<8}  name",
        "file", "done", "size", "wanted", "priority"
    ));
    for (i, (f, st)) in files.iter().zip(stats).enumerate() {
        let len = f["length"].as_u64().unwrap_or(0);
        let done = f["bytesCompleted"].as_u64().unwrap_or(0);
        let pct = if len == 0 {
            100.0
        } else {
            (done as f64 * 1000.0 / len as f64).floor() / 10.0
        };
        let priority = match st["priority"].as_i64() {
            Some(1) => "high",
            Some(-1) => "low",
            _ => "normal",
        };
        say::out_line(&format!(
            "{i:>4}  {pct:>5.1}%  {:>9}  {:<6}  {priority:<8}  {}",
            shoal_io::human(len),
            if st["wanted"].as_bool().unwrap_or(true) {
                "yes"
            } else {
                "no"
            },
            f["name"].as_str().unwrap_or("")
        ));
    }
    if t["sequentialDownload"].as_bool() == Some(true) {
        say::out_line("sequential: pieces are downloaded in order");
    }
    Ok(())
}

/// `shoal set ID …`: a `torrent-set` call.
pub fn set(dir: &StateDir, args: Value) -> Result<(), String> {
    running(dir)?.call("torrent-set", args)?;
    Ok(())
}

/// `shoal feed add URL [--match REGEX]`.
pub fn feed_add(dir: &StateDir, url: &str, pattern: Option<&str>) -> Result<(), String> {
    let daemon = running(dir)?;
    let mut args = json!({ "url": url });
    if let Some(p) = pattern {
        args["match"] = json!(p);
    }
    let r = daemon.call("feed-add", args)?;
    say::out_line(&format!(
        "following feed {}: {}",
        r["feed-added"]["id"],
        r["feed-added"]["url"].as_str().unwrap_or("")
    ));
    Ok(())
}

/// `shoal feed list`.
pub fn feed_list(dir: &StateDir) -> Result<(), String> {
    let daemon = running(dir)?;
    let r = daemon.call("feed-get", json!({}))?;
    let empty = Vec::new();
    for f in r["feeds"].as_array().unwrap_or(&empty) {
        let mut line = format!(
            "{:>4}  {}  taken {}",
            f["id"],
            f["url"].as_str().unwrap_or(""),
            f["taken"]
        );
        if let Some(m) = f["match"].as_str() {
            line.push_str(&format!("  match {m:?}"));
        }
        if let Some(e) = f["error"].as_str() {
            line.push_str(&format!("  (last error: {e})"));
        }
        say::out_line(&line);
    }
    Ok(())
}

/// `shoal feed remove ID…`.
pub fn feed_remove(dir: &StateDir, ids: &[u32]) -> Result<(), String> {
    running(dir)?.call("feed-remove", json!({ "ids": ids }))?;
    Ok(())
}

/// `shoal install-handler [--uninstall]`: the desktop entry in
/// `$XDG_DATA_HOME/applications` (or `~/.local/share/applications`), registered with
/// xdg-mime as the default for torrents and magnet links.
pub fn install_handler(uninstall: bool) -> Result<(), String> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| "no data folder: set XDG_DATA_HOME or HOME".to_string())?;
    let apps = data.join("applications");
    let path = apps.join(shoal_daemon::desktop::FILE_NAME);
    if uninstall {
        match std::fs::remove_file(&path) {
            Ok(()) => say::out_line(&format!("removed {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                say::out_line(&format!("{} was not installed", path.display()))
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        // Let the desktop forget it (best effort: the tool may be missing).
        let _ = Command::new("update-desktop-database").arg(&apps).status();
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find shoal itself: {e}"))?;
    let entry = shoal_daemon::desktop::entry(&exe.to_string_lossy());
    shoal_daemon::state::write_atomic(&path, entry.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let status = Command::new("xdg-mime")
        .arg("default")
        .arg(shoal_daemon::desktop::FILE_NAME)
        .args(shoal_daemon::desktop::MIME_TYPES)
        .status()
        .map_err(|e| format!("cannot run xdg-mime (install xdg-utils): {e}"))?;
    if !status.success() {
        return Err(format!("xdg-mime default failed ({status})"));
    }
    let _ = Command::new("update-desktop-database").arg(&apps).status();
    say::out_line(&format!(
        "installed {}: .torrent files and magnet links now open with `shoal add`",
        path.display()
    ));
    Ok(())
}
