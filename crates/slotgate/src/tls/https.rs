//! HTTPS for `slotgate serve --tls-cert FILE --tls-key FILE`: a listener
//! that completes each connection's TLS handshake before the HTTP server
//! sees it, and a certificate that is read again on SIGHUP.
//!
//! Handshakes run on tasks of their own (at most [`HANDSHAKE_TIMEOUT`]
//! each), so a client that connects and says nothing holds up nobody else.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::{provider, read_certs, read_key};

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long accepting pauses after a failed accept (out of file
/// descriptors, say), so that it does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

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

    /// Reloads on every SIGHUP, logging the outcome, until the process ends.
    pub async fn reload_on_sighup(self: Arc<Self>) -> io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup())?;
        while hangups.recv().await.is_some() {
            match self.reload() {
                Ok(()) => tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded: keeping the previous one")
                }
            }
        }
        Ok(())
    }

    /// Serves TLS on `tcp`: connections come out of the returned listener
    /// once their handshake is done.
    pub fn listen(&self, tcp: TcpListener) -> io::Result<HttpsListener> {
        let addr = tcp.local_addr()?;
        let (done, handshaken) = mpsc::channel(64);
        tokio::spawn(accept(tcp, self.current.subscribe(), done));
        Ok(HttpsListener { addr, handshaken })
    }
}

/// Accepts connections and starts their handshakes, until the
/// [`HttpsListener`] is dropped (the server shut down).
async fn accept(
    tcp: TcpListener,
    config: watch::Receiver<Arc<ServerConfig>>,
    done: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
            () = done.closed() => return,
        };
        let acceptor = TlsAcceptor::from(config.borrow().clone());
        let done = done.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // Refused only when the server is shutting down.
                    let _ = done.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Connections whose TLS handshake is done, for `axum::serve`.
#[derive(Debug)]
pub struct HttpsListener {
    addr: SocketAddr,
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accepting task holds the sender until this listener is
            // dropped; should it have died, no connection comes any more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
