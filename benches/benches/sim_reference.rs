//! The reference run of issue 7, timed as a bench: `cargo bench -p shoal-benches --bench
//! sim_reference` runs `sim/scenarios/flash-crowd-1000.toml` (1,000 leechers, 64 MiB in
//! 256 KiB pieces) once and prints its wall time, simulated events per second and the
//! ratios to the Kumar–Ross bound. Once, not criterion's ten samples: a run takes most of
//! a minute, and its event count is the same every time (the run is deterministic).
//!
//! Without `--bench` (as `cargo test --all-targets` runs benches), the same scenario runs
//! with 100 leechers and 4 MiB, so the suite checks that this bench works.

use shoal_sim::{Scenario, Sim};

fn main() {
    shoal_sim::thp::restart_with_huge_pages();
    let full = std::env::args().any(|a| a == "--bench");
    let mut sc = Scenario::from_toml(include_str!("../../sim/scenarios/flash-crowd-1000.toml"))
        .expect("the reference scenario parses");
    if !full {
        sc.torrent.size.0 = 4 << 20;
        for g in &mut sc.groups {
            g.count = g.count.min(100);
        }
    }
    let leechers: u32 = sc.groups.iter().filter(|g| !g.seed).map(|g| g.count).sum();
    let report = Sim::new(sc).expect("a valid scenario").run();
    println!("{}", report.text_summary());
    let s = &report.summary;
    let t = &report.totals;
    assert_eq!(s.completed, leechers, "every leecher completes");
    println!(
        "sim_reference: wall {:.2} s, {} events, {:.0} events/s, {} engine calls, mean/bound {:.2}, last/bound {:.2}",
        t.wall_s,
        t.events,
        t.events_per_s,
        t.engine_calls,
        s.mean_over_bound.unwrap_or(f64::NAN),
        s.last_over_bound.unwrap_or(f64::NAN),
    );
}
