//! The swarm simulator's speed: whole flash crowds on virtual time, reported as simulated
//! events per second (criterion's element throughput: one element is one event taken from
//! the simulator's queue).
//!
//! The reference run (1,000 leechers, 64 MiB in 256 KiB pieces) takes most of a minute
//! per iteration, too long for criterion's sampling; `sim_reference.rs` times it once
//! (figures and where the time goes: sim/README.md, "Speed"). Here the same swarm shape
//! runs smaller: 100 leechers × 16 MiB, and 1,000 leechers × 4 MiB.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shoal_sim::{Scenario, Sim};

const MIB: u64 = 1 << 20;

fn scenario(leechers: u32, size: u64) -> Scenario {
    Scenario::flash_crowd(
        leechers,
        size,
        256 * 1024,
        8.0 * MIB as f64,
        MIB as f64,
        8.0 * MIB as f64,
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    for (leechers, size) in [(100u32, 16 * MIB), (1000, 4 * MIB)] {
        // One run to learn the event count (the same in every run: it is deterministic).
        let report = Sim::new(scenario(leechers, size)).unwrap().run();
        assert_eq!(report.summary.completed, leechers);
        eprintln!("{}", report.text_summary());
        g.throughput(Throughput::Elements(report.totals.events));
        // Ten iterations of what the first run took, and some slack: no "unable to
        // complete 10 samples" warning.
        g.measurement_time(Duration::from_secs_f64(report.totals.wall_s * 12.0 + 1.0));
        let name = format!("flash_crowd_{leechers}x{}MiB", size / MIB);
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| Sim::new(scenario(leechers, size)).unwrap().run())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
