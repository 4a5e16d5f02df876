//! SEMANTICS.md, version 2, "Plans": a plan change or a move to another
//! plan sets an org's limit and burst (and its plan label) at once
//! (`Engine::set_terms`). It is refused whole below the reservations, and
//! never admits beyond the new `L + B` on the way, whichever of the two
//! goes up and which goes down.

use slotgate_core::{
    AcquireRequest, Acquired, AgentId, CallId, CallType, Config, Engine, Error, EventKind, OrgId,
    PlanId, PlanLink, Reservations, Source, Timestamp,
};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_000_000 + ms)
}

fn acquire(e: &mut Engine, id: &str) -> Acquired {
    let agent = AgentId::new("A").unwrap();
    let req = AcquireRequest::new(CallId::new(id).unwrap(), agent, CallType::Chat);
    e.acquire("o", req, t(0)).unwrap()
}

/// An org of limit 2 and burst 2 with all four slots in use and two calls queued.
fn full() -> Engine {
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("o").unwrap(), 2, t(0)).unwrap();
    e.set_burst("o", 2, t(0)).unwrap();
    for id in ["c1", "c2", "c3", "c4"] {
        assert!(matches!(acquire(&mut e, id), Acquired::Admitted(_)));
    }
    for id in ["q1", "q2"] {
        assert!(matches!(acquire(&mut e, id), Acquired::Queued(_)));
    }
    e.drain_events().for_each(drop);
    e
}

fn standard() -> PlanLink {
    PlanLink::on(PlanId::new("standard").unwrap())
}

#[test]
fn a_higher_limit_with_a_lower_burst_admits_nothing_beyond_the_new_total() {
    let mut e = full();
    // L 2 -> 3, B 2 -> 0: L + B = 3 < N = 4. Raising the limit first would
    // have let a queued call in under the old burst.
    let v = e.set_terms("o", standard(), 3, 0, t(1)).unwrap();
    assert_eq!((v.limit, v.burst, v.active, v.queued), (3, 0, 4, 2));
    assert_eq!(v.plan, standard());
    let kinds: Vec<&str> = e
        .drain_events()
        .map(|ev| match ev.kind {
            EventKind::PlanChanged { .. } => "plan",
            EventKind::BurstChanged { .. } => "burst",
            EventKind::LimitChanged { .. } => "limit",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["plan", "burst", "limit"]);
    // Raising both admits up to the new total at once.
    let v = e.set_terms("o", standard(), 5, 1, t(2)).unwrap();
    assert_eq!((v.active, v.queued), (6, 0));
}

#[test]
fn below_the_reservations_nothing_changes_not_even_the_label() {
    let mut e = full();
    let r = Reservations {
        chat: 2,
        ..Reservations::default()
    };
    e.set_reservations("o", &AgentId::new("A").unwrap(), r, t(0))
        .unwrap();
    e.drain_events().for_each(drop);
    let refused = e.set_terms("o", standard(), 1, 5, t(1));
    assert!(matches!(
        refused,
        Err(Error::LimitBelowReservations { reserved: 2 })
    ));
    let v = e.org("o").unwrap();
    assert_eq!(
        (v.limit, v.burst, v.plan.clone()),
        (2, 2, PlanLink::default())
    );
    assert_eq!(v.plan.limit_source, Source::Org);
    assert_eq!(e.drain_events().count(), 0, "no event");
}
