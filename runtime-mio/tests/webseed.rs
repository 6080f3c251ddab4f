//! Web seeds (BEP 19): `shoal download` gets a torrent from a web server alone (no
//! tracker, no peer): Debian's nginx, started here with a config of our own on
//! 127.0.0.1, serving a single-file and a multi-file payload. And a hostile web server
//! (wrong bytes, a 200 for a range, a body cut short, a redirect loop, a huge
//! Content-Length): the download does not complete from it, shoal says what is wrong with
//! it by its URL, and no finished file appears.
//!
//! Connections: several jobs share keep-alive connections, and servers that close after
//! each answer (saying so, or not), or say `Connection: close` mid-way, still serve.
//!
//! Needs Debian's nginx and mktorrent (`scripts/test` installs them). A missing tool fails
//! the test: it is never skipped.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// `shoal download --no-seed` with no tracker and no peer; asserts exit 0.
fn download_alone(scene: &Scene, torrent: &Path, dl: &Path) -> Proc {
    let mut shoal = shoal_download(
        "shoal",
        torrent,
        dl,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    shoal.wait_success(scene.deadline);
    shoal
}

#[test]
fn shoal_downloads_a_multi_file_torrent_from_nginx_alone() {
    let scene = Scene::new();
    let nginx = Nginx::start(&scene.src(), &scene.path("nginx"), scene.deadline);
    // mktorrent -w: the web seed names the folder above the payload.
    let torrent = scene.path("payload.torrent");
    run(Command::new("mktorrent")
        .args(["-l", "15", "-w", &nginx.url(), "-o"])
        .arg(&torrent)
        .arg(scene.content()));
    let dl = scene.path("dl");
    download_alone(&scene, &torrent, &dl);
    scene.payload.assert_exact(&dl);
}

#[test]
fn shoal_downloads_a_single_file_torrent_from_nginx_alone() {
    let scene = Scene::new();
    let www = scene.path("www");
    std::fs::create_dir_all(&www).unwrap();
    // Bigger than a web seed job (4 MiB), with a name that needs percent-encoding.
    let data = noise_bytes(9, 6_000_001);
    std::fs::write(www.join("one file.iso"), &data).unwrap();
    let nginx = Nginx::start(&www, &scene.path("nginx"), scene.deadline);
    let torrent = scene.path("single.torrent");
    // `shoal create --web-seed`: a URL ending in `/` gets the name appended.
    run(support::shoal_command()
        .arg("create")
        .arg(www.join("one file.iso"))
        .arg("-o")
        .arg(&torrent)
        .args(["--piece-size", "64K", "--web-seed", &nginx.url()]));
    let dl = scene.path("dl");
    download_alone(&scene, &torrent, &dl);
    assert!(std::fs::read(dl.join("one file.iso")).unwrap() == data);
    assert!(!walk(&dl)
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".part")));
}

fn noise_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Hostile {
    /// A 206 as asked for, every byte flipped.
    WrongBytes,
    /// The whole file with a 200, whatever the range.
    Whole200,
    /// A 206 whose body stops halfway, then the connection closes.
    Short,
    /// A redirect to itself, forever.
    RedirectLoop,
    /// A 206 announcing far more body than asked for.
    HugeLength,
}

/// A web server answering every request for `data` the `mode` way, on a thread of its
/// own; returns its URL (the file itself).
fn hostile_server(data: Vec<u8>, mode: Hostile) -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let Some((first, last)) = head
                .lines()
                .find_map(|l| l.strip_prefix("Range: bytes="))
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| {
                    Some((a.parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?))
                })
            else {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                continue;
            };
            let total = data.len();
            let port = stream.local_addr().unwrap().port();
            let answer = match mode {
                Hostile::RedirectLoop => format!(
                    "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/file.bin\r\nContent-Length: 0\r\n\r\n"
                )
                .into_bytes(),
                Hostile::HugeLength => format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{total}\r\nContent-Length: 99999999999999\r\n\r\n"
                )
                .into_bytes(),
                Hostile::WrongBytes | Hostile::Short => {
                    let mut body = data[first..=last].to_vec();
                    if let Hostile::WrongBytes = mode {
                        body.iter_mut().for_each(|b| *b = !*b);
                    } else {
                        body.truncate(body.len() / 2);
                    }
                    let mut a = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{total}\r\nContent-Length: {}\r\n\r\n",
                        last - first + 1
                    )
                    .into_bytes();
                    a.extend(body);
                    a
                }
                Hostile::Whole200 => {
                    let mut a =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").into_bytes();
                    a.extend(&data);
                    a
                }
            };
            let _ = stream.write_all(&answer);
            // The connection closes here: a short body is cut short.
        }
    });
    format!("http://127.0.0.1:{port}/file.bin")
}

