//! `shoal`: the command-line BitTorrent client.
//!
//! `download` and `seed` run the mio runtime (see `shoal_mio::client`), `demo` a whole swarm
//! on loopback, `info` and `create` read and make torrents.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use shoal_core::metainfo::Metainfo;
use shoal_io::CreateOptions;
use shoal_mio::say;

#[derive(Parser)]
#[command(
    name = "shoal",
    version,
    about = "A BitTorrent client, tracker, web server (web seeds and feeds), daemon and torrent maker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a sample folder as `shoal serve` does and let a few leechers download it from
    /// that web server and from each other, on loopback: a look at shoal with no setup and
    /// no network.
    Demo {
        /// How many leechers.
        #[arg(long, default_value_t = 3)]
        leechers: usize,
        /// Payload size in MiB.
        #[arg(long, default_value_t = 64)]
        size: u64,
        /// Keep the temporary files.
        #[arg(long)]
        keep: bool,
    },
    /// Download a torrent (a .torrent file, an http(s) URL to one, or a magnet link), then
    /// seed it.
    Download {
        /// The .torrent file or URL, or a magnet link (its metadata is fetched from its
        /// peers and saved as DIR/.shoal/<info-hash>.torrent).
        torrent: String,
        /// The folder to download into (the content goes in DIR/<name>).
        #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        net: NetArgs,
        /// Stop seeding once uploaded / size reaches this (0: no ratio limit).
        #[arg(long, value_name = "R", default_value_t = 1.0, value_parser = parse_ratio)]
        seed_ratio: f64,
        /// Stop seeding after this many seconds.
        #[arg(long, value_name = "SECS")]
        seed_time: Option<u64>,
        /// Exit as soon as the download is complete.
        #[arg(long)]
        no_seed: bool,
        /// Replace files in DIR that have the torrent's file names but not its data. Without
        /// it shoal refuses to touch them and says which.
        #[arg(long)]
        overwrite: bool,
    },
    /// Seed a torrent's complete content until stopped. Reads only: creates, writes and
    /// renames nothing.
    Seed {
        /// The .torrent file or URL.
        torrent: String,
        /// The folder holding the content (DIR/<name>, as `download -o DIR` leaves it), or
        /// the content itself (the torrent's file or folder).
        #[arg(value_name = "PATH")]
        dir: PathBuf,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show what a .torrent holds: name, info-hash, pieces, files, trackers. Given a
    /// magnet link, fetches the metadata from its peers (x.pe=) and trackers (tr=) first.
    Info {
        /// The .torrent file, an http(s):// URL to one, or a magnet link.
        torrent: String,
        #[command(flatten)]
        dht: DhtArgs,
    },
    /// Make a .torrent of a file or a folder.
    Create {
        /// The file or folder to share. In a folder, shoal's own working files are left out:
        /// its `.shoal/` state folders and `.part` (incomplete) files.
        path: PathBuf,
        /// Where to write the .torrent.
        #[arg(short, long)]
        output: PathBuf,
        /// A tracker announce URL (http://, https:// or udp://HOST…); repeat for backups
        /// (each becomes its own tier).
        #[arg(short, long = "tracker", value_name = "URL", value_parser = parse_announce)]
        trackers: Vec<String>,
        /// Piece size in bytes, or with a suffix: 256K, 1M, 4MiB. Chosen for about
        /// 1,000-2,000 pieces when left out.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        piece_size: Option<u32>,
        /// Mark the torrent private (BEP 27): peers come only from its trackers.
        #[arg(long)]
        private: bool,
        /// A web seed URL (BEP 19: http:// or https://HOST…); repeatable.
        #[arg(long = "web-seed", value_name = "URL", value_parser = parse_web_seed)]
        web_seeds: Vec<String>,
        /// A free-text comment.
        #[arg(long)]
        comment: Option<String>,
        /// Leave out the creation date, so the same input gives the same file.
        #[arg(long)]
        no_date: bool,
    },
    /// Run a tracker (HTTP and UDP announces and scrapes) that also serves the .torrent
    /// files of a folder and an index page of them.
    Tracker(shoal_mio::tracker::TrackerArgs),
    /// Serve a folder: a torrent of each file or folder in it, the content itself over
    /// HTTP as the torrents' web seed, the .torrent files, an index page and an RSS feed,
    /// and the tracker they announce to.
    Serve(shoal_mio::serve::ServeArgs),
    /// Run the helper application: many torrents at once, a web page and the Transmission
    /// RPC on 127.0.0.1:9091, a state folder that survives restarts.
    Daemon {
        #[command(flatten)]
        state: StateArg,
        /// The control address (page and Transmission RPC); kept for later starts; first
        /// default 127.0.0.1:9091. Beyond loopback, credentials are required (--rpc-auth,
        /// or generated into the state folder).
        #[arg(long, value_name = "ADDR")]
        rpc: Option<std::net::SocketAddr>,
        /// Require these credentials (HTTP Basic) of every request.
        #[arg(long, value_name = "USER:PASS")]
        rpc_auth: Option<String>,
        /// Where content goes unless an add says otherwise (kept for later starts;
        /// first default: $XDG_DOWNLOAD_DIR or ~/Downloads).
        #[arg(long, value_name = "DIR")]
        download_dir: Option<PathBuf>,
        /// TCP port for peers (0: any free one). Unless given, 6881 or the next free one
        /// up to 6889.
        #[arg(short, long)]
        port: Option<u16>,
        /// The address peers reach us at.
        #[arg(long, default_value = "0.0.0.0")]
        bind: std::net::IpAddr,
        /// Seconds between polls of a feed (doubled per failure in a row, up to a day).
        #[arg(long, value_name = "SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
        feed_interval: u64,
        #[command(flatten)]
        dht: DhtArgs,
    },
    /// Follow feeds (RSS, Atom) with the daemon: new items that are torrents or magnet
    /// links are added as they are published.
    Feed {
        #[command(subcommand)]
        action: FeedAction,
        #[command(flatten)]
        state: StateArg,
    },
    /// Give a .torrent file, a URL to one, or a magnet link to the daemon (started if none
    /// runs).
    Add {
        /// The .torrent file, http(s):// URL or magnet: link.
        torrent: String,
        #[command(flatten)]
        state: StateArg,
    },
    /// List the daemon's torrents.
    List {
        #[command(flatten)]
        state: StateArg,
    },
    /// Stop torrents of the daemon (they keep their data and their place in the list).
    Pause {
        #[arg(required = true)]
        ids: Vec<u32>,
        #[command(flatten)]
        state: StateArg,
    },
    /// Start stopped torrents of the daemon again.
    Resume {
        #[arg(required = true)]
        ids: Vec<u32>,
        #[command(flatten)]
        state: StateArg,
    },
    /// Show a torrent's files in the daemon: index, progress, size, wanted, priority.
    Files {
        id: u32,
        #[command(flatten)]
        state: StateArg,
    },
    /// Choose a torrent's files and order in the daemon (file indices as `shoal files`
    /// shows them, comma-separated).
    Set {
        id: u32,
        /// Download these files.
        #[arg(long, value_name = "N,...", value_delimiter = ',')]
        want: Vec<usize>,
        /// Do not download these files.
        #[arg(long, value_name = "N,...", value_delimiter = ',')]
        skip: Vec<usize>,
        /// Download these files first.
        #[arg(long, value_name = "N,...", value_delimiter = ',')]
        high: Vec<usize>,
        #[arg(long, value_name = "N,...", value_delimiter = ',')]
        normal: Vec<usize>,
        #[arg(long, value_name = "N,...", value_delimiter = ',')]
        low: Vec<usize>,
        /// Download pieces in order (for watching while it downloads), or not.
        #[arg(long, value_name = "BOOL")]
        sequential: Option<bool>,
        #[command(flatten)]
        state: StateArg,
    },
    /// Remove torrents from the daemon's list.
    Remove {
        #[arg(required = true)]
        ids: Vec<u32>,
        /// Also delete their downloaded files.
        #[arg(long)]
        delete: bool,
        #[command(flatten)]
        state: StateArg,
    },
    /// Make .torrent files and magnet links open with `shoal add` (a freedesktop entry,
    /// registered with xdg-mime).
    InstallHandler {
        /// Remove the entry instead.
        #[arg(long)]
        uninstall: bool,
    },
}

