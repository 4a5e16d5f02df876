//! The service's own tests, for what only its insides can set up: an org
//! whose engine the test holds locked, as a long command would.

use std::sync::Arc;
use std::time::Duration;

use slotgate_api::{AcquireCall, CallState, CallType, CreateOrg};
use slotgate_core::Config;
use tokio::sync::watch;

use super::{Admission, Service, Storage};
use crate::auth::{Keys, Principal};
use crate::store::sqlite::SqliteStore;
use crate::store::{Retention, Store};

/// Far longer than any step below takes: only a step that waits for
/// another org's lock (the fault tested) gets near it.
const BOUND: Duration = Duration::from_secs(30);

fn chat(agent: &str) -> AcquireCall {
    AcquireCall {
        id: None,
        agent: agent.into(),
        call_type: CallType::Chat,
        lease_ttl_s: None,
        max_wait_s: None,
        wait_s: None,
        if_blocked: None,
    }
}

#[tokio::test]
async fn an_org_whose_engine_is_locked_holds_up_its_own_requests_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let day = Duration::from_secs(24 * 3600);
    let retention = Retention {
        ended_calls: day,
        events: day,
        usage: day,
    };
    let (store, tickets) =
        SqliteStore::open(dir.path(), retention).expect("a new SQLite store opens");
    let (_stop, shutdown) = watch::channel(false);
    let service = Arc::new(Service::new(
        Config::default(),
        Vec::new(),
        Vec::new(),
        Storage {
            store: Arc::new(store),
            tickets,
            role: crate::replication::role::single(),
        },
        Keys::new("operator-key", Vec::new()),
        false,
        shutdown,
    ));
    let op = Principal::Operator;
    for id in ["busy", "quiet"] {
        let org = CreateOrg {
            id: id.into(),
            limit: Some(2),
            plan: None,
        };
        service
            .create_org(&op, org)
            .await
            .expect("the org is created");
    }

    // The busy org's engine is held, as by a long command of its own.
    let held = service
        .cores
        .lock("busy")
        .await
        .expect("the busy org exists");
    let waiting = {
        let service = service.clone();
        tokio::spawn(async move {
            service
                .acquire(&Principal::Operator, "busy", chat("a"))
                .await
        })
    };
    let (admission, call) = tokio::time::timeout(BOUND, service.acquire(&op, "quiet", chat("b")))
        .await
        .expect("the quiet org's acquire does not wait for the busy org's lock")
        .expect("the quiet org's acquire succeeds");
    assert_eq!(admission, Admission::Admitted);
    assert_eq!(call.state, CallState::Active);
    let quiet = tokio::time::timeout(BOUND, service.org(&op, "quiet"))
        .await
        .expect("reading the quiet org does not wait for the busy org's lock")
        .expect("the quiet org reads");
    assert_eq!(quiet.active, 1);
    // The busy org's own request waits for its turn, and gets it once released.
    assert!(
        !waiting.is_finished(),
        "the busy org's acquire waits while its engine is held"
    );
    drop(held);
    let (admission, _) = tokio::time::timeout(BOUND, waiting)
        .await
        .expect("the busy org's acquire runs once its engine is released")
        .expect("the acquire's task does not panic")
        .expect("the busy org's acquire succeeds");
    assert_eq!(admission, Admission::Admitted);
}

#[tokio::test]
async fn case_19_a_plan_change_that_would_break_an_org_is_refused_whole() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let day = Duration::from_secs(24 * 3600);
    let retention = Retention {
        ended_calls: day,
        events: day,
        usage: day,
    };
    let (store, tickets) =
        SqliteStore::open(dir.path(), retention).expect("a new SQLite store opens");
    let (_stop, shutdown) = watch::channel(false);
    let plans = store
        .load(super::ended_since(Config::default()))
        .expect("the new store loads")
        .plans;
    let service = Service::new(
        Config::default(),
        Vec::new(),
        Vec::new(),
        Storage {
            store: Arc::new(store),
            tickets,
            role: crate::replication::role::single(),
        },
        Keys::new("operator-key", Vec::new()),
        false,
        shutdown,
    )
    .with_plans(plans);
    let op = Principal::Operator;
    // Plan `standard` (20); org X on it reserves 18.
    for id in ["w", "x"] {
        let org = CreateOrg {
            id: id.into(),
            limit: None,
            plan: Some("standard".into()),
        };
        let org = service
            .create_org(&op, org)
            .await
            .expect("the org is created");
        assert_eq!((org.plan.as_deref(), org.limit), (Some("standard"), 20));
    }
    let r = slotgate_api::PerType {
        chat: 18,
        ..Default::default()
    };
    service
        .set_reservations(&op, "x", "agent", r)
        .await
        .expect("18 of 20 reserved");
    let before = (
        service.org(&op, "w").await.unwrap(),
        service.org(&op, "x").await.unwrap(),
    );

    // Set the plan's limit to 15: refused, naming X; no org changes.
    let lower = slotgate_api::UpdatePlan {
        limit: Some(15),
        burst: None,
    };
    match service.update_plan(&op, "standard", lower).await {
        Err(super::Error::PlanBelowReservations { orgs, count, .. }) => {
            assert_eq!((orgs, count), (vec![("x".to_string(), 18)], 1));
        }
        other => panic!("refused naming x, not {other:?}"),
    }
    let after = (
        service.org(&op, "w").await.unwrap(),
        service.org(&op, "x").await.unwrap(),
    );
    assert_eq!(after, before);
    assert_eq!(service.get_plan(&op, "standard").await.unwrap().limit, 20);
}
