//! The real `slotgate serve` binary for the end-to-end tests: a free port, a
//! fresh temporary data directory, an HTTP client with the operator key, and
//! the child killed when the [`Server`] is dropped.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Client, Method};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The operator key every test server runs with.
pub const OPERATOR_KEY: &str = "e2e-support-operator-key";

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// No request of these tests legitimately takes this long (the longest wait is 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// A running `slotgate serve` on a temporary data directory.
pub struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
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
}

impl Server {
    /// Starts a server on a fresh data directory and waits until it is ready.
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (child, port, stderr) = spawn(dir.path()).await;
        Server {
            child: Some(child),
            dir,
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: client(Some(OPERATOR_KEY)),
            anon: client(None),
            stderr,
        }
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

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `base` + `path`, e.g. `url("/v1/orgs")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `SIGKILL`, and waits until the process is gone.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        child.kill().await.expect("SIGKILL is delivered");
    }

    /// `SIGTERM`; waits (at most 30 s) for the exit and returns its status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
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

    /// A new process on the same data directory (after [`Server::kill9`] or
    /// [`Server::terminate`]), on a new free port; waits until it is ready.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let (child, port, stderr) = spawn(self.dir.path()).await;
        self.child = Some(child);
        self.port = port;
        self.base = format!("http://127.0.0.1:{port}");
        self.stderr = stderr;
    }

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
        let mut req = self.anon.request(method, self.url(&format!("/v1{path}")));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// [`Server::try_call`] that must get an answer.
    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let what = format!("{method} {path}");
        self.try_call(key, method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"))
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

    /// A request with the operator key, with a raw body (for bad input).
    pub async fn raw(&self, method: Method, path: &str, body: impl Into<String>) -> (u16, Value) {
        let resp = self
            .client
            .request(method, self.url(&format!("/v1{path}")))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .send()
            .await
            .expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("the answer's body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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

fn client(key: Option<&str>) -> Client {
    let mut headers = HeaderMap::new();
    if let Some(k) = key {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {k}")).expect("a valid header"),
        );
    }
    Client::builder()
        .default_headers(headers)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// Starts `slotgate serve --listen 127.0.0.1:0 --data-dir DIR` and waits for
/// `slotgate ready on http://127.0.0.1:PORT`; returns the child, the port and
/// its stderr (collected in the background from then on).
pub async fn spawn(dir: &Path) -> (Child, u16, Arc<Mutex<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("SLOTGATE_OPERATOR_KEY", OPERATOR_KEY)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
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

/// The port in `... slotgate ready on http://127.0.0.1:PORT ...`.
fn ready_port(line: &str) -> Option<u16> {
    let rest = line.split("slotgate ready on http://").nth(1)?;
    let addr = rest.split(|c: char| c.is_whitespace() || c == '/').next()?;
    addr.rsplit(':').next()?.parse().ok()
}
