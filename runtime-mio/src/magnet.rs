//! Magnet links for `shoal download` and `shoal info`: reading one, and running the loop
//! until its metadata has come from peers (BEP 9, done by the engine; see
//! `shoal_core::engine` `add_magnet`).
//!
//! The progress line while fetching says `fetching metadata from N peers` (the peers
//! connected), with the bytes in once a peer has said the size. Tracker trouble is said
//! as for a download. Peers come from the link's peers, its trackers and the DHT. A link
//! that names no tracker and no peer, with no `--peer` given and the DHT off (or knowing
//! no node to start from), is refused at once: nothing could ever answer it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_core::engine::{Event, TorrentId, TrackerWatch};
use shoal_core::magnet::Magnet;
use shoal_core::metainfo::Metainfo;

use crate::runtime::{Runtime, RuntimeConfig};
use crate::say;

/// How often the plain progress line is printed while fetching.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// The magnet link in `arg`, if it is one (`magnet:` in any case); an error for a magnet
/// link that does not parse.
pub fn parse(arg: &str) -> Result<Option<Magnet>, String> {
    let is_magnet = arg
        .trim_start()
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"));
    if !is_magnet || std::path::Path::new(arg).exists() {
        return Ok(None);
    }
    Magnet::parse(arg).map(Some).map_err(|e| e.to_string())
}

/// The `x.pe` peers of a link: `ip:port` as they are, `host:port` resolved (blocking;
/// each host's first address). One that does not resolve is said and left out.
pub fn peers(magnet: &Magnet) -> Vec<SocketAddr> {
    shoal_io::resolve_peers(&magnet.peers, |peer, e| {
        say::err_line(&format!("magnet link peer {peer}: {e}; left out"))
    })
}

/// How a fetch ended.
pub enum Fetched {
    /// The metadata, checked against the info-hash.
    Meta(Arc<Metainfo>),
    /// Ctrl-C (or SIGTERM) before it came.
    Interrupted,
}

/// Runs `rt` until torrent `id` (added with [`Runtime::add_magnet`]) has its metadata.
/// `peers_given`: peers were named (`x.pe` or `--peer`), so trackers are not the only way;
/// `dht`: the DHT runs with somewhere to start from, another way.
pub fn fetch(
    rt: &mut Runtime,
    id: TorrentId,
    magnet: &Magnet,
    peers_given: bool,
    dht: bool,
) -> Result<Fetched, String> {
    if magnet.trackers.is_empty() && !peers_given && !dht {
        let why = if rt.dht_enabled() {
            "the DHT knows no node to start from (no --dht-bootstrap, SHOAL_DHT_BOOTSTRAP empty)"
        } else {
            "the DHT is off (--no-dht)"
        };
        return Err(format!(
            "the magnet link names no tracker (tr=) and no peer (x.pe=), no --peer was \
             given, and {why}: no way to find peers"
        ));
    }
    let verbose = std::env::var_os("SHOAL_VERBOSE").is_some();
    let mut trackers = TrackerWatch::new(peers_given || dht);
    let mut last_line: Option<Instant> = None;
    loop {
        let events = rt
            .turn(Some(Duration::from_millis(250)))
            .map_err(|e| e.to_string())?;
        for event in events {
            if let Some(line) = trackers.report(&event, Instant::now()) {
                say::err_line(&line);
            }
            if let Some(give_up) = trackers.observe(&event) {
                return Err(give_up);
            }
            match event {
                Event::DhtAnswer {
                    torrent,
                    peers,
                    announced,
                    ..
                } if torrent == id && verbose => say::err_line(&format!(
                    "DHT: {peers} peers, announced to {announced} nodes"
                )),
                Event::MetadataReceived { torrent, meta } if torrent == id => {
                    say::err_line(&format!(
                        "metadata received: {} ({} bytes, {} pieces)",
                        meta.info.name,
                        meta.info_bytes.len(),
                        meta.info.piece_count()
                    ));
                    return Ok(Fetched::Meta(meta));
                }
                Event::MetadataFailed { torrent, error } if torrent == id => {
                    return Err(format!(
                        "the metadata peers sent matches the magnet link's info-hash but is \
                         not a usable torrent: {error}"
                    ));
                }
                _ => {}
            }
        }
        if rt.interrupted() {
            say::err_line("stopping…");
            return Ok(Fetched::Interrupted);
        }
        let due = last_line.is_none_or(|at| at.elapsed() >= LINE_EVERY);
        if let (true, Some(s)) = (due, rt.fetching(id)) {
            last_line = Some(Instant::now());
            let name = magnet.display_name.as_deref().unwrap_or("metadata");
            let bytes = match s.size {
                Some(size) => format!(": {} of {size} bytes", s.received),
                None => String::new(),
            };
            say::err_line(&format!(
                "{name}: fetching metadata from {} peer{}{bytes}",
                s.peers,
                if s.peers == 1 { "" } else { "s" }
            ));
        }
    }
}

/// `shoal info MAGNET`: the metadata fetched from the link's peers, trackers and the DHT
/// (unless it is off), on any free port.
pub fn fetch_for_info(magnet: &Magnet, dht: &crate::client::Dht) -> Result<Arc<Metainfo>, String> {
    let mut rt = Runtime::new(RuntimeConfig {
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        workers: 1,
        engine: shoal_core::engine::EngineConfig {
            peer_id: shoal_io::random_peer_id(),
            rng_seed: shoal_io::random_u64(),
            ..Default::default()
        },
    })
    .map_err(|e| format!("cannot listen: {e}"))?;
    rt.catch_signals().map_err(|e| e.to_string())?;
    let dht = dht.start(&mut rt, None);
    let id = rt.add_magnet(magnet);
    let given = !peers(magnet).is_empty();
    let result = fetch(&mut rt, id, magnet, given, dht);
    let _ = rt.shutdown(Duration::from_secs(2));
    match result? {
        Fetched::Meta(meta) => Ok(meta),
        Fetched::Interrupted => Err("interrupted before the metadata came".into()),
    }
}
