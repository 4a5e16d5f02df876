//! Every endpoint and error of API.md, through the router with no socket,
//! on a real SQLite store in a temporary directory.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
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

fn app_with_cap(queue_cap: u32) -> App {
    app_with(queue_cap, Duration::from_secs(3600))
}

fn app_with(queue_cap: u32, ended_retention: Duration) -> App {
    app_in(tempfile::tempdir().unwrap(), queue_cap, ended_retention)
}

fn app_in(dir: tempfile::TempDir, queue_cap: u32, ended_retention: Duration) -> App {
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        operator_key: Some(OP.into()),
        ended_retention,
        event_retention: Duration::from_secs(3600),
        queue_cap,
        metrics_auth: false,
    };
    start(dir, settings)
}

fn start(dir: tempfile::TempDir, settings: Settings) -> App {
    let (stop, rx) = watch::channel(false);
    let server = Server::start(&settings, rx).unwrap();
    App {
        router: slotgate::api::router(server.service.clone()),
        _server: server,
        _dir: dir,
        _stop: stop,
    }
}

fn app() -> App {
    app_with_cap(100)
}

impl App {
    async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(body.map_or(Body::empty(), Body::from)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn op(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        self.as_key(OP, method, path, body).await
    }

    async fn as_key(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let body = (!body.is_null()).then(|| body.to_string());
        self.raw(method, path, Some(key), body).await
    }

    async fn org(&self, limit: u32) {
        let (s, _) = self
            .op(
                Method::POST,
                "/v1/orgs",
                json!({"id": "acme", "limit": limit}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }

    async fn acquire(&self, id: &str, agent: &str, t: &str) -> (StatusCode, Value) {
        self.op(
            Method::POST,
            "/v1/orgs/acme/calls",
            json!({"id": id, "agent": agent, "type": t}),
        )
        .await
    }

    async fn key(&self, role: &str) -> String {
        let (s, v) = self
            .op(
                Method::POST,
                "/v1/orgs/acme/keys",
                json!({"role": role, "name": format!("{role}-key")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["key"].as_str().unwrap().to_string()
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn orgs_are_created_listed_read_and_limited() {
    let app = app();
    let (s, v) = app
        .op(Method::POST, "/v1/orgs", json!({"id": "acme", "limit": 20}))
        .await;
    assert_eq!(
        (s, v["limit"].clone(), v["shared"].clone()),
        (StatusCode::CREATED, json!(20), json!(20))
    );
    let (s, v) = app
        .op(Method::POST, "/v1/orgs", json!({"id": "acme", "limit": 5}))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "org_exists"));
    app.op(Method::POST, "/v1/orgs", json!({"id": "beta", "limit": 1}))
        .await;

    let (s, v) = app.op(Method::GET, "/v1/orgs?limit=1", Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["orgs"][0]["id"], "acme");
    let cursor = v["next_cursor"].as_str().unwrap().to_string();
    let (_, v) = app
        .op(
            Method::GET,
            &format!("/v1/orgs?limit=1&cursor={cursor}"),
            Value::Null,
        )
        .await;
    assert_eq!(
        (v["orgs"][0]["id"].clone(), v["next_cursor"].clone()),
        (json!("beta"), Value::Null)
    );

    let (s, v) = app.op(Method::GET, "/v1/orgs/nope", Value::Null).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "org_not_found"));

    app.op(
        Method::PUT,
        "/v1/orgs/acme/agents/A/reservations",
        json!({"chat": 5}),
    )
    .await;
    let (s, v) = app
        .op(Method::PUT, "/v1/orgs/acme/limit", json!({"limit": 4}))
        .await;
    assert_eq!(
        (s, code(&v), v["error"]["reserved"].clone()),
        (StatusCode::CONFLICT, "limit_below_reservations", json!(5))
    );
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["error"],
        "extra fields sit inside `error` and nowhere else (API.md): {v}"
    );
    let (s, v) = app
        .op(Method::PUT, "/v1/orgs/acme/limit", json!({"limit": 30}))
        .await;
    assert_eq!(
        (s, v["limit"].clone(), v["shared"].clone()),
        (StatusCode::OK, json!(30), json!(25))
    );
}

#[tokio::test]
async fn reservations_are_set_refused_with_what_is_available_and_removed() {
    let app = app();
    app.org(20).await;
    let (s, v) = app
        .op(
            Method::PUT,
            "/v1/orgs/acme/agents/A/reservations",
            json!({"webcall": 2, "chat": 3, "outbound": 4, "inbound": 3}),
        )
        .await;
    assert_eq!(
        (s, v["reserved_total"].clone()),
        (StatusCode::OK, json!(12))
    );
    let (s, v) = app
        .op(
            Method::PUT,
            "/v1/orgs/acme/agents/B/reservations",
            json!({"inbound": 9}),
        )
        .await;
    assert_eq!(
        (s, code(&v), v["error"]["available"].clone()),
        (StatusCode::CONFLICT, "reservations_exceed_limit", json!(8))
    );
    let (_, v) = app
        .op(
            Method::PUT,
            "/v1/orgs/acme/agents/B/reservations",
            json!({"chat": 1}),
        )
        .await;
    assert_eq!(
        v["reserved"],
        json!({"webcall": 0, "chat": 1, "outbound": 0, "inbound": 0}),
        "missing types are 0"
    );

    let (_, v) = app.op(Method::GET, "/v1/orgs/acme", Value::Null).await;
    assert_eq!(
        (v["reserved"].clone(), v["shared"].clone()),
        (json!(13), json!(7))
    );
    let (s, v) = app
        .op(
            Method::DELETE,
            "/v1/orgs/acme/agents/A/reservations",
            Value::Null,
        )
        .await;
    assert_eq!((s, v["reserved_total"].clone()), (StatusCode::OK, json!(0)));
    let (_, v) = app
        .op(Method::GET, "/v1/orgs/acme/agents/never-seen", Value::Null)
        .await;
    assert_eq!(
        (
            v["id"].clone(),
            v["reserved_total"].clone(),
            v["active"]["chat"].clone()
        ),
        (json!("never-seen"), json!(0), json!(0))
    );
}

#[tokio::test]
async fn calls_are_admitted_queued_retried_and_renewed() {
    let app = app_with_cap(2);
    app.org(1).await;
    let (s, a1) = app.acquire("a1", "A", "chat").await;
    assert_eq!(
        (s, a1["state"].clone(), a1["slot"].clone()),
        (StatusCode::CREATED, json!("active"), json!("shared"))
    );
    let (s, q1) = app.acquire("q1", "B", "inbound").await;
    assert_eq!(
        (s, q1["state"].clone(), q1["position"].clone()),
        (StatusCode::ACCEPTED, json!("queued"), json!(1))
    );
    let (s, _) = app.acquire("q2", "B", "inbound").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = app.acquire("q3", "B", "inbound").await;
    assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "queue_full"));

    let (s, v) = app.acquire("q1", "B", "inbound").await;
    assert_eq!(
        (s, v["position"].clone()),
        (StatusCode::OK, json!(1)),
        "an idempotent retry"
    );
    let (s, v) = app.acquire("q1", "A", "inbound").await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "call_id_conflict"));

    let (s, v) = app
        .op(
            Method::POST,
            "/v1/orgs/acme/calls/a1/heartbeat",
            json!({"lease_ttl_s": 120}),
        )
        .await;
    assert_eq!(
        (s, v["lease_ttl_s"].clone()),
        (StatusCode::OK, json!(120.0))
    );
    let (s, _) = app
        .op(
            Method::POST,
            "/v1/orgs/acme/calls/a1/heartbeat",
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the body is optional");
}

