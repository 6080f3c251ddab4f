use super::*;
use crate::rng::Rng;
use core::net::Ipv4Addr;
use quickcheck::quickcheck;
use std::collections::BTreeSet;

fn contact(rng: &mut Rng, n: u32) -> Contact {
    Contact {
        id: NodeId::random(rng),
        addr: SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 6881),
    }
}

fn check_invariants(t: &Table) {
    let last = t.buckets.len() - 1;
    let mut ids = BTreeSet::new();
    for (i, b) in t.buckets.iter().enumerate() {
        assert!(b.entries.len() <= t.k, "bucket {i} over k");
        assert!(b.cache.len() <= t.k, "cache {i} over k");
        for e in &b.entries {
            let cpl = t.own.common_prefix(&e.contact.id);
            assert!(
                if i == last { cpl >= i } else { cpl == i },
                "entry in the wrong bucket"
            );
            assert!(e.contact.id != t.own);
            assert!(ids.insert(e.contact.id), "an id twice");
        }
    }
}

quickcheck! {
    fn buckets_stay_bounded_sorted_and_unique(seed: u64, count: u16) -> bool {
        let now = shoal_test_clock::epoch();
        let mut rng = Rng::new(seed);
        let own = NodeId::random(&mut rng);
        let mut table = Table::new(own, 8, now);
        let mut offered = Vec::new();
        for n in 0..u32::from(count % 2000) {
            // Some ids close to ours, so the table splits deep.
            let mut c = contact(&mut rng, n);
            if n % 3 == 0 {
                c.id = own.random_at_prefix((n as usize / 3) % 40, &mut rng);
            }
            table.insert(c, n % 2 == 0, now);
            offered.push(c);
        }
        check_invariants(&table);
        // The k closest the table returns are the k closest of what it holds.
        let target = NodeId::random(&mut rng);
        let mut held = table.contacts();
        held.sort_by_key(|c| c.id.distance(&target));
        held.truncate(8);
        table.closest(&target, 8) == held
    }
}

#[test]
fn the_deepest_bucket_keeps_every_node_in_its_range() {
    // Whatever the order of arrival, every node sharing at least as many leading bits
    // with our id as the deepest bucket covers is held: that bucket splits until they fit.
    // (Strict Kademlia buckets do not promise the same for the k closest overall: a
    // shallower full bucket keeps the first k of its range, not the closest k.)
    let now = shoal_test_clock::epoch();
    let mut rng = Rng::new(3);
    let own = NodeId::random(&mut rng);
    let mut table = Table::new(own, 8, now);
    let all: Vec<Contact> = (0..5000).map(|n| contact(&mut rng, n)).collect();
    for c in &all {
        table.insert(*c, true, now);
    }
    let depth = table.bucket_count() - 1;
    assert!(depth > 8);
    let mut deep: Vec<Contact> = all
        .iter()
        .filter(|c| own.common_prefix(&c.id) >= depth)
        .copied()
        .collect();
    deep.sort_by_key(|c| c.id.distance(&own));
    assert!(!deep.is_empty());
    assert_eq!(table.closest(&own, deep.len()), deep);
    check_invariants(&table);
}

#[test]
fn full_buckets_cache_then_replace_bad_nodes() {
    let now = shoal_test_clock::epoch();
    let mut rng = Rng::new(9);
    let own = NodeId([0; 20]);
    let mut table = Table::new(own, 2, now);
    // Ids with the top bit set share no prefix with ours: they all go to bucket 0 once
    // the table has split.
    let far = |rng: &mut Rng, n| {
        let mut c = contact(rng, n);
        c.id.0[0] |= 0x80;
        c
    };
    let near = |rng: &mut Rng, n| {
        let mut c = contact(rng, n);
        c.id.0[0] &= 0x7f;
        c
    };
    table.insert(near(&mut rng, 100), true, now);
    let a = far(&mut rng, 1);
    let b = far(&mut rng, 2);
    assert_eq!(table.insert(a, true, now), Insert::Added);
    assert_eq!(table.insert(b, false, now), Insert::Added);
    let c = far(&mut rng, 3);
    // b never answered: it is questionable, and the one to ping.
    assert_eq!(table.insert(c, true, now), Insert::Cached { ping: Some(b) });
    assert_eq!(
        table.insert(c, true, now),
        Insert::Cached { ping: None },
        "not pinged twice in a row"
    );
    table.failed(&b.id, b.addr);
    assert!(table.contacts().contains(&b), "one failure is not bad yet");
    table.failed(&b.id, b.addr);
    assert!(!table.contacts().contains(&b));
    assert!(
        table.contacts().contains(&c),
        "the cached node took its place"
    );
    // A known id at another address does not move it.
    let forged = Contact {
        id: a.id,
        addr: SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 1),
    };
    assert_eq!(table.insert(forged, true, now), Insert::Refused);
    assert_eq!(
        table.insert(
            Contact {
                id: own,
                addr: a.addr
            },
            true,
            now
        ),
        Insert::Refused
    );
    check_invariants(&table);
}
