//! Message stream encryption (MSE, also called protocol encryption, PE): the obfuscated
//! handshake most clients try before (or instead of) the plaintext BitTorrent handshake,
//! as a sans-IO state machine for either end of a connection.
//!
//! The exchange (A dials, B answers; every field is from the Vuze wiki's specification):
//!
//! ```text
//! 1 A->B: Ya, PadA
//! 2 B->A: Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//! 5 A->B: ENCRYPT2(payload)
//! ```
//!
//! `Y` are Diffie-Hellman public keys over the 768-bit prime [`PRIME`] with generator 2
//! (private keys of 160 bits), sent as 96 big-endian bytes; `S` is the shared secret, the
//! same 96 bytes on both sides; `SKEY` is the torrent's info-hash; `VC` is 8 zero bytes;
//! pads are 0 to 512 random bytes. `ENCRYPT` is RC4 keyed with `HASH('keyA', S, SKEY)`
//! from A to B and `HASH('keyB', S, SKEY)` from B to A, the first 1024 bytes of each
//! keystream discarded; `ENCRYPT2` is the method B selected: RC4 continuing the same
//! streams, or plaintext. The initial payload `IA` (usually A's BitTorrent handshake) is
//! always RC4-encrypted.
//!
//! Invariants: [`Handshake::feed`] never panics on any input; the bytes it keeps are
//! bounded (the sync scans stop at the specification's maxima, 628 bytes for B and 616 for
//! A, pads at 512, `IA` at its 16-bit length), and a peer that passes a bound gets an
//! error, never more buffering. Randomness (private keys, pads) comes from the caller's
//! [`Rng`]: MSE obfuscates a stream, it does not authenticate anyone, and a seeded
//! generator is all the engine has.

#[cfg(test)]
mod tests;

use core::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use num_bigint::BigUint;
use rc4::{consts::U20, KeyInit, StreamCipher};
use sha1::{Digest, Sha1};

use crate::rng::Rng;
use crate::InfoHash;

/// The 768-bit prime of the key exchange (big-endian).
pub const PRIME: [u8; KEY_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x3A, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];
/// Bytes of a public key or of the shared secret.
pub const KEY_LEN: usize = 96;
/// The longest pad (PadA to PadD).
pub const MAX_PAD: usize = 512;
/// Bytes of the private key (160 bits).
const PRIVATE_LEN: usize = 20;
/// The verification constant.
const VC: [u8; 8] = [0; 8];
/// Keystream bytes thrown away before the first one used.
const DISCARD: usize = 1024;
/// B finds `HASH('req1', S)` ending within this many bytes of A's stream: Ya, PadA, req1.
pub const RESPONDER_SYNC_MAX: usize = KEY_LEN + MAX_PAD + 20;
/// A finds `ENCRYPT(VC)` ending within this many bytes of B's stream: Yb, PadB, VC.
pub const INITIATOR_SYNC_MAX: usize = KEY_LEN + MAX_PAD + VC.len();
/// The first byte and protocol name of a plaintext BitTorrent handshake: a connection
/// that starts otherwise is taken for MSE.
pub const PLAINTEXT_PREFIX: &[u8; 20] = b"\x13BitTorrent protocol";

/// The crypto methods of `crypto_provide` / `crypto_select`, as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods(pub u32);

impl Methods {
    /// The payload stays in the clear after the handshake.
    pub const PLAINTEXT: Methods = Methods(0x01);
    /// The payload is RC4-encrypted after the handshake.
    pub const RC4: Methods = Methods(0x02);
    /// Both.
    pub const BOTH: Methods = Methods(0x03);

    /// Whether every method of `other` is in `self`.
    pub fn contains(self, other: Methods) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

/// What the responder selects when the initiator offers both methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefer {
    /// Plaintext: the transfer costs nothing more than a plaintext connection.
    Plaintext,
    /// RC4.
    Rc4,
}

/// One direction's RC4 keystream, past its discarded start.
pub struct Cipher(rc4::Rc4<U20>);

impl Cipher {
    fn new(label: &[u8; 4], secret: &[u8; KEY_LEN], skey: &InfoHash) -> Cipher {
        let key = hash(&[label, secret, &skey.0]);
        let mut rc4 = rc4::Rc4::<U20>::new(&key.into());
        let mut discard = [0u8; DISCARD];
        rc4.apply_keystream(&mut discard);
        Cipher(rc4)
    }

