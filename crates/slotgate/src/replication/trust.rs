//! Trusted forwarding (issue 21): the replicas on one database share a
//! secret (`SLOTGATE_REPLICA_SECRET`) and prove to each other that they
//! hold it, with HMAC-SHA256 over a fresh nonce and the leader's term.
//!
//! - **The leader proves itself before a follower sends it anything.** The
//!   follower sends [`PROOF_PATH`] to the URL in the leader row with a
//!   nonce and nothing else; only a replica that leads answers, with
//!   [`Trust::prove_leader`] of the nonce, its term and its own advertised
//!   URL. The follower checks it against the row's term and URL: a URL
//!   written into the row by someone else, a replica with another secret,
//!   one that relays the question to the real leader (its URL is not the
//!   row's) or a leader of an older term fail, and the follower answers
//!   503 `store_unavailable` and sends nothing there.
//! - **A follower proves each request it forwards**
//!   ([`Trust::prove_request`], in [`REQUEST_PROOF`]): the term, the time
//!   it was sent, a nonce, the client's address it saw, and the request's
//!   method and path. Only a proven forwarded request is taken as one (its
//!   client address counts for the limits on failed authentication); any
//!   other request that says it was forwarded is refused.
//! - **A proof is good once, and only fresh.** One sent more than
//!   [`FRESH_MS`] from the leader's clock (either way: the replicas' clocks
//!   both follow the database's) is refused, and so is a nonce already seen
//!   in that window: a captured forwarded request cannot be replayed.
//!
//! The two proofs are kept apart by their first line, so neither can be
//! obtained from the other.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ring::hmac;

use crate::auth::random_hex;

/// Where a replica proves it leads.
pub(crate) const PROOF_PATH: &str = "/internal/replica/proof";

/// The follower's nonce, on a proof request.
pub(crate) const NONCE: &str = "x-slotgate-nonce";

/// The leader's proof, in answer.
pub(crate) const PROOF: &str = "x-slotgate-proof";

/// A forwarded request's proof: `TERM SENT_MS NONCE CLIENT HMAC`.
pub(crate) const REQUEST_PROOF: &str = "x-slotgate-replica";

/// How far a forwarded request's sending time may be from the leader's
/// clock, either way: the forwarding itself takes at most a few seconds
/// (`ANSWER_TIMEOUT` bounds it), the rest is the clocks' disagreement.
pub(crate) const FRESH_MS: i64 = 30_000;

/// Most proofs remembered at once (each is remembered [`FRESH_MS`] after
/// its sending time): beyond them, forwarded requests are refused until
/// some expire, rather than memory growing. Over 15,000 a second.
const SEEN_CAP: usize = 1_000_000;

/// This replica's share of trust: the replicas' secret and where it serves.
pub struct Trust {
    /// HMAC-SHA256 under `SLOTGATE_REPLICA_SECRET`.
    key: hmac::Key,
    /// This replica's `--advertise-url`, which its proofs as leader name.
    url: String,
    /// What a leader's certificate is checked against when its URL is
    /// `https://` (`--replica-ca`, else the system's roots).
    tls: Arc<rustls::ClientConfig>,
    /// The forwarded requests' proofs taken within [`FRESH_MS`], as
    /// (sending time, nonce), oldest first. A `std` mutex: held for a
    /// lookup and an insert, never across an await.
    seen: Mutex<BTreeSet<(i64, String)>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Trust").field("url", &self.url).finish()
    }
}

/// A forwarded request's proof, read.
#[derive(Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// The term of the leader the follower forwarded to.
    pub term: i64,
    /// The client's address, as the follower saw it.
    pub client: IpAddr,
}

impl Trust {
    /// Trust from the replicas' `secret`, for a replica advertised at `url`;
    /// it trusts no `https://` leader until [`Trust::with_tls`].
    pub fn new(secret: &str, url: &str) -> Trust {
        Trust {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            url: url.trim_end_matches('/').to_string(),
            tls: Arc::new(crate::tls::client_config_with(
                rustls::RootCertStore::empty(),
            )),
            seen: Mutex::default(),
        }
    }

