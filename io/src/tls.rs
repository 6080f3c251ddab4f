//! The certificates shoal trusts for `https://` trackers and torrent URLs, and the TLS
//! client settings both runtimes use: rustls with the ring provider (the one ureq already
//! brings in).
//!
//! Trusted: the machine's store as other programs use it (rustls-native-certs: the system
//! bundle, or the files `SSL_CERT_FILE` / `SSL_CERT_DIR` name, which is how a user adds a
//! private tracker's own CA), plus Mozilla's roots (webpki-roots) so a machine without a
//! bundle still reaches public trackers. Loaded once per process.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The machine's trusted certificates (those that parse), loaded once.
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The rustls client settings for https trackers.
pub fn tls_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            // A certificate of the store that rustls cannot use is skipped, as other
            // programs skip it.
            roots.add_parsable_certificates(system_roots().iter().cloned());
            Arc::new(
                ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        })
        .clone()
}

/// The roots for ureq (the `.torrent` download): the machine's store when it has one
/// (which holds Mozilla's roots on any usual system), else Mozilla's roots.
pub(crate) fn ureq_roots() -> ureq::tls::RootCerts {
    let system = system_roots();
    if system.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::new_with_certs(
            &system
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect::<Vec<_>>(),
        )
    }
}
