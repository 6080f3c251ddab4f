//! The web seed state machine on hand-made answers.

use std::time::Duration;

use quickcheck::quickcheck;

use super::*;
use crate::metainfo::Info;

fn info(multi: bool, files: &[(&str, u64, bool)]) -> Info {
    let paths: Vec<Vec<&str>> = files
        .iter()
        .map(|(name, _, _)| if multi { vec!["t", *name] } else { vec![*name] })
        .collect();
    let files: Vec<(&[&str], u64, bool)> = paths
        .iter()
        .zip(files)
        .map(|(path, (_, length, padding))| (path.as_slice(), *length, *padding))
        .collect();
    super::url::test_info(multi, 16, &files)
}

/// The bytes of a `206` for `first..=last` of a file `total` long, whose byte i is `i`.
fn partial(first: u64, last: u64, total: u64) -> Vec<u8> {
    let mut raw = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{total}\r\nContent-Length: {}\r\n\r\n",
        last - first + 1
    )
    .into_bytes();
    raw.extend((first..=last).map(|i| i as u8));
    raw
}

fn get(step: Step) -> HttpGet {
    match step {
        Step::Get(g) => g,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn range_of(g: &HttpGet) -> String {
    let text = String::from_utf8(g.request.clone()).unwrap();
    let line = text.lines().find(|l| l.starts_with("Range: ")).unwrap();
    line["Range: bytes=".len()..].to_string()
}

#[test]
fn a_run_across_files_and_padding() {
    let now = shoal_test_clock::epoch();
    let i = info(
        true,
        &[("a", 10, false), ("pad", 6, true), ("b", 20, false)],
    );
    let mut ws = WebSeed::new("http://h/s/", &i, WebSeedConfig::default()).unwrap();
    assert!(ws.is_ready(now));
    let g = get(ws.start(1, 4, 30));
    assert_eq!(g.url.as_str(), "http://h/s/t/a");
    assert_eq!(range_of(&g), "4-9");
    assert_eq!(ws.jobs(), 1);
    let g2 = get(ws.on_answer(g.serial, Ok(&partial(4, 9, 10)), now).unwrap());
    assert_eq!(g2.url.as_str(), "http://h/s/t/b");
    assert_eq!(range_of(&g2), "0-17");
    // A late answer to the first request changes nothing.
    assert!(ws
        .on_answer(g.serial, Ok(&partial(4, 9, 10)), now)
        .is_none());
    match ws
        .on_answer(g2.serial, Ok(&partial(0, 17, 20)), now)
        .unwrap()
    {
        Step::Done {
            job: 1,
            start,
            data,
        } => {
            assert_eq!(start, 4);
            let mut want: Vec<u8> = (4..10).collect();
            want.extend([0; 6]);
            want.extend(0..18);
            assert_eq!(&data[..], &want[..]);
        }
        other => panic!("{other:?}"),
    }
    assert!(ws.is_ready(now));
}

#[test]
fn two_jobs_run_side_by_side_and_a_failure_ends_both() {
    let now = shoal_test_clock::epoch();
    let i = info(false, &[("f", 100, false)]);
    let mut ws = WebSeed::new("http://h/f", &i, WebSeedConfig::default()).unwrap();
    let a = get(ws.start(7, 0, 10));
    assert!(ws.is_ready(now), "a second job may start");
    let b = get(ws.start(8, 10, 10));
    assert!(!ws.is_ready(now), "two jobs at most");
    assert_ne!(a.serial, b.serial);
    // Answers come in any order; each ends its own job.
    match ws.on_answer(b.serial, Ok(&partial(10, 19, 100)), now) {
        Some(Step::Done {
            job: 8,
            start: 10,
            data,
        }) => assert_eq!(data[0], 10),
        other => panic!("{other:?}"),
    }
    assert!(ws.is_ready(now));
    let c = get(ws.start(9, 20, 10));
    match ws.on_answer(a.serial, Ok(&partial(0, 9, 100)), now) {
        Some(Step::Done {
            job: 7,
            start: 0,
            data,
        }) => assert_eq!(&data[..], &(0..10).collect::<Vec<u8>>()[..]),
        other => panic!("{other:?}"),
    }
    let d = get(ws.start(10, 30, 10));
    // A failure of one ends both: the other's answer is then ignored.
    let step = ws.on_answer(
        c.serial,
        Ok(b"HTTP/1.1 500 x\r\nContent-Length: 0\r\n\r\n"),
        now,
    );
    assert!(matches!(step, Some(Step::Failed(_))), "{step:?}");
    assert_eq!(ws.jobs(), 0);
    assert!(ws
        .on_answer(d.serial, Ok(&partial(30, 39, 100)), now)
        .is_none());
    // With both slots taken, a third job ends the oldest.
    let config = WebSeedConfig {
        max_jobs: 2,
        ..WebSeedConfig::default()
    };
    let mut ws = WebSeed::new("http://h/f", &i, config).unwrap();
    let e = get(ws.start(1, 0, 10));
    let f = get(ws.start(2, 10, 10));
    let g = get(ws.start(3, 20, 10));
    assert_eq!(ws.jobs(), 2);
    assert!(ws
        .on_answer(e.serial, Ok(&partial(0, 9, 100)), now)
        .is_none());
    assert!(matches!(
        ws.on_answer(f.serial, Ok(&partial(10, 19, 100)), now),
        Some(Step::Done { job: 2, .. })
    ));
    assert!(matches!(
        ws.on_answer(g.serial, Ok(&partial(20, 29, 100)), now),
        Some(Step::Done { job: 3, .. })
    ));
}

#[test]
fn failures_back_off_and_drop() {
    let t0 = shoal_test_clock::epoch();
    let i = info(false, &[("f", 100, false)]);
    let mut ws = WebSeed::new("http://h/f", &i, WebSeedConfig::default()).unwrap();
    let mut now = t0;
    let mut waits = Vec::new();
    for n in 1..=5 {
        let g = get(ws.start(1, 0, 50));
        let step = ws.on_answer(g.serial, Ok(b"HTTP/1.1 404 Not Found\r\n\r\n"), now);
        let Some(Step::Failed(f)) = step else {
            panic!("{step:?}")
        };
        assert_eq!(f.reason, WebSeedError::Status(404));
        assert_eq!(f.failures, n);
        if n < 5 {
            let at = f.retry_at.unwrap();
            waits.push(at - now);
            assert!(!ws.is_ready(at - Duration::from_millis(1)));
            assert!(ws.is_ready(at));
            now = at;
        } else {
            assert_eq!(f.retry_at, None);
            assert!(ws.is_dropped());
            assert!(!ws.is_ready(now + Duration::from_secs(86400)));
        }
    }
    let secs: Vec<u64> = waits.iter().map(|d| d.as_secs()).collect();
    assert_eq!(secs, [30, 60, 120, 240]);
}

#[test]
fn backoff_is_capped_and_a_verified_piece_forgives() {
    let now = shoal_test_clock::epoch();
    let i = info(false, &[("f", 100, false)]);
    let config = WebSeedConfig {
        max_failures: 100,
        ..WebSeedConfig::default()
    };
    let mut ws = WebSeed::new("http://h/f", &i, config).unwrap();
    let mut last = None;
    for _ in 0..20 {
        last = ws
            .fail(WebSeedError::HashFailed(crate::PieceIndex(0)), now)
            .retry_at;
    }
    assert_eq!(last, Some(now + Duration::from_secs(1800)));
    ws.piece_verified();
    assert_eq!(ws.failures(), 0);
    assert!(ws.is_ready(now));
}

#[test]
fn redirects_are_followed_and_bounded() {
    let now = shoal_test_clock::epoch();
    let i = info(false, &[("f", 100, false)]);
    let mut ws = WebSeed::new("http://h/f", &i, WebSeedConfig::default()).unwrap();
    let mut g = get(ws.start(1, 0, 10));
    let redirect =
        b"HTTP/1.1 302 Found\r\nLocation: http://mirror:81/x/f\r\nContent-Length: 0\r\n\r\n";
    for _ in 0..5 {
        g = get(ws.on_answer(g.serial, Ok(redirect), now).unwrap());
        assert_eq!(g.url.as_str(), "http://mirror:81/x/f");
        assert_eq!(range_of(&g), "0-9");
    }
    match ws.on_answer(g.serial, Ok(redirect), now).unwrap() {
        Step::Failed(f) => assert_eq!(f.reason, WebSeedError::TooManyRedirects),
        other => panic!("{other:?}"),
    }
    // A redirect then the data.
    let mut ws = WebSeed::new("http://h/f", &i, WebSeedConfig::default()).unwrap();
    let g = get(ws.start(1, 0, 10));
    let g = get(ws.on_answer(g.serial, Ok(redirect), now).unwrap());
    assert!(matches!(
        ws.on_answer(g.serial, Ok(&partial(0, 9, 100)), now),
        Some(Step::Done { .. })
    ));
}

#[test]
fn transport_errors_are_failures() {
    let now = shoal_test_clock::epoch();
    let i = info(false, &[("f", 100, false)]);
    let mut ws = WebSeed::new("http://h/f", &i, WebSeedConfig::default()).unwrap();
    let g = get(ws.start(1, 0, 10));
    let e = IoError::new(std::io::ErrorKind::ConnectionRefused, "http://h/f: refused");
    match ws.on_answer(g.serial, Err(e.clone()), now).unwrap() {
        Step::Failed(f) => assert_eq!(f.reason, WebSeedError::Transport(e)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn jobs_are_bounded() {
    let i = info(false, &[("f", 100 << 20, false)]);
    let mut ws = WebSeed::new("http://h/f", &i, WebSeedConfig::default()).unwrap();
    let g = get(ws.start(1, 0, 100 << 20));
    assert_eq!(range_of(&g), format!("0-{}", (4 << 20) - 1));
    assert_eq!(g.max_body, 4 << 20);
}

quickcheck! {
    fn arbitrary_answers_never_panic_nor_give_more(raw: Vec<u8>, start: u8, len: u8, head: bool) -> bool {
        let now = shoal_test_clock::epoch();
        let i = info(true, &[("a", 100, false), ("b", 100, false)]);
        let mut ws = WebSeed::new("http://h/", &i, WebSeedConfig::default()).unwrap();
        let (start, len) = (u64::from(start) % 200, u64::from(len) + 1);
        let Step::Get(g) = ws.start(1, start, len) else { return false };
        // Half the time a plausible head before the arbitrary bytes, to reach the body checks.
        let mut answer = Vec::new();
        if head {
            let last = (start + len).min(100) - 1;
            answer.extend(format!("HTTP/1.1 206 x\r\nContent-Range: bytes {start}-{last}/100\r\n\r\n").bytes());
        }
        answer.extend(&raw);
        let mut serial = g.serial;
        // Feed the same bytes to every request the job makes (at most a few).
        for _ in 0..8 {
            match ws.on_answer(serial, Ok(&answer), now) {
                Some(Step::Get(g)) => serial = g.serial,
                Some(Step::Done { start: s, data, .. }) => {
                    return s == start && data.len() as u64 == len.min(200 - start);
                }
                Some(Step::Failed(_)) => return !ws.is_busy(),
                None => return false,
            }
        }
        true
    }
}
