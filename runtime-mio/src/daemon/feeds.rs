//! Following feeds: the loop keeps each feed's record (what it has seen and taken, its
//! validators, its failures) and when it is due; the poller thread fetches due feeds
//! (conditional GET, [`MAX_FEED_BYTES`] at most) and adds what they newly offer through
//! the same path as any `torrent-add`, so a feed's torrent gets the same checks and
//! errors. A feed that fails is tried again after a wait that doubles per failure.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;
use shoal_daemon::control::{AddRequest, Control, Source};
use shoal_daemon::feed::{self, FeedRecord, FeedView, Offer, MAX_FEED_BYTES};
use shoal_io::{FetchOptions, Fetched};

use super::server::Proxy;
use super::torrents::Torrents;
use super::Msg;

/// How often the poller looks for due feeds.
const TICK: Duration = Duration::from_secs(1);

/// A feed due for a poll: its id, URL and validators.
pub struct Due {
    id: u32,
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

fn fetch_options() -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(30),
        total_timeout: Duration::from_secs(120),
        max_redirects: 5,
        max_len: MAX_FEED_BYTES,
    }
}

/// Fetches `url` and reads its offers (a subscription's first look).
pub fn first_look(url: &str) -> Result<Vec<Offer>, String> {
    match shoal_io::fetch_if_changed(url, None, None, &fetch_options()) {
        Ok(Fetched::Body { bytes, .. }) => feed::offers(&bytes).map_err(|e| format!("{url}: {e}")),
        Ok(Fetched::NotModified) => Err(format!("{url}: answered 304 to a plain GET")),
        Err(e) => Err(e.to_string()),
    }
}

impl Torrents {
    pub fn subscribe(
        &mut self,
        url: String,
        pattern: Option<String>,
        offers: &[Offer],
    ) -> Result<FeedView, String> {
        if let Some(f) = self.feeds.iter().find(|f| f.url == url) {
            return Err(format!("already following {url} (feed {})", f.id));
        }
        self.next_feed_id = self.next_feed_id.max(1);
        let id = self.next_feed_id;
        let rec = FeedRecord::subscribe(id, url, pattern, offers)?;
        self.next_feed_id += 1;
        let view = FeedView::from(&rec);
        self.feeds.push(rec);
        self.feed_due
            .insert(id, Instant::now() + self.feed_interval());
        self.save_state();
        Ok(view)
    }

    pub fn feed_views(&self) -> Vec<FeedView> {
        self.feeds.iter().map(FeedView::from).collect()
    }

    pub fn unsubscribe(&mut self, ids: &[u32]) {
        self.feeds.retain(|f| !ids.contains(&f.id));
        self.feed_due.retain(|id, _| !ids.contains(id));
        self.save_state();
    }

    /// The feeds due now; each is taken off the schedule until its poll is reported.
    pub fn due_feeds(&mut self) -> Vec<Due> {
        let now = Instant::now();
        let mut due = Vec::new();
        for f in &self.feeds {
            if self.feed_due.get(&f.id).is_some_and(|&t| t <= now) {
                due.push(Due {
                    id: f.id,
                    url: f.url.clone(),
                    etag: f.etag.clone(),
                    last_modified: f.last_modified.clone(),
                });
            }
        }
        for d in &due {
            self.feed_due.remove(&d.id);
        }
        due
    }

    /// A poll's result: the offers to add now.
    fn polled(
        &mut self,
        id: u32,
        result: Result<Option<(Vec<Offer>, Fetched)>, String>,
    ) -> Vec<Offer> {
        let interval = self.feed_interval();
        let Some(f) = self.feeds.iter_mut().find(|f| f.id == id) else {
            return Vec::new(); // unsubscribed meanwhile
        };
        let take = match result {
            Ok(None) => {
                f.failures = 0;
                f.last_error = None;
                Vec::new()
            }
            Ok(Some((offers, fetched))) => {
                f.failures = 0;
                f.last_error = None;
                if let Fetched::Body {
                    etag,
                    last_modified,
                    ..
                } = fetched
                {
                    f.etag = etag;
                    f.last_modified = last_modified;
                }
                f.take_new(&offers)
            }
            Err(e) => {
                f.failures += 1;
                f.last_error = Some(e);
                Vec::new()
            }
        };
        let wait = f.wait(interval);
        self.feed_due.insert(id, Instant::now() + wait);
        self.save_state();
        take
    }

    fn feed_error(&mut self, id: u32, error: String) {
        if let Some(f) = self.feeds.iter_mut().find(|f| f.id == id) {
            f.last_error = Some(error);
            self.save_state();
        }
    }
}

/// Polls due feeds until the daemon goes away.
pub fn poller(tx: Sender<Msg>, waker: Arc<Waker>) {
    let mut proxy = Proxy::new(tx, waker);
    loop {
        std::thread::sleep(TICK);
        let Ok(due) = proxy.ask(|t| t.due_feeds()) else {
            return;
        };
        for d in due {
            let result = match shoal_io::fetch_if_changed(
                &d.url,
                d.etag.as_deref(),
                d.last_modified.as_deref(),
                &fetch_options(),
            ) {
                Ok(Fetched::NotModified) => Ok(None),
                Ok(Fetched::Body {
                    bytes,
                    etag,
                    last_modified,
                }) => feed::offers(&bytes)
                    .map(|offers| {
                        let validators = Fetched::Body {
                            bytes: Vec::new(),
                            etag,
                            last_modified,
                        };
                        Some((offers, validators))
                    })
                    .map_err(|e| format!("{}: {e}", d.url)),
                Err(e) => Err(e.to_string()),
            };
            let id = d.id;
            let Ok(take) = proxy.ask(move |t| t.polled(id, result)) else {
                return;
            };
            for offer in take {
                let added = proxy.add(AddRequest::new(Source::from_filename(&offer.link)));
                match added {
                    Ok(a) => crate::say::err_line(&format!(
                        "feed {id}: added {} ({})",
                        a.name, offer.title
                    )),
                    Err(e) => {
                        let msg = format!("{}: {e}", offer.link);
                        crate::say::err_line(&format!("feed {id}: {msg}"));
                        if proxy.ask(move |t| t.feed_error(id, msg)).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}
