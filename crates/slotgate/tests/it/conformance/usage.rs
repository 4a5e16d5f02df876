//! Usage by hour over HTTP (`GET /v1/orgs/{org}/usage`, API.md "Usage by
//! hour") against the real `slotgate serve` binary: the figures of a short
//! real history, that they go on from the stored hour after `kill -9` and a
//! restart (not from zero), the roll-up by day, and refusals naming the
//! field. With `SLOTGATE_TEST_STORE=postgres` (or `replicas`) the same
//! tests run on PostgreSQL. The figures of a generated week are checked
//! against a recount in `src/usage/tests.rs`.

use crate::support::Server;
use reqwest::Method;
use slotgate_api::{CallType, ErrorCode, Role, Usage, UsageFigures};

use CallType::{Chat, Inbound};

/// The org's usage by hour over the last day.
async fn usage(s: &Server, query: &str) -> Usage {
    s.get(&format!("/v1/orgs/acme/usage{query}")).await
}

/// The figures of every step added up: peaks the highest, counts the sums
/// (a test may run across an hour's end).
fn total(u: &Usage, pick: impl Fn(&slotgate_api::UsageStep) -> &UsageFigures) -> UsageFigures {
    let mut t = UsageFigures::default();
    for s in &u.steps {
        let f = pick(s);
        t.peak_active = t.peak_active.max(f.peak_active);
        t.peak_queued = t.peak_queued.max(f.peak_queued);
        t.admitted += f.admitted;
        t.waited += f.waited;
        t.gave_up += f.gave_up;
        t.wait_p50_ms = t.wait_p50_ms.or(f.wait_p50_ms);
    }
    t
}

fn at_limit(u: &Usage) -> f64 {
    u.steps.iter().map(|s| s.at_limit_seconds).sum()
}

#[tokio::test]
async fn usage_counts_admitted_waited_and_gave_up_and_goes_on_after_a_restart() {
    let mut s = Server::start().await;
    s.create_org("acme", 1).await;
    // c1 takes the one slot; c2 and c3 queue; c3 gives up; c2 gets c1's slot.
    s.acquire("acme", "c1", "agent-a", Chat).await.ok(201);
    s.acquire("acme", "c2", "agent-a", Inbound).await.ok(202);
    s.acquire("acme", "c3", "agent-b", Chat).await.ok(202);
    s.release("acme", "c3").await;
    s.release("acme", "c1").await;

    let u = usage(&s, "").await;
    assert_eq!(u.steps.len(), 24, "a day of hours by default");
    let all = total(&u, |s| &s.overall);
    assert_eq!(
        (all.admitted, all.waited, all.gave_up),
        (2, 1, 1),
        "{all:?}"
    );
    assert_eq!((all.peak_active, all.peak_queued), (1, 2), "{all:?}");
    assert!(all.wait_p50_ms.is_some(), "c2 waited: {all:?}");
    let chat = total(&u, |s| &s.types.chat);
    assert_eq!((chat.admitted, chat.waited, chat.gave_up), (1, 0, 1));
    let inbound = total(&u, |s| &s.types.inbound);
    assert_eq!(
        (inbound.admitted, inbound.waited, inbound.gave_up),
        (1, 1, 0)
    );
    assert!(
        at_limit(&u) > 0.0,
        "one slot, one call active: at the limit"
    );
    assert!(u.steps.iter().any(|s| s.limit == 1));

    // Every answer was durable: after kill -9 the hour goes on from its row.
    s.kill9().await;
    s.restart().await;
    let after = total(&usage(&s, "").await, |s| &s.overall);
    assert_eq!((after.admitted, after.waited, after.gave_up), (2, 1, 1));
    s.acquire("acme", "c4", "agent-a", Chat).await.ok(202);
    s.release("acme", "c2").await;
    let u = usage(&s, "").await;
    let all = total(&u, |s| &s.overall);
    assert_eq!(
        (all.admitted, all.waited, all.gave_up),
        (3, 2, 1),
        "counted on from the stored hour, not from zero: {all:?}"
    );
    assert_eq!((all.peak_active, all.peak_queued), (1, 2));

    // By day: the same counts in one or two days.
    let days = usage(&s, "?step=1d").await;
    assert_eq!(days.steps.len(), 7, "a week of days by default");
    let by_day = total(&days, |s| &s.overall);
    assert_eq!((by_day.admitted, by_day.waited, by_day.gave_up), (3, 2, 1));
}

#[tokio::test]
async fn usage_refuses_bad_ranges_naming_the_field_and_runtime_keys() {
    let s = Server::start().await;
    s.create_org("acme", 2).await;
    let path = |q: &str| format!("/v1/orgs/acme/usage?{q}");
    let cases = [
        (path("from=yesterday"), "from"),
        (path("to=2026-13-01T00:00:00Z"), "to"),
        (
            path("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z"),
            "to",
        ),
        (path("step=2h"), "step"),
        (
            path("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"),
            "from",
        ),
        (path("form=2026-01-01T00:00:00Z"), "form"),
    ];
    for (p, field) in &cases {
        let r = s.op(Method::GET, p, None).await;
        assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest), "{p}: {r}");
        assert!(r.error().message.contains(field), "{p}: {r}");
    }
    // Two months by day is fine.
    let u: Usage = s
        .get(&path(
            "from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&step=1d",
        ))
        .await;
    assert_eq!(u.steps.len(), 59);
    assert_eq!(u.from, "2026-01-01T00:00:00.000Z");

    let runtime = s.new_key("acme", Role::Runtime, "rt").await;
    let r = s
        .send(Some(&runtime.key), Method::GET, "/v1/orgs/acme/usage", None)
        .await;
    assert_eq!(r.refusal().0, 403, "{r}");
    let admin = s.new_key("acme", Role::Admin, "ad").await;
    s.send(Some(&admin.key), Method::GET, "/v1/orgs/acme/usage", None)
        .await
        .ok(200);
    let r = s.op(Method::GET, "/v1/orgs/nobody/usage", None).await;
    assert_eq!(r.refusal().0, 404, "{r}");
}
