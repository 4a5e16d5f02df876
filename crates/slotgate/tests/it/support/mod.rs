//! The real `slotgate serve` binary for the HTTP and end-to-end tests: a free
//! port, a fresh temporary data directory, an HTTP client with the operator
//! key, and the child killed when the [`Server`] is dropped.
//!
//! Every test server starts through [`serve_command`], the one place that
//! says how `slotgate serve` is run (so a store URL, issue 10, is added there
//! once). Answers come back as an [`Answer`] whose body the tests read as the
//! API's own types (`slotgate_api`): `answer.json::<Call>()`, or
//! `answer.refusal()` for `(status, ErrorCode)`.
//!
//! With `SLOTGATE_TEST_STORE=postgres`, every [`Server`] runs on a PostgreSQL
//! cluster of its own (`support/postgres.rs`: `initdb` and `pg_ctl` in a
//! temporary directory) instead of the embedded store, so the same tests are
//! the conformance suite of both stores. With `SLOTGATE_TEST_STORE=replicas`,
//! every [`Server`] is two replicas on such a cluster: the first leads, and
//! every request goes to the second, which forwards it, so the suite checks
//! that replicas answer as one server. Stopping and restarting the server
//! stops and restarts both, the leader first.

#![allow(dead_code, unreachable_pub)]

#[path = "postgres.rs"]
pub mod pg;
#[path = "tls.rs"]
pub mod tls;

use std::fmt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Method};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use slotgate_api::{Agent, ApiError, Call, CallList, ErrorBody, ErrorCode, Event, EventPage};
use slotgate_api::{CallState, CallType, NewKey, Org, Role, Slot};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The operator key every test server runs with.
pub const OPERATOR_KEY: &str = "e2e-support-operator-key-0123456789abcdef";

/// The replicas' secret every test server runs with (issue 21).
pub const REPLICA_SECRET: &str = "e2e-support-replica-secret-0123456789abcdef";

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// No request of these tests legitimately takes this long (the longest wait is 60 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// A running `slotgate serve` on a temporary data directory.
pub struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The options beyond the defaults it was started with (kept for restarts).
    extra: Vec<String>,
    /// The environment variables it was started with (kept for restarts).
    env: Vec<(String, String)>,
    /// `http://127.0.0.1:PORT` of the current process.
    pub base: String,
    /// The port parsed from the ready line.
    pub port: u16,
    /// A client that sends the operator key on every request.
    pub client: Client,
    /// A client that sends no key.
    pub anon: Client,
    /// Everything the current process wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
    /// With `SLOTGATE_TEST_STORE=replicas`, the replica that leads; `child`
    /// and `base` are then the one that forwards to it.
    leader: Option<Leader>,
    /// Its PostgreSQL cluster, with `SLOTGATE_TEST_STORE=postgres`; dropped
    /// (stopped) after the server.
    postgres: Option<pg::PgCluster>,
}