    /// This trust, checking an `https://` leader's certificate with `tls`.
    pub fn with_tls(self, tls: rustls::ClientConfig) -> Trust {
        Trust {
            tls: Arc::new(tls),
            ..self
        }
    }

    /// What a leader's certificate is checked against.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// A fresh nonce.
    pub fn nonce() -> String {
        random_hex(16)
    }

    /// The proof this replica, leading in `term`, gives for `nonce`.
    pub fn prove_leader(&self, nonce: &str, term: i64) -> String {
        self.sign(&leader_message(nonce, term, &self.url))
    }

    /// Whether `proof` is the answer to `nonce` of the leader of `term` at
    /// `url` (in constant time).
    pub fn verify_leader(&self, nonce: &str, term: i64, url: &str, proof: &str) -> bool {
        self.verify(
            &leader_message(nonce, term, url.trim_end_matches('/')),
            proof,
        )
    }

    /// The [`REQUEST_PROOF`] header of a request this replica forwards at
    /// `now_ms` (milliseconds since the Unix epoch) to the leader of
    /// `term`, from `client`.
    pub fn prove_request(
        &self,
        term: i64,
        now_ms: i64,
        client: IpAddr,
        method: &str,
        path: &str,
    ) -> String {
        let nonce = Self::nonce();
        let tag = self.sign(&request_message(term, now_ms, &nonce, client, method, path));
        format!("{term} {now_ms} {nonce} {client} {tag}")
    }

    /// The forwarded request's proof in `header`, if it is one under the
    /// replicas' secret for this `method` and `path`, sent within
    /// [`FRESH_MS`] of `now_ms`, and not taken before. Taking it remembers
    /// it: the same proof is refused from then on.
    pub fn verify_request(
        &self,
        header: &str,
        method: &str,
        path: &str,
        now_ms: i64,
    ) -> Option<Forwarded> {
        let mut parts = header.split(' ');
        let term = parts.next()?.parse().ok()?;
        let sent_ms: i64 = parts.next()?.parse().ok()?;
        let nonce = parts.next().filter(|n| (16..=64).contains(&n.len()))?;
        let client = parts.next()?.parse().ok()?;
        let tag = parts.next()?;
        if parts.next().is_some() || sent_ms.abs_diff(now_ms) > FRESH_MS.unsigned_abs() {
            return None;
        }
        if !self.verify(
            &request_message(term, sent_ms, nonce, client, method, path),
            tag,
        ) {
            return None;
        }
        let mut seen = self.seen.lock().expect("the proofs lock is never poisoned");
        while seen.first().is_some_and(|(t, _)| *t < now_ms - FRESH_MS) {
            seen.pop_first();
        }
        (seen.len() < SEEN_CAP && seen.insert((sent_ms, nonce.to_string())))
            .then_some(Forwarded { term, client })
    }

    fn sign(&self, message: &str) -> String {
        crate::auth::hex(hmac::sign(&self.key, message.as_bytes()).as_ref())
    }

    fn verify(&self, message: &str, proof: &str) -> bool {
        unhex(proof).is_some_and(|tag| hmac::verify(&self.key, message.as_bytes(), &tag).is_ok())
    }
}

fn leader_message(nonce: &str, term: i64, url: &str) -> String {
    format!("slotgate leader proof\n{term}\n{nonce}\n{url}")
}

fn request_message(
    term: i64,
    sent_ms: i64,
    nonce: &str,
    client: IpAddr,
    method: &str,
    path: &str,
) -> String {
    format!("slotgate forwarded request\n{term}\n{sent_ms}\n{nonce}\n{client}\n{method} {path}")
}

