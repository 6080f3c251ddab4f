//! The web pages of the tracker and of `shoal serve`: the HTML index of the torrents, and
//! the URLs the pages and the feed give out.
//!
//! Absolute URLs (a magnet's tracker, the feed's links) start from the server's base:
//! `shoal serve`'s `--url`, else the `Host` the client asked for (what reached this
//! server reaches it again), else the listening address. Every magnet link carries the
//! torrent's trackers with this tracker first (`tr=`) and, from `shoal serve`, its web
//! seed (`ws=`, the torrents' `url-list`), percent-encoded.

use std::fmt::Write as _;

use shoal_core::metainfo::Metainfo;
use shoal_core::tracker::percent_encode;
use shoal_core::tracker::server::RequestHead;
use shoal_io::human;

use super::{lock, TrackerService};

impl TrackerService {
    /// `http://HOST[:PORT]`, no trailing `/`: where clients reach this server.
    pub(super) fn base_url(&self, head: &RequestHead<'_>) -> String {
        if let Some(content) = &self.content {
            return content.base().to_string();
        }
        let host = head
            .host
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            });
        match (host, self.http_addr()) {
            (Some(h), _) => format!("http://{h}"),
            (None, Some(a)) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
            (None, Some(a)) => format!("http://{a}"),
            (None, None) => "http://127.0.0.1".to_string(),
        }
    }

    /// The magnet link of `meta` as this server gives it out.
    pub(super) fn magnet(&self, meta: &Metainfo, base: &str) -> String {
        let mut m = meta.magnet();
        let here = format!("{base}/announce");
        m.trackers.retain(|t| *t != here);
        m.trackers.insert(0, here);
        let mut uri = m.to_uri();
        if let Some(content) = &self.content {
            let ws = format!("&ws={}", percent_encode(content.files_url().as_bytes()));
            // Once magnets carry a torrent's `url-list` themselves, it is there already.
            if !uri.contains(&ws) {
                uri.push_str(&ws);
            }
        }
        uri
    }

    pub(super) fn index_page(&self, base: &str) -> String {
        let mut page = String::with_capacity(1024 + self.folder.torrents.len() * 512);
        let title = if self.content.is_some() {
            "shoal serve"
        } else {
            "shoal tracker"
        };
        page.push_str(&format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n\
             <link rel=\"alternate\" type=\"application/rss+xml\" href=\"/feed.xml\">\n\
             <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
             th,td{{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}}\
             td.n{{text-align:right}}</style></head>\n<body>\n<h1>{title}</h1>\n",
        ));
        if self.folder.torrents.is_empty() {
            page.push_str("<p>No torrents are listed here.</p>\n");
        } else {
            page.push_str(
                "<table>\n<tr><th>Name</th><th>Size</th><th>Seeders</th><th>Leechers</th>\
                 <th>Downloads</th><th>Links</th></tr>\n",
            );
            let tracker = lock(&self.tracker);
            for t in &self.folder.torrents {
                let stats = tracker.stats(&t.meta.info_hash);
                let _ = writeln!(
                    page,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                     <td class=\"n\">{}</td><td class=\"n\">{}</td>\
                     <td><a href=\"/{}\">torrent</a> <a href=\"{}\">magnet</a></td></tr>",
                    html_escape(&t.meta.info.name),
                    human(t.meta.info.total_length),
                    stats.complete,
                    stats.incomplete,
                    stats.downloaded,
                    html_escape(&percent_encode(t.file.as_bytes())),
                    html_escape(&self.magnet(&t.meta, base)),
                );
            }
            page.push_str("</table>\n");
        }
        page.push_str(&self.served_line());
        page.push_str("</body></html>\n");
        page
    }

    /// The index page's line on where to announce: what is really on.
    pub(super) fn served_line(&self) -> String {
        let mut line = String::from(
            "<p>Announce over HTTP at <code>/announce</code>, scrape at <code>/scrape</code>",
        );
        match self.udp_addr() {
            Some(udp) => {
                let _ = write!(
                    line,
                    "; over UDP (BEP 15) at port {}, <code>udp://HOST:{}/announce</code>",
                    udp.port(),
                    udp.port()
                );
            }
            None => line.push_str(" (HTTP only: UDP is off)"),
        }
        line.push_str(".</p>\n");
        line
    }
}
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn escapes() {
        assert_eq!(
            html_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