#[tokio::test]
async fn calls_are_listed_cancelled_released_and_ended_once() {
    let app = app_with_cap(2);
    app.org(1).await;
    for (id, agent, t) in [
        ("a1", "A", "chat"),
        ("q1", "B", "inbound"),
        ("q2", "B", "inbound"),
    ] {
        app.acquire(id, agent, t).await;
    }
    let (_, v) = app
        .op(Method::GET, "/v1/orgs/acme/calls?state=queued", Value::Null)
        .await;
    let ids: Vec<&str> = v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["q1", "q2"]);
    let (_, v) = app
        .op(Method::GET, "/v1/orgs/acme/calls?agent=A", Value::Null)
        .await;
    assert_eq!(v["calls"].as_array().unwrap().len(), 1);

    let (s, v) = app
        .op(Method::DELETE, "/v1/orgs/acme/calls/q1", Value::Null)
        .await;
    assert_eq!(
        (s, v["end_reason"].clone()),
        (StatusCode::OK, json!("cancelled"))
    );
    let (_, v) = app
        .op(Method::GET, "/v1/orgs/acme/calls/q2", Value::Null)
        .await;
    assert_eq!(v["position"], 1);
    let (s, v) = app
        .op(Method::DELETE, "/v1/orgs/acme/calls/a1", Value::Null)
        .await;
    assert_eq!(
        (s, v["end_reason"].clone()),
        (StatusCode::OK, json!("released"))
    );
    let (_, v) = app
        .op(Method::GET, "/v1/orgs/acme/calls/q2", Value::Null)
        .await;
    assert_eq!(
        (v["state"].clone(), v["slot"].clone()),
        (json!("active"), json!("shared"))
    );

    let (s, v) = app
        .op(Method::DELETE, "/v1/orgs/acme/calls/a1", Value::Null)
        .await;
    assert_eq!(
        (s, v["end_reason"].clone()),
        (StatusCode::OK, json!("released")),
        "ending again is idempotent"
    );
    let (s, v) = app
        .op(
            Method::POST,
            "/v1/orgs/acme/calls/a1/heartbeat",
            Value::Null,
        )
        .await;
    assert_eq!(
        (s, code(&v), v["error"]["call"]["id"].clone()),
        (StatusCode::GONE, "call_ended", json!("a1"))
    );
    for (m, p) in [
        (Method::GET, "/v1/orgs/acme/calls/zz"),
        (Method::DELETE, "/v1/orgs/acme/calls/zz"),
        (Method::POST, "/v1/orgs/acme/calls/zz/heartbeat"),
    ] {
        let (s, v) = app.op(m, p, Value::Null).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::NOT_FOUND, "call_not_found"),
            "{p}"
        );
    }
}

