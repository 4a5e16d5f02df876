//! Version 2 over HTTP (SEMANTICS.md, "Version 2"; API.md): an agent's
//! caps, an org's burst, and blocked calls, against the real `slotgate
//! serve` binary on a fresh data directory (`support/mod.rs`), and caps and
//! burst surviving `kill -9`. With `SLOTGATE_TEST_STORE=postgres` (or
//! `replicas`) the same tests run on PostgreSQL.

use crate::support::{Answer, Server};
use reqwest::Method;
use serde_json::{json, Value};
use slotgate_api::{Agent, BlockedReason, Call, CallState, Caps, ErrorCode, EventKind, Org, Role};
use slotgate_api::{EventPage, Slot};

use slotgate_api::CallType::{Chat, Inbound};
use CallState::{Active, Queued};

/// A server with org `acme` of `limit`.
async fn acme(limit: u32) -> Server {
    let s = Server::start().await;
    s.create_org("acme", limit).await;
    s
}

/// `PUT .../agents/{agent}/caps` with the operator key.
async fn put_caps(s: &Server, agent: &str, caps: Value) -> Answer {
    let path = format!("/v1/orgs/acme/agents/{agent}/caps");
    s.op(Method::PUT, &path, Some(&caps)).await
}

/// `PUT /v1/orgs/acme/burst` with the operator key; it must answer 200.
async fn set_burst(s: &Server, burst: u32) -> Org {
    let body = json!({"burst": burst});
    let r = s.op(Method::PUT, "/v1/orgs/acme/burst", Some(&body)).await;
    r.ok(200).json()
}

/// An acquire of call `id` that asks to be refused rather than queued blocked.
async fn acquire_or_refuse(s: &Server, id: &str, agent: &str) -> Answer {
    let body = json!({"id": id, "agent": agent, "type": "chat", "if_blocked": "refuse"});
    s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body)).await
}

#[tokio::test]
async fn caps_are_set_refused_below_a_reservation_and_removed() {
    let s = acme(10).await;
    s.reserve("acme", "A", json!({"chat": 3})).await;

    // Case 17: a cap below the reservation it covers changes nothing.
    let r = put_caps(&s, "A", json!({"chat": 2})).await;
    assert_eq!(r.refusal(), (409, ErrorCode::CapBelowReservation));
    assert_eq!(r.error().reserved, Some(3), "the lowest allowed cap");
    let r = put_caps(&s, "A", json!({"total": 1})).await;
    assert_eq!(r.refusal(), (409, ErrorCode::CapBelowReservation));
    assert_eq!(s.agent("acme", "A").await.caps, Caps::default());

    let a: Agent = put_caps(&s, "A", json!({"chat": 3, "total": 5}))
        .await
        .ok(200)
        .json();
    let want = Caps {
        chat: Some(3),
        total: Some(5),
        ..Caps::default()
    };
    assert_eq!(a.caps, want);
    assert_eq!(s.agent("acme", "A").await.caps, want);
    // Now a reservation above a cap is refused the same way.
    let path = "/v1/orgs/acme/agents/A/reservations";
    let r = s.op(Method::PUT, path, Some(&json!({"chat": 4}))).await;
    assert_eq!(r.refusal(), (409, ErrorCode::CapBelowReservation));

    // null (or a missing field) is no cap: the body sets all five.
    let a: Agent = put_caps(&s, "A", json!({"chat": null, "total": 5}))
        .await
        .ok(200)
        .json();
    assert_eq!(a.caps.chat, None);
    assert_eq!(a.caps.total, Some(5));
    let page: EventPage = s.get("/v1/orgs/acme/events").await;
    let changes = page
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::CapsChanged { agent, .. } if agent == "A"))
        .count();
    assert_eq!(changes, 2, "one agent.caps_changed per change");
}

#[tokio::test]
async fn a_capped_agent_waits_while_younger_calls_pass_and_a_higher_cap_admits_it() {
    let s = acme(3).await;
    put_caps(&s, "A", json!({"chat": 1})).await.ok(200);
    assert_eq!(s.acquire("acme", "a1", "A", Chat).await.status, 201);
    // Case 16: the capped call queues though slots are free, and is not blocked.
    let r = s.acquire("acme", "a2", "A", Chat).await;
    assert_eq!(r.brief(), (202, Queued, None, Some(1)));
    assert_eq!(r.json::<Call>().blocked, None);
    let r = s.acquire("acme", "c1", "C", Inbound).await;
    assert_eq!(r.status, 201, "a younger call of another agent passes it");
    assert_eq!(s.get_call("acme", "a2").await.position, Some(1));

    put_caps(&s, "A", json!({"chat": 2})).await.ok(200);
    let a2 = s.get_call("acme", "a2").await;
    assert_eq!(a2.state, Active, "a higher cap admits it before answering");
}

