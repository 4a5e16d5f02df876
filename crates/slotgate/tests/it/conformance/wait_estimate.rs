//! A queued call's `estimated_wait_s` through the real server (see
//! `support/mod.rs`): null until the org's slots have freed often enough to
//! say how long they are held, then a number that grows with the position,
//! the same in the acquire answer, `GET` of the call, the calls list and the
//! `call.queued` event; null for active calls. The CLI's `acquire` and
//! `calls` print it, and the Rust client's `on_queue` reports it.
//!
//! History is built with real time between releases (about 100 ms each),
//! since the estimate is learnt from how long slots were held; the
//! assertions do not depend on how long exactly.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Server, OPERATOR_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use slotgate_client::{Acquire, CallType, Client, QueueStatus};

const ORG: &str = "est";
/// Frees an org's shared pool needs before it has estimates
/// (`slotgate_core::MIN_FREES`).
const MIN_FREES: usize = 8;

async fn acquire(s: &Server, id: &str) -> (u16, Value) {
    s.call(
        Method::POST,
        &format!("/orgs/{ORG}/calls"),
        Some(&json!({"id": id, "agent": "agent-a", "type": "chat"})),
    )
    .await
}

async fn queue(s: &Server, id: &str) -> Value {
    let (status, call) = acquire(s, id).await;
    assert_eq!(status, 202, "{id} queues: {call}");
    call
}

async fn release(s: &Server, id: &str) {
    let (status, body) = s
        .call(Method::DELETE, &format!("/orgs/{ORG}/calls/{id}"), None)
        .await;
    assert_eq!(status, 200, "release {id}: {body}");
}

/// The CLI against the server; its stdout, after checking it succeeded.
fn cli(s: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(args)
        .env("SLOTGATE_URL", &s.base)
        .env("SLOTGATE_KEY", OPERATOR_KEY)
        .stdin(Stdio::null())
        .output()
        .expect("the CLI runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}: {stderr}");
    stdout
}

fn cli_acquire(s: &Server, id: &str) -> String {
    cli(
        s,
        &[
            "acquire", ORG, "--agent", "agent-a", "--type", "chat", "--id", id,
        ],
    )
}

fn estimate(call: &Value) -> Option<f64> {
    let v = &call["estimated_wait_s"];
    assert!(v.is_null() || v.is_f64() || v.is_u64(), "{call}");
    v.as_f64()
}

/// The `call.queued` event of each call, by call id.
async fn queued_events(s: &Server) -> Vec<Value> {
    let page = s.get_ok(&format!("/orgs/{ORG}/events?after=0")).await;
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "call.queued")
        .cloned()
        .collect()
}

/// An org of 2 slots whose shared pool has just enough history: two calls
/// active, one queued (`w8`); checks that before the history, a queued call
/// had no estimate (also in the CLI). Returns the active calls' ids.
async fn org_with_history(s: &Server) -> Vec<String> {
    assert_eq!(MIN_FREES, slotgate_core::MIN_FREES);
    let (status, body) = s
        .call(Method::POST, "/orgs", Some(&json!({"id": ORG, "limit": 2})))
        .await;
    assert_eq!(status, 201, "{body}");

    // Before any history: a queued call has a position, no estimate.
    let mut active = vec!["h0".to_string(), "h1".to_string()];
    for id in &active {
        let (status, call) = acquire(s, id).await;
        assert_eq!(status, 201, "{call}");
        assert_eq!(estimate(&call), None, "active: {call}");
    }
    let out = cli_acquire(s, "w0");
    assert!(
        out.contains("call w0 is queued at position 1 (expected wait not known yet)"),
        "{out}"
    );
    let first = s.get_ok(&format!("/orgs/{ORG}/calls/w0")).await;
    assert_eq!(first["position"], 1);
    assert_eq!(estimate(&first), None, "no history yet: {first}");

    // History: each release frees a shared slot, which the queued call takes.
    for i in 0..MIN_FREES {
        tokio::time::sleep(Duration::from_millis(100)).await;
        release(s, &active.remove(0)).await;
        active.push(format!("w{i}"));
        queue(s, &format!("w{}", i + 1)).await;
    }
    active
}

