//! Blog torrents, the reader's half: the feeds a daemon follows, what they offer, and
//! what it has taken.
//!
//! A feed (RSS 2.0, Atom, RSS 1.0, JSON Feed: parsed by `feed-rs`) offers a torrent when
//! an item has an enclosure or link that is one: its type is `application/x-bittorrent`,
//! its path ends in `.torrent`, or it is a `magnet:` link. When the user subscribes, what
//! the feed offers then is marked as seen, not taken (subscribing to a blog does not
//! download its archive); from then on, every new offer whose item title matches the
//! feed's pattern (all, without one) is taken once. What was taken is kept in
//! [`FeedRecord::seen`] (the newest [`MAX_SEEN`] keys), in the state folder, so a restart
//! takes nothing twice.
//!
//! Polling: every interval (the daemon's `--feed-interval`), with the server's
//! validators (`ETag`, `Last-Modified`) for a conditional GET, at most [`MAX_FEED_BYTES`]
//! of body; after a failure the wait doubles per failure in a row, up to a day.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most bytes of a feed read.
pub const MAX_FEED_BYTES: u64 = 4 << 20;
/// The most item keys remembered per feed.
pub const MAX_SEEN: usize = 2000;
/// The longest wait between polls after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// One torrent a feed offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// The item's title (what `--match` is tried on).
    pub title: String,
    /// The `.torrent` URL or the magnet link.
    pub link: String,
}

/// A followed feed, as kept in the state folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub id: u32,
    pub url: String,
    /// A regular expression item titles must match; all items without one.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Links already seen or taken, oldest first.
    #[serde(default)]
    pub seen: Vec<String>,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Failed polls in a row.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Torrents taken from it, in all.
    #[serde(default)]
    pub taken: u64,
}

impl FeedRecord {
    /// A new subscription whose current offers are marked as seen.
    pub fn subscribe(
        id: u32,
        url: String,
        pattern: Option<String>,
        now_offered: &[Offer],
    ) -> Result<FeedRecord, String> {
        if let Some(p) = &pattern {
            regex::Regex::new(p).map_err(|e| format!("--match {p:?}: {e}"))?;
        }
        let mut rec = FeedRecord {
            id,
            url,
            pattern,
            seen: Vec::new(),
            etag: None,
            last_modified: None,
            failures: 0,
            last_error: None,
            taken: 0,
        };
        for o in now_offered {
            rec.remember(&o.link);
        }
        Ok(rec)
    }

    /// The offers to take now (new, and matching), each remembered from now on.
    pub fn take_new(&mut self, offers: &[Offer]) -> Vec<Offer> {
        let pattern = self
            .pattern
            .as_deref()
            .and_then(|p| regex::Regex::new(p).ok());
        let mut out = Vec::new();
        for o in offers {
            if self.seen.iter().any(|s| s == &o.link) {
                continue;
            }
            if pattern.as_ref().is_some_and(|re| !re.is_match(&o.title)) {
                continue;
            }
            self.remember(&o.link);
            self.taken += 1;
            out.push(o.clone());
        }
        out
    }

    fn remember(&mut self, link: &str) {
        if !self.seen.iter().any(|s| s == link) {
            self.seen.push(link.to_string());
        }
        let over = self.seen.len().saturating_sub(MAX_SEEN);
        self.seen.drain(..over);
    }

    /// How long to wait before the next poll: `interval`, doubled per failure in a row up
    /// to [`MAX_BACKOFF`] (never less than `interval`).
    pub fn wait(&self, interval: Duration) -> Duration {
        if self.failures == 0 {
            return interval;
        }
        let factor = 1u32 << self.failures.min(16);
        interval
            .saturating_mul(factor)
            .min(MAX_BACKOFF)
            .max(interval)
    }
}

/// A feed as the interfaces show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedView {
    pub id: u32,
    pub url: String,
    pub pattern: Option<String>,
    pub taken: u64,
    pub failures: u32,
    pub last_error: Option<String>,
}

impl From<&FeedRecord> for FeedView {
    fn from(r: &FeedRecord) -> FeedView {
        FeedView {
            id: r.id,
            url: r.url.clone(),
            pattern: r.pattern.clone(),
            taken: r.taken,
            failures: r.failures,
            last_error: r.last_error.clone(),
        }
    }
}

