//! Downloads a torrent with a shoal-async-std [`Session`], then seeds it.
//!
//! ```text
//! cargo run --release -p shoal-async-std --example download -- TORRENT|URL [-o DIR]
//!     [--port N] [--bind IP] [--peer HOST:PORT]... [--no-seed] [--seed-ratio R]
//!     [--seed-time SECS] [--dht [--dht-bootstrap HOST:PORT]...] [--executor async-std|smol]
//! ```
//!
//! With `--dht` the session runs the DHT (BEP 5), starting from `--dht-bootstrap` nodes or
//! else the well-known routers (or `SHOAL_DHT_BOOTSTRAP`), its table kept in `DIR/.shoal/`.
//!
//! The content goes in `DIR/<name>` (`.part` names until each file is verified); data
//! already there is checked first, so a second run resumes. Progress goes to stderr as
//! plain lines. It seeds after the download until uploaded ≥ ratio × size (1.0 unless
//! told; 0 for no limit) or `--seed-time` passes; `--no-seed` exits as soon as the download
//! is complete. Exit codes as `shoal download`: 0 done, 1 failed (one line says why), 130
//! stopped by Ctrl-C (or SIGTERM) before completion. Ctrl-C stops cleanly: `stopped` goes
//! to the trackers, writes finish, the resume record is saved.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_lite::future;
use shoal_async_std::{
    AddOptions, DhtSettings, Event, Executor, SeedLimit, Session, SessionConfig, TorrentSource,
    TorrentStats,
};
use shoal_io::human;

#[derive(Parser)]
#[command(about = "Download a torrent (a .torrent file or an http(s) URL) with shoal-async-std")]
struct Args {
    /// The .torrent file or URL.
    torrent: String,
    /// The folder to download into (the content goes in DIR/<name>).
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// TCP port to accept peers on (0: any free port).
    #[arg(short, long, default_value_t = 6881)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// A peer to connect to; repeatable.
    #[arg(long = "peer", value_name = "HOST:PORT", value_parser = parse_peer)]
    peers: Vec<SocketAddr>,
    /// Exit as soon as the download is complete.
    #[arg(long)]
    no_seed: bool,
    /// Stop seeding once uploaded / size reaches this (0: no ratio limit).
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    seed_ratio: f64,
    /// Stop seeding after this many seconds.
    #[arg(long, value_name = "SECS")]
    seed_time: Option<u64>,
    /// Find peers on the DHT (BEP 5) too.
    #[arg(long)]
    dht: bool,
    /// A DHT node to start from (with --dht); repeatable. Default: the well-known routers.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    dht_bootstrap: Vec<String>,
    /// The executor the session's tasks run on.
    #[arg(long, value_enum, default_value_t = Exec::AsyncStd)]
    executor: Exec,
    /// Accepted for `shoal download`'s command line; progress is always plain lines.
    #[arg(long, hide = true)]
    plain: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Exec {
    AsyncStd,
    Smol,
}

fn parse_peer(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?}: no address"))
}

/// One line on stderr, dropped if stderr is closed (`… 2>&1 | head`): `eprintln!` would
/// panic there and end the download with exit code 101.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

enum Outcome {
    Done,
    Interrupted,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.executor {
        Exec::AsyncStd => async_std::task::block_on(download(&args, Executor::async_std())),
        Exec::Smol => smol::block_on(download(
            &args,
            Executor::new(|task| smol::spawn(task).detach()),
        )),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(message) => {
            say(&format!("download: error: {message}"));
            ExitCode::FAILURE
        }
    }
}