    /// Encrypts or decrypts `data` in place (the same operation), moving the stream on.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher")
    }
}

/// Both directions' ciphers of an RC4 connection.
#[derive(Debug)]
pub struct Ciphers {
    /// Encrypts what we send.
    pub send: Cipher,
    /// Decrypts what we receive.
    pub recv: Cipher,
}

/// A finished handshake.
#[derive(Debug)]
pub struct Outcome {
    /// The torrent (SKEY) the connection is for.
    pub info_hash: InfoHash,
    /// The payload's ciphers when RC4 was selected; `None`: plaintext.
    pub ciphers: Option<Box<Ciphers>>,
    /// What came past the handshake, already decrypted: the initial payload (responder)
    /// and any payload bytes that followed in the same reads. Later bytes are to be
    /// decrypted with `ciphers.recv` if there are ciphers.
    pub rest: BytesMut,
}

/// Why a handshake failed. The connection is to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MseError {
    /// The sync marker did not come within the specification's bound.
    NoSync,
    /// The initiator names no torrent of ours.
    UnknownTorrent,
    /// The verification constant did not decrypt to zeros.
    BadVerification,
    /// No crypto method both ends accept.
    NoCommonMethod,
    /// The responder selected a method we did not offer, or several.
    BadSelect(u32),
    /// A pad longer than 512 bytes.
    PadTooLong(u16),
    /// The public key is not in 2..P-1 (it would make the secret guessable).
    BadKey,
}

impl fmt::Display for MseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MseError::NoSync => f.write_str("no encryption sync marker within the bound"),
            MseError::UnknownTorrent => f.write_str("encrypted handshake for an unknown torrent"),
            MseError::BadVerification => f.write_str("encryption verification failed"),
            MseError::NoCommonMethod => f.write_str("no common encryption method"),
            MseError::BadSelect(m) => write!(f, "encryption method {m:#x} not offered"),
            MseError::PadTooLong(n) => write!(f, "encryption pad of {n} bytes"),
            MseError::BadKey => f.write_str("invalid encryption public key"),
        }
    }
}

impl std::error::Error for MseError {}

/// What [`Handshake::feed`] made of the bytes.
#[derive(Debug)]
pub enum Progress {
    /// More bytes are needed (send what was written out first).
    Pending,
    /// The handshake is done.
    Done(Outcome),
}

#[derive(Debug)]
enum State {
    /// Responder: Ya expected.
    AwaitYa,
    /// Responder: scanning for `HASH('req1', S)`.
    SyncReq1,
    /// Responder: `HASH('req2', SKEY) xor HASH('req3', S)`, then
    /// `ENCRYPT(VC, crypto_provide, len(PadC))`.
    AwaitProvide,
    /// Responder: `ENCRYPT(PadC, len(IA))`.
    AwaitPadC { pad: usize, provide: Methods },
    /// Responder: `ENCRYPT(IA)`.
    AwaitIa { len: usize, provide: Methods },
    /// Initiator: Yb expected.
    AwaitYb,
    /// Initiator: scanning for `ENCRYPT(VC)`, which is `marker`.
    SyncVc { marker: [u8; 8] },
    /// Initiator: `ENCRYPT(crypto_select, len(PadD))`.
    AwaitSelect,
    /// Initiator: `ENCRYPT(PadD)`.
    AwaitPadD { pad: usize, select: Methods },
    /// Finished or failed: no more input is taken.
    Over,
}

/// One end's MSE handshake. Feed it what the connection receives; send what it writes
/// into the `out` buffer, in order, before anything else.
#[derive(Debug)]
pub struct Handshake {
    state: State,
    private: BigUint,
    /// What we accept (responder) or offer (initiator).
    methods: Methods,
    prefer: Prefer,
    /// The torrent: known from the start by the initiator, found by the responder.
    skey: Option<InfoHash>,
    secret: [u8; KEY_LEN],
    /// Received bytes not yet taken.
    buf: BytesMut,
    /// Bytes of the peer's stream dropped while scanning for the sync marker, plus its
    /// public key: what counts against the sync bound.
    scanned: usize,
    ciphers: Option<Ciphers>,
    /// A pad length for each pad we send, drawn at the start.
    rng: Rng,
    /// The initiator's initial payload, sent with step 3 (then emptied).
    initial: Bytes,
}

