//! shoal-io
