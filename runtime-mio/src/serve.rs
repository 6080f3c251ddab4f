//! `shoal serve DIR`: the seeds' web server in one command. A torrent of each file or
//! folder of DIR (see [`crate::tracker::content`]), announcing to this server's tracker
//! and naming this server as its web seed (BEP 19); the content itself over HTTP/1.1
//! (ranges, keep-alive, `sendfile`), the `.torrent` files, an index page and a feed; HTTP
//! and UDP announces. It is `shoal tracker` with a content folder: the same event loop,
//! bounds and timeouts.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::say;
use crate::tracker::content::Content;
use crate::tracker::{parse_listen, Listen, TrackerArgs, TrackerService};

/// The options of `shoal serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// The folder to serve: each file or folder in it becomes a torrent (its state is kept
    /// in DIR/.shoal-serve/). Entries whose names start with `.` are left out.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Serve HTTP (content, torrents, pages, announces) at this address.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6969", value_parser = parse_listen)]
    pub http: Listen,
    /// Serve UDP announces and scrapes (BEP 15) at this address ("off": no UDP).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6969", value_parser = parse_listen)]
    pub udp: Listen,
    /// The URL others reach this server at (http://HOST:PORT): the torrents' tracker is
    /// BASE/announce and their web seed BASE/files/. Default: http://ADDR of --http, with
    /// 127.0.0.1 for an address of any interface.
    #[arg(long, value_name = "BASE")]
    pub url: Option<String>,
    /// Seed the torrents over the peer wire protocol too (their content checked first),
    /// announcing to this server's tracker.
    #[arg(long)]
    pub seed: bool,
    /// The TCP port the seed listens on (0: any free port).
    #[arg(long, value_name = "N", default_value_t = 6881, requires = "seed")]
    pub seed_port: u16,
    /// Seconds between a client's announces.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub interval: u64,
    /// Most HTTP connections open at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Most HTTP connections open at once from one address.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request (and to keep reading the answer); an idle
    /// kept-alive connection is closed after as long.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub http_timeout: u64,
}

/// `http://ADDR`, an unspecified address said as 127.0.0.1.
fn default_base(addr: SocketAddr) -> Result<String, String> {
    if addr.port() == 0 {
        return Err("--http on port 0 needs --url: the torrents must name the real port".into());
    }
    let ip = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    Ok(format!("http://{}", SocketAddr::new(ip, addr.port())))
}

/// Runs `shoal serve` until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<(), String> {
    let Some(http) = args.http.0 else {
        return Err("shoal serve needs --http: it serves the content over HTTP".into());
    };
    let base = match &args.url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => return Err(format!("--url {u:?}: not an http:// or https:// URL")),
        None => default_base(http)?,
    };
    let content = Content::open(&args.dir, &base)?;
    let dir = content.dir().to_path_buf();
    let mut tracker = TrackerArgs::local(http, None);
    tracker.udp = args.udp;
    tracker.interval = args.interval;
    tracker.max_connections = args.max_connections;
    tracker.max_connections_per_address = args.max_connections_per_address;
    tracker.http_timeout = args.http_timeout;
    let mut service = TrackerService::serving(&tracker, content)?;
    let seeding = if args.seed {
        let at = service.seed(SocketAddr::new(http.ip(), args.seed_port))?;
        format!("; seeding on {at}")
    } else {
        String::new()
    };
    let mut said = format!("shoal serve: serving {} at {base}/", dir.display());
    if let Some(a) = service.http_addr() {
        let _ = write!(said, "; listening on http://{a}");
    }
    if let Some(a) = service.udp_addr() {
        let _ = write!(said, " and udp://{a}");
    }
    said.push_str(&seeding);
    say::out_line(&said);
    service.run().map_err(|e| format!("event loop: {e}"))
}
