//! The announcer's schedule, events, tiers and failures on virtual time.

use super::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn announcer(tiers: &[&[&str]], now: Instant) -> Announcer {
    let tiers = tiers
        .iter()
        .map(|t| t.iter().map(|s| s.to_string()).collect())
        .collect();
    Announcer::new(
        InfoHash([1; 20]),
        PeerId([2; 20]),
        6881,
        tiers,
        AnnouncerConfig::default(),
        42,
        now,
    )
}

fn stats(left: u64) -> AnnounceStats {
    AnnounceStats {
        uploaded: 10,
        downloaded: 20,
        left,
    }
}

fn answer(interval: u64) -> AnnounceResponse {
    let mut r = AnnounceResponse::new(SECS(interval));
    r.peers = vec!["10.0.0.1:6881".parse().unwrap()];
    r
}

/// Polls one announce at `now` and returns its id, URL and event.
fn poll(a: &mut Announcer, now: Instant) -> (AnnounceId, String, AnnounceEvent) {
    let (id, url, params) = a.poll_announce(now, stats(5)).expect("an announce is due");
    (id, url.as_str().to_string(), params.event)
}

fn order(a: &Announcer) -> Vec<String> {
    a.trackers().map(|(_, u)| u.as_str().to_string()).collect()
}

#[test]
fn started_periodic_completed_stopped() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    assert_eq!(a.poll_timeout(), Some(t0));
    let (id, params) = {
        let (id, url, params) = a.poll_announce(t0, stats(100)).unwrap();
        assert_eq!(url.as_str(), "http://a.example/announce");
        (id, params)
    };
    assert_eq!(params.event, AnnounceEvent::Started);
    assert_eq!(
        (params.uploaded, params.downloaded, params.left),
        (10, 20, 100)
    );
    assert_eq!(
        (params.numwant, params.port, params.key),
        (50, 6881, a.key())
    );
    assert!(params.compact);
    // One at a time.
    assert!(a.poll_announce(t0, stats(100)).is_none());
    assert_eq!(a.poll_timeout(), None);

    let mut r = answer(1800);
    r.tracker_id = Some(b"tid".to_vec());
    r.complete = Some(3);
    r.warning = Some("be nice".into());
    let event = a.on_response(id, Ok(r), t0).unwrap();
    assert_eq!(
        event,
        TrackerEvent::Announced {
            url: "http://a.example/announce".into(),
            event: AnnounceEvent::Started,
            peers: vec!["10.0.0.1:6881".parse().unwrap()],
            complete: Some(3),
            incomplete: None,
            warning: Some("be nice".into()),
        }
    );
    // A second outcome for the same id is stale.
    assert_eq!(a.on_response(id, Ok(answer(1800)), t0), None);

    // Periodic, by the interval, echoing the tracker id.
    let t1 = t0 + SECS(1800);
    assert_eq!(a.poll_timeout(), Some(t1));
    assert!(a.poll_announce(t1 - SECS(1), stats(50)).is_none());
    let (id, _, params) = a.poll_announce(t1, stats(50)).unwrap();
    assert_eq!(params.event, AnnounceEvent::None);
    assert_eq!(params.tracker_id.as_deref(), Some(&b"tid"[..]));
    a.on_response(id, Ok(answer(1800)), t1);

    // Completed: at once (no min interval), once.
    let t2 = t1 + SECS(100);
    a.on_completed(t2);
    assert_eq!(a.poll_timeout(), Some(t2));
    let (id, _, event) = poll(&mut a, t2);
    assert_eq!(event, AnnounceEvent::Completed);
    a.on_completed(t2);
    a.on_response(id, Ok(answer(1800)), t2);
    a.on_completed(t2);
    assert_eq!(a.poll_timeout(), Some(t2 + SECS(1800)));
    let (id, _, event) = poll(&mut a, t2 + SECS(1800));
    assert_eq!(event, AnnounceEvent::None);
    a.on_response(id, Ok(answer(1800)), t2 + SECS(1800));

    // Stopped: at once, numwant 0, once; then finished.
    let t3 = t2 + SECS(1900);
    a.stop(t3);
    assert_eq!(a.poll_timeout(), Some(t3));
    let (id, _, params) = a.poll_announce(t3, stats(0)).unwrap();
    assert_eq!((params.event, params.numwant), (AnnounceEvent::Stopped, 0));
    assert!(!a.is_finished());
    assert!(a.poll_announce(t3, stats(0)).is_none());
    let event = a.on_response(id, Err(TrackerError::Timeout), t3).unwrap();
    assert!(matches!(
        event,
        TrackerEvent::Failed {
            event: AnnounceEvent::Stopped,
            ..
        }
    ));
    assert!(a.is_finished());
    assert_eq!(a.poll_timeout(), None);
    assert!(a.poll_announce(t3 + SECS(10_000), stats(0)).is_none());
}

