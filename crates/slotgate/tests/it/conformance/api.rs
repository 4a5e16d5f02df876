//! Every endpoint and error of API.md, against the real `slotgate serve`
//! binary on a fresh data directory (`support/mod.rs`, the one harness that
//! starts a server). Answers are read as the API's types (`slotgate_api`);
//! raw JSON is read only where the wire format itself is the point, and the
//! OpenAPI document, which is not one of the API's types, is read as JSON.

use std::time::Duration;

use crate::support::{eventually, Answer, Server, OPERATOR_KEY as OP};
use reqwest::Method;
use serde_json::{json, Value};
use slotgate_api::{Agent, Call, CallList, CallState, CallType, EndReason, ErrorCode};
use slotgate_api::{EventKind, EventPage, KeyList, Org, OrgList, PerType, Role, Slot};

use CallState::{Active, Ended, Queued};
use CallType::{Chat, Inbound, Webcall};

/// A server with the default options and org `acme` of `limit`.
async fn acme(limit: u32) -> Server {
    acme_with(limit, &[]).await
}

/// A server with more `serve` options and org `acme` of `limit`.
async fn acme_with(limit: u32, extra: &[&str]) -> Server {
    let s = Server::start_with(extra).await;
    s.create_org("acme", limit).await;
    s
}

/// A new key of acme with `role`; its secret.
async fn key(s: &Server, role: Role) -> String {
    s.new_key("acme", role, &format!("{role}-key")).await.key
}

/// `GET path` with the operator key.
async fn get(s: &Server, path: &str) -> Answer {
    s.op(Method::GET, path, None).await
}

#[tokio::test]
async fn orgs_are_created_listed_read_and_limited() {
    let s = Server::start().await;
    let body = json!({"id": "acme", "limit": 20});
    let r = s.op(Method::POST, "/v1/orgs", Some(&body)).await.ok(201);
    let acme: Org = r.json();
    assert_eq!((acme.limit, acme.shared), (20, 20));
    let body = json!({"id": "acme", "limit": 5});
    let r = s.op(Method::POST, "/v1/orgs", Some(&body)).await;
    assert_eq!(r.refusal(), (409, ErrorCode::OrgExists));
    s.create_org("beta", 1).await;

    let page: OrgList = s.get("/v1/orgs?limit=1").await;
    assert_eq!(page.orgs[0].id, "acme");
    let cursor = page.next_cursor.expect("a next page");
    let page: OrgList = s.get(&format!("/v1/orgs?limit=1&cursor={cursor}")).await;
    assert_eq!((page.orgs[0].id.as_str(), page.next_cursor), ("beta", None));

    let r = get(&s, "/v1/orgs/nope").await;
    assert_eq!(r.refusal(), (404, ErrorCode::OrgNotFound));

    s.reserve("acme", "A", json!({"chat": 5})).await;
    let r = s
        .op(
            Method::PUT,
            "/v1/orgs/acme/limit",
            Some(&json!({"limit": 4})),
        )
        .await;
    assert_eq!(r.refusal(), (409, ErrorCode::LimitBelowReservations));
    assert_eq!(r.error().reserved, Some(5));
    // The wire format: extra fields sit inside `error` and nowhere else.
    assert_eq!(
        r.value().as_object().unwrap().keys().collect::<Vec<_>>(),
        ["error"],
        "extra fields sit inside `error` and nowhere else (API.md): {r}"
    );
    let r = s
        .op(
            Method::PUT,
            "/v1/orgs/acme/limit",
            Some(&json!({"limit": 30})),
        )
        .await;
    let acme: Org = r.ok(200).json();
    assert_eq!((acme.limit, acme.shared), (30, 25));
}

#[tokio::test]
async fn reservations_are_set_refused_with_what_is_available_and_removed() {
    let s = acme(20).await;
    let a = s
        .reserve(
            "acme",
            "A",
            json!({"webcall": 2, "chat": 3, "outbound": 4, "inbound": 3}),
        )
        .await;
    assert_eq!(a.reserved_total, 12);
    let path = "/v1/orgs/acme/agents/B/reservations";
    let r = s.op(Method::PUT, path, Some(&json!({"inbound": 9}))).await;
    assert_eq!(r.refusal(), (409, ErrorCode::ReservationsExceedLimit));
    assert_eq!(r.error().available, Some(8));
    let b = s.reserve("acme", "B", json!({"chat": 1})).await;
    let chat_only = PerType {
        chat: 1,
        ..PerType::default()
    };
    // Read as an `Agent`, the answer is exactly one (`Answer::json`): all
    // four types are on the wire, the missing ones 0.
    assert_eq!(b.reserved, chat_only, "missing types are 0");

    let org = s.org("acme").await;
    assert_eq!((org.reserved, org.shared), (13, 7));
    let path = "/v1/orgs/acme/agents/A/reservations";
    let a: Agent = s.op(Method::DELETE, path, None).await.ok(200).json();
    assert_eq!(a.reserved_total, 0);
    let never = s.agent("acme", "never-seen").await;
    assert_eq!(
        (never.id.as_str(), never.reserved_total, never.active.chat),
        ("never-seen", 0, 0)
    );
}

