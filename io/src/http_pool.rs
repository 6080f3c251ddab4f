//! Idle keep-alive connections to web seeds, kept for the next request to the same server.
//!
//! Both runtimes keep a [`Pool`] of their own connection type: a web seed connection whose
//! answer the core's reader says
//! [keeps it alive](shoal_core::tracker::http::HttpResponseReader::keeps_alive) is put here
//! once the answer is whole, and the next request to the same scheme, host and port takes
//! it instead of connecting (and shaking hands for TLS) again.
//!
//! Bounds: [`MAX_IDLE_PER_SERVER`] idle connections per server and [`MAX_IDLE`] in all (the
//! oldest goes first), each dropped (closed) after [`IDLE_FOR`]. The pool does not watch
//! idle sockets: a server may close one at any time, and the runtime sends a request that
//! finds its reused connection closed before a byte of answer once more on a new one.

use std::time::{Duration, Instant};

use shoal_core::tracker::{Scheme, TrackerUrl};

/// Idle connections kept per server: a web seed has at most a few requests under way
/// (`WebSeedConfig::max_jobs`), and a few torrents may share a server.
pub const MAX_IDLE_PER_SERVER: usize = 4;
/// Idle connections kept in all.
pub const MAX_IDLE: usize = 32;
/// How long a connection stays idle before it is closed: between two jobs of a download
/// it waits microseconds; minutes later the server has likely closed it.
pub const IDLE_FOR: Duration = Duration::from_secs(5);

/// Which connections may carry a request to a URL: same scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKey {
    tls: bool,
    host: String,
    port: u16,
}

impl ServerKey {
    /// The server of `url`.
    pub fn of(url: &TrackerUrl) -> ServerKey {
        ServerKey {
            tls: url.scheme() == Scheme::Https,
            host: url.host().to_ascii_lowercase(),
            port: url.port(),
        }
    }
}

/// Idle connections of type `C` (see the module docs).
pub struct Pool<C> {
    /// Oldest first.
    idle: Vec<(ServerKey, Instant, C)>,
}

impl<C> Default for Pool<C> {
    fn default() -> Self {
        Pool { idle: Vec::new() }
    }
}

impl<C> Pool<C> {
    /// The most recently idle connection to `key`'s server that has not idled too long.
    pub fn take(&mut self, key: &ServerKey, now: Instant) -> Option<C> {
        self.expire(now);
        let at = self.idle.iter().rposition(|(k, _, _)| k == key)?;
        Some(self.idle.remove(at).2)
    }

    /// Keeps `conn`, idle since `now`, for the next request to `key`'s server, within the
    /// bounds.
    pub fn put(&mut self, key: ServerKey, conn: C, now: Instant) {
        self.expire(now);
        if self.idle.iter().filter(|(k, _, _)| *k == key).count() >= MAX_IDLE_PER_SERVER {
            if let Some(at) = self.idle.iter().position(|(k, _, _)| *k == key) {
                self.idle.remove(at);
            }
        }
        if self.idle.len() >= MAX_IDLE {
            self.idle.remove(0);
        }
        self.idle.push((key, now, conn));
    }

    /// Closes the connections idle for [`IDLE_FOR`] or longer.
    pub fn expire(&mut self, now: Instant) {
        self.idle
            .retain(|(_, since, _)| now.saturating_duration_since(*since) < IDLE_FOR);
    }

    /// How many connections are idle.
    pub fn len(&self) -> usize {
        self.idle.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.idle.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> ServerKey {
        ServerKey::of(&TrackerUrl::parse(url).unwrap())
    }

    #[test]
    fn connections_go_to_their_server_within_bounds() {
        let t0 = Instant::now();
        let mut pool = Pool::default();
        let a = key("http://Example.org/f");
        assert_eq!(a, key("http://example.org:80/g"));
        assert_ne!(a, key("https://example.org/f"));
        assert_ne!(a, key("http://example.org:8080/f"));
        for i in 0..10 {
            pool.put(a.clone(), i, t0);
        }
        // The newest four of one server are kept, the freshest taken first.
        assert_eq!(pool.len(), MAX_IDLE_PER_SERVER);
        assert_eq!(pool.take(&a, t0), Some(9));
        assert_eq!(pool.take(&key("https://example.org/f"), t0), None);
        for port in 0..100u16 {
            pool.put(key(&format!("http://h:{}/", port + 1)), 100 + port, t0);
        }
        assert_eq!(pool.len(), MAX_IDLE);
        // Idle too long: closed.
        assert_eq!(pool.take(&key("http://h:100/"), t0 + IDLE_FOR), None);
        assert!(pool.is_empty());
    }
}
