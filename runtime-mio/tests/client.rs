//! `shoal download` as a user meets it: clear failures, a download interrupted with
//! Ctrl-C that resumes without fetching verified pieces again, torrents of more files than
//! descriptors, and `https://` end to end: a torrent fetched by an https URL whose tracker
//! is https too, served on 127.0.0.1 with a certificate from a test CA that the client
//! trusts through `SSL_CERT_FILE` (as a user adds a private tracker's CA), and refused when
//! the CA is not trusted.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::free_port;

fn shoal() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    // No DHT router beyond this machine (see support::shoal_command).
    cmd.env("SHOAL_DHT_BOOTSTRAP", "");
    cmd
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a child whose stderr is piped to exit (failing the test after `limit`) and
/// returns its status and what it wrote there.
fn wait_for_exit(child: &mut Kill, limit: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "not finished in {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, err)
}

fn make_torrent(dir: &Path, size: usize, tracker: Option<&str>) -> std::path::PathBuf {
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 1013) as u8).collect();
    std::fs::write(content.join("data.bin"), data).unwrap();
    let torrent = dir.join("t.torrent");
    let mut cmd = shoal();
    cmd.arg("create")
        .arg(&content)
        .arg("-o")
        .arg(&torrent)
        .args(["--piece-size", "32K"]);
    if let Some(t) = tracker {
        cmd.args(["-t", t]);
    }
    assert!(cmd.output().unwrap().status.success());
    torrent
}