impl Handshake {
    /// The dialling end for torrent `skey`, offering `methods` (whichever the responder
    /// selects of them is used). Writes Ya and PadA into `out`.
    ///
    /// `initial` is the initial payload `IA`, sent RC4-encrypted with step 3 whichever
    /// method the responder then selects: usually the BitTorrent handshake, which so
    /// reaches the responder a round trip sooner than after step 4. Its length field has 16
    /// bits, so at most its first 65,535 bytes are sent.
    pub fn initiator(
        skey: InfoHash,
        methods: Methods,
        initial: Bytes,
        rng: &mut Rng,
        out: &mut BytesMut,
    ) -> Self {
        let mut h = Handshake::new(State::AwaitYb, methods, Prefer::Plaintext, rng);
        h.skey = Some(skey);
        h.initial = initial;
        h.write_public_key(out);
        h
    }

    /// The answering end, accepting `methods` and choosing `prefer` when both are offered
    /// and accepted. It writes nothing until the initiator's key is in.
    pub fn responder(methods: Methods, prefer: Prefer, rng: &mut Rng) -> Self {
        Handshake::new(State::AwaitYa, methods, prefer, rng)
    }

    fn new(state: State, methods: Methods, prefer: Prefer, rng: &mut Rng) -> Self {
        let mut key = [0u8; PRIVATE_LEN];
        for chunk in key.chunks_mut(8) {
            let r = rng.next_u64().to_be_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        Handshake {
            state,
            private: BigUint::from_bytes_be(&key),
            methods,
            prefer,
            skey: None,
            secret: [0; KEY_LEN],
            buf: BytesMut::new(),
            scanned: 0,
            ciphers: None,
            rng: Rng::new(rng.next_u64()),
            initial: Bytes::new(),
        }
    }

    /// Takes bytes received. Writes what must be sent into `out`. `find` turns a
    /// `HASH('req2', SKEY)` into the info-hash of one of our torrents (responder only;
    /// see [`req2`]).
    pub fn feed(
        &mut self,
        data: &[u8],
        out: &mut BytesMut,
        find: impl FnMut(&[u8; 20]) -> Option<InfoHash>,
    ) -> Result<Progress, MseError> {
        if matches!(self.state, State::Over) {
            return Ok(Progress::Pending);
        }
        self.buf.extend_from_slice(data);
        let r = self.step(out, find);
        if r.is_err() {
            self.state = State::Over;
            self.buf = BytesMut::new();
        }
        r
    }

    fn step(
        &mut self,
        out: &mut BytesMut,
        mut find: impl FnMut(&[u8; 20]) -> Option<InfoHash>,
    ) -> Result<Progress, MseError> {
        loop {
            match self.state {
                State::AwaitYa | State::AwaitYb => {
                    if self.buf.len() < KEY_LEN {
                        return Ok(Progress::Pending);
                    }
                    let peer_key = self.buf.split_to(KEY_LEN);
                    self.scanned = KEY_LEN;
                    self.secret = self.shared_secret(&peer_key)?;
                    if matches!(self.state, State::AwaitYa) {
                        self.write_public_key(out);
                        self.state = State::SyncReq1;
                    } else {
                        self.write_step3(out);
                        // ENCRYPT(VC) is B's keystream applied to zeros: the same bytes
                        // whatever B sent, found by comparing (and the keystream is then
                        // where B's is after VC).
                        let mut marker = VC;
                        self.recv_cipher()?.apply(&mut marker);
                        self.state = State::SyncVc { marker };
                    }
                }
                State::SyncReq1 => {
                    let req1 = hash(&[b"req1", &self.secret]);
                    if !self.sync(&req1, RESPONDER_SYNC_MAX)? {
                        return Ok(Progress::Pending);
                    }
                    self.state = State::AwaitProvide;
                }
                State::SyncVc { marker } => {
                    if !self.sync(&marker, INITIATOR_SYNC_MAX)? {
                        return Ok(Progress::Pending);
                    }
                    self.state = State::AwaitSelect;
                }
                State::AwaitProvide => {
                    if self.buf.len() < 20 + 8 + 4 + 2 {
                        return Ok(Progress::Pending);
                    }
                    let mut req2 = [0u8; 20];
                    self.buf.copy_to_slice(&mut req2);
                    let req3 = hash(&[b"req3", &self.secret]);
                    for (a, b) in req2.iter_mut().zip(req3) {
                        *a ^= b;
                    }
                    let skey = find(&req2).ok_or(MseError::UnknownTorrent)?;
                    self.skey = Some(skey);
                    let mut recv = Cipher::new(b"keyA", &self.secret, &skey);
                    let send = Cipher::new(b"keyB", &self.secret, &skey);
                    let mut head = self.buf.split_to(14);
                    recv.apply(&mut head);
                    self.ciphers = Some(Ciphers { send, recv });
                    if head[..8] != VC {
                        return Err(MseError::BadVerification);
                    }
                    let provide =
                        Methods(u32::from_be_bytes([head[8], head[9], head[10], head[11]]));
                    let pad = pad_len(u16::from_be_bytes([head[12], head[13]]))?;
                    self.state = State::AwaitPadC { pad, provide };
                }
                State::AwaitPadC { pad, provide } => {
                    if self.buf.len() < pad + 2 {
                        return Ok(Progress::Pending);
                    }
                    let mut field = self.buf.split_to(pad + 2);
                    self.recv_cipher()?.apply(&mut field);
                    let len = usize::from(u16::from_be_bytes([field[pad], field[pad + 1]]));
                    self.state = State::AwaitIa { len, provide };
                }
                State::AwaitIa { len, provide } => {
                    if self.buf.len() < len {
                        return Ok(Progress::Pending);
                    }
                    let select = self.select(provide)?;
                    let mut ia = self.buf.split_to(len);
                    self.recv_cipher()?.apply(&mut ia);
                    self.write_step4(select, out);
                    let mut rest = std::mem::take(&mut self.buf);
                    let ciphers = self.finish(select, &mut rest);
                    ia.unsplit(rest);
                    return Ok(Progress::Done(Outcome {
                        info_hash: self.skey.unwrap_or_default(),
                        ciphers,
                        rest: ia,
                    }));
                }
                State::AwaitSelect => {
                    if self.buf.len() < 4 + 2 {
                        return Ok(Progress::Pending);
                    }
                    let mut head = self.buf.split_to(6);
                    self.recv_cipher()?.apply(&mut head);
                    let select = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                    let pad = pad_len(u16::from_be_bytes([head[4], head[5]]))?;
                    let select = Methods(select);
                    let single = select == Methods::PLAINTEXT || select == Methods::RC4;
                    if !single || !self.methods.contains(select) {
                        return Err(MseError::BadSelect(select.0));
                    }
                    self.state = State::AwaitPadD { pad, select };
                }
                State::AwaitPadD { pad, select } => {
                    if self.buf.len() < pad {
                        return Ok(Progress::Pending);
                    }
                    let mut padding = self.buf.split_to(pad);
                    self.recv_cipher()?.apply(&mut padding);
                    let mut rest = std::mem::take(&mut self.buf);
                    let ciphers = self.finish(select, &mut rest);
                    return Ok(Progress::Done(Outcome {
                        info_hash: self.skey.unwrap_or_default(),
                        ciphers,
                        rest,
                    }));
                }
                State::Over => return Ok(Progress::Pending),
            }
        }
    }

    /// Drops bytes up to `marker` and the marker itself. `Ok(false)`: not found yet
    /// (at most `marker.len() - 1` bytes kept for a marker split across reads).
    fn sync(&mut self, marker: &[u8], max: usize) -> Result<bool, MseError> {
        if let Some(at) = self.buf.windows(marker.len()).position(|w| w == marker) {
            if self.scanned + at + marker.len() > max {
                return Err(MseError::NoSync);
            }
            self.buf.advance(at + marker.len());
            return Ok(true);
        }
        let keep = marker.len() - 1;
        let drop = self.buf.len().saturating_sub(keep);
        self.buf.advance(drop);
        self.scanned += drop;
        if self.scanned + self.buf.len() >= max {
            return Err(MseError::NoSync);
        }
        Ok(false)
    }

    /// The method the responder selects of what the initiator provides.
    fn select(&self, provide: Methods) -> Result<Methods, MseError> {
        let common = Methods(provide.0 & self.methods.0 & Methods::BOTH.0);
        let pick = match (
            common.contains(Methods::PLAINTEXT),
            common.contains(Methods::RC4),
        ) {
            (true, true) => match self.prefer {
                Prefer::Plaintext => Methods::PLAINTEXT,
                Prefer::Rc4 => Methods::RC4,
            },
            (true, false) => Methods::PLAINTEXT,
            (false, true) => Methods::RC4,
            (false, false) => return Err(MseError::NoCommonMethod),
        };
        Ok(pick)
    }

    /// The payload's ciphers, `rest` decrypted with them, for the method `select`.
    fn finish(&mut self, select: Methods, rest: &mut BytesMut) -> Option<Box<Ciphers>> {
        self.state = State::Over;
        let mut ciphers = self.ciphers.take()?;
        if select != Methods::RC4 {
            return None;
        }
        ciphers.recv.apply(rest);
        Some(Box::new(ciphers))
    }

    fn recv_cipher(&mut self) -> Result<&mut Cipher, MseError> {
        // Set by the key exchange, before any state that decrypts: never the error.
        self.ciphers
            .as_mut()
            .map(|c| &mut c.recv)
            .ok_or(MseError::BadVerification)
    }

    fn shared_secret(&self, peer_key: &[u8]) -> Result<[u8; KEY_LEN], MseError> {
        let p = BigUint::from_bytes_be(&PRIME);
        let y = BigUint::from_bytes_be(peer_key);
        let one = BigUint::from(1u8);
        if y <= one || y >= &p - &one {
            return Err(MseError::BadKey);
        }
        Ok(to_key_bytes(&y.modpow(&self.private, &p)))
    }

    /// Our public key, then a random pad.
    fn write_public_key(&mut self, out: &mut BytesMut) {
        let p = BigUint::from_bytes_be(&PRIME);
        let y = BigUint::from(2u8).modpow(&self.private, &p);
        out.put_slice(&to_key_bytes(&y));
        self.write_pad(out);
    }

    /// Step 3: req1, the obfuscated SKEY, then `ENCRYPT(VC, crypto_provide, len(PadC),
    /// PadC, len(IA)), ENCRYPT(IA)` with an empty PadC and the initial payload given to
    /// [`Handshake::initiator`].
    fn write_step3(&mut self, out: &mut BytesMut) {
        let skey = self.skey.unwrap_or_default();
        out.put_slice(&hash(&[b"req1", &self.secret]));
        out.put_slice(&req2_xor_req3(&skey, &self.secret));
        let send = Cipher::new(b"keyA", &self.secret, &skey);
        let recv = Cipher::new(b"keyB", &self.secret, &skey);
        self.ciphers = Some(Ciphers { send, recv });
        let start = out.len();
        out.put_slice(&VC);
        out.put_u32(self.methods.0);
        out.put_u16(0);
        let initial = std::mem::take(&mut self.initial);
        let ia = &initial[..initial.len().min(usize::from(u16::MAX))];
        out.put_u16(ia.len() as u16);
        out.put_slice(ia);
        if let Some(c) = self.ciphers.as_mut() {
            c.send.apply(&mut out[start..]);
        }
    }

    /// Step 4: `ENCRYPT(VC, crypto_select, len(PadD), PadD)`.
    fn write_step4(&mut self, select: Methods, out: &mut BytesMut) {
        let pad = self.rng.below(MAX_PAD as u32 + 1) as usize;
        let start = out.len();
        out.put_slice(&VC);
        out.put_u32(select.0);
        out.put_u16(pad as u16);
        out.put_bytes(0, pad);
        if let Some(c) = self.ciphers.as_mut() {
            c.send.apply(&mut out[start..]);
        }
    }

    fn write_pad(&mut self, out: &mut BytesMut) {
        let pad = self.rng.below(MAX_PAD as u32 + 1) as usize;
        for _ in 0..pad {
            out.put_u8(self.rng.next_u32() as u8);
        }
    }
}

/// `HASH('req2', SKEY)`: what a responder compares with [`Handshake::feed`]'s `find`
/// argument to find the torrent.
pub fn req2(skey: &InfoHash) -> [u8; 20] {
    hash(&[b"req2", &skey.0])
}

fn req2_xor_req3(skey: &InfoHash, secret: &[u8; KEY_LEN]) -> [u8; 20] {
    let mut out = req2(skey);
    for (a, b) in out.iter_mut().zip(hash(&[b"req3", secret])) {
        *a ^= b;
    }
    out
}

fn pad_len(len: u16) -> Result<usize, MseError> {
    if usize::from(len) > MAX_PAD {
        return Err(MseError::PadTooLong(len));
    }
    Ok(usize::from(len))
}

fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // Below P, so never longer than 96 bytes; left-padded with zeros.
    let len = bytes.len().min(KEY_LEN);
    out[KEY_LEN - len..].copy_from_slice(&bytes[bytes.len() - len..]);
    out
}

fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}
