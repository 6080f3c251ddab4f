//! `/feed.xml`: an RSS 2.0 feed of the torrents served, one item per torrent with the
//! `.torrent` as its enclosure (`application/x-bittorrent`, its length in bytes): what a
//! blog publishes so feed readers and torrent clients pick new torrents up by themselves.
//!
//! Items go newest first (by the time the `.torrent` file was last written, which is also
//! their `pubDate`); each `guid` is the info-hash, so a reader that has seen a torrent
//! knows it again even if its file is renamed. The XML is written by quick-xml, which
//! escapes every text and attribute: names come from torrents and may hold anything.

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use shoal_core::tracker::percent_encode;
use shoal_io::human;

use super::folder::Listed;
use super::TrackerService;

impl TrackerService {
    /// The feed, with absolute URLs under `base`.
    pub(super) fn feed(&self, base: &str) -> Vec<u8> {
        let mut items: Vec<&Listed> = self.folder.torrents.iter().collect();
        items.sort_by(|a, b| b.stamp.1.cmp(&a.stamp.1).then(a.file.cmp(&b.file)));
        let title = if self.content.is_some() {
            "shoal serve"
        } else {
            "shoal tracker"
        };
        // Writing to a Vec cannot fail.
        write_feed(title, base, &items).unwrap_or_default()
    }
}

fn write_feed(title: &str, base: &str, items: &[&Listed]) -> io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("rss")
        .with_attribute(("version", "2.0"))
        .write_inner_content(|w| {
            w.create_element("channel").write_inner_content(|w| {
                text(w, "title", title)?;
                text(w, "link", &format!("{base}/"))?;
                text(w, "description", &format!("Torrents served at {base}/"))?;
                text(w, "generator", concat!("shoal/", env!("CARGO_PKG_VERSION")))?;
                for t in items {
                    let url = format!("{base}/{}", percent_encode(t.file.as_bytes()));
                    w.create_element("item").write_inner_content(|w| {
                        text(w, "title", &t.meta.info.name)?;
                        text(w, "link", &url)?;
                        text(
                            w,
                            "description",
                            &format!(
                                "{} in {} file(s), info-hash {}",
                                human(t.meta.info.total_length),
                                t.meta.info.files.iter().filter(|f| !f.attr.padding).count(),
                                t.meta.info_hash
                            ),
                        )?;
                        w.create_element("guid")
                            .with_attribute(("isPermaLink", "false"))
                            .write_text_content(BytesText::new(&t.meta.info_hash.to_string()))?;
                        if let Some(when) = t.stamp.1 {
                            text(w, "pubDate", &httpdate::fmt_http_date(when))?;
                        }
                        w.create_element("enclosure")
                            .with_attribute(("url", url.as_str()))
                            .with_attribute(("length", t.bytes.len().to_string().as_str()))
                            .with_attribute(("type", "application/x-bittorrent"))
                            .write_empty()?;
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(w.into_inner())
}

fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))
        .map(drop)
}
