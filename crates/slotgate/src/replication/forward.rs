//! A follower's way to the leader: it asks the replica the leader row
//! names to prove that it leads in the row's term (`trust.rs`), and only
//! then sends it the request, with the follower's own proof, and hands
//! back its answer byte for byte, streams included. The tower layer that
//! decides what to forward, and answers the proofs others ask of this
//! replica, is `api/forward.rs`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::Uri;
use axum::response::Response;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::trust::{self, Trust};
use super::Leader;

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

/// HTTP, or HTTPS to a leader whose `--advertise-url` says `https://`
/// (its certificate checked against `--replica-ca`).
pub(crate) type LeaderClient = Client<HttpsConnector<HttpConnector>, Body>;

/// The leader that last proved itself, and when.
pub(crate) type Proven = Arc<Mutex<Option<(Leader, Instant)>>>;

/// The client a follower reaches the leader with: TLS as `trust` says (a
/// server with no replicas forwards nothing, and trusts nobody).
pub(crate) fn leader_client(trust: Option<&Trust>) -> LeaderClient {
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
    let tls = trust.map_or_else(
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
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A request on its way to the leader.
pub(crate) struct Leading {
    pub(crate) client: LeaderClient,
    /// The replicas' secret; `None` only on a server with no replicas.
    pub(crate) trust: Option<Arc<Trust>>,
    /// The leader that last proved itself, and when.
    pub(crate) proven: Proven,
    /// The leader, as the leader row names it.
    pub(crate) leader: Leader,
}

impl Leading {
    /// Whether the leader proved, within [`PROOF_VALID`] (or now, when
    /// `fresh`), that it is one of the replicas and leads in the row's
    /// term: it is sent a nonce, and nothing else. `Err` says why not.
    pub(crate) async fn check(&self, fresh: bool) -> Result<(), String> {
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
    /// or why it gave none (the caller answers 503: the client retries;
    /// call ids make that safe).
    pub(crate) async fn forward(
        self,
        client: Option<IpAddr>,
        req: Request,
    ) -> Result<Response, String> {
        let leader = &self.leader.url;
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let Ok(uri) = format!("{}{path}", leader.trim_end_matches('/')).parse::<Uri>() else {
            return Err("its URL is not valid".into());
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
                return Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()));
            }
            Ok(Err(e)) => {
                // Its proof is asked for again before the next request.
                *self.proven.lock().expect("never poisoned") = None;
                return Err(crate::tls::with_causes(&e));
            }
            Ok(Ok(answer)) => answer,
        };
        let (mut parts, body) = answer.into_parts();
        hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
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
pub(crate) fn now_ms() -> i64 {
    crate::clock::now().as_millis() as i64
}
