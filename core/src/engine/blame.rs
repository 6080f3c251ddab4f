//! Who sent the bad data of a piece that failed its hash check.
//!
//! A piece is usually put together from several peers' blocks. When it fails, striking
//! every sender (as an earlier design did, banning at three strikes) lets a few peers
//! that send garbage get honest peers banned with them: in the simulator's hostile swarm
//! (`sim/tests/hostile.rs`) honest hosts were banned that way. So a host is banned only
//! on proof that it sent wrong data:
//!
//! - a failed piece that came from **one host** only, no web seed taking part: that
//!   host's data is wrong;
//! - a failed piece from **several hosts** blames nobody at once. Its blocks' senders
//!   and a SHA-1 of each block's data are kept, and when the piece later passes, each
//!   kept block is compared with the good one: a host whose block differs sent data
//!   proven wrong.
//!
//! A digest costs a SHA-1 of the block, so blocks are digested only once the torrent has
//! seen a piece fail (a healthy download never pays for them: in the simulator's
//! reference flash crowd they were 5 % of the run), and then only blocks from hosts not
//! **trusted** yet: a host is trusted once a piece it took part in passed (a host whose
//! blocks are bad never does). A trusted host's blocks in a failed piece carry no digest
//! and are never blamed. The price: the torrent's first failed piece with several
//! senders proves nothing (its blocks carry no digests); a host that keeps sending bad
//! data is proven wrong on the next.
//!
//! Memory: the senders (and digests) of the pieces in progress, those of at most
//! [`MAX_FAILED`] failed pieces awaiting a good copy (the oldest are forgotten first),
//! and at most [`MAX_TRUSTED`] trusted hosts (past it, new hosts stay digested).

use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet};

use sha1::{Digest, Sha1};
use smallvec::SmallVec;

use super::bans::host;

/// Failed pieces whose blocks are kept for comparison, at most.
pub(super) const MAX_FAILED: usize = 256;
/// Trusted hosts remembered, at most.
pub(super) const MAX_TRUSTED: usize = 4096;

/// One block of an attempt at a piece: its index in the piece, who sent it, and a
/// digest of what they sent (when the torrent takes digests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    block: u32,
    ip: IpAddr,
    digest: Option<[u8; 20]>,
}

/// What a hash result says of the senders: the hosts proven to have sent wrong data
/// (the sole sender of a failed piece no web seed took part in, or senders of blocks
/// that differ from the piece's good copy).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    pub(super) ban: SmallVec<[IpAddr; 1]>,
}

/// One torrent's record of who sent what (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Blame {
    /// The blocks of each piece in progress, in the order they came.
    attempts: BTreeMap<u32, Vec<Sent>>,
    /// The blocks of failed pieces (with digests), until a good copy comes.
    failed: BTreeMap<u32, Vec<Sent>>,
    /// The order failed pieces were kept in, to forget the oldest first.
    failed_order: std::collections::VecDeque<u32>,
    /// Hosts that took part in a piece that passed: their blocks are not digested.
    trusted: BTreeSet<IpAddr>,
    /// A piece has failed: blocks from hosts not trusted are digested from now on.
    digesting: bool,
}

impl Blame {
    /// Block `block` of `piece` came from `ip` with `data`.
    pub(super) fn received(&mut self, piece: u32, block: u32, ip: IpAddr, data: &[u8]) {
        let digest = (self.digesting && !self.trusted.contains(&host(ip)))
            .then(|| Sha1::digest(data).into());
        self.attempts
            .entry(piece)
            .or_default()
            .push(Sent { block, ip, digest });
    }

    /// `piece` was hashed: what its senders get. `from_web`: web seeds sent some of it.
    pub(super) fn hashed(&mut self, piece: u32, ok: bool, from_web: bool) -> Verdict {
        let attempt = self.attempts.remove(&piece).unwrap_or_default();
        let mut verdict = Verdict::default();
        let mut hosts: SmallVec<[IpAddr; 4]> = SmallVec::new();
        for s in &attempt {
            if !hosts.contains(&s.ip) {
                hosts.push(s.ip);
            }
        }
        if !ok {
            self.digesting = true;
            if hosts.len() == 1 && !from_web {
                verdict.ban.push(hosts[0]);
            } else {
                self.keep_failed(piece, attempt);
            }
            return verdict;
        }
        for &ip in &hosts {
            if self.trusted.len() < MAX_TRUSTED {
                self.trusted.insert(host(ip));
            }
        }
        if let Some(bad) = self.failed.remove(&piece) {
            self.failed_order.retain(|&p| p != piece);
            for s in bad {
                let good = attempt
                    .iter()
                    .find(|g| g.block == s.block)
                    .and_then(|g| g.digest);
                let differs = matches!((s.digest, good), (Some(a), Some(b)) if a != b);
                if differs && !verdict.ban.contains(&s.ip) {
                    verdict.ban.push(s.ip);
                }
            }
        }
        verdict
    }

    /// `piece` could not be read back from our own storage: nothing is known of its
    /// senders, who are neither blamed nor trusted for it.
    pub(super) fn unread(&mut self, piece: u32) {
        self.attempts.remove(&piece);
    }

