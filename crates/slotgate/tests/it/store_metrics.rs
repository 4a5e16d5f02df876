//! The store's series on `/metrics` (issue 24, for the alerts and the
//! dashboard in `deploy/`): `slotgate_store_up` follows the store's health,
//! and group commit records each committed batch's events and duration.
//! Against the real binary, on the embedded store and on a real PostgreSQL
//! that the test stops and starts again.

use crate::support::{eventually, Server};
use reqwest::Method;
use slotgate_api::CallType::Chat;

/// The value of the series `name` (with its labels, if any) in `text`.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `/metrics` with the operator key: every org's series.
async fn metrics(s: &Server) -> (u16, String) {
    let r = s
        .send(
            Some(crate::support::OPERATOR_KEY),
            Method::GET,
            "/metrics",
            None,
        )
        .await;
    (r.status, r.text)
}

#[tokio::test]
async fn commit_batches_count_every_stored_event_and_the_store_is_up() {
    let s = Server::start().await;
    s.create_org("acme", 2).await;
    s.reserve("acme", "A", serde_json::json!({"chat": 1})).await;
    s.acquire("acme", "c1", "A", Chat).await.ok(201);
    s.acquire("acme", "c2", "B", Chat).await.ok(201);
    s.release("acme", "c1").await;

    let (status, text) = metrics(&s).await;
    assert_eq!(status, 200);
    assert_eq!(value(&text, "slotgate_store_up"), Some(1.0), "{text}");
    assert_eq!(value(&text, "slotgate_replica_leads"), Some(1.0), "{text}");
    // Every event in the log was written by exactly one committed batch.
    let events = s.all_events("acme").await.len() as f64;
    assert_eq!(
        value(&text, "slotgate_commit_batch_events_sum"),
        Some(events),
        "{text}"
    );
    let batches = value(&text, "slotgate_commit_batch_events_count").expect("a batch count");
    assert!(
        (1.0..=events).contains(&batches),
        "{batches} batches for {events} events"
    );
    assert_eq!(
        value(&text, "slotgate_commit_batch_events_bucket{le=\"+Inf\"}"),
        Some(batches)
    );
    assert_eq!(
        value(&text, "slotgate_commit_duration_seconds_count"),
        Some(batches),
        "one duration per batch: {text}"
    );
    for kind in [
        "slotgate_commit_batch_events",
        "slotgate_commit_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {kind} histogram")),
            "{kind} in {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_up_is_0_while_postgres_is_down_and_metrics_still_answer() {
    let s = Server::start_on_postgres(&[]).await;
    s.create_org("acme", 2).await;
    let db = s.postgres().expect("the server runs on PostgreSQL");
    let (_, before) = metrics(&s).await;
    assert_eq!(value(&before, "slotgate_store_up"), Some(1.0), "{before}");
    let batches = value(&before, "slotgate_commit_batch_events_count").expect("a batch count");

    tokio::task::block_in_place(|| db.stop());
    eventually(
        15,
        "/metrics answers 200 with slotgate_store_up 0",
        || async {
            let (status, text) = metrics(&s).await;
            status == 200 && value(&text, "slotgate_store_up") == Some(0.0)
        },
    )
    .await;
    let (_, down) = metrics(&s).await;
    // Memory may be ahead of the store: no org is shown, and it does not lead.
    assert_eq!(value(&down, "slotgate_replica_leads"), Some(0.0), "{down}");
    assert!(!down.contains("slotgate_org_limit{"), "{down}");
    // The commits made before stay counted.
    assert!(value(&down, "slotgate_commit_batch_events_count") >= Some(batches));
    assert_eq!(
        s.send(None, Method::GET, "/healthz", None).await.status,
        503
    );

    tokio::task::block_in_place(|| db.start_again());
    eventually(30, "slotgate_store_up is 1 again", || async {
        let (_, text) = metrics(&s).await;
        value(&text, "slotgate_store_up") == Some(1.0)
    })
    .await;
    let (_, up) = metrics(&s).await;
    assert_eq!(
        value(&up, "slotgate_org_limit{org=\"acme\"}"),
        Some(2.0),
        "{up}"
    );
    assert_eq!(value(&up, "slotgate_replica_leads"), Some(1.0), "{up}");
}
