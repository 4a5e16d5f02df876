//! Plans over HTTP (SEMANTICS.md, "Version 2", "Plans", case 19; API.md):
//! the plans a new server has, creating, changing and deleting them, orgs
//! on them and their own overrides, one durable change of every org on a
//! plan or none, against the real `slotgate serve` binary on a fresh data
//! directory (`support/mod.rs`), surviving `kill -9`. With
//! `SLOTGATE_TEST_STORE=postgres` (or `replicas`) the same tests run on
//! PostgreSQL.

use crate::support::{Answer, Server};
use reqwest::Method;
use serde_json::{json, Value};
use slotgate_api::CallType::Chat;
use slotgate_api::{ErrorCode, EventKind, Org, Plan, PlanEventPage, PlanList, Source};

/// `POST /v1/orgs` with the operator key.
async fn create_org(s: &Server, body: Value) -> Answer {
    s.op(Method::POST, "/v1/orgs", Some(&body)).await
}

/// `PATCH /v1/plans/{plan}` with the operator key.
async fn patch_plan(s: &Server, plan: &str, body: Value) -> Answer {
    let path = format!("/v1/plans/{plan}");
    s.op(Method::PATCH, &path, Some(&body)).await
}

/// `PUT /v1/orgs/{org}/plan` with the operator key.
async fn put_plan(s: &Server, org: &str, plan: Value) -> Answer {
    let path = format!("/v1/orgs/{org}/plan");
    s.op(Method::PUT, &path, Some(&json!({ "plan": plan })))
        .await
}

/// `PUT /v1/orgs/{org}/limit` with the operator key.
async fn put_limit(s: &Server, org: &str, limit: Value) -> Answer {
    let path = format!("/v1/orgs/{org}/limit");
    s.op(Method::PUT, &path, Some(&json!({ "limit": limit })))
        .await
}

/// The org's plan, limit and burst, and where they come from.
fn terms(o: &Org) -> (Option<&str>, u32, Source, u32, Source) {
    (
        o.plan.as_deref(),
        o.limit,
        o.limit_source,
        o.burst,
        o.burst_source,
    )
}

#[tokio::test]
async fn a_new_server_has_standard_and_enterprise_and_plans_are_managed() {
    let s = Server::start().await;
    let list: PlanList = s.get("/v1/plans").await;
    let found: Vec<_> = list
        .plans
        .iter()
        .map(|p| (p.id.as_str(), p.limit, p.burst, p.orgs))
        .collect();
    assert_eq!(found, [("enterprise", 100, 20, 0), ("standard", 20, 0, 0)]);

    let body = json!({"id": "pro", "limit": 50, "burst": 5});
    let r = s.op(Method::POST, "/v1/plans", Some(&body)).await;
    let pro: Plan = r.ok(201).json();
    assert_eq!((pro.limit, pro.burst, pro.orgs), (50, 5, 0));
    let r = s.op(Method::POST, "/v1/plans", Some(&body)).await;
    assert_eq!(r.refusal(), (409, ErrorCode::PlanExists));
    let pro: Plan = patch_plan(&s, "pro", json!({"burst": 7}))
        .await
        .ok(200)
        .json();
    assert_eq!(
        (pro.limit, pro.burst),
        (50, 7),
        "a missing field is unchanged"
    );

    let r = patch_plan(&s, "gold", json!({"limit": 1})).await;
    assert_eq!(r.refusal(), (404, ErrorCode::PlanNotFound));
    let r = s.op(Method::GET, "/v1/plans/gold", None).await;
    assert_eq!(r.refusal(), (404, ErrorCode::PlanNotFound));
    let r = create_org(&s, json!({"id": "acme", "plan": "gold"})).await;
    assert_eq!(r.refusal(), (404, ErrorCode::PlanNotFound));

    s.op(Method::DELETE, "/v1/plans/pro", None).await.ok(204);
    let r = s.op(Method::DELETE, "/v1/plans/pro", None).await;
    assert_eq!(r.refusal(), (404, ErrorCode::PlanNotFound));

    // Plans are the operator's: an org admin may neither read nor change them.
    s.create_org("acme", 5).await;
    let admin = s
        .new_key("acme", slotgate_api::Role::Admin, "admin")
        .await
        .key;
    let r = s.send(Some(&admin), Method::GET, "/v1/plans", None).await;
    assert_eq!(r.refusal(), (403, ErrorCode::Forbidden));
    let r = s
        .send(
            Some(&admin),
            Method::PUT,
            "/v1/orgs/acme/plan",
            Some(&json!({"plan": "enterprise"})),
        )
        .await;
    assert_eq!(r.refusal(), (403, ErrorCode::Forbidden));

    let page: PlanEventPage = s.get("/v1/plan-events").await;
    let seen: Vec<_> = page
        .events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.plan.as_str(),
                e.old.is_some(),
                e.new.is_some(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("plan.changed", "pro", false, true),
            ("plan.changed", "pro", true, true),
            ("plan.changed", "pro", true, false),
        ]
    );
    assert_eq!(page.next, page.events.last().unwrap().seq);
}