#[tokio::test]
async fn queued_calls_carry_an_estimated_wait_once_the_org_has_history() {
    let s = Server::start().await;
    let active = org_with_history(&s).await;
    // Three queued now: estimates, growing with the position.
    let w9 = queue(&s, "w9").await;
    queue(&s, "w10").await;
    assert_eq!(w9["position"], 2);
    assert!(estimate(&w9).is_some_and(|e| e > 0.0), "{w9}");
    let list = s.get_ok(&format!("/orgs/{ORG}/calls")).await;
    let calls = list["calls"].as_array().expect("calls");
    let (queued, running): (Vec<&Value>, Vec<&Value>) =
        calls.iter().partition(|c| c["state"] == "queued");
    assert_eq!(running.len(), 2, "{list}");
    for c in running {
        assert_eq!(estimate(c), None, "active: {c}");
    }
    let ids: Vec<&str> = queued.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["w8", "w9", "w10"]);
    let estimates: Vec<f64> = queued
        .iter()
        .map(|c| estimate(c).unwrap_or_else(|| panic!("an estimate: {c}")))
        .collect();
    assert!(
        estimates[0] > 0.0 && estimates[0] < estimates[1] && estimates[1] < estimates[2],
        "{estimates:?}"
    );
    for (id, listed) in ids.iter().zip(&estimates) {
        let got = s.get_ok(&format!("/orgs/{ORG}/calls/{id}")).await;
        // Read a moment later: the same or a little more (time since the last free counts).
        let e = estimate(&got).unwrap_or_else(|| panic!("{got}"));
        assert!(e >= *listed && e < listed * 2.0, "{id}: {e} vs {listed}");
    }
    let got = s.get_ok(&format!("/orgs/{ORG}/calls/{}", active[0])).await;
    assert_eq!(estimate(&got), None, "active: {got}");

    // Events: null while there was too little history, a number after.
    let events = queued_events(&s).await;
    let of = |id: &str| {
        events
            .iter()
            .find(|e| e["call"] == id)
            .unwrap_or_else(|| panic!("call.queued of {id}"))
    };
    assert!(of("w0")["estimated_wait_s"].is_null(), "{}", of("w0"));
    assert!(of("w1")["estimated_wait_s"].is_null(), "{}", of("w1"));
    let (e9, e10) = (estimate(of("w9")).unwrap(), estimate(of("w10")).unwrap());
    assert!(0.0 < e9 && e9 < e10, "{e9} {e10}");
}

#[tokio::test]
async fn the_cli_and_the_rust_client_show_the_estimated_wait() {
    let s = Server::start().await;
    let active = org_with_history(&s).await;
    // The CLI says it, in the acquire answer and the calls table.
    let out = cli_acquire(&s, "w11");
    assert!(
        out.contains("call w11 is queued at position 2 (expected wait ~")
            || out.contains("call w11 is queued at position 2 (expected wait <1 s)"),
        "{out}"
    );
    let renewed = cli(&s, &["heartbeat", ORG, "w11"]);
    assert!(
        renewed.contains("; position 2, expected wait ~") || renewed.contains("wait <1 s"),
        "{renewed}"
    );
    let table = cli(&s, &["calls", ORG]);
    assert!(table.contains("EXPECTED WAIT"), "{table}");
    let w11 = table.lines().find(|l| l.starts_with("w11 ")).expect(&table);
    assert!(w11.contains('~') || w11.contains("<1 s"), "{table}");

    // The Rust client reports it with each position while it waits.
    let heard: Arc<Mutex<Vec<QueueStatus>>> = Arc::default();
    let client = Client::new(&s.base, OPERATOR_KEY);
    let report = heard.clone();
    let waiting = tokio::spawn(async move {
        let req = Acquire::new("agent-a", CallType::Chat)
            .id("rc")
            .on_queue(move |q| report.lock().unwrap().push(q));
        client.acquire(ORG, req).await
    });
    while heard.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in ["w8", "w11", &active[0]] {
        release(&s, id).await;
    }
    let permit = waiting.await.unwrap().expect("admitted");
    let heard = heard.lock().unwrap().clone();
    assert_eq!(heard[0].position, 3, "{heard:?}");
    assert!(
        heard.iter().all(|q| q.estimated_wait.is_some()),
        "{heard:?}"
    );
    permit.release().await.unwrap();
}