#[tokio::test]
async fn caps_are_the_org_admins_and_the_burst_the_operators() {
    let s = acme(5).await;
    let admin = s.new_key("acme", Role::Admin, "admin").await.key;
    let runtime = s.new_key("acme", Role::Runtime, "runtime").await.key;
    let caps = json!({"inbound": 2});
    let path = "/v1/orgs/acme/agents/A/caps";
    let r = s.send(Some(&admin), Method::PUT, path, Some(&caps)).await;
    assert_eq!(r.json::<Agent>().caps.inbound, Some(2));
    let r = s.send(Some(&runtime), Method::PUT, path, Some(&caps)).await;
    assert_eq!(r.refusal(), (403, ErrorCode::Forbidden));

    let burst = json!({"burst": 3});
    let path = "/v1/orgs/acme/burst";
    let r = s.send(Some(&admin), Method::PUT, path, Some(&burst)).await;
    assert_eq!(r.refusal(), (403, ErrorCode::Forbidden), "like the limit");
    assert_eq!(s.org("acme").await.burst, 0);
    let org: Org = s.op(Method::PUT, path, Some(&burst)).await.ok(200).json();
    assert_eq!(org.burst, 3);
}

#[tokio::test]
async fn burst_admits_above_the_limit_once_the_limit_is_in_use() {
    let s = acme(2).await;
    set_burst(&s, 1).await;
    for id in ["a1", "a2"] {
        let r = s.acquire("acme", id, "A", Chat).await;
        assert_eq!(r.brief().0, 201);
    }
    // Case 14: the limit is in use, so the next call takes the burst.
    let r = s.acquire("acme", "c1", "C", Chat).await;
    assert_eq!(r.brief(), (201, Active, Some(Slot::Burst), None));
    let r = s.acquire("acme", "c2", "C", Chat).await;
    assert_eq!(r.brief(), (202, Queued, None, Some(1)));
    let org = s.org("acme").await;
    assert_eq!((org.burst, org.active, org.burst_in_use), (1, 3, 1));
    let text = s.op(Method::GET, "/metrics", None).await.ok(200).text;
    for line in [
        "slotgate_org_burst{org=\"acme\"} 1",
        "slotgate_org_burst_in_use{org=\"acme\"} 1",
        "slotgate_org_blocked_calls{org=\"acme\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    let burst_seconds = text
        .lines()
        .find_map(|l| l.strip_prefix("slotgate_org_burst_seconds_total{org=\"acme\"} "));
    let counted: f64 = burst_seconds.expect("the burst time").parse().unwrap();
    assert!(counted >= 0.0);
    let anonymous = s.send(None, Method::GET, "/metrics", None).await.ok(200);
    assert!(!anonymous.text.contains("slotgate_org_burst_in_use{"));

    // Lowering the burst ends no call.
    let org = set_burst(&s, 0).await;
    assert_eq!((org.active, org.burst_in_use, org.queued), (3, 1, 1));
    let page: EventPage = s.get("/v1/orgs/acme/events").await;
    let changed: Vec<_> = page
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::BurstChanged { old, new, .. } => Some((old, new)),
            _ => None,
        })
        .collect();
    assert_eq!(changed, [(0, 1), (1, 0)]);
}

