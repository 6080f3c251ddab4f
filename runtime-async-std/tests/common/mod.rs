//! What the tests of shoal-async-std share: the executors they run under, and waiting for
//! a session's events with a deadline.
//!
//! Every scenario is written once, generic over [`Exec`], and run once under async-std and
//! once under smol: the adapter asks an executor only to spawn, so both must pass the same
//! body.

#![allow(dead_code)] // each test file uses a part

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_channel::Receiver;
use async_io::Timer;
use futures_lite::future;
use shoal_async_std::{Event, Executor, Session, SessionConfig, TorrentKey};

/// An executor to run a test body on: how to spawn (for the session) and how to wait for
/// the body itself.
pub trait Exec {
    const NAME: &'static str;
    fn executor() -> Executor;
    fn block_on<F: Future>(future: F) -> F::Output;
}

/// async-std: its global executor, its `block_on`.
pub struct AsyncStd;

impl Exec for AsyncStd {
    const NAME: &'static str = "async-std";
    fn executor() -> Executor {
        Executor::async_std()
    }
    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

/// smol: its global executor, its `block_on`.
pub struct Smol;

impl Exec for Smol {
    const NAME: &'static str = "smol";
    fn executor() -> Executor {
        Executor::new(|task| smol::spawn(task).detach())
    }
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

/// A session on 127.0.0.1, on a free port, that saves resume records often.
pub fn session<E: Exec>() -> Session {
    let config = SessionConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        resume_interval: Duration::from_secs(1),
        ..SessionConfig::default()
    };
    Session::new(config, E::executor()).expect("bind 127.0.0.1:0")
}

/// The events a test has seen, to show when it fails.
#[derive(Default)]
pub struct Seen {
    log: Vec<String>,
}

impl Seen {
    /// Whether any event seen so far (progress and verified pieces aside) shows `needle`
    /// in its debug form.
    pub fn any(&self, needle: &str) -> bool {
        self.log.iter().any(|e| e.contains(needle))
    }

    pub fn tail(&self) -> String {
        let start = self.log.len().saturating_sub(30);
        self.log[start..].join("\n")
    }
}

/// Waits for the first event for which `want` is true. Every 250 ms without one, `check`
/// runs (it may panic, e.g. when a peer process died); past `deadline` the test fails with
/// the last events seen. Events that come meanwhile are recorded in `seen`; a
/// `StorageError` fails the test at once.
pub async fn wait_event(
    events: &Receiver<Event>,
    seen: &mut Seen,
    what: &str,
    deadline: Instant,
    mut want: impl FnMut(&Event) -> bool,
    mut check: impl FnMut(),
) -> Event {
    loop {
        let next = future::or(async { Some(events.recv().await) }, async {
            Timer::after(Duration::from_millis(250)).await;
            None
        })
        .await;
        match next {
            Some(Ok(event)) => {
                if !matches!(event, Event::Progress { .. } | Event::PieceVerified { .. }) {
                    seen.log.push(format!("{event:?}"));
                }
                if let Event::StorageError { error, .. } = &event {
                    panic!("storage error while waiting for {what}: {error}");
                }
                if want(&event) {
                    return event;
                }
            }
            Some(Err(_)) => panic!("the session ended while waiting for {what}"),
            None => {}
        }
        check();
        if Instant::now() >= deadline {
            panic!("{what}: not in time; last events:\n{}", seen.tail());
        }
    }
}

/// Waits for `Completed` of `torrent`.
pub async fn wait_complete(
    events: &Receiver<Event>,
    seen: &mut Seen,
    torrent: TorrentKey,
    deadline: Instant,
    check: impl FnMut(),
) {
    wait_event(
        events,
        seen,
        "download complete",
        deadline,
        |e| matches!(e, Event::Completed { torrent: t } if *t == torrent),
        check,
    )
    .await;
}

/// Polls `check` every 100 ms until it returns `Ok`; fails at `deadline` with its last
/// complaint. (The async twin of `support::wait_until`: it leaves the executor free.)
pub async fn poll_until(
    what: &str,
    deadline: Instant,
    mut check: impl FnMut() -> Result<(), String>,
) {
    loop {
        let why = match check() {
            Ok(()) => return,
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            panic!("{what}: not done in time; last: {why}");
        }
        Timer::after(Duration::from_millis(100)).await;
    }
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
