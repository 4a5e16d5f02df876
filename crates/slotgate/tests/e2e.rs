//! End to end: the real `slotgate serve` binary on a free port with a fresh
//! data directory, driven over HTTP as a user would (see `support/mod.rs`).
//! Killed with -9, or stopped with SIGTERM, and restarted where durability is
//! the point. No assertion depends on wall-clock timing; waits are generous.

mod support;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::{Server, OPERATOR_KEY};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Creates an org (operator); it must answer 201.
async fn create_org(s: &Server, id: &str, limit: u32) -> Value {
    let (status, body) = s
        .call(
            Method::POST,
            "/orgs",
            Some(&json!({"id": id, "limit": limit})),
        )
        .await;
    assert_eq!(status, 201, "create org {id}: {body}");
    body
}

/// Sets an agent's reservations (operator); it must answer 200.
async fn reserve(s: &Server, org: &str, agent: &str, r: Value) -> Value {
    let (status, body) = s
        .call(
            Method::PUT,
            &format!("/orgs/{org}/agents/{agent}/reservations"),
            Some(&r),
        )
        .await;
    assert_eq!(status, 200, "reserve {agent} {r}: {body}");
    body
}

/// `POST /orgs/{org}/calls` with the operator key.
async fn acquire(s: &Server, org: &str, id: &str, agent: &str, t: &str) -> (u16, Value) {
    s.call(
        Method::POST,
        &format!("/orgs/{org}/calls"),
        Some(&json!({"id": id, "agent": agent, "type": t})),
    )
    .await
}

/// `DELETE /orgs/{org}/calls/{id}`; it must answer 200.
async fn release(s: &Server, org: &str, id: &str) -> Value {
    let (status, body) = s
        .call(Method::DELETE, &format!("/orgs/{org}/calls/{id}"), None)
        .await;
    assert_eq!(status, 200, "release {id}: {body}");
    body
}

async fn get_call(s: &Server, org: &str, id: &str) -> Value {
    s.get_ok(&format!("/orgs/{org}/calls/{id}")).await
}

async fn org(s: &Server, org: &str) -> Value {
    s.get_ok(&format!("/orgs/{org}")).await
}

/// The org snapshot's numbers, by name.
fn nums(v: &Value, keys: &[&str]) -> Vec<u64> {
    keys.iter()
        .map(|k| {
            v[*k]
                .as_u64()
                .unwrap_or_else(|| panic!("{k} is a number in {v}"))
        })
        .collect()
}

/// `[active, queued, shared_in_use]` of an org snapshot.
fn load(v: &Value) -> Vec<u64> {
    nums(v, &["active", "queued", "shared_in_use"])
}

/// The error code of an error answer (empty when none).
fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// `(status, state, slot, position)` of a call answer.
fn brief(r: &(u16, Value)) -> (u16, &str, Option<&str>, Option<u64>) {
    (
        r.0,
        r.1["state"].as_str().unwrap_or("?"),
        r.1["slot"].as_str(),
        r.1["position"].as_u64(),
    )
}