#[test]
fn a_bad_torrent_fails_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.torrent");
    std::fs::write(&bad, b"d4:infod4:name1:x12:piece lengthi0eee").unwrap();
    let out = shoal()
        .arg("download")
        .arg(&bad)
        .arg("-o")
        .arg(dir.path())
        .args(["--port", "0", "--plain"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("shoal: error: ") && err.contains("piece length"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn an_unreachable_tracker_ends_the_download_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: every announce is refused.
    let url = format!("http://127.0.0.1:{}/announce", free_port());
    let torrent = make_torrent(dir.path(), 100_000, Some(&url));
    let start = Instant::now();
    let out = shoal()
        .arg("download")
        .arg(&torrent)
        .arg("-o")
        .arg(dir.path().join("dl"))
        .args(["--port", "0", "--plain", "--tracker-backoff", "1"])
        .output()
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shoal: error: no tracker reachable"), "{err}");
}

#[test]
fn a_full_disk_ends_the_download_with_an_error() {
    // A 1 MiB tmpfs cannot hold a 4 MiB download.
    let dir = tempfile::tempdir().unwrap();
    let torrent = make_torrent(dir.path(), 4 << 20, None);
    let tmpfs = support::Tmpfs::mount(&dir.path().join("disk"), "1m");
    let disk = &tmpfs.0;
    let seed_port = free_port();
    let mut seed = Kill(
        shoal()
            .arg("seed")
            .arg(&torrent)
            .arg(dir.path())
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &seed_port.to_string(),
                "--plain",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Dial only once the seed listens (a refused dial is retried only a minute later).
    let mut lines = BufReader::new(seed.0.stderr.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.starts_with("listening on"))));
    let out = shoal()
        .arg("download")
        .arg(&torrent)
        .arg("-o")
        .arg(disk)
        .args(["--port", "0", "--plain", "--no-seed"])
        .args(["--peer", &format!("127.0.0.1:{seed_port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
}

#[test]
fn an_interrupted_download_resumes_without_fetching_verified_pieces_again() {
    let dir = tempfile::tempdir().unwrap();
    let size = 8 << 20;
    let torrent = make_torrent(dir.path(), size, None);
    // A libtorrent seed held to 2 MiB/s, so the download takes seconds.
    let port = free_port();
    let script = r#"
import sys, time, libtorrent as lt
ses = lt.session({"listen_interfaces": "127.0.0.1:%s" % sys.argv[3], "enable_dht": False,
    "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "upload_rate_limit": 2 * 1024 * 1024, "ignore_limits_on_local_network": False,
    "alert_mask": 0})
h = ses.add_torrent({"ti": lt.torrent_info(sys.argv[1]), "save_path": sys.argv[2]})
end = time.time() + 60
while time.time() < end:
    if h.status().is_seeding:
        print("seeding", flush=True)
        break
    time.sleep(0.05)
time.sleep(60)
"#;
    let mut seed = Kill(
        Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(&torrent)
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3-libtorrent (run scripts/test to install it)"),
    );
    let mut line = String::new();
    BufReader::new(seed.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "seeding");

    let out_dir = dir.path().join("dl");
    let download = || {
        shoal()
            .arg("download")
            .arg(&torrent)
            .arg("-o")
            .arg(&out_dir)
            .args(["--port", "0", "--plain", "--no-seed"])
            .args(["--peer", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = download();
    // Ctrl-C once a progress line says some pieces are verified (plain lines: `…, 12/256
    // pieces`; the seed's 2 MiB/s leaves the rest for seconds).
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no progress before it exited:\n{said}"
        );
        said.push_str(&line);
        let progress = line.contains("% of ")
            && line
                .trim_end()
                .strip_suffix(" pieces")
                .and_then(|l| l.rsplit(' ').next())
                .is_some_and(|count| !count.starts_with("0/"));
        if progress {
            break;
        }
    }
    assert!(Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap()
        .success());
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    let status = first.wait().unwrap();
    let err = said;
    assert_eq!(status.code(), Some(130), "{err}");
    let summary = |text: &str| -> (u64, u32) {
        let line = text
            .lines()
            .find(|l| l.starts_with("summary:"))
            .expect("a summary line");
        let words: Vec<&str> = line.split_whitespace().collect();
        let downloaded = words[2].parse().unwrap();
        let verified = words[7].split('/').next().unwrap().parse().unwrap();
        (downloaded, verified)
    };
    let (_, verified_first) = summary(&err);
    let pieces = (size / 32768) as u32;
    assert!(verified_first > 0 && verified_first < pieces, "{err}");
    // Interrupted: the file is still a .part, and a resume record exists.
    assert!(out_dir.join("content/data.bin.part").exists());
    assert!(!out_dir.join("content/data.bin").exists());
    let records = out_dir.join(".shoal").read_dir().unwrap().flatten();
    let records = records.filter(|e| e.path().extension().is_some_and(|x| x == "resume"));
    assert_eq!(records.count(), 1);

    let second = download().wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    let (downloaded_second, verified_second) = summary(&err);
    assert_eq!(verified_second, pieces);
    // Only what the first run had not verified was fetched again.
    let left = size as u64 - u64::from(verified_first) * 32768;
    assert!(
        downloaded_second <= left,
        "{downloaded_second} > {left}\n{err}"
    );
    let data = std::fs::read(out_dir.join("content/data.bin")).unwrap();
    assert_eq!(
        data,
        std::fs::read(dir.path().join("content/data.bin")).unwrap()
    );
}

/// `sh -c 'ulimit -n LIMIT; exec shoal ARGS…'`: shoal under a descriptor limit.
fn shoal_limited(limit: u32, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.env("SHOAL_DHT_BOOTSTRAP", "")
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_shoal"))
        .args(args);
    cmd
}

/// A torrent of 300 files, each process allowed 64 descriptors: the seed verifies and
/// serves every file and the leecher writes and renames every file, both keeping only a
/// bounded number open (with one descriptor per file kept open, both would fail with
/// "Too many open files").
#[test]
fn a_torrent_of_more_files_than_descriptors_seeds_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("seed/many");
    let mut expected = Vec::new();
    for i in 0..300usize {
        let rel = format!("d{}/file {i}.bin", i % 7);
        let data: Vec<u8> = (0..1000 + 97 * i).map(|k| (k * 31 + i) as u8).collect();
        let path = content.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &data).unwrap();
        expected.push((rel, data));
    }
    let torrent = dir.path().join("many.torrent");
    let made = shoal()
        .arg("create")
        .arg(&content)
        .arg("-o")
        .arg(&torrent)
        .args(["--piece-size", "16K"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let port = free_port().to_string();
    let seed_dir = dir.path().join("seed");
    let _seed = Kill(
        shoal_limited(
            64,
            &[
                "seed".as_ref(),
                torrent.as_os_str(),
                seed_dir.as_os_str(),
                "--plain".as_ref(),
                "--bind".as_ref(),
                "127.0.0.1".as_ref(),
                "--port".as_ref(),
                port.as_ref(),
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let out = dir.path().join("dl");
    let peer = format!("127.0.0.1:{port}");
    let mut download = shoal_limited(
        64,
        &[
            "download".as_ref(),
            torrent.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--plain".as_ref(),
            "--no-seed".as_ref(),
            "--port".as_ref(),
            "0".as_ref(),
            "--peer".as_ref(),
            peer.as_ref(),
        ],
    );
    // The seed may still be verifying its files when the leecher first dials it: the
    // leecher redials, and the whole exchange is bounded by the timeout below.
    let mut child = Kill(download.stderr(Stdio::piped()).spawn().unwrap());
    let (status, err) = wait_for_exit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{err}");
    for (rel, data) in &expected {
        let got = std::fs::read(out.join("many").join(rel)).unwrap();
        assert!(got == *data, "{rel} differs");
        assert!(!out.join("many").join(format!("{rel}.part")).exists());
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (run scripts/test to install it)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`server.pem`, `server.key`).
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=shoal test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
}

/// An https server on 127.0.0.1: `/t.torrent` is the torrent, `/announce` a tracker that
/// names the one seed at SEED_PORT (compact). It stops after a minute.
const SERVER: &str = r#"
import http.server, ssl, struct, sys, threading
port, torrent, seed_port, cert, key = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
body = open(torrent, "rb").read()
peers = bytes([127, 0, 0, 1]) + struct.pack(">H", seed_port)
announce = b"d8:intervali60e5:peers6:" + peers + b"e"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        data = body if self.path == "/t.torrent" else announce if self.path.startswith("/announce?") else None
        if data is None:
            self.send_error(404)
            return
        query = dict(kv.split("=", 1) for kv in self.path.partition("?")[2].split("&") if "=" in kv)
        print("GET", self.path.split("?")[0], query.get("port", ""), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
threading.Timer(60, srv.shutdown).start()
print("listening", flush=True)
srv.serve_forever()
"#;

#[test]
fn a_torrent_and_its_tracker_over_https_with_a_locally_trusted_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certificates(d);

    let content = d.join("seed/payload");
    std::fs::create_dir_all(&content).unwrap();
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i * 13 + i / 977) as u8)
        .collect();
    std::fs::write(content.join("data.bin"), &data).unwrap();
    let https_port = free_port();
    let base = format!("https://127.0.0.1:{https_port}");
    let torrent = d.join("t.torrent");
    let made = shoal()
        .arg("create")
        .arg(&content)
        .arg("-o")
        .arg(&torrent)
        .args(["-t", &format!("{base}/announce")])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    let seed_port = free_port();
    let mut server = Kill(
        Command::new("/usr/bin/python3")
            .args(["-c", SERVER, &https_port.to_string()])
            .arg(&torrent)
            .arg(seed_port.to_string())
            .arg(d.join("server.pem"))
            .arg(d.join("server.key"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "listening");
    // The seed announces to the https tracker too; it is found by the answer either way.
    let _seed = Kill(
        shoal()
            .arg("seed")
            .arg(&torrent)
            .arg(d.join("seed"))
            .args([
                "--plain",
                "--bind",
                "127.0.0.1",
                "--port",
                &seed_port.to_string(),
            ])
            .env("SSL_CERT_FILE", d.join("ca.pem"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Not trusted: the fetch fails on the certificate, with one line saying so.
    let refused = shoal()
        .args([
            "download",
            &format!("{base}/t.torrent"),
            "--plain",
            "--no-seed",
        ])
        .arg("-o")
        .arg(d.join("refused"))
        .env("SSL_CERT_FILE", d.join("server.csr")) // no certificate in it
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("certificate") || err.contains("Certificate"),
        "{err}"
    );

    // Trusted: the torrent comes by https, the seed by the https tracker's answer.
    let out = d.join("dl");
    let mut download = Kill(
        shoal()
            .args([
                "download",
                &format!("{base}/t.torrent"),
                "--plain",
                "--no-seed",
            ])
            .args(["--port", "0"])
            .arg("-o")
            .arg(&out)
            .env("SSL_CERT_FILE", d.join("ca.pem"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (status, err) = wait_for_exit(&mut download, Duration::from_secs(60));
    assert!(status.success(), "{status:?}\n{err}");
    assert!(std::fs::read(out.join("payload/data.bin")).unwrap() == data);
    // `shoal info` takes the URL too.
    let info = shoal()
        .args(["info", &format!("{base}/t.torrent")])
        .env("SSL_CERT_FILE", d.join("ca.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{info:?}");
    assert!(text.lines().any(|l| l == "name:         payload"), "{text}");
    // The torrent and the leecher's announce (any port but the seed's) went over TLS.
    let mut seen = Vec::new();
    server.0.kill().unwrap();
    for line in lines.map_while(Result::ok) {
        seen.push(line);
    }
    assert!(seen.iter().any(|l| l == "GET /t.torrent "), "{seen:?}");
    let seed_announce = format!("GET /announce {seed_port}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("GET /announce ") && *l != seed_announce),
        "{seen:?}"
    );
}
