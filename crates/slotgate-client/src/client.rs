//! The HTTP client: one method per endpoint of API.md, with safe retries.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use slotgate_api::{
    AcquireCall, CallList, CallState, Caps, CreateKey, CreateOrg, CreatePlan, Heartbeat, KeyList,
    OrgList, OrgRate, PlanList, Reservations, Role, SetBurst, SetLimit, SetOrgRate, SetPlan,
    UpdatePlan,
};

use crate::error::{Error, Result};

/// How long a plan or a simulation may run on the server.
pub const PLANNING_TIMEOUT: Duration = Duration::from_secs(600);
use crate::{Agent, Call, Event, EventPage, KeyInfo, NewKey, Org, Plan};

/// How a transient failure is retried: attempts and the first pause (doubling).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The pause after the first failure; each next one doubles, up to 5 s.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            backoff: Duration::from_millis(100),
        }
    }
}

/// A slotgate client: a base URL and a key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    pub(crate) request_timeout: Duration,
    pub(crate) retry: Retry,
}

/// Which calls to list.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Active or queued only; both when `None`.
    pub state: Option<CallState>,
    /// Only this agent's.
    pub agent: Option<String>,
}

/// A live stream of an org's events; see [`Client::event_stream`].
#[derive(Debug)]
pub struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    /// The next event; `None` when the server closes the stream.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            // An event is a block of lines ended by a blank line; its `data:` line is the JSON.
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                match data {
                    Some(d) => {
                        return Some(
                            serde_json::from_str(d.trim())
                                .map_err(|e| Error::Decode(e.to_string())),
                        )
                    }
                    None => continue, // a keep-alive comment
                }
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) => return None,
                Err(e) => return Some(Err(Error::Transport(e))),
            }
        }
    }
}