/// Every live call of an org (all pages), in the list's order: active, then queued in queue order.
async fn all_calls(s: &Server, org: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .get_ok(&format!("/orgs/{org}/calls?limit=50{cursor}"))
            .await;
        out.extend(page["calls"].as_array().expect("calls").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// The queued calls' ids of an org, in queue order, with their positions.
async fn queue(s: &Server, org: &str) -> Vec<(String, u64)> {
    s.get_ok(&format!("/orgs/{org}/calls?state=queued")).await["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["position"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn q(ids: &[&str]) -> Vec<(String, u64)> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), i as u64 + 1))
        .collect()
}

/// Polls a condition (every 50 ms, at most `secs`), panicking with `what` if it never holds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
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

// ---------------------------------------------------------------------------
// 1. The seed scenario of SEMANTICS.md
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn seed_scenario_walk_through_over_http() {
    let s = Server::start().await;
    create_org(&s, "acme", 20).await;
    let a = reserve(
        &s,
        "acme",
        "A",
        json!({"webcall": 2, "chat": 3, "outbound": 4, "inbound": 3}),
    )
    .await;
    assert_eq!(a["reserved_total"], 12);
    let b = reserve(
        &s,
        "acme",
        "B",
        json!({"webcall": 1, "chat": 1, "outbound": 2, "inbound": 1}),
    )
    .await;
    assert_eq!(b["reserved_total"], 5);
    let snap = org(&s, "acme").await;
    assert_eq!(
        nums(
            &snap,
            &[
                "limit",
                "reserved",
                "shared",
                "active",
                "queued",
                "shared_in_use"
            ]
        ),
        [20, 17, 3, 0, 0, 0]
    );

    // 1. A's 12 calls, one per reserved slot of their type: all reserved.
    //    a1-a2 webcall, a3-a5 chat, a6-a9 outbound, a10-a12 inbound.
    let mut n = 0;
    for (t, count) in [("webcall", 2), ("chat", 3), ("outbound", 4), ("inbound", 3)] {
        for _ in 0..count {
            n += 1;
            let r = acquire(&s, "acme", &format!("a{n}"), "A", t).await;
            assert_eq!(
                brief(&r),
                (201, "active", Some("reserved"), None),
                "a{n}: {}",
                r.1
            );
        }
    }
    assert_eq!(load(&org(&s, "acme").await), [12, 0, 0], "step 1");

    // 2. Three more inbound calls of A: shared.
    for i in 13..=15 {
        let r = acquire(&s, "acme", &format!("a{i}"), "A", "inbound").await;
        assert_eq!(
            brief(&r),
            (201, "active", Some("shared"), None),
            "a{i}: {}",
            r.1
        );
    }
    let snap = org(&s, "acme").await;
    assert_eq!(load(&snap), [15, 0, 3], "step 2");
    let a = s.get_ok("/orgs/acme/agents/A").await;
    assert_eq!(
        nums(&a, &["reserved_total", "reserved_in_use", "shared_in_use"]),
        [12, 12, 3]
    );
    assert_eq!(
        a["active"],
        json!({"webcall": 2, "chat": 3, "outbound": 4, "inbound": 6})
    );

    // 3. B's five calls matching its reservation: reserved, although shared is full.
    for (i, t) in ["webcall", "chat", "outbound", "outbound", "inbound"]
        .iter()
        .enumerate()
    {
        let r = acquire(&s, "acme", &format!("b{}", i + 1), "B", t).await;
        assert_eq!(
            brief(&r),
            (201, "active", Some("reserved"), None),
            "b{}: {}",
            i + 1,
            r.1
        );
    }
    assert_eq!(load(&org(&s, "acme").await), [20, 0, 3], "step 3");

    // 4. The org is at 20: any further call of A, B or C queues.
    for (i, (id, agent, t)) in [
        ("c1", "C", "chat"),
        ("b6", "B", "webcall"),
        ("a16", "A", "chat"),
        ("a17", "A", "chat"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = acquire(&s, "acme", id, agent, t).await;
        assert_eq!(
            brief(&r),
            (202, "queued", None, Some(i as u64 + 1)),
            "{id}: {}",
            r.1
        );
    }
    assert_eq!(load(&org(&s, "acme").await), [20, 4, 3], "step 4");
    assert_eq!(
        queue(&s, "acme").await,
        q(&["c1", "b6", "a16", "a17"]),
        "step 4"
    );

    // 5. An inbound call of A above its reservation ends (6 active, 3 reserved):
    //    the shared slot goes to the oldest queued call of the org, C's.
    let ended = release(&s, "acme", "a13").await;
    assert_eq!(
        (&ended["state"], &ended["end_reason"]),
        (&json!("ended"), &json!("released"))
    );
    let c1 = get_call(&s, "acme", "c1").await;
    assert_eq!(
        (&c1["state"], &c1["slot"]),
        (&json!("active"), &json!("shared")),
        "{c1}"
    );
    assert_eq!(load(&org(&s, "acme").await), [20, 3, 3], "step 5");
    assert_eq!(queue(&s, "acme").await, q(&["b6", "a16", "a17"]), "step 5");

    //    One of A's reserved chat calls ends (3 active, 3 reserved): only the
    //    oldest queued call of (A, chat) may take it, not the older b6.
    release(&s, "acme", "a4").await;
    let a16 = get_call(&s, "acme", "a16").await;
    assert_eq!(
        (&a16["state"], &a16["slot"]),
        (&json!("active"), &json!("reserved")),
        "{a16}"
    );
    assert_eq!(load(&org(&s, "acme").await), [20, 2, 3], "step 5b");
    assert_eq!(queue(&s, "acme").await, q(&["b6", "a17"]), "step 5b");

    // 6. B goes idle (its queued call cancelled, its five released): five free
    //    reserved slots, shared full. C's next call queues; B's slots stay B's.
    let b6 = release(&s, "acme", "b6").await;
    assert_eq!(b6["end_reason"], "cancelled", "{b6}");
    for i in 1..=5 {
        release(&s, "acme", &format!("b{i}")).await;
    }
    assert_eq!(load(&org(&s, "acme").await), [15, 1, 3], "B idle");
    let r = acquire(&s, "acme", "c2", "C", "chat").await;
    assert_eq!(brief(&r), (202, "queued", None, Some(2)), "c2: {}", r.1);
    let snap = org(&s, "acme").await;
    assert_eq!(
        nums(
            &snap,
            &[
                "limit",
                "reserved",
                "shared",
                "active",
                "queued",
                "shared_in_use"
            ]
        ),
        [20, 17, 3, 15, 2, 3],
        "step 6: {snap}"
    );
    assert_eq!(queue(&s, "acme").await, q(&["a17", "c2"]), "step 6");
    let b = s.get_ok("/orgs/acme/agents/B").await;
    assert_eq!(
        nums(&b, &["reserved_total", "reserved_in_use", "shared_in_use"]),
        [5, 0, 0],
        "{b}"
    );
    let agents: Vec<&str> = snap["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    for id in ["A", "B", "C"] {
        assert!(agents.contains(&id), "{id} is listed: {snap}");
    }
}

// ---------------------------------------------------------------------------
// 2. Lease expiry hands the slot to a long-polling waiter
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn lease_expiry_hands_the_slot_to_a_long_polling_waiter() {
    let s = Server::start().await;
    create_org(&s, "acme", 1).await;
    let r = s
        .call(
            Method::POST,
            "/orgs/acme/calls",
            Some(&json!({"id": "a1", "agent": "A", "type": "chat", "lease_ttl_s": 5})),
        )
        .await;
    assert_eq!(brief(&r).0, 201, "{}", r.1);
    assert_eq!(r.1["state"], "active");
    let r = acquire(&s, "acme", "q1", "B", "chat").await;
    assert_eq!(brief(&r), (202, "queued", None, Some(1)), "{}", r.1);

    // Nobody heartbeats a1. q1's long-poll holds it and returns once it is admitted.
    let (status, q1) = s
        .call(Method::GET, "/orgs/acme/calls/q1?wait_s=20", None)
        .await;
    assert_eq!(status, 200, "{q1}");
    assert_eq!(
        (&q1["state"], &q1["slot"], &q1["position"]),
        (&json!("active"), &json!("shared"), &Value::Null),
        "the long-poll returns q1 admitted: {q1}"
    );

    let a1 = get_call(&s, "acme", "a1").await;
    assert_eq!(
        (&a1["state"], &a1["end_reason"]),
        (&json!("ended"), &json!("expired")),
        "{a1}"
    );
    let (status, body) = s
        .call(Method::POST, "/orgs/acme/calls/a1/heartbeat", None)
        .await;
    assert_eq!((status, code(&body)), (410, "call_ended"), "{body}");
    let call = &body["error"]["call"];
    assert_eq!(call["id"], "a1", "{body}");
    assert_eq!(call["state"], "ended", "{body}");
    assert_eq!(call["end_reason"], "expired", "{body}");
    assert!(
        body.get("call").is_none(),
        "the call sits inside `error` only: {body}"
    );
    assert_eq!(load(&org(&s, "acme").await), [1, 0, 1]);
}

// ---------------------------------------------------------------------------
// 3. A long-poll woken by a release
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_acquire_long_poll_is_woken_by_a_release() {
    let s = Arc::new(Server::start().await);
    create_org(&s, "acme", 1).await;
    let r = acquire(&s, "acme", "a1", "A", "chat").await;
    assert_eq!(brief(&r).0, 201, "{}", r.1);

    let waiter = {
        let s = s.clone();
        tokio::spawn(async move {
            s.call(
                Method::POST,
                "/orgs/acme/calls",
                Some(&json!({"id": "q1", "agent": "B", "type": "chat", "wait_s": 30})),
            )
            .await
        })
    };
    // q1 is queued (its acquire is waiting) before a1 is released.
    eventually(20, "q1 is queued", || {
        let s = s.clone();
        async move {
            let (status, c) = s.call(Method::GET, "/orgs/acme/calls/q1", None).await;
            status == 200 && c["state"] == "queued"
        }
    })
    .await;
    release(&s, "acme", "a1").await;

    let r = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("the long-poll returns")
        .expect("the waiter task");
    assert_eq!(
        brief(&r),
        (201, "active", Some("shared"), None),
        "the acquire returns q1 admitted: {}",
        r.1
    );
    assert_eq!(get_call(&s, "acme", "a1").await["end_reason"], "released");
}

// ---------------------------------------------------------------------------
// 4. kill -9 in the middle of a stream of requests
// ---------------------------------------------------------------------------

/// What the clients sent and what they were told.
#[derive(Default)]
struct Ledger {
    /// Every call id ever sent in an acquire.
    sent: HashSet<String>,
    /// Acquires answered 2xx, with the state answered.
    acquired: HashMap<String, String>,
    /// Releases sent (answered or not).
    release_sent: HashSet<String>,
    /// Releases answered 200.
    released: HashSet<String>,
    /// Per call task, the next id it would have sent (never sent).
    unsent: Vec<String>,
    /// Per agent, the chat reservations in the order sent, and whether answered 200.
    reservations: HashMap<String, Vec<(u64, bool)>>,
    /// Limits in the order sent, and whether answered 200.
    limits: Vec<(u64, bool)>,
    /// Org keys created with an answer: name -> (id, secret).
    keys: HashMap<String, (String, String)>,
    /// Key names sent in a create.
    key_names_sent: HashSet<String>,
    /// Key ids whose revocation was sent, and those answered 204.
    revoke_sent: HashSet<String>,
    revoked: HashSet<String>,
    /// Answers that are not 2xx (none expected: the server was killed, it did not refuse).
    refusals: Vec<String>,
}

/// The values that may be stored: the last acknowledged one (or `initial`),
/// or one sent after it without an answer.
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

const TYPES: [&str; 4] = ["webcall", "chat", "outbound", "inbound"];

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_stream_loses_no_acknowledged_change_and_invents_none() {
    let mut s = Server::start().await;
    create_org(&s, "acme", 8).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut tasks = Vec::new();

    // Four clients: acquire, and release every other call.
    for task in 0..4usize {
        let (client, base, ledger) = (s.client.clone(), s.base.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0usize.. {
                let id = format!("t{task}-{i}");
                ledger.lock().unwrap().sent.insert(id.clone());
                let body = json!({
                    "id": id, "agent": format!("agent{task}"), "type": TYPES[i % 4], "lease_ttl_s": 600,
                });
                let r = client
                    .post(format!("{base}/v1/orgs/acme/calls"))
                    .json(&body)
                    .send()
                    .await;
                let answer = match r {
                    Ok(r) => (r.status().as_u16(), r.json::<Value>().await),
                    Err(_) => break,
                };
                match answer {
                    (200..=202, Ok(call)) => {
                        let state = call["state"].as_str().unwrap_or("?").to_string();
                        ledger.lock().unwrap().acquired.insert(id.clone(), state);
                    }
                    (_, Err(_)) => break,
                    (status, Ok(v)) => {
                        ledger
                            .lock()
                            .unwrap()
                            .refusals
                            .push(format!("acquire {id}: {status} {v}"));
                        break;
                    }
                }
                if i % 2 == 0 {
                    ledger.lock().unwrap().release_sent.insert(id.clone());
                    let r = client
                        .delete(format!("{base}/v1/orgs/acme/calls/{id}"))
                        .send()
                        .await;
                    let answer = match r {
                        Ok(r) => (r.status().as_u16(), r.json::<Value>().await),
                        Err(_) => break,
                    };
                    match answer {
                        (200, Ok(_)) => {
                            ledger.lock().unwrap().released.insert(id);
                        }
                        (_, Err(_)) => break,
                        (status, Ok(v)) => {
                            ledger
                                .lock()
                                .unwrap()
                                .refusals
                                .push(format!("release {id}: {status} {v}"));
                            break;
                        }
                    }
                }
            }
            // The id this task would have sent next: it must not exist.
            let mut l = ledger.lock().unwrap();
            let next = (0..)
                .map(|i| format!("t{task}-{i}"))
                .find(|id| !l.sent.contains(id))
                .unwrap();
            l.unsent.push(next);
        }));
    }

    // One admin client: reservations of r0..r2 (chat) and the limit, in turn.
    {
        let (client, base, ledger) = (s.client.clone(), s.base.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let agent = format!("r{}", i % 3);
                let chat = (i / 3 + 1) % 3;
                ledger
                    .lock()
                    .unwrap()
                    .reservations
                    .entry(agent.clone())
                    .or_default()
                    .push((chat, false));
                let r = client
                    .put(format!("{base}/v1/orgs/acme/agents/{agent}/reservations"))
                    .json(&json!({"chat": chat}))
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => (r.status().as_u16(), r.json::<Value>().await),
                    Err(_) => break,
                };
                match ok {
                    (200, Ok(_)) => {
                        let mut l = ledger.lock().unwrap();
                        l.reservations
                            .get_mut(&agent)
                            .unwrap()
                            .last_mut()
                            .unwrap()
                            .1 = true;
                    }
                    (_, Err(_)) => break,
                    (status, Ok(v)) => {
                        let msg = format!("reserve {agent}={chat}: {status} {v}");
                        ledger.lock().unwrap().refusals.push(msg);
                        break;
                    }
                }
                let limit = 8 + i % 5;
                ledger.lock().unwrap().limits.push((limit, false));
                let r = client
                    .put(format!("{base}/v1/orgs/acme/limit"))
                    .json(&json!({"limit": limit}))
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => (r.status().as_u16(), r.json::<Value>().await),
                    Err(_) => break,
                };
                match ok {
                    (200, Ok(_)) => ledger.lock().unwrap().limits.last_mut().unwrap().1 = true,
                    (_, Err(_)) => break,
                    (status, Ok(v)) => {
                        let msg = format!("limit {limit}: {status} {v}");
                        ledger.lock().unwrap().refusals.push(msg);
                        break;
                    }
                }
            }
        }));
    }

    // One key manager: creates runtime keys and revokes every other one.
    {
        let (client, base, ledger) = (s.client.clone(), s.base.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0usize.. {
                let name = format!("k{i}");
                ledger.lock().unwrap().key_names_sent.insert(name.clone());
                let r = client
                    .post(format!("{base}/v1/orgs/acme/keys"))
                    .json(&json!({"role": "runtime", "name": name}))
                    .send()
                    .await;
                let answer = match r {
                    Ok(r) => (r.status().as_u16(), r.json::<Value>().await),
                    Err(_) => break,
                };
                let id = match answer {
                    (201, Ok(k)) => {
                        let id = k["id"].as_str().unwrap().to_string();
                        let secret = k["key"].as_str().unwrap().to_string();
                        let mut l = ledger.lock().unwrap();
                        l.keys.insert(name, (id.clone(), secret));
                        id
                    }
                    (_, Err(_)) => break,
                    (status, Ok(v)) => {
                        let msg = format!("key {name}: {status} {v}");
                        ledger.lock().unwrap().refusals.push(msg);
                        break;
                    }
                };
                if i % 2 == 1 {
                    continue;
                }
                ledger.lock().unwrap().revoke_sent.insert(id.clone());
                let r = client
                    .delete(format!("{base}/v1/orgs/acme/keys/{id}"))
                    .send()
                    .await;
                match r.map(|r| r.status().as_u16()) {
                    Ok(204) => {
                        ledger.lock().unwrap().revoked.insert(id);
                    }
                    Ok(status) => {
                        let msg = format!("revoke {id}: {status}");
                        ledger.lock().unwrap().refusals.push(msg);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }));
    }

    // Let the stream run until plenty has been acknowledged, then kill -9 mid-stream.
    {
        let ledger = ledger.clone();
        eventually(30, "400 acquires acknowledged", move || {
            let n = ledger.lock().unwrap().acquired.len();
            async move { n >= 400 }
        })
        .await;
    }
    s.kill9().await;
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every client stops once the server is gone")
            .expect("client task");
    }
    // Every client has stopped: the ledger is final.
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.refusals.is_empty(), "{:?}", ledger.refusals);
    assert!(
        ledger.limits.iter().filter(|(_, ok)| *ok).count() >= 2,
        "the admin stream was running: {:?}",
        ledger.limits
    );

    // Shown only if the test fails: how much the stream had done.
    eprintln!(
        "at the kill: {} acquires sent, {} answered; {} releases sent, {} answered; {} keys, {} revoked; {} limit changes",
        ledger.sent.len(),
        ledger.acquired.len(),
        ledger.release_sent.len(),
        ledger.released.len(),
        ledger.keys.len(),
        ledger.revoked.len(),
        ledger.limits.len()
    );
    s.restart().await;

    // Every acknowledged acquire exists, in a state consistent with what was answered or later.
    for (id, answered) in &ledger.acquired {
        let (status, call) = s
            .call(Method::GET, &format!("/orgs/acme/calls/{id}"), None)
            .await;
        assert_eq!(status, 200, "acknowledged call {id} exists: {call}");
        let state = call["state"].as_str().unwrap();
        if ledger.released.contains(id) {
            assert_eq!(state, "ended", "acknowledged release of {id}: {call}");
            let reason = call["end_reason"].as_str().unwrap();
            assert!(
                reason == "released" || reason == "cancelled",
                "{id}: {call}"
            );
        } else if !ledger.release_sent.contains(id) {
            assert_ne!(state, "ended", "{id} was never released: {call}");
            if answered == "active" {
                assert_eq!(state, "active", "{id} was answered active: {call}");
            }
        }
    }
    // Nothing that was never sent exists.
    for id in &ledger.unsent {
        let (status, body) = s
            .call(Method::GET, &format!("/orgs/acme/calls/{id}"), None)
            .await;
        assert_eq!(
            (status, code(&body)),
            (404, "call_not_found"),
            "{id} was never sent: {body}"
        );
    }
    let listed = all_calls(&s, "acme").await;
    for c in &listed {
        let id = c["id"].as_str().unwrap();
        assert!(ledger.sent.contains(id), "a call nobody sent: {c}");
    }
    // Every acknowledged call never released is listed (it is live).
    let listed_ids: HashSet<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    for id in ledger.acquired.keys() {
        if !ledger.release_sent.contains(id) {
            assert!(listed_ids.contains(id.as_str()), "{id} is live and listed");
        }
    }

    // The snapshot agrees with the list; the queue's positions are 1..n in order.
    let snap = org(&s, "acme").await;
    let active = listed.iter().filter(|c| c["state"] == "active").count() as u64;
    let queued: Vec<u64> = listed
        .iter()
        .filter(|c| c["state"] == "queued")
        .map(|c| c["position"].as_u64().unwrap())
        .collect();
    assert_eq!(
        nums(&snap, &["active", "queued"]),
        [active, queued.len() as u64],
        "{snap}"
    );
    assert_eq!(
        queued,
        (1..=queued.len() as u64).collect::<Vec<_>>(),
        "positions are 1..n in list order"
    );
    for agent in snap["agents"].as_array().unwrap() {
        let id = agent["id"].as_str().unwrap();
        for t in TYPES {
            for state in ["active", "queued"] {
                let n = listed
                    .iter()
                    .filter(|c| c["agent"] == id && c["type"] == t && c["state"] == state)
                    .count() as u64;
                assert_eq!(agent[state][t], n, "{id} {state} {t}: {snap}");
            }
        }
    }
    // The calling agents have no reservations: a queued call is admissible iff
    // N < L and shared_in_use < S. None may be.
    let [limit, shared, n, shared_in_use] =
        nums(&snap, &["limit", "shared", "active", "shared_in_use"])[..]
    else {
        unreachable!()
    };
    assert!(
        queued.is_empty() || !(n < limit && shared_in_use < shared),
        "a queued call is admissible after the restart: {snap}"
    );
    assert!(
        allowed(&ledger.limits, 8).contains(&limit),
        "limit {limit} vs sent {:?}",
        ledger.limits
    );
    for (agent, history) in &ledger.reservations {
        let a = s.get_ok(&format!("/orgs/acme/agents/{agent}")).await;
        let chat = a["reserved"]["chat"].as_u64().unwrap();
        assert!(
            allowed(history, 0).contains(&chat),
            "{agent}: chat reservation {chat} vs sent {history:?}"
        );
    }

    // Acknowledged keys work, acknowledged revocations hold, no key was invented.
    for (name, (id, secret)) in &ledger.keys {
        let (status, body) = s
            .call_as(Some(secret), Method::GET, "/orgs/acme", None)
            .await;
        if ledger.revoked.contains(id) {
            assert_eq!(status, 401, "revoked key {name} is refused: {body}");
        } else if !ledger.revoke_sent.contains(id) {
            assert_eq!(status, 200, "acknowledged key {name} works: {body}");
        }
    }
    let keys = s.get_ok("/orgs/acme/keys").await;
    for k in keys["keys"].as_array().unwrap() {
        let name = k["name"].as_str().unwrap();
        assert!(
            ledger.key_names_sent.contains(name),
            "a key nobody made: {k}"
        );
    }

    // The event log: contiguous, and only about calls that were sent; every
    // acknowledged acquire and release is in it.
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = s
            .get_ok(&format!("/orgs/acme/events?after={after}&limit=1000"))
            .await;
        let got = page["events"].as_array().unwrap();
        if got.is_empty() {
            break;
        }
        events.extend(got.iter().cloned());
        after = page["next"].as_u64().unwrap();
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "event seqs are 1..n"
    );
    let mut arrived = HashSet::new();
    let mut ended = HashSet::new();
    for e in &events {
        let Some(call) = e["call"].as_str() else {
            continue;
        };
        assert!(
            ledger.sent.contains(call),
            "an event about a call nobody sent: {e}"
        );
        match e["type"].as_str().unwrap() {
            "call.queued" | "call.admitted" => {
                arrived.insert(call.to_string());
            }
            "call.ended" => assert!(ended.insert(call.to_string()), "ended twice: {e}"),
            _ => {}
        }
    }
    for id in ledger.acquired.keys() {
        assert!(
            arrived.contains(id),
            "no event for acknowledged acquire {id}"
        );
    }
    for id in &ledger.released {
        assert!(ended.contains(id), "no event for acknowledged release {id}");
    }

    // And the restarted server carries on.
    let r = acquire(&s, "acme", "after-restart", "agent9", "chat").await;
    assert!(matches!(r.0, 201 | 202), "{}", r.1);
}

