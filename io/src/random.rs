//! Randomness from the OS, for what the runtimes hand the engine: its seed, our peer id,
//! the tracker's secret. (The core itself never draws randomness: it is given a seed.)

use std::hash::{BuildHasher, Hasher};
use std::io::Read;

use shoal_core::PeerId;

/// 8 random bytes from `/dev/urandom`, or — where there is none — the standard library's
/// per-process random hash keys mixed with the time.
pub fn random_u64() -> u64 {
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

/// `-SH0010-` (shoal's client tag, whichever runtime) and 12 random bytes.
pub fn random_peer_id() -> PeerId {
    let mut id = *b"-SH0010-000000000000";
    id[8..16].copy_from_slice(&random_u64().to_le_bytes());
    id[16..20].copy_from_slice(&random_u64().to_le_bytes()[..4]);
    PeerId(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_differ_and_keep_the_client_tag() {
        let (a, b) = (super::random_peer_id(), super::random_peer_id());
        assert_ne!(a, b);
        assert_eq!(&a.0[..8], b"-SH0010-");
    }
}