/// The leading replica of a [`Server`] in `SLOTGATE_TEST_STORE=replicas` mode.
struct Leader {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` of its current process.
    base: String,
    dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

/// Whether the tests run on PostgreSQL (`SLOTGATE_TEST_STORE=postgres`)
/// rather than the embedded store.
pub fn on_postgres() -> bool {
    match std::env::var("SLOTGATE_TEST_STORE").as_deref() {
        Ok("postgres" | "replicas") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => {
            panic!("SLOTGATE_TEST_STORE must be sqlite, postgres or replicas, not {other:?}")
        }
    }
}

/// Whether each test server is two replicas (`SLOTGATE_TEST_STORE=replicas`).
pub fn as_replicas() -> bool {
    std::env::var("SLOTGATE_TEST_STORE").as_deref() == Ok("replicas")
}

impl Server {
    /// Starts a server on a fresh data directory and waits until it is ready.
    pub async fn start() -> Server {
        Server::start_with(&[]).await
    }

    /// [`Server::start`] with more `serve` options, e.g. `["--queue-cap", "2"]`.
    pub async fn start_with(extra: &[&str]) -> Server {
        Server::start_with_env(extra, &[]).await
    }

    /// [`Server::start_with`] with these environment variables set.
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let postgres = match on_postgres() {
            true => Some(pg::PgCluster::start().await),
            false => None,
        };
        Server::start_on_with_env(postgres, extra, env).await
    }

    /// A server on a PostgreSQL cluster of its own, whatever `SLOTGATE_TEST_STORE` says.
    pub async fn start_on_postgres(extra: &[&str]) -> Server {
        Server::start_on(Some(pg::PgCluster::start().await), extra).await
    }

    /// The PostgreSQL cluster the server runs on, if it does.
    pub fn postgres(&self) -> Option<&pg::PgCluster> {
        self.postgres.as_ref()
    }

    /// A server on this PostgreSQL cluster, or on the embedded store when `None`.
    pub async fn start_on(postgres: Option<pg::PgCluster>, extra: &[&str]) -> Server {
        Server::start_on_with_env(postgres, extra, &[]).await
    }

    /// [`Server::start_on`] with these environment variables set (kept for restarts).
    pub async fn start_on_with_env(
        postgres: Option<pg::PgCluster>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = postgres
            .iter()
            .flat_map(|c| ["--store".to_string(), c.url()]);
        let extra: Vec<String> = store.chain(extra.iter().map(|s| s.to_string())).collect();
        // `extra` keeps the store for restarts.
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let leader = match postgres.is_some() && as_replicas() {
            true => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let (child, port, stderr) = spawn_with(dir.path(), &extra, &env).await;
                Some(Leader {
                    child: Some(child),
                    base: format!("http://127.0.0.1:{port}"),
                    dir,
                    stderr,
                })
            }
            false => None,
        };
        let (child, port, stderr) = spawn_with(dir.path(), &extra, &env).await;
        Server {
            child: Some(child),
            dir,
            extra,
            env,
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: client(Some(OPERATOR_KEY)),
            anon: client(None),
            stderr,
            leader,
            postgres,
        }
    }

    /// `--store URL` when the server runs on PostgreSQL, else nothing: what
    /// another server needs to run on the same store.
    pub fn store_args(&self) -> Vec<String> {
        let url = self.postgres.as_ref().map(pg::PgCluster::url);
        url.into_iter()
            .flat_map(|u| ["--store".to_string(), u])
            .collect()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("the server is running")
    }

    /// What the server wrote to stderr so far (both replicas' lines, as two replicas).
    pub fn stderr(&self) -> String {
        let own = self.stderr.lock().unwrap().clone();
        match &self.leader {
            Some(l) => l.stderr.lock().unwrap().clone() + &own,
            None => own,
        }
    }

    /// `base` + `path`, e.g. `url("/v1/orgs")`. As two replicas, `/metrics`
    /// is the leader's: each replica has its own, and the leader's shows the orgs.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.metrics_base(path))
    }

    /// The base URL whose `path` to read: `base`, or, for `/metrics` as two
    /// replicas, the leader's.
    pub fn metrics_base(&self, path: &str) -> &str {
        match &self.leader {
            Some(l) if path == "/metrics" => &l.base,
            _ => &self.base,
        }
    }

    /// `SIGKILL`, and waits until the process is gone.
    /// As two replicas, the one the requests go to dies first, then the
    /// leader: clients see the connection cut, as with one server.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().await.expect("SIGKILL is delivered");
        if let Some(leader) = &mut self.leader {
            let mut child = leader.child.take().expect("the leader is running");
            child.kill().await.expect("SIGKILL is delivered");
        }
    }

    /// `SIGTERM`; waits (at most 30 s) for the exit and returns its status
    /// (as two replicas: the leader's, then the other's, which must succeed).
    pub async fn terminate(&mut self) -> ExitStatus {
        if let Some(mut child) = self.leader.as_mut().and_then(|l| l.child.take()) {
            let status = self.stop(&mut child).await;
            if !status.success() {
                return status;
            }
            let mut child = self.child.take().expect("the server is running");
            let other = self.stop(&mut child).await;
            assert!(other.success(), "the other replica exits 0: {other}");
            return status;
        }
        let mut child = self.child.take().expect("the server is running");
        self.stop(&mut child).await
    }

    /// `SIGTERM` to `child`; waits (at most 30 s) for the exit.
    async fn stop(&self, child: &mut Child) -> ExitStatus {
        let pid = child.id().expect("the server is running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill(1) runs");
        assert!(sent.success(), "kill -TERM {pid}");
        match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
            Ok(status) => status.expect("waiting for the server"),
            Err(_) => {
                let _ = child.kill().await;
                panic!(
                    "the server did not exit within 30 s of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Sets an environment variable for the next [`Server::restart`].
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
    }

    /// A new process on the same data directory and options (after
    /// [`Server::kill9`] or [`Server::terminate`]), on a new free port; waits
    /// until it is ready.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        if let Some(leader) = &mut self.leader {
            let (child, port, stderr) = spawn_with(leader.dir.path(), &self.extra, &self.env).await;
            leader.child = Some(child);
            leader.base = format!("http://127.0.0.1:{port}");
            leader.stderr = stderr;
        }
        let (child, port, stderr) = spawn_with(self.dir.path(), &self.extra, &self.env).await;
        self.child = Some(child);
        self.port = port;
        self.base = format!("http://127.0.0.1:{port}");
        self.stderr = stderr;
        if self.extra.iter().any(|a| a == "--store") {
            // On PostgreSQL it serves once it (or, as two replicas, the
            // one it forwards to) holds the lead again.
            let s = &*self;
            eventually(15, "the restarted server serves", || async move {
                let r = s.client.get(s.url("/v1/orgs")).send().await;
                r.is_ok_and(|r| r.status() == 200)
            })
            .await;
        }
    }

    // -- Requests: the status, headers and body of the answer ----------------

    /// A request to `path` (the whole path, e.g. `/v1/orgs` or `/metrics`)
    /// with `key` (none when `None`) and an optional body sent as JSON text.
    /// `Err` only when no answer came (connection refused or cut).
    pub async fn try_send(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Answer, reqwest::Error> {
        let mut req = self.anon.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b);
        }
        Answer::read(req.send().await?).await
    }

    /// [`Server::try_send`] with a JSON body, which must get an answer.
    pub async fn send(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.send_text(key, method, path, body.map(Value::to_string))
            .await
    }

    /// [`Server::try_send`], which must get an answer.
    pub async fn send_text(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Answer {
        let what = format!("{method} {path}");
        self.try_send(key, method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"))
    }

    /// A request with the operator key (`path` whole, e.g. `/v1/orgs`).
    pub async fn op(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        self.send(Some(OPERATOR_KEY), method, path, body).await
    }

    /// A request with the operator key and a raw body (for bad input).
    pub async fn op_text(&self, method: Method, path: &str, body: &str) -> Answer {
        let body = (!body.is_empty()).then(|| body.to_string());
        self.send_text(Some(OPERATOR_KEY), method, path, body).await
    }

    /// Sends each `(method, path, body, field)` with the operator key: each
    /// must answer 400 `invalid_request` with a message naming `field`.
    pub async fn assert_refused_naming(&self, cases: &[(Method, &str, &str, &str)]) {
        for (m, path, body, field) in cases {
            let r = self.op_text(m.clone(), path, body).await;
            assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{path}: {r}");
            let message = r.error().message;
            assert!(
                message.contains(field),
                "{path} {body}: {message:?} should name {field}"
            );
        }
    }

    /// `GET path` with the operator key, which must answer 200 with a `T`.
    pub async fn get<T: DeserializeOwned + Serialize>(&self, path: &str) -> T {
        self.op(Method::GET, path, None).await.ok(200).json()
    }

    // -- The operator's steps most tests take, typed -------------------------

    /// Creates an org; it must answer 201.
    pub async fn create_org(&self, id: &str, limit: u32) -> Org {
        let body = json!({"id": id, "limit": limit});
        self.op(Method::POST, "/v1/orgs", Some(&body))
            .await
            .ok(201)
            .json()
    }

    /// Sets an agent's reservations (`{"chat": 1, ...}`); it must answer 200.
    pub async fn reserve(&self, org: &str, agent: &str, r: Value) -> Agent {
        let path = format!("/v1/orgs/{org}/agents/{agent}/reservations");
        self.op(Method::PUT, &path, Some(&r)).await.ok(200).json()
    }

    /// `POST /v1/orgs/{org}/calls` for call `id`.
    pub async fn acquire(&self, org: &str, id: &str, agent: &str, t: CallType) -> Answer {
        let body = json!({"id": id, "agent": agent, "type": t});
        self.op(Method::POST, &format!("/v1/orgs/{org}/calls"), Some(&body))
            .await
    }

    /// `DELETE /v1/orgs/{org}/calls/{id}`; it must answer 200.
    pub async fn release(&self, org: &str, id: &str) -> Call {
        let path = format!("/v1/orgs/{org}/calls/{id}");
        self.op(Method::DELETE, &path, None).await.ok(200).json()
    }

    /// An org's snapshot.
    pub async fn org(&self, org: &str) -> Org {
        self.get(&format!("/v1/orgs/{org}")).await
    }

    /// An agent of an org.
    pub async fn agent(&self, org: &str, agent: &str) -> Agent {
        self.get(&format!("/v1/orgs/{org}/agents/{agent}")).await
    }

    /// A call of an org.
    pub async fn get_call(&self, org: &str, id: &str) -> Call {
        self.get(&format!("/v1/orgs/{org}/calls/{id}")).await
    }

    /// A new key of an org; it must answer 201.
    pub async fn new_key(&self, org: &str, role: Role, name: &str) -> NewKey {
        let body = json!({"role": role, "name": name});
        let path = format!("/v1/orgs/{org}/keys");
        self.op(Method::POST, &path, Some(&body))
            .await
            .ok(201)
            .json()
    }

    /// Every live call of an org (all pages), in the list's order: active,
    /// then queued in queue order.
    pub async fn all_calls(&self, org: &str) -> Vec<Call> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: CallList = self
                .get(&format!("/v1/orgs/{org}/calls?limit=50{cursor}"))
                .await;
            out.extend(page.calls);
            match page.next_cursor {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return out,
            }
        }
    }

    /// The queued calls' ids of an org, in queue order, with their positions.
    pub async fn queue(&self, org: &str) -> Vec<(String, u64)> {
        let page: CallList = self
            .get(&format!("/v1/orgs/{org}/calls?state=queued"))
            .await;
        let position = |c: &Call| c.position.expect("a queued call has a position");
        page.calls
            .iter()
            .map(|c| (c.id.clone(), position(c)))
            .collect()
    }

    /// Every event of an org still kept, oldest first (all pages).
    pub async fn all_events(&self, org: &str) -> Vec<Event> {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let path = format!("/v1/orgs/{org}/events?after={after}&limit=1000");
            let page: EventPage = self.get(&path).await;
            if page.events.is_empty() {
                return events;
            }
            events.extend(page.events);
            after = page.next;
        }
    }

    // -- The first harness's calls, kept for the tests that use them ---------

    /// A request to `/v1{path}` with `key` (none when `None`) and an optional
    /// JSON body; the status and the JSON answer (`null` if not JSON). `Err`
    /// only when no answer came (connection refused or cut).
    pub async fn try_call(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let (path, body) = (format!("/v1{path}"), body.map(Value::to_string));
        let answer = self.try_send(key, method, &path, body).await;
        answer.map(|a| (a.status, a.value()))
    }

    /// [`Server::try_call`] that must get an answer.
    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let a = self.send(key, method, &format!("/v1{path}"), body).await;
        (a.status, a.value())
    }

    /// A request with the operator key that must get an answer.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(Some(OPERATOR_KEY), method, path, body).await
    }

    /// `GET /v1{path}` with the operator key, which must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A request to `/v1{path}` with the operator key, with a raw body (for bad input).
    pub async fn raw(&self, method: Method, path: &str, body: impl Into<String>) -> (u16, Value) {
        let path = format!("/v1{path}");
        let a = self
            .send_text(Some(OPERATOR_KEY), method, &path, Some(body.into()))
            .await;
        (a.status, a.value())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // kill_on_drop is set too; this makes it explicit and immediate.
            let _ = child.start_kill();
        }
    }
}

/// An answer: its status, headers and body, read as the API's types.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// Reads a whole answer.
    pub async fn read(resp: reqwest::Response) -> Result<Answer, reqwest::Error> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        Ok(Answer {
            status,
            headers,
            text,
        })
    }

    /// Asserts the status is `want` (showing the body if not); the answer.
    #[track_caller]
    pub fn ok(self, want: u16) -> Answer {
        assert_eq!(self.status, want, "{self}");
        self
    }

    /// The body as the API's type `T`. It must be exactly a `T` on the wire:
    /// written back, it is the same JSON, so no field the answer carries is
    /// lost or made up by a default, and a typed assertion checks no less
    /// than one on the raw JSON did.
    #[track_caller]
    pub fn json<T: DeserializeOwned + Serialize>(&self) -> T {
        let typed: T = serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not a {}: {e}: {self}", std::any::type_name::<T>()));
        let again = serde_json::to_value(&typed).expect("an API type serializes");
        assert_eq!(
            again,
            self.value(),
            "the answer is not exactly a {}",
            std::any::type_name::<T>()
        );
        typed
    }

    /// The body as untyped JSON (`null` if it is not JSON), for the few checks
    /// of the wire format itself.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The error of an error answer.
    #[track_caller]
    pub fn error(&self) -> ApiError {
        self.json::<ErrorBody>().error
    }

    /// `(status, error code)` of an error answer.
    #[track_caller]
    pub fn refusal(&self) -> (u16, ErrorCode) {
        (self.status, self.error().code)
    }

    /// `(status, state, slot, position)` of a call answer.
    #[track_caller]
    pub fn brief(&self) -> (u16, CallState, Option<Slot>, Option<u64>) {
        let c: Call = self.json();
        (self.status, c.state, c.slot, c.position)
    }

    /// A header's value; panics if it is absent.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header: {self}"))
            .to_str()
            .expect("a header of text")
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

/// A reqwest client builder. reqwest is built with rustls on ring and no
/// provider of its own (slotgate-client's choice, which keeps aws-lc out of
/// the build), so ring is made the process's default provider first.
pub fn http_builder() -> reqwest::ClientBuilder {
    #[allow(deprecated)] // for lacking post-quantum key exchange, which ring has not
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
}

fn client(key: Option<&str>) -> Client {
    let mut headers = HeaderMap::new();
    if let Some(k) = key {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {k}")).expect("a valid header"),
        );
    }
    http_builder()
        .default_headers(headers)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// `slotgate serve --listen LISTEN --data-dir DIR` with the operator key:
/// the one place that says how the tests run the server (a store URL goes
/// here). The caller adds options and pipes, and spawns or runs it.
///
/// Its rate limits are high enough never to get in a test's way (tests
/// fire requests, and requests without a key, from 127.0.0.1 as fast as
/// they can); options given on the command line override them
/// (`tests/it/conformance/limits.rs`).
pub fn serve_command(listen: &str, dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"));
    c.args(["serve", "--listen", listen, "--data-dir"])
        .arg(dir)
        .env("SLOTGATE_OPERATOR_KEY", OPERATOR_KEY)
        .env("SLOTGATE_REPLICA_SECRET", REPLICA_SECRET)
        // libpq's TLS variables of whoever runs the tests would change the store's TLS.
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("PGSSLCERT")
        .env_remove("PGSSLKEY")
        .envs(
            [
                "SLOTGATE_RATE_RUNTIME",
                "SLOTGATE_RATE_ADMIN",
                "SLOTGATE_RATE_OPERATOR",
                "SLOTGATE_AUTH_FAILURES",
            ]
            .map(|var| (var, "1000000")),
        )
        .stdin(Stdio::null());
    c
}

/// Starts `slotgate serve --listen 127.0.0.1:0 --data-dir DIR` and waits for
/// `slotgate ready on http://127.0.0.1:PORT`; returns the child, the port and
/// its stderr (collected in the background from then on).
pub async fn spawn(dir: &Path) -> (Child, u16, Arc<Mutex<String>>) {
    spawn_with(dir, &[], &[]).await
}

/// The variable of `env` that runs the server with this limit of open
/// files (soft and hard): `("RLIMIT_NOFILE", "2048")`.
pub const RLIMIT_NOFILE: &str = "RLIMIT_NOFILE";

/// [`spawn`] with more `serve` options and environment variables; with
/// [`RLIMIT_NOFILE`] among them, under `sh -c 'ulimit -n ...'`.
pub async fn spawn_with(
    dir: &Path,
    extra: &[String],
    env: &[(String, String)],
) -> (Child, u16, Arc<Mutex<String>>) {
    let serve = serve_command("127.0.0.1:0", dir);
    let mut command = match env.iter().any(|(k, _)| k == RLIMIT_NOFILE) {
        false => serve,
        true => wrapped(
            &serve,
            "sh",
            &["-c", "ulimit -n \"$RLIMIT_NOFILE\" && exec \"$0\" \"$@\""],
        ),
    };
    command.args(extra).envs(env.iter().map(|(k, v)| (k, v)));
    spawn_ready(command).await
}

/// `program args...` running `inner` (its program, arguments and
/// environment), e.g. `ip netns exec NS` or `sh -c '... exec "$0" "$@"'`.
pub fn wrapped(
    inner: &std::process::Command,
    program: &str,
    args: &[&str],
) -> std::process::Command {
    let mut c = std::process::Command::new(program);
    c.args(args)
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(Stdio::null());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// Spawns a `slotgate serve` command (killed on drop) and waits for its
/// ready line; returns the child, the port it names and its stderr
/// (collected in the background from then on).
pub async fn spawn_ready(command: std::process::Command) -> (Child, u16, Arc<Mutex<String>>) {
    let mut child = Command::from(command)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the slotgate binary starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let mut lines = BufReader::new(stderr).lines();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
            if let Some(port) = ready_port(&line) {
                return Some(port);
            }
        }
        None
    })
    .await;
    let port = match ready {
        Ok(Some(port)) => port,
        Ok(None) => panic!(
            "slotgate exited before it was ready; stderr:\n{}",
            log.lock().unwrap()
        ),
        Err(_) => panic!(
            "slotgate was not ready within {READY_TIMEOUT:?}; stderr:\n{}",
            log.lock().unwrap()
        ),
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (child, port, log)
}

/// The port in `... slotgate ready on http(s)://127.0.0.1:PORT ...`.
fn ready_port(line: &str) -> Option<u16> {
    let rest = line.split("slotgate ready on ").nth(1)?;
    let rest = rest.split_once("://")?.1;
    let addr = rest.split(|c: char| c.is_whitespace() || c == '/').next()?;
    addr.rsplit(':').next()?.parse().ok()
}

/// `[(id, 1), (id, 2), ...]`: a queue as [`Server::queue`] reads it.
pub fn q(ids: &[&str]) -> Vec<(String, u64)> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), i as u64 + 1))
        .collect()
}

/// Polls a condition (every 50 ms, at most `secs`), panicking with `what` if it never holds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The CLI as a process, pointed at the server with the operator key in `SLOTGATE_KEY`.
pub fn slotgate(s: &Server, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"));
    c.args(args)
        .env("SLOTGATE_URL", &s.base)
        .env("SLOTGATE_KEY", OPERATOR_KEY)
        .stdin(std::process::Stdio::null());
    c
}

/// Runs the CLI against the server; returns (exit code, stdout, stderr).
pub fn cli(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = slotgate(s, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