// ---------------------------------------------------------------------------
// 5. Auth matrix
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn auth_matrix() {
    let s = Server::start().await;
    create_org(&s, "acme", 5).await;
    create_org(&s, "other", 5).await;
    let new_key = |org: &'static str, role: &'static str, name: &'static str| {
        let s = &s;
        async move {
            let (status, k) = s
                .call(
                    Method::POST,
                    &format!("/orgs/{org}/keys"),
                    Some(&json!({"role": role, "name": name})),
                )
                .await;
            assert_eq!(status, 201, "{k}");
            assert_eq!(k["role"], role);
            (
                k["id"].as_str().unwrap().to_string(),
                k["key"].as_str().unwrap().to_string(),
            )
        }
    };
    let (_, admin) = new_key("acme", "admin", "admin-1").await;
    let (_, runtime) = new_key("acme", "runtime", "runtime-1").await;
    let (_, other_runtime) = new_key("other", "runtime", "runtime-other").await;

    let bad_secret = format!("{}x", &runtime[..runtime.len() - 1]);
    let op = OPERATOR_KEY.to_string();
    let res = json!({"chat": 1});
    let call = json!({"agent": "a", "type": "chat"});
    type Case<'a> = (
        Option<&'a str>,
        Method,
        &'a str,
        Option<Value>,
        u16,
        &'a str,
    );
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        // Missing or unknown key: 401.
        (None, Method::GET, "/orgs/acme", None, 401, "unauthorized"),
        (None, Method::POST, "/orgs/acme/calls", Some(call.clone()), 401, "unauthorized"),
        (Some("nope"), Method::GET, "/orgs/acme", None, 401, "unauthorized"),
        (Some(&bad_secret), Method::GET, "/orgs/acme", None, 401, "unauthorized"),
        // Another org's key: 404 as if it did not exist.
        (Some(&runtime), Method::GET, "/orgs/other", None, 404, "org_not_found"),
        (Some(&runtime), Method::POST, "/orgs/other/calls", Some(call.clone()), 404, "org_not_found"),
        (Some(&other_runtime), Method::GET, "/orgs/acme", None, 404, "org_not_found"),
        (Some(&admin), Method::PUT, "/orgs/other/agents/a/reservations", Some(res.clone()), 404, "org_not_found"),
        // Runtime: calls and reading, nothing else.
        (Some(&runtime), Method::PUT, "/orgs/acme/agents/a/reservations", Some(res.clone()), 403, "forbidden"),
        (Some(&runtime), Method::DELETE, "/orgs/acme/agents/a/reservations", None, 403, "forbidden"),
        (Some(&runtime), Method::PUT, "/orgs/acme/limit", Some(json!({"limit": 9})), 403, "forbidden"),
        (Some(&runtime), Method::POST, "/orgs/acme/keys", Some(json!({"role": "admin", "name": "x"})), 403, "forbidden"),
        (Some(&runtime), Method::GET, "/orgs/acme", None, 200, ""),
        (Some(&runtime), Method::GET, "/orgs/acme/agents/a", None, 200, ""),
        (Some(&runtime), Method::POST, "/orgs/acme/calls", Some(json!({"id": "rt1", "agent": "a", "type": "chat"})), 201, ""),
        (Some(&runtime), Method::GET, "/orgs/acme/calls/rt1", None, 200, ""),
        (Some(&runtime), Method::POST, "/orgs/acme/calls/rt1/heartbeat", None, 200, ""),
        (Some(&runtime), Method::GET, "/orgs/acme/calls", None, 200, ""),
        (Some(&runtime), Method::DELETE, "/orgs/acme/calls/rt1", None, 200, ""),
        // Admin: everything in its org but the limit.
        (Some(&admin), Method::PUT, "/orgs/acme/limit", Some(json!({"limit": 9})), 403, "forbidden"),
        (Some(&admin), Method::POST, "/orgs", Some(json!({"id": "mine", "limit": 1})), 403, "forbidden"),
        (Some(&admin), Method::GET, "/orgs", None, 403, "forbidden"),
        (Some(&admin), Method::PUT, "/orgs/acme/agents/a/reservations", Some(res.clone()), 200, ""),
        (Some(&admin), Method::POST, "/orgs/acme/keys", Some(json!({"role": "runtime", "name": "by-admin"})), 201, ""),
        (Some(&admin), Method::GET, "/orgs/acme/keys", None, 200, ""),
        (Some(&admin), Method::POST, "/orgs/acme/calls", Some(json!({"id": "ad1", "agent": "a", "type": "chat"})), 201, ""),
        // Operator: everything, everywhere.
        (Some(&op), Method::POST, "/orgs", Some(json!({"id": "third", "limit": 1})), 201, ""),
        (Some(&op), Method::GET, "/orgs", None, 200, ""),
        (Some(&op), Method::PUT, "/orgs/other/limit", Some(json!({"limit": 7})), 200, ""),
        (Some(&op), Method::PUT, "/orgs/other/agents/b/reservations", Some(res.clone()), 200, ""),
        (Some(&op), Method::POST, "/orgs/other/calls", Some(json!({"id": "op1", "agent": "b", "type": "chat"})), 201, ""),
        (Some(&op), Method::POST, "/orgs/other/keys", Some(json!({"role": "admin", "name": "by-op"})), 201, ""),
        (Some(&op), Method::DELETE, "/orgs/other/agents/b/reservations", None, 200, ""),
    ];
    for (key, method, path, body, status, err) in cases {
        let who = key.map_or("no key".to_string(), |k| k.chars().take(10).collect());
        let what = format!("{who} {method} {path}");
        let (got, answer) = s.call_as(key, method, path, body.as_ref()).await;
        assert_eq!((got, code(&answer)), (status, err), "{what}: {answer}");
    }

    // The refused changes changed nothing; the allowed ones did.
    let acme = org(&s, "acme").await;
    assert_eq!(nums(&acme, &["limit", "reserved", "active"]), [5, 1, 1]);
    assert_eq!(org(&s, "other").await["limit"], 7);

    // Another org looks exactly like a missing one.
    let hidden = s
        .call_as(Some(&runtime), Method::GET, "/orgs/other", None)
        .await;
    let missing = s
        .call_as(Some(&runtime), Method::GET, "/orgs/nowhere", None)
        .await;
    assert_eq!(hidden, missing);
    assert_eq!(
        s.call(Method::GET, "/orgs/nowhere", None).await,
        missing,
        "the operator's 404 for a missing org is the same"
    );

    // A revoked key gets 401 at once.
    let (kid, doomed) = new_key("acme", "runtime", "doomed").await;
    let r = s
        .call_as(Some(&doomed), Method::GET, "/orgs/acme", None)
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let (status, body) = s
        .call_as(
            Some(&admin),
            Method::DELETE,
            &format!("/orgs/acme/keys/{kid}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "an admin revokes a key: {body}");
    let r = s
        .call_as(Some(&doomed), Method::GET, "/orgs/acme", None)
        .await;
    assert_eq!((r.0, code(&r.1)), (401, "unauthorized"), "{}", r.1);
    let r = s
        .call_as(Some(&doomed), Method::POST, "/orgs/acme/calls", Some(&call))
        .await;
    assert_eq!((r.0, code(&r.1)), (401, "unauthorized"), "{}", r.1);
    let keys = s.get_ok("/orgs/acme/keys").await;
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != kid.as_str() && k.get("key").is_none()),
        "the revoked key is gone and no secret is listed: {keys}"
    );
}