#[derive(Subcommand)]
enum FeedAction {
    /// Follow a feed: what it offers now is left alone, what it publishes later is added.
    Add {
        /// The feed's http(s):// URL.
        url: String,
        /// Take only items whose title matches this regular expression.
        #[arg(long = "match", value_name = "REGEX")]
        pattern: Option<String>,
    },
    /// The feeds followed.
    List,
    /// Stop following feeds.
    Remove {
        #[arg(required = true)]
        ids: Vec<u32>,
    },
}

#[derive(clap::Args)]
struct StateArg {
    /// The daemon's state folder (default: $XDG_STATE_HOME/shoal, ~/.local/state/shoal).
    #[arg(long = "state", value_name = "DIR", global = true)]
    state: Option<PathBuf>,
}

impl StateArg {
    fn dir(&self) -> Result<shoal_daemon::state::StateDir, String> {
        shoal_mio::daemon::state_dir(self.state.as_ref())
    }
}

#[derive(clap::Args)]
struct NetArgs {
    /// TCP port to accept peers on (0: any free port). Unless given, 6881, or the next free
    /// one up to 6889 (the one taken is said); a port given here must be free.
    #[arg(short, long)]
    port: Option<u16>,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
    /// A peer to connect to; repeatable.
    #[arg(long = "peer", value_name = "HOST:PORT", value_parser = parse_peer)]
    peers: Vec<std::net::SocketAddr>,
    /// Progress as plain lines even on a terminal.
    #[arg(long)]
    plain: bool,
    /// Local service discovery (BEP 14): announce the torrent to the local network's
    /// multicast group 239.192.152.143:6771 (on the --bind interface) and dial the peers
    /// heard there. Never for a private torrent.
    #[arg(long)]
    lsd: bool,
    /// Message stream encryption (MSE/PE): off (plaintext only), accept (both incoming,
    /// plaintext chosen when offered; dial plaintext), prefer (choose RC4 when offered;
    /// dial with MSE, in plaintext again to a peer that refused it), require (RC4 only,
    /// both ways).
    #[arg(long, value_name = "POLICY", default_value = "accept")]
    encryption: shoal_core::engine::Encryption,
    /// Seconds to wait after every tracker failed before asking again (doubles each round).
    #[arg(long, value_name = "SECS", default_value_t = 15, hide = true)]
    tracker_backoff: u64,
    /// The most to download a second, e.g. 2M, 500k, 1.5MiB (bytes; k/M/G are 1024-based).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    download_limit: Option<u64>,
    /// The most to upload a second, e.g. 2M, 500k (as --download-limit).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    upload_limit: Option<u64>,
    #[command(flatten)]
    dht: DhtArgs,
}