#[test]
fn min_interval_is_respected_for_early_announces() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let (id, _, _) = poll(&mut a, t0);
    let mut r = answer(1800);
    r.min_interval = Some(SECS(300));
    a.on_response(id, Ok(r), t0);
    // `completed` is an event, not an early announce: it does not wait.
    a.on_completed(t0 + SECS(10));
    assert_eq!(a.poll_timeout(), Some(t0 + SECS(10)));
    let (id, _, event) = poll(&mut a, t0 + SECS(10));
    assert_eq!(event, AnnounceEvent::Completed);
    a.on_response(id, Ok(answer(1800)), t0 + SECS(300));
    // An early announce waits for the tracker's min interval.
    a.reannounce(t0 + SECS(301));
    assert_eq!(a.poll_timeout(), Some(t0 + SECS(360)));
    let (id, _, event) = poll(&mut a, t0 + SECS(360));
    assert_eq!(event, AnnounceEvent::None);
    a.on_response(id, Ok(answer(1800)), t0 + SECS(300));

    // reannounce: the config's 60 s floor applies when the tracker gives no min interval.
    let t1 = t0 + SECS(310);
    a.reannounce(t1);
    assert_eq!(a.poll_timeout(), Some(t0 + SECS(360)));
    // Past the floor, at once.
    let (id, _, _) = poll(&mut a, t0 + SECS(360));
    a.on_response(id, Ok(answer(1800)), t0 + SECS(360));
    a.reannounce(t0 + SECS(1000));
    assert_eq!(a.poll_timeout(), Some(t0 + SECS(1000)));
}

#[test]
fn a_completion_during_an_announce_goes_out_after_it() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let (id, _, _) = poll(&mut a, t0);
    a.on_completed(t0);
    let mut r = answer(1800);
    r.min_interval = Some(SECS(120));
    a.on_response(id, Ok(r), t0 + SECS(1));
    assert_eq!(a.poll_timeout(), Some(t0 + SECS(1)));
    assert_eq!(poll(&mut a, t0 + SECS(1)).2, AnnounceEvent::Completed);
}

/// A download that ends before its `completed` is answered: the tracker that knows us
/// hears `completed`, then `stopped`, so it counts the download.
#[test]
fn completed_goes_out_before_stopped() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let (id, _, _) = poll(&mut a, t0);
    a.on_response(id, Ok(answer(1800)), t0);
    a.on_completed(t0 + SECS(5));
    let (completed, _, event) = poll(&mut a, t0 + SECS(5));
    assert_eq!(event, AnnounceEvent::Completed);
    // Stopped while it is under way: it is abandoned, and sent again before `stopped`.
    a.stop(t0 + SECS(6));
    assert!(a
        .on_response(completed, Ok(answer(1)), t0 + SECS(6))
        .is_none());
    let (id, url, event) = poll(&mut a, t0 + SECS(6));
    assert_eq!(
        (url.as_str(), event),
        ("http://a.example/announce", AnnounceEvent::Completed)
    );
    assert!(a.poll_announce(t0 + SECS(6), stats(0)).is_none());
    a.on_response(id, Err(TrackerError::Timeout), t0 + SECS(7));
    let (id, _, event) = poll(&mut a, t0 + SECS(7));
    assert_eq!(event, AnnounceEvent::Stopped);
    a.on_response(id, Ok(answer(1)), t0 + SECS(7));
    assert!(a.is_finished());

    // Once `completed` was answered, `stop` sends `stopped` alone.
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let (id, _, _) = poll(&mut a, t0);
    a.on_response(id, Ok(answer(1800)), t0);
    a.on_completed(t0);
    let (id, _, _) = poll(&mut a, t0);
    a.on_response(id, Ok(answer(1800)), t0);
    a.stop(t0);
    assert_eq!(poll(&mut a, t0).2, AnnounceEvent::Stopped);
}

/// A download that completes and stops while its `started` is still unanswered: the
/// tracker that `started` went to hears `completed` then `stopped`, so it counts it.
#[test]
fn completed_goes_out_even_when_started_was_never_answered() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let (started, _, event) = poll(&mut a, t0);
    assert_eq!(event, AnnounceEvent::Started);
    a.on_completed(t0 + SECS(1));
    a.stop(t0 + SECS(1));
    assert!(a
        .on_response(started, Ok(answer(1800)), t0 + SECS(1))
        .is_none());
    let (id, url, event) = poll(&mut a, t0 + SECS(1));
    assert_eq!(
        (url.as_str(), event),
        ("http://a.example/announce", AnnounceEvent::Completed)
    );
    a.on_response(id, Ok(answer(1)), t0 + SECS(1));
    let (id, _, event) = poll(&mut a, t0 + SECS(1));
    assert_eq!(event, AnnounceEvent::Stopped);
    a.on_response(id, Ok(answer(1)), t0 + SECS(1));
    assert!(a.is_finished());
}

