//! The keys a torrent's picker and choker know its peers by: dense per torrent.
//!
//! The picker and the choker index their per-peer tables by [`PeerKey`]. Were that the
//! engine's connection slot, every torrent's tables would grow to the highest slot of any
//! of its peers: with many torrents and many connections, memory of the order of torrents
//! × connections (1,000 seeded torrents with 2,000 connections between them took 64 KiB
//! per connection, nearly all in pickers' empty entries). So each torrent hands out its
//! own keys, a freed one before a new one, to its connections when they start trading and
//! to its web seeds; its tables grow with its own peers only.

use crate::PeerKey;

use super::ConnId;

/// A connection's key before it has one (not yet trading on a torrent with metadata).
/// The picker refuses it, so a use before [`Keys::take`] is a counted disagreement,
/// never another peer's entry.
pub(super) const NO_KEY: PeerKey = PeerKey(u32::MAX);

/// One torrent's peer keys: who holds each, and the free ones.
#[derive(Debug, Default)]
pub(super) struct Keys {
    /// The connection holding each key (`None`: a web seed, or free).
    owners: Vec<Option<ConnId>>,
    /// Keys given back, to be handed out again before new ones.
    free: Vec<u32>,
}

impl Keys {
    /// A key for `owner` (a connection; `None` for a web seed).
    pub(super) fn take(&mut self, owner: Option<ConnId>) -> PeerKey {
        match self.free.pop() {
            Some(k) => {
                self.owners[k as usize] = owner;
                PeerKey(k)
            }
            None => {
                self.owners.push(owner);
                PeerKey((self.owners.len() - 1) as u32)
            }
        }
    }

    /// The key of connection `conn`, which holds `held`: a new one if that is [`NO_KEY`],
    /// else `held` again (a connection takes one key, once).
    pub(super) fn take_once(&mut self, held: PeerKey, conn: ConnId) -> PeerKey {
        if held == NO_KEY {
            self.take(Some(conn))
        } else {
            held
        }
    }

    /// Gives `key` back; it may be handed out again at once.
    pub(super) fn release(&mut self, key: PeerKey) {
        if let Some(owner) = self.owners.get_mut(key.0 as usize) {
            *owner = None;
            self.free.push(key.0);
        }
    }

    /// The connection that holds `key`, if a connection does.
    pub(super) fn conn(&self, key: PeerKey) -> Option<ConnId> {
        *self.owners.get(key.0 as usize)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(slot: u32) -> ConnId {
        ConnId {
            slot,
            generation: 1,
        }
    }

    #[test]
    fn keys_are_dense_and_reused_whatever_the_slots() {
        let mut keys = Keys::default();
        let a = keys.take(Some(conn(1_000)));
        let web = keys.take(None);
        let b = keys.take(Some(conn(5)));
        assert_eq!((a, web, b), (PeerKey(0), PeerKey(1), PeerKey(2)));
        assert_eq!(keys.conn(a), Some(conn(1_000)));
        assert_eq!(keys.conn(web), None);
        keys.release(a);
        assert_eq!(keys.conn(a), None);
        // The freed key goes to the next peer, whatever its slot.
        assert_eq!(keys.take(Some(conn(70_000))), PeerKey(0));
        assert_eq!(keys.conn(PeerKey(0)), Some(conn(70_000)));
        assert_eq!(keys.take(Some(conn(3))), PeerKey(3));
        assert_eq!(keys.conn(NO_KEY), None);
        // A connection that has its key keeps it.
        assert_eq!(keys.take_once(PeerKey(3), conn(3)), PeerKey(3));
        assert_eq!(keys.take_once(NO_KEY, conn(9)), PeerKey(4));
    }
}
