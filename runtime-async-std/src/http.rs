//! One HTTP(S) exchange with a tracker or a web seed, as a task.
//!
//! The engine builds the request bytes and parses the answer (HTTP/1.1 framing is protocol,
//! so it lives in the core); this side only moves bytes: resolve the host (on the blocking
//! pool), connect, TLS through rustls for `https://`, write the request, read until the
//! server closes (a tracker) or until the core's reader says the answer is whole (a web
//! seed, whose request keeps the connection alive), with a size cap and a deadline.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use shoal_core::tracker::http::{HttpProgress, HttpResponseReader};
use shoal_core::tracker::{Scheme, TrackerUrl};
use shoal_core::IoError;

/// The most a tracker answer may hold (as the mio runtime).
pub const MAX_RESPONSE: usize = 2 << 20;
/// An exchange that takes longer fails (as the mio runtime).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `request` to the tracker of `url` and returns every byte of its answer, or why
/// the exchange failed (the error names the URL).
pub async fn exchange(url: &TrackerUrl, request: &[u8]) -> Result<Vec<u8>, IoError> {
    exchange_with(url, request, None, MAX_RESPONSE).await
}

/// Sends a web seed's `request` to `url` and returns every byte of the answer, read until
/// the core's reader for a body of at most `max_body` bytes says it is whole or cannot be
/// (the engine reads it again and says why), or the server closes.
pub async fn web_seed_exchange(
    url: &TrackerUrl,
    request: &[u8],
    max_body: u64,
) -> Result<Vec<u8>, IoError> {
    let framer = shoal_core::webseed::answer_reader(max_body);
    let limit = usize::try_from(max_body)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    exchange_with(url, request, Some(framer), limit).await
}

async fn exchange_with(
    url: &TrackerUrl,
    request: &[u8],
    framer: Option<HttpResponseReader>,
    limit: usize,
) -> Result<Vec<u8>, IoError> {
    let attempt = async {
        run(url, request, framer, limit)
            .await
            .map_err(IoError::from)
    };
    let timeout = async {
        Timer::after(HTTP_TIMEOUT).await;
        Err(IoError::new(
            io::ErrorKind::TimedOut,
            format!("no answer in {} s", HTTP_TIMEOUT.as_secs()),
        ))
    };
    future::or(attempt, timeout)
        .await
        .map_err(|e| e.context(url.as_str()))
}

async fn run(
    url: &TrackerUrl,
    request: &[u8],
    framer: Option<HttpResponseReader>,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let port = url.port();
    let addr = match url.ip() {
        Some(ip) => SocketAddr::new(ip, port),
        None => {
            // Name lookups block: the blocking pool does them.
            let host = url.host().to_string();
            blocking::unblock(move || {
                (host.as_str(), port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address found"))
                    })
            })
            .await?
        }
    };
    let mut stream = Async::<TcpStream>::connect(addr).await?;
    match url.scheme() {
        Scheme::Https => {
            let name = ServerName::try_from(url.host().to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let mut tls = TlsConnector::from(shoal_io::tls_client_config())
                .connect(name, stream)
                .await?;
            talk(&mut tls, request, framer, limit).await
        }
        _ => talk(&mut stream, request, framer, limit).await,
    }
}

/// Writes the request, reads to the end (of the connection, or of the answer `framer`
/// frames).
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    mut framer: Option<HttpResponseReader>,
    limit: usize,
) -> io::Result<Vec<u8>> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut response = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return Ok(response),
            Ok(n) => {
                if response.len() + n > limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("answer larger than {limit} bytes"),
                    ));
                }
                response.extend_from_slice(&buf[..n]);
                if let Some(f) = framer.as_mut() {
                    // Whole, or unreadable: either way the engine reads it from here.
                    if !matches!(f.feed(&buf[..n]), Ok(HttpProgress::Incomplete)) {
                        return Ok(response);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A TLS server that closes without `close_notify` (common with `Connection:
            // close`): the end of the answer, as the mio runtime reads it too; the core's
            // parser tells a truncated answer by its framing.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(response),
            Err(e) => return Err(e),
        }
    }
}