#[tokio::test]
async fn an_id_is_new_again_once_its_ended_call_leaves_retention() {
    let app = app_with(100, Duration::from_millis(200));
    app.org(1).await;
    app.acquire("x", "A", "chat").await;
    app.op(Method::DELETE, "/v1/orgs/acme/calls/x", Value::Null)
        .await;
    let (s, _) = app.acquire("x", "A", "chat").await;
    assert_eq!(s, StatusCode::OK, "within retention: the ended call");
    loop {
        let (s, _) = app
            .op(Method::GET, "/v1/orgs/acme/calls/x", Value::Null)
            .await;
        if s == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, v) = app.acquire("x", "B", "inbound").await;
    assert_eq!(
        (s, v["state"].clone()),
        (StatusCode::CREATED, json!("active")),
        "a new call: {v}"
    );
    let (s, _) = app
        .op(Method::DELETE, "/v1/orgs/acme/calls/x", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "the store took the reused id");
}

#[tokio::test]
async fn a_restart_restores_orgs_reservations_keys_calls_queue_and_event_numbering() {
    let app = app();
    app.org(2).await;
    app.op(
        Method::PUT,
        "/v1/orgs/acme/agents/A/reservations",
        json!({"chat": 1}),
    )
    .await;
    let key = app.key("runtime").await;
    app.acquire("a1", "A", "chat").await;
    app.acquire("b1", "B", "chat").await;
    app.acquire("q1", "C", "inbound").await;
    app.acquire("q2", "A", "webcall").await;
    app.acquire("gone", "B", "chat").await;
    app.op(Method::DELETE, "/v1/orgs/acme/calls/gone", Value::Null)
        .await;
    let (_, before) = app.op(Method::GET, "/v1/orgs/acme", Value::Null).await;
    let (_, calls_before) = app
        .op(Method::GET, "/v1/orgs/acme/calls", Value::Null)
        .await;
    let (_, events_before) = app
        .op(Method::GET, "/v1/orgs/acme/events", Value::Null)
        .await;

    let App {
        _dir: dir,
        _server: server,
        ..
    } = app;
    drop(server);
    let app = app_in(dir, 100, Duration::from_secs(3600));
    let (_, after) = app.op(Method::GET, "/v1/orgs/acme", Value::Null).await;
    assert_eq!(before, after);
    let (_, calls_after) = app
        .op(Method::GET, "/v1/orgs/acme/calls", Value::Null)
        .await;
    let strip = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
        v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].clone(),
                    c["state"].clone(),
                    c["slot"].clone(),
                    c["position"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(strip(&calls_before), strip(&calls_after));
    let (_, gone) = app
        .op(Method::GET, "/v1/orgs/acme/calls/gone", Value::Null)
        .await;
    assert_eq!(gone["end_reason"], "cancelled", "ended calls are kept too");
    let (s, _) = app
        .as_key(&key, Method::GET, "/v1/orgs/acme", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "keys survive");

    app.op(Method::DELETE, "/v1/orgs/acme/calls/b1", Value::Null)
        .await;
    let next = events_before["next"].as_u64().unwrap();
    let (_, v) = app
        .op(
            Method::GET,
            &format!("/v1/orgs/acme/events?after={next}"),
            Value::Null,
        )
        .await;
    assert_eq!(v["events"][0]["seq"], next + 1, "numbering continues");
    assert_eq!(
        (
            v["events"][1]["type"].clone(),
            v["events"][1]["call"].clone()
        ),
        (json!("call.admitted"), json!("q1"))
    );
}

