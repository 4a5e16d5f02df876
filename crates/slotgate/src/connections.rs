//! Serving connections within limits: the accept loop, the cap on open
//! connections, and the timeouts that close a connection doing nothing.
//!
//! Each connection is served by hyper's HTTP/1.1 server (what `axum::serve`
//! runs), on a task of its own, with a watch beside it that knows what the
//! connection is doing ([`Phase`]):
//!
//! - waiting for a request, nothing heard: closed after `idle_timeout`;
//! - the first bytes of a request (or of a TLS handshake) heard, its headers
//!   not yet complete: closed after `header_timeout` from the first byte;
//! - a request in progress, from its headers until the last byte of its
//!   answer: no timeout. Long-polls and event streams are requests in
//!   progress, so they are exempt while they last; they count against a cap
//!   of their own ([`Waits`]).
//!
//! hyper's own `header_read_timeout` is not used: its clock starts when a
//! connection becomes ready for its next request, so it is also the idle
//! time of a keep-alive connection, and the two could not be set apart.
//! The watch needs no parsing: hyper tells it when a request begins (its
//! service is called) and when it ends (the answer's body is dropped), and
//! the connection's reads tell it when bytes arrive.
//!
//! At most `max_connections` are open. A connection arriving at the cap
//! makes room by closing the connection idle the longest (one with no
//! request in progress: a silent client, or a keep-alive connection between
//! requests, whose client opens another when it needs one); when every open
//! connection has a request in progress, the new one is closed at once. So
//! the requests in progress are always finished, and `/healthz` (or any
//! request) on a new connection is answered as long as some connection is
//! idle, whatever number of silent clients there are.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::{Service, ServiceExt as _};

/// The connection limits of `slotgate serve`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a request's headers (and a TLS handshake) may take from
    /// their first byte.
    pub header_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// How long accepting pauses after a failed accept (out of file
/// descriptors, say), so that it does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// How long a connection arriving at the cap waits for the idle one it
/// evicted to close.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// What one connection is doing, as its watch sees it.
#[derive(Debug, Clone, Copy)]
struct Phase {
    /// Requests begun and not yet answered to their last byte.
    in_flight: usize,
    /// When it last became idle, or when the first byte of its next request came.
    since: Instant,
    /// Bytes of the next request have come (its headers are being read).
    heard: bool,
    /// Its place among the idle connections, while idle.
    idle_key: Option<u64>,
    /// Closed to make room for a new connection, if still idle.
    evicted: bool,
}

/// The open connections that have no request in progress, oldest idle first.
#[derive(Debug, Default)]
struct Idle {
    /// By the order they became idle. `Mutex`: a short insert or remove,
    /// never held across an await or while a connection's phase is locked
    /// by anyone but the connection changing it.
    by_age: Mutex<BTreeMap<u64, Weak<Tracked>>>,
    /// The next key.
    next: AtomicU64,
}

