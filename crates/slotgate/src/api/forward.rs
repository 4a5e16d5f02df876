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
//! One service, [`Forward`], around the whole application, like
//! `headers.rs`: the leader pays one check of its health per request.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use slotgate_api::ErrorCode;

use super::error::ApiError;
use crate::service::Service;

/// Set on a forwarded request.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-slotgate-forwarded");

/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the leader may take to begin its answer: the longest wait a
/// request may ask for, and the longest the leader's commit may take before
/// it answers 503 itself, with a margin.
const ANSWER_TIMEOUT: Duration =
    Duration::from_secs(slotgate_api::limits::MAX_REQUEST_WAIT.as_secs() + 35);

/// How long the leader may take to answer a follower's `/healthz`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `S`, or the leader's answer while another replica leads.
#[derive(Debug, Clone)]
pub struct Forward<S> {
    inner: S,
    service: Arc<Service>,
    client: Client<HttpConnector, Body>,
}

impl<S> Forward<S> {
    /// `inner`, forwarding to the leader while `service` follows one.
    pub fn new(inner: S, service: Arc<Service>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        // A leader that vanishes from the network (no FIN) is noticed in
        // about 20 s, and the requests and streams held on it fail, rather
        // than hang for minutes.
        connector.set_keepalive(Some(Duration::from_secs(10)));
        connector.set_keepalive_interval(Some(Duration::from_secs(3)));
        connector.set_keepalive_retries(Some(3));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Forward {
            inner,
            service,
            client,
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

    fn call(&mut self, req: Request) -> Self::Future {
        let path = req.uri().path();
        let forwarded = req.headers().contains_key(FORWARDED);
        let leader = self.service.leader().filter(|_| !forwarded);
        match (leader, path) {
            (Some(_), "/metrics") | (None, _) => Either::Left(self.inner.call(req)),
            (Some(leader), "/healthz") => {
                Either::Right(Box::pin(probe(self.client.clone(), leader)))
            }
            (Some(leader), _) => Either::Right(Box::pin(forward(self.client.clone(), leader, req))),
        }
    }
}

/// A follower's `/healthz`: ready only while the leader it forwards to
/// answers its own `/healthz` as the leader (`ok`), so that a load balancer
/// never sends calls to a replica that cannot reach the leader.
async fn probe(
    client: Client<HttpConnector, Body>,
    leader: String,
) -> Result<Response, Infallible> {
    let uri = format!("{}/healthz", leader.trim_end_matches('/'));
    let Ok(req) = Request::get(uri).header(FORWARDED, "1").body(Body::empty()) else {
        return Ok(unavailable(&leader, "its URL is not valid"));
    };
    let answer = match tokio::time::timeout(PROBE_TIMEOUT, client.request(req)).await {
        Err(_) => return Ok(unavailable(&leader, "no answer to /healthz within 2 s")),
        Ok(Err(e)) => return Ok(unavailable(&leader, &e.to_string())),
        Ok(Ok(answer)) => answer,
    };
    let status = answer.status();
    let body = axum::body::to_bytes(Body::new(answer.into_body()), 1024).await;
    match body {
        Ok(b) if status.is_success() && &b[..] == b"ok\n" => {
            Ok(format!("ok: forwarding to {leader}, the leading replica\n").into_response())
        }
        _ => Ok(unavailable(
            &leader,
            &format!("its /healthz answered {status}, not as the leader"),
        )),
    }
}

/// Sends `req` to the leader at `leader`; its answer, or 503 if it does not
/// answer (the client retries; call ids make that safe).
async fn forward(
    client: Client<HttpConnector, Body>,
    leader: String,
    req: Request,
) -> Result<Response, Infallible> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{}{path}", leader.trim_end_matches('/')).parse::<Uri>() else {
        return Ok(unavailable(&leader, "its URL is not valid"));
    };
    parts.uri = uri;
    hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    parts
        .headers
        .insert(FORWARDED, HeaderValue::from_static("1"));
    let sent = client.request(Request::from_parts(parts, body));
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, sent).await {
        Err(_) => {
            let why = format!("no answer within {} s", ANSWER_TIMEOUT.as_secs());
            return Ok(unavailable(&leader, &why));
        }
        Ok(Err(e)) => return Ok(unavailable(&leader, &e.to_string())),
        Ok(Ok(answer)) => answer,
    };
    let (mut parts, body) = answer.into_parts();
    hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
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