#[tokio::test]
async fn an_org_takes_its_plans_terms_unless_it_sets_its_own() {
    let s = Server::start().await;
    // A bare limit is exactly as before: no plan, its own limit.
    let bare: Org = create_org(&s, json!({"id": "bare", "limit": 7}))
        .await
        .ok(201)
        .json();
    assert_eq!(terms(&bare), (None, 7, Source::Org, 0, Source::Org));
    let r = create_org(&s, json!({"id": "none"})).await;
    assert_eq!(r.refusal(), (400, ErrorCode::InvalidRequest));
    assert!(
        r.error().message.starts_with("limit"),
        "{}",
        r.error().message
    );

    let x: Org = create_org(&s, json!({"id": "x", "plan": "enterprise"}))
        .await
        .ok(201)
        .json();
    assert_eq!(
        terms(&x),
        (Some("enterprise"), 100, Source::Plan, 20, Source::Plan)
    );
    let y: Org = create_org(&s, json!({"id": "y", "plan": "standard", "limit": 30}))
        .await
        .ok(201)
        .json();
    assert_eq!(
        terms(&y),
        (Some("standard"), 30, Source::Org, 0, Source::Plan)
    );

    // The org's own limit overrides the plan's; null returns to the plan's.
    let x: Org = put_limit(&s, "x", json!(40)).await.ok(200).json();
    assert_eq!(
        terms(&x),
        (Some("enterprise"), 40, Source::Org, 20, Source::Plan)
    );
    patch_plan(&s, "enterprise", json!({"limit": 120, "burst": 10}))
        .await
        .ok(200);
    let x = s.org("x").await;
    assert_eq!(
        (x.limit, x.burst),
        (40, 10),
        "its own limit stays, the plan's burst follows"
    );
    let x: Org = put_limit(&s, "x", Value::Null).await.ok(200).json();
    assert_eq!(
        terms(&x),
        (Some("enterprise"), 120, Source::Plan, 10, Source::Plan)
    );
    let path = "/v1/orgs/x/burst";
    let x: Org = s
        .op(Method::PUT, path, Some(&json!({"burst": 3})))
        .await
        .ok(200)
        .json();
    assert_eq!((x.burst, x.burst_source), (3, Source::Org));
    let x: Org = s
        .op(Method::PUT, path, Some(&json!({"burst": null})))
        .await
        .ok(200)
        .json();
    assert_eq!((x.burst, x.burst_source), (10, Source::Plan));
    let r = put_limit(&s, "bare", Value::Null).await;
    assert_eq!(r.refusal(), (409, ErrorCode::NoPlan));

    // Moving an org is a limit change: an upgrade, a downgrade, or off plans.
    let bare: Org = put_plan(&s, "bare", json!("standard")).await.ok(200).json();
    assert_eq!(
        terms(&bare),
        (Some("standard"), 20, Source::Plan, 0, Source::Plan)
    );
    let bare: Org = put_plan(&s, "bare", Value::Null).await.ok(200).json();
    assert_eq!(terms(&bare), (None, 20, Source::Org, 0, Source::Org));
    let r = put_plan(&s, "bare", json!("gold")).await;
    assert_eq!(r.refusal(), (404, ErrorCode::PlanNotFound));
    s.reserve("bare", "A", json!({"chat": 15})).await;
    let r = put_plan(&s, "bare", json!("tiny-plan-missing")).await;
    assert_eq!(r.refusal(), (404, ErrorCode::PlanNotFound));
    s.op(
        Method::POST,
        "/v1/plans",
        Some(&json!({"id": "tiny", "limit": 10})),
    )
    .await
    .ok(201);
    let r = put_plan(&s, "bare", json!("tiny")).await;
    assert_eq!(r.refusal(), (409, ErrorCode::LimitBelowReservations));
    assert_eq!(
        terms(&s.org("bare").await),
        (None, 20, Source::Org, 0, Source::Org)
    );

    let events = s.all_events("x").await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            // Created on enterprise: 100 (as created), burst 20.
            "org.created",
            "org.plan_changed",
            "org.burst_changed",
            // Its own limit 40.
            "org.plan_changed",
            "org.limit_changed",
            // The plan's burst 10 (the plan's limit is not its own).
            "org.burst_changed",
            // Back to the plan's limit; its own burst; back to the plan's.
            "org.plan_changed",
            "org.limit_changed",
            "org.plan_changed",
            "org.burst_changed",
            "org.plan_changed",
            "org.burst_changed",
        ]
    );
    let EventKind::PlanChanged {
        old,
        new,
        limit_source,
        ..
    } = &events[1].kind
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (old.as_deref(), new.as_deref(), *limit_source),
        (None, Some("enterprise"), Source::Plan)
    );
}

