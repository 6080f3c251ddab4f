use bytes::{Bytes, BytesMut};
use quickcheck::quickcheck;

use super::*;

const TORRENT: InfoHash = InfoHash([7; 20]);

fn ours(req2_hash: &[u8; 20]) -> Option<InfoHash> {
    [InfoHash([1; 20]), TORRENT]
        .into_iter()
        .find(|ih| req2(ih) == *req2_hash)
}

/// Two ends exchanging bytes in chunks of `chunk`, with `after_a` sent by A right after
/// its handshake bytes (as a client that pipelines its BitTorrent handshake would).
struct Pair {
    a: Handshake,
    b: Handshake,
    to_b: BytesMut,
    to_a: BytesMut,
    done_a: Option<Outcome>,
    done_b: Option<Outcome>,
}

impl Pair {
    fn new(offer: Methods, accept: Methods, prefer: Prefer, seed: u64) -> Pair {
        Pair::with_initial(offer, accept, prefer, seed, Bytes::new())
    }

    /// As `new`, A sending `initial` as its initial payload.
    fn with_initial(
        offer: Methods,
        accept: Methods,
        prefer: Prefer,
        seed: u64,
        initial: Bytes,
    ) -> Pair {
        let mut rng = Rng::new(seed);
        let mut to_b = BytesMut::new();
        let a = Handshake::initiator(TORRENT, offer, initial, &mut rng, &mut to_b);
        let b = Handshake::responder(accept, prefer, &mut rng);
        Pair {
            a,
            b,
            to_b,
            to_a: BytesMut::new(),
            done_a: None,
            done_b: None,
        }
    }

    /// Runs until both are done; the first error of either end otherwise.
    fn run(&mut self, chunk: usize) -> Result<(), MseError> {
        for _ in 0..100_000 {
            if self.done_a.is_some() && self.done_b.is_some() {
                return Ok(());
            }
            if !self.to_b.is_empty() && self.done_b.is_none() {
                let n = chunk.min(self.to_b.len());
                let data = self.to_b.split_to(n);
                if let Progress::Done(o) = self.b.feed(&data, &mut self.to_a, ours)? {
                    self.done_b = Some(o);
                }
            } else if !self.to_a.is_empty() && self.done_a.is_none() {
                let n = chunk.min(self.to_a.len());
                let data = self.to_a.split_to(n);
                if let Progress::Done(o) = self.a.feed(&data, &mut self.to_b, |_| None)? {
                    self.done_a = Some(o);
                }
            } else {
                panic!("stalled");
            }
        }
        panic!("no end");
    }
}

/// A payload goes through `from`'s send cipher and `to`'s receive cipher (or neither).
fn carry(from: &mut Outcome, to: &mut Outcome, text: &[u8]) -> Vec<u8> {
    let mut wire = text.to_vec();
    if let Some(c) = from.ciphers.as_mut() {
        c.send.apply(&mut wire);
    }
    if let Some(c) = to.ciphers.as_mut() {
        c.recv.apply(&mut wire);
    }
    wire
}

#[test]
fn both_offered_and_plaintext_preferred_gives_plaintext() {
    let mut pair = Pair::new(Methods::BOTH, Methods::BOTH, Prefer::Plaintext, 1);
    pair.run(usize::MAX).unwrap();
    let (mut a, mut b) = (pair.done_a.unwrap(), pair.done_b.unwrap());
    assert!(a.ciphers.is_none() && b.ciphers.is_none());
    assert_eq!(a.info_hash, TORRENT);
    assert_eq!(b.info_hash, TORRENT);
    assert_eq!(carry(&mut a, &mut b, b"hello"), b"hello");
}

#[test]
fn rc4_when_it_is_all_that_is_offered_both_ways() {
    let mut pair = Pair::new(Methods::RC4, Methods::BOTH, Prefer::Plaintext, 2);
    pair.run(usize::MAX).unwrap();
    let (mut a, mut b) = (pair.done_a.unwrap(), pair.done_b.unwrap());
    assert!(a.ciphers.is_some() && b.ciphers.is_some());
    let text = b"\x13BitTorrent protocol and then some";
    let mut wire = text.to_vec();
    a.ciphers.as_mut().unwrap().send.apply(&mut wire);
    assert_ne!(&wire[..], &text[..], "the payload is encrypted");
    b.ciphers.as_mut().unwrap().recv.apply(&mut wire);
    assert_eq!(&wire[..], &text[..]);
    for _ in 0..3 {
        assert_eq!(carry(&mut b, &mut a, b"back"), b"back");
        assert_eq!(carry(&mut a, &mut b, b"forth"), b"forth");
    }
}