async fn download(args: &Args, executor: Executor) -> Result<Outcome, String> {
    let dht = args.dht.then(|| DhtSettings {
        bootstrap: shoal_io::dht::bootstrap_list(&args.dht_bootstrap),
        state: Some(args.dir.join(".shoal")),
    });
    let config = SessionConfig {
        listen: SocketAddr::new(args.bind, args.port),
        dht,
        // SHOAL_SLOW_DISK (bytes/s) slows writes, for benches/compare's slow-disk mode.
        disk: shoal_io::DiskLimits::from_env(),
        ..SessionConfig::default()
    };
    let session = Session::new(config, executor)
        .map_err(|e| format!("cannot listen on port {}: {e}", args.port))?;
    let stop = signals()?;
    let events = session.events();
    let options = AddOptions {
        peers: args.peers.clone(),
        seed_limit: SeedLimit {
            ratio: (!args.no_seed && args.seed_ratio > 0.0).then_some(args.seed_ratio),
            time: args.seed_time.map(Duration::from_secs),
        },
        ..AddOptions::default()
    };
    // Say how the check of existing data goes while the torrent is added.
    let add = session.add_torrent(TorrentSource::from_arg(&args.torrent), &args.dir, options);
    let checking = async {
        loop {
            if let Ok(Event::Checking { done, total, .. }) = events.recv().await {
                if done == total || done % 256 == 0 {
                    say(&format!("checking existing data: {done}/{total} pieces"));
                }
            }
        }
    };
    let torrent = future::or(add, checking).await.map_err(|e| e.to_string())?;
    let meta = session.metainfo(torrent).await.map_err(|e| e.to_string())?;
    let content = args.dir.join(&meta.info.name);
    say(&format!("listening on {}", session.local_addr()));

    let started = Instant::now();
    let mut complete = false;
    let mut outcome = None;
    if session
        .stats(torrent)
        .await
        .is_ok_and(|s| s.progress.complete)
    {
        complete = true;
        if args.no_seed {
            say(&format!(
                "already complete: {}; nothing to download",
                content.display()
            ));
        } else {
            say(&format!("already complete: {}; seeding", content.display()));
        }
        if args.no_seed {
            outcome = Some(Ok(Outcome::Done));
        }
    } else if meta.trackers().is_empty()
        && meta.url_list.is_empty()
        && args.peers.is_empty()
        && (!args.dht || meta.info.private)
    {
        outcome = Some(Err(
            "the torrent names no tracker, no web seed, and no --peer was given, and the DHT is \
             off (--dht) or the torrent private: no way to find peers"
                .into(),
        ));
    }
    let mut last_line: Option<Instant> = None;
    // A web seed is a source whatever the trackers say.
    let mut trackers = shoal_core::engine::TrackerWatch::new(
        !args.peers.is_empty() || !meta.url_list.is_empty() || args.dht,
    );
    while outcome.is_none() {
        let next = future::or(async { events.recv().await.ok() }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        let Some(event) = next else {
            say("stopping…");
            outcome = Some(Ok(if complete {
                Outcome::Done
            } else {
                Outcome::Interrupted
            }));
            break;
        };
        match event {
            Event::Progress { stats, .. }
                if last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) =>
            {
                last_line = Some(Instant::now());
                say(&progress_line(&stats, complete));
            }
            Event::Completed { .. } => {
                complete = true;
                say(&format!("download complete: {}", content.display()));
                if args.no_seed {
                    outcome = Some(Ok(Outcome::Done));
                }
            }
            Event::SeedingDone { .. } => {
                say("seeding limit reached");
                outcome = Some(Ok(Outcome::Done));
            }
            Event::StorageError { error, .. } => outcome = Some(Err(error.to_string())),
            Event::PeerConnected { .. } => trackers.peer_connected(),
            Event::TrackerAnswer {
                url,
                peers,
                seeders,
                leechers,
                warning,
                ..
            } => {
                if let Some(line) = trackers.report_answer(&url, peers, seeders, leechers) {
                    say(&line);
                }
                trackers.answered();
                if let Some(w) = warning {
                    say(&format!("tracker warning from {url}: {w}"));
                }
            }
            Event::TrackerError {
                url,
                error,
                next_try,
                ..
            } => {
                say(&shoal_core::engine::TrackerWatch::report_failure(
                    &url,
                    &error,
                    next_try,
                    Instant::now(),
                ));
                if let (false, Some(give_up)) = (complete, trackers.failed(&url, &error)) {
                    outcome = Some(Err(give_up));
                }
            }
            Event::PeerBanned { ip, .. } => {
                say(&format!("banned {ip}: sent data that failed hash checks"))
            }
            Event::Warning { message, .. } => say(&format!("warning: {message}")),
            _ => {}
        }
    }
    let stats = session.stats(torrent).await.ok();
    // However it ended: `stopped` to the trackers, writes finished, resume record saved.
    session.shutdown().await;
    if let Some(s) = stats {
        let s = s.progress;
        // One line a script can read: what this run moved (as `shoal download` prints).
        say(&format!(
            "summary: downloaded {} bytes, uploaded {} bytes, {}/{} pieces verified, {:.1} s",
            s.downloaded,
            s.uploaded,
            s.pieces_verified,
            s.piece_count,
            started.elapsed().as_secs_f64()
        ));
    }
    outcome.unwrap_or(Ok(Outcome::Done))
}

fn progress_line(s: &TorrentStats, seeding: bool) -> String {
    format!(
        "{:5.1}% {}/{} pieces {}down {}/s up {}/s, {} peers, ratio {:.2}",
        100.0 * s.bytes_verified as f64 / s.total_length.max(1) as f64,
        s.pieces_verified,
        s.piece_count,
        if seeding { "seeding, " } else { "" },
        human(s.download_rate),
        human(s.upload_rate),
        s.peers,
        s.uploaded as f64 / s.total_length.max(1) as f64,
    )
}

/// A channel that closes on the first SIGINT or SIGTERM (a thread waits for them).
fn signals() -> Result<async_channel::Receiver<()>, String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| e.to_string())?;
    let (tx, rx) = async_channel::bounded::<()>(1);
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            drop(tx);
        }
    });
    Ok(rx)
}