#[tokio::test]
async fn case_19_a_plan_change_that_breaks_an_org_is_refused_whole() {
    let s = Server::start().await;
    for org in ["a", "x", "z"] {
        create_org(&s, json!({"id": org, "plan": "standard"}))
            .await
            .ok(201);
    }
    create_org(&s, json!({"id": "own", "plan": "standard", "limit": 20}))
        .await
        .ok(201);
    s.reserve("x", "agent", json!({"chat": 18})).await;
    s.reserve("own", "agent", json!({"chat": 18})).await;
    let before: Vec<Org> = futures_join(&s, &["a", "own", "x", "z"]).await;

    // Case 19: X reserves 18 and takes the plan's limit: 15 would break it.
    let r = patch_plan(&s, "standard", json!({"limit": 15})).await;
    assert_eq!(r.refusal(), (409, ErrorCode::PlanBelowReservations));
    let e = r.error();
    assert_eq!((e.orgs, e.count), (Some(vec!["x".to_string()]), Some(1)));
    assert!(e.message.contains("x (reserves 18)"), "{}", e.message);
    assert_eq!(
        futures_join(&s, &["a", "own", "x", "z"]).await,
        before,
        "no org changed"
    );
    let plan: Plan = s.get("/v1/plans/standard").await;
    assert_eq!((plan.limit, plan.orgs), (20, 4));

    // Lowered once X fits: every org on the plan that takes its limit changes.
    s.reserve("x", "agent", json!({"chat": 15})).await;
    assert_eq!(s.acquire("a", "c1", "A", Chat).await.status, 201);
    let plan: Plan = patch_plan(&s, "standard", json!({"limit": 15, "burst": 2}))
        .await
        .ok(200)
        .json();
    assert_eq!((plan.limit, plan.burst, plan.orgs), (15, 2, 4));
    for (org, limit) in [("a", 15), ("x", 15), ("z", 15), ("own", 20)] {
        let o = s.org(org).await;
        assert_eq!((o.limit, o.burst), (limit, 2), "{org}");
    }
    let a = s.org("a").await;
    assert_eq!(a.active, 1, "lowering ends no call");
    let changed = s
        .all_events("z")
        .await
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::LimitChanged {
                    old: 20,
                    new: 15,
                    ..
                }
            )
        })
        .count();
    assert_eq!(changed, 1);
    let page: PlanEventPage = s.get("/v1/plan-events").await;
    let last = page.events.last().expect("plan.changed");
    assert_eq!((last.plan.as_str(), last.orgs_changed), ("standard", 4));

    // A plan orgs are on cannot be deleted; the answer names them.
    let r = s.op(Method::DELETE, "/v1/plans/standard", None).await;
    assert_eq!(r.refusal(), (409, ErrorCode::PlanInUse));
    assert_eq!(r.error().count, Some(4));
    assert_eq!(r.error().orgs.map(|o| o.len()), Some(4));
}

