//! `shoal-sim-dht`: thousands of DHT nodes on virtual time (see `shoal_sim::dht`).
//!
//! ```sh
//! cargo run --profile sim -p shoal-sim --bin shoal-sim-dht -- --nodes 10000 --seed 1
//! cargo run --profile sim -p shoal-sim --bin shoal-sim-dht -- --nodes 10000 --deaf 0.1 --liars 0.1 --churn 0.1
//! ```

use std::process::ExitCode;

use shoal_sim::dht::{run, DhtScenario};

const USAGE: &str = "usage: shoal-sim-dht [--nodes N] [--seed N] [--lookups N] [--announces N] \
                     [--deaf SHARE] [--liars SHARE] [--churn SHARE]";

fn main() -> ExitCode {
    let mut sc = DhtScenario::new(10_000, 1);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let ok = match (a.as_str(), value.as_deref()) {
            ("--nodes", Some(v)) => v.parse().map(|n| sc.nodes = n).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|n| sc.seed = n).is_ok(),
            ("--lookups", Some(v)) => v.parse().map(|n| sc.lookups = n).is_ok(),
            ("--announces", Some(v)) => v.parse().map(|n| sc.announces = n).is_ok(),
            ("--deaf", Some(v)) => v.parse().map(|x| sc.deaf = x).is_ok(),
            ("--liars", Some(v)) => v.parse().map(|x| sc.liars = x).is_ok(),
            ("--churn", Some(v)) => v.parse().map(|x| sc.churn = x).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    if sc.nodes < 2 || sc.deaf + sc.liars >= 0.9 {
        eprintln!("{USAGE}\n(at least 2 nodes, and most of them honest)");
        return ExitCode::from(2);
    }
    println!("{}", run(&sc).text());
    ExitCode::SUCCESS
}
