//! tracker-load: announces per second that `shoal tracker` and opentracker sustain, over
//! HTTP and over UDP, measured in the same run on loopback.
//!
//! Both trackers start fresh on free ports with the same allow-list (opentracker's
//! whitelist, shoal's `--allow`) of `--torrents` info-hashes. Client threads then announce
//! as fast as the tracker answers, each announce a random peer (one of `--peers` per
//! torrent, 30% seeds, a few `started`/`completed`/`stopped` events) of a random torrent,
//! asking the default 50 peers:
//!
//! - HTTP: one connection per announce (neither tracker keeps connections alive), a
//!   request as clients send it, the answer read to the end and checked;
//! - UDP: BEP 15, a connection id per thread, `--window` requests in flight per thread.
//!
//! Each (protocol, tracker) phase runs `--seconds` after a one-second warm-up, `--rounds`
//! times, alternating which tracker goes first (shoal, opentracker, opentracker, shoal,
//! …) so that drift on a shared machine evens out. Reported: answered announces per
//! second, and the tracker process's CPU time per announce (user and system, from
//! /proc/PID/stat, all threads): on a small machine where the load generator takes its
//! share of the cores, and other work comes and goes, the cost per announce is the
//! steadier measure of the two.
//!
//! Run: `cargo build --release -p shoal-mio && cargo run --release -p shoal-benches --bin
//! tracker-load` (see README.md in this folder).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::tracker::percent_encode;
use shoal_core::tracker::udp::{IpFamily, UdpAnnounceRequest, UdpRequest, UdpResponse};
use shoal_core::tracker::{AnnounceEvent, AnnounceParams};
use shoal_core::{InfoHash, PeerId};

struct Options {
    shoal: PathBuf,
    seconds: u64,
    http_threads: usize,
    udp_threads: usize,
    window: usize,
    torrents: usize,
    peers: usize,
    rounds: usize,
    protocols: Vec<Proto>,
    /// More arguments for `shoal tracker`.
    shoal_args: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: tracker-load [--shoal PATH] [--seconds N] [--http-threads N] [--udp-threads N] \
         [--window N] [--torrents N] [--peers N] [--rounds N] [--only http|udp] [--shoal-arg ARG]..."
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        shoal: Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/shoal"),
        seconds: 6,
        http_threads: 4,
        udp_threads: 2,
        window: 32,
        torrents: 1000,
        peers: 100,
        rounds: 2,
        protocols: vec![Proto::Http, Proto::Udp],
        shoal_args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--shoal" => o.shoal = PathBuf::from(value()),
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| usage()),
            "--http-threads" => o.http_threads = value().parse().unwrap_or_else(|_| usage()),
            "--udp-threads" => o.udp_threads = value().parse().unwrap_or_else(|_| usage()),
            "--window" => o.window = value().parse().unwrap_or_else(|_| usage()),
            "--torrents" => o.torrents = value().parse().unwrap_or_else(|_| usage()),
            "--peers" => o.peers = value().parse().unwrap_or_else(|_| usage()),
            "--shoal-arg" => o.shoal_args.push(value()),
            "--rounds" => o.rounds = value().parse().unwrap_or_else(|_| usage()),
            "--only" => {
                o.protocols = match value().as_str() {
                    "http" => vec![Proto::Http],
                    "udp" => vec![Proto::Udp],
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    o.torrents = o.torrents.max(1);
    o.rounds = o.rounds.max(1);
    o.peers = o.peers.clamp(1, 50_000);
    o
}

/// xorshift64*: each client thread draws its announces from its own.
struct Rand(u64);

impl Rand {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What an announce of the workload says.
struct Pick {
    torrent: usize,
    peer: usize,
    left: u64,
    event: AnnounceEvent,
}

fn pick(r: &mut Rand, o: &Options) -> Pick {
    let torrent = r.below(o.torrents);
    let peer = r.below(o.peers);
    // A peer is a seed or a leecher for good (30% seeds), so the swarm stays stable.
    let seed = (torrent * 31 + peer * 17) % 10 < 3;
    let event = match r.below(100) {
        0..=3 => AnnounceEvent::Started,
        4 => AnnounceEvent::Completed,
        5 => AnnounceEvent::Stopped,
        _ => AnnounceEvent::None,
    };
    Pick {
        torrent,
        peer,
        left: if seed { 0 } else { 1 << 20 },
        event,
    }
}

fn info_hash(i: usize) -> [u8; 20] {
    let mut h = [0x5au8; 20];
    h[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    h[8..16].copy_from_slice(&(i as u64).to_be_bytes());
    h
}

fn peer_id(peer: usize) -> [u8; 20] {
    let mut id = *b"-LG0001-000000000000";
    id[8..20].copy_from_slice(format!("{peer:012}").as_bytes());
    id
}

fn port_of(peer: usize) -> u16 {
    10_000 + peer as u16
}

// ---- the trackers ----

struct Server {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// (user, system) CPU seconds the process has used so far, all threads.
    fn cpu_seconds(&self) -> (f64, f64) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return (0.0, 0.0);
        };
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
        (ticks(11) / clock_ticks(), ticks(12) / clock_ticks())
    }
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn wait_listening(server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{} exited at start: {status}", server.name);
        }
        if TcpStream::connect((Ipv4Addr::LOCALHOST, server.port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} does not listen", server.name);
}

fn start_shoal(o: &Options, dir: &Path) -> Server {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(&o.shoal)
        .args(["tracker", "--http", &addr, "--udp", &addr, "--allow"])
        .arg(dir.join("whitelist.txt"))
        .args(&o.shoal_args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): build it with `cargo build --release -p shoal-mio`",
                o.shoal.display()
            )
        });
    let mut s = Server {
        name: "shoal",
        child,
        port,
    };
    wait_listening(&mut s);
    s
}

