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
//! Forwarding is trusted both ways (`replication/trust.rs`): a follower sends nothing,
//! and no key, to a leader that did not prove it is one of the replicas and
//! leads in the leader row's term; the leader takes a request as forwarded
//! (and the client address the follower names as the client's) only with
//! the follower's proof.
//!
//! Here is the axum glue: one service, [`Forward`], around the whole
//! application, like `headers.rs` (the leader pays one check of its health
//! per request), which answers the proofs other replicas ask of this one
//! and checks theirs. The way to the leader itself (its proof, the
//! request sent on) is `replication/forward.rs`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::http::header::HeaderValue;
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use slotgate_api::ErrorCode;

use super::error::ApiError;
use crate::limits::ForwardedClient;
pub use crate::replication::forward::FORWARDED;
use crate::replication::forward::{leader_client, now_ms, LeaderClient, Leading, Proven};
use crate::replication::trust;
use crate::replication::Leader;
use crate::service::Service;

/// `S`, or the leader's answer while another replica leads.
#[derive(Debug, Clone)]
pub struct Forward<S> {
    inner: S,
    service: Arc<Service>,
    client: LeaderClient,
    /// The leader (URL and term) that last proved itself, and when.
    proven: Proven,
}

impl<S> Forward<S> {
    /// `inner`, forwarding to the leader while `service` follows one.
    pub fn new(inner: S, service: Arc<Service>) -> Self {
        let client = leader_client(service.trust().as_deref());
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
                    let leader = to.leader.url.clone();
                    Ok(to
                        .forward(client, req)
                        .await
                        .unwrap_or_else(|why| unavailable(&leader, &why)))
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
