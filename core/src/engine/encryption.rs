//! A connection's byte stream under message stream encryption (see [`crate::mse`]): which
//! handshake an incoming connection starts with, the MSE handshake itself (a dialler's
//! BitTorrent handshake goes in it as the initial payload, a round trip sooner than after
//! it, as libtorrent sends it), and RC4 over every byte after it when RC4 was chosen.
//!
//! Invariants: a connection's [`Stream`] is decided before its BitTorrent handshake is
//! read; `Peer::encrypted` is true exactly when the stream is [`Stream::Rc4`], and then
//! every byte the engine hands to the runtime (its write buffer at each flush, block
//! payloads) and every byte received goes through the ciphers, in order. Bytes the MSE
//! handshake writes are flushed before the payload cipher is set, so they are never
//! encrypted twice.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::mse::{Ciphers, Handshake, Progress, PLAINTEXT_PREFIX};

use super::conn::our_handshake;
use super::peer::Peer;
use super::{CloseReason, ConnId, Encryption, Engine, PeerStream, ProtocolError};

/// How a connection's bytes travel.
#[derive(Debug, Default)]
pub(crate) enum Stream {
    /// Incoming, before its first bytes tell plaintext from MSE.
    #[default]
    Undecided,
    /// The BitTorrent protocol in the clear.
    Plain,
    /// In the clear after an MSE handshake that selected plaintext.
    MsePlain,
    /// The MSE handshake is under way.
    Handshake(Box<Handshake>),
    /// RC4 both ways, after an MSE handshake.
    Rc4(Box<Ciphers>),
}

impl Stream {
    /// What the user is told of it.
    pub(super) fn kind(&self) -> PeerStream {
        match self {
            Stream::Rc4(_) => PeerStream::Rc4,
            Stream::MsePlain => PeerStream::MsePlaintext,
            _ => PeerStream::Plaintext,
        }
    }
}

impl Engine {
    /// A dialled connection is up: starts MSE when the policy dials with it, unless the
    /// dial was made plain already (its peer refused an MSE dial before). Returns whether
    /// it did (the BitTorrent handshake then goes with MSE's step 3, as its initial
    /// payload).
    pub(super) fn start_encryption(&mut self, conn: ConnId) -> bool {
        if self
            .peer(conn)
            .is_some_and(|p| matches!(p.cold.stream, Stream::Plain))
        {
            return false;
        }
        let methods = self.config.encryption.initiator();
        let info_hash = self
            .peer(conn)
            .and_then(|p| p.torrent)
            .and_then(|id| self.info_hash_of(id));
        let (Some(methods), Some(info_hash)) = (methods, info_hash) else {
            if let Some(p) = self.peer_mut(conn) {
                p.cold.stream = Stream::Plain;
            }
            return false;
        };
        let mut out = BytesMut::new();
        let mut initial = BytesMut::new();
        our_handshake(info_hash, self.config.peer_id).encode(&mut initial);
        let h = Handshake::initiator(
            info_hash,
            methods,
            initial.freeze(),
            &mut self.mse_rng,
            &mut out,
        );
        let Some(p) = self.peer_mut(conn) else {
            return false;
        };
        p.cold.stream = Stream::Handshake(Box::new(h));
        // It leaves with step 3, or the connection closes with the MSE handshake.
        p.cold.sent_handshake = true;
        p.write_buf.unsplit(out);
        self.mark_dirty(conn);
        true
    }