#[tokio::test]
async fn calls_are_admitted_queued_retried_and_renewed() {
    let s = acme_with(1, &["--queue-cap", "2"]).await;
    let r = s.acquire("acme", "a1", "A", Chat).await;
    assert_eq!(r.brief(), (201, Active, Some(Slot::Shared), None));
    let r = s.acquire("acme", "q1", "B", Inbound).await;
    assert_eq!(r.brief(), (202, Queued, None, Some(1)));
    assert_eq!(s.acquire("acme", "q2", "B", Inbound).await.status, 202);
    let r = s.acquire("acme", "q3", "B", Inbound).await;
    assert_eq!(r.refusal(), (429, ErrorCode::QueueFull));

    let r = s.acquire("acme", "q1", "B", Inbound).await;
    let retry = (r.status, r.json::<Call>().position);
    assert_eq!(retry, (200, Some(1)), "an idempotent retry");
    let r = s.acquire("acme", "q1", "A", Inbound).await;
    assert_eq!(r.refusal(), (409, ErrorCode::CallIdConflict));

    let path = "/v1/orgs/acme/calls/a1/heartbeat";
    let r = s
        .op(Method::POST, path, Some(&json!({"lease_ttl_s": 120})))
        .await;
    assert_eq!((r.status, r.json::<Call>().lease_ttl_s), (200, 120.0));
    let r = s.op(Method::POST, path, None).await;
    assert_eq!(r.status, 200, "the body is optional");
}

#[tokio::test]
async fn calls_are_listed_cancelled_released_and_ended_once() {
    let s = acme_with(1, &["--queue-cap", "2"]).await;
    for (id, agent, t) in [
        ("a1", "A", Chat),
        ("q1", "B", Inbound),
        ("q2", "B", Inbound),
    ] {
        s.acquire("acme", id, agent, t).await;
    }
    let queued: CallList = s.get("/v1/orgs/acme/calls?state=queued").await;
    let ids: Vec<&str> = queued.calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["q1", "q2"]);
    let of_a: CallList = s.get("/v1/orgs/acme/calls?agent=A").await;
    assert_eq!(of_a.calls.len(), 1);

    let cancelled = s.release("acme", "q1").await;
    assert_eq!(cancelled.end_reason, Some(EndReason::Cancelled));
    assert_eq!(s.get_call("acme", "q2").await.position, Some(1));
    let released = s.release("acme", "a1").await;
    assert_eq!(released.end_reason, Some(EndReason::Released));
    let q2 = s.get_call("acme", "q2").await;
    assert_eq!((q2.state, q2.slot), (Active, Some(Slot::Shared)));

    let again = s.release("acme", "a1").await;
    let reason = again.end_reason;
    assert_eq!(
        reason,
        Some(EndReason::Released),
        "ending again is idempotent"
    );
    let r = s
        .op(Method::POST, "/v1/orgs/acme/calls/a1/heartbeat", None)
        .await;
    assert_eq!(r.refusal(), (410, ErrorCode::CallEnded));
    assert_eq!(r.error().call.map(|c| c.id).as_deref(), Some("a1"));
    for (m, p) in [
        (Method::GET, "/v1/orgs/acme/calls/zz"),
        (Method::DELETE, "/v1/orgs/acme/calls/zz"),
        (Method::POST, "/v1/orgs/acme/calls/zz/heartbeat"),
    ] {
        let r = s.op(m, p, None).await;
        assert_eq!(r.refusal(), (404, ErrorCode::CallNotFound), "{p}");
    }
}

#[tokio::test]
async fn an_id_is_new_again_once_its_ended_call_leaves_retention() {
    let s = acme_with(1, &["--ended-retention", "200ms"]).await;
    s.acquire("acme", "x", "A", Chat).await;
    s.release("acme", "x").await;
    let r = s.acquire("acme", "x", "A", Chat).await;
    assert_eq!(r.status, 200, "within retention: the ended call");
    eventually(30, "x leaves retention", || async {
        get(&s, "/v1/orgs/acme/calls/x").await.status == 404
    })
    .await;
    let r = s.acquire("acme", "x", "B", Inbound).await;
    let state = (r.status, r.json::<Call>().state);
    assert_eq!(state, (201, Active), "a new call: {r}");
    let r = s.op(Method::DELETE, "/v1/orgs/acme/calls/x", None).await;
    assert_eq!(r.status, 200, "the store took the reused id");
}

