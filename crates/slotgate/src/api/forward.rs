//! Followers forward. With several replicas on one PostgreSQL database, one
//! leads and holds the orgs; every other replica sends each request to it
//! and answers with its answer, byte for byte and streams included (long
//! polls, the event stream), so any replica answers any request exactly as
//! one server would.
//!
//! Only `/healthz` and `/metrics` are each replica's own. A request that was
//! forwarded once is never forwarded again (two replicas that each believe
//! the other leads answer 503 rather than pass it back and forth).
//!
//! Forwarding is trusted both ways (`trust.rs`): a follower sends nothing,
//! and no key, to a leader that did not prove it is one of the replicas and
//! leads in the leader row's term; the leader takes a request as forwarded
//! (and the client address the follower names as the client's) only with
//! the follower's proof.
//!
//! One service, [`Forward`], around the whole application, like
//! `headers.rs`: the leader pays one check of its health per request.

mod trust;

pub use trust::Trust;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use slotgate_api::ErrorCode;

use super::error::ApiError;
use crate::limits::ForwardedClient;
use crate::service::Service;
use crate::store::Leader;

/// Set on a forwarded request.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-slotgate-forwarded");

/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the leader may take to begin its answer: the longest wait a
/// request may ask for, and the longest the leader's commit may take before
/// it answers 503 itself, with a margin.
const ANSWER_TIMEOUT: Duration =
    Duration::from_secs(slotgate_api::limits::MAX_REQUEST_WAIT.as_secs() + 35);

/// How long what a follower sends the leader may go unacknowledged before
/// the connection counts as dead (`TCP_USER_TIMEOUT`): a leader cut off the
/// network makes a forwarded request fail with 503 in seconds, rather than
/// hang while its packets are sent again for minutes.
const UNACKED_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the leader may take to prove itself.
const PROOF_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a leader's proof is trusted for the requests that follow; a
/// follower's `/healthz` always asks for a new one.
const PROOF_VALID: Duration = Duration::from_secs(5);

/// `S`, or the leader's answer while another replica leads.
#[derive(Debug, Clone)]
pub struct Forward<S> {
    inner: S,
    service: Arc<Service>,
    client: LeaderClient,
    /// The leader (URL and term) that last proved itself, and when.
    proven: Proven,
}

/// HTTP, or HTTPS to a leader whose `--advertise-url` says `https://`
/// (its certificate checked against `--replica-ca`).
type LeaderClient = Client<HttpsConnector<HttpConnector>, Body>;

/// The leader that last proved itself, and when.
type Proven = Arc<Mutex<Option<(Leader, Instant)>>>;

impl<S> Forward<S> {
    /// `inner`, forwarding to the leader while `service` follows one.
    pub fn new(inner: S, service: Arc<Service>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        // A leader that vanishes from the network (no FIN) is noticed in
        // about 13 s (a probe after 10 s idle, unanswered for
        // UNACKED_TIMEOUT), and the requests and streams held on it fail,
        // rather than hang for minutes.
        connector.set_keepalive(Some(Duration::from_secs(10)));
        connector.set_keepalive_interval(Some(Duration::from_secs(3)));
        connector.set_keepalive_retries(Some(3));
        connector.set_tcp_user_timeout(Some(UNACKED_TIMEOUT));
        connector.enforce_http(false);
        // A server with no replicas forwards nothing, and trusts nobody.
        let tls = service.trust().map_or_else(
            || {
                Arc::new(crate::tls::client_config_with(
                    rustls::RootCertStore::empty(),
                ))
            },
            |t| t.tls(),
        );
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Forward {
            inner,
            service,
            client,
            proven: Proven::default(),
        }
    }
}

impl<S> tower::Service<Request> for Forward<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let answer = |r: Response| {
            Either::Right(Box::pin(std::future::ready(Ok(r))) as BoxFuture<'static, _>)
        };
        if req.uri().path() == trust::PROOF_PATH {
            return answer(self.prove(&req));
        }
        if req.headers().contains_key(FORWARDED) {
            return match self.accept_forwarded(&mut req) {
                Ok(()) => Either::Left(self.inner.call(req)),
                Err(refused) => answer(refused.into_response()),
            };
        }
        let Some(leader) = self.service.leader() else {
            return Either::Left(self.inner.call(req));
        };
        let to = Leading {
            client: self.client.clone(),
            trust: self.service.trust(),
            proven: self.proven.clone(),
            leader,
        };
        match req.uri().path() {
            "/metrics" => Either::Left(self.inner.call(req)),
            "/healthz" => Either::Right(Box::pin(async move {
                Ok(match to.check(true).await {
                    Ok(()) => format!("ok: forwarding to {}, the leading replica\n", to.leader.url)
                        .into_response(),
                    Err(why) => untrusted(&to.leader, &why),
                })
            })),
            _ => {
                let client = self.client_address(&req);
                Either::Right(Box::pin(async move {
                    if let Err(why) = to.check(false).await {
                        return Ok(untrusted(&to.leader, &why));
                    }
                    Ok(to.forward(client, req).await)
                }))
            }
        }
    }
}