    /// Bytes received before the BitTorrent handshake: decides an incoming connection's
    /// stream and runs the MSE handshake. Returns what the plaintext path is to read
    /// (decrypted), or `None` when there is nothing for it (or the connection closed).
    pub(super) fn before_handshake(
        &mut self,
        conn: ConnId,
        data: BytesMut,
        now: Instant,
    ) -> Option<BytesMut> {
        let policy = self.config.encryption;
        let p = self.peer_mut(conn)?;
        let (h, input) = match std::mem::take(&mut p.cold.stream) {
            Stream::Undecided => {
                let seen = p.read_buf.len() + data.len();
                let n = seen.min(PLAINTEXT_PREFIX.len());
                let plain = p
                    .read_buf
                    .iter()
                    .chain(data.iter())
                    .take(n)
                    .eq(PLAINTEXT_PREFIX[..n].iter());
                if plain {
                    if seen >= PLAINTEXT_PREFIX.len() {
                        if policy == Encryption::Require {
                            return self.refuse(conn);
                        }
                        p.cold.stream = Stream::Plain;
                    }
                    // Otherwise still undecided: the partial prefix waits in the read
                    // buffer with the handshake's other bytes.
                    return Some(data);
                }
                let Some((methods, prefer)) = policy.responder() else {
                    return self.refuse(conn);
                };
                let mut input = std::mem::take(&mut p.read_buf);
                input.unsplit(data);
                let h = Handshake::responder(methods, prefer, &mut self.mse_rng);
                (Box::new(h), input)
            }
            Stream::Handshake(h) => (h, data),
            other => {
                p.cold.stream = other;
                return Some(data);
            }
        };
        self.feed_handshake(conn, h, input, now)
    }

    fn feed_handshake(
        &mut self,
        conn: ConnId,
        mut h: Box<Handshake>,
        input: BytesMut,
        now: Instant,
    ) -> Option<BytesMut> {
        let mut out = BytesMut::new();
        let torrents = &self.by_info_hash;
        // The torrent is named by HASH('req2', info-hash), kept beside each info-hash.
        let find = |req2: &[u8; 20]| torrents.by_req2(req2);
        let progress = h.feed(&input, &mut out, find);
        let p = self.peer_mut(conn)?;
        p.write_buf.unsplit(out);
        let outcome = match progress {
            Ok(Progress::Pending) => {
                p.cold.stream = Stream::Handshake(h);
                self.mark_dirty(conn);
                return None;
            }
            Ok(Progress::Done(outcome)) => outcome,
            Err(e) => {
                self.close(conn, CloseReason::Protocol(ProtocolError::Encryption(e)));
                return None;
            }
        };
        // MSE's last bytes leave before the payload cipher applies to the write buffer.
        self.flush(conn);
        let p = self.peer_mut(conn)?;
        match outcome.ciphers {
            Some(ciphers) => {
                p.cold.stream = Stream::Rc4(ciphers);
                p.encrypted = true;
            }
            None => p.cold.stream = Stream::MsePlain,
        }
        if p.cold.outbound && !p.cold.sent_handshake {
            self.send_handshake(conn, now);
        }
        Some(outcome.rest)
    }

    fn refuse(&mut self, conn: ConnId) -> Option<BytesMut> {
        self.close(conn, CloseReason::Protocol(ProtocolError::EncryptionPolicy));
        None
    }

    /// A block's payload as it is to be sent: encrypted (a copy) on an RC4 connection.
    pub(super) fn seal(&mut self, conn: ConnId, data: Bytes) -> Bytes {
        match self.peer_mut(conn) {
            Some(p) if p.encrypted => {
                let mut copy = BytesMut::from(&data[..]);
                if let Stream::Rc4(c) = &mut p.cold.stream {
                    c.send.apply(&mut copy);
                }
                copy.freeze()
            }
            _ => data,
        }
    }
}

/// Encrypts the write buffer of an RC4 connection, in place, as it is flushed.
pub(super) fn encrypt_write_buf(p: &mut Peer) {
    if let Stream::Rc4(c) = &mut p.cold.stream {
        c.send.apply(&mut p.write_buf);
    }
}

/// Decrypts bytes received on an RC4 connection, in place.
pub(super) fn decrypt(p: &mut Peer, data: &mut [u8]) {
    if let Stream::Rc4(c) = &mut p.cold.stream {
        c.recv.apply(data);
    }
}
