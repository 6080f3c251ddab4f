//! Helpers for the interop tests: real BitTorrent clients on loopback.
//!
//! - [`Proc`] runs one client and owns it: its output goes to a log file (and is kept in
//!   memory to wait for a line), and dropping it kills and reaps the process. When a test
//!   fails, every process it started prints the tail of its log, so the failure explains
//!   itself.
//! - [`Payload`] is a multi-file content with the awkward cases (odd sizes, an empty file,
//!   files smaller than a piece, a name with a space) and checks a downloaded copy byte for
//!   byte.
//! - [`Tracker`] is a local opentracker with a whitelist; [`free_port`] hands out ports.
//! - [`counting_server`] is a web seed that counts connections and requests, and keeps
//!   them alive or closes them in the ways servers do.
//! - One constructor per client: `shoal`, libtorrent (through `lt.py`), transmission-cli,
//!   aria2c.
//!
//! Everything listens on 127.0.0.1 only and every wait is bounded. A missing tool fails the
//! test with a hint to run `scripts/test`, which installs the clients: never a skip.

#![allow(dead_code)] // each test file uses a part

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// libtorrent helper (see its docstring), run with Debian's python3.
pub const LT_PY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../runtime-mio/tests/support/lt.py"
);
/// The `shoal` binary: set in runtime-mio's own tests; other crates that include this
/// module (runtime-async-std's) drive their own client and never run it.
pub const SHOAL: &str = match option_env!("CARGO_BIN_EXE_shoal") {
    Some(path) => path,
    None => "shoal",
};
pub const PYTHON: &str = "/usr/bin/python3";

/// `shoal` with no DHT router to start from (`SHOAL_DHT_BOOTSTRAP` empty), so no test's
/// shoal sends anything beyond this machine; tests of the DHT give `--dht-bootstrap`.
pub fn shoal_command() -> Command {
    let mut cmd = Command::new(SHOAL);
    cmd.env("SHOAL_DHT_BOOTSTRAP", "");
    cmd
}

/// The bound on every test: generous, because transmission waits ~10 s before its first
/// request and the machine may be busy with other tests.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

const INSTALL_HINT: &str = "run scripts/test, which installs the interop tools \
     (python3-libtorrent transmission-cli aria2 mktorrent opentracker nginx python3-feedparser)";

// ---------------------------------------------------------------------------------------
// Ports

/// A TCP and UDP port on 127.0.0.1 that was free a moment ago and that no other test of
/// this process has been given.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..100 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().unwrap().port();
        // UDP too: opentracker takes both, transmission a UDP socket on its peer port.
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap();
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no free port found on 127.0.0.1");
}

// ---------------------------------------------------------------------------------------
// Processes