#[derive(clap::Args)]
struct DhtArgs {
    /// Do not use the DHT (BEP 5): peers then come only from trackers, --peer, the
    /// magnet link and LSD.
    #[arg(long)]
    no_dht: bool,
    /// A DHT node to start from; repeatable. Default: router.bittorrent.com:6881,
    /// dht.transmissionbt.com:6881 and router.utorrent.com:6881 (or the list in
    /// SHOAL_DHT_BOOTSTRAP). Names are resolved in the background; failures are harmless.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT", value_parser = parse_host_port)]
    dht_bootstrap: Vec<String>,
}

impl DhtArgs {
    fn settings(self) -> shoal_mio::client::Dht {
        shoal_mio::client::Dht {
            off: self.no_dht,
            bootstrap: self.dht_bootstrap,
        }
    }
}

/// `HOST:PORT` (not resolved here: names are looked up in the background).
fn parse_host_port(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not HOST:PORT (e.g. router.bittorrent.com:6881)");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(s.to_string())
}

/// A rate in bytes a second: a number (fractions allowed) with an optional binary unit,
/// `k`/`K`/`KiB`/`KB`, `M`…, `G`… (all 1024-based, as in Transmission's and
/// libtorrent's settings), and an optional `/s`.
fn parse_rate(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let text = text.strip_suffix("/s").unwrap_or(text).trim_end();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("{s:?} is not a rate: try 2M, 500k or 1048576 (bytes a second)");
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{s:?}: a rate is at least 1 byte a second"));
    }
    Ok(bytes as u64)
}