#[test]
fn intervals_are_clamped() {
    let t0 = shoal_test_clock::epoch();
    for (given, used) in [(0, 1800), (5, 60), (60, 60), (7200, 7200), (1 << 40, 7200)] {
        let mut a = announcer(&[&["http://a.example/announce"]], t0);
        let (id, _, _) = poll(&mut a, t0);
        a.on_response(id, Ok(answer(given)), t0);
        assert_eq!(a.poll_timeout(), Some(t0 + SECS(used)), "interval {given}");
    }
    // A min interval above the interval is cut to it.
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let (id, _, _) = poll(&mut a, t0);
    let mut r = answer(600);
    r.min_interval = Some(SECS(100_000));
    a.on_response(id, Ok(r), t0);
    a.reannounce(t0);
    assert_eq!(a.poll_timeout(), Some(t0 + SECS(600)));
}

#[test]
fn tier_failover_and_promotion() {
    let t0 = shoal_test_clock::epoch();
    let tiers: &[&[&str]] = &[
        &[
            "http://a1.example/announce",
            "http://a2.example/announce",
            "http://a3.example/announce",
        ],
        &["udp://b1.example:80", "udp://b2.example:80"],
    ];
    let mut a = announcer(tiers, t0);
    let initial = order(&a);
    // Tier 0 first, whatever the shuffle; tier 1 after.
    assert!(initial[..3].iter().all(|u| u.contains("://a")));
    assert!(initial[3..].iter().all(|u| u.contains("://b")));

    // Everything in tier 0 fails, then the second of tier 1 is tried after the first.
    let mut tried = Vec::new();
    for failures in 0..4 {
        let (id, url, event) = poll(&mut a, t0);
        assert_eq!(event, AnnounceEvent::Started);
        tried.push(url.clone());
        let e = a
            .on_response(id, Err(TrackerError::HttpStatus(500)), t0)
            .unwrap();
        assert_eq!(
            e,
            TrackerEvent::Failed {
                url,
                event: AnnounceEvent::Started,
                error: TrackerError::HttpStatus(500),
                failures: 1,
                next_try: Some(t0),
            },
            "failure {failures}"
        );
    }
    assert_eq!(tried, initial[..4]);
    let (id, url, _) = poll(&mut a, t0);
    assert_eq!(url, initial[4]);
    assert!(matches!(
        a.on_response(id, Ok(answer(1800)), t0),
        Some(TrackerEvent::Announced { .. })
    ));
    // The tracker that answered leads its tier now; tier 0's order is unchanged.
    let after = order(&a);
    assert_eq!(after[..3], initial[..3]);
    assert_eq!(after[3], initial[4]);
    assert_eq!(after[4], initial[3]);

    // The next round starts at tier 0 again; once a tier-0 tracker answers it leads.
    let t1 = t0 + SECS(1800);
    let (id, url, _) = poll(&mut a, t1);
    assert_eq!(url, initial[0]);
    a.on_response(id, Err(TrackerError::Timeout), t1);
    let (id, url, event) = poll(&mut a, t1);
    assert_eq!(url, initial[1]);
    assert_eq!(event, AnnounceEvent::Started, "a2 never saw us");
    a.on_response(id, Ok(answer(1800)), t1);
    let after = order(&a);
    assert_eq!(after[0], initial[1]);
    assert_eq!(after[1], initial[0]);

    // The promoted tracker is asked first from now on.
    let t2 = t1 + SECS(1800);
    let (_, url, event) = poll(&mut a, t2);
    assert_eq!(url, initial[1]);
    assert_eq!(event, AnnounceEvent::None);
}

#[test]
fn backoff_doubles_and_resets() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(
        &[
            &["http://a.example/announce"],
            &["http://b.example/announce"],
        ],
        t0,
    );
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..10 {
        for _ in 0..2 {
            let (id, _, _) = poll(&mut a, now);
            a.on_response(id, Err(TrackerError::Timeout), now);
        }
        let next = a.poll_timeout().unwrap();
        waits.push((next - now).as_secs());
        now = next;
    }
    assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
    // Early announces do not cut a backoff short.
    a.on_completed(now - SECS(1));
    assert_eq!(a.poll_timeout(), Some(now));
    // An answer resets it.
    let (id, _, event) = poll(&mut a, now);
    assert_eq!(event, AnnounceEvent::Completed);
    a.on_response(id, Ok(answer(1800)), now);
    now += SECS(1800);
    for _ in 0..2 {
        let (id, _, _) = poll(&mut a, now);
        a.on_response(id, Err(TrackerError::Timeout), now);
    }
    assert_eq!(a.poll_timeout(), Some(now + SECS(15)));
}

