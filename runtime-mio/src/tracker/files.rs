//! `shoal serve`'s content over HTTP: `/files/<name>[/<path>…]`, the `url-list` of its
//! torrents (BEP 19 appends the torrent's name, and a multi-file torrent's file path, to a
//! URL ending in `/`).
//!
//! A path is served only if it names a file of a torrent the server lists (after
//! percent-decoding, component by component), and only if that file, every link
//! followed, is a regular file inside the served folder: `..`, absolute paths, encoded
//! slashes and links leading out all answer 404, as a file that does not exist does.
//! What to send is core's answer ([`answer_file`]); the bytes are streamed from the file
//! (see `sendfile`), never loaded.

use bytes::Bytes;
use shoal_core::tracker::percent_decode;
use shoal_core::tracker::server::http::error_response;
use shoal_core::tracker::server::RequestHead;
use shoal_core::webseed::serve::answer_file;

use super::conn::{FileBody, Outgoing};
use super::TrackerService;

impl TrackerService {
    /// The answer to a request for `/files/<rest>`.
    pub(super) fn serve_file(&self, head: &RequestHead<'_>, rest: &[u8]) -> Outgoing {
        let not_found = || Outgoing::simple(error_response(404));
        let Some(content) = &self.content else {
            return not_found();
        };
        // Each component decoded on its own, so an encoded `/` stays inside its component
        // (and then names no file).
        let mut path = Vec::new();
        for c in rest.split(|&b| b == b'/') {
            match percent_decode(c).and_then(|c| String::from_utf8(c).ok()) {
                Some(c) => path.push(c),
                None => return not_found(),
            }
        }
        // `shoal serve` names each torrent `<entry>.torrent` after its entry.
        let listed = self
            .folder
            .get(&format!("{}.torrent", path[0]))
            .is_some_and(|t| {
                t.meta.info.name == path[0]
                    && t.meta
                        .info
                        .files
                        .iter()
                        .any(|f| !f.attr.padding && f.path == path)
            });
        if !listed {
            return not_found();
        }
        let Some(real) = content.file(&path) else {
            return not_found();
        };
        let Ok(file) = std::fs::File::open(&real) else {
            return not_found();
        };
        // The open file's own facts: what is sent is what was measured.
        let Ok(meta) = file.metadata() else {
            return not_found();
        };
        if !meta.is_file() {
            return not_found();
        }
        let answer = answer_file(
            head,
            meta.len(),
            meta.modified().ok(),
            "application/octet-stream",
        );
        Outgoing {
            head: answer.head,
            body: Bytes::new(),
            written: 0,
            file: answer.body.map(|b| FileBody {
                file,
                offset: b.offset,
                remaining: b.len,
            }),
            keep_alive: head.keep_alive,
        }
    }
}
