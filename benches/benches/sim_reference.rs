//! The reference run of issue 7, timed as a bench: `cargo bench -p shoal-benches --bench
//! sim_reference` runs `sim/scenarios/flash-crowd-1000.toml` (1,000 leechers, 64 MiB in
//! 256 KiB pieces) once and prints its wall time, simulated events per second and the
//! ratios to the Kumar–Ross bound. Once, not criterion's ten samples: a run takes most of
//! a minute, and its event count is the same every time (the run is deterministic).
//!
//! Before it, the same scenario runs with 50 leechers: the same work per node (each still
//! has ~45 peers), but few enough nodes that every engine call finds its state in the
//! cache. Its time per engine call is the floor the reference's calls would reach if
//! memory cost nothing; the bench prints both and their ratio, measured in the same run
//! (sim/README.md, "Speed", has what that ratio means for issue 7's goal).
//!
//! Without `--bench` (as `cargo test --all-targets` runs benches), the scenario runs with
//! 100 leechers and 4 MiB (and its companion with 50), so the suite checks that this bench
//! works.

use shoal_sim::{Report, Scenario, Sim};

/// Leechers in the in-cache companion run.
const FEW: u32 = 50;

/// Runs `sc` with at most `leechers` leechers and checks that every one completes.
fn run(mut sc: Scenario, leechers: u32) -> Report {
    for g in sc.groups.iter_mut().filter(|g| !g.seed) {
        g.count = g.count.min(leechers);
    }
    let expected: u32 = sc.groups.iter().filter(|g| !g.seed).map(|g| g.count).sum();
    let report = Sim::new(sc).expect("a valid scenario").run();
    assert_eq!(
        report.summary.completed, expected,
        "every leecher completes"
    );
    report
}

/// Wall time per engine call, in microseconds.
fn per_call_us(r: &Report) -> f64 {
    r.totals.wall_s * 1e6 / r.totals.engine_calls as f64
}

fn main() {
    shoal_sim::thp::restart_with_huge_pages();
    let full = std::env::args().any(|a| a == "--bench");
    let mut sc = Scenario::from_toml(include_str!("../../sim/scenarios/flash-crowd-1000.toml"))
        .expect("the reference scenario parses");
    let leechers = if full { u32::MAX } else { 100 };
    if !full {
        sc.torrent.size.0 = 4 << 20;
    }
    let few = run(sc.clone(), FEW);
    let report = run(sc, leechers);
    println!("{}", report.text_summary());
    let s = &report.summary;
    let t = &report.totals;
    println!(
        "sim_reference: wall {:.2} s, {} events, {:.0} events/s, {} engine calls, mean/bound {:.2}, last/bound {:.2}",
        t.wall_s,
        t.events,
        t.events_per_s,
        t.engine_calls,
        s.mean_over_bound.unwrap_or(f64::NAN),
        s.last_over_bound.unwrap_or(f64::NAN),
    );
    let (many_us, few_us) = (per_call_us(&report), per_call_us(&few));
    println!(
        "sim_reference: per engine call {many_us:.3} µs, {few_us:.3} µs with {FEW} leechers \
         ({:.2}x); at that rate the run would take {:.2} s",
        many_us / few_us,
        few_us * t.engine_calls as f64 / 1e6,
    );
}