/// The torrents `body` (a feed's bytes) offers, newest items first as the feed lists them.
pub fn offers(body: &[u8]) -> Result<Vec<Offer>, String> {
    let feed = feed_rs::parser::parse(body).map_err(|e| format!("not a feed: {e}"))?;
    let mut out = Vec::new();
    for entry in feed.entries {
        let title = entry
            .title
            .as_ref()
            .map(|t| t.content.clone())
            .unwrap_or_default();
        let mut candidates: Vec<(String, Option<String>)> = Vec::new();
        for media in &entry.media {
            for c in &media.content {
                if let Some(url) = &c.url {
                    candidates.push((
                        url.to_string(),
                        c.content_type.as_ref().map(|m| m.to_string()),
                    ));
                }
            }
        }
        for l in &entry.links {
            candidates.push((l.href.clone(), l.media_type.clone()));
        }
        let mut found = Vec::new();
        for (link, kind) in candidates {
            if is_torrent(&link, kind.as_deref()) && !found.contains(&link) {
                found.push(link);
            }
        }
        for link in found {
            out.push(Offer {
                title: title.clone(),
                link,
            });
        }
    }
    Ok(out)
}

fn is_torrent(link: &str, kind: Option<&str>) -> bool {
    let lower = link.to_ascii_lowercase();
    if lower.starts_with("magnet:") {
        return true;
    }
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return false;
    }
    let path = lower.split(['?', '#']).next().unwrap_or("");
    kind.is_some_and(|k| k.eq_ignore_ascii_case("application/x-bittorrent"))
        || path.ends_with(".torrent")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>A blog</title><link>http://blog.example/</link>
<description>things</description>
<item><title>Episode 2 (video)</title><link>http://blog.example/2.html</link>
  <guid>http://blog.example/2</guid><pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate>
  <enclosure url="http://blog.example/files/ep2.torrent" length="1234" type="application/x-bittorrent"/></item>
<item><title>Episode 1 (audio)</title><link>http://blog.example/1.html</link>
  <enclosure url="http://blog.example/files/ep1.mp3" length="99" type="audio/mpeg"/></item>
</channel></rss>"#;

    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Releases</title><id>urn:x</id>
<updated>2026-12-01T10:00:00Z</updated>
<entry><title>v2</title><id>urn:x:2</id><updated>2026-12-01T10:00:00Z</updated>
  <link rel="alternate" href="http://rel.example/v2"/>
  <link rel="enclosure" type="application/x-bittorrent" href="http://rel.example/get?id=2"/></entry>
<entry><title>v1</title><id>urn:x:1</id><updated>2026-11-01T10:00:00Z</updated>
  <link href="magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"/></entry>
</feed>"#;

    #[test]
    fn rss_enclosures_and_atom_links_that_are_torrents_are_offered() {
        let rss = offers(RSS.as_bytes()).unwrap();
        assert_eq!(
            rss,
            vec![Offer {
                title: "Episode 2 (video)".into(),
                link: "http://blog.example/files/ep2.torrent".into()
            }]
        );
        let atom = offers(ATOM.as_bytes()).unwrap();
        let links: Vec<&str> = atom.iter().map(|o| o.link.as_str()).collect();
        assert_eq!(
            links,
            vec![
                "http://rel.example/get?id=2",
                "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
            ]
        );
        assert!(offers(b"<html><body>not a feed</body></html>").is_err());
        assert!(offers(b"\x00\x01garbage").is_err());
    }

    #[test]
    fn what_was_there_at_subscription_is_not_taken_and_nothing_is_taken_twice() {
        let first = vec![Offer {
            title: "old".into(),
            link: "http://b/old.torrent".into(),
        }];
        let mut rec =
            FeedRecord::subscribe(1, "http://b/feed".into(), Some("(?i)video".into()), &first)
                .unwrap();
        let mut now = first.clone();
        now.push(Offer {
            title: "New VIDEO".into(),
            link: "http://b/new.torrent".into(),
        });
        now.push(Offer {
            title: "new audio".into(),
            link: "http://b/audio.torrent".into(),
        });
        let taken = rec.take_new(&now);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].link, "http://b/new.torrent");
        assert!(rec.take_new(&now).is_empty());
        assert_eq!(rec.taken, 1);
        assert!(FeedRecord::subscribe(2, "u".into(), Some("(".into()), &[]).is_err());
    }

    #[test]
    fn the_wait_doubles_per_failure_up_to_a_day() {
        let mut rec = FeedRecord::subscribe(1, "u".into(), None, &[]).unwrap();
        let base = Duration::from_secs(600);
        assert_eq!(rec.wait(base), base);
        rec.failures = 3;
        assert_eq!(rec.wait(base), base * 8);
        rec.failures = 40;
        assert_eq!(rec.wait(base), MAX_BACKOFF);
    }
}
