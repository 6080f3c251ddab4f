//! Driving shoal-core from a plain `std::net` + threads loop: a small downloader.
//!
//! ```text
//! cargo run -p shoal-core --example std_net -- FILE.torrent OUT_DIR HOST:PORT...
//! ```
//!
//! It downloads the torrent from the given peers and those its HTTP trackers name into memory, serving what it has to them
//! meanwhile, then writes the files into OUT_DIR. One reader thread per connection sends
//! what it reads to the main thread over a channel; the main thread owns the engine, does
//! everything the engine asks, and sleeps until the engine's next timeout or the next
//! message. That is the whole contract: `handle`, drain `poll_output`, wait for
//! `poll_timeout`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sha1::{Digest, Sha1};
use shoal_core::engine::{
    ConnId, Engine, EngineConfig, Event, Input, Output, TorrentId, TorrentOptions,
};
use shoal_core::metainfo::Metainfo;
use shoal_core::tracker::AnnounceId;
use shoal_core::{IoError, PeerId};

/// What the reader threads tell the main thread.
enum Net {
    Connected(ConnId, TcpStream),
    ConnectFailed(ConnId),
    Data(ConnId, BytesMut),
    Closed(ConnId),
    Tracker(TorrentId, AnnounceId, Result<Vec<u8>, IoError>),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: std_net FILE.torrent OUT_DIR [HOST:PORT...]".into());
    }
    let meta = Arc::new(Metainfo::parse(&std::fs::read(&args[0])?)?);
    let out_dir = PathBuf::from(&args[1]);
    let mut data = vec![0u8; meta.info.total_length as usize];

    let seed = std::process::id() as u64;
    let mut peer_id = *b"-SH0010-example00000";
    peer_id[14..].copy_from_slice(format!("{:06}", seed % 1_000_000).as_bytes());
    let mut engine = Engine::new(EngineConfig {
        peer_id: PeerId(peer_id),
        rng_seed: seed,
        ..EngineConfig::default()
    });
    let now = Instant::now();
    let torrent = engine.add_torrent(meta.clone(), TorrentOptions::default(), now)?;
    for peer in &args[2..] {
        engine.add_peer(torrent, peer.parse::<SocketAddr>()?, now);
    }

    let (tx, rx) = mpsc::channel::<Net>();
    let mut sockets: HashMap<ConnId, TcpStream> = HashMap::new();
    let mut inputs: Vec<Input> = Vec::new();
    loop {
        // Carry out what the engine asks; the answers to disk and hash requests become
        // inputs right away.
        while let Some(out) = engine.poll_output() {
            match out {
                Output::Connect { conn, addr } => {
                    let tx = tx.clone();
                    thread::spawn(move || {
                        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
                            Ok(stream) => {
                                let mut reader = stream.try_clone().expect("clone socket");
                                let _ = tx.send(Net::Connected(conn, stream));
                                let mut buf = [0u8; 64 * 1024];
                                while let Ok(n @ 1..) = reader.read(&mut buf) {
                                    if tx.send(Net::Data(conn, BytesMut::from(&buf[..n]))).is_err()
                                    {
                                        return;
                                    }
                                }
                                let _ = tx.send(Net::Closed(conn));
                            }
                            Err(_) => {
                                let _ = tx.send(Net::ConnectFailed(conn));
                            }
                        }
                    });
                }
                Output::Send { conn, data: bytes } => {
                    // Blocking writes keep the example short; a real runtime would not.
                    let ok = sockets
                        .get_mut(&conn)
                        .is_some_and(|s| s.write_all(&bytes).is_ok());
                    inputs.push(if ok {
                        Input::Sent {
                            conn,
                            bytes: bytes.len(),
                        }
                    } else {
                        Input::Closed { conn }
                    });
                }
                Output::Close { conn } => {
                    if let Some(s) = sockets.remove(&conn) {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                }
                Output::ReadBlock {
                    torrent,
                    conn,
                    block,
                } => {
                    let at = block.piece.0 as usize * meta.info.piece_length as usize
                        + block.begin as usize;
                    let bytes =
                        bytes::Bytes::copy_from_slice(&data[at..at + block.length as usize]);
                    inputs.push(Input::BlockRead {
                        torrent,
                        conn,
                        block,
                        result: Ok(bytes),
                    });
                }
                Output::WriteBlock {
                    torrent,
                    block,
                    data: bytes,
                } => {
                    let at = block.piece.0 as usize * meta.info.piece_length as usize
                        + block.begin as usize;
                    data[at..at + bytes.len()].copy_from_slice(&bytes);
                    inputs.push(Input::BlockWritten {
                        torrent,
                        block,
                        result: Ok(()),
                    });
                }
                Output::HashPiece {
                    torrent,
                    piece,
                    expected,
                } => {
                    let start = piece.0 as usize * meta.info.piece_length as usize;
                    let end = (start + meta.info.piece_length as usize).min(data.len());
                    let ok = Sha1::digest(&data[start..end])[..] == expected[..];
                    inputs.push(Input::PieceHashed { torrent, piece, ok });
                }
                Output::TrackerHttp {
                    torrent,
                    id,
                    url,
                    request,
                } => {
                    // Plain HTTP only here; the request asks the server to close when done.
                    let tx = tx.clone();
                    thread::spawn(move || {
                        let result = (|| {
                            let mut s = TcpStream::connect((url.host(), url.port()))?;
                            s.set_read_timeout(Some(Duration::from_secs(30)))?;
                            s.write_all(&request)?;
                            let mut answer = Vec::new();
                            s.read_to_end(&mut answer)?;
                            Ok::<_, std::io::Error>(answer)
                        })()
                        .map_err(|e| IoError::from(e).context(url.as_str()));
                        let _ = tx.send(Net::Tracker(torrent, id, result));
                    });
                }
                // This example keeps no UDP socket: UDP trackers go unanswered.
                Output::UdpSend { .. } => {}
                Output::Event(Event::Progress { stats, .. }) => {
                    eprintln!(
                        "{}/{} pieces, {} peers, {} KiB/s",
                        stats.pieces_verified,
                        stats.piece_count,
                        stats.peers,
                        stats.download_rate / 1024
                    );
                }
                Output::Event(Event::Completed { .. }) => {
                    for file in meta.info.files.iter().filter(|f| !f.attr.padding) {
                        let path = file.path.iter().fold(out_dir.clone(), |p, c| p.join(c));
                        std::fs::create_dir_all(path.parent().unwrap_or(&out_dir))?;
                        let start = file.offset as usize;
                        std::fs::write(&path, &data[start..start + file.length as usize])?;
                    }
                    eprintln!("done: {}", meta.info.name);
                    return Ok(());
                }
                Output::Event(e) => eprintln!("{e:?}"),
                // Outputs this example does not know yet (the enum grows): nothing to do.
                _ => {}
            }
        }
        if let Some(input) = inputs.pop() {
            engine.handle(input, Instant::now());
            continue;
        }
        // Wait for the network or the engine's next timeout, whichever comes first.
        let wait = engine.poll_timeout().map_or(Duration::from_secs(1), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let input = match rx.recv_timeout(wait) {
            Ok(Net::Connected(conn, stream)) => {
                sockets.insert(conn, stream);
                Input::Connected { conn }
            }
            Ok(Net::ConnectFailed(conn)) => Input::ConnectFailed { conn },
            Ok(Net::Data(conn, data)) => Input::Received { conn, data },
            Ok(Net::Closed(conn)) => Input::Closed { conn },
            Ok(Net::Tracker(torrent, id, result)) => Input::TrackerHttp {
                torrent,
                id,
                result,
            },
            Err(_) => Input::Timer,
        };
        engine.handle(input, Instant::now());
    }
}