/// A running process that is killed and reaped when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The threads reading its stdout and stderr; they end when the pipes close.
    readers: Vec<std::thread::JoinHandle<()>>,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `cmd` with stdin closed and its stdout and stderr captured to `log_dir/name.log`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Proc {
        if !cmd.get_envs().any(|(k, _)| k == "SHOAL_DHT_BOOTSTRAP") {
            // Whatever it is, nothing it starts reaches the well-known DHT routers.
            cmd.env("SHOAL_DHT_BOOTSTRAP", "");
        }
        let log = log_dir.join(format!("{name}.log"));
        let file = Arc::new(Mutex::new(
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display())),
        ));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {INSTALL_HINT}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        let readers = [out, err]
            .into_iter()
            .map(|pipe| {
                let (lines, file) = (lines.clone(), file.clone());
                std::thread::spawn(move || collect_lines(pipe, &lines, &file))
            })
            .collect();
        Proc {
            name: name.to_string(),
            child,
            lines,
            readers,
            log,
            status: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits until it exits, at most until `deadline`, and until every line it wrote is in
    /// [`said`](Self::said); panics (with its log) if it is still running then.
    pub fn wait_exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(s) = self.try_status() {
                // Its last words may still be in the pipe.
                self.drain(deadline);
                return s;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} still running after the test's time limit\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until it exits and asserts it succeeded.
    pub fn wait_success(&mut self, deadline: Instant) {
        let status = self.wait_exit(deadline);
        assert!(
            status.success(),
            "{} failed ({status})\n{}",
            self.name,
            self.tail(60)
        );
    }

    /// Waits until it exits, failing as soon as `watched` fails meanwhile (a seed it
    /// downloads from, say), and asserts that it succeeded.
    pub fn wait_success_watching(&mut self, watched: &mut Proc, deadline: Instant) {
        let what = format!("{} to finish", self.name);
        wait_until(&what, deadline, || {
            watched.assert_not_failed();
            match self.try_status() {
                Some(_) => Ok(()),
                None => Err("still running".into()),
            }
        });
        self.wait_success(deadline);
    }

    /// The lines of its output that contain `needle`, in order.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Whether a line of its output contains `needle`.
    pub fn said(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Waits for a line of output containing `needle`; panics if the process exits first or
    /// `deadline` passes.
    pub fn wait_for(&mut self, needle: &str, deadline: Instant) {
        loop {
            if self.said(needle) {
                return;
            }
            if self.try_status().is_some() {
                let s = self.wait_exit(deadline);
                if self.said(needle) {
                    return;
                }
                panic!(
                    "{} exited ({s}) before saying {needle:?}\n{}",
                    self.name,
                    self.tail(60)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not say {needle:?} in time\n{}",
                    self.name,
                    self.tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a line of output for which `pred` holds and returns it; panics if the
    /// process exits first or `deadline` passes. `what` names the line for the message.
    pub fn wait_for_line(
        &mut self,
        what: &str,
        deadline: Instant,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        loop {
            let found = self.lines.lock().unwrap().iter().find(|l| pred(l)).cloned();
            if let Some(line) = found {
                return line;
            }
            if let Some(s) = self.try_status() {
                panic!(
                    "{} exited ({s}) before {what}\n{}",
                    self.name,
                    self.tail(60)
                );
            }
            if Instant::now() >= deadline {
                panic!("{}: no {what} in time\n{}", self.name, self.tail(60));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it with SIGKILL (no chance to save anything) and reaps it.
    pub fn kill_now(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Fails the test if it has exited with an error (it may still be running).
    pub fn assert_not_failed(&mut self) {
        if let Some(s) = self.try_status() {
            assert!(s.success(), "{} failed ({s})\n{}", self.name, self.tail(60));
        }
    }

    /// The last `n` lines of its output, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().unwrap();
        let start = lines.len().saturating_sub(n);
        let mut s = format!(
            "---- last {} lines of {} (full log: {}) ----\n",
            lines.len() - start,
            self.name,
            self.log.display()
        );
        for l in &lines[start..] {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// Once it has exited: waits (until `deadline` at most) for the readers to reach the
    /// end of its pipes, so every line it wrote is in [`said`](Self::said).
    pub fn drain(&mut self, deadline: Instant) {
        while Instant::now() < deadline && !self.readers.iter().all(|r| r.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM (a clean stop for shoal) and waits up to `grace` for the exit and its
    /// last words (as [`wait_exit`](Self::wait_exit) does).
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.try_status().is_none() {
            // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
            unsafe { kill(self.child.id() as i32, 15) };
        }
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if self.try_status().is_some() {
                return Some(self.wait_exit(until));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.tail(40));
        }
    }
}

/// Reads a pipe to its end, splitting on `\n` and `\r` (progress lines redraw with `\r`).
fn collect_lines(
    mut pipe: Box<dyn Read + Send>,
    lines: &Mutex<Vec<String>>,
    file: &Mutex<std::fs::File>,
) {
    let mut buf = [0u8; 8192];
    let mut partial = Vec::new();
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = file.lock().unwrap().write_all(&buf[..n]);
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                if !partial.is_empty() {
                    let line = String::from_utf8_lossy(&partial).trim_end().to_string();
                    if !line.is_empty() {
                        lines.lock().unwrap().push(line);
                    }
                    partial.clear();
                }
            } else {
                partial.push(b);
            }
        }
    }
    if !partial.is_empty() {
        lines
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&partial).into_owned());
    }
}

/// Runs a short command to completion and returns its stdout; panics with its output if it
/// fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmpfs of a given size mounted on a folder for a test (root: scripts/test runs as
/// root, as CI does), lazily unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`1m`) on `at`, made if missing; panics with mount's output
    /// if it fails.
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at));
        Tmpfs(at.to_path_buf())
    }

    /// Room made: the same file system, grown to `size`.
    pub fn grow(&self, size: &str) {
        run(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Polls `check` every 100 ms until it returns `Ok`, or panics at `deadline` with its last
/// complaint. (`check` may panic itself, e.g. when a process it watches died.)
pub fn wait_until(what: &str, deadline: Instant, mut check: impl FnMut() -> Result<(), String>) {
    loop {
        let why = match check() {
            Ok(()) => return,
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            panic!("{what}: not done in time; last: {why}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// Content

/// A folder of files with the cases that break naive piece ↔ file mapping.
pub struct Payload {
    /// The torrent's name: the folder's name.
    pub name: String,
    /// Relative path → content.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Payload {
    /// About 4.3 MiB in 7 files: odd sizes, an empty file, two files smaller than a 32 KiB
    /// piece, one exactly a piece long, nesting and a space in a name.
    pub fn standard() -> Payload {
        let sizes: &[(&str, usize)] = &[
            ("big.bin", 1_500_007),
            ("empty.dat", 0),
            ("tiny.txt", 1_000),
            ("sub/one piece.bin", 32_768),
            ("sub/deeper/odd.bin", 2_345_679),
            ("sub/x", 17),
            ("z last.bin", 333_333),
        ];
        Payload::new("payload", sizes)
    }

    /// `files` (relative path, size), each filled with its own pseudo-random bytes, so a
    /// block written at the wrong place never looks right.
    pub fn new(name: &str, files: &[(&str, usize)]) -> Payload {
        let files = files
            .iter()
            .enumerate()
            .map(|(i, (path, size))| (PathBuf::from(path), noise(i as u64 + 1, *size)))
            .collect();
        Payload {
            name: name.to_string(),
            files,
        }
    }

    pub fn total_len(&self) -> usize {
        self.files.values().map(Vec::len).sum()
    }

    /// Writes the content as `dir/<name>/…` and returns `dir/<name>`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let root = dir.join(&self.name);
        for (path, data) in &self.files {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, data).unwrap();
        }
        root
    }

    /// Whether `dir/<name>` holds every non-empty file with exactly the right bytes and no
    /// `.part` file is left anywhere under `dir`. What other clients are held to
    /// (transmission never creates empty files).
    pub fn check_data(&self, dir: &Path) -> Result<(), String> {
        let root = dir.join(&self.name);
        for (path, data) in self.files.iter().filter(|(_, d)| !d.is_empty()) {
            let full = root.join(path);
            let on_disk = std::fs::read(&full).map_err(|e| format!("{}: {e}", full.display()))?;
            if on_disk.len() != data.len() {
                return Err(format!(
                    "{}: {} bytes, want {}",
                    full.display(),
                    on_disk.len(),
                    data.len()
                ));
            }
            if let Some(at) = on_disk.iter().zip(data).position(|(a, b)| a != b) {
                return Err(format!("{}: differs at byte {at}", full.display()));
            }
        }
        let parts: Vec<_> = walk(dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".part"))
            .collect();
        if !parts.is_empty() {
            return Err(format!("`.part` files left: {parts:?}"));
        }
        Ok(())
    }

    /// [`check_data`](Self::check_data), and `dir/<name>` holds exactly the payload's files:
    /// the empty one too, nothing else (no padding files, no leftovers). What shoal is held
    /// to.
    pub fn check_exact(&self, dir: &Path) -> Result<(), String> {
        self.check_data(dir)?;
        let root = dir.join(&self.name);
        let found: Vec<PathBuf> = walk(&root)
            .into_iter()
            .map(|p| p.strip_prefix(&root).unwrap().to_path_buf())
            .collect();
        let want: Vec<PathBuf> = self.files.keys().cloned().collect();
        if found != want {
            return Err(format!(
                "files under {}: {found:?}, want {want:?}",
                root.display()
            ));
        }
        Ok(())
    }

    pub fn assert_exact(&self, dir: &Path) {
        if let Err(e) = self.check_exact(dir) {
            panic!("downloaded data is wrong: {e}");
        }
    }

    pub fn assert_data(&self, dir: &Path) {
        if let Err(e) = self.check_data(dir) {
            panic!("downloaded data is wrong: {e}");
        }
    }
}

/// Every file (not folder) under `dir`, sorted; empty if `dir` does not exist.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `len` bytes of xorshift noise from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------
// Torrents

/// Makes a v1 torrent of `content` with mktorrent (a third party's torrent), pieces of
/// 2^`piece_log2` bytes, announcing to `tracker` if given.
pub fn mktorrent(content: &Path, out: &Path, piece_log2: u32, tracker: Option<&str>) {
    let mut cmd = Command::new("mktorrent");
    cmd.args(["-l", &piece_log2.to_string()]);
    if let Some(t) = tracker {
        cmd.args(["-a", t]);
    }
    run(cmd.arg("-o").arg(out).arg(content));
}

/// Makes a torrent with libtorrent: hybrid v1+v2 (with BEP 47 padding files) unless
/// `v1_only`.
pub fn lt_make(content: &Path, out: &Path, piece_size: u32, v1_only: bool) {
    let mut cmd = Command::new(PYTHON);
    cmd.arg(LT_PY).arg("make").arg(content).arg(out);
    cmd.args(["--piece-size", &piece_size.to_string()]);
    if v1_only {
        cmd.arg("--v1-only");
    }
    run(&mut cmd);
}

/// The v1 info-hash in hex, as libtorrent reads it.
pub fn info_hash(torrent: &Path) -> String {
    let out = run(Command::new(PYTHON).arg(LT_PY).arg("info").arg(torrent));
    out.lines()
        .find_map(|l| l.strip_prefix("info_hash\t"))
        .unwrap_or_else(|| panic!("no info_hash from lt.py info:\n{out}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// opentracker

/// A local opentracker (HTTP and UDP on one port) accepting the whitelisted info-hashes.
pub struct Tracker {
    pub port: u16,
    pub proc: Proc,
}

impl Tracker {
    /// Starts opentracker in `dir` (its chroot as root) for `info_hashes` (hex).
    pub fn start(dir: &Path, info_hashes: &[&str], deadline: Instant) -> Tracker {
        std::fs::create_dir_all(dir).unwrap();
        let mut list = info_hashes.join("\n");
        list.push('\n');
        std::fs::write(dir.join("whitelist.txt"), list).unwrap();
        let port = free_port();
        let mut cmd = Command::new("opentracker");
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string(), "-P"])
            .arg(port.to_string())
            .arg("-d")
            .arg(dir)
            .args(["-w", "whitelist.txt"])
            // Not root: no chroot, so the relative whitelist path is read from here.
            .current_dir(dir);
        let mut proc = Proc::spawn("opentracker", cmd, dir.parent().unwrap_or(dir));
        wait_until("opentracker listening", deadline, || {
            proc.assert_not_failed();
            TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        Tracker { port, proc }
    }

    pub fn announce_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// The same tracker over UDP (opentracker serves both on one port number).
    pub fn udp_announce_url(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
    }

    /// (seeders, leechers) the tracker knows for `info_hash` (hex), by an HTTP scrape.
    pub fn scrape(&self, info_hash: &str) -> Result<(u64, u64), String> {
        scrape(self.port, info_hash)
    }

    /// Waits until the tracker knows at least `seeders` seeds of `info_hash`.
    pub fn wait_seeders(&mut self, info_hash: &str, seeders: u64, deadline: Instant) {
        let port = self.port;
        wait_until(
            &format!("{seeders} seeder(s) announced to opentracker"),
            deadline,
            || {
                self.proc.assert_not_failed();
                match scrape(port, info_hash)? {
                    (c, _) if c >= seeders => Ok(()),
                    (c, i) => Err(format!("{c} seeders, {i} leechers")),
                }
            },
        );
    }
}

fn scrape(port: u16, info_hash: &str) -> Result<(u64, u64), String> {
    let escaped: String = (0..info_hash.len())
        .step_by(2)
        .map(|i| format!("%{}", &info_hash[i..i + 2]))
        .collect();
    let mut s =
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| format!("scrape: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /scrape?info_hash={escaped} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .map_err(|e| format!("scrape: {e}"))?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)
        .map_err(|e| format!("scrape: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    let number = |key: &str| -> Option<u64> {
        let at = text.find(key)? + key.len();
        text[at..].split('e').next()?.parse().ok()
    };
    match (number("8:completei"), number("10:incompletei")) {
        (Some(c), Some(i)) => Ok((c, i)),
        _ => Err(format!("scrape answer: {text:?}")),
    }
}

// ---------------------------------------------------------------------------------------
// The clients

/// `127.0.0.1:PORT`.
pub fn local(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn shoal(
    name: &str,
    args: &[&str],
    port: u16,
    peers: &[u16],
    extra: &[&str],
    log_dir: &Path,
) -> Proc {
    let mut cmd = shoal_command();
    cmd.args(args)
        .args([
            "--plain",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .env("SHOAL_VERBOSE", "1");
    for p in peers {
        cmd.arg("--peer").arg(local(*p));
    }
    cmd.args(extra);
    Proc::spawn(name, cmd, log_dir)
}

/// `shoal download TORRENT -o DIR` on 127.0.0.1:`port`, dialing the `peers` (ports on
/// 127.0.0.1), with `extra` arguments (e.g. `--no-seed`).
pub fn shoal_download(
    name: &str,
    torrent: &Path,
    dir: &Path,
    port: u16,
    peers: &[u16],
    extra: &[&str],
    log_dir: &Path,
) -> Proc {
    let (t, d) = (torrent.to_str().unwrap(), dir.to_str().unwrap());
    shoal(name, &["download", t, "-o", d], port, peers, extra, log_dir)
}

/// `shoal seed TORRENT DIR` on 127.0.0.1:`port`, dialing the `peers`. It says `listening
/// on` once its data is verified.
pub fn shoal_seed(
    name: &str,
    torrent: &Path,
    dir: &Path,
    port: u16,
    peers: &[u16],
    log_dir: &Path,
) -> Proc {
    shoal_seed_with(name, torrent, dir, port, peers, &[], log_dir)
}

/// [`shoal_seed`] with `extra` arguments (e.g. `--encryption require`).
pub fn shoal_seed_with(
    name: &str,
    torrent: &Path,
    dir: &Path,
    port: u16,
    peers: &[u16],
    extra: &[&str],
    log_dir: &Path,
) -> Proc {
    let (t, d) = (torrent.to_str().unwrap(), dir.to_str().unwrap());
    shoal(name, &["seed", t, d], port, peers, extra, log_dir)
}

/// The readiness line of `shoal seed` and `shoal download`.
pub const SHOAL_READY: &str = "listening on";

fn lt(args: &[&str]) -> Command {
    let mut cmd = Command::new(PYTHON);
    cmd.arg(LT_PY).args(args);
    cmd
}

/// How long a libtorrent helper may live: beyond any test's deadline, so the guard, not
/// the helper, ends it.
fn lt_lifetime() -> String {
    (TEST_TIMEOUT.as_secs() + 60).to_string()
}

/// A libtorrent seed of `torrent` (content in `dir/<name>`) on 127.0.0.1:`port`. It says
/// `seeding` once its data is checked. `extra`: `--upload-limit N`, `--peer HOST:PORT`.
pub fn lt_seed(
    name: &str,
    torrent: &Path,
    dir: &Path,
    port: u16,
    extra: &[&str],
    log_dir: &Path,
) -> Proc {
    let mut cmd = lt(&["seed"]);
    cmd.arg(torrent)
        .arg(dir)
        .arg(port.to_string())
        .arg(lt_lifetime())
        .args(extra);
    Proc::spawn(name, cmd, log_dir)
}

/// A libtorrent leecher into `dir` on 127.0.0.1:`port`, dialing the `peers`. It says
/// `complete` and exits 0 when done, or keeps seeding with `keep_seeding`.
pub fn lt_download(
    name: &str,
    torrent: &Path,
    dir: &Path,
    port: u16,
    peers: &[u16],
    keep_seeding: bool,
    log_dir: &Path,
) -> Proc {
    let extra: &[&str] = if keep_seeding {
        &["--keep-seeding"]
    } else {
        &[]
    };
    lt_download_with(name, torrent, dir, port, peers, extra, log_dir)
}

/// [`lt_download`] with `extra` arguments of lt.py (`--keep-seeding`, `--rc4-only`,
/// `--plaintext`).
pub fn lt_download_with(
    name: &str,
    torrent: &Path,
    dir: &Path,
    port: u16,
    peers: &[u16],
    extra: &[&str],
    log_dir: &Path,
) -> Proc {
    let mut cmd = lt(&["download"]);
    cmd.arg(torrent)
        .arg(dir)
        .arg(port.to_string())
        .arg(TEST_TIMEOUT.as_secs().to_string());
    for p in peers {
        cmd.arg("--peer").arg(local(*p));
    }
    cmd.args(extra);
    Proc::spawn(name, cmd, log_dir)
}

/// A libtorrent DHT node and nothing else on 127.0.0.1:`port` (UDP), bootstrapping from
/// nobody: a router for the others. Prints `dht get_peers HASH` and `dht announce
/// IP:PORT HASH` for the queries it gets (see lt.py), once it says `dht ready`.
pub fn lt_dht_router(name: &str, port: u16, log_dir: &Path) -> Proc {
    let mut cmd = lt(&["dht"]);
    cmd.arg(port.to_string()).arg(lt_lifetime());
    let mut router = Proc::spawn(name, cmd, log_dir);
    router.wait_for("dht ready", Instant::now() + TEST_TIMEOUT);
    router
}

/// A libtorrent leecher of `link` (a magnet link) into `dir` on 127.0.0.1:`port` whose
/// only way to peers is the DHT, bootstrapping from 127.0.0.1:`dht_port`. It says
/// `complete` and exits 0 when done.
pub fn lt_download_by_dht(
    name: &str,
    link: &str,
    dir: &Path,
    port: u16,
    dht_port: u16,
    log_dir: &Path,
) -> Proc {
    let mut cmd = lt(&["download"]);
    cmd.arg(link)
        .arg(dir)
        .arg(port.to_string())
        .arg(TEST_TIMEOUT.as_secs().to_string())
        .arg("--dht")
        .arg(local(dht_port));
    Proc::spawn(name, cmd, log_dir)
}

/// transmission-cli with its own config folder (`log_dir/<name>-config`): DHT, LPD, PEX,
/// uTP and port mapping off, listening on 127.0.0.1:`port` (and ::1). `dir` is its
/// download folder; it checks the data already there on its own (a seed's content), so no
/// `-v` is passed: with it, transmission-cli 3.00 sometimes stops and removes the torrent
/// the moment its check ends (a race inside it, seen as a seed that leaves at once). It
/// runs until killed, printing `Seeding` once it has every piece. Its output is
/// unbuffered through `stdbuf`, or nothing would show before it exits.
pub fn transmission(name: &str, torrent: &Path, dir: &Path, port: u16, log_dir: &Path) -> Proc {
    let config = log_dir.join(format!("{name}-config"));
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let settings = format!(
        r#"{{
    "dht-enabled": false,
    "lpd-enabled": false,
    "pex-enabled": false,
    "utp-enabled": false,
    "port-forwarding-enabled": false,
    "rpc-enabled": false,
    "bind-address-ipv4": "127.0.0.1",
    "bind-address-ipv6": "::1",
    "peer-port": {port},
    "peer-port-random-on-start": false
}}
"#
    );
    std::fs::write(config.join("settings.json"), settings).unwrap();
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-o0", "-e0", "transmission-cli", "-g"])
        .arg(&config)
        .arg("-w")
        .arg(dir)
        .args(["-p", &port.to_string()])
        .arg(torrent);
    Proc::spawn(name, cmd, log_dir)
}

fn aria2(torrent: &Path, dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new("aria2c");
    cmd.args([
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--check-integrity=true",
        "--interface=127.0.0.1",
        "--disable-ipv6=true",
        "--enable-color=false",
        "--summary-interval=1",
    ])
    .arg(format!("--dir={}", dir.display()))
    .arg(format!("--listen-port={port}"));
    cmd.arg(torrent);
    cmd
}

/// An aria2 seed of `torrent` (content in `dir/<name>`) on 127.0.0.1:`port`, seeding until
/// killed. It says `SEED(` once its data is checked.
pub fn aria2_seed(name: &str, torrent: &Path, dir: &Path, port: u16, log_dir: &Path) -> Proc {
    let mut cmd = aria2(torrent, dir, port);
    cmd.arg("--seed-ratio=0.0");
    Proc::spawn(name, cmd, log_dir)
}

/// An aria2 leecher into `dir` on 127.0.0.1:`port`; exits 0 once complete. aria2 takes
/// peers only from trackers (or peers that dial it).
pub fn aria2_download(name: &str, torrent: &Path, dir: &Path, port: u16, log_dir: &Path) -> Proc {
    let mut cmd = aria2(torrent, dir, port);
    cmd.arg("--seed-time=0");
    Proc::spawn(name, cmd, log_dir)
}

/// A client seeding a scene's payload: a real one, or `shoal seed` itself.
#[derive(Clone, Copy, Debug)]
pub enum Seeder {
    Libtorrent,
    Transmission,
    Aria2,
    Shoal,
}

/// A test's scratch space: a temp dir with the standard payload written in `src/`.
///
/// On a failure (or with `SHOAL_KEEP_TEST_FILES` set) the folder is kept and its path
/// printed: it holds every process's full log.
pub struct Scene {
    tmp: Option<tempfile::TempDir>,
    pub payload: Payload,
    pub deadline: Instant,
}

impl Scene {
    pub fn new() -> Scene {
        Scene::with_payload(Payload::standard())
    }

    /// A scene whose `src/` holds `payload` rather than the standard one.
    pub fn with_payload(payload: Payload) -> Scene {
        let tmp = tempfile::Builder::new()
            .prefix("shoal-interop-")
            .tempdir()
            .unwrap();
        payload.write(&tmp.path().join("src"));
        Scene {
            tmp: Some(tmp),
            payload,
            deadline: Instant::now() + TEST_TIMEOUT,
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.as_ref().unwrap().path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir().join(rel)
    }

    /// The folder holding `src/<name>`, the content every seed starts from.
    pub fn src(&self) -> PathBuf {
        self.path("src")
    }

    /// The content folder itself, `src/<name>`.
    pub fn content(&self) -> PathBuf {
        self.src().join(&self.payload.name)
    }

    /// A mktorrent torrent of the payload, 32 KiB pieces (about 140 of them).
    pub fn torrent(&self, tracker: Option<&str>) -> PathBuf {
        let out = self.path("payload.torrent");
        let _ = std::fs::remove_file(&out); // mktorrent never overwrites
        mktorrent(&self.content(), &out, 15, tracker);
        out
    }

    /// A `seeder` of `torrent` over `src/` on 127.0.0.1:`port`, named `libtorrent-seed`,
    /// `transmission-seed`, `aria2-seed` or `shoal-seed`, once it says its data is checked
    /// and it seeds.
    pub fn ready_seed(&self, seeder: Seeder, torrent: &Path, port: u16) -> Proc {
        let (src, dir) = (self.src(), self.dir());
        let (mut seed, ready) = match seeder {
            Seeder::Libtorrent => (
                lt_seed("libtorrent-seed", torrent, &src, port, &[], dir),
                "seeding",
            ),
            Seeder::Transmission => (
                transmission("transmission-seed", torrent, &src, port, dir),
                "Seeding",
            ),
            Seeder::Aria2 => (aria2_seed("aria2-seed", torrent, &src, port, dir), "SEED("),
            Seeder::Shoal => (
                shoal_seed("shoal-seed", torrent, &src, port, &[], dir),
                SHOAL_READY,
            ),
        };
        seed.wait_for(ready, self.deadline);
        seed
    }

    /// libtorrent (lt.py `download` with `extra`) downloads `torrent` into the scene's
    /// `dl` from the seed on 127.0.0.1:`seed_port` alone, watching that seed, and the data
    /// is checked byte for byte. Returns the leecher, done.
    pub fn lt_leech_from(
        &self,
        torrent: &Path,
        seed: &mut Proc,
        seed_port: u16,
        extra: &[&str],
    ) -> Proc {
        let dl = self.path("dl");
        let mut leech = lt_download_with(
            "libtorrent-leech",
            torrent,
            &dl,
            free_port(),
            &[seed_port],
            extra,
            self.dir(),
        );
        leech.wait_success_watching(seed, self.deadline);
        self.payload.assert_data(&dl);
        leech
    }

    /// A transmission leecher of `torrent` into `dir` on 127.0.0.1:`port`, once its
    /// session (and listening socket) is up: it prints its first status line then. It
    /// takes only peers that dial it.
    pub fn ready_transmission_leech(&self, torrent: &Path, dir: &Path, port: u16) -> Proc {
        let mut leech = transmission("transmission-leech", torrent, dir, port, self.dir());
        leech.wait_for("Progress", self.deadline);
        leech
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("SHOAL_KEEP_TEST_FILES").is_some() {
            let kept = self.tmp.take().unwrap().keep();
            eprintln!("test files and logs kept in {}", kept.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// A web server

/// nginx serving `root` on 127.0.0.1, its config, pid, logs and temp files in `dir`.
pub struct Nginx {
    pub port: u16,
    _proc: Proc,
}

impl Nginx {
    pub fn start(root: &Path, dir: &Path, deadline: Instant) -> Nginx {
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log {d}/access.log;\n\
               client_body_temp_path {d}/tmp/body;\n\
               proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fastcgi;\n\
               uwsgi_temp_path {d}/tmp/uwsgi;\n\
               scgi_temp_path {d}/tmp/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 root {};\n\
               }}\n\
             }}\n",
            root.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"));
        let mut proc = Proc::spawn("nginx", cmd, dir);
        wait_until("nginx listening", deadline, || {
            proc.assert_not_failed();
            TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        Nginx { port, _proc: proc }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

// ---------------------------------------------------------------------------------------
// A network namespace (as root: `ip netns`)

/// A network namespace of the test's own, deleted when dropped.
pub struct Netns(String);

impl Netns {
    /// A namespace with only its loopback, up, multicast on, and a route for 239/8 (the
    /// local discovery group): multicast works inside, nothing leaves it.
    pub fn new() -> Netns {
        static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "shoal-lsd-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        run(&mut ns.command("ip", &["link", "set", "lo", "up", "multicast", "on"]));
        run(&mut ns.command("ip", &["route", "add", "239.0.0.0/8", "dev", "lo"]));
        ns
    }

    /// `program args` run inside the namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, program]).args(args);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

// ---------------------------------------------------------------------------------------
// A web server that counts connections

/// How a [`counting_server`] treats its connections.
#[derive(Clone, Copy, PartialEq)]
pub enum Reuse {
    /// HTTP/1.1 keep-alive: every connection serves requests until the client closes it.
    KeepAlive,
    /// Each answer says `Connection: close`, and the connection closes after it.
    CloseEach,
    /// Each answer looks like keep-alive (no `Connection` header), but the connection closes
    /// after it: a client that reuses it finds it closed.
    CloseSilently,
    /// The second answer on each connection says `Connection: close`, and the connection
    /// closes after it.
    CloseSecond,
}

/// Requests and connections a [`counting_server`] has served.
#[derive(Default)]
pub struct Served {
    connections: std::sync::atomic::AtomicUsize,
    requests: std::sync::atomic::AtomicUsize,
}

impl Served {
    /// Connections accepted and requests read so far.
    pub fn get(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.connections.load(SeqCst), self.requests.load(SeqCst))
    }
}

/// A correct web server for `data` (206 for each range), treating connections the `reuse`
/// way, a thread per connection; returns its URL and what it saw.
pub fn counting_server(data: Vec<u8>, reuse: Reuse) -> (String, Arc<Served>) {
    use std::sync::atomic::Ordering::SeqCst;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Served::default());
    let data = Arc::new(data);
    let counts = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counts.connections.fetch_add(1, SeqCst);
            let (data, counts) = (data.clone(), counts.clone());
            std::thread::spawn(move || {
                for answered in 1.. {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    counts.requests.fetch_add(1, SeqCst);
                    let head = String::from_utf8_lossy(&head).to_string();
                    let Some((first, last)) = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Range: bytes="))
                        .and_then(|r| r.split_once('-'))
                        .and_then(|(a, b)| {
                            Some((a.parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?))
                        })
                        .filter(|&(a, b)| a <= b && b < data.len())
                    else {
                        let _ = stream.write_all(
                            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                        );
                        return;
                    };
                    let close = match reuse {
                        Reuse::KeepAlive => false,
                        Reuse::CloseEach => true,
                        Reuse::CloseSilently => false,
                        Reuse::CloseSecond => answered == 2,
                    };
                    let mut answer = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{}\r\nContent-Length: {}\r\n{}\r\n",
                        data.len(),
                        last - first + 1,
                        if close { "Connection: close\r\n" } else { "" },
                    )
                    .into_bytes();
                    answer.extend_from_slice(&data[first..=last]);
                    if stream.write_all(&answer).is_err() || close || reuse == Reuse::CloseSilently
                    {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}/file.bin"), seen)
}