impl Idle {
    fn list(&self, conn: Weak<Tracked>) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(key, conn);
        key
    }

    fn unlist(&self, key: u64) {
        self.lock().remove(&key);
    }

    /// Asks the connection idle the longest to close; false if none is idle.
    fn evict_oldest(&self) -> bool {
        loop {
            let Some((_, conn)) = self.lock().pop_first() else {
                return false;
            };
            if let Some(conn) = conn.upgrade() {
                conn.phase.send_modify(|p| {
                    p.evicted = true;
                    p.idle_key = None;
                });
                return true;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Weak<Tracked>>> {
        self.by_age
            .lock()
            .expect("the idle list's lock is never poisoned")
    }
}

/// One connection's phase, shared by its reads, its requests and its watch.
#[derive(Debug)]
struct Tracked {
    phase: watch::Sender<Phase>,
    idle: Arc<Idle>,
}

impl Tracked {
    /// A connection just accepted: idle, nothing heard.
    fn new(idle: Arc<Idle>) -> Arc<Tracked> {
        Arc::new_cyclic(|me: &Weak<Tracked>| {
            let key = idle.list(me.clone());
            Tracked {
                phase: watch::Sender::new(Phase {
                    in_flight: 0,
                    since: Instant::now(),
                    heard: false,
                    idle_key: Some(key),
                    evicted: false,
                }),
                idle,
            }
        })
    }

    /// Bytes came in.
    fn heard(&self) {
        let p = *self.phase.borrow();
        if p.in_flight == 0 && !p.heard {
            self.phase.send_modify(|p| {
                p.heard = true;
                p.since = Instant::now();
            });
        }
    }

    /// A request's headers are in: it is in progress until [`Busy`] drops.
    fn begin(self: &Arc<Self>) -> Busy {
        let mut was_idle = None;
        self.phase.send_modify(|p| {
            p.in_flight += 1;
            p.heard = false;
            p.evicted = false;
            was_idle = p.idle_key.take();
        });
        if let Some(key) = was_idle {
            self.idle.unlist(key);
        }
        Busy(self.clone())
    }

    fn end(self: &Arc<Self>) {
        let mut idle = false;
        self.phase.send_modify(|p| {
            p.in_flight -= 1;
            if p.in_flight == 0 {
                p.since = Instant::now();
                idle = true;
            }
        });
        if idle {
            let key = self.idle.list(Arc::downgrade(self));
            self.phase.send_modify(|p| p.idle_key = Some(key));
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(key) = self.phase.borrow().idle_key {
            self.idle.unlist(key);
        }
    }
}

/// A request in progress: its connection is busy until this drops, with
/// the answer's last byte (or with the request, if it is abandoned).
#[derive(Debug)]
struct Busy(Arc<Tracked>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Resolves when the connection should close: idle or reading headers for
/// too long, or evicted while idle.
async fn expired(mut phase: watch::Receiver<Phase>, limits: Limits) {
    loop {
        let p = *phase.borrow_and_update();
        if p.in_flight == 0 {
            if p.evicted {
                return;
            }
            let timeout = if p.heard {
                limits.header_timeout
            } else {
                limits.idle_timeout
            };
            tokio::select! {
                () = tokio::time::sleep_until(p.since + timeout) => return,
                changed = phase.changed() => if changed.is_err() { return },
            }
        } else if phase.changed().await.is_err() {
            return;
        }
    }
}

/// A connection's socket, telling its [`Tracked`] when bytes arrive.
#[derive(Debug)]
struct Watched {
    tcp: TcpStream,
    conn: Arc<Tracked>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.heard();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// The application, as each connection calls it.
pub trait App:
    Service<Request, Response = Response, Error = Infallible, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> App for T where
    T: Service<Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serves `app` on `tcp` (HTTPS when `tls` is given) within `limits`, until
/// `shutdown` is set; then stops accepting, lets every connection finish
/// the request it has in progress, and returns once all are closed.
/// Requests carry the client's address as [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    tcp: TcpListener,
    tls: Option<crate::tls::https::Handshakes>,
    app: impl App,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let idle = Arc::new(Idle::default());
    // Every connection's task holds a receiver: `closed()` says all are done.
    let (open, _) = watch::channel(());
    let mut warned: Option<Instant> = None;
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
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Some(permit) = room(&permits, &idle).await else {
            // Every connection has a request in progress: this one is closed.
            if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection cap reached with every connection busy: closing new connections at once (--max-connections)"
                );
                warned = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Tracked::new(idle.clone());
        let io = Watched {
            tcp: stream,
            conn: conn.clone(),
        };
        let app = app.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        let open = open.subscribe();
        tokio::spawn(async move {
            let _permit: OwnedSemaphorePermit = permit;
            let _open = open;
            let expired = expired(conn.phase.subscribe(), limits);
            match tls {
                None => connection(io, peer, conn, app, expired, shutdown).await,
                Some(tls) => {
                    // The handshake is the first thing heard: it gets the
                    // header timeout, and the idle timeout before it starts.
                    let handshake = tokio::select! {
                        done = tls.acceptor().accept(io) => done,
                        () = expired => return,
                    };
                    match handshake {
                        Ok(io) => {
                            let expired = self::expired(conn.phase.subscribe(), limits);
                            connection(io, peer, conn, app, expired, shutdown).await
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                }
            }
        });
    }
    drop(tcp);
    open.closed().await;
}

/// A permit for one more connection: free, or made free by closing the
/// connection idle the longest. None when every connection is busy.
async fn room(permits: &Arc<Semaphore>, idle: &Idle) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return Some(permit);
    }
    if !idle.evict_oldest() {
        return None;
    }
    tokio::time::timeout(EVICTION_WAIT, permits.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Serves one connection's requests until it closes, it expires, or the
/// server shuts down (the request in progress is finished first).
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    conn: Arc<Tracked>,
    app: impl App,
    expired: impl std::future::Future<Output = ()>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = conn.begin();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let response = app.oneshot(req).await?;
            // The connection stays busy until the answer's body is dropped:
            // after its last byte, or when the client goes away.
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &busy;
                    frame
                }))
            }))
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(served, expired);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            () = expired.as_mut() => return,
            _ = shutdown.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Raises the process's soft limit of open files to its hard limit (a
/// server holding many connections needs them; the hard limit is the
/// administrator's), and returns the soft limit now in effect (None:
/// unlimited).
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum,
            Err(e) => tracing::debug!(error = %e, "cannot raise the limit of open files"),
        }
    }
    limit.current
}

/// The default `--max-connections`: 16,384, or fewer when the limit of
/// open files is lower, keeping an eighth of it (at least 64) for the
/// store, the data directory's files, and connections accepted only to be
/// closed.
pub fn default_max_connections(open_files: Option<u64>) -> usize {
    const MOST: u64 = 16_384;
    let Some(files) = open_files else {
        return MOST as usize;
    };
    let spare = (files / 8).max(64);
    usize::try_from(files.saturating_sub(spare).clamp(16, MOST)).unwrap_or(16)
}

#[cfg(test)]
mod tests {
    use super::default_max_connections;

    #[test]
    fn the_default_cap_stays_below_the_limit_of_open_files() {
        assert_eq!(default_max_connections(Some(1024)), 896);
        assert_eq!(default_max_connections(Some(256)), 192);
        assert_eq!(default_max_connections(Some(1 << 20)), 16_384);
        assert_eq!(default_max_connections(None), 16_384);
    }
}