impl<S> Forward<S> {
    /// The answer to a follower's [`trust::PROOF_PATH`]: the proof for its
    /// nonce and this replica's term while it leads, else 503.
    fn prove(&self, req: &Request) -> Response {
        let nonce = req
            .headers()
            .get(trust::NONCE)
            .and_then(|v| v.to_str().ok())
            .filter(|n| (16..=64).contains(&n.len()));
        let (Some(trust), Some(nonce)) = (self.service.trust(), nonce) else {
            return ApiError::new(
                ErrorCode::StoreUnavailable,
                "this server proves nothing: it has no replica secret, or no nonce was sent",
            )
            .into_response();
        };
        let Some(term) = self.service.term() else {
            return ApiError::new(ErrorCode::StoreUnavailable, "this replica does not lead")
                .into_response();
        };
        let proof = HeaderValue::from_str(&trust.prove_leader(nonce, term))
            .expect("a hex string is a header value");
        ([(trust::PROOF, proof)], "ok\n").into_response()
    }

    /// Takes a request another replica says it forwarded as forwarded: with
    /// the replicas' secret, only with the follower's proof for this request
    /// and this replica's term (then the client's address is the one it
    /// names). A server with no replica secret has no replicas: the header
    /// means nothing to it.
    fn accept_forwarded(&self, req: &mut Request) -> Result<(), ApiError> {
        let Some(trust) = self.service.trust() else {
            return Ok(());
        };
        let proof = req
            .headers()
            .get(trust::REQUEST_PROOF)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let Some(forwarded) = trust.verify_request(proof, req.method().as_str(), path, now_ms())
        else {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "x-slotgate-forwarded is for the replicas: this request has no valid replica proof \
                 (is SLOTGATE_REPLICA_SECRET the same on every replica?)",
            ));
        };
        let mine = self.service.term();
        if mine != Some(forwarded.term) {
            return Err(ApiError::new(
                ErrorCode::StoreUnavailable,
                format!(
                    "this request was forwarded to the leader of term {}, and this replica {}: retry",
                    forwarded.term,
                    match mine {
                        Some(t) => format!("leads in term {t}"),
                        None => "does not lead".to_string(),
                    }
                ),
            ));
        }
        if !forwarded.client.is_unspecified() {
            req.extensions_mut()
                .insert(ForwardedClient(forwarded.client));
        }
        Ok(())
    }

    /// The client's address, as this replica's limits read it (the peer,
    /// or `X-Forwarded-For` from a `--trusted-proxy`).
    fn client_address(&self, req: &Request) -> Option<IpAddr> {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| self.service.limits().client(*peer, req.headers()))
    }
}

/// A request on its way to the leader.
struct Leading {
    client: LeaderClient,
    /// The replicas' secret; `None` only on a server with no replicas.
    trust: Option<Arc<Trust>>,
    proven: Proven,
    /// The leader, as the leader row names it.
    leader: Leader,
}