#[tokio::test]
async fn a_restart_restores_orgs_reservations_keys_calls_queue_and_event_numbering() {
    let mut s = acme(2).await;
    s.reserve("acme", "A", json!({"chat": 1})).await;
    let runtime = key(&s, Role::Runtime).await;
    for (id, agent, t) in [
        ("a1", "A", Chat),
        ("b1", "B", Chat),
        ("q1", "C", Inbound),
        ("q2", "A", Webcall),
        ("gone", "B", Chat),
    ] {
        s.acquire("acme", id, agent, t).await;
    }
    s.release("acme", "gone").await;
    let before = s.org("acme").await;
    let calls_before: CallList = s.get("/v1/orgs/acme/calls").await;
    let events_before: EventPage = s.get("/v1/orgs/acme/events").await;

    s.terminate().await;
    s.restart().await;
    assert_eq!(s.org("acme").await, before);
    let calls_after: CallList = s.get("/v1/orgs/acme/calls").await;
    let strip = |l: &CallList| -> Vec<(String, CallState, Option<Slot>, Option<u64>)> {
        let brief = |c: &Call| (c.id.clone(), c.state, c.slot, c.position);
        l.calls.iter().map(brief).collect()
    };
    assert_eq!(strip(&calls_before), strip(&calls_after));
    let gone = s.get_call("acme", "gone").await;
    let reason = gone.end_reason;
    assert_eq!(
        reason,
        Some(EndReason::Cancelled),
        "ended calls are kept too"
    );
    let r = s
        .send(Some(&runtime), Method::GET, "/v1/orgs/acme", None)
        .await;
    assert_eq!(r.status, 200, "keys survive");

    s.release("acme", "b1").await;
    let next = events_before.next;
    let page: EventPage = s.get(&format!("/v1/orgs/acme/events?after={next}")).await;
    assert_eq!(page.events[0].seq, next + 1, "numbering continues");
    let second = &page.events[1].kind;
    assert!(
        matches!(second, EventKind::CallAdmitted { call, .. } if call == "q1"),
        "{second:?}"
    );
}

#[tokio::test]
async fn a_call_without_an_id_gets_one() {
    let s = acme(1).await;
    let body = json!({"agent": "A", "type": "webcall"});
    let r = s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body)).await;
    assert!(r.ok(201).json::<Call>().id.starts_with("call_"));
}

#[tokio::test]
async fn an_acquire_whose_max_wait_passes_while_it_waits_answers_200_with_its_end() {
    let s = acme(0).await;
    let body = json!({"id": "t1", "agent": "A", "type": "chat", "max_wait_s": 0.2, "wait_s": 5});
    let r = s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body)).await;
    let call: Call = r.json();
    assert_eq!(
        (r.status, call.state, call.end_reason),
        (200, Ended, Some(EndReason::TimedOut)),
        "202 means queued; this call is not: {r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_acquire_is_admitted_when_a_slot_frees() {
    let s = std::sync::Arc::new(acme(1).await);
    s.acquire("acme", "a1", "A", Chat).await;
    let waiter = {
        let s = s.clone();
        let body = json!({"id": "q1", "agent": "B", "type": "chat", "wait_s": 30});
        tokio::spawn(async move { s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body)).await })
    };
    // Release only once the waiter is queued and its wait is open (the call
    // is readable a moment before its wait opens): an open wait holds the call.
    eventually(10, "an open wait holds the call", || async {
        let r = get(&s, "/v1/orgs/acme/calls/q1").await;
        r.status == 200 && r.json::<Call>().hold_expires_at.is_none()
    })
    .await;
    s.release("acme", "a1").await;
    let r = waiter.await.unwrap();
    assert_eq!((r.status, r.json::<Call>().state), (201, Active));
}

