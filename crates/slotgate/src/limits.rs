//! Limits per caller: each key's request rate, each org's (all its keys
//! together), failed authentication per client address, and the cap on open
//! long-polls and event streams. (The connection limits are `connections.rs`'s.)
//!
//! Rates are GCRA buckets of the `governor` crate: a key's rate is requests
//! per second, with a burst of one second's worth. A key's rate is its own
//! (`rate_per_s` on the key), else its role's default
//! (`--rate-runtime`, `--rate-admin`, `--rate-operator`). With `--rate-org`,
//! the requests of all an org's keys together are held to that rate too
//! (the operator key's are not the org's). Every request counts, retries of
//! an acquire with the same call id too: a retry is as cheap to answer as
//! any request, not free.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::{Principal, Role};
use slotgate_core::OrgId;

/// The client's address of a request another replica forwarded, as that
/// replica saw it: set on the request only when the follower proved it
/// holds the replicas' secret (`api/forward.rs`), and then the address the
/// limits count.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedClient(pub IpAddr);

/// The limits of `slotgate serve` on callers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests per second of a runtime key, unless the key has its own.
    pub runtime_rate: u32,
    /// Requests per second of an admin key, unless the key has its own.
    pub admin_rate: u32,
    /// Requests per second of the operator key.
    pub operator_rate: u32,
    /// Requests per second of all the keys of one org together, unless
    /// `org_rates` names the org; 0: none.
    pub org_rate: u32,
    /// Orgs with a rate of their own for all their keys together (0: none).
    pub org_rates: BTreeMap<OrgId, u32>,
    /// Failed authentications one client address may make per `auth_window`.
    pub auth_failures: u32,
    /// The window of `auth_failures`.
    pub auth_window: Duration,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<IpNet>,
    /// Most long-polls and event streams open at once.
    pub max_waits: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            runtime_rate: 500,
            admin_rate: 100,
            operator_rate: 500,
            org_rate: 0,
            org_rates: BTreeMap::new(),
            auth_failures: 20,
            auth_window: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            max_waits: 4096,
        }
    }
}

/// A refusal: too many requests; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until a request would be let through.
    pub retry_after: Duration,
    /// Whose allowance the request was over.
    pub over: Over,
}

/// Whose allowance a refused request was over: the label `scope` of
/// `slotgate_rate_limited_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Its key's rate.
    Key,
    /// Its org's rate (`--rate-org`): all the org's keys together.
    Org,
    /// Its client address's failed authentications.
    Address,
}

impl Over {
    /// Its name in `/metrics`.
    fn as_str(self) -> &'static str {
        match self {
            Over::Key => "key",
            Over::Org => "org",
            Over::Address => "address",
        }
    }
}

