//! shoal-benches