/// shoal against a hostile web seed: it says what is wrong, naming the URL, and no
/// finished file appears.
fn hostile(mode: Hostile, complaint: &str) {
    let scene = Scene::new();
    let content = scene.path("content");
    std::fs::create_dir_all(&content).unwrap();
    let data = noise_bytes(3, 6_000_001);
    std::fs::write(content.join("file.bin"), &data).unwrap();
    let url = hostile_server(data, mode);
    let torrent = scene.path("hostile.torrent");
    run(support::shoal_command()
        .arg("create")
        .arg(content.join("file.bin"))
        .arg("-o")
        .arg(&torrent)
        .args(["--piece-size", "64K", "--web-seed", &url]));
    let dl = scene.path("dl");
    let mut shoal = shoal_download(
        "shoal",
        &torrent,
        &dl,
        free_port(),
        &[],
        &["--no-seed"],
        scene.dir(),
    );
    shoal.wait_for(&format!("web seed {url}: {complaint}"), scene.deadline);
    assert!(
        shoal.try_status().is_none(),
        "shoal gave up: {}",
        shoal.tail(20)
    );
    shoal.terminate(Duration::from_secs(20));
    assert!(!shoal.said("download complete"), "{}", shoal.tail(20));
    let finished: Vec<PathBuf> = walk(&dl)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "file.bin"))
        .collect();
    assert!(
        finished.is_empty(),
        "a finished file from a hostile server: {finished:?}"
    );
}

#[test]
fn wrong_bytes_from_a_web_seed_fail_their_hash() {
    hostile(Hostile::WrongBytes, "piece");
}

#[test]
fn a_200_for_a_range_is_refused() {
    hostile(Hostile::Whole200, "200 (whole file) for a range request");
}

#[test]
fn a_body_cut_short_is_refused() {
    hostile(Hostile::Short, "body cut short");
}

#[test]
fn a_redirect_loop_is_cut() {
    hostile(Hostile::RedirectLoop, "too many redirects");
}

#[test]
fn a_huge_content_length_is_refused() {
    hostile(Hostile::HugeLength, "body longer than asked for");
}

/// shoal downloads a 6 MB file (several web seed jobs) from a [`counting_server`] alone:
/// exact data, no complaint about the web seed; returns what the server saw.
fn download_counted(reuse: Reuse) -> (usize, usize) {
    let scene = Scene::new();
    let content = scene.path("content");
    std::fs::create_dir_all(&content).unwrap();
    let data = noise_bytes(5, 6_000_001);
    std::fs::write(content.join("file.bin"), &data).unwrap();
    let (url, seen) = counting_server(data.clone(), reuse);
    let torrent = scene.path("counted.torrent");
    run(Command::new(SHOAL)
        .arg("create")
        .arg(content.join("file.bin"))
        .arg("-o")
        .arg(&torrent)
        .args(["--piece-size", "64K", "--web-seed", &url]));
    let dl = scene.path("dl");
    let shoal = download_alone(&scene, &torrent, &dl);
    assert!(std::fs::read(dl.join("file.bin")).unwrap() == data);
    assert!(
        !shoal.said(&format!("web seed {url}")),
        "{}",
        shoal.tail(20)
    );
    seen.get()
}

#[test]
fn jobs_share_keep_alive_connections() {
    let (connections, requests) = download_counted(Reuse::KeepAlive);
    // Two jobs under way at most, on connections that stay open: a handful of jobs on at
    // most two connections (a connection the client idled past its idle limit would be a
    // third: not in a download that runs without pause).
    assert!(requests >= 6, "{requests} requests");
    assert!(
        connections <= 2,
        "{connections} connections for {requests} requests"
    );
}

#[test]
fn a_server_that_closes_after_each_answer_still_serves() {
    let (connections, requests) = download_counted(Reuse::CloseEach);
    assert!(requests >= 6, "{requests} requests");
    assert_eq!(connections, requests, "a closed connection was used again");
}

#[test]
fn a_server_that_closes_idle_connections_unannounced_still_serves() {
    // The client puts each connection in its pool, finds it closed when it uses it next,
    // and sends the request again on a new one: no failure reaches the download.
    let (connections, requests) = download_counted(Reuse::CloseSilently);
    assert!(requests >= 6, "{requests} requests");
    assert_eq!(connections, requests);
}

#[test]
fn a_connection_close_mid_way_is_heeded() {
    let (connections, requests) = download_counted(Reuse::CloseSecond);
    // Each connection carried two requests, the second answered with `Connection: close`
    // (the last connection may have carried one).
    assert!(requests >= 6, "{requests} requests");
    assert!(
        connections < requests && connections * 2 >= requests,
        "{connections} connections for {requests} requests"
    );
}
