//! Fetching a `.torrent` by URL from a tiny HTTP server on 127.0.0.1: plain answers,
//! redirects, error statuses, the size cap and the timeout. No other network.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use shoal_io::{fetch_torrent, fetch_torrent_with, load_torrent, Error, FetchError, FetchOptions};

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        out.extend(format!("{k}: {v}\r\n").bytes());
    }
    out.extend(b"\r\n");
    out.extend(body);
    out
}

/// Answers each connection (one request each) with `route(path)`; `None` holds the
/// connection open without answering for two seconds. Runs until the test binary exits.
fn serve(route: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let route = std::sync::Arc::new(route);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let route = route.clone();
            thread::spawn(move || answer(stream, &*route));
        }
    });
    base
}

fn answer(mut stream: TcpStream, route: &dyn Fn(&str) -> Option<Vec<u8>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    match route(&path) {
        Some(bytes) => {
            let _ = stream.write_all(&bytes);
        }
        None => thread::sleep(Duration::from_secs(2)),
    }
}

/// A server with a torrent at /t.torrent, a chain of redirects /r/N → … → /r/0 →
/// /t.torrent (N + 1 redirects), a 404, a 500, a body that is not a torrent, and a URL
/// that never answers.
fn server(torrent: Vec<u8>) -> String {
    serve(move |path| {
        if path == "/t.torrent" {
            return Some(response(
                "200 OK",
                &[("Content-Type", "application/x-bittorrent")],
                &torrent,
            ));
        }
        if let Some(n) = path.strip_prefix("/r/") {
            let n: u32 = n.parse().unwrap();
            let next = if n == 0 {
                "/t.torrent".to_string()
            } else {
                format!("/r/{}", n - 1)
            };
            return Some(response("302 Found", &[("Location", &next)], b""));
        }
        match path {
            "/junk" => Some(response("200 OK", &[], b"<html>not a torrent</html>")),
            "/oops" => Some(response("500 Internal Server Error", &[], b"oops")),
            "/hang" => None,
            _ => Some(response("404 Not Found", &[], b"no such torrent")),
        }
    })
}

#[test]
fn a_torrent_is_fetched_and_parsed() {
    let t = sample();
    let base = server(t.bytes.clone());
    let url = format!("{base}/t.torrent");
    assert_eq!(fetch_torrent(&url).unwrap(), t.bytes);
    let (meta, bytes) = load_torrent(&url).unwrap();
    assert_eq!(meta, *t.meta);
    assert_eq!(bytes, t.bytes);
}

#[test]
fn up_to_five_redirects_are_followed() {
    let t = sample();
    let base = server(t.bytes.clone());
    // /r/4 is five redirects away from the torrent.
    assert_eq!(fetch_torrent(&format!("{base}/r/4")).unwrap(), t.bytes);
    let url = format!("{base}/r/5");
    let e = fetch_torrent(&url).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Fetch {
                source: FetchError::TooManyRedirects { limit: 5 },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), format!("{url}: more than 5 redirects"));
}

#[test]
fn error_statuses_are_named() {
    let base = server(Vec::new());
    let url = format!("{base}/nope.torrent");
    let e = fetch_torrent(&url).unwrap_err();
    assert!(matches!(
        &e,
        Error::Fetch {
            source: FetchError::Status(404),
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        format!("{url}: server answered HTTP 404 Not Found")
    );
    let e = load_torrent(&format!("{base}/oops")).unwrap_err();
    assert!(
        e.to_string().ends_with("HTTP 500 Internal Server Error"),
        "{e}"
    );
}

#[test]
fn a_body_that_is_not_a_torrent_is_refused() {
    let base = server(Vec::new());
    let url = format!("{base}/junk");
    let e = load_torrent(&url).unwrap_err();
    assert!(matches!(&e, Error::MetainfoUrl { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("{url}: not a torrent file")),
        "{e}"
    );
}

#[test]
fn the_size_cap_holds() {
    let t = sample();
    let base = server(t.bytes.clone());
    let opts = FetchOptions {
        max_len: 100,
        ..FetchOptions::default()
    };
    let e = fetch_torrent_with(&format!("{base}/t.torrent"), &opts).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Fetch {
                source: FetchError::TooLarge { limit: 100 },
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_silent_server_times_out() {
    let base = server(Vec::new());
    let opts = FetchOptions {
        timeout: Duration::from_millis(200),
        ..FetchOptions::default()
    };
    let start = Instant::now();
    let e = fetch_torrent_with(&format!("{base}/hang"), &opts).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Fetch {
                source: FetchError::Timeout,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_closed_port_is_a_transport_error_naming_the_url() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/t.torrent");
    let e = fetch_torrent(&url).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Fetch {
                source: FetchError::Transport(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().starts_with(&format!("{url}: ")), "{e}");
    eprintln!("{e}");
}

#[test]
fn anything_else_is_a_path() {
    let t = sample();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.torrent");
    std::fs::write(&path, &t.bytes).unwrap();
    let (meta, bytes) = load_torrent(path.to_str().unwrap()).unwrap();
    assert_eq!(meta, *t.meta);
    assert_eq!(bytes, t.bytes);
    let missing = dir.path().join("http:");
    let e = load_torrent(missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(&e, Error::Io { .. }), "{e:?}");
}
