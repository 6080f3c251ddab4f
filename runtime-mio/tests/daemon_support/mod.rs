//! A `shoal daemon` for the tests: started on free ports with its state and download
//! folders in the scene, and spoken to through its Transmission RPC.

#![allow(dead_code)] // each test file uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{free_port, local, Proc};

/// What `shoal daemon` says once its control server listens.
pub const DAEMON_READY: &str = "shoal daemon: control on";

/// A running daemon.
pub struct ShoalDaemon {
    pub proc: Proc,
    pub rpc_port: u16,
    pub state: PathBuf,
    pub downloads: PathBuf,
}

impl ShoalDaemon {
    /// `shoal daemon --state STATE --rpc 127.0.0.1:RPC --download-dir DL` on a free peer
    /// port of 127.0.0.1, named `name` in the logs, once it listens.
    pub fn start(
        name: &str,
        state: &Path,
        downloads: &Path,
        rpc_port: u16,
        log_dir: &Path,
        deadline: std::time::Instant,
    ) -> ShoalDaemon {
        ShoalDaemon::start_with(name, state, downloads, rpc_port, &[], log_dir, deadline)
    }

    /// [`ShoalDaemon::start`] with `extra` arguments.
    pub fn start_with(
        name: &str,
        state: &Path,
        downloads: &Path,
        rpc_port: u16,
        extra: &[&str],
        log_dir: &Path,
        deadline: std::time::Instant,
    ) -> ShoalDaemon {
        let mut cmd = crate::support::shoal_command();
        cmd.arg("daemon")
            .args(extra)
            .arg("--state")
            .arg(state)
            .arg("--rpc")
            .arg(local(rpc_port))
            .arg("--download-dir")
            .arg(downloads)
            .args(["--bind", "127.0.0.1", "--port", &free_port().to_string()]);
        let mut proc = Proc::spawn(name, cmd, log_dir);
        proc.wait_for(DAEMON_READY, deadline);
        ShoalDaemon {
            proc,
            rpc_port,
            state: state.to_path_buf(),
            downloads: downloads.to_path_buf(),
        }
    }

    /// One RPC call (with the session-id exchange); its `arguments`, or panics with the
    /// daemon's `result`.
    pub fn rpc(&self, method: &str, arguments: Value) -> Value {
        let body = json!({ "method": method, "arguments": arguments }).to_string();
        let mut session = String::new();
        for _ in 0..2 {
            let (status, head, answer) = post(self.rpc_port, &body, &session);
            if status == 409 {
                session = head
                    .lines()
                    .find_map(|l| l.strip_prefix("X-Transmission-Session-Id: "))
                    .expect("a 409 hands out the session id")
                    .trim()
                    .to_string();
                continue;
            }
            assert_eq!(status, 200, "{head}\n{answer}");
            let v: Value = serde_json::from_str(&answer).expect("JSON answer");
            assert_eq!(v["result"], "success", "{method}: {v}");
            return v["arguments"].clone();
        }
        panic!("the session id was refused twice");
    }

    /// `torrent-get` of `fields` for every torrent.
    pub fn torrents(&self, fields: &[&str]) -> Vec<Value> {
        let v = self.rpc("torrent-get", json!({ "fields": fields }));
        v["torrents"].as_array().cloned().unwrap_or_default()
    }
}

/// A raw POST of `body` to the RPC on 127.0.0.1:`port`: (status, head, body).
pub fn post(port: u16, body: &str, session: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the daemon");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /transmission/rpc HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         X-Transmission-Session-Id: {session}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, head.to_string(), body.to_string())
}

/// `transmission-remote 127.0.0.1:PORT ARGS…`: its stdout (panics if it fails).
pub fn transmission_remote(port: u16, args: &[&str]) -> String {
    crate::support::run(
        Command::new("transmission-remote")
            .arg(local(port))
            .args(args),
    )
}
