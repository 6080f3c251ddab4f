//! One HTTP(S) exchange with a tracker or a web seed, as a task.
//!
//! The engine builds the request bytes and parses the answer (HTTP/1.1 framing is protocol,
//! so it lives in the core); this side only moves bytes: resolve the host (on the blocking
//! pool), connect, TLS through rustls for `https://`, write the request, read until the
//! server closes (a tracker) or until the core's reader says the answer is whole (a web
//! seed, whose request keeps the connection alive), with a size cap and a deadline.
//!
//! Web seed connections whose answer keeps them alive wait in a [`WebPool`] for the next
//! request to the same server (`shoal_io::http_pool`: bounds per server and in all, an idle
//! time limit); a request that finds its idle connection closed by the server before a
//! byte of answer goes once more on a new connection.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rustls::pki_types::ServerName;
use shoal_core::tracker::http::{HttpProgress, HttpResponseReader};
use shoal_core::tracker::{Scheme, TrackerUrl};
use shoal_core::IoError;
use shoal_io::answer_buf::{HTTP_TIMEOUT, MAX_TRACKER_ANSWER as MAX_RESPONSE};
use shoal_io::http_pool::{Pool, ServerKey};
use shoal_io::AnswerBuf;

/// Sends `request` to the tracker of `url` and returns every byte of its answer, or why
/// the exchange failed (the error names the URL).
pub async fn exchange(url: &TrackerUrl, request: &[u8]) -> Result<Vec<u8>, IoError> {
    exchange_with(url, request, None, MAX_RESPONSE).await
}

/// A connection to a web server, plain or TLS.
pub enum Stream {
    Plain(Async<TcpStream>),
    Tls(Box<TlsStream<Async<TcpStream>>>),
}

/// Idle keep-alive connections to web seeds, shared by the exchange tasks (see
/// `shoal_io::http_pool` for the bounds).
#[derive(Clone, Default)]
pub struct WebPool(Arc<Mutex<Pool<Stream>>>);

impl WebPool {
    fn take(&self, key: &ServerKey) -> Option<Stream> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pool.take(key, Instant::now())
    }

    fn put(&self, key: ServerKey, stream: Stream) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pool.put(key, stream, Instant::now());
    }
}

/// Sends a web seed's `request` to `url` and returns every byte of the answer, read until
/// the core's reader for a body of at most `max_body` bytes says it is whole or cannot be
/// (the engine reads it again and says why), or the server closes. The request goes on an
/// idle connection of `pool` to the same server if there is one (once more on a new
/// connection if the server had closed it before a byte of answer); a connection the
/// answer keeps alive goes back to `pool`.
pub async fn web_seed_exchange(
    pool: &WebPool,
    url: &TrackerUrl,
    request: &[u8],
    max_body: u64,
) -> Result<Vec<u8>, IoError> {
    let limit = usize::try_from(max_body)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let key = ServerKey::of(url);
    let attempt = async {
        if let Some(mut stream) = pool.take(&key) {
            let mut framer = Some(shoal_core::webseed::answer_reader(max_body));
            let mut response = AnswerBuf::new(limit, true);
            let talked = talk(&mut stream, request, &mut framer, &mut response).await;
            // Closed by the server while idle: no byte of answer; try a new connection.
            if !response.is_empty() {
                talked?;
                if framer.as_ref().is_some_and(|f| f.keeps_alive()) {
                    pool.put(key.clone(), stream);
                }
                return Ok::<_, io::Error>(response.take());
            }
        }
        let mut stream = connect(url).await?;
        let mut framer = Some(shoal_core::webseed::answer_reader(max_body));
        let mut response = AnswerBuf::new(limit, true);
        talk(&mut stream, request, &mut framer, &mut response).await?;
        if framer.as_ref().is_some_and(|f| f.keeps_alive()) {
            pool.put(key.clone(), stream);
        }
        Ok(response.take())
    };
    with_timeout(url, async { attempt.await.map_err(IoError::from) }).await
}

async fn exchange_with(
    url: &TrackerUrl,
    request: &[u8],
    framer: Option<HttpResponseReader>,
    limit: usize,
) -> Result<Vec<u8>, IoError> {
    let attempt = async {
        let mut stream = connect(url).await?;
        let mut framer = framer;
        let mut response = AnswerBuf::new(limit, false);
        talk(&mut stream, request, &mut framer, &mut response).await?;
        Ok::<_, io::Error>(response.take())
    };
    with_timeout(url, async { attempt.await.map_err(IoError::from) }).await
}

/// `attempt`, or a time-out error after [`HTTP_TIMEOUT`]; errors name the URL.
async fn with_timeout(
    url: &TrackerUrl,
    attempt: impl Future<Output = Result<Vec<u8>, IoError>>,
) -> Result<Vec<u8>, IoError> {
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

/// A new connection to the server of `url` (TLS for https).
async fn connect(url: &TrackerUrl) -> io::Result<Stream> {
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
    let stream = Async::<TcpStream>::connect(addr).await?;
    match url.scheme() {
        Scheme::Https => {
            let name = ServerName::try_from(url.host().to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = TlsConnector::from(shoal_io::tls_client_config())
                .connect(name, stream)
                .await?;
            Ok(Stream::Tls(Box::new(tls)))
        }
        _ => Ok(Stream::Plain(stream)),
    }
}

/// Writes the request, reads into `response` to the end (of the connection, or of the
/// answer `framer` frames).
async fn talk(
    stream: &mut Stream,
    request: &[u8],
    framer: &mut Option<HttpResponseReader>,
    response: &mut AnswerBuf,
) -> io::Result<()> {
    match stream {
        Stream::Plain(s) => talk_on(s, request, framer, response).await,
        Stream::Tls(s) => talk_on(&mut **s, request, framer, response).await,
    }
}

async fn talk_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    framer: &mut Option<HttpResponseReader>,
    response: &mut AnswerBuf,
) -> io::Result<()> {
    stream.write_all(request).await?;
    stream.flush().await?;
    loop {
        match stream.read(response.room()).await {
            Ok(0) => return Ok(()),
            Ok(n) => {
                let new = response.advance(n)?;
                if let Some(f) = framer.as_mut() {
                    // Whole, or unreadable: either way the engine reads it from here.
                    if !matches!(f.feed(new), Ok(HttpProgress::Incomplete)) {
                        return Ok(());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A TLS server that closes without `close_notify` (common with `Connection:
            // close`): the end of the answer, as the mio runtime reads it too; the core's
            // parser tells a truncated answer by its framing.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
