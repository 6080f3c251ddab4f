//! The daemon's web page: plain HTML, one script and one style sheet, compiled into the
//! binary (no build step, nothing fetched from elsewhere). The script drives the daemon
//! through the Transmission RPC like any other remote: it polls `torrent-get` every
//! second and sends `torrent-add` (URL, magnet, or an uploaded file as base64),
//! `torrent-start`/`-stop`/`-remove`, `torrent-set` (wanted files) and shoal's
//! `feed-add`/`-get`/`-remove`.

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

/// The content type and body of the asset at `path`, if there is one.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX)),
        "/app.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        "/style.css" => Some(("text/css; charset=utf-8", STYLE)),
        _ => None,
    }
}
