//! Randomness from the OS for the engine's seed and our peer id.
//!
//! The same as `shoal_mio::client::{random_u64, random_peer_id}`: both runtimes need it and
//! neither should own it (it belongs in shoal-io); until it moves there, this copy.

use std::hash::{BuildHasher, Hasher};
use std::io::Read;

use shoal_core::PeerId;

/// 8 random bytes from `/dev/urandom`, or the standard library's per-process random hash
/// keys mixed with the time where there is none.
pub fn u64() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u64::from_le_bytes(bytes);
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// `-SH0010-` (shoal's client prefix, whichever runtime) and 12 random bytes.
pub fn peer_id() -> PeerId {
    let mut id = *b"-SH0010-000000000000";
    id[8..16].copy_from_slice(&u64().to_le_bytes());
    id[16..20].copy_from_slice(&u64().to_le_bytes()[..4]);
    PeerId(id)
}
