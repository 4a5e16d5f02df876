//! HTTPS: rustls with its ring provider (no OpenSSL), trusting the system's
//! roots and any CA a caller adds ([`Client::with_ca_file`](crate::Client::with_ca_file)).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::error::{Error, Result};

/// The system's trusted roots, read once per process.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        // A system certificate that cannot be read or parsed is skipped:
        // the others still serve, and a server signed by none of them is
        // refused with "invalid peer certificate: UnknownIssuer".
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots
    })
}

/// Adds the CA certificates of a PEM file to `roots`.
fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<()> {
    let failed = |reason: String| Error::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no PEM certificate in it".into()));
    }
    for ca in certs {
        roots.add(ca).map_err(|e| failed(e.to_string()))?;
    }
    Ok(())
}

/// An HTTP client that speaks `http://` and `https://`, trusting the
/// system's roots and those of `ca_file`.
pub(crate) fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    let mut roots = system_roots().clone();
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange,
    // which only aws-lc-rs offers: ring is chosen for a light build.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()?)
}