#[test]
fn a_responder_that_prefers_rc4_selects_it() {
    let mut pair = Pair::new(Methods::BOTH, Methods::BOTH, Prefer::Rc4, 3);
    pair.run(usize::MAX).unwrap();
    assert!(pair.done_a.unwrap().ciphers.is_some());
    assert!(pair.done_b.unwrap().ciphers.is_some());
}

#[test]
fn byte_by_byte_delivery_meets_too() {
    for seed in 10..14 {
        let mut pair = Pair::new(Methods::RC4, Methods::RC4, Prefer::Plaintext, seed);
        pair.run(1).unwrap();
        let (mut a, mut b) = (pair.done_a.unwrap(), pair.done_b.unwrap());
        assert_eq!(carry(&mut a, &mut b, b"x"), b"x");
    }
}

/// Our initial payload reaches the responder with step 3, whatever method it then selects
/// and however the bytes are cut; the streams after it work both ways.
#[test]
fn the_initial_payload_reaches_the_responder_with_step_3() {
    let ia = Bytes::from_static(b"\x13BitTorrent protocol\0\0\0\0\0\x10\0\x05ih-and-peer-id");
    let cases = [
        (Methods::BOTH, Prefer::Plaintext, false),
        (Methods::BOTH, Prefer::Rc4, true),
        (Methods::RC4, Prefer::Plaintext, true),
    ];
    for (i, (offer, prefer, rc4)) in cases.into_iter().enumerate() {
        for chunk in [1, 7, usize::MAX] {
            let mut pair =
                Pair::with_initial(offer, Methods::BOTH, prefer, 60 + i as u64, ia.clone());
            pair.run(chunk).unwrap();
            let (mut a, mut b) = (pair.done_a.unwrap(), pair.done_b.unwrap());
            assert_eq!(b.rest, ia, "B has A's payload when it is done");
            assert!(a.rest.is_empty());
            assert_eq!(b.ciphers.is_some(), rc4);
            assert_eq!(carry(&mut b, &mut a, b"back"), b"back");
            assert_eq!(carry(&mut a, &mut b, b"forth"), b"forth");
        }
    }
    // B is done on step 3 alone: it answers A's payload in the same write as step 4.
    let mut pair = Pair::with_initial(
        Methods::BOTH,
        Methods::BOTH,
        Prefer::Plaintext,
        70,
        ia.clone(),
    );
    let (mut step2, mut step3) = (BytesMut::new(), BytesMut::new());
    let ya = pair.to_b.split();
    assert!(matches!(
        pair.b.feed(&ya, &mut step2, ours),
        Ok(Progress::Pending)
    ));
    assert!(matches!(
        pair.a.feed(&step2, &mut step3, |_| None),
        Ok(Progress::Pending)
    ));
    let Ok(Progress::Done(b)) = pair.b.feed(&step3, &mut BytesMut::new(), ours) else {
        panic!("B is done after step 3");
    };
    assert_eq!(b.rest, ia);
}

#[test]
fn payload_pipelined_behind_the_handshake_comes_out_decrypted() {
    for (offer, seed) in [(Methods::RC4, 20), (Methods::BOTH, 21)] {
        let mut pair = Pair::new(offer, Methods::BOTH, Prefer::Plaintext, seed);
        let mut to_a = BytesMut::new();
        let data = pair.to_b.split();
        assert!(matches!(
            pair.b.feed(&data, &mut to_a, ours),
            Ok(Progress::Pending)
        ));
        let mut step3 = BytesMut::new();
        assert!(matches!(
            pair.a.feed(&to_a, &mut step3, |_| None),
            Ok(Progress::Pending)
        ));
        let mut step4 = BytesMut::new();
        let Progress::Done(mut b) = pair.b.feed(&step3, &mut step4, ours).unwrap() else {
            panic!("B is done after step 3");
        };
        assert!(b.rest.is_empty());
        // B's first payload goes out in the same write as step 4.
        let mut payload = b"payload".to_vec();
        if let Some(c) = b.ciphers.as_mut() {
            c.send.apply(&mut payload);
        }
        step4.extend_from_slice(&payload);
        let Progress::Done(a) = pair.a.feed(&step4, &mut BytesMut::new(), |_| None).unwrap() else {
            panic!("A is done after step 4");
        };
        assert_eq!(&a.rest[..], b"payload");
        assert_eq!(a.ciphers.is_some(), offer == Methods::RC4);
    }
}

