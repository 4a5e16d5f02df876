//! An acquire of a new id reads nothing from the store; a retry of an id
//! that ended longer ago than the engine keeps ended calls is still answered
//! as it ended, also after a restart (issue 20: the index of ended ids).

use std::time::Duration;

use crate::support::{Server, OPERATOR_KEY};
use reqwest::Method;
use slotgate_api::{Call, CallState, CallType::Chat, ErrorCode};

/// How many ended calls the server read from the store on the request path.
async fn ended_call_reads(s: &Server) -> u64 {
    let r = s
        .send(Some(OPERATOR_KEY), Method::GET, "/metrics", None)
        .await;
    let series = "slotgate_store_reads_total{read=\"ended_call\"} ";
    r.text
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .unwrap_or_else(|| panic!("{series}in /metrics: {}", r.text))
        .parse()
        .expect("a count")
}

/// `id`, retried by its own agent (200, as it ended) and by another (409).
async fn assert_answered_as_ended(s: &Server, id: &str, ended: &Call) {
    let retry = s.acquire("acme", id, "A", Chat).await;
    assert_eq!(
        (retry.status, &retry.json::<Call>()),
        (200, ended),
        "{retry}"
    );
    let other = s.acquire("acme", id, "B", Chat).await;
    assert_eq!(other.refusal(), (409, ErrorCode::CallIdConflict), "{other}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_id_reads_no_store_and_an_old_retry_is_answered_as_ended_across_a_restart() {
    // The engine forgets an ended call after 300 ms; the store keeps it a day.
    let mut s = Server::start_with(&["--ended-in-memory=300ms"]).await;
    s.create_org("acme", 5).await;
    s.acquire("acme", "c1", "A", Chat).await.ok(201);
    let c1 = s.release("acme", "c1").await;
    assert_eq!(c1.state, CallState::Ended);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let before = ended_call_reads(&s).await;
    for i in 0..20 {
        s.acquire("acme", &format!("new{i}"), "A", Chat)
            .await
            .ok(201);
        s.release("acme", &format!("new{i}")).await;
    }
    assert_eq!(ended_call_reads(&s).await, before, "new ids read nothing");
    assert_answered_as_ended(&s, "c1", &c1).await;
    assert!(
        ended_call_reads(&s).await > before,
        "c1 is read from the store"
    );

    // A new process fills the index from the store.
    let status = s.terminate().await;
    assert!(status.success(), "{status}");
    s.restart().await;
    assert_answered_as_ended(&s, "c1", &c1).await;
    let new0 = s.get_call("acme", "new0").await;
    assert_eq!(new0.state, CallState::Ended);
    assert_answered_as_ended(&s, "new0", &new0).await;
    // And from the calls that end after the restart.
    s.acquire("acme", "c2", "A", Chat).await.ok(201);
    let c2 = s.release("acme", "c2").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_answered_as_ended(&s, "c2", &c2).await;
    s.acquire("acme", "c3", "A", Chat).await.ok(201);
}