#[tokio::test]
async fn keys_have_roles_and_see_only_their_org() {
    let s = acme(5).await;
    s.create_org("other", 5).await;
    let admin = Some(key(&s, Role::Admin).await);
    let runtime = Some(key(&s, Role::Runtime).await);
    let (admin, runtime) = (admin.as_deref(), runtime.as_deref());

    let r = s.send(None, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(r.refusal(), (401, ErrorCode::Unauthorized));
    let r = s
        .send(Some("sgk_nope_nope"), Method::GET, "/v1/orgs/acme", None)
        .await;
    assert_eq!(r.status, 401);

    let hidden = s.send(runtime, Method::GET, "/v1/orgs/other", None).await;
    let missing = s.send(runtime, Method::GET, "/v1/orgs/missing", None).await;
    assert_eq!(
        (hidden.status, hidden.error()),
        (404, missing.error()),
        "another org looks missing"
    );

    let call = json!({"agent": "A", "type": "chat"});
    let r = s
        .send(runtime, Method::POST, "/v1/orgs/acme/calls", Some(&call))
        .await;
    assert_eq!(r.status, 201);
    let r = s.send(runtime, Method::GET, "/v1/orgs/acme", None).await;
    assert_eq!(r.status, 200);
    let (path, chat) = ("/v1/orgs/acme/agents/A/reservations", json!({"chat": 1}));
    let r = s.send(runtime, Method::PUT, path, Some(&chat)).await;
    assert_eq!(r.refusal(), (403, ErrorCode::Forbidden));
    let r = s.send(admin, Method::PUT, path, Some(&chat)).await;
    assert_eq!(r.status, 200);
    let limit = json!({"limit": 9});
    let r = s
        .send(admin, Method::PUT, "/v1/orgs/acme/limit", Some(&limit))
        .await;
    assert_eq!(r.status, 403);
    let org = json!({"id": "x", "limit": 1});
    let r = s.send(admin, Method::POST, "/v1/orgs", Some(&org)).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_revoked_at_once() {
    let s = acme(5).await;
    let admin = key(&s, Role::Admin).await;
    let runtime = key(&s, Role::Runtime).await;
    let r = s
        .send(Some(&admin), Method::GET, "/v1/orgs/acme/keys", None)
        .await
        .ok(200);
    let keys: KeyList = r.json();
    assert_eq!(keys.keys.len(), 2);
    // The wire format: no listed key carries its secret (`key`), a field the
    // typed `KeyInfo` does not have.
    assert!(
        r.value()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none()),
        "secrets are never listed"
    );
    let runtime_id = runtime.split('_').nth(1).unwrap();
    let path = format!("/v1/orgs/acme/keys/{runtime_id}");
    let r = s.send(Some(&admin), Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204);
    let r = s
        .send(Some(&runtime), Method::GET, "/v1/orgs/acme", None)
        .await;
    assert_eq!(r.status, 401, "a revoked key stops at once");
    let r = s.send(Some(&admin), Method::DELETE, &path, None).await;
    assert_eq!(r.refusal(), (404, ErrorCode::KeyNotFound));
    let body = json!({"role": "root", "name": "x"});
    let r = s.op(Method::POST, "/v1/orgs/acme/keys", Some(&body)).await;
    assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest));
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let s = acme(5).await;
    let before = s.org("acme").await;
    #[rustfmt::skip]
    let cases: &[(Method, &str, &str, &str)] = &[
        (Method::POST, "/v1/orgs", "{\"id\": \"x\", ", "body"),
        (Method::POST, "/v1/orgs", "{\"id\": \"x\", \"limit\": 1, \"plan\": 2}", "plan"),
        (Method::POST, "/v1/orgs", "{\"id\": \"x y\", \"limit\": 1}", "id"),
        (Method::POST, "/v1/orgs", "{\"id\": \"x\", \"limit\": 1000001}", "limit"),
        (Method::PUT, "/v1/orgs/acme/limit", "{\"limit\": \"ten\"}", "limit"),
        (Method::PUT, "/v1/orgs/acme/agents/A/reservations", "{\"chat\": -1}", "chat"),
        (Method::POST, "/v1/orgs/acme/calls", "{\"agent\": \"A\", \"type\": \"fax\"}", "type"),
        (Method::POST, "/v1/orgs/acme/calls", "{\"agent\": \"A\", \"type\": \"chat\", \"lease_ttl_s\": 4}", "lease_ttl_s"),
        (Method::POST, "/v1/orgs/acme/calls", "{\"agent\": \"A\", \"type\": \"chat\", \"wait_s\": 61}", "wait_s"),
        (Method::POST, "/v1/orgs/acme/calls", "{\"id\": \"\", \"agent\": \"A\", \"type\": \"chat\"}", "id"),
        (Method::GET, "/v1/orgs/acme/calls?state=bogus", "", "state"),
        (Method::GET, "/v1/orgs/acme/calls?color=red", "", "color"),
        (Method::GET, "/v1/orgs/acme/calls?limit=0", "", "limit"),
    ];
    s.assert_refused_naming(cases).await;
    let big = format!(
        "{{\"id\": \"x\", \"limit\": 1, \"pad\": \"{}\"}}",
        "x".repeat(70_000)
    );
    let r = s.op_text(Method::POST, "/v1/orgs", &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(s.org("acme").await, before);
    let orgs: OrgList = s.get("/v1/orgs").await;
    assert_eq!(orgs.orgs.len(), 1, "no org was created");
}