#[tokio::test]
async fn a_call_without_an_id_gets_one() {
    let app = app();
    app.org(1).await;
    let (s, v) = app
        .op(
            Method::POST,
            "/v1/orgs/acme/calls",
            json!({"agent": "A", "type": "webcall"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(v["id"].as_str().unwrap().starts_with("call_"));
}

#[tokio::test]
async fn an_acquire_whose_max_wait_passes_while_it_waits_answers_200_with_its_end() {
    let app = app();
    app.org(0).await;
    let (s, v) = app
        .op(
            Method::POST,
            "/v1/orgs/acme/calls",
            json!({"id": "t1", "agent": "A", "type": "chat", "max_wait_s": 0.2, "wait_s": 5}),
        )
        .await;
    assert_eq!(
        (s, v["state"].clone(), v["end_reason"].clone()),
        (StatusCode::OK, json!("ended"), json!("timed_out")),
        "202 means queued; this call is not: {v}"
    );
}

#[tokio::test]
async fn a_waiting_acquire_is_admitted_when_a_slot_frees() {
    let app = app();
    app.org(1).await;
    app.acquire("a1", "A", "chat").await;
    let router = app.router.clone();
    let waiter = tokio::spawn(async move {
        let req = Request::post("/v1/orgs/acme/calls")
            .header("authorization", format!("Bearer {OP}"))
            .body(Body::from(
                json!({"id": "q1", "agent": "B", "type": "chat", "wait_s": 30}).to_string(),
            ))
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let body: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        (status, body)
    });
    // Release only once the waiter is queued and its wait is open (the call
    // is readable a moment before its wait opens): an open wait holds the call.
    let mut tries = 0;
    loop {
        let (s, v) = app
            .op(Method::GET, "/v1/orgs/acme/calls/q1", Value::Null)
            .await;
        if s == StatusCode::OK && v["hold_expires_at"].is_null() {
            break;
        }
        tries += 1;
        assert!(tries < 2000, "an open wait holds the call: {v}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.op(Method::DELETE, "/v1/orgs/acme/calls/a1", Value::Null)
        .await;
    let (s, v) = waiter.await.unwrap();
    assert_eq!(
        (s, v["state"].clone()),
        (StatusCode::CREATED, json!("active"))
    );
}

#[tokio::test]
async fn keys_have_roles_and_see_only_their_org() {
    let app = app();
    app.org(5).await;
    app.op(Method::POST, "/v1/orgs", json!({"id": "other", "limit": 5}))
        .await;
    let admin = app.key("admin").await;
    let runtime = app.key("runtime").await;

    let (s, v) = app.raw(Method::GET, "/v1/orgs/acme", None, None).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, _) = app
        .raw(Method::GET, "/v1/orgs/acme", Some("sgk_nope_nope"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, hidden) = app
        .as_key(&runtime, Method::GET, "/v1/orgs/other", Value::Null)
        .await;
    let (_, missing) = app
        .as_key(&runtime, Method::GET, "/v1/orgs/missing", Value::Null)
        .await;
    assert_eq!(
        (s, &hidden),
        (StatusCode::NOT_FOUND, &missing),
        "another org looks missing"
    );

    let (s, _) = app
        .as_key(
            &runtime,
            Method::POST,
            "/v1/orgs/acme/calls",
            json!({"agent": "A", "type": "chat"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .as_key(&runtime, Method::GET, "/v1/orgs/acme", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .as_key(
            &runtime,
            Method::PUT,
            "/v1/orgs/acme/agents/A/reservations",
            json!({"chat": 1}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, _) = app
        .as_key(
            &admin,
            Method::PUT,
            "/v1/orgs/acme/agents/A/reservations",
            json!({"chat": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .as_key(
            &admin,
            Method::PUT,
            "/v1/orgs/acme/limit",
            json!({"limit": 9}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .as_key(
            &admin,
            Method::POST,
            "/v1/orgs",
            json!({"id": "x", "limit": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_revoked_at_once() {
    let app = app();
    app.org(5).await;
    let admin = app.key("admin").await;
    let runtime = app.key("runtime").await;
    let (s, v) = app
        .as_key(&admin, Method::GET, "/v1/orgs/acme/keys", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| k.get("key").is_none()),
        "secrets are never listed"
    );
    let runtime_id = runtime.split('_').nth(1).unwrap();
    let (s, _) = app
        .as_key(
            &admin,
            Method::DELETE,
            &format!("/v1/orgs/acme/keys/{runtime_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .as_key(&runtime, Method::GET, "/v1/orgs/acme", Value::Null)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked key stops at once");
    let (s, v) = app
        .as_key(
            &admin,
            Method::DELETE,
            &format!("/v1/orgs/acme/keys/{runtime_id}"),
            Value::Null,
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "key_not_found"));
    let (s, v) = app
        .op(
            Method::POST,
            "/v1/orgs/acme/keys",
            json!({"role": "root", "name": "x"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_request"));
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let app = app();
    app.org(5).await;
    let (_, before) = app.op(Method::GET, "/v1/orgs/acme", Value::Null).await;
    let cases: &[(Method, &str, &str, &str)] = &[
        (Method::POST, "/v1/orgs", "{\"id\": \"x\", ", "body"),
        (
            Method::POST,
            "/v1/orgs",
            "{\"id\": \"x\", \"limit\": 1, \"plan\": 2}",
            "plan",
        ),
        (
            Method::POST,
            "/v1/orgs",
            "{\"id\": \"x y\", \"limit\": 1}",
            "id",
        ),
        (
            Method::POST,
            "/v1/orgs",
            "{\"id\": \"x\", \"limit\": 1000001}",
            "limit",
        ),
        (
            Method::PUT,
            "/v1/orgs/acme/limit",
            "{\"limit\": \"ten\"}",
            "limit",
        ),
        (
            Method::PUT,
            "/v1/orgs/acme/agents/A/reservations",
            "{\"chat\": -1}",
            "chat",
        ),
        (
            Method::POST,
            "/v1/orgs/acme/calls",
            "{\"agent\": \"A\", \"type\": \"fax\"}",
            "type",
        ),
        (
            Method::POST,
            "/v1/orgs/acme/calls",
            "{\"agent\": \"A\", \"type\": \"chat\", \"lease_ttl_s\": 4}",
            "lease_ttl_s",
        ),
        (
            Method::POST,
            "/v1/orgs/acme/calls",
            "{\"agent\": \"A\", \"type\": \"chat\", \"wait_s\": 61}",
            "wait_s",
        ),
        (
            Method::POST,
            "/v1/orgs/acme/calls",
            "{\"id\": \"\", \"agent\": \"A\", \"type\": \"chat\"}",
            "id",
        ),
        (Method::GET, "/v1/orgs/acme/calls?state=bogus", "", "state"),
        (Method::GET, "/v1/orgs/acme/calls?color=red", "", "color"),
        (Method::GET, "/v1/orgs/acme/calls?limit=0", "", "limit"),
    ];
    for (m, path, body, field) in cases {
        let body = (!body.is_empty()).then(|| body.to_string());
        let (s, v) = app.raw(m.clone(), path, Some(OP), body).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{path}: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{path}: {message:?} should name {field}"
        );
    }
    let big = format!(
        "{{\"id\": \"x\", \"limit\": 1, \"pad\": \"{}\"}}",
        "x".repeat(70_000)
    );
    let (s, _) = app.raw(Method::POST, "/v1/orgs", Some(OP), Some(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, after) = app.op(Method::GET, "/v1/orgs/acme", Value::Null).await;
    assert_eq!(before, after);
    let (_, v) = app.op(Method::GET, "/v1/orgs", Value::Null).await;
    assert_eq!(v["orgs"].as_array().unwrap().len(), 1, "no org was created");
}

#[tokio::test]
async fn events_are_listed_and_long_polled() {
    let app = app();
    app.org(1).await;
    app.acquire("a1", "A", "chat").await;
    let (s, v) = app
        .op(Method::GET, "/v1/orgs/acme/events", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["org.created", "call.admitted"]);
    assert_eq!(v["events"][0]["by"], "operator");
    let next = v["next"].as_u64().unwrap();
    assert_eq!(next, 2);

    let router = app.router.clone();
    let poll = tokio::spawn(async move {
        let req = Request::get(format!("/v1/orgs/acme/events?after={next}&wait_s=30"))
            .header("authorization", format!("Bearer {OP}"))
            .body(Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        serde_json::from_slice::<Value>(&resp.into_body().collect().await.unwrap().to_bytes())
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.op(Method::PUT, "/v1/orgs/acme/limit", json!({"limit": 3}))
        .await;
    let v = poll.await.unwrap();
    assert_eq!(v["events"][0]["type"], "org.limit_changed", "{v}");
    assert_eq!(
        (v["events"][0]["old"].clone(), v["events"][0]["new"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(v["next"], 3);
}

#[tokio::test]
async fn the_event_stream_replays_and_follows() {
    let app = app();
    app.org(1).await;
    let req = Request::get("/v1/orgs/acme/events/stream?after=0")
        .header("authorization", format!("Bearer {OP}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.contains("event: org.created") && text.contains("id: 1"),
        "{text}"
    );
    app.acquire("a1", "A", "chat").await;
    let next = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&next).contains("event: call.admitted"));

    // A reconnecting client resumes after the last id it saw.
    let req = Request::get("/v1/orgs/acme/events/stream")
        .header("authorization", format!("Bearer {OP}"))
        .header("last-event-id", "1")
        .body(Body::empty())
        .unwrap();
    let mut body = app.router.clone().oneshot(req).await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.contains("id: 2") && text.contains("event: call.admitted"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_ask_for_the_operator_key() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        operator_key: Some(OP.into()),
        ended_retention: Duration::from_secs(60),
        event_retention: Duration::from_secs(60),
        queue_cap: 10,
        metrics_auth: true,
    };
    let app = start(dir, settings);
    app.org(1).await;
    let admin = app.key("admin").await;
    assert_eq!(
        app.raw(Method::GET, "/metrics", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.raw(Method::GET, "/metrics", Some(&admin), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = app.raw(Method::GET, "/metrics", Some(OP), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v
        .as_str()
        .unwrap()
        .contains("slotgate_org_limit{org=\"acme\"} 1"));
}

#[tokio::test]
async fn health_metrics_openapi_and_unknown_routes() {
    let app = app();
    app.org(2).await;
    app.acquire("a1", "A", "chat").await;
    let (s, _) = app.raw(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app.raw(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    for line in [
        "slotgate_org_limit{org=\"acme\"} 2",
        "slotgate_agent_active{org=\"acme\",agent=\"A\",type=\"chat\"} 1",
        "slotgate_admissions_total{org=\"acme\",slot=\"shared\"} 1",
        "slotgate_queue_wait_seconds_count{org=\"acme\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let (s, v) = app.op(Method::GET, "/v1/openapi.json", Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/orgs",
        "/v1/orgs/{org}/calls",
        "/v1/orgs/{org}/calls/{id}/heartbeat",
        "/v1/orgs/{org}/events/stream",
    ] {
        assert!(v["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    let (s, v) = app.op(Method::GET, "/v1/nothing-here", Value::Null).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, v) = app.raw(Method::GET, "/", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_str().unwrap().contains("<html"));
}

/// The published document is complete: every `/v1` operation declares its
/// path parameters (with the id pattern), needs the key, and answers its
/// errors with the error body; `/healthz` and `/metrics` need no key.
#[tokio::test]
async fn openapi_declares_path_parameters_errors_and_public_routes() {
    let app = app();
    let (s, doc) = app.op(Method::GET, "/v1/openapi.json", Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    let id_pattern = "^[A-Za-z0-9._:-]{1,128}$";
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            if ["/healthz", "/metrics", "/v1/openapi.json"].contains(&path.as_str()) {
                assert_eq!(op["security"], json!([]), "{at} needs no key");
                continue;
            }
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            let mut errors = vec!["400", "401", "503"];
            if path.contains("{org}") {
                errors.push("404");
            }
            if op.get("requestBody").is_some() {
                errors.push("413");
            }
            for status in errors {
                assert!(responses.contains_key(status), "{at} lacks {status}");
            }
            for (status, response) in responses {
                if status.as_str() >= "400" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{at} answers {status} without the error body"
                    );
                }
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for name in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                let p = params
                    .iter()
                    .find(|p| p["name"] == name && p["in"] == "path")
                    .unwrap_or_else(|| panic!("{at} does not declare {name}"));
                assert_eq!(p["required"], true, "{at}: {name}");
                assert_eq!(p["schema"]["pattern"], id_pattern, "{at}: {name}");
            }
            let id = op["operationId"].as_str().unwrap();
            assert_eq!(
                paths
                    .values()
                    .flat_map(|i| i.as_object().unwrap().values())
                    .filter(|o| o["operationId"] == id)
                    .count(),
                1,
                "operation id {id} is not unique"
            );
        }
    }
    assert_eq!(operations, 18, "every /v1 operation is published");
    // Operation-specific answers and ranges.
    let op = |path: &str, method: &str| &doc["paths"][path][method];
    let calls = op("/v1/orgs/{org}/calls", "post");
    for status in ["200", "201", "202", "409", "429"] {
        assert!(
            calls["responses"].get(status).is_some(),
            "acquire lacks {status}"
        );
    }
    let heartbeat = op("/v1/orgs/{org}/calls/{id}/heartbeat", "post");
    assert!(heartbeat["responses"].get("410").is_some());
    // Its body may be left out, but is not `null`.
    let body = &heartbeat["requestBody"];
    assert_ne!(body["required"], true);
    assert_eq!(
        body["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Heartbeat"
    );
    assert!(op("/v1/orgs", "post")["responses"].get("403").is_some());
    let events = op("/v1/orgs/{org}/events", "get")["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| events.iter().find(|p| p["name"] == name).unwrap();
    assert_eq!(param("wait_s")["schema"]["maximum"], 60);
    assert_eq!(param("limit")["schema"]["maximum"], 10000);
    assert_eq!(param("after")["schema"]["minimum"], 0);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["AcquireCall"]["properties"]["lease_ttl_s"]["minimum"],
        5
    );
    assert_eq!(
        schemas["CreateOrg"]["properties"]["limit"]["maximum"],
        1_000_000
    );
    // A reservation request may leave a type out (it means 0).
    assert!(schemas["PerType"].get("required").is_none());
    assert_eq!(
        schemas["Call"]["properties"]["queued_at"]["format"],
        "date-time"
    );
    // Links lead from what an operation made to what can be done with it.
    let link = &calls["responses"]["201"]["links"]["release_call"];
    assert_eq!(link["operationId"], "release_call");
    assert_eq!(link["parameters"]["id"], "$response.body#/id");
    // Every reference resolves.
    let text = doc.to_string();
    for name in text.split("#/components/schemas/").skip(1) {
        let name = name.split('"').next().unwrap();
        assert!(schemas.get(name).is_some(), "dangling reference to {name}");
    }
}

/// A path parameter that is not UTF-8 once decoded is refused in the API's
/// error shape, as the OpenAPI document says (it was axum's plain-text 400).
#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_invalid_request() {
    let app = app();
    app.org(2).await;
    for path in [
        "/v1/orgs/%FF",
        "/v1/orgs/acme/calls/%C3%28",
        "/v1/orgs/acme/agents/%FF/reservations",
    ] {
        let method = if path.ends_with("reservations") {
            Method::DELETE
        } else {
            Method::GET
        };
        let (s, v) = app.op(method, path, Value::Null).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{path}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("path: "),
            "{v}"
        );
    }
}

// The security headers (issue 12, item 16): the dashboard's page and assets
// run under a Content-Security-Policy that allows only their own script, style
// and API and forbids framing; every answer is `nosniff` and `no-referrer`;
// API answers are `no-store`.

impl App {
    /// The status and headers of `GET path` (with `key`).
    async fn get_headers(&self, path: &str, key: Option<&str>) -> (StatusCode, HeaderMap) {
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
    let (status, h) = app.get_headers("/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert_page_policy(&h);
}

#[tokio::test]
async fn the_assets_run_under_the_same_policy_and_are_not_sniffed() {
    let app = app();
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let (status, h) = app.get_headers(&format!("/assets/{file}"), None).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert!(header(&h, "content-type").starts_with(kind), "{file}");
        assert_page_policy(&h);
    }
    // An unknown asset is refused with the same headers.
    let (status, h) = app.get_headers("/assets/nope.js", None).await;
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
        let (status, h) = app.get_headers(path, key).await;
        assert_eq!(status, want, "{path}");
        assert_eq!(header(&h, "cache-control"), "no-store", "{path}");
        assert_common(&h);
    }
}

#[tokio::test]
async fn the_page_itself_may_be_revalidated() {
    // `no-store` is for API answers; the dashboard's files keep their own caching.
    let app = app();
    let (_, h) = app.get_headers("/assets/app.js", None).await;
    assert_eq!(header(&h, "cache-control"), "no-cache");
}
