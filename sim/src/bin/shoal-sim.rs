//! `shoal-sim SCENARIO.toml [OUT_DIR] [--seed N]`: runs a scenario and writes its report
//! (report.json, nodes.csv, timeline.csv, completion_cdf.svg, progress.svg,
//! availability.svg) into OUT_DIR (default `sim-out/<scenario file name>`).

use std::path::PathBuf;
use std::process::ExitCode;

use shoal_sim::{Scenario, Sim};

fn main() -> ExitCode {
    shoal_sim::thp::restart_with_huge_pages();
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut out = None;
    let mut seed = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().and_then(|s| s.parse::<u64>().ok()),
            "-h" | "--help" => {
                eprintln!("usage: shoal-sim SCENARIO.toml [OUT_DIR] [--seed N]");
                return ExitCode::SUCCESS;
            }
            _ if file.is_none() => file = Some(PathBuf::from(a)),
            _ if out.is_none() => out = Some(PathBuf::from(a)),
            _ => {
                eprintln!("unexpected argument {a:?}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("usage: shoal-sim SCENARIO.toml [OUT_DIR] [--seed N]");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut sc = match Scenario::from_toml(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(seed) = seed {
        sc.seed = seed;
    }
    let out =
        out.unwrap_or_else(|| PathBuf::from("sim-out").join(file.file_stem().unwrap_or_default()));
    eprintln!(
        "running {:?}: {} nodes, {} bytes, seed {}",
        sc.name,
        sc.node_count(),
        sc.torrent.size.0,
        sc.seed
    );
    let sim = match Sim::new(sc) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let report = sim.run();
    println!("{}", report.text_summary());
    if let Err(e) = report.write_dir(&out) {
        eprintln!("writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("report written to {}", out.display());
    if report.totals.internal_errors > 0 {
        eprintln!(
            "the engines reported {} internal errors (engine and picker disagreed): a bug",
            report.totals.internal_errors
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