impl Throttled {
    /// `Retry-After` in whole seconds, at least 1.
    pub fn retry_after_s(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// One key's bucket, and the rate it was made for.
#[derive(Debug)]
struct Bucket {
    rate: u32,
    gcra: Arc<DefaultDirectRateLimiter>,
}

/// The caller limits of a running server.
#[derive(Debug)]
pub struct Limits {
    settings: Settings,
    /// Each key's bucket, by key id ("operator" for the operator key; org
    /// key ids are hex). `std` mutex: a lookup, never held across an await
    /// or while a bucket is checked.
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Each org's bucket, for all its keys together (`--rate-org`), by org
    /// id. `std` mutex, as `buckets`.
    orgs: Mutex<HashMap<String, Bucket>>,
    /// Orgs' own rates, set over the API (`PUT /v1/orgs/{org}/rate`) and
    /// kept in the store; they win over the settings. `std` mutex, as `buckets`.
    own_org_rates: Mutex<HashMap<OrgId, u32>>,
    /// Failed authentications by client address.
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses refused until the instant given, after too many failures.
    /// `std` mutex, as `buckets`.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Open long-polls and event streams.
    waits: Arc<Semaphore>,
    /// Requests refused for their rate, by whose allowance they were over
    /// and the role of their key (`REFUSED`).
    refused: [AtomicU64; REFUSED.len()],
}

/// The series of `slotgate_rate_limited_total`: whose allowance, and the
/// role of the key (anonymous: failed authentication). No org names.
const REFUSED: [(Over, &str); 8] = [
    (Over::Key, "runtime"),
    (Over::Key, "admin"),
    (Over::Key, "operator"),
    (Over::Key, "metrics"),
    (Over::Org, "runtime"),
    (Over::Org, "admin"),
    (Over::Org, "metrics"),
    (Over::Address, "anonymous"),
];

/// How many addresses the failure tables hold before they are pruned.
const PRUNE_ABOVE: usize = 10_000;

impl Default for Limits {
    fn default() -> Self {
        Limits::new(Settings::default())
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("n.max(1) is not zero")
}

impl Limits {
    /// Limits with these settings.
    pub fn new(settings: Settings) -> Self {
        let failures = nonzero(settings.auth_failures);
        let replenish = settings.auth_window / failures.get();
        let quota = Quota::with_period(replenish.max(Duration::from_millis(1)))
            .expect("the period is at least a millisecond")
            .allow_burst(failures);
        Limits {
            waits: Arc::new(Semaphore::new(settings.max_waits)),
            orgs: Mutex::default(),
            own_org_rates: Mutex::default(),
            failures: governor::RateLimiter::keyed(quota),
            blocked: Mutex::default(),
            buckets: Mutex::default(),
            refused: Default::default(),
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The default rate of a role, in requests per second.
    pub fn role_rate(&self, role: Option<Role>) -> u32 {
        match role {
            None => self.settings.operator_rate,
            // A scraper's key asks a few times a minute: the admin rate.
            Some(Role::Admin | Role::Metrics) => self.settings.admin_rate,
            Some(Role::Runtime) => self.settings.runtime_rate,
        }
    }

    /// The rate of all the keys of `org` together: its own (set over the
    /// API), else the server's for it (`--rate-org-for`), else
    /// `--rate-org`; 0: none.
    pub fn org_rate(&self, org: &OrgId) -> u32 {
        self.own_org_rate(org)
            .unwrap_or_else(|| self.server_org_rate(org))
    }

    /// `org`'s own rate, set over the API, if it has one.
    pub fn own_org_rate(&self, org: &OrgId) -> Option<u32> {
        self.own_org_rates().get(org).copied()
    }

    /// The server's rate for `org`'s keys together: `--rate-org-for`, else
    /// `--rate-org`; 0: none.
    pub fn server_org_rate(&self, org: &OrgId) -> u32 {
        let s = &self.settings;
        s.org_rates.get(org).copied().unwrap_or(s.org_rate)
    }

    /// Sets `org`'s own rate (`None`: back to the server's); its next
    /// request is held to it.
    pub fn set_own_org_rate(&self, org: OrgId, rate: Option<u32>) {
        let mut own = self.own_org_rates();
        match rate {
            Some(rate) => own.insert(org, rate),
            None => own.remove(&org),
        };
    }

    /// Replaces every org's own rate (loaded from the store).
    pub fn replace_own_org_rates(&self, rates: impl IntoIterator<Item = (OrgId, u32)>) {
        *self.own_org_rates() = rates.into_iter().collect();
    }

    fn own_org_rates(&self) -> std::sync::MutexGuard<'_, HashMap<OrgId, u32>> {
        self.own_org_rates
            .lock()
            .expect("the org rates lock is never poisoned")
    }

    /// Lets one request of `who` through at `rate` requests per second, and
    /// within its org's rate ([`Limits::org_rate`]), or says when it may come
    /// again (and counts the refusal). The key's bucket is checked first: a
    /// key over its own rate takes nothing of its org's.
    pub fn admit(&self, who: &Principal, rate: u32) -> Result<(), Throttled> {
        let (id, org, role) = match who {
            Principal::Operator => ("operator", None, "operator"),
            Principal::Org { key_id, org, role } => (key_id.as_str(), Some(org), role.as_str()),
        };
        bucket(&self.buckets, id, rate)
            .check()
            .map_err(|not_until| self.refuse(Over::Key, role, not_until))?;
        let Some(org) = org else {
            return Ok(());
        };
        match self.org_rate(org) {
            0 => Ok(()),
            rate => bucket(&self.orgs, org.as_str(), rate)
                .check()
                .map_err(|not_until| self.refuse(Over::Org, role, not_until)),
        }
    }

    /// Counts a refusal over `over`'s allowance of a key of `role`.
    fn refuse(
        &self,
        over: Over,
        role: &str,
        not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> Throttled {
        self.count(over, role);
        Throttled {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            over,
        }
    }

    /// Whether `client` may try to authenticate now (it has not failed too
    /// often lately).
    pub fn may_authenticate(&self, client: IpAddr) -> Result<(), Throttled> {
        let blocked = self
            .blocked
            .lock()
            .expect("the blocked lock is never poisoned");
        match blocked.get(&client) {
            Some(until) if *until > Instant::now() => {
                let retry_after = *until - Instant::now();
                drop(blocked);
                self.count(Over::Address, "anonymous");
                Err(Throttled {
                    retry_after,
                    over: Over::Address,
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication of `client`; refused (and the
    /// address blocked for a while) once it failed too often.
    pub fn failed_authentication(&self, client: IpAddr) -> Result<(), Throttled> {
        if self.failures.len() > PRUNE_ABOVE {
            self.failures.retain_recent();
        }
        let Err(not_until) = self.failures.check_key(&client) else {
            return Ok(());
        };
        let retry_after = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = self
            .blocked
            .lock()
            .expect("the blocked lock is never poisoned");
        if blocked.len() > PRUNE_ABOVE {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(client, Instant::now() + retry_after);
        drop(blocked);
        self.count(Over::Address, "anonymous");
        Err(Throttled {
            retry_after,
            over: Over::Address,
        })
    }

    /// A place among the open long-polls and event streams, held until
    /// dropped; none when `--max-waits` are open.
    pub fn wait(&self) -> Option<OwnedSemaphorePermit> {
        self.waits.clone().try_acquire_owned().ok()
    }

    fn count(&self, over: Over, role: &str) {
        if let Some(i) = REFUSED.iter().position(|&(o, r)| o == over && r == role) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `slotgate_rate_limited_total` by whose allowance and role, as Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP slotgate_rate_limited_total Requests refused with 429 rate_limited, by whose allowance they were over (scope: key, org, address) and the role of their key (anonymous: failed authentication).\n\
             # TYPE slotgate_rate_limited_total counter\n",
        );
        for (i, (over, role)) in REFUSED.iter().enumerate() {
            let n = self.refused[i].load(Ordering::Relaxed);
            out.push_str(&format!(
                "slotgate_rate_limited_total{{role=\"{role}\",scope=\"{}\"}} {n}\n",
                over.as_str()
            ));
        }
        out
    }

    /// The client's address: the peer's, or, when the peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one
    /// (proxies append the address they received from).
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip();
        if !self.trusted(peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusted(ip) {
                        break;
                    }
                }
                // Not an address: what lies beyond it cannot be trusted.
                Err(_) => break,
            }
        }
        client
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.settings
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&ip))
    }
}

/// The bucket of `id` in `buckets`, made anew when it has none at `rate`
/// (the rate changed: a new bucket, full).
fn bucket(
    buckets: &Mutex<HashMap<String, Bucket>>,
    id: &str,
    rate: u32,
) -> Arc<DefaultDirectRateLimiter> {
    let mut buckets = buckets.lock().expect("the buckets lock is never poisoned");
    match buckets.get(id) {
        Some(b) if b.rate == rate => b.gcra.clone(),
        _ => {
            let gcra = Arc::new(governor::RateLimiter::direct(Quota::per_second(nonzero(
                rate,
            ))));
            let bucket = Bucket {
                rate,
                gcra: gcra.clone(),
            };
            buckets.insert(id.to_string(), bucket);
            gcra
        }
    }
}

/// Reads `--rate-org-for`: `ORG=PER_S`, the org's rate for all its keys
/// together (0: none).
pub fn parse_org_rate(s: &str) -> Result<(OrgId, u32), String> {
    let (org, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ORG=PER_S (acme=200), got {s:?}"))?;
    let org = OrgId::new(org.trim()).map_err(|e| e.to_string())?;
    let rate = rate
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|r| *r <= 1_000_000)
        .ok_or_else(|| format!("expected a rate of 0 to 1000000 after {org}=, got {rate:?}"))?;
    Ok((org, rate))
}

/// Reads `--trusted-proxy`: an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
pub fn parse_trusted_proxy(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!("expected an IP address (10.0.0.5) or a network (10.0.0.0/8, fd00::/8), got {s:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(proxies: &[&str]) -> Limits {
        Limits::new(Settings {
            trusted_proxies: proxies
                .iter()
                .map(|p| parse_trusted_proxy(p).unwrap())
                .collect(),
            ..Settings::default()
        })
    }

    fn forwarded(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let h = forwarded("203.0.113.9, 10.0.0.7");
        assert_eq!(limits(&[]).client(peer, &h), peer.ip());
        assert_eq!(
            limits(&["10.0.0.0/8"]).client(peer, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Only the trusted proxy's own hop is believed: a client cannot
        // name another client by writing the header itself.
        assert_eq!(
            limits(&["10.0.0.5"]).client(peer, &h),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            limits(&["10.0.0.0/8"]).client(peer, &forwarded("junk, 10.0.0.8")),
            "10.0.0.8".parse::<IpAddr>().unwrap()
        );
        assert!(parse_trusted_proxy("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxy("::1").is_ok());
    }

    #[test]
    fn a_key_over_its_rate_is_refused_until_its_bucket_refills() {
        let l = Limits::default();
        let who = Principal::Org {
            key_id: "k1".into(),
            org: slotgate_core::OrgId::new("acme").unwrap(),
            role: Role::Runtime,
        };
        for _ in 0..3 {
            assert_eq!(l.admit(&who, 3), Ok(()));
        }
        let refused = l.admit(&who, 3).unwrap_err();
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert_eq!(refused.retry_after_s(), 1);
        // A new rate is a new bucket.
        assert_eq!(l.admit(&who, 10), Ok(()));
        assert!(l
            .render()
            .contains("slotgate_rate_limited_total{role=\"runtime\",scope=\"key\"} 1"));
    }

    #[test]
    fn an_orgs_keys_share_its_rate_and_an_org_may_have_its_own() {
        let (acme, big) = (OrgId::new("acme").unwrap(), OrgId::new("big").unwrap());
        let l = Limits::new(Settings {
            org_rate: 2,
            org_rates: [(big.clone(), 0)].into(),
            ..Settings::default()
        });
        let key = |id: &str, org: &OrgId| Principal::Org {
            key_id: id.into(),
            org: org.clone(),
            role: Role::Runtime,
        };
        assert_eq!(l.admit(&key("k1", &acme), 100), Ok(()));
        assert_eq!(l.admit(&key("k2", &acme), 100), Ok(()));
        let refused = l.admit(&key("k3", &acme), 100).unwrap_err();
        assert_eq!(refused.over, Over::Org);
        // 0: no rate for that org; the operator is no org's.
        for _ in 0..10 {
            assert_eq!(l.admit(&key("k4", &big), 100), Ok(()));
            assert_eq!(l.admit(&Principal::Operator, 100), Ok(()));
        }
        assert!(l
            .render()
            .contains("slotgate_rate_limited_total{role=\"runtime\",scope=\"org\"} 1"));
        assert_eq!(parse_org_rate("acme=200"), Ok((acme, 200)));
        for bad in ["acme", "acme=", "acme=-1", "acme=1000001", "bad org=5"] {
            assert!(parse_org_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn failed_authentication_blocks_the_address_after_the_allowance() {
        let l = Limits::new(Settings {
            auth_failures: 2,
            ..Settings::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(l.may_authenticate(ip), Ok(()));
        assert_eq!(l.failed_authentication(ip), Ok(()));
        assert_eq!(l.failed_authentication(ip), Ok(()));
        assert!(l.failed_authentication(ip).is_err());
        assert!(l.may_authenticate(ip).is_err());
        assert_eq!(l.may_authenticate(other), Ok(()));
    }
}
