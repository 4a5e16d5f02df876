//! HTTPS for `slotgate serve --tls-cert FILE --tls-key FILE`: the
//! certificate, read again on SIGHUP or when its files change, and the
//! handshakes of new connections made with it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::{provider, read_certs, read_key};

/// The server's certificate and key: where they are, and the TLS settings
/// made of them that new connections get.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    /// The settings new handshakes use; replaced by [`Certificate::reload`].
    current: watch::Sender<Arc<ServerConfig>>,
}

/// TLS settings of the certificate chain in `cert` and the key in `key`.
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = read_certs(cert)?;
    let private = read_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "the key in {} does not serve the certificate in {}: {e}",
                key.display(),
                cert.display()
            )
        })?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Certificate {
    /// Reads the certificate chain (PEM: the server's certificate first)
    /// and its private key; the error says which file is wrong and how.
    pub fn load(cert: &Path, key: &Path) -> Result<Certificate, String> {
        let config = server_config(cert, key)?;
        Ok(Certificate {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: watch::Sender::new(Arc::new(config)),
        })
    }

    /// Reads the files again: connections from now on get the new
    /// certificate. If they do not hold a usable one, the previous one stays.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.cert, &self.key)?;
        self.current.send_replace(Arc::new(config));
        Ok(())
    }

    /// Reloads, logging the outcome; `why` says what asked for it.
    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => {
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded ({why})")
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate not reloaded ({why}): keeping the previous one")
            }
        }
    }

    /// Reloads on every SIGHUP, logging the outcome, until the process ends.
    pub async fn reload_on_sighup(self: Arc<Self>) -> io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup())?;
        while hangups.recv().await.is_some() {
            self.reload_logged("SIGHUP");
        }
        Ok(())
    }

    /// Looks at the two files every `every`, and reloads when either
    /// changed (its modification time or size, through symbolic links, as
    /// a Kubernetes secret volume swaps them), logging the outcome, until
    /// the process ends. A pair that cannot be used is not tried again
    /// until a file changes again (a certificate written before its key is
    /// then taken with the key).
    pub async fn reload_on_change(self: Arc<Self>, every: Duration) {
        let mut seen = self.stamps();
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = self.stamps();
            if now != seen {
                seen = now;
                self.reload_logged("its files changed");
            }
        }
    }

    /// The files' modification times and sizes (`None` for one that cannot
    /// be read just now).
    fn stamps(&self) -> [Option<(SystemTime, u64)>; 2] {
        [&self.cert, &self.key].map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
    }

    /// The handshakes of new connections, with the certificate of the moment.
    pub fn handshakes(&self) -> Handshakes {
        Handshakes {
            current: self.current.subscribe(),
        }
    }
}

/// What completes a new connection's TLS handshake: the accept loop
/// (`connections.rs`) runs it on the connection's own task, within the
/// header timeout, so a client that connects and says nothing holds up
/// nobody else, and the connection counts against the cap from the start.
#[derive(Debug, Clone)]
pub struct Handshakes {
    /// The settings new handshakes use; follows [`Certificate::reload`].
    current: watch::Receiver<Arc<ServerConfig>>,
}

impl Handshakes {
    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.borrow().clone())
    }
}
