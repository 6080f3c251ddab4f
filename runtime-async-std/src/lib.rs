//! shoal-async-std
