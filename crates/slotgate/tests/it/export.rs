//! `slotgate export` and `slotgate import`: the embedded store's state moved
//! to PostgreSQL, with the real binary and a throwaway cluster.

use std::path::Path;
use std::process::Command;

use crate::support::pg::PgCluster;
use crate::support::Server;
use serde_json::{json, Value};
use slotgate_api::{Call, CallState, CallType, Org, Role, Slot};

/// `slotgate ARGS...` as a local command: (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn export(store: &[&str], file: &Path) -> Value {
    let mut args = vec!["export", "-o", file.to_str().unwrap()];
    args.extend(store);
    let (ok, _, err) = run(&args);
    assert!(ok, "export failed: {err}");
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).expect("the export is JSON")
}

fn without_deadlines(calls: Vec<Call>) -> Vec<Call> {
    let strip = |c: Call| Call {
        lease_expires_at: None,
        hold_expires_at: None,
        ..c
    };
    calls.into_iter().map(strip).collect()
}

/// An org with active, queued and ended calls, reservations, caps, a burst,
/// a request rate of its own and a key.
async fn seed(s: &Server) -> String {
    s.create_org("acme", 2).await;
    s.reserve("acme", "agent-a", json!({"chat": 1})).await;
    for id in ["c1", "c2", "c3", "c4"] {
        s.acquire("acme", id, "agent-b", CallType::Inbound).await;
    }
    s.release("acme", "c1").await;
    let caps = json!({"chat": 2, "total": 3});
    let path = "/v1/orgs/acme/agents/agent-a/caps";
    s.op(reqwest::Method::PUT, path, Some(&caps)).await.ok(200);
    let burst = json!({"burst": 1});
    let path = "/v1/orgs/acme/burst";
    s.op(reqwest::Method::PUT, path, Some(&burst)).await.ok(200);
    let rate = json!({"rate_per_s": 300});
    let path = "/v1/orgs/acme/rate";
    s.op(reqwest::Method::PUT, path, Some(&rate)).await.ok(200);
    s.new_key("acme", Role::Runtime, "orchestrator").await.key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_moves_to_postgresql_with_everything_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json");
    let mut s = Server::start_on(None, &[]).await;
    let key = seed(&s).await;
    let before: Org = s.org("acme").await;
    let calls = s.all_calls("acme").await;
    let queue = s.queue("acme").await;
    let last_seq = s.all_events("acme").await.last().unwrap().seq;
    // Plans go with it: a new one, and a default one changed.
    let pro = json!({"id": "pro", "limit": 7, "burst": 1});
    s.op(reqwest::Method::POST, "/v1/plans", Some(&pro))
        .await
        .ok(201);
    let lower = json!({"limit": 25});
    s.op(reqwest::Method::PATCH, "/v1/plans/standard", Some(&lower))
        .await
        .ok(200);
    let plans: Value = s.get("/v1/plans").await;

    // Exported while the server runs: a consistent snapshot, read-only.
    let data_dir = s.data_dir().to_str().unwrap().to_string();
    let from_sqlite = export(&["--data-dir", &data_dir], &file);
    assert_eq!(from_sqlite["orgs"][0]["calls"].as_array().unwrap().len(), 4);
    assert_eq!(from_sqlite["orgs"][0]["burst"], 1);
    assert_eq!(from_sqlite["orgs"][0]["caps"][0]["chat"], 2);
    assert_eq!(from_sqlite["org_rates"][0]["rate_per_s"], 300);
    assert_eq!(
        from_sqlite["plans"],
        json!([
            {"id": "enterprise", "limit": 100, "burst": 20},
            {"id": "pro", "limit": 7, "burst": 1},
            {"id": "standard", "limit": 25, "burst": 0},
        ])
    );
    s.terminate().await;

    let db = PgCluster::start().await;
    let url = db.url();
    let (ok, _, err) = run(&["import", "--store", &url, file.to_str().unwrap()]);
    assert!(ok, "import failed: {err}");
    assert!(err.contains("imported 1 orgs, 4 calls and 1 keys"), "{err}");
    // The same state, read back from PostgreSQL.
    let from_postgres = export(&["--store", &url], &dir.path().join("again.json"));
    assert_eq!(from_postgres, from_sqlite);
    // A second import would mix two states: refused, nothing written.
    let (ok, _, err) = run(&["import", "--store", &url, file.to_str().unwrap()]);
    assert!(
        !ok && err.contains("already holds 1 orgs and 1 keys"),
        "{err}"
    );

    // A server on PostgreSQL serves it: the org, its calls and queue, the
    // key, and event numbering going on.
    let s = Server::start_on(Some(db), &[]).await;
    assert_eq!(s.org("acme").await, before);
    assert_eq!(before.burst, 1);
    assert_eq!(s.get::<Value>("/v1/plans").await, plans);
    assert_eq!(s.agent("acme", "agent-a").await.caps.total, Some(3));
    let rate: slotgate_api::OrgRate = s.get("/v1/orgs/acme/rate").await;
    assert_eq!(rate.rate_per_s, Some(300));
    // Leases and holds get their grace from the start, as after a restart.
    assert_eq!(
        without_deadlines(s.all_calls("acme").await),
        without_deadlines(calls)
    );
    assert_eq!(s.queue("acme").await, queue);
    let with_key = s
        .send(Some(&key), reqwest::Method::GET, "/v1/orgs/acme", None)
        .await;
    assert_eq!(with_key.status, 200, "the runtime key works: {with_key}");
    let c5 = s.acquire("acme", "c5", "agent-a", CallType::Chat).await;
    assert_eq!(c5.brief().1, CallState::Active, "agent-a's reserved slot");
    // The limit now in use opens the burst: the oldest queued call takes it.
    let c3 = s.get_call("acme", "c3").await;
    assert_eq!((c3.state, c3.slot), (CallState::Active, Some(Slot::Burst)));
    let next = s.all_events("acme").await;
    assert_eq!(next.last().unwrap().seq, last_seq + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_export_is_refused_naming_what_is_wrong_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let cases = [
        (
            json!({"format": "other/9", "orgs": [], "keys": []}),
            "slotgate-export/1",
        ),
        (
            json!({"format": "slotgate-export/1", "orgs": [], "keys": [], "extra": 1}),
            "unknown field `extra`",
        ),
        (
            json!({"format": "slotgate-export/1", "keys": [], "orgs": [
                {"id": "bad id!", "limit": 1, "last_event_seq": 1, "reservations": [], "calls": []}]}),
            "bad id!",
        ),
        (
            json!({"format": "slotgate-export/1", "keys": [], "orgs": [
                {"id": "acme", "limit": 1, "last_event_seq": 2, "calls": [],
                 "reservations": [{"agent": "a", "webcall": 2, "chat": 0, "outbound": 0, "inbound": 0}]}]}),
            "acme",
        ),
    ];
    for (doc, says) in cases {
        let file = dir.path().join("bad.json");
        std::fs::write(&file, doc.to_string()).unwrap();
        let (ok, _, err) = run(&["import", "--data-dir", data, file.to_str().unwrap()]);
        assert!(!ok && err.contains(says), "{doc}: {err}");
    }
    assert!(
        !Path::new(data).join("slotgate.db").exists(),
        "nothing was written"
    );
    let (ok, _, err) = run(&["export", "--data-dir", data]);
    assert!(!ok && err.contains("no slotgate store in"), "{err}");
}
