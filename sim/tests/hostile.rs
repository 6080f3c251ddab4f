//! Hostile nodes in a swarm (issue 20): flooders, nodes that lie in their bitfield, nodes
//! that send corrupt data, and a hundred Sybils on one address. The honest leechers finish
//! within 1.2× of their mean time in the same swarm without them, and the senders of
//! corrupt data — the Sybils as one host — are banned.
//!
//! Like the other simulator tests, best run with `opt-level = 3` (see sim's README).

use std::collections::BTreeSet;
use std::net::IpAddr;

use shoal_sim::report::Report;
use shoal_sim::scenario::{Group, Scenario};
use shoal_sim::Sim;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn run(sc: Scenario) -> Report {
    Sim::new(sc).expect("valid scenario").run()
}

const UP: f64 = 512.0 * KIB as f64;
const DOWN: f64 = 4.0 * MIB as f64;

/// 50 honest leechers, a seed, and 5 more leechers (the flooders of the hostile run,
/// honest here: the flooders download too, and their demand is not the attack).
fn clean(seed: u64) -> Scenario {
    let mut sc = Scenario::flash_crowd(50, 4 * MIB, 64 * KIB as u32, 2.0 * MIB as f64, UP, DOWN);
    sc.seed = seed;
    sc.groups.push(Group::leechers("flooders", 5, UP, DOWN));
    sc
}

/// The clean swarm with its 5 extra leechers flooding, and 5 liars, 3 corrupt seeds and
/// 100 corrupt Sybils on one address added.
fn hostile(seed: u64) -> Scenario {
    let mut sc = clean(seed);
    let (up, down) = (UP, DOWN);
    let flooders = sc.groups.iter_mut().find(|g| g.name == "flooders").unwrap();
    flooders.flood = true;
    // Claim every piece, deliver none.
    let mut liars = Group::leechers("liars", 5, up, down);
    liars.seed = true;
    liars.free_rider = true;
    let mut corrupt = Group::leechers("corrupt", 3, up, down);
    corrupt.seed = true;
    corrupt.corrupt = true;
    let mut sybils = Group::leechers("sybils", 100, up, down);
    sybils.seed = true;
    sybils.corrupt = true;
    sybils.sybil = true;
    sc.groups.extend([liars, corrupt, sybils]);
    sc
}

/// The mean download time of the honest leechers, all of whom must finish.
fn honest_mean(r: &Report) -> f64 {
    let times: Vec<f64> = r
        .nodes
        .iter()
        .filter(|n| n.group == "leechers")
        .map(|n| {
            n.download_time_s
                .unwrap_or_else(|| panic!("honest leecher {} did not finish", n.id))
        })
        .collect();
    times.iter().sum::<f64>() / times.len() as f64
}

fn hosts_of(r: &Report, group: &str) -> BTreeSet<IpAddr> {
    // A node's address is not in its report; its id gives it (10.x.y.z, id + 1), and a
    // Sybil group's is its first node's.
    r.nodes
        .iter()
        .filter(|n| n.group == group)
        .map(|n| {
            let first = r.nodes.iter().find(|m| m.group == group).unwrap().id;
            let id = if group == "sybils" { first } else { n.id } + 1;
            IpAddr::from([10, (id >> 16) as u8, (id >> 8) as u8, id as u8])
        })
        .collect()
}

#[test]
fn honest_leechers_finish_within_1_2x_of_a_clean_swarm_and_the_liars_are_banned() {
    // Four seeds, chosen before measuring: one run is one draw of arrivals and choices,
    // and the bound is on the mean (one run of eight measured lands at 1.21, others
    // between 1.06 and 1.19).
    let mut ratios = Vec::new();
    for seed in 1..=4 {
        let c = run(clean(seed));
        let h = run(hostile(seed));
        let ratio = honest_mean(&h) / honest_mean(&c);
        println!(
            "seed {seed}: honest leechers {ratio:.3}x the clean swarm's mean; {} hash failures, {} bans, {} flood requests",
            h.totals.hash_failures, h.totals.bans, h.totals.flood_requests
        );
        ratios.push(ratio);
        assert!(h.totals.flood_requests > 0, "the flooders flooded");
        assert!(
            h.totals.withheld_payload > 0,
            "the liars were asked and gave nothing"
        );
        let banned_by = |n: &shoal_sim::report::NodeReport| -> BTreeSet<IpAddr> {
            n.banned_hosts.iter().copied().collect()
        };
        let sybil = hosts_of(&h, "sybils");
        assert_eq!(sybil.len(), 1, "a Sybil group is one host");
        let corrupt: BTreeSet<IpAddr> = hosts_of(&h, "corrupt").union(&sybil).copied().collect();
        let honest = hosts_of(&h, "leechers");
        let mut banned_anywhere = BTreeSet::new();
        for n in h.nodes.iter().filter(|n| n.group == "leechers") {
            let banned = banned_by(n);
            // Nobody honest is banned: a piece shared with a liar is not the honest
            // sender's fault.
            assert!(
                banned.is_subset(&corrupt),
                "seed {seed}: leecher {} banned {:?}, not a corrupt host",
                n.id,
                banned.difference(&corrupt).collect::<Vec<_>>()
            );
            banned_anywhere.extend(banned);
        }
        assert_eq!(
            banned_anywhere, corrupt,
            "seed {seed}: every corrupt host (the Sybils as one) is banned somewhere"
        );
        assert!(honest.is_disjoint(&banned_anywhere));
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    assert!(
        mean <= 1.2,
        "honest leechers took {mean:.3}x the clean swarm's mean time ({ratios:?})"
    );
}