// ---------------------------------------------------------------------------
// 6. Bad inputs
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_are_400_naming_the_field_and_change_nothing() {
    let s = Server::start().await;
    create_org(&s, "acme", 5).await;
    reserve(&s, "acme", "A", json!({"chat": 1})).await;
    assert_eq!(acquire(&s, "acme", "live", "A", "chat").await.0, 201);
    let before = (org(&s, "acme").await, all_calls(&s, "acme").await);

    let long_id = "x".repeat(129);
    let long_body = format!(r#"{{"id": "{long_id}", "agent": "a", "type": "chat"}}"#);
    #[rustfmt::skip]
    let table: Vec<(Method, &str, &str, &str)> = vec![
        // Malformed JSON.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": "#, "body"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat""#, "body"),
        // Unknown fields.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": 5, "plan": "x"}"#, "plan"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "priority": 1}"#, "priority"),
        (Method::PUT, "/orgs/acme/agents/A/reservations", r#"{"chat": 1, "sms": 1}"#, "sms"),
        // Wrong types.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": "5"}"#, "limit"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": 7, "type": "chat"}"#, "agent"),
        (Method::PUT, "/orgs/acme/agents/A/reservations", r#"{"chat": "2"}"#, "chat"),
        // Out of range.
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": -1}"#, "limit"),
        (Method::PUT, "/orgs/acme/limit", r#"{"limit": 1000001}"#, "limit"),
        (Method::POST, "/orgs", r#"{"id": "big", "limit": 1000001}"#, "limit"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "lease_ttl_s": 4}"#, "lease_ttl_s"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "lease_ttl_s": 3601}"#, "lease_ttl_s"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "chat", "wait_s": 61}"#, "wait_s"),
        (Method::POST, "/orgs/acme/calls/live/heartbeat", r#"{"lease_ttl_s": 4}"#, "lease_ttl_s"),
        // Bad enums and ids.
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a", "type": "sms"}"#, "type"),
        (Method::POST, "/orgs/acme/calls", r#"{"id": "a b", "agent": "a", "type": "chat"}"#, "id"),
        (Method::POST, "/orgs/acme/calls", &long_body, "id"),
        (Method::POST, "/orgs/acme/calls", r#"{"agent": "a/b", "type": "chat"}"#, "agent"),
        // Query parameters.
        (Method::GET, "/orgs/acme/calls?sort=id", "", "sort"),
        (Method::GET, "/orgs/acme/calls?state=bogus", "", "state"),
        (Method::GET, "/orgs/acme/calls?limit=0", "", "limit"),
        (Method::GET, "/orgs/acme/calls/live?wait_s=61", "", "wait_s"),
    ];
    for (method, path, body, field) in table {
        let what = format!("{method} {path} {}", &body[..body.len().min(60)]);
        let (status, v) = s.raw(method, path, body).await;
        assert_eq!((status, code(&v)), (400, "invalid_request"), "{what}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or("");
        // The message reads `FIELD: what is wrong`.
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{what}: the message names {field}: {v}"
        );
    }

    // Over 64 KiB: 413, whatever the endpoint.
    let pad = "x".repeat(70 * 1024);
    for (method, path, body) in [
        (
            Method::PUT,
            "/orgs/acme/limit",
            format!(r#"{{"limit": 3, "pad": "{pad}"}}"#),
        ),
        (
            Method::POST,
            "/orgs/acme/calls",
            format!(r#"{{"id": "big", "agent": "a", "type": "chat", "pad": "{pad}"}}"#),
        ),
    ] {
        let (status, v) = s.raw(method.clone(), path, body).await;
        assert_eq!(
            (status, code(&v)),
            (413, "payload_too_large"),
            "{method} {path}: {v}"
        );
    }

    let after = (org(&s, "acme").await, all_calls(&s, "acme").await);
    assert_eq!(after, before, "nothing changed");
    let (status, v) = s.call(Method::GET, "/orgs/big", None).await;
    assert_eq!((status, code(&v)), (404, "org_not_found"));
    let (status, v) = s.call(Method::GET, "/orgs/acme/calls/big", None).await;
    assert_eq!((status, code(&v)), (404, "call_not_found"));
}

// ---------------------------------------------------------------------------
// 7. Idempotency
// ---------------------------------------------------------------------------

/// The fields of a call that an idempotent answer must repeat exactly.
fn stable(c: &Value) -> Value {
    let mut c = c.clone();
    let obj = c.as_object_mut().expect("a call object");
    // A retry counts as a sign of life and may renew the lease or the hold.
    for renewed in ["lease_expires_at", "hold_expires_at"] {
        obj.remove(renewed);
    }
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn acquire_and_release_are_idempotent() {
    let s = Server::start().await;
    create_org(&s, "acme", 1).await;
    create_org(&s, "globex", 1).await;

    // Active: the same acquire again is 200 with the same call.
    let first = acquire(&s, "acme", "c1", "A", "chat").await;
    assert_eq!(brief(&first).0, 201, "{}", first.1);
    let again = acquire(&s, "acme", "c1", "A", "chat").await;
    assert_eq!(again.0, 200, "{}", again.1);
    assert_eq!(stable(&again.1), stable(&first.1));

    // Queued: 200, still queued, same position; nothing queued twice.
    let q1 = acquire(&s, "acme", "q1", "B", "chat").await;
    assert_eq!(brief(&q1), (202, "queued", None, Some(1)), "{}", q1.1);
    let q2 = acquire(&s, "acme", "q2", "B", "chat").await;
    assert_eq!(brief(&q2), (202, "queued", None, Some(2)), "{}", q2.1);
    let q1_again = acquire(&s, "acme", "q1", "B", "chat").await;
    assert_eq!(q1_again.0, 200, "{}", q1_again.1);
    assert_eq!(stable(&q1_again.1), stable(&q1.1));
    assert_eq!(load(&org(&s, "acme").await), [1, 2, 1]);
    assert_eq!(queue(&s, "acme").await, q(&["q1", "q2"]));

    // The same id with another agent or type: 409, nothing changes.
    for (agent, t) in [("Z", "chat"), ("A", "webcall")] {
        let r = acquire(&s, "acme", "c1", agent, t).await;
        assert_eq!((r.0, code(&r.1)), (409, "call_id_conflict"), "{}", r.1);
    }
    assert_eq!(stable(&get_call(&s, "acme", "c1").await), stable(&first.1));

    // DELETE twice: 200 both times, the second answer unchanged.
    let d1 = release(&s, "acme", "c1").await;
    assert_eq!(
        (&d1["state"], &d1["end_reason"]),
        (&json!("ended"), &json!("released"))
    );
    let d2 = release(&s, "acme", "c1").await;
    assert_eq!(d2, d1, "a second release answers the call as it ended");
    // The release admitted q1 (once): q2 moves up.
    assert_eq!(get_call(&s, "acme", "q1").await["state"], "active");
    assert_eq!(queue(&s, "acme").await, q(&["q2"]));
    // Cancelling a queued call twice is idempotent too.
    let c1 = release(&s, "acme", "q2").await;
    assert_eq!(c1["end_reason"], "cancelled", "{c1}");
    assert_eq!(release(&s, "acme", "q2").await, c1);
    // An ended id is still idempotent: 200, ended, not a new call.
    let r = acquire(&s, "acme", "c1", "A", "chat").await;
    assert_eq!(
        (r.0, r.1["state"].as_str()),
        (200, Some("ended")),
        "{}",
        r.1
    );
    assert_eq!(load(&org(&s, "acme").await), [1, 0, 1]);

    // The same id in two orgs: independent calls, no conflict.
    let x = acquire(&s, "globex", "c1", "Z", "webcall").await;
    assert_eq!(brief(&x), (201, "active", Some("shared"), None), "{}", x.1);
    assert_eq!(release(&s, "globex", "c1").await["end_reason"], "released");
    assert_eq!(
        get_call(&s, "acme", "c1").await,
        d1,
        "acme's c1 is untouched"
    );
    let y = acquire(&s, "globex", "y", "Z", "webcall").await;
    assert_eq!(
        y.0, 201,
        "globex's slot was freed by its own release: {}",
        y.1
    );
}

// ---------------------------------------------------------------------------
// 8. One server per data directory
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let s = Server::start().await;
    create_org(&s, "acme", 3).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(s.data_dir())
        .env("SLOTGATE_OPERATOR_KEY", OPERATOR_KEY)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the second server exits instead of serving")
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "non-zero exit: {:?}\n{err}",
        out.status
    );
    let dir = s.data_dir().display().to_string();
    let pid = s.pid().to_string();
    assert!(err.contains(&dir), "stderr names {dir}: {err}");
    assert!(err.contains(&pid), "stderr names pid {pid}: {err}");
    // The first one is unaffected.
    assert_eq!(org(&s, "acme").await["limit"], 3);
}

// ---------------------------------------------------------------------------
// 9. SIGTERM
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_0_and_everything_is_there_after_restart() {
    let mut s = Server::start().await;
    create_org(&s, "acme", 3).await;
    reserve(&s, "acme", "A", json!({"chat": 1, "inbound": 1})).await;
    let (status, key) = s
        .call(
            Method::POST,
            "/orgs/acme/keys",
            Some(&json!({"role": "runtime", "name": "rt"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let runtime = key["key"].as_str().unwrap().to_string();
    assert_eq!(acquire(&s, "acme", "a1", "A", "chat").await.0, 201);
    assert_eq!(acquire(&s, "acme", "b1", "B", "chat").await.0, 201);
    assert_eq!(acquire(&s, "acme", "b2", "B", "webcall").await.0, 202);
    assert_eq!(acquire(&s, "acme", "c1", "C", "chat").await.0, 202);
    assert_eq!(acquire(&s, "acme", "e1", "C", "chat").await.0, 202);
    release(&s, "acme", "e1").await;
    let before = org(&s, "acme").await;
    let calls_before: Vec<Value> = all_calls(&s, "acme").await.iter().map(stable).collect();

    let status = s.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0: {status}");

    s.restart().await;
    assert_eq!(org(&s, "acme").await, before);
    let calls_after: Vec<Value> = all_calls(&s, "acme").await.iter().map(stable).collect();
    assert_eq!(calls_after, calls_before);
    assert_eq!(queue(&s, "acme").await, q(&["b2", "c1"]));
    let e1 = get_call(&s, "acme", "e1").await;
    assert_eq!(e1["end_reason"], "cancelled", "{e1}");
    let r = s
        .call_as(Some(&runtime), Method::GET, "/orgs/acme", None)
        .await;
    assert_eq!(r.0, 200, "the org key survives the restart: {}", r.1);
}

// ---------------------------------------------------------------------------
// 10. A long-poll whose client hangs up stops holding its call
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_whose_client_hangs_up_stops_holding_the_call() {
    let s = Server::start().await;
    create_org(&s, "acme", 0).await;
    // The client gives up after 1 s on a wait of 30 s: its connection closes mid-wait.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let body = json!({"id": "q1", "agent": "A", "type": "chat", "lease_ttl_s": 5, "wait_s": 30});
    let r = impatient
        .post(s.url("/v1/orgs/acme/calls"))
        .bearer_auth(OPERATOR_KEY)
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "the client timed out");
    assert_eq!(get_call(&s, "acme", "q1").await["state"], "queued");

    // Unheld once the server sees the hang-up: abandoned one lease_ttl later, not held for 30 s.
    eventually(20, "q1 is abandoned", || async {
        get_call(&s, "acme", "q1").await["state"] == "ended"
    })
    .await;
    assert_eq!(get_call(&s, "acme", "q1").await["end_reason"], "abandoned");
}

// ---------------------------------------------------------------------------
// Shutdown with requests that never end by themselves, and input edge cases.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_promptly_while_streams_and_long_polls_are_open() {
    let mut s = Server::start().await;
    create_org(&s, "acme", 1).await;
    assert_eq!(acquire(&s, "acme", "holder", "a", "chat").await.0, 201);
    let stream = s
        .client
        .get(s.url("/v1/orgs/acme/events/stream"))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    // A queued acquire and an events long-poll, each willing to wait 60 s.
    let waiting = {
        let (client, url) = (s.client.clone(), s.url("/v1/orgs/acme/calls"));
        tokio::spawn(async move {
            let body = json!({"id": "waiter", "agent": "a", "type": "chat", "wait_s": 60});
            let resp = client.post(url).json(&body).send().await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>((status, resp.json::<Value>().await?))
        })
    };
    let polling = {
        let url = s.url("/v1/orgs/acme/events?after=1000&wait_s=60");
        let client = s.client.clone();
        tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
    };
    eventually(20, "the waiter is queued", || async {
        let (_, call) = s.call(Method::GET, "/orgs/acme/calls/waiter", None).await;
        call["state"] == "queued"
    })
    .await;
    // `terminate` gives up (and fails the test) after 30 s: the long-polls
    // must answer at once rather than run out their 60 s.
    let status = s.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0: {status}");
    let (code, call) = waiting
        .await
        .unwrap()
        .expect("the queued acquire is answered");
    assert_eq!(
        (code, call["state"].as_str()),
        (202, Some("queued")),
        "{call}"
    );
    assert_eq!(
        polling.await.unwrap().expect("the long-poll is answered"),
        200
    );
    drop(stream);
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_garbage_after_a_json_body_is_refused() {
    let s = Server::start().await;
    create_org(&s, "acme", 5).await;
    for body in [r#"{"limit": 6}garbage"#, r#"{"limit": 7} {"limit": 8}"#] {
        let (status, v) = s.raw(Method::PUT, "/orgs/acme/limit", body).await;
        assert_eq!((status, code(&v)), (400, "invalid_request"), "{body}: {v}");
    }
    assert_eq!(org(&s, "acme").await["limit"], 5, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_gets_the_error_body() {
    let s = Server::start().await;
    create_org(&s, "acme", 1).await;
    let (status, v) = s.call(Method::PATCH, "/orgs/acme", None).await;
    assert_eq!(status, 405);
    assert!(!code(&v).is_empty(), "an error body with a code: {v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_400_names_the_offending_body_field() {
    let s = Server::start().await;
    create_org(&s, "acme", 1).await;
    for (path, body, field) in [
        ("/orgs", r#"{"id": "a b", "limit": 1}"#, "id:"),
        ("/orgs", r#"{"id": "ok", "limit": 1e400}"#, "limit:"),
        (
            "/orgs/acme/calls",
            r#"{"agent": "a", "type": "chat", "lease_ttl_s": 1e400}"#,
            "lease_ttl_s:",
        ),
    ] {
        let (status, v) = s.raw(Method::POST, path, body).await;
        assert_eq!((status, code(&v)), (400, "invalid_request"), "{body}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(field), "{body}: names {field}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_port_creates_nothing_and_logs_fit_files_and_collectors() {
    let s = Server::start().await;
    assert!(
        !s.stderr().contains('\x1b'),
        "no colour codes in a log file: {:?}",
        s.stderr()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |listen: &str, extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"));
        c.args(["serve", "--listen", listen, "--data-dir"])
            .arg(&data)
            .args(extra)
            .env_remove("SLOTGATE_OPERATOR_KEY");
        c
    };
    let out = serve(&format!("127.0.0.1:{}", s.port), &[])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot listen on"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("operator key"));
    assert!(
        !data.exists(),
        "a server that cannot listen creates no data directory"
    );
    let mut json = serve("127.0.0.1:0", &["--log-format", "json"])
        .env("RUST_LOG", "info,slotgate::api=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufRead::lines(std::io::BufReader::new(json.stderr.take().unwrap()));
    let mut next_line = || -> Value {
        let line = log.next().unwrap().unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"))
    };
    let ready = next_line();
    let message = ready["fields"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let base = message
        .split("ready on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next());
    let base = base.unwrap_or_else(|| panic!("the ready line: {ready}"));
    let secret = "not-a-key-but-secret";
    let status = reqwest::Client::new()
        .get(format!("{base}/v1/orgs/nope"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let request = next_line();
    json.kill().unwrap();
    json.wait().unwrap();
    let fields = &request["fields"];
    assert_eq!(
        (&fields["route"], &fields["status"], &fields["org"]),
        (&json!("GET /v1/orgs/{org}"), &json!(401), &json!("nope")),
        "{request}"
    );
    assert!(
        !request.to_string().contains(secret),
        "no key material in logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_answers_and_errors_end_with_a_newline_and_keep_extras_inside_error() {
    let s = Server::start().await;
    let text = |path: &'static str, body: Value| {
        let req = s.client.put(s.url(path)).json(&body);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    create_org(&s, "acme", 2).await;
    let ok = text("/v1/orgs/acme/limit", json!({"limit": 3})).await;
    assert!(ok.ends_with("}\n"), "{ok:?}");
    reserve(&s, "acme", "a", json!({"chat": 3})).await;
    let refused = text("/v1/orgs/acme/limit", json!({"limit": 1})).await;
    assert!(refused.ends_with("}\n"), "{refused:?}");
    let body: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "limit_below_reservations", "message": body["error"]["message"], "reserved": 3}})
    );
    let bad = text("/v1/orgs/acme/limit", json!({"limit": "20"})).await;
    let body: Value = serde_json::from_str(&bad).unwrap();
    assert_eq!(
        body["error"]["message"], "limit: must be a whole number, 0 or more, got \"20\"",
        "in the API's words, no Rust type names"
    );
}
