//! `shoal-sim-server-load [OUT_DIR] [--size MiB] [--server-up KiB/s]`: the seeds' claim,
//! simulated. A web server is the only source of a torrent (its web seed, as `shoal serve`
//! makes it; no peer seeds); flash crowds of 1, 10, 100 and 1,000 downloaders fetch it
//! and share among themselves, and 1,000 arriving at random over 300 s (a Poisson
//! process; they stay once done). For each it prints the bytes the server sent next to what
//! plain HTTP would send (N × F), the share, and the download times, and draws the same
//! as `OUT_DIR/server_load.svg` (default `sim-out/server-load`).
//!
//! Downloaders upload 512 KiB/s and download 4 MiB/s; the server uploads 4 MiB/s (both
//! can be changed); 256 KiB pieces; the tracker is core's.

use std::path::PathBuf;
use std::process::ExitCode;

use shoal_sim::plot::{server_load, LoadPoint};
use shoal_sim::scenario::{Arrival, Group, Rate, WebServerSpec};
use shoal_sim::{Scenario, Sim};

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// How the downloaders come.
#[derive(Clone, Copy)]
enum Crowd {
    /// All within the first second.
    Flash,
    /// A Poisson process, all of them within about this many seconds on average.
    Steady(f64),
}

fn scenario(n: u32, size: u64, server_up: f64, crowd: Crowd) -> Scenario {
    let mut sc = Scenario::flash_crowd(n, size, 256 << 10, 1.0, 512.0 * KIB, 4.0 * MIB);
    sc.name = format!("web server, flash crowd of {n}");
    // No peer seed: the server is the only source.
    let mut group = Group::leechers("downloaders", n, 512.0 * KIB, 4.0 * MIB);
    if let Crowd::Steady(over_s) = crowd {
        sc.name = format!("web server, {n} downloaders over {over_s} s");
        group.arrival = Arrival::Poisson {
            start_s: 0.0,
            rate_per_s: f64::from(n) / over_s,
        };
    }
    sc.groups = vec![group];
    sc.web_server = Some(WebServerSpec {
        upload: Rate(server_up),
        latency_ms: 20.0,
    });
    sc
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("sim-out/server-load");
    let mut size_mib = 32u64;
    let mut server_kib = 4096.0;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => size_mib = args.next().and_then(|s| s.parse().ok()).unwrap_or(size_mib),
            "--server-up" => {
                server_kib = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(server_kib)
            }
            "-h" | "--help" => {
                eprintln!(
                    "usage: shoal-sim-server-load [OUT_DIR] [--size MiB] [--server-up KiB/s]"
                );
                return ExitCode::SUCCESS;
            }
            _ => out = PathBuf::from(a),
        }
    }
    let size = size_mib << 20;
    let server_up = server_kib * KIB;
    println!(
        "web server at {:.0} KiB/s, the only source of {size_mib} MiB; downloaders 512 KiB/s up, 4 MiB/s down",
        server_kib
    );
    println!(
        "{:>12} {:>14} {:>14} {:>14} {:>9} {:>10} {:>10} {:>9}",
        "downloaders",
        "arrivals",
        "server MiB",
        "plain HTTP MiB",
        "share",
        "mean s",
        "last s",
        "requests"
    );
    let mut points = Vec::new();
    let runs = [
        (1u32, Crowd::Flash),
        (10, Crowd::Flash),
        (100, Crowd::Flash),
        (1000, Crowd::Flash),
        (1000, Crowd::Steady(300.0)),
    ];
    for (n, crowd) in runs {
        let report = match Sim::new(scenario(n, size, server_up, crowd)) {
            Ok(sim) => sim.run(),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let s = &report.summary;
        let t = &report.totals;
        if s.completed != s.leechers {
            eprintln!("{n}: only {} of {} completed", s.completed, s.leechers);
            return ExitCode::FAILURE;
        }
        let plain = u64::from(n) * size;
        let arrivals = match crowd {
            Crowd::Flash => "flash crowd".to_string(),
            Crowd::Steady(s) => format!("over {s:.0} s"),
        };
        println!(
            "{:>12} {:>14} {:>14.1} {:>14.1} {:>8.2}% {:>10.1} {:>10.1} {:>9}",
            n,
            arrivals,
            t.web_payload_sent as f64 / MIB,
            plain as f64 / MIB,
            100.0 * t.web_payload_sent as f64 / plain as f64,
            s.mean_download_s.unwrap_or(f64::NAN),
            s.last_download_s.unwrap_or(f64::NAN),
            t.web_requests,
        );
        // The figure is of the flash crowds; the steady row is in the table.
        if let Crowd::Flash = crowd {
            points.push(LoadPoint {
                downloaders: n,
                server_bytes: t.web_payload_sent,
                plain_http_bytes: plain,
            });
        }
    }
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("{}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let svg = out.join("server_load.svg");
    let caption = format!("Bytes a web server sends: {size_mib} MiB to N downloaders");
    if let Err(e) = server_load(&points, &caption, &svg) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    println!("drawn in {}", svg.display());
    ExitCode::SUCCESS
}