#[tokio::test]
async fn plans_and_orgs_on_them_survive_kill_9() {
    let mut s = Server::start().await;
    s.op(
        Method::POST,
        "/v1/plans",
        Some(&json!({"id": "pro", "limit": 8, "burst": 1})),
    )
    .await
    .ok(201);
    create_org(&s, json!({"id": "acme", "plan": "pro"}))
        .await
        .ok(201);
    create_org(&s, json!({"id": "own", "plan": "pro", "limit": 3}))
        .await
        .ok(201);
    patch_plan(&s, "enterprise", json!({"limit": 90}))
        .await
        .ok(200);
    patch_plan(&s, "pro", json!({"limit": 9})).await.ok(200);
    let before: Vec<Org> = futures_join(&s, &["acme", "own"]).await;
    let plans: PlanList = s.get("/v1/plans").await;

    s.kill9().await;
    s.restart().await;
    assert_eq!(futures_join(&s, &["acme", "own"]).await, before);
    assert_eq!(s.get::<PlanList>("/v1/plans").await, plans);
    let acme = s.org("acme").await;
    assert_eq!(
        terms(&acme),
        (Some("pro"), 9, Source::Plan, 1, Source::Plan)
    );
    // Still one plan: a change after the restart reaches both orgs.
    patch_plan(&s, "pro", json!({"burst": 4})).await.ok(200);
    assert_eq!(s.org("own").await.burst, 4);
}

#[tokio::test]
async fn bad_plan_bodies_are_refused_naming_the_field() {
    let s = Server::start().await;
    s.create_org("acme", 5).await;
    let before = s.get::<PlanList>("/v1/plans").await;
    #[rustfmt::skip]
    let cases: &[(Method, &str, &str, &str)] = &[
        (Method::POST, "/v1/plans", "{\"id\": \"a b\", \"limit\": 1}", "id"),
        (Method::POST, "/v1/plans", "{\"id\": \"p\", \"limit\": -1}", "limit"),
        (Method::POST, "/v1/plans", "{\"id\": \"p\"}", "limit"),
        (Method::POST, "/v1/plans", "{\"id\": \"p\", \"limit\": 1, \"burst\": 1000001}", "burst"),
        (Method::POST, "/v1/plans", "{\"id\": \"p\", \"limit\": 1, \"tier\": 1}", "tier"),
        (Method::PATCH, "/v1/plans/standard", "{\"limit\": \"ten\"}", "limit"),
        (Method::PUT, "/v1/orgs/acme/plan", "{\"plan\": \"a b\"}", "plan"),
        (Method::PUT, "/v1/orgs/acme/plan", "{}", "plan"),
        (Method::POST, "/v1/orgs", "{\"id\": \"o\", \"plan\": 5}", "plan"),
        (Method::PUT, "/v1/orgs/acme/limit", "{}", "limit"),
    ];
    s.assert_refused_naming(cases).await;
    assert_eq!(
        s.get::<PlanList>("/v1/plans").await,
        before,
        "nothing changed"
    );
}

/// The orgs, in order.
async fn futures_join(s: &Server, orgs: &[&str]) -> Vec<Org> {
    let mut all = Vec::new();
    for org in orgs {
        all.push(s.org(org).await);
    }
    all
}
