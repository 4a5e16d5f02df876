//! The real `slotgate` binary for end-to-end tests: a free port, a fresh data
//! directory, killed with the test.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};

/// The operator key every test server runs with.
pub const OP: &str = "e2e-operator-key";

/// A running server.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = spawn(dir.path()).await;
        Server { child, url, dir }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// `kill -9`, then a new server on the same directory (and a new port).
    pub async fn kill9_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (child, url) = spawn(self.dir.path()).await;
        self.child = child;
        self.url = url;
    }

    /// SIGTERM; waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// A new server on the same directory, after [`Server::terminate`].
    pub async fn restart(&mut self) {
        let (child, url) = spawn(self.dir.path()).await;
        self.child = child;
        self.url = url;
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An HTTP client and this server's `/v1` URL.
    pub fn api(&self) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{}/v1", self.url),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on `dir`; returns it and its URL once it is ready.
pub async fn spawn(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("SLOTGATE_OPERATOR_KEY", OP)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = tokio::process::ChildStderr::from_std(child.stderr.take().unwrap()).unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("slotgate prints a ready line");
        if let Some(rest) = line.split("ready on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// A thin JSON client for the API.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The `/v1` base URL.
    pub base: String,
}

impl Api {
    /// A request with `key`; returns the status and the JSON body (or `null`).
    pub async fn send(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// A request with the operator key that must get an answer.
    pub async fn op(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.send(Some(OP), method, path, body)
            .await
            .expect("the server answers")
    }
}