fn start_opentracker(dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new("opentracker")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        .arg("-d")
        .arg(dir)
        .args(["-w", "whitelist.txt"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start opentracker ({e}): apt-get install opentracker"));
    let mut s = Server {
        name: "opentracker",
        child,
        port,
    };
    wait_listening(&mut s);
    s
}

// ---- the clients ----

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Http,
    Udp,
}

struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

fn http_client(port: u16, o: Arc<Options>, seed: u64, counters: Arc<Counters>) {
    let mut r = Rand(seed | 1);
    let hashes: Vec<String> = (0..o.torrents)
        .map(|i| percent_encode(&info_hash(i)))
        .collect();
    let mut request = String::with_capacity(512);
    let mut answer = Vec::with_capacity(4096);
    while !counters.stop.load(Ordering::Relaxed) {
        let p = pick(&mut r, &o);
        request.clear();
        request.push_str("GET /announce?info_hash=");
        request.push_str(&hashes[p.torrent]);
        request.push_str("&peer_id=");
        request.push_str(&percent_encode(&peer_id(p.peer)));
        request.push_str(&format!(
            "&port={}&uploaded=0&downloaded=0&left={}&compact=1&numwant=50&key=1A2B3C4D",
            port_of(p.peer),
            p.left
        ));
        if let Some(e) = p.event.as_http_str() {
            request.push_str("&event=");
            request.push_str(e);
        }
        request.push_str(" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tracker-load\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
        let ok = (|| -> std::io::Result<bool> {
            let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(request.as_bytes())?;
            answer.clear();
            s.read_to_end(&mut answer)?;
            Ok(answer.starts_with(b"HTTP/1.1 200")
                && answer.windows(10).any(|w| w == b"8:interval"))
        })();
        let counter = match ok {
            Ok(true) => &counters.ok,
            _ => &counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn udp_client(port: u16, o: Arc<Options>, seed: u64, counters: Arc<Counters>) {
    let mut r = Rand(seed | 1);
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    // A connection id, asked until answered.
    let connection_id = loop {
        if counters.stop.load(Ordering::Relaxed) {
            return;
        }
        let _ = socket.send_to(&UdpRequest::Connect { transaction_id: 1 }.encode(), to);
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            if let Ok(UdpResponse::Connect { connection_id, .. }) =
                UdpResponse::decode(&buf[..n], IpFamily::V4)
            {
                break connection_id;
            }
        }
    };
    let mut tid = 100u32;
    let mut send = |r: &mut Rand| {
        let p = pick(r, &o);
        let mut params = AnnounceParams::new(
            InfoHash(info_hash(p.torrent)),
            PeerId(peer_id(p.peer)),
            port_of(p.peer),
        );
        params.left = p.left;
        params.event = p.event;
        params.key = 0x1a2b_3c4d;
        tid = tid.wrapping_add(1);
        let request =
            UdpRequest::Announce(UdpAnnounceRequest::from_params(connection_id, tid, &params));
        let _ = socket.send_to(&request.encode(), to);
    };
    let mut in_flight = 0;
    while !counters.stop.load(Ordering::Relaxed) {
        while in_flight < o.window {
            send(&mut r);
            in_flight += 1;
        }
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                in_flight -= 1;
                // Action 1 is an announce answer; anything else (an error) is a failure.
                let counter = if n >= 20 && buf[..4] == [0, 0, 0, 1] {
                    &counters.ok
                } else {
                    &counters.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                // Lost in flight: count them and fill the window again.
                counters
                    .failed
                    .fetch_add(in_flight as u64, Ordering::Relaxed);
                in_flight = 0;
            }
        }
    }
}

/// What one phase (or the sum of a tracker's phases) measured.
#[derive(Clone, Copy, Default)]
struct Measure {
    answered: u64,
    failed: u64,
    seconds: f64,
    user: f64,
    system: f64,
}

impl Measure {
    fn add(&mut self, m: Measure) {
        self.answered += m.answered;
        self.failed += m.failed;
        self.seconds += m.seconds;
        self.user += m.user;
        self.system += m.system;
    }

    fn rate(&self) -> f64 {
        self.answered as f64 / self.seconds
    }

    /// CPU microseconds per answered announce: (user, system).
    fn cost(&self) -> (f64, f64) {
        let n = self.answered.max(1) as f64;
        (self.user * 1e6 / n, self.system * 1e6 / n)
    }
}

/// One measured phase: a warm-up second, then `seconds` of counting.
fn phase(proto: Proto, server: &Server, o: &Arc<Options>, seconds: f64, seed: u64) -> Measure {
    let counters = Arc::new(Counters {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let threads = match proto {
        Proto::Http => o.http_threads,
        Proto::Udp => o.udp_threads,
    };
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (o, c, port) = (o.clone(), counters.clone(), server.port);
            let seed = seed.wrapping_add(i as u64 * 0x9e37_79b9);
            std::thread::spawn(move || match proto {
                Proto::Http => http_client(port, o, seed, c),
                Proto::Udp => udp_client(port, o, seed, c),
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let (ok0, failed0, (user0, system0)) = (
        counters.ok.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        server.cpu_seconds(),
    );
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (ok1, failed1, (user1, system1)) = (
        counters.ok.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        server.cpu_seconds(),
    );
    let elapsed = start.elapsed().as_secs_f64();
    counters.stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    Measure {
        answered: ok1 - ok0,
        failed: failed1 - failed0,
        seconds: elapsed,
        user: user1 - user0,
        system: system1 - system0,
    }
}

fn main() {
    let o = Arc::new(options());
    let dir = std::env::temp_dir().join(format!("tracker-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list: String = (0..o.torrents)
        .map(|i| format!("{}\n", InfoHash(info_hash(i)).to_hex()))
        .collect();
    std::fs::write(dir.join("whitelist.txt"), list).expect("whitelist");
    let servers = [start_shoal(&o, &dir), start_opentracker(&dir)];
    eprintln!(
        "tracker-load: {} torrents × {} peers, {} s per phase × {} rounds, HTTP {} threads, UDP {} threads × {} in flight",
        o.torrents, o.peers, o.seconds, o.rounds, o.http_threads, o.udp_threads, o.window
    );

    let mut rows = Vec::new();
    for &proto in &o.protocols {
        // [shoal, opentracker]
        let mut totals = [Measure::default(); 2];
        for round in 0..o.rounds {
            // shoal first in even rounds, opentracker first in odd ones.
            let order = if round % 2 == 0 { [0usize, 1] } else { [1, 0] };
            for s in order {
                let m = phase(
                    proto,
                    &servers[s],
                    &o,
                    o.seconds as f64,
                    (round * 2 + s) as u64 + 7,
                );
                let (user, system) = m.cost();
                eprintln!(
                    "  {proto:?} {:12} round {}: {:>7.0} announces/s, {} failed, {:.1} + {:.1} µs CPU each",
                    servers[s].name,
                    round + 1,
                    m.rate(),
                    m.failed,
                    user,
                    system
                );
                totals[s].add(m);
            }
        }
        rows.push((proto, totals));
    }

    println!();
    println!("| | shoal tracker | opentracker | shoal / opentracker |");
    println!("| --- | ---: | ---: | ---: |");
    for (proto, t) in rows {
        println!(
            "| {proto:?} announces/s | {:.0} | {:.0} | {:.2} |",
            t[0].rate(),
            t[1].rate(),
            t[0].rate() / t[1].rate()
        );
        let (u0, s0) = t[0].cost();
        let (u1, s1) = t[1].cost();
        println!(
            "| {proto:?} tracker CPU per announce (user + system) | {:.1} µs ({u0:.1} + {s0:.1}) | {:.1} µs ({u1:.1} + {s1:.1}) | {:.2} |",
            u0 + s0,
            u1 + s1,
            (u0 + s0) / (u1 + s1)
        );
        println!(
            "| {proto:?} announces per tracker CPU-second | {:.0} | {:.0} | {:.2} |",
            1e6 / (u0 + s0),
            1e6 / (u1 + s1),
            (u1 + s1) / (u0 + s0)
        );
        if t[0].failed + t[1].failed > 0 {
            println!(
                "| {proto:?} failed or lost | {} | {} | |",
                t[0].failed, t[1].failed
            );
        }
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
