//! Announce tokens (BEP 5): proof that an `announce_peer` comes from the address that asked
//! `get_peers` a few minutes before.
//!
//! A token is the first 8 bytes of SHA-1(secret ‖ IPv4 address). The secret is derived from
//! a key the caller supplies (the runtime draws it from the OS; the core's seeded generator
//! is predictable and must not make tokens) and an epoch number that advances every
//! [`ROTATION`]: secret_n = SHA-1(key ‖ n). A token is accepted during the epoch it was made
//! in and the next one, so it lives between 5 and 10 minutes, and no per-requester state is
//! kept.

use core::net::Ipv4Addr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// How often the secret changes.
pub const ROTATION: Duration = Duration::from_secs(5 * 60);

/// Length of the tokens we hand out.
pub const TOKEN_LEN: usize = 8;

/// Makes and checks tokens.
#[derive(Clone, Debug)]
pub struct Tokens {
    key: [u8; 20],
    epoch: u64,
    current: [u8; 20],
    previous: [u8; 20],
    next_rotation: Option<Instant>,
}

impl Tokens {
    /// Tokens from a secret key.
    pub fn new(key: [u8; 20]) -> Tokens {
        Tokens {
            key,
            epoch: 0,
            current: secret(&key, 0),
            previous: secret(&key, u64::MAX),
            next_rotation: None,
        }
    }

    /// When the secret next changes (after the first call to [`Tokens::rotate`]).
    pub fn next_rotation(&self) -> Option<Instant> {
        self.next_rotation
    }

    /// Advances the epoch if its time has come (and starts the schedule on first call).
    pub fn rotate(&mut self, now: Instant) {
        match self.next_rotation {
            None => self.next_rotation = Some(now + ROTATION),
            Some(at) if now >= at => {
                self.epoch += 1;
                self.previous = self.current;
                self.current = secret(&self.key, self.epoch);
                self.next_rotation = Some(now + ROTATION);
            }
            Some(_) => {}
        }
    }

    /// The token for `ip` now.
    pub fn make(&self, ip: Ipv4Addr) -> [u8; TOKEN_LEN] {
        token(&self.current, ip)
    }

    /// Whether `given` was made for `ip` in this epoch or the one before.
    pub fn check(&self, ip: Ipv4Addr, given: &[u8]) -> bool {
        given == token(&self.current, ip) || given == token(&self.previous, ip)
    }
}

fn secret(key: &[u8; 20], epoch: u64) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(key);
    h.update(epoch.to_be_bytes());
    h.finalize().into()
}

fn token(secret: &[u8; 20], ip: Ipv4Addr) -> [u8; TOKEN_LEN] {
    let mut h = Sha1::new();
    h.update(secret);
    h.update(ip.octets());
    let digest: [u8; 20] = h.finalize().into();
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&digest[..TOKEN_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lives_one_to_two_rotations_and_only_for_its_address() {
        let t0 = shoal_test_clock::epoch();
        let mut tokens = Tokens::new([7; 20]);
        tokens.rotate(t0);
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let token = tokens.make(ip);
        assert!(tokens.check(ip, &token));
        assert!(!tokens.check(Ipv4Addr::new(10, 0, 0, 2), &token));
        assert!(!tokens.check(ip, &token[..4]));
        tokens.rotate(t0 + ROTATION - Duration::from_secs(1));
        assert!(tokens.check(ip, &token), "same epoch");
        tokens.rotate(t0 + ROTATION);
        assert!(tokens.check(ip, &token), "previous epoch");
        tokens.rotate(t0 + ROTATION * 2);
        assert!(!tokens.check(ip, &token), "two rotations later");
        let other = Tokens::new([8; 20]);
        assert_ne!(other.make(ip), tokens.make(ip), "the key matters");
    }
}
