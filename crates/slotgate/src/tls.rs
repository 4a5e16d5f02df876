//! TLS with rustls and its ring provider (no OpenSSL): certificates and keys
//! read from PEM files, for the HTTPS listener ([`https`]), for the
//! connections to PostgreSQL (`store/postgres/tls.rs`) and for a follower's
//! connections to the leading replica ([`client_config`]).

pub mod https;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

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

/// TLS settings of a client that trusts the CA certificates in `ca` (PEM),
/// or the system's roots when `None`: what a follower checks the leading
/// replica's certificate against (`--replica-ca`). The error names the file.
pub(crate) fn client_config(ca: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| {
                    format!("{} holds an unusable CA certificate: {e}", path.display())
                })?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    Ok(client_config_with(roots))
}

/// TLS settings of a client that trusts `roots`.
pub(crate) fn client_config_with(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// An error and the causes beneath it, as one line: TLS and connection
/// failures say why only in their causes (`invalid peer certificate:
/// UnknownIssuer` under "error performing TLS handshake" or "client error
/// (Connect)").
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut said = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        said = format!("{said}: {c}");
        cause = c.source();
    }
    said
}
