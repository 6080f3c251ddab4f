//! `https://` end to end: a torrent fetched by an https URL whose tracker is https too,
//! both served on 127.0.0.1 with a certificate from a test CA that the client trusts
//! through `SSL_CERT_FILE` (as a user would add a private tracker's CA), and the same
//! download refused when the CA is not trusted.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn shoal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = download.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the download did not finish in 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(download.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}\n{err}");
    assert!(std::fs::read(out.join("payload/data.bin")).unwrap() == data);
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
