//! One HTTP(S) exchange with a tracker or a web seed over a non-blocking mio socket, and
//! the pool of idle web seed connections.
//!
//! The engine builds the request bytes and parses the answer (HTTP/1.1 framing is protocol,
//! so it lives in the core); this side only moves bytes: connect, TLS through rustls for
//! `https://`, write the request, read until the server closes (a tracker) or until the
//! core's reader says the answer is whole (a web seed, whose request keeps the connection
//! alive), with a size cap. Each call of [`Exchange::drive`] does what the socket allows
//! without blocking and says whether the exchange is over.
//!
//! A web seed's connection whose answer keeps it alive goes, as an [`Idle`], to the
//! runtime's [`Pool`] (`shoal_io::http_pool`: its bounds, per server and in all) for the
//! next request to the same server. Idle sockets are out of the poll: a server that closes
//! one is noticed when it is next used, and a reused connection that ends before a byte of
//! answer is tried once again on a new one ([`Exchange::is_stale`]), as a server may close
//! an idle connection at any time.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use shoal_core::engine::WebSeedRequestId;
use shoal_core::tracker::http::{HttpProgress, HttpResponseReader};
use shoal_core::tracker::AnnounceId;
use shoal_core::IoError;
use shoal_io::AnswerBuf;

pub use shoal_io::answer_buf::MAX_TRACKER_ANSWER as MAX_RESPONSE;

/// What an exchange is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Tracker(AnnounceId),
    WebSeed(WebSeedRequestId),
}

pub struct Exchange {
    pub stream: TcpStream,
    tls: Option<ClientConnection>,
    /// Where `stream` goes.
    addr: SocketAddr,
    /// Whether the connection came from the [`Pool`].
    reused: bool,
    request: Vec<u8>,
    written: usize,
    /// The answer so far.
    answer: AnswerBuf,
    /// Frames a web seed's answer: the exchange is over when it is whole (or unreadable),
    /// whether or not the server closes.
    framer: Option<HttpResponseReader>,
}

/// How an exchange ended.
pub enum Finished {
    /// The server closed the connection: `response` holds its answer.
    Closed,
    Failed(IoError),
}

impl Exchange {
    /// Starts connecting to `addr`; `tls_host` names the server for TLS (https) or is
    /// `None` for plain HTTP.
    /// `framer`, if any, frames the answer; `limit` bounds it.
    pub fn start(
        addr: SocketAddr,
        tls_host: Option<&str>,
        request: Vec<u8>,
        framer: Option<HttpResponseReader>,
        limit: usize,
    ) -> Result<Exchange, IoError> {
        let stream = TcpStream::connect(addr).map_err(|e| IoError::from(e).context(addr))?;
        let tls = match tls_host {
            Some(host) => {
                let name = ServerName::try_from(host.to_string()).map_err(|e| {
                    IoError::new(io::ErrorKind::InvalidInput, format!("{host}: {e}"))
                })?;
                Some(
                    ClientConnection::new(shoal_io::tls_client_config(), name)
                        .map_err(|e| IoError::new(io::ErrorKind::Other, format!("{host}: {e}")))?,
                )
            }
            None => None,
        };
        Ok(Exchange {
            stream,
            tls,
            addr,
            reused: false,
            request,
            written: 0,
            answer: AnswerBuf::new(limit, framer.is_some()),
            framer,
        })
    }

    /// The exchange of `request` on an idle connection from the [`Pool`].
    pub fn reuse(
        idle: Idle,
        request: Vec<u8>,
        framer: HttpResponseReader,
        limit: usize,
    ) -> Exchange {
        Exchange {
            stream: idle.stream,
            tls: idle.tls,
            addr: idle.addr,
            reused: true,
            request,
            written: 0,
            answer: AnswerBuf::new(limit, true),
            framer: Some(framer),
        }
    }

    /// Where the connection goes.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether this exchange, over, found its reused connection closed by the server before
    /// a byte of answer came: the request is to be sent again on a new connection.
    pub fn is_stale(&self) -> bool {
        self.reused && self.answer.is_empty()
    }

    /// The request, to send again (see [`is_stale`](Self::is_stale)).
    pub fn take_request(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.request)
    }

    /// The connection, once the answer is whole, if the core's reader says it may carry
    /// another request.
    pub fn into_idle(self) -> Option<Idle> {
        let alive = self.framer.as_ref().is_some_and(|f| f.keeps_alive());
        let tls_clean = self.tls.as_ref().is_none_or(|t| !t.wants_write());
        (alive && tls_clean).then_some(Idle {
            stream: self.stream,
            tls: self.tls,
            addr: self.addr,
        })
    }

    /// Every byte of the answer that came (once the exchange is over).
    pub fn take_response(&mut self) -> Vec<u8> {
        self.answer.take()
    }

    /// Moves bytes both ways until the socket would block. `Some` when the exchange is over.
    pub fn drive(&mut self) -> Option<Finished> {
        match self.pump() {
            Ok(true) => Some(Finished::Closed),
            Ok(false) => None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => Some(Finished::Failed(IoError::from(e))),
        }
    }

    fn pump(&mut self) -> io::Result<bool> {
        // A connect in progress reports its failure as a socket error.
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match &mut self.tls {
            None => {
                while self.written < self.request.len() {
                    match self.stream.write(&self.request[self.written..]) {
                        Ok(n) => self.written += n,
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            return Err(io::ErrorKind::WouldBlock.into())
                        }
                        Err(e) => return Err(e),
                    }
                }
                read_to_close(&mut self.stream, &mut self.answer, &mut self.framer)
            }
            Some(tls) => {
                if self.written == 0 {
                    tls.writer().write_all(&self.request)?;
                    self.written = self.request.len();
                }
                loop {
                    while tls.wants_write() {
                        match tls.write_tls(&mut self.stream) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                                return Err(io::ErrorKind::WouldBlock.into())
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    match tls.read_tls(&mut self.stream) {
                        Ok(0) => return Ok(true),
                        Ok(_) => {
                            tls.process_new_packets()
                                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                            match read_to_close(
                                &mut tls.reader(),
                                &mut self.answer,
                                &mut self.framer,
                            ) {
                                Ok(true) => return Ok(true),
                                Ok(false) => {}
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// Reads until end of stream or of the framed answer (`Ok(true)`), or until it would
/// block.
fn read_to_close(
    src: &mut impl Read,
    out: &mut AnswerBuf,
    framer: &mut Option<HttpResponseReader>,
) -> io::Result<bool> {
    loop {
        match src.read(out.room()) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                let new = out.advance(n)?;
                if let Some(f) = framer.as_mut() {
                    // Whole, or unreadable: either way the engine reads it from here.
                    if !matches!(f.feed(new), Ok(HttpProgress::Incomplete)) {
                        return Ok(true);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The idle web seed connections of a runtime.
pub type Pool = shoal_io::http_pool::Pool<Idle>;

/// An idle keep-alive connection to a web seed's server.
pub struct Idle {
    stream: TcpStream,
    tls: Option<ClientConnection>,
    addr: SocketAddr,
}