impl Leading {
    /// Whether the leader proved, within [`PROOF_VALID`] (or now, when
    /// `fresh`), that it is one of the replicas and leads in the row's
    /// term: it is sent a nonce, and nothing else. `Err` says why not.
    async fn check(&self, fresh: bool) -> Result<(), String> {
        let Some(trust) = &self.trust else {
            return Err("this replica has no replica secret to check it with".into());
        };
        let recent = self
            .proven
            .lock()
            .expect("never poisoned")
            .as_ref()
            .is_some_and(|(l, at)| *l == self.leader && at.elapsed() < PROOF_VALID);
        if recent && !fresh {
            return Ok(());
        }
        let nonce = Trust::nonce();
        let Ok(uri) = format!(
            "{}{}",
            self.leader.url.trim_end_matches('/'),
            trust::PROOF_PATH
        )
        .parse::<Uri>() else {
            return Err("its URL is not valid".into());
        };
        let ask = || {
            let req = Request::get(uri.clone())
                .header(trust::NONCE, &nonce)
                .body(Body::empty())
                .expect("a parsed URI and a hex nonce make a request");
            self.client.request(req)
        };
        // Asked again once, within the same 2 s: a kept-alive connection the
        // leader closed for idleness just as the question left fails it, and
        // the question is safe to repeat.
        let asked = tokio::time::timeout(PROOF_TIMEOUT, async {
            match ask().await {
                Ok(answer) => Ok(answer),
                Err(_) => ask().await,
            }
        });
        let answer = match asked.await {
            Err(_) => return Err("it did not prove that it is a replica within 2 s".into()),
            Ok(Err(e)) => {
                let why = crate::tls::with_causes(&e);
                let hint = match why.contains("certificate") {
                    true => " (does --replica-ca name the CA of the replicas' certificates?)",
                    false => "",
                };
                return Err(format!("it did not answer: {why}{hint}"));
            }
            Ok(Ok(answer)) => answer,
        };
        let status = answer.status();
        let proof = answer
            .headers()
            .get(trust::PROOF)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !status.is_success()
            || !trust.verify_leader(&nonce, self.leader.term, &self.leader.url, proof)
        {
            *self.proven.lock().expect("never poisoned") = None;
            return Err(format!(
                "it did not prove that it is the replica leading in term {} (it answered {status} with {}): \
                 is SLOTGATE_REPLICA_SECRET the same on every replica?",
                self.leader.term,
                if proof.is_empty() { "no proof" } else { "a wrong proof" }
            ));
        }
        *self.proven.lock().expect("never poisoned") = Some((self.leader.clone(), Instant::now()));
        Ok(())
    }

    /// Sends `req`, from the client at `client`, to the leader; its answer,
    /// or 503 if it does not answer (the client retries; call ids make that
    /// safe).
    async fn forward(self, client: Option<IpAddr>, req: Request) -> Response {
        let leader = &self.leader.url;
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let Ok(uri) = format!("{}{path}", leader.trim_end_matches('/')).parse::<Uri>() else {
            return unavailable(leader, "its URL is not valid");
        };
        parts.uri = uri;
        hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        parts
            .headers
            .insert(FORWARDED, HeaderValue::from_static("1"));
        if let Some(trust) = &self.trust {
            // Unknown (no peer address: a request made in-process) is named
            // as unspecified, which the leader does not take as the client's.
            let client = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let proof = trust.prove_request(
                self.leader.term,
                now_ms(),
                client,
                parts.method.as_str(),
                &path,
            );
            let proof = HeaderValue::from_str(&proof).expect("a proof is a header value");
            parts.headers.insert(trust::REQUEST_PROOF, proof);
        }
        let sent = self.client.request(Request::from_parts(parts, body));
        let answer = match tokio::time::timeout(ANSWER_TIMEOUT, sent).await {
            Err(_) => {
                let why = format!("no answer within {} s", ANSWER_TIMEOUT.as_secs());
                return unavailable(leader, &why);
            }
            Ok(Err(e)) => {
                // Its proof is asked for again before the next request.
                *self.proven.lock().expect("never poisoned") = None;
                return unavailable(leader, &crate::tls::with_causes(&e));
            }
            Ok(Ok(answer)) => answer,
        };
        let (mut parts, body) = answer.into_parts();
        hop_by_hop(&mut parts.headers);
        Response::from_parts(parts, Body::new(body))
    }
}

fn unavailable(leader: &str, why: &str) -> Response {
    tracing::warn!(
        leader,
        error = why,
        "forwarding to the leading replica failed"
    );
    ApiError::new(
        ErrorCode::StoreUnavailable,
        format!(
            "this replica forwards to the leading replica at {leader}, which did not answer \
             ({why}); another replica takes over within seconds: retry"
        ),
    )
    .into_response()
}

/// 503 for a leader that did not prove itself: nothing was sent to it.
fn untrusted(leader: &Leader, why: &str) -> Response {
    tracing::warn!(
        leader = leader.url,
        term = leader.term,
        error = why,
        "the leader row names a server that did not prove it is the leading replica: forwarding nothing to it"
    );
    ApiError::new(
        ErrorCode::StoreUnavailable,
        format!(
            "this replica forwards only to the leading replica, and the leader row names {}, \
             which it sent nothing: {why}",
            leader.url
        ),
    )
    .into_response()
}

/// Removes the headers that concern one connection only (RFC 9110, 7.6.1).
fn hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

/// The time a forwarded request's proof is checked against: the engine's
/// clock, which on every replica follows the database's.
fn now_ms() -> i64 {
    crate::clock::now().as_millis() as i64
}