/// A number out of a field's range gets that range, however far out it is;
/// a whole number written as a float (`54046.0`) is the whole number, as
/// JSON Schema and the OpenAPI document say.
#[tokio::test]
async fn an_out_of_range_number_gets_its_fields_one_message() {
    let s = acme(5).await;
    for limit in [
        "1000001",
        "4294967295",
        "4294967296",
        "18446744073709551616",
        "-1",
    ] {
        let body = format!("{{\"id\": \"x\", \"limit\": {limit}}}");
        let r = s.op_text(Method::POST, "/v1/orgs", &body).await;
        assert_eq!(
            r.refusal(),
            (400, ErrorCode::InvalidRequest),
            "{limit}: {r}"
        );
        let message = r.error().message;
        assert!(
            message.starts_with("limit: must be 0 to 1000000, got "),
            "{limit}: {message}"
        );
        let r = s
            .op_text(
                Method::PUT,
                "/v1/orgs/acme/limit",
                &format!("{{\"limit\": {limit}}}"),
            )
            .await;
        assert!(
            r.error().message.starts_with("limit: must be 0 to 1000000"),
            "{limit}: {r}"
        );
    }
    let r = s
        .op_text(Method::POST, "/v1/orgs", r#"{"id": "x", "limit": 54046.0}"#)
        .await
        .ok(201);
    assert_eq!(r.json::<Org>().limit, 54046);
    let r = s
        .op_text(
            Method::PUT,
            "/v1/orgs/acme/agents/A/reservations",
            r#"{"chat": 2.0}"#,
        )
        .await
        .ok(200);
    assert_eq!(r.json::<Agent>().reserved.chat, 2);
    let r = s
        .op_text(
            Method::PUT,
            "/v1/orgs/acme/agents/A/reservations",
            r#"{"chat": 1.5}"#,
        )
        .await;
    assert!(
        r.error()
            .message
            .starts_with("chat: must be a whole number 0 to 1000000"),
        "{r}"
    );
}

/// A body that is not JSON at all says so, not serde's "expected ident".
#[tokio::test]
async fn a_body_that_is_not_json_says_so() {
    let s = acme(5).await;
    for body in [
        "nope",
        "{\"id\": \"x\", ",
        "{\"id\": \"x\", \"limit\": 1} trailing",
    ] {
        let r = s.op_text(Method::POST, "/v1/orgs", body).await;
        assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{body}: {r}");
        let message = r.error().message;
        assert!(
            message.starts_with("the body is not JSON: "),
            "{body}: {message}"
        );
        assert!(message.contains(" at line 1 column "), "{body}: {message}");
    }
}

/// What the OpenAPI document calls valid the server takes, and what it calls
/// invalid the server refuses (the cases an outside checker, schemathesis,
/// found apart).
#[tokio::test]
async fn the_server_takes_what_its_document_calls_valid_and_only_that() {
    let s = acme(5).await;
    // A body the operation requires may not be left out; an optional one may.
    let r = s
        .op_text(Method::PUT, "/v1/orgs/acme/agents/A/reservations", "")
        .await;
    assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{r}");
    assert!(r.error().message.starts_with("body: "), "{r}");
    s.acquire("acme", "c1", "A", Chat).await.ok(201);
    s.op_text(Method::POST, "/v1/orgs/acme/calls/c1/heartbeat", "")
        .await
        .ok(200);
    let r = s
        .op_text(Method::POST, "/v1/orgs/acme/calls/c1/heartbeat", "[]")
        .await;
    assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{r}");
    // The tiniest max_wait_s above 0 is a wait (of a millisecond), not "0ns".
    let body = json!({"id": "c2", "agent": "A", "type": "chat", "max_wait_s": 5e-324});
    s.op(Method::POST, "/v1/orgs/acme/calls", Some(&body))
        .await
        .ok(201);
    #[rustfmt::skip]
    let refused: &[(&str, &str)] = &[
        ("/v1/orgs/acme/events?after=9223372036854775808", "after"),
        ("/v1/orgs/acme/events?limit=10001", "limit"),
        ("/v1/orgs/acme/events?color=red", "color"),
        ("/v1/orgs/acme/traffic?window=", "window"),
        ("/v1/orgs/acme/traffic?window=0s", "window"),
        ("/v1/orgs/acme/calls?cursor=%2B5", "cursor"),
        ("/v1/orgs/acme/calls?agent=", "agent"),
        ("/v1/orgs?limit=1.5", "limit"),
    ];
    for (path, field) in refused {
        let r = get(&s, path).await;
        assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{path}: {r}");
        assert!(r.error().message.starts_with(field), "{path}: {r}");
    }
    get(&s, "/v1/orgs/acme/events?after=9223372036854775807")
        .await
        .ok(200);
    get(&s, "/v1/orgs?limit=2.0").await.ok(200);
    let traffic = json!([{"agent": "A", "call_type": "chat", "calls_per_hour": 10.0, "mean_duration_s": 60.0}]);
    #[rustfmt::skip]
    let bodies: &[(&str, Value, &str)] = &[
        ("simulate", json!({"traffic": traffic, "window": "7d"}), "window"),
        ("simulate", json!({"traffic": traffic, "check": {"threads": 1025}}), "check.threads"),
        ("plan", json!({"targets": [], "traffic": traffic}), "targets"),
    ];
    for (op, body, field) in bodies {
        let r = s
            .op(Method::POST, &format!("/v1/orgs/acme/{op}"), Some(body))
            .await;
        assert_eq!(
            r.refusal(),
            (400, ErrorCode::InvalidRequest),
            "{op} {body}: {r}"
        );
        assert!(r.error().message.starts_with(field), "{op} {body}: {r}");
    }
    // `null` is no window: traffic with a null window is one of the two.
    let quick = json!({"horizon_s": 600.0, "warmup_s": 0.0, "replications": 2});
    let body = json!({"traffic": traffic, "window": null, "check": quick});
    s.op(Method::POST, "/v1/orgs/acme/simulate", Some(&body))
        .await
        .ok(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_listed_and_long_polled() {
    let s = std::sync::Arc::new(acme(1).await);
    s.acquire("acme", "a1", "A", Chat).await;
    let page: EventPage = s.get("/v1/orgs/acme/events").await;
    let kinds: Vec<&str> = page.events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["org.created", "call.admitted"]);
    let created = &page.events[0].kind;
    assert!(
        matches!(created, EventKind::OrgCreated { by: Some(by), .. } if by == "operator"),
        "{created:?}"
    );
    let next = page.next;
    assert_eq!(next, 2);

    let poll = {
        let s = s.clone();
        let path = format!("/v1/orgs/acme/events?after={next}&wait_s=30");
        tokio::spawn(async move { s.get::<EventPage>(&path).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.op(
        Method::PUT,
        "/v1/orgs/acme/limit",
        Some(&json!({"limit": 3})),
    )
    .await;
    let page = poll.await.unwrap();
    let changed = &page.events[0].kind;
    assert!(
        matches!(changed, EventKind::LimitChanged { old: 1, new: 3, .. }),
        "{page:?}"
    );
    assert_eq!(page.next, 3);
}

/// An open event stream, read one event (up to its blank line) at a time.
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    /// `GET /v1/orgs/acme/events/stream{query}` with the operator key (and `Last-Event-ID`).
    async fn open(s: &Server, query: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = s
            .client
            .get(s.url(&format!("/v1/orgs/acme/events/stream{query}")));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("the stream opens");
        let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(kind, "text/event-stream");
        Sse {
            resp,
            buf: String::new(),
        }
    }

    /// The next event's text.
    async fn next(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event = self.buf[..end].to_string();
                self.buf.drain(..end + 2);
                return event;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk());
            let chunk = chunk.await.expect("an event within 30 s").unwrap();
            self.buf.push_str(&String::from_utf8_lossy(
                &chunk.expect("the stream is open"),
            ));
        }
    }
}

#[tokio::test]
async fn the_event_stream_replays_and_follows() {
    let s = acme(1).await;
    let mut stream = Sse::open(&s, "?after=0", None).await;
    let text = stream.next().await;
    assert!(
        text.contains("event: org.created") && text.contains("id: 1"),
        "{text}"
    );
    s.acquire("acme", "a1", "A", Chat).await;
    assert!(stream.next().await.contains("event: call.admitted"));

    // A reconnecting client resumes after the last id it saw.
    let mut stream = Sse::open(&s, "", Some("1")).await;
    let text = stream.next().await;
    assert!(
        text.contains("id: 2") && text.contains("event: call.admitted"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_ask_for_the_operator_key() {
    let s = acme_with(1, &["--metrics-auth"]).await;
    let admin = key(&s, Role::Admin).await;
    let r = s.send(None, Method::GET, "/metrics", None).await;
    assert_eq!(r.status, 401);
    let r = s.send(Some(&admin), Method::GET, "/metrics", None).await;
    assert_eq!(r.status, 403, "an org key of another role than metrics");
    let r = s
        .send(Some(OP), Method::GET, "/metrics", None)
        .await
        .ok(200);
    assert!(r.text.contains("slotgate_org_limit{org=\"acme\"} 1"));
}

#[tokio::test]
async fn metrics_name_an_org_only_to_its_metrics_key_and_the_operator() {
    let s = acme(1).await;
    s.create_org("other", 1).await;
    s.acquire("acme", "a1", "A", Chat).await;
    let anonymous = s.send(None, Method::GET, "/metrics", None).await.ok(200);
    assert!(anonymous.text.contains("slotgate_store_up"), "{anonymous}");
    assert!(
        !anonymous.text.contains("acme") && !anonymous.text.contains("agent="),
        "no org or agent names without a key: {anonymous}"
    );
    let metrics_key = key(&s, Role::Metrics).await;
    let own = s
        .send(Some(&metrics_key), Method::GET, "/metrics", None)
        .await
        .ok(200);
    assert!(
        own.text.contains(r#"slotgate_org_limit{org="acme"} 1"#),
        "{own}"
    );
    assert!(!own.text.contains("other"), "another org's series: {own}");
    let runtime = key(&s, Role::Runtime).await;
    let r = s.send(Some(&runtime), Method::GET, "/metrics", None).await;
    assert_eq!(r.refusal(), (403, ErrorCode::Forbidden), "{r}");
    let r = s
        .send(Some(&metrics_key), Method::GET, "/v1/orgs/acme", None)
        .await;
    assert_eq!(r.status, 403, "a metrics key sees nothing else");
}

#[tokio::test]
async fn health_metrics_openapi_and_unknown_routes() {
    // Agent series are opt-in (tests/it/metrics_agents.rs).
    let s = acme_with(2, &["--metrics-agents", "5"]).await;
    s.acquire("acme", "a1", "A", Chat).await;
    assert_eq!(
        s.send(None, Method::GET, "/healthz", None).await.status,
        200
    );
    let r = s
        .send(Some(OP), Method::GET, "/metrics", None)
        .await
        .ok(200);
    for line in [
        "slotgate_org_limit{org=\"acme\"} 2",
        "slotgate_agent_active{org=\"acme\",agent=\"A\",type=\"chat\"} 1",
        "slotgate_admissions_total{org=\"acme\",slot=\"shared\"} 1",
        "slotgate_queue_wait_seconds_count{org=\"acme\"} 1",
    ] {
        assert!(r.text.contains(line), "missing {line:?} in\n{}", r.text);
    }
    let doc = openapi(&s).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/orgs",
        "/v1/orgs/{org}/calls",
        "/v1/orgs/{org}/calls/{id}/heartbeat",
        "/v1/orgs/{org}/events/stream",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    let r = get(&s, "/v1/nothing-here").await;
    assert_eq!(r.refusal(), (404, ErrorCode::NotFound));
    let r = s.send(None, Method::GET, "/", None).await.ok(200);
    assert!(r.text.contains("<html"));
}

/// The published OpenAPI document. It is not one of the API's types: it is
/// read as the JSON that outside tools (schemathesis) read.
async fn openapi(s: &Server) -> Value {
    get(s, "/v1/openapi.json").await.ok(200).value()
}

/// The published document is complete: every `/v1` operation declares its
/// path parameters (with the id pattern), needs the key, and answers its
/// errors with the error body; `/healthz` and `/metrics` need no key.
#[tokio::test]
async fn openapi_declares_path_parameters_errors_and_public_routes() {
    let s = Server::start().await;
    let doc = openapi(&s).await;
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
            assert_errors_answered(&at, path, op);
            assert_path_parameters(&at, path, op);
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
    assert_eq!(
        operations, 34,
        "every /v1 operation is published (plans' seven the 25th to 31st, GET of usage, GET and PUT of the org's rate the 32nd to 34th)"
    );
}

/// `op` at `path` answers 400, 401, 503 (and 404 under an org, 413 with a
/// body), every error with the error body.
fn assert_errors_answered(at: &str, path: &str, op: &Value) {
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
}

/// Every `{name}` of `path` is a required path parameter of `op` with the id pattern.
fn assert_path_parameters(at: &str, path: &str, op: &Value) {
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
        assert_eq!(
            p["schema"]["pattern"], "^[A-Za-z0-9._:-]{1,128}$",
            "{at}: {name}"
        );
    }
}

/// Operation-specific answers and ranges, links, and references that resolve.
#[tokio::test]
async fn openapi_declares_answers_ranges_links_and_resolves_every_reference() {
    let s = Server::start().await;
    let doc = openapi(&s).await;
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
    let property = |schema: &str, name: &str| &schemas[schema]["properties"][name];
    assert_eq!(property("AcquireCall", "lease_ttl_s")["minimum"], 5);
    assert_eq!(property("CreateOrg", "limit")["maximum"], 1_000_000);
    // A reservation request may leave a type out (it means 0), each up to the highest limit.
    assert!(schemas["Reservations"].get("required").is_none());
    assert_eq!(property("Reservations", "chat")["maximum"], 1_000_000);
    assert!(schemas["PerType"].get("required").is_none());
    // Capacity planning's Plan and the operator's plans (PlanTier) are apart.
    assert!(schemas["Plan"]["properties"]["alternatives"].is_object());
    assert!(schemas["PlanTier"]["properties"]["orgs"].is_object());
    assert_eq!(
        doc["paths"]["/v1/plans/{plan}"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/PlanTier"
    );
    // A plan takes traffic or a window, not both.
    assert_eq!(
        schemas["PlanBody"]["not"]["required"],
        json!(["traffic", "window"])
    );
    // Each event kind is one object, told apart by `type`.
    let event = &schemas["Event"];
    assert_eq!(event["discriminator"]["propertyName"], "type");
    assert_eq!(
        event["discriminator"]["mapping"]["call.admitted"],
        "#/components/schemas/CallAdmittedEvent"
    );
    // Six kinds of version 1, version 2's org.burst_changed,
    // agent.caps_changed, org.blocked_changed and org.plan_changed, and
    // call.lease_changed.
    assert_eq!(event["oneOf"].as_array().unwrap().len(), 11);
    assert_eq!(
        event["discriminator"]["mapping"]["org.blocked_changed"],
        "#/components/schemas/OrgBlockedChangedEvent"
    );
    let kinds = [
        (
            "call.admitted",
            "CallAdmittedEvent",
            &["slot", "waited_ms"][..],
        ),
        (
            "call.lease_changed",
            "CallLeaseChangedEvent",
            &["agent", "call_type", "lease_ttl_ms"],
        ),
    ];
    for (tag, name, own) in kinds {
        let reference = format!("#/components/schemas/{name}");
        assert_eq!(event["discriminator"]["mapping"][tag], reference.as_str());
        let required = schemas[name]["required"].as_array().unwrap();
        for field in ["seq", "org", "at", "type", "call"].iter().chain(own) {
            let lacks = !required.contains(&json!(field));
            assert!(!lacks, "{name} lacks {field}");
        }
    }
    assert_eq!(property("Call", "queued_at")["format"], "date-time");
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
    let s = acme(2).await;
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
        let r = s.op(method, path, None).await;
        assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{path}");
        assert!(r.error().message.starts_with("path: "), "{r}");
    }
}

// The security headers (issue 12, item 16): the dashboard's page and assets
// run under a Content-Security-Policy that allows only their own script, style
// and API and forbids framing; every answer is `nosniff` and `no-referrer`;
// API answers are `no-store`.

/// The policy's directives, by name.
fn csp(a: &Answer) -> Vec<(String, Vec<String>)> {
    a.header("content-security-policy")
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_whitespace().map(String::from);
            (words.next().unwrap(), words.collect())
        })
        .collect()
}

fn directive(a: &Answer, name: &str) -> Vec<String> {
    csp(a)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in the policy"))
        .1
}

/// The page's policy: only its own origin, nothing inline, no framing.
fn assert_page_policy(a: &Answer) {
    assert_eq!(directive(a, "default-src"), ["'self'"]);
    for name in ["script-src", "style-src", "connect-src"] {
        assert_eq!(directive(a, name), ["'self'"], "{name}");
    }
    assert_eq!(directive(a, "frame-ancestors"), ["'none'"]);
    let policy = a.header("content-security-policy");
    for loose in ["unsafe-inline", "unsafe-eval", "*", "data:", "http:"] {
        assert!(!policy.contains(loose), "{loose} in {policy}");
    }
    assert_common(a);
}

fn assert_common(a: &Answer) {
    assert_eq!(a.header("x-content-type-options"), "nosniff");
    assert_eq!(a.header("referrer-policy"), "no-referrer");
    assert_eq!(a.header("x-frame-options"), "DENY");
}

#[tokio::test]
async fn the_dashboard_page_runs_under_a_strict_policy() {
    let s = Server::start().await;
    let r = s.send(None, Method::GET, "/", None).await.ok(200);
    assert!(r.header("content-type").starts_with("text/html"));
    assert_page_policy(&r);
}

#[tokio::test]
async fn the_assets_run_under_the_same_policy_and_are_not_sniffed() {
    let s = Server::start().await;
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let r = s
            .send(None, Method::GET, &format!("/assets/{file}"), None)
            .await;
        assert_eq!(r.status, 200, "{file}");
        assert!(r.header("content-type").starts_with(kind), "{file}");
        assert_page_policy(&r);
    }
    // An unknown asset is refused with the same headers.
    let r = s.send(None, Method::GET, "/assets/nope.js", None).await;
    assert_eq!(r.status, 404);
    assert_page_policy(&r);
}

#[tokio::test]
async fn api_answers_are_never_cached() {
    let s = Server::start().await;
    // A success, a refusal, and an endpoint that does not exist.
    for (path, key, want) in [
        ("/v1/orgs", Some(OP), 200),
        ("/v1/orgs", None, 401),
        ("/v1/openapi.json", None, 200),
        ("/v1/nope", Some(OP), 404),
    ] {
        let r = s.send(key, Method::GET, path, None).await;
        assert_eq!(r.status, want, "{path}");
        assert_eq!(r.header("cache-control"), "no-store", "{path}");
        assert_common(&r);
    }
}

#[tokio::test]
async fn the_page_itself_may_be_revalidated() {
    // `no-store` is for API answers; the dashboard's files keep their own caching.
    let s = Server::start().await;
    let r = s.send(None, Method::GET, "/assets/app.js", None).await;
    assert_eq!(r.header("cache-control"), "no-cache");
}
