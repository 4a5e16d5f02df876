//! The security headers (issue 12, item 16), through the router with no
//! socket: the dashboard's page and assets run under a Content-Security-Policy
//! that allows only their own script, style and API and forbids framing;
//! every answer is `nosniff` and `no-referrer`; API answers are `no-store`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use slotgate::server::{Server, Settings};
use tokio::sync::watch;
use tower::ServiceExt;

const OP: &str = "operator-secret";

struct App {
    router: Router,
    _server: Server,
    _dir: tempfile::TempDir,
    _stop: watch::Sender<bool>,
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        operator_key: Some(OP.into()),
        ended_retention: Duration::from_secs(3600),
        event_retention: Duration::from_secs(3600),
        queue_cap: 100,
        metrics_auth: false,
    };
    let (stop, rx) = watch::channel(false);
    let server = Server::start(&settings, rx).unwrap();
    App {
        router: slotgate::api::router(server.service.clone()),
        _server: server,
        _dir: dir,
        _stop: stop,
    }
}

impl App {
    async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, HeaderMap) {
        let mut req = Request::builder().uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        (resp.status(), resp.headers().clone())
    }
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The policy's directives, by name.
fn csp(h: &HeaderMap) -> Vec<(String, Vec<String>)> {
    header(h, "content-security-policy")
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_whitespace().map(String::from);
            (words.next().unwrap(), words.collect())
        })
        .collect()
}

fn directive(h: &HeaderMap, name: &str) -> Vec<String> {
    csp(h)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in the policy"))
        .1
}

/// The page's policy: only its own origin, nothing inline, no framing.
fn assert_page_policy(h: &HeaderMap) {
    assert_eq!(directive(h, "default-src"), ["'self'"]);
    for name in ["script-src", "style-src", "connect-src"] {
        assert_eq!(directive(h, name), ["'self'"], "{name}");
    }
    assert_eq!(directive(h, "frame-ancestors"), ["'none'"]);
    let policy = header(h, "content-security-policy");
    for loose in ["unsafe-inline", "unsafe-eval", "*", "data:", "http:"] {
        assert!(!policy.contains(loose), "{loose} in {policy}");
    }
    assert_common(h);
}

fn assert_common(h: &HeaderMap) {
    assert_eq!(header(h, "x-content-type-options"), "nosniff");
    assert_eq!(header(h, "referrer-policy"), "no-referrer");
    assert_eq!(header(h, "x-frame-options"), "DENY");
}

#[tokio::test]
async fn the_dashboard_page_runs_under_a_strict_policy() {
    let app = app();
    let (status, h) = app.get("/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert_page_policy(&h);
}

#[tokio::test]
async fn the_assets_run_under_the_same_policy_and_are_not_sniffed() {
    let app = app();
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let (status, h) = app.get(&format!("/assets/{file}"), None).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert!(header(&h, "content-type").starts_with(kind), "{file}");
        assert_page_policy(&h);
    }
    // An unknown asset is refused with the same headers.
    let (status, h) = app.get("/assets/nope.js", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_page_policy(&h);
}

#[tokio::test]
async fn api_answers_are_never_cached() {
    let app = app();
    // A success, a refusal, and an endpoint that does not exist.
    for (path, key, want) in [
        ("/v1/orgs", Some(OP), StatusCode::OK),
        ("/v1/orgs", None, StatusCode::UNAUTHORIZED),
        ("/v1/openapi.json", None, StatusCode::OK),
        ("/v1/nope", Some(OP), StatusCode::NOT_FOUND),
    ] {
        let (status, h) = app.get(path, key).await;
        assert_eq!(status, want, "{path}");
        assert_eq!(header(&h, "cache-control"), "no-store", "{path}");
        assert_common(&h);
    }
}

#[tokio::test]
async fn the_page_itself_may_be_revalidated() {
    // `no-store` is for API answers; the dashboard's files keep their own caching.
    let app = app();
    let (_, h) = app.get("/assets/app.js", None).await;
    assert_eq!(header(&h, "cache-control"), "no-cache");
}