fn parse_peer(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?}: no address"))
}

/// A seeding ratio: a finite number, 0 or more.
fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number (try 1.5, or 0 for no ratio limit)"))?;
    if !r.is_finite() || r < 0.0 {
        return Err(format!(
            "{s:?}: a ratio is a number of 0 or more (0: no ratio limit)"
        ));
    }
    Ok(r)
}

/// A URL with one of `schemes` and a host: `scheme://host[:port][/…]`.
fn parse_url_with(s: &str, schemes: &[&str]) -> Result<String, String> {
    let expected = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ");
    let bad = || format!("{s:?} is not a URL: expected {expected} followed by a host");
    let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
    if !schemes.iter().any(|k| k.eq_ignore_ascii_case(scheme)) {
        return Err(bad());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(s.to_string())
}

fn parse_announce(s: &str) -> Result<String, String> {
    parse_url_with(s, &["http", "https", "udp"])
}

fn parse_web_seed(s: &str) -> Result<String, String> {
    parse_url_with(s, &["http", "https"])
}

fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (try 262144, 256K or 1M)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K or M)")),
    };
    n.checked_mul(mult)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Peers and files each take a descriptor; the usual soft limit (1,024) is far below
    // the hard one. Storage still keeps its open files bounded by whatever limit there is.
    shoal_io::storage::raise_fd_limit();
    let result = match cli.command {
        Command::Demo {
            leechers,
            size,
            keep,
        } => shoal_mio::demo::run(&shoal_mio::demo::DemoOptions {
            leechers: leechers.max(1),
            size_mib: size,
            keep,
        }),
        Command::Download {
            torrent,
            dir,
            net,
            seed_ratio,
            seed_time,
            no_seed,
            overwrite,
        } => {
            let mut opts = client_options(torrent, dir, net, seed_ratio, seed_time, no_seed);
            opts.overwrite = overwrite;
            return exit(shoal_mio::client::run(&opts, false));
        }
        Command::Seed { torrent, dir, net } => {
            let opts = client_options(torrent, dir, net, 0.0, None, false);
            return exit(shoal_mio::client::run(&opts, true));
        }
        Command::Info { torrent, dht } => info(&torrent, &dht.settings()),
        Command::Tracker(args) => shoal_mio::tracker::run(&args),
        Command::Serve(args) => shoal_mio::serve::run(&args),
        Command::Create {
            path,
            output,
            trackers,
            piece_size,
            private,
            web_seeds,
            comment,
            no_date,
        } => {
            let opts = CreateOptions {
                piece_length: piece_size,
                trackers,
                web_seeds,
                private,
                comment,
                created_by: Some(concat!("shoal/", env!("CARGO_PKG_VERSION")).to_string()),
                creation_date: (!no_date).then(unix_now),
            };
            create(&path, &output, &opts)
        }
        Command::Daemon {
            state,
            rpc,
            rpc_auth,
            download_dir,
            port,
            bind,
            feed_interval,
            dht,
        } => shoal_mio::daemon::run(&shoal_mio::daemon::Options {
            state: state.state,
            rpc,
            rpc_auth,
            download_dir,
            port,
            bind,
            feed_interval: std::time::Duration::from_secs(feed_interval),
            dht: dht.settings(),
        }),
        Command::Feed { action, state } => state.dir().and_then(|d| match action {
            FeedAction::Add { url, pattern } => {
                shoal_mio::remote::feed_add(&d, &url, pattern.as_deref())
            }
            FeedAction::List => shoal_mio::remote::feed_list(&d),
            FeedAction::Remove { ids } => shoal_mio::remote::feed_remove(&d, &ids),
        }),
        Command::Add { torrent, state } => state
            .dir()
            .and_then(|d| shoal_mio::remote::add(&d, &torrent)),
        Command::List { state } => state.dir().and_then(|d| shoal_mio::remote::list(&d)),
        Command::Pause { ids, state } => state
            .dir()
            .and_then(|d| shoal_mio::remote::act(&d, "torrent-stop", &ids, false)),
        Command::Resume { ids, state } => state
            .dir()
            .and_then(|d| shoal_mio::remote::act(&d, "torrent-start", &ids, false)),
        Command::Remove { ids, delete, state } => state
            .dir()
            .and_then(|d| shoal_mio::remote::act(&d, "torrent-remove", &ids, delete)),
        Command::Files { id, state } => state.dir().and_then(|d| shoal_mio::remote::files(&d, id)),
        Command::Set {
            id,
            want,
            skip,
            high,
            normal,
            low,
            sequential,
            state,
        } => state.dir().and_then(|d| {
            let mut args = serde_json::json!({
                "ids": [id],
                "files-wanted": want,
                "files-unwanted": skip,
                "priority-high": high,
                "priority-normal": normal,
                "priority-low": low,
            });
            if let Some(s) = sequential {
                args["sequentialDownload"] = serde_json::json!(s);
            }
            shoal_mio::remote::set(&d, args)
        }),
        Command::InstallHandler { uninstall } => shoal_mio::remote::install_handler(uninstall),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            say::err_line(&format!("shoal: error: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn client_options(
    torrent: String,
    dir: PathBuf,
    net: NetArgs,
    seed_ratio: f64,
    seed_time: Option<u64>,
    no_seed: bool,
) -> shoal_mio::client::Options {
    shoal_mio::client::Options {
        torrent,
        dir,
        port: net.port,
        bind: net.bind,
        peers: net.peers,
        seed_ratio,
        seed_time: seed_time.map(std::time::Duration::from_secs),
        no_seed,
        plain: net.plain,
        lsd: net.lsd,
        encryption: net.encryption,
        overwrite: false,
        tracker_backoff: std::time::Duration::from_secs(net.tracker_backoff.max(1)),
        rate_limits: shoal_core::engine::RateLimits {
            upload: net.upload_limit,
            download: net.download_limit,
        },
        dht: net.dht.settings(),
    }
}

/// 0: done; 1: failed (the message says why); 130: interrupted before completion.
fn exit(result: Result<shoal_mio::client::Outcome, String>) -> ExitCode {
    match result {
        Ok(shoal_mio::client::Outcome::Done) => ExitCode::SUCCESS,
        Ok(shoal_mio::client::Outcome::Interrupted) => ExitCode::from(130),
        Err(message) => {
            say::err_line(&format!("shoal: error: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn info(torrent: &str, dht: &shoal_mio::client::Dht) -> Result<(), String> {
    if let Some(magnet) = shoal_mio::magnet::parse(torrent)? {
        let m = shoal_mio::magnet::fetch_for_info(&magnet, dht)?;
        say::out(&describe(&m));
        return Ok(());
    }
    let (m, _) = shoal_io::load_torrent(torrent).map_err(|e| e.to_string())?;
    say::out(&describe(&m));
    Ok(())
}

fn create(
    path: &std::path::Path,
    output: &std::path::Path,
    opts: &CreateOptions,
) -> Result<(), String> {
    let bytes = shoal_io::create_torrent(path, opts).map_err(|e| e.to_string())?;
    let m = Metainfo::parse(&bytes).map_err(|e| format!("internal error: {e}"))?;
    // Write beside the target and rename, so a reader never sees half a torrent.
    let tmp = output.with_extension("torrent.part");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, output).map_err(|e| format!("{}: {e}", output.display()))?;
    say::out_line(&format!(
        "created {} ({} pieces of {}, info-hash {})",
        output.display(),
        m.info.piece_count(),
        human_bytes(u64::from(m.info.piece_length)),
        m.info_hash
    ));
    Ok(())
}

/// The `shoal info` report.
fn describe(m: &Metainfo) -> String {
    let i = &m.info;
    let mut out = String::new();
    let _ = writeln!(out, "name:         {}", i.name);
    let _ = writeln!(out, "info-hash:    {}", m.info_hash);
    let _ = writeln!(
        out,
        "piece length: {} ({})",
        i.piece_length,
        human_bytes(u64::from(i.piece_length))
    );
    let _ = writeln!(out, "pieces:       {}", i.piece_count());
    let _ = writeln!(
        out,
        "total size:   {} ({})",
        i.total_length,
        human_bytes(i.total_length)
    );
    let _ = writeln!(
        out,
        "private:      {}",
        if i.private { "yes" } else { "no" }
    );
    if let Some(c) = &m.created_by {
        let _ = writeln!(out, "created by:   {c}");
    }
    if let Some(t) = m.creation_date {
        let _ = writeln!(out, "created:      {}", utc_date(t));
    }
    if let Some(c) = &m.comment {
        let _ = writeln!(out, "comment:      {c}");
    }
    let real: Vec<_> = i.files.iter().filter(|f| !f.attr.padding).collect();
    let _ = writeln!(out, "files:        {}", real.len());
    for f in real {
        let _ = writeln!(out, "  {:>14}  {}", f.length, f.display_path());
    }
    let tiers = m.trackers();
    let _ = writeln!(
        out,
        "trackers:     {}",
        tiers.iter().map(Vec::len).sum::<usize>()
    );
    for (n, tier) in tiers.iter().enumerate() {
        for url in tier {
            let _ = writeln!(out, "  tier {}: {url}", n + 1);
        }
    }
    let _ = writeln!(out, "web seeds:    {}", m.url_list.len());
    for url in &m.url_list {
        let _ = writeln!(out, "  {url}");
    }
    let _ = writeln!(out, "magnet:       {}", m.magnet());
    out
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian).
fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from a day count, by 400-year eras of 146,097 days starting on March 1st.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("262144"), Ok(262_144));
        assert_eq!(parse_size("256K"), Ok(262_144));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4 m"), Ok(4 << 20));
        assert!(parse_size("1G").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999M").is_err());
    }

    #[test]
    fn rates_parse_with_binary_units() {
        assert_eq!(parse_rate("1048576"), Ok(1 << 20));
        assert_eq!(parse_rate("2M"), Ok(2 << 20));
        assert_eq!(parse_rate("500k"), Ok(500 << 10));
        assert_eq!(parse_rate("1.5MiB/s"), Ok(3 << 19));
        assert_eq!(parse_rate("1 G"), Ok(1 << 30));
        for bad in ["", "M", "0", "0.1", "-1", "2X", "1e99G", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratios_are_finite_and_not_negative() {
        assert_eq!(parse_ratio("1.5"), Ok(1.5));
        assert_eq!(parse_ratio("0"), Ok(0.0));
        for bad in ["-1", "-0.1", "inf", "NaN", "x", ""] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn announce_urls_need_a_known_scheme_and_a_host() {
        for good in [
            "http://t.example/announce",
            "HTTPS://t.example:443/a?k=1",
            "udp://10.0.0.1:6969",
            "udp://[::1]:6969/announce",
            "http://user@host/announce",
        ] {
            assert_eq!(parse_announce(good).as_deref(), Ok(good));
        }
        for bad in [
            "notaurl",
            "t.example/announce",
            "ftp://t.example/",
            "http://",
            "http:///announce",
            "http://:80/",
            "udp://[]:1",
            "http//t.example",
        ] {
            assert!(parse_announce(bad).is_err(), "{bad}");
        }
        assert!(parse_web_seed("udp://h/").is_err());
        assert!(parse_web_seed("https://h/files/").is_ok());
    }

    #[test]
    fn dht_bootstrap_is_host_and_port() {
        for good in ["router.bittorrent.com:6881", "127.0.0.1:1", "[::1]:6881"] {
            assert_eq!(parse_host_port(good).as_deref(), Ok(good));
        }
        for bad in ["router", "router:", ":6881", "h:70000", "a b:1"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(1_795_252_717), "2026-11-21 09:18:37 UTC");
        assert_eq!(utc_date(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(1000), "1000 B");
        assert_eq!(human_bytes(1 << 20), "1.00 MiB");
        assert_eq!(human_bytes(3 << 29), "1.50 GiB");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
