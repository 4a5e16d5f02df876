//! End to end: the real `slotgate serve` binary on a free port with a fresh
//! data directory, driven over HTTP as a user would; killed with -9 and
//! restarted where durability is the point.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Api, Server, OP};
use reqwest::Method;
use serde_json::{json, Value};

async fn acquire(api: &Api, org: &str, id: &str, agent: &str, t: &str) -> (u16, Value) {
    api.op(
        Method::POST,
        &format!("/orgs/{org}/calls"),
        Some(json!({"id": id, "agent": agent, "type": t})),
    )
    .await
}

async fn org(api: &Api, org: &str) -> Value {
    api.op(Method::GET, &format!("/orgs/{org}"), None).await.1
}

fn nums(v: &Value, keys: &[&str]) -> Vec<u64> {
    keys.iter().map(|k| v[*k].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_walk_through_over_http() {
    let s = Server::start().await;
    let api = s.api();
    api.op(
        Method::POST,
        "/orgs",
        Some(json!({"id": "acme", "limit": 20})),
    )
    .await;
    let put = |agent: &'static str, r: Value| {
        let api = api.clone();
        async move {
            api.op(
                Method::PUT,
                &format!("/orgs/acme/agents/{agent}/reservations"),
                Some(r),
            )
            .await
        }
    };
    assert_eq!(
        put(
            "A",
            json!({"webcall": 2, "chat": 3, "outbound": 4, "inbound": 3})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        put(
            "B",
            json!({"webcall": 1, "chat": 1, "outbound": 2, "inbound": 1})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        nums(&org(&api, "acme").await, &["reserved", "shared"]),
        [17, 3]
    );

    // 1. A's 12 calls matching its reservation: all reserved.
    let mut n = 0;
    for (t, count) in [("webcall", 2), ("chat", 3), ("outbound", 4), ("inbound", 3)] {
        for _ in 0..count {
            n += 1;
            let (status, call) = acquire(&api, "acme", &format!("a{n}"), "A", t).await;
            assert_eq!(
                (status, call["slot"].as_str()),
                (201, Some("reserved")),
                "a{n}"
            );
        }
    }
    assert_eq!(
        nums(&org(&api, "acme").await, &["active", "shared_in_use"]),
        [12, 0]
    );
    // 2. Three more: shared.
    for i in 13..=15 {
        let (status, call) = acquire(&api, "acme", &format!("a{i}"), "A", "inbound").await;
        assert_eq!((status, call["slot"].as_str()), (201, Some("shared")));
    }
    assert_eq!(
        nums(&org(&api, "acme").await, &["active", "shared_in_use"]),
        [15, 3]
    );
    // 3. B's five: reserved although shared is full.
    for (i, t) in ["webcall", "chat", "outbound", "outbound", "inbound"]
        .iter()
        .enumerate()
    {
        let (status, call) = acquire(&api, "acme", &format!("b{}", i + 1), "B", t).await;
        assert_eq!((status, call["slot"].as_str()), (201, Some("reserved")));
    }
    // 4. The org is full: A, B and C queue.
    for (i, (id, agent, t)) in [
        ("c1", "C", "chat"),
        ("a16", "A", "chat"),
        ("b6", "B", "webcall"),
    ]
    .iter()
    .enumerate()
    {
        let (status, call) = acquire(&api, "acme", id, agent, t).await;
        assert_eq!(
            (status, call["position"].as_u64()),
            (202, Some(i as u64 + 1))
        );
    }
    assert_eq!(
        nums(&org(&api, "acme").await, &["active", "queued"]),
        [20, 3]
    );
    // 5. An A call above its inbound reservation ends: the oldest of the org gets the shared slot...
    api.op(Method::DELETE, "/orgs/acme/calls/a13", None).await;
    assert_eq!(
        api.op(Method::GET, "/orgs/acme/calls/c1", None).await.1["slot"],
        "shared"
    );
    // ... and one of A's reserved chat calls: only A's queued chat call may take it.
    api.op(Method::DELETE, "/orgs/acme/calls/a3", None).await;
    assert_eq!(
        api.op(Method::GET, "/orgs/acme/calls/a16", None).await.1["slot"],
        "reserved"
    );
    assert_eq!(
        api.op(Method::GET, "/orgs/acme/calls/b6", None).await.1["position"],
        1
    );
    // 6. B idle with 5 free reserved slots, shared full: C queues.
    api.op(Method::DELETE, "/orgs/acme/calls/b6", None).await;
    for i in 1..=5 {
        api.op(Method::DELETE, &format!("/orgs/acme/calls/b{i}"), None)
            .await;
    }
    let (status, _) = acquire(&api, "acme", "c2", "C", "chat").await;
    assert_eq!(status, 202);
    assert_eq!(
        nums(
            &org(&api, "acme").await,
            &["active", "queued", "shared_in_use"]
        ),
        [15, 1, 3]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_expiry_hands_the_slot_to_a_long_polling_waiter() {
    let s = Server::start().await;
    let api = s.api();
    api.op(
        Method::POST,
        "/orgs",
        Some(json!({"id": "acme", "limit": 1})),
    )
    .await;
    let (status, _) = api
        .op(
            Method::POST,
            "/orgs/acme/calls",
            Some(json!({"id": "a1", "agent": "A", "type": "chat", "lease_ttl_s": 5})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(acquire(&api, "acme", "q1", "B", "chat").await.0, 202);
    // Nobody heartbeats a1; q1's long-poll holds it and returns once it is admitted.
    let (status, call) = api
        .op(Method::GET, "/orgs/acme/calls/q1?wait_s=20", None)
        .await;
    assert_eq!((status, call["state"].as_str()), (200, Some("active")));
    let (_, a1) = api.op(Method::GET, "/orgs/acme/calls/a1", None).await;
    assert_eq!(a1["end_reason"], "expired");
    let (status, body) = api
        .op(Method::POST, "/orgs/acme/calls/a1/heartbeat", None)
        .await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["call"]["id"].as_str()
        ),
        (410, Some("call_ended"), Some("a1"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_is_woken_by_a_release() {
    let s = Server::start().await;
    let api = s.api();
    api.op(
        Method::POST,
        "/orgs",
        Some(json!({"id": "acme", "limit": 1})),
    )
    .await;
    acquire(&api, "acme", "a1", "A", "chat").await;
    let waiter = {
        let api = api.clone();
        tokio::spawn(async move {
            api.op(
                Method::POST,
                "/orgs/acme/calls",
                Some(json!({"id": "q1", "agent": "B", "type": "chat", "wait_s": 30})),
            )
            .await
        })
    };
    while api.op(Method::GET, "/orgs/acme/calls/q1", None).await.0 != 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    api.op(Method::DELETE, "/orgs/acme/calls/a1", None).await;
    let (status, call) = waiter.await.unwrap();
    assert_eq!((status, call["state"].as_str()), (201, Some("active")));
}

/// What the clients were told, and what they sent without hearing back.
#[derive(Default)]
struct Ledger {
    /// Every call id ever sent.
    sent: HashSet<String>,
    /// Acquires answered 2xx.
    acquired: HashSet<String>,
    /// Releases sent (answered or not), and those answered.
    release_sent: HashSet<String>,
    released: HashSet<String>,
    /// Reservation values of agent `r` in the order sent: (chat value, answered).
    reservations: Vec<(u64, bool)>,
    /// Limits in the order sent: (limit, answered).
    limits: Vec<(u64, bool)>,
}

/// The value that must be stored: the last acknowledged one, or any value sent after it.
fn allowed(history: &[(u64, bool)], initial: u64) -> Vec<u64> {
    let last_ack = history.iter().rposition(|(_, ok)| *ok);
    let mut ok = vec![last_ack.map_or(initial, |i| history[i].0)];
    ok.extend(
        history[last_ack.map_or(0, |i| i + 1)..]
            .iter()
            .map(|(v, _)| *v),
    );
    ok
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_a_stream_of_requests_loses_no_acknowledged_change() {
    let mut s = Server::start().await;
    let api = s.api();
    api.op(
        Method::POST,
        "/orgs",
        Some(json!({"id": "acme", "limit": 8})),
    )
    .await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut tasks = Vec::new();
    for task in 0..4 {
        let (api, ledger) = (api.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("t{task}-{i}");
                ledger.lock().unwrap().sent.insert(id.clone());
                let body = json!({"id": id, "agent": format!("agent{task}"), "type": "chat"});
                match api
                    .send(Some(OP), Method::POST, "/orgs/acme/calls", Some(body))
                    .await
                {
                    Ok((200..=299, _)) => ledger.lock().unwrap().acquired.insert(id.clone()),
                    _ => return,
                };
                if i % 2 == 0 {
                    ledger.lock().unwrap().release_sent.insert(id.clone());
                    match api
                        .send(
                            Some(OP),
                            Method::DELETE,
                            &format!("/orgs/acme/calls/{id}"),
                            None,
                        )
                        .await
                    {
                        Ok((200, _)) => ledger.lock().unwrap().released.insert(id),
                        _ => return,
                    };
                }
            }
        }));
    }
    {
        let (api, ledger) = (api.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let chat = i % 3;
                ledger.lock().unwrap().reservations.push((chat, false));
                let r = api
                    .send(
                        Some(OP),
                        Method::PUT,
                        "/orgs/acme/agents/r/reservations",
                        Some(json!({"chat": chat})),
                    )
                    .await;
                match r {
                    Ok((200, _)) => {
                        ledger.lock().unwrap().reservations.last_mut().unwrap().1 = true
                    }
                    _ => return,
                }
                let limit = 8 + i % 5;
                ledger.lock().unwrap().limits.push((limit, false));
                match api
                    .send(
                        Some(OP),
                        Method::PUT,
                        "/orgs/acme/limit",
                        Some(json!({"limit": limit})),
                    )
                    .await
                {
                    Ok((200, _)) => ledger.lock().unwrap().limits.last_mut().unwrap().1 = true,
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.kill9_and_restart().await;
    for t in tasks {
        t.await.unwrap();
    }
    // Every task has ended: the ledger is final; take it out of its lock.
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        ledger.acquired.len() > 20,
        "the stream was running: {} acquires answered",
        ledger.acquired.len()
    );

    let api = s.api();
    for id in &ledger.acquired {
        let (status, call) = api
            .op(Method::GET, &format!("/orgs/acme/calls/{id}"), None)
            .await;
        assert_eq!(status, 200, "acknowledged call {id} is there");
        if ledger.released.contains(id) {
            assert_eq!(call["state"], "ended", "acknowledged release of {id}");
        } else if !ledger.release_sent.contains(id) {
            assert_ne!(call["state"], "ended", "{id} was never released: {call}");
        }
    }
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = api
            .op(
                Method::GET,
                &format!("/orgs/acme/calls?limit=500{cursor}"),
                None,
            )
            .await;
        listed.extend(page["calls"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    for c in &listed {
        assert!(
            ledger.sent.contains(c["id"].as_str().unwrap()),
            "a call nobody sent: {c}"
        );
    }
    let snapshot = org(&api, "acme").await;
    let active = listed.iter().filter(|c| c["state"] == "active").count() as u64;
    let queued: Vec<u64> = listed
        .iter()
        .filter(|c| c["state"] == "queued")
        .map(|c| c["position"].as_u64().unwrap())
        .collect();
    assert_eq!(
        nums(&snapshot, &["active", "queued"]),
        [active, queued.len() as u64]
    );
    assert_eq!(
        queued,
        (1..=queued.len() as u64).collect::<Vec<_>>(),
        "positions are 1..n in order"
    );
    let (_, r) = api.op(Method::GET, "/orgs/acme/agents/r", None).await;
    let chat = r["reserved"]["chat"].as_u64().unwrap();
    assert!(
        allowed(&ledger.reservations, 0).contains(&chat),
        "reservation {chat} vs {:?}",
        ledger.reservations
    );
    let limit = snapshot["limit"].as_u64().unwrap();
    assert!(
        allowed(&ledger.limits, 8).contains(&limit),
        "limit {limit} vs {:?}",
        ledger.limits
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_matrix() {
    let s = Server::start().await;
    let api = s.api();
    for o in ["acme", "other"] {
        api.op(Method::POST, "/orgs", Some(json!({"id": o, "limit": 5})))
            .await;
    }
    let key = |role: &'static str| {
        let api = api.clone();
        async move {
            let (_, k) = api
                .op(
                    Method::POST,
                    "/orgs/acme/keys",
                    Some(json!({"role": role, "name": role})),
                )
                .await;
            k["key"].as_str().unwrap().to_string()
        }
    };
    let (admin, runtime) = (key("admin").await, key("runtime").await);
    let code = |r: (u16, Value)| (r.0, r.1["error"]["code"].as_str().unwrap_or("").to_string());
    let send = |k: Option<String>, m: Method, p: &'static str, b: Option<Value>| {
        let api = api.clone();
        async move { code(api.send(k.as_deref(), m, p, b).await.unwrap()) }
    };
    type Case = (
        Option<String>,
        Method,
        &'static str,
        Option<Value>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (None, Method::GET, "/orgs/acme", None, 401, "unauthorized"),
        (
            Some("sgk_bad_key".into()),
            Method::GET,
            "/orgs/acme",
            None,
            401,
            "unauthorized",
        ),
        (
            Some(runtime.clone()),
            Method::GET,
            "/orgs/other",
            None,
            404,
            "org_not_found",
        ),
        (
            Some(admin.clone()),
            Method::PUT,
            "/orgs/other/agents/a/reservations",
            Some(json!({"chat": 1})),
            404,
            "org_not_found",
        ),
        (
            Some(runtime.clone()),
            Method::PUT,
            "/orgs/acme/agents/a/reservations",
            Some(json!({"chat": 1})),
            403,
            "forbidden",
        ),
        (
            Some(runtime.clone()),
            Method::POST,
            "/orgs/acme/keys",
            Some(json!({"role": "admin", "name": "x"})),
            403,
            "forbidden",
        ),
        (
            Some(admin.clone()),
            Method::PUT,
            "/orgs/acme/limit",
            Some(json!({"limit": 9})),
            403,
            "forbidden",
        ),
        (
            Some(admin.clone()),
            Method::GET,
            "/orgs",
            None,
            403,
            "forbidden",
        ),
        (
            Some(admin.clone()),
            Method::PUT,
            "/orgs/acme/agents/a/reservations",
            Some(json!({"chat": 1})),
            200,
            "",
        ),
        (
            Some(runtime.clone()),
            Method::POST,
            "/orgs/acme/calls",
            Some(json!({"agent": "a", "type": "chat"})),
            201,
            "",
        ),
        (
            Some(runtime.clone()),
            Method::GET,
            "/orgs/acme",
            None,
            200,
            "",
        ),
        (
            Some(OP.into()),
            Method::PUT,
            "/orgs/other/limit",
            Some(json!({"limit": 9})),
            200,
            "",
        ),
    ];
    for (k, m, p, b, status, err) in cases {
        let who = k
            .as_deref()
            .map_or("no key".to_string(), |k| k.chars().take(12).collect());
        assert_eq!(
            send(k, m.clone(), p, b).await,
            (status, err.to_string()),
            "{who} {m} {p}"
        );
    }
    // Another org looks exactly like a missing one.
    let hidden = api
        .send(Some(&runtime), Method::GET, "/orgs/other", None)
        .await
        .unwrap();
    let missing = api
        .send(Some(&runtime), Method::GET, "/orgs/nowhere", None)
        .await
        .unwrap();
    assert_eq!(hidden, missing);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_get_400_naming_the_field_and_change_nothing() {
    let s = Server::start().await;
    let api = s.api();
    api.op(
        Method::POST,
        "/orgs",
        Some(json!({"id": "acme", "limit": 5})),
    )
    .await;
    let before = org(&api, "acme").await;
    let raw = |m: Method, p: &'static str, body: &'static str| {
        let api = api.clone();
        async move {
            let resp = api
                .http
                .request(m, format!("{}{p}", api.base))
                .bearer_auth(OP)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let table: &[(Method, &str, &str, &str)] = &[
        (Method::PUT, "/orgs/acme/limit", "{\"limit\": ", "body"),
        (Method::PUT, "/orgs/acme/limit", "{\"limit\": -1}", "limit"),
        (
            Method::PUT,
            "/orgs/acme/limit",
            "{\"limit\": 1000001}",
            "limit",
        ),
        (
            Method::PUT,
            "/orgs/acme/limit",
            "{\"limit\": 5, \"plan\": \"x\"}",
            "plan",
        ),
        (
            Method::PUT,
            "/orgs/acme/agents/a/reservations",
            "{\"chat\": \"2\"}",
            "chat",
        ),
        (
            Method::POST,
            "/orgs/acme/calls",
            "{\"agent\": \"a\", \"type\": \"chat\", \"lease_ttl_s\": 4}",
            "lease_ttl_s",
        ),
        (
            Method::POST,
            "/orgs/acme/calls",
            "{\"agent\": \"a\", \"type\": \"chat\", \"lease_ttl_s\": 3601}",
            "lease_ttl_s",
        ),
        (
            Method::POST,
            "/orgs/acme/calls",
            "{\"agent\": \"a\", \"type\": \"chat\", \"wait_s\": 61}",
            "wait_s",
        ),
        (
            Method::POST,
            "/orgs/acme/calls",
            "{\"agent\": \"a\", \"type\": \"sms\"}",
            "type",
        ),
        (
            Method::POST,
            "/orgs/acme/calls",
            "{\"id\": \"a b\", \"agent\": \"a\", \"type\": \"chat\"}",
            "id",
        ),
        (Method::GET, "/orgs/acme/calls?state=bogus", "", "state"),
        (Method::GET, "/orgs/acme/calls?sort=id", "", "sort"),
    ];
    for (m, p, body, field) in table {
        let (status, v) = raw(m.clone(), p, body).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{p} {body}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{p} {body}: {v}"
        );
    }
    let long_id = format!(
        "{{\"id\": \"{}\", \"agent\": \"a\", \"type\": \"chat\"}}",
        "x".repeat(129)
    );
    let resp = api
        .http
        .post(format!("{}/orgs/acme/calls", api.base))
        .bearer_auth(OP)
        .body(long_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let big = format!("{{\"limit\": 5, \"pad\": \"{}\"}}", "x".repeat(70_000));
    let resp = api
        .http
        .put(format!("{}/orgs/acme/limit", api.base))
        .bearer_auth(OP)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(org(&api, "acme").await, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_server_per_data_directory_and_sigterm_keeps_everything() {
    let mut s = Server::start().await;
    let api = s.api();
    api.op(
        Method::POST,
        "/orgs",
        Some(json!({"id": "acme", "limit": 3})),
    )
    .await;
    acquire(&api, "acme", "a1", "A", "chat").await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(s.data_dir())
        .env("SLOTGATE_OPERATOR_KEY", OP)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&s.data_dir().display().to_string()) && err.contains(&s.pid().to_string()),
        "{err}"
    );

    let status = s.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    s.restart().await;
    let api = s.api();
    assert_eq!(nums(&org(&api, "acme").await, &["limit", "active"]), [3, 1]);
    let mut seen = HashMap::new();
    for c in api.op(Method::GET, "/orgs/acme/calls", None).await.1["calls"]
        .as_array()
        .unwrap()
    {
        seen.insert(
            c["id"].as_str().unwrap().to_string(),
            c["state"].as_str().unwrap().to_string(),
        );
    }
    assert_eq!(seen.get("a1").map(String::as_str), Some("active"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_whose_client_hangs_up_stops_holding_the_call() {
    let s = Server::start().await;
    let api = s.api();
    api.op(
        Method::POST,
        "/orgs",
        Some(json!({"id": "acme", "limit": 0})),
    )
    .await;
    // The client gives up after 1 s on a wait of 30 s: its connection closes mid-wait.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let body = json!({"id": "q1", "agent": "A", "type": "chat", "lease_ttl_s": 5, "wait_s": 30});
    let r = impatient
        .post(format!("{}/orgs/acme/calls", api.base))
        .bearer_auth(OP)
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "the client timed out");
    let (_, q1) = api.op(Method::GET, "/orgs/acme/calls/q1", None).await;
    assert_eq!(q1["state"], "queued");

    // Nobody holds it once the wait is over (or the server sees the hang-up):
    // it is abandoned one lease_ttl later, not held forever.
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    loop {
        let (_, q1) = api.op(Method::GET, "/orgs/acme/calls/q1", None).await;
        if q1["state"] == "ended" {
            assert_eq!(q1["end_reason"], "abandoned");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {q1}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