pub(crate) fn enc(s: &str) -> String {
    // Ids are `A-Z a-z 0-9 . _ : -` only; anything else is the server's to refuse.
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b':' | b'-' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:7878`,
    /// or `https://...`, whose certificate must chain to one of the system's
    /// roots or to a CA given to [`Client::with_ca_file`]) using `key`.
    pub fn new(base_url: &str, key: &str) -> Client {
        Client {
            http: crate::tls::http_client(None)
                .expect("a client without a CA file of its own always builds"),
            base: base_url.trim_end_matches('/').to_string(),
            key: key.to_string(),
            request_timeout: Duration::from_secs(10),
            retry: Retry::default(),
        }
    }

    /// How long one request may take (long-polls get their wait on top).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Client {
        self.request_timeout = timeout;
        self
    }

    /// Trusts the CA certificates in this PEM file too, besides the system's
    /// roots: for a server whose certificate a private CA signed. Fails if
    /// the file cannot be read or holds no certificate.
    pub fn with_ca_file(mut self, path: impl AsRef<std::path::Path>) -> Result<Client> {
        self.http = crate::tls::http_client(Some(path.as_ref()))?;
        Ok(self)
    }

    /// How transient failures are retried.
    pub fn with_retry(mut self, retry: Retry) -> Client {
        self.retry = retry;
        self
    }

    /// One request, no retry. `wait` extends the timeout of a long-poll.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        wait: Duration,
    ) -> Result<(StatusCode, T)> {
        let mut req = self
            .http
            .request(method, format!("{}/v1{path}", self.base))
            .bearer_auth(&self.key)
            .timeout(self.request_timeout + wait);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            return Err(Error::refusal(status.as_u16(), &bytes));
        }
        let value = if bytes.is_empty() {
            b"null".as_slice()
        } else {
            &bytes
        };
        let parsed = serde_json::from_slice(value).map_err(|e| Error::Decode(e.to_string()))?;
        Ok((status, parsed))
    }

    /// A request, retried with backoff while it fails transiently. Only for
    /// requests that are safe to repeat: reads, and writes made idempotent by ids.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        wait: Duration,
    ) -> Result<(StatusCode, T)> {
        let mut pause = self.retry.backoff;
        let mut attempt = 1;
        loop {
            match self.send(method.clone(), path, body.as_ref(), wait).await {
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Ok(self.call(Method::GET, path, None, Duration::ZERO).await?.1)
    }

    async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let body = json_value(body)?;
        Ok(self.call(method, path, Some(body), Duration::ZERO).await?.1)
    }

    /// Creates an org with its own limit (operator key).
    pub async fn create_org(&self, id: &str, limit: u32) -> Result<Org> {
        self.create_org_with(&CreateOrg {
            id: id.to_string(),
            limit: Some(limit),
            plan: None,
        })
        .await
    }

    /// Creates an org as `body` says: its own limit, a plan, or both
    /// (the org's limit then overrides the plan's) (operator key).
    pub async fn create_org_with(&self, body: &CreateOrg) -> Result<Org> {
        // Not retried blindly: a lost answer to a create would come back as org_exists.
        Ok(self
            .send(
                Method::POST,
                "/orgs",
                Some(&json_value(body)?),
                Duration::ZERO,
            )
            .await?
            .1)
    }

    /// Every plan, with how many orgs are on each (operator key).
    pub async fn plans(&self) -> Result<Vec<Plan>> {
        Ok(self.get::<PlanList>("/plans").await?.plans)
    }

    /// One plan (operator key); `plan_not_found` if there is none.
    pub async fn get_plan(&self, plan: &str) -> Result<Plan> {
        self.get(&format!("/plans/{}", enc(plan))).await
    }

    /// Creates a plan (operator key); `plan_exists` if the id is taken.
    pub async fn create_plan(&self, id: &str, limit: u32, burst: u32) -> Result<Plan> {
        let body = CreatePlan {
            id: id.to_string(),
            limit,
            burst,
        };
        Ok(self
            .send(
                Method::POST,
                "/plans",
                Some(&json_value(&body)?),
                Duration::ZERO,
            )
            .await?
            .1)
    }

    /// Changes a plan's limit, burst or both (`None`: unchanged), and with
    /// it every org on it that takes them, in one change; refused whole
    /// (`plan_below_reservations`, naming the orgs in the way) if the new
    /// limit is below any such org's reservations (operator key).
    pub async fn update_plan(
        &self,
        plan: &str,
        limit: Option<u32>,
        burst: Option<u32>,
    ) -> Result<Plan> {
        self.write(
            Method::PATCH,
            &format!("/plans/{}", enc(plan)),
            &UpdatePlan { limit, burst },
        )
        .await
    }

    /// Deletes a plan; `plan_in_use` while orgs are on it (operator key).
    pub async fn delete_plan(&self, plan: &str) -> Result<()> {
        let _: (StatusCode, Value) = self
            .call(
                Method::DELETE,
                &format!("/plans/{}", enc(plan)),
                None,
                Duration::ZERO,
            )
            .await?;
        Ok(())
    }

    /// Puts an org on a plan: it takes the plan's limit and burst (its own
    /// are cleared); `None` takes it off plans, keeping its limit and burst
    /// as its own (operator key).
    pub async fn set_org_plan(&self, org: &str, plan: Option<&str>) -> Result<Org> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/plan", enc(org)),
            &SetPlan {
                plan: plan.map(str::to_string),
            },
        )
        .await
    }

    /// Returns an org's burst to its plan's (operator key); `no_plan` for an org on no plan.
    pub async fn clear_burst(&self, org: &str) -> Result<Org> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/burst", enc(org)),
            &SetBurst { burst: None },
        )
        .await
    }

    /// Returns an org's limit to its plan's (operator key); `no_plan` for an org on no plan.
    pub async fn clear_limit(&self, org: &str) -> Result<Org> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/limit", enc(org)),
            &SetLimit { limit: None },
        )
        .await
    }

    /// Every org (operator key).
    pub async fn orgs(&self) -> Result<Vec<Org>> {
        self.all_pages::<OrgList>("/orgs?").await
    }

    /// Every page of a list: `path` ends in `?` or `&`.
    async fn all_pages<P: ListPage>(&self, path: &str) -> Result<Vec<P::Item>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}cursor={}", enc(c)),
                None => path.trim_end_matches(['?', '&']).to_string(),
            };
            let (items, next) = self.get::<P>(&page_path).await?.into_parts();
            all.extend(items);
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// The org's observed traffic over `window` (e.g. "7d"; the server's default if `None`).
    pub async fn traffic(&self, org: &str, window: Option<&str>) -> Result<slotgate_plan::Traffic> {
        let query = window.map_or(String::new(), |w| format!("?window={}", enc(w)));
        self.get(&format!("/orgs/{}/traffic{query}", enc(org)))
            .await
    }

    /// The org's usage by UTC hour or day (`step`, default `1h`) from `from`
    /// to `to` (RFC 3339 UTC; defaults: the last day, the last week with
    /// `1d`): peaks, time at the limit, burst, calls admitted, waited and
    /// given up, per call type and overall. Org admin or operator.
    pub async fn usage(
        &self,
        org: &str,
        from: Option<&str>,
        to: Option<&str>,
        step: Option<slotgate_api::Step>,
    ) -> Result<slotgate_api::Usage> {
        let mut query = Vec::new();
        if let Some(f) = from {
            query.push(format!("from={}", enc(f)));
        }
        if let Some(t) = to {
            query.push(format!("to={}", enc(t)));
        }
        if let Some(s) = step {
            query.push(format!("step={s}"));
        }
        let query = match query.is_empty() {
            true => String::new(),
            false => format!("?{}", query.join("&")),
        };
        self.get(&format!("/orgs/{}/usage{query}", enc(org))).await
    }

    /// The org's plan for `body`'s targets. Simulation takes a while: the
    /// request may run up to [`PLANNING_TIMEOUT`]. Changes nothing, so it is retried.
    pub async fn plan(
        &self,
        org: &str,
        body: &slotgate_plan::PlanBody,
    ) -> Result<slotgate_plan::PlanAnswer> {
        self.planning(&format!("/orgs/{}/plan", enc(org)), body)
            .await
    }

    /// The org simulated as configured now and with `body`'s what-ifs; may
    /// run up to [`PLANNING_TIMEOUT`]. Changes nothing, so it is retried.
    pub async fn simulate(
        &self,
        org: &str,
        body: &slotgate_plan::SimulateBody,
    ) -> Result<slotgate_plan::SimulateAnswer> {
        self.planning(&format!("/orgs/{}/simulate", enc(org)), body)
            .await
    }

    async fn planning<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        let body = json_value(body)?;
        Ok(self
            .call(Method::POST, path, Some(body), PLANNING_TIMEOUT)
            .await?
            .1)
    }

    /// An org's snapshot.
    pub async fn org(&self, org: &str) -> Result<Org> {
        self.get(&format!("/orgs/{}", enc(org))).await
    }

    /// Sets an org's limit (operator key).
    pub async fn set_limit(&self, org: &str, limit: u32) -> Result<Org> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/limit", enc(org)),
            &SetLimit { limit: Some(limit) },
        )
        .await
    }

    /// Sets an org's burst: slots it may use above its limit once the whole
    /// limit is in use (operator key).
    pub async fn set_burst(&self, org: &str, burst: u32) -> Result<Org> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/burst", enc(org)),
            &SetBurst { burst: Some(burst) },
        )
        .await
    }

    /// The request rate of all an org's keys together, and where it comes from.
    pub async fn org_rate(&self, org: &str) -> Result<OrgRate> {
        self.get(&format!("/orgs/{}/rate", enc(org))).await
    }

    /// Sets an org's own request rate, for all its keys together (operator
    /// key; 0: none; `None`: back to the server's setting).
    pub async fn set_org_rate(&self, org: &str, rate_per_s: Option<u32>) -> Result<OrgRate> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/rate", enc(org)),
            &SetOrgRate { rate_per_s },
        )
        .await
    }

    /// Sets an agent's caps, all five at once (`None`: no cap). A cap below
    /// the reservation it covers is refused (`cap_below_reservation`, with
    /// the lowest allowed value as `reserved`).
    pub async fn set_caps(&self, org: &str, agent: &str, caps: Caps) -> Result<Agent> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/agents/{}/caps", enc(org), enc(agent)),
            &caps,
        )
        .await
    }

    /// One agent (zeros if never seen).
    pub async fn agent(&self, org: &str, agent: &str) -> Result<Agent> {
        self.get(&format!("/orgs/{}/agents/{}", enc(org), enc(agent)))
            .await
    }

    /// Sets an agent's four reservations.
    pub async fn set_reservations(&self, org: &str, agent: &str, r: Reservations) -> Result<Agent> {
        self.write(
            Method::PUT,
            &format!("/orgs/{}/agents/{}/reservations", enc(org), enc(agent)),
            &r,
        )
        .await
    }

    /// Removes an agent's reservations.
    pub async fn remove_agent(&self, org: &str, agent: &str) -> Result<Agent> {
        Ok(self
            .call(
                Method::DELETE,
                &format!("/orgs/{}/agents/{}/reservations", enc(org), enc(agent)),
                None,
                Duration::ZERO,
            )
            .await?
            .1)
    }

    /// Starts a call with one request: no waiting beyond its `wait_s`, no
    /// heartbeats (see [`Client::acquire`] for a held slot). Answers the
    /// status (201 admitted, 202 queued, 200 the id existed) and the call.
    /// Retried on transient failures only when it carries an id.
    pub async fn start_call(&self, org: &str, body: &AcquireCall) -> Result<(u16, Call)> {
        let path = format!("/orgs/{}/calls", enc(org));
        let wait = Duration::from_secs_f64(body.wait_s.unwrap_or(0.0).clamp(0.0, 60.0));
        let value = json_value(body)?;
        let (status, call) = if body.id.is_some() {
            self.call(Method::POST, &path, Some(value), wait).await?
        } else {
            self.send(Method::POST, &path, Some(&value), wait).await?
        };
        Ok((status.as_u16(), call))
    }

    /// One call; with `wait`, blocks while it is queued (and holds it).
    pub async fn call_info(&self, org: &str, id: &str, wait: Duration) -> Result<Call> {
        let path = format!(
            "/orgs/{}/calls/{}?wait_s={}",
            enc(org),
            enc(id),
            wait.as_secs_f64()
        );
        Ok(self.call(Method::GET, &path, None, wait).await?.1)
    }

    /// Live calls of an org, active first then queued in queue order.
    pub async fn calls(&self, org: &str, filter: &CallFilter) -> Result<Vec<Call>> {
        let mut path = format!("/orgs/{}/calls?", enc(org));
        if let Some(s) = filter.state {
            path.push_str(&format!("state={s}&"));
        }
        if let Some(a) = &filter.agent {
            path.push_str(&format!("agent={}&", enc(a)));
        }
        self.all_pages::<CallList>(&path).await
    }

    /// Renews a call's lease. An ended call is [`crate::ErrorKind::CallEnded`], carrying the call.
    pub async fn heartbeat(
        &self,
        org: &str,
        id: &str,
        lease_ttl: Option<Duration>,
    ) -> Result<Call> {
        let body = Heartbeat {
            lease_ttl_s: lease_ttl.map(|t| t.as_secs_f64()),
        };
        self.write(
            Method::POST,
            &format!("/orgs/{}/calls/{}/heartbeat", enc(org), enc(id)),
            &body,
        )
        .await
    }

    /// Ends a call: released if active, cancelled if queued. Idempotent.
    pub async fn release(&self, org: &str, id: &str) -> Result<Call> {
        Ok(self
            .call(
                Method::DELETE,
                &format!("/orgs/{}/calls/{}", enc(org), enc(id)),
                None,
                Duration::ZERO,
            )
            .await?
            .1)
    }

    /// Creates an org key; the secret is in the answer only.
    pub async fn create_key(&self, org: &str, role: Role, name: &str) -> Result<NewKey> {
        let body = CreateKey {
            role,
            name: name.to_string(),
            rate_per_s: None,
        };
        Ok(self
            .send(
                Method::POST,
                &format!("/orgs/{}/keys", enc(org)),
                Some(&json_value(&body)?),
                Duration::ZERO,
            )
            .await?
            .1)
    }

    /// An org's keys, every page.
    pub async fn keys(&self, org: &str) -> Result<Vec<KeyInfo>> {
        self.all_pages::<KeyList>(&format!("/orgs/{}/keys?", enc(org)))
            .await
    }

    /// Revokes a key.
    pub async fn revoke_key(&self, org: &str, id: &str) -> Result<()> {
        let _: (StatusCode, Value) = self
            .call(
                Method::DELETE,
                &format!("/orgs/{}/keys/{}", enc(org), enc(id)),
                None,
                Duration::ZERO,
            )
            .await?;
        Ok(())
    }

    /// The org's events as they happen (server-sent events), after `after`
    /// (`None`: only new ones).
    pub async fn event_stream(&self, org: &str, after: Option<u64>) -> Result<EventStream> {
        let mut url = format!("{}/v1/orgs/{}/events/stream", self.base, enc(org));
        if let Some(a) = after {
            url.push_str(&format!("?after={a}"));
        }
        let resp = self.http.get(url).bearer_auth(&self.key).send().await?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Error::refusal(status, &body));
        }
        Ok(EventStream {
            resp,
            buf: String::new(),
        })
    }

    /// `GET /healthz`: true when the server answers 200.
    pub async fn healthy(&self) -> Result<bool> {
        let resp = self
            .http
            .get(format!("{}/healthz", self.base))
            .timeout(self.request_timeout)
            .send()
            .await?;
        Ok(resp.status().is_success())
    }

    /// `GET /metrics`: the Prometheus text, as this client's key may see it
    /// (an org's metrics key: its org; the operator: every org).
    pub async fn metrics(&self) -> Result<String> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.key)
            .timeout(self.request_timeout)
            .send()
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            return Err(Error::refusal(status.as_u16(), &bytes));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `GET /v1/openapi.json`: the API's OpenAPI 3 document.
    pub async fn openapi(&self) -> Result<Value> {
        self.get("/openapi.json").await
    }

    /// Events after `after`; with `wait`, long-polls when there are none.
    pub async fn events(&self, org: &str, after: u64, wait: Duration) -> Result<EventPage> {
        let path = format!(
            "/orgs/{}/events?after={after}&wait_s={}",
            enc(org),
            wait.as_secs_f64()
        );
        Ok(self.call(Method::GET, &path, None, wait).await?.1)
    }
}

/// A body as JSON, once, so retries resend the same bytes.
fn json_value(body: &impl Serialize) -> Result<Value> {
    serde_json::to_value(body).map_err(|e| Error::Decode(e.to_string()))
}

/// A page of a list answer: its items and the cursor of the next page.
trait ListPage: DeserializeOwned {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

impl ListPage for OrgList {
    type Item = Org;
    fn into_parts(self) -> (Vec<Org>, Option<String>) {
        (self.orgs, self.next_cursor)
    }
}

impl ListPage for CallList {
    type Item = Call;
    fn into_parts(self) -> (Vec<Call>, Option<String>) {
        (self.calls, self.next_cursor)
    }
}

impl ListPage for KeyList {
    type Item = KeyInfo;
    fn into_parts(self) -> (Vec<KeyInfo>, Option<String>) {
        (self.keys, self.next_cursor)
    }
}