#[test]
fn an_unknown_torrent_fails() {
    let mut rng = Rng::new(4);
    let mut to_b = BytesMut::new();
    let mut a = Handshake::initiator(
        InfoHash([9; 20]),
        Methods::BOTH,
        Bytes::new(),
        &mut rng,
        &mut to_b,
    );
    let mut b = Handshake::responder(Methods::BOTH, Prefer::Plaintext, &mut rng);
    let mut to_a = BytesMut::new();
    assert!(matches!(
        b.feed(&to_b, &mut to_a, ours),
        Ok(Progress::Pending)
    ));
    let mut step3 = BytesMut::new();
    assert!(matches!(
        a.feed(&to_a, &mut step3, |_| None),
        Ok(Progress::Pending)
    ));
    let r = b.feed(&step3, &mut BytesMut::new(), ours);
    assert_eq!(r.unwrap_err(), MseError::UnknownTorrent);
}

#[test]
fn no_common_method_fails() {
    let mut pair = Pair::new(Methods::PLAINTEXT, Methods::RC4, Prefer::Rc4, 5);
    assert_eq!(pair.run(usize::MAX).unwrap_err(), MseError::NoCommonMethod);
}

#[test]
fn a_bad_public_key_fails() {
    let mut b = Handshake::responder(Methods::BOTH, Prefer::Plaintext, &mut Rng::new(6));
    let r = b.feed(&[0; KEY_LEN], &mut BytesMut::new(), ours);
    assert_eq!(r.unwrap_err(), MseError::BadKey);
}

/// A valid-looking public key (2, big-endian).
fn key_two() -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[KEY_LEN - 1] = 2;
    k
}

#[test]
fn a_responder_closes_at_the_sync_bound_and_not_before() {
    let mut b = Handshake::responder(Methods::BOTH, Prefer::Plaintext, &mut Rng::new(7));
    let mut out = BytesMut::new();
    assert!(matches!(
        b.feed(&key_two(), &mut out, ours),
        Ok(Progress::Pending)
    ));
    assert!(!out.is_empty(), "B answers with its key");
    let mut fed = KEY_LEN;
    loop {
        let r = b.feed(&[0x55], &mut out, ours);
        fed += 1;
        match r {
            Ok(Progress::Pending) => assert!(fed < RESPONDER_SYNC_MAX, "still reading at {fed}"),
            Err(e) => {
                assert_eq!(e, MseError::NoSync);
                assert_eq!(fed, RESPONDER_SYNC_MAX);
                break;
            }
            Ok(Progress::Done(_)) => panic!("done on garbage"),
        }
    }
    assert!(b.buf.len() < 20, "nothing kept after the failure");
}

#[test]
fn an_initiator_closes_at_the_sync_bound_and_not_before() {
    let mut out = BytesMut::new();
    let mut a = Handshake::initiator(
        TORRENT,
        Methods::BOTH,
        Bytes::new(),
        &mut Rng::new(8),
        &mut out,
    );
    assert!(matches!(
        a.feed(&key_two(), &mut out, |_| None),
        Ok(Progress::Pending)
    ));
    let mut fed = KEY_LEN;
    // In big reads: what is kept stays below a marker's length.
    loop {
        let r = a.feed(&[0x55; 100], &mut out, |_| None);
        fed += 100;
        match r {
            Ok(Progress::Pending) => {
                assert!(fed < INITIATOR_SYNC_MAX);
                assert!(a.buf.len() < 8);
            }
            Err(e) => {
                assert_eq!(e, MseError::NoSync);
                assert!((INITIATOR_SYNC_MAX..INITIATOR_SYNC_MAX + 100).contains(&fed));
                break;
            }
            Ok(Progress::Done(_)) => panic!("done on garbage"),
        }
    }
}

#[test]
fn a_marker_past_the_bound_is_refused() {
    // A's stream with PadA one byte longer than the specification allows.
    let mut pair = Pair::new(Methods::BOTH, Methods::BOTH, Prefer::Plaintext, 9);
    let mut first = pair.to_b.split();
    let pad = first.len() - KEY_LEN;
    first.extend_from_slice(&vec![0xAA; MAX_PAD + 1 - pad]);
    let mut to_a = BytesMut::new();
    assert!(matches!(
        pair.b.feed(&first, &mut to_a, ours),
        Ok(Progress::Pending)
    ));
    let mut step3 = BytesMut::new();
    pair.a.feed(&to_a, &mut step3, |_| None).unwrap();
    let r = pair.b.feed(&step3, &mut BytesMut::new(), ours);
    assert_eq!(r.unwrap_err(), MseError::NoSync);
}

/// RC4 written out from its definition, checked against the published vector below.
fn reference_rc4(key: &[u8], data: &mut [u8], skip: usize) {
    let mut s: Vec<u8> = (0..=255).collect();
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    let mut next = || {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[usize::from(i)]);
        s.swap(usize::from(i), usize::from(j));
        s[usize::from(s[usize::from(i)].wrapping_add(s[usize::from(j)]))]
    };
    for _ in 0..skip {
        next();
    }
    for b in data {
        *b ^= next();
    }
}