#[tokio::test]
async fn a_blocked_call_queues_saying_why_or_is_refused_when_asked() {
    let s = acme(2).await;
    // Case 18: reservations take the whole limit.
    s.reserve("acme", "A", json!({"chat": 2})).await;
    let r = s.acquire("acme", "y1", "Y", Chat).await;
    assert_eq!(r.brief(), (202, Queued, None, Some(1)));
    let y1: Call = r.json();
    assert_eq!(y1.blocked, Some(BlockedReason::NoSharedCapacity));
    assert_eq!(s.org("acme").await.blocked, 1);

    let r = acquire_or_refuse(&s, "y2", "Y").await;
    assert_eq!(r.refusal(), (409, ErrorCode::CallBlocked));
    assert_eq!(r.error().blocked, Some(BlockedReason::NoSharedCapacity));
    let org = s.org("acme").await;
    assert_eq!((org.queued, org.blocked), (1, 1), "nothing was queued");
    let r = s.op(Method::GET, "/v1/orgs/acme/calls/y2", None).await;
    assert_eq!(r.refusal(), (404, ErrorCode::CallNotFound));

    // A cap of 0 blocks too; a call that is not blocked is not refused.
    put_caps(&s, "Z", json!({"chat": 0})).await.ok(200);
    let r = acquire_or_refuse(&s, "z1", "Z").await;
    assert_eq!(r.error().blocked, Some(BlockedReason::CapZero));
    assert_eq!(acquire_or_refuse(&s, "a1", "A").await.status, 201);

    // Lowering A's reservation unblocks and admits Y's call.
    s.reserve("acme", "A", json!({"chat": 1})).await;
    let y1 = s.get_call("acme", "y1").await;
    assert_eq!((y1.state, y1.blocked), (Active, None));
    let page: EventPage = s.get("/v1/orgs/acme/events").await;
    let blocked = page
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::BlockedChanged { old: 1, new: 0 }));
    assert!(blocked, "org.blocked_changed 1 -> 0: {page:?}");
}

#[tokio::test]
async fn bad_caps_burst_and_if_blocked_are_refused_naming_the_field() {
    let s = acme(5).await;
    let before = s.org("acme").await;
    #[rustfmt::skip]
    let cases: &[(Method, &str, &str, &str)] = &[
        (Method::PUT, "/v1/orgs/acme/agents/A/caps", "{\"chat\": -1}", "chat"),
        (Method::PUT, "/v1/orgs/acme/agents/A/caps", "{\"total\": 1000001}", "total"),
        (Method::PUT, "/v1/orgs/acme/agents/A/caps", "{\"webcall\": 1.5}", "webcall"),
        (Method::PUT, "/v1/orgs/acme/agents/A/caps", "{\"fax\": 1}", "fax"),
        (Method::PUT, "/v1/orgs/acme/agents/A%20B/caps", "{\"chat\": 1}", "agent"),
        (Method::PUT, "/v1/orgs/acme/burst", "{\"burst\": \"two\"}", "burst"),
        (Method::PUT, "/v1/orgs/acme/burst", "{\"burst\": 1000001}", "burst"),
        (Method::PUT, "/v1/orgs/acme/burst", "{}", "burst"),
        (Method::POST, "/v1/orgs/acme/calls", "{\"agent\": \"A\", \"type\": \"chat\", \"if_blocked\": \"never\"}", "if_blocked"),
    ];
    s.assert_refused_naming(cases).await;
    assert_eq!(s.org("acme").await, before, "nothing changed");
}

#[tokio::test]
async fn caps_burst_and_burst_calls_survive_kill_9() {
    let mut s = acme(1).await;
    s.reserve("acme", "A", json!({"chat": 1})).await;
    put_caps(&s, "A", json!({"chat": 2, "total": 3}))
        .await
        .ok(200);
    put_caps(&s, "B", json!({"inbound": 0})).await.ok(200);
    set_burst(&s, 2).await;
    assert_eq!(s.acquire("acme", "a1", "A", Chat).await.status, 201);
    let r = s.acquire("acme", "c1", "C", Chat).await;
    assert_eq!(r.brief(), (201, Active, Some(Slot::Burst), None));
    let r = s.acquire("acme", "b1", "B", Inbound).await;
    assert_eq!(r.json::<Call>().blocked, Some(BlockedReason::CapZero));
    let before = s.org("acme").await;
    assert_eq!(
        (before.burst, before.burst_in_use, before.blocked),
        (2, 1, 1)
    );

    s.kill9().await;
    s.restart().await;
    assert_eq!(s.org("acme").await, before);
    let a = s.agent("acme", "A").await;
    assert_eq!((a.caps.chat, a.caps.total), (Some(2), Some(3)));
    assert_eq!(s.get_call("acme", "c1").await.slot, Some(Slot::Burst));
    let b1 = s.get_call("acme", "b1").await;
    assert_eq!(b1.blocked, Some(BlockedReason::CapZero));

    // Removed caps stay removed: DELETE of the reservations removes them too.
    let path = "/v1/orgs/acme/agents/A/reservations";
    let a: Agent = s.op(Method::DELETE, path, None).await.ok(200).json();
    assert_eq!(a.caps, Caps::default());
    s.kill9().await;
    s.restart().await;
    assert_eq!(s.agent("acme", "A").await.caps, Caps::default());
    assert_eq!(s.org("acme").await.burst, 2);
}
