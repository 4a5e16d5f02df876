//! TLS with rustls and its ring provider (no OpenSSL): certificates and keys
//! read from PEM files, for the HTTPS listener ([`https`]) and for the
//! connections to PostgreSQL (`store/postgres/tls.rs`).

pub mod https;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The crypto provider of every TLS connection: ring (aws-lc-rs, rustls's
/// other one, needs cmake and builds slowly).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange,
    // which only aws-lc-rs offers: ring is chosen for a light build.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, in order: a certificate and its chain,
/// or CAs. The error names the file.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1). The error names
/// the file, never the key.
pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("reading a private key from {}: {e}", path.display()))
}