/// The bytes of a hex HMAC tag; `None` if it is not one.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "replica-secret-0123456789abcdefghijkl";

    #[test]
    fn a_leader_proof_verifies_only_with_the_same_secret_nonce_term_and_url() {
        let leader = Trust::new(SECRET, "http://10.0.0.5:7878");
        let follower = Trust::new(SECRET, "http://10.0.0.6:7878");
        let other = Trust::new(
            "another-secret-0123456789abcdefghijkl",
            "http://10.0.0.6:7878",
        );
        let proof = leader.prove_leader("n1", 7);
        assert!(follower.verify_leader("n1", 7, "http://10.0.0.5:7878/", &proof));
        assert!(!follower.verify_leader("n2", 7, "http://10.0.0.5:7878", &proof));
        assert!(!follower.verify_leader("n1", 8, "http://10.0.0.5:7878", &proof));
        assert!(!follower.verify_leader("n1", 7, "http://10.0.0.7:7878", &proof));
        assert!(!other.verify_leader("n1", 7, "http://10.0.0.5:7878", &proof));
        assert!(!follower.verify_leader("n1", 7, "http://10.0.0.5:7878", "zz"));
    }

    #[test]
    fn a_request_proof_names_its_term_and_client_and_fits_only_its_request() {
        let follower = Trust::new(SECRET, "http://10.0.0.6:7878");
        let leader = Trust::new(SECRET, "http://10.0.0.5:7878");
        let other = Trust::new(
            "another-secret-0123456789abcdefghijkl",
            "http://10.0.0.5:7878",
        );
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let now = 1_000_000;
        let h = follower.prove_request(7, now, client, "POST", "/v1/orgs/acme/calls");
        assert_eq!(
            other.verify_request(&h, "POST", "/v1/orgs/acme/calls", now),
            None
        );
        assert_eq!(
            leader.verify_request(&h, "POST", "/v1/orgs/acme/calls", now + 1),
            Some(Forwarded { term: 7, client })
        );
        let h = follower.prove_request(7, now, client, "POST", "/v1/orgs/acme/calls");
        assert_eq!(
            leader.verify_request(&h, "GET", "/v1/orgs/acme/calls", now),
            None
        );
        assert_eq!(
            leader.verify_request(&h, "POST", "/v1/orgs/other/calls", now),
            None
        );
        let forged = h.replacen("203.0.113.9", "198.51.100.1", 1);
        assert_eq!(
            leader.verify_request(&forged, "POST", "/v1/orgs/acme/calls", now),
            None
        );
        let later = h.replacen("7 ", "8 ", 1);
        assert_eq!(
            leader.verify_request(&later, "POST", "/v1/orgs/acme/calls", now),
            None
        );
        // A leader's proof is no request's, and the reverse.
        let proof = leader.prove_leader("0123456789abcdef", 7);
        let h = format!("7 {now} 0123456789abcdef {client} {proof}");
        assert_eq!(leader.verify_request(&h, "GET", "/", now), None);
    }

    #[test]
    fn a_request_proof_is_taken_once_and_only_fresh() {
        let follower = Trust::new(SECRET, "http://10.0.0.6:7878");
        let leader = Trust::new(SECRET, "http://10.0.0.5:7878");
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let take = |h: &str, now| leader.verify_request(h, "GET", "/v1/orgs", now).is_some();
        let now = 1_000_000;
        let h = follower.prove_request(7, now, client, "GET", "/v1/orgs");
        assert!(take(&h, now + 5), "fresh");
        assert!(!take(&h, now + 6), "replayed");
        assert!(
            !take(&h, now + 2 * FRESH_MS),
            "replayed once forgotten: stale"
        );
        let early = follower.prove_request(7, now + FRESH_MS, client, "GET", "/v1/orgs");
        assert!(take(&early, now), "a clock ahead by the tolerance");
        let stale = follower.prove_request(7, now - FRESH_MS - 1, client, "GET", "/v1/orgs");
        assert!(!take(&stale, now), "older than the tolerance");
        let ahead = follower.prove_request(7, now + FRESH_MS + 1, client, "GET", "/v1/orgs");
        assert!(!take(&ahead, now), "too far ahead");
        // Proofs out of the window are forgotten, not kept forever.
        let later = follower.prove_request(7, now + 10 * FRESH_MS, client, "GET", "/v1/orgs");
        assert!(take(&later, now + 10 * FRESH_MS));
        assert_eq!(leader.seen.lock().unwrap().len(), 1);
    }
}