#[test]
fn failure_counts_per_tracker() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let mut now = t0;
    for expected in 1..=3 {
        let (id, _, _) = poll(&mut a, now);
        let e = a.on_response(id, Err(TrackerError::Failure("no".into())), now);
        let Some(TrackerEvent::Failed {
            failures, error, ..
        }) = e
        else {
            panic!("{e:?}");
        };
        assert_eq!(
            (failures, error),
            (expected, TrackerError::Failure("no".into()))
        );
        now = a.poll_timeout().unwrap();
    }
    let (id, _, _) = poll(&mut a, now);
    a.on_response(id, Ok(answer(1800)), now);
    now += SECS(1800);
    let (id, _, _) = poll(&mut a, now);
    let e = a.on_response(id, Err(TrackerError::Timeout), now);
    assert!(matches!(e, Some(TrackerEvent::Failed { failures: 1, .. })));
}

#[test]
fn stop_goes_to_the_last_good_tracker_and_abandons_the_one_under_way() {
    let t0 = shoal_test_clock::epoch();
    let mut a = announcer(
        &[
            &["http://a.example/announce"],
            &["http://b.example/announce"],
        ],
        t0,
    );
    let (id, _, _) = poll(&mut a, t0);
    a.on_response(id, Err(TrackerError::Timeout), t0);
    let (id, url, _) = poll(&mut a, t0);
    assert_eq!(url, "http://b.example/announce");
    a.on_response(id, Ok(answer(1800)), t0);
    let t1 = t0 + SECS(1800);
    let (abandoned, url, _) = poll(&mut a, t1);
    assert_eq!(url, "http://a.example/announce");
    a.stop(t1);
    let (id, url, params) = a.poll_announce(t1, stats(0)).unwrap();
    assert_eq!(url.as_str(), "http://b.example/announce");
    assert_eq!(params.event, AnnounceEvent::Stopped);
    assert_eq!(a.on_response(abandoned, Ok(answer(1800)), t1), None);
    assert!(a.on_response(id, Ok(answer(1800)), t1).is_some());
    assert!(a.is_finished());
}

#[test]
fn stop_before_any_answer() {
    let t0 = shoal_test_clock::epoch();
    // Nothing announced yet: nothing to stop.
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    a.stop(t0);
    assert!(a.is_finished());
    assert!(a.poll_announce(t0, stats(0)).is_none());

    // A started under way may have registered us: stopped goes to the same tracker.
    let mut a = announcer(&[&["http://a.example/announce"]], t0);
    let (started, _, _) = poll(&mut a, t0);
    a.stop(t0);
    let (id, _, event) = poll(&mut a, t0);
    assert_eq!(event, AnnounceEvent::Stopped);
    assert_ne!(id, started);
    a.on_response(id, Ok(answer(1)), t0);
    assert!(a.is_finished());
    a.on_completed(t0);
    a.stop(t0);
    assert!(a.poll_announce(t0, stats(0)).is_none());
}

#[test]
fn urls_are_checked_and_deduplicated() {
    let t0 = shoal_test_clock::epoch();
    let a = announcer(
        &[
            &[
                "wss://x.example/announce",
                "not a url",
                "http://a.example/announce",
            ],
            &[],
            &["HTTP://A.example:80/announce", "udp://b.example:6969"],
        ],
        t0,
    );
    let kept: Vec<(usize, String)> = a
        .trackers()
        .map(|(t, u)| (t, u.as_str().to_string()))
        .collect();
    assert_eq!(
        kept,
        [
            (0, "http://a.example/announce".to_string()),
            (1, "udp://b.example:6969".to_string())
        ]
    );
    let mut none = announcer(&[], t0);
    assert_eq!(none.poll_timeout(), None);
    assert!(none.poll_announce(t0, stats(0)).is_none());
    none.stop(t0);
    assert!(none.is_finished());
}

#[test]
fn shuffle_is_seeded() {
    let t0 = shoal_test_clock::epoch();
    let urls: Vec<String> = (0..8)
        .map(|i| format!("http://t{i}.example/announce"))
        .collect();
    let make = |seed| {
        Announcer::new(
            InfoHash([1; 20]),
            PeerId([2; 20]),
            1,
            vec![urls.clone()],
            AnnouncerConfig::default(),
            seed,
            t0,
        )
    };
    let order_of = |a: &Announcer| order(a);
    assert_eq!(order_of(&make(1)), order_of(&make(1)));
    assert_eq!(make(1).key(), make(1).key());
    let mut sorted = order_of(&make(1));
    sorted.sort();
    assert_eq!(sorted, {
        let mut u = urls.clone();
        u.sort();
        u
    });
    assert!((2..10).any(|seed| order_of(&make(seed)) != order_of(&make(1))));
}