    /// Keeps a failed attempt's blocks (only those with digests: the others prove
    /// nothing), forgetting the oldest kept piece past [`MAX_FAILED`].
    fn keep_failed(&mut self, piece: u32, attempt: Vec<Sent>) {
        let kept = self.failed.entry(piece).or_default();
        if kept.is_empty() {
            self.failed_order.push_back(piece);
        }
        kept.extend(attempt.into_iter().filter(|s| s.digest.is_some()));
        // A piece failed many times keeps one entry per block and sender: bounded by
        // the piece's blocks times the hosts that sent them.
        kept.sort_unstable_by_key(|s| (s.block, s.ip, s.digest));
        kept.dedup();
        while self.failed_order.len() > MAX_FAILED {
            if let Some(old) = self.failed_order.pop_front() {
                self.failed.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    impl Blame {
        /// A record that has seen a failure already: it digests.
        fn digesting() -> Blame {
            Blame {
                digesting: true,
                ..Blame::default()
            }
        }

        fn hashed_by_peers(&mut self, piece: u32, ok: bool) -> Verdict {
            self.hashed(piece, ok, false)
        }
    }

    #[test]
    fn a_piece_from_one_host_that_fails_names_it_unless_a_web_seed_took_part() {
        let mut b = Blame::default();
        b.received(0, 0, ip(1), b"x");
        b.received(0, 1, ip(1), b"y");
        assert_eq!(b.hashed_by_peers(0, false).ban.as_slice(), &[ip(1)]);
        // With a web seed's bytes in it, the peer is not the sole sender.
        b.received(1, 0, ip(2), b"x");
        assert_eq!(b.hashed(1, false, true), Verdict::default());
    }

    #[test]
    fn a_mixed_failure_blames_only_the_sender_whose_block_differs_from_the_good_copy() {
        let mut b = Blame::digesting();
        // Host 3 is trusted: it took part in a piece that passed.
        b.received(9, 0, ip(3), b"fine");
        b.hashed_by_peers(9, true);
        // A failure from several hosts blames nobody yet ...
        b.received(3, 0, ip(1), b"good0");
        b.received(3, 1, ip(2), b"junk1");
        b.received(3, 2, ip(3), b"good2");
        assert_eq!(b.hashed_by_peers(3, false), Verdict::default());
        // ... and when the piece comes right, the liar is known and the others are not.
        b.received(3, 0, ip(4), b"good0");
        b.received(3, 1, ip(4), b"good1");
        b.received(3, 2, ip(3), b"good2");
        assert_eq!(b.hashed_by_peers(3, true).ban.as_slice(), &[ip(2)]);
        // Compared once: a later pass of the piece blames nobody.
        b.received(3, 0, ip(5), b"good0");
        assert!(b.hashed_by_peers(3, true).ban.is_empty());
    }

    #[test]
    fn nothing_is_digested_before_a_piece_fails_and_the_first_mixed_failure_proves_nothing() {
        let mut b = Blame::default();
        b.received(0, 0, ip(1), b"good0");
        b.received(0, 1, ip(2), b"junk1");
        assert!(b.attempts[&0].iter().all(|s| s.digest.is_none()));
        assert_eq!(b.hashed_by_peers(0, false), Verdict::default());
        // Its good copy has nothing to compare with ...
        b.received(0, 0, ip(3), b"good0");
        b.received(0, 1, ip(3), b"good1");
        assert!(b.hashed_by_peers(0, true).ban.is_empty());
        // ... but the next failure is digested, and the liar proven.
        b.received(1, 0, ip(1), b"good0");
        b.received(1, 1, ip(2), b"junk1");
        assert!(b.attempts[&1].iter().all(|s| s.digest.is_some()));
        assert_eq!(b.hashed_by_peers(1, false), Verdict::default());
        b.received(1, 0, ip(4), b"good0");
        b.received(1, 1, ip(4), b"good1");
        assert_eq!(b.hashed_by_peers(1, true).ban.as_slice(), &[ip(2)]);
    }

    #[test]
    fn trusted_hosts_blocks_are_not_digested_and_never_blamed() {
        let mut b = Blame::digesting();
        b.received(0, 0, ip(1), b"a");
        assert!(b.hashed_by_peers(0, true).ban.is_empty());
        // Host 1 took part in a good piece: trusted, its blocks carry no digest.
        b.received(1, 0, ip(1), b"a");
        b.received(1, 1, ip(2), b"b");
        assert_eq!(b.attempts[&1][0].digest, None);
        assert!(b.attempts[&1][1].digest.is_some());
        assert_eq!(b.hashed_by_peers(1, false), Verdict::default());
        b.received(1, 0, ip(3), b"A");
        b.received(1, 1, ip(3), b"B");
        assert_eq!(b.hashed_by_peers(1, true).ban.as_slice(), &[ip(2)]);
    }

    #[test]
    fn failed_pieces_kept_are_bounded() {
        let mut b = Blame::digesting();
        for piece in 1..=(MAX_FAILED as u32 + 10) {
            b.received(piece, 0, ip(1), b"a");
            b.received(piece, 1, ip(2), b"b");
            b.hashed_by_peers(piece, false);
        }
        assert_eq!(b.failed.len(), MAX_FAILED);
        assert_eq!(b.failed_order.len(), MAX_FAILED);
        // The oldest were forgotten: their good copies blame nobody.
        b.received(1, 0, ip(3), b"A");
        b.received(1, 1, ip(3), b"B");
        assert!(b.hashed_by_peers(1, true).ban.is_empty());
        // A recent one still compares.
        let last = MAX_FAILED as u32 + 10;
        b.received(last, 0, ip(4), b"a");
        b.received(last, 1, ip(4), b"B");
        assert_eq!(b.hashed_by_peers(last, true).ban.as_slice(), &[ip(2)]);
        assert!(b.attempts.is_empty());
    }
}