#[test]
fn rc4_matches_its_definition_and_skips_1024_bytes() {
    // The classic vector: key "Key", plaintext "Plaintext".
    let mut text = *b"Plaintext";
    reference_rc4(b"Key", &mut text, 0);
    assert_eq!(text, [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]);
    // keyA for a secret and a torrent, its stream after the first 1024 bytes.
    let secret = [0x42u8; KEY_LEN];
    let key = hash(&[b"keyA", &secret, &TORRENT.0]);
    let mut expected = [0u8; 64];
    reference_rc4(&key, &mut expected, DISCARD);
    let mut ours = [0u8; 64];
    Cipher::new(b"keyA", &secret, &TORRENT).apply(&mut ours);
    assert_eq!(ours, expected);
}

#[test]
fn public_keys_are_96_bytes_and_the_secrets_agree() {
    let mut rng = Rng::new(11);
    for _ in 0..4 {
        let mut ya = BytesMut::new();
        let mut a = Handshake::initiator(TORRENT, Methods::BOTH, Bytes::new(), &mut rng, &mut ya);
        assert!(ya.len() >= KEY_LEN && ya.len() <= KEY_LEN + MAX_PAD);
        let mut yb = BytesMut::new();
        let mut b = Handshake::responder(Methods::BOTH, Prefer::Plaintext, &mut rng);
        b.feed(&ya[..KEY_LEN], &mut yb, ours).unwrap();
        a.feed(&yb[..KEY_LEN], &mut BytesMut::new(), |_| None)
            .unwrap();
        assert_eq!(a.secret, b.secret);
        assert_ne!(a.secret, [0; KEY_LEN]);
    }
}

quickcheck! {
    fn any_bytes_never_panic_and_stay_bounded(chunks: Vec<Vec<u8>>, rc4_only: bool) -> bool {
        let accept = if rc4_only { Methods::RC4 } else { Methods::BOTH };
        let mut b = Handshake::responder(accept, Prefer::Plaintext, &mut Rng::new(12));
        let mut out = BytesMut::new();
        for c in chunks {
            if b.feed(&c, &mut out, ours).is_err() {
                return b.buf.is_empty();
            }
            if b.buf.len() > RESPONDER_SYNC_MAX + c.len() {
                return false;
            }
        }
        true
    }
}

/// Step 3 as a client that sends its BitTorrent handshake in the initial payload writes
/// it (libtorrent does): PadC, IA, then payload bytes in the same write.
fn step3_with_ia(secret: &[u8; KEY_LEN], provide: Methods, ia: &[u8], after: &[u8]) -> Vec<u8> {
    let mut out = hash(&[b"req1", secret]).to_vec();
    out.extend_from_slice(&req2_xor_req3(&TORRENT, secret));
    let mut enc = Vec::new();
    enc.extend_from_slice(&VC);
    enc.extend_from_slice(&provide.0.to_be_bytes());
    enc.extend_from_slice(&3u16.to_be_bytes());
    enc.extend_from_slice(b"pad");
    enc.extend_from_slice(&(ia.len() as u16).to_be_bytes());
    enc.extend_from_slice(ia);
    let mut send = Cipher::new(b"keyA", secret, &TORRENT);
    send.apply(&mut enc);
    out.extend_from_slice(&enc);
    let mut tail = after.to_vec();
    if provide == Methods::RC4 {
        send.apply(&mut tail);
    }
    out.extend_from_slice(&tail);
    out
}

#[test]
fn the_initial_payload_and_what_follows_come_out_decrypted() {
    for (provide, seed) in [(Methods::RC4, 40), (Methods::BOTH, 41)] {
        let mut rng = Rng::new(seed);
        let mut ya = BytesMut::new();
        let mut a = Handshake::initiator(TORRENT, Methods::BOTH, Bytes::new(), &mut rng, &mut ya);
        let mut b = Handshake::responder(Methods::BOTH, Prefer::Plaintext, &mut rng);
        let mut yb = BytesMut::new();
        b.feed(&ya, &mut yb, ours).unwrap();
        a.feed(&yb, &mut BytesMut::new(), |_| None).unwrap();
        let step3 = step3_with_ia(&a.secret, provide, b"\x13BitTorrent protocol", b"+more");
        let Progress::Done(o) = b.feed(&step3, &mut BytesMut::new(), ours).unwrap() else {
            panic!("B is done after step 3");
        };
        assert_eq!(&o.rest[..], b"\x13BitTorrent protocol+more");
        assert_eq!(o.ciphers.is_some(), provide == Methods::RC4);
    }
}
