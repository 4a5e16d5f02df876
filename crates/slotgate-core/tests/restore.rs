//! Restoring an engine from what a store keeps gives back the same org, with
//! leases and queue holds granted one `lease_ttl` of grace from the restart.

use std::time::Duration;

use slotgate_core::{
    AcquireRequest, AgentId, CallId, CallState, CallType, Config, Engine, ListFilter, OrgId,
    Reservations, RestoredCall, RestoredState, Timestamp,
};

fn t(s: u64) -> Timestamp {
    Timestamp::from_millis(1_000_000 + s * 1000)
}

fn acquire(e: &mut Engine, id: &str, agent: &str, call_type: CallType, at: Timestamp) {
    let mut req = AcquireRequest::new(
        CallId::new(id).unwrap(),
        AgentId::new(agent).unwrap(),
        call_type,
    );
    req.lease_ttl = Duration::from_secs(30);
    if id.starts_with('w') {
        req.max_wait = Some(Duration::from_secs(100));
    }
    e.acquire("acme", req, at).unwrap();
}

/// Copies every live call of `from` into a fresh engine, as a store would.
fn restore(from: &Engine) -> Engine {
    restore_with(from, &[])
}

/// As [`restore`], with the lease lengths a store keeps for some calls
/// (`(id, lease_ttl_ms)`) in place of the engine's.
fn restore_with(from: &Engine, lengths: &[(String, u64)]) -> Engine {
    let mut to = Engine::new(Config::default());
    let org = from.org("acme").unwrap();
    to.restore_org(OrgId::new("acme").unwrap(), org.limit, 42)
        .unwrap();
    for a in &org.agents {
        to.restore_reservations("acme", &a.id, a.reserved).unwrap();
    }
    let active = from.active_calls("acme").unwrap();
    let queued: Vec<_> = from.queued_calls("acme", from.now()).unwrap().collect();
    for c in active.into_iter().chain(queued) {
        let state = match c.state {
            CallState::Active => RestoredState::Active {
                slot: c.slot.unwrap(),
                admitted_at: c.admitted_at.unwrap(),
            },
            CallState::Queued => RestoredState::Queued {
                max_wait_expires_at: c.max_wait_expires_at,
            },
            CallState::Ended => unreachable!("only live calls are listed"),
        };
        let stored = lengths.iter().find(|(id, _)| id == c.id.as_str());
        let call = RestoredCall {
            id: c.id,
            agent: c.agent,
            call_type: c.call_type,
            queued_at: c.queued_at,
            lease_ttl: Duration::from_millis(stored.map_or(c.lease_ttl_ms, |(_, ms)| *ms)),
            state,
        };
        to.restore_call("acme", call).unwrap();
    }
    to
}

#[test]
fn a_restored_engine_has_the_same_org_queue_and_grace_on_leases() {
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("acme").unwrap(), 4, t(0)).unwrap();
    let r = Reservations {
        chat: 2,
        ..Default::default()
    };
    e.set_reservations("acme", &AgentId::new("A").unwrap(), r, t(0))
        .unwrap();
    acquire(&mut e, "a1", "A", CallType::Chat, t(0));
    acquire(&mut e, "a2", "A", CallType::Chat, t(1));
    acquire(&mut e, "b1", "B", CallType::Inbound, t(2));
    acquire(&mut e, "b2", "B", CallType::Inbound, t(3));
    acquire(&mut e, "w1", "B", CallType::Inbound, t(4));
    acquire(&mut e, "q2", "C", CallType::Chat, t(5));

    let mut r = restore(&e);
    let restart = t(20);
    r.resume(restart);

    let (before, after) = (e.org("acme").unwrap(), r.org("acme").unwrap());
    assert_eq!(before, after);
    let ids = |e: &Engine| {
        e.queued_calls("acme", e.now())
            .unwrap()
            .map(|c| (c.id, c.position))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&e), ids(&r));

    for c in r.active_calls("acme").unwrap() {
        assert_eq!(
            c.lease_expires_at,
            Some(restart + Duration::from_secs(30)),
            "{}",
            c.id
        );
        assert_eq!(
            c.admitted_at,
            e.call("acme", c.id.as_str(), e.now()).unwrap().admitted_at
        );
    }
    let w1 = r.call("acme", "w1", r.now()).unwrap();
    assert_eq!(w1.hold_expires_at, Some(restart + Duration::from_secs(30)));
    assert_eq!(
        w1.max_wait_expires_at,
        Some(t(104)),
        "max_wait keeps its instant"
    );

    // New events continue the org's numbering.
    r.drain_events().for_each(drop);
    r.release("acme", "a1", restart).unwrap();
    let seqs: Vec<u64> = r.drain_events().map(|ev| ev.seq).collect();
    assert_eq!(seqs.first(), Some(&43));

    // The grace ends: calls nobody renewed expire, holds lapse.
    r.handle_timeout(restart + Duration::from_secs(30));
    assert_eq!(r.org("acme").unwrap().active, 0);
    assert_eq!(r.org("acme").unwrap().queued, 0);
}

#[test]
fn a_command_that_arrives_after_a_deadline_sees_what_the_deadline_did() {
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("acme").unwrap(), 1, t(0)).unwrap();
    let mut first = AcquireRequest::new(
        CallId::new("c1").unwrap(),
        AgentId::new("a").unwrap(),
        CallType::Chat,
    );
    first.lease_ttl = Duration::from_secs(5);
    e.acquire("acme", first, t(0)).unwrap();
    // No handle_timeout ran since the lease passed: the heartbeat still finds it ended.
    let err = e.heartbeat("acme", "c1", None, t(6)).unwrap_err();
    assert!(
        matches!(err, slotgate_core::Error::CallEnded { .. }),
        "{err:?}"
    );
    let next = AcquireRequest::new(
        CallId::new("c2").unwrap(),
        AgentId::new("b").unwrap(),
        CallType::Chat,
    );
    assert!(matches!(
        e.acquire("acme", next, t(6)).unwrap(),
        slotgate_core::Acquired::Admitted(_)
    ));
}

#[test]
fn a_restored_engine_has_no_history_of_frees_so_no_expected_waits_yet() {
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("acme").unwrap(), 1, t(0)).unwrap();
    acquire(&mut e, "a0", "A", CallType::Chat, t(0));
    for i in 1..=slotgate_core::MIN_FREES as u64 {
        acquire(&mut e, &format!("a{i}"), "A", CallType::Chat, t(i));
        e.release("acme", &format!("a{}", i - 1), t(i + 1)).unwrap();
    }
    acquire(&mut e, "q", "A", CallType::Chat, t(20));
    assert!(e
        .call("acme", "q", t(20))
        .unwrap()
        .estimated_wait_ms
        .is_some());

    let mut r = restore(&e);
    r.resume(t(30));
    let q = r.call("acme", "q", t(30)).unwrap();
    assert_eq!((q.position, q.estimated_wait_ms), (Some(1), None));
}

#[test]
fn an_ended_call_shows_from_the_store_as_the_engine_shows_it() {
    let mut e = Engine::new(Config {
        ended_retention: Duration::from_secs(3600),
        ..Config::default()
    });
    e.create_org(OrgId::new("acme").unwrap(), 1, t(0)).unwrap();
    acquire(&mut e, "a1", "A", CallType::Chat, t(0));
    acquire(&mut e, "w1", "B", CallType::Inbound, t(1));
    e.release("acme", "a1", t(2)).unwrap(); // released; w1 admitted
    e.release("acme", "w1", t(3)).unwrap(); // released after a wait in the queue
    acquire(&mut e, "q1", "C", CallType::Chat, t(4));
    acquire(&mut e, "q2", "C", CallType::Chat, t(4));
    e.release("acme", "q2", t(5)).unwrap(); // cancelled, never admitted
    for id in ["a1", "w1", "q2"] {
        let shown = e.call("acme", id, t(6)).unwrap();
        assert_eq!(shown.state, CallState::Ended);
        let kept = RestoredCall {
            id: shown.id.clone(),
            agent: shown.agent.clone(),
            call_type: shown.call_type,
            queued_at: shown.queued_at,
            lease_ttl: Duration::from_millis(shown.lease_ttl_ms),
            state: RestoredState::Ended {
                slot: shown.slot,
                admitted_at: shown.admitted_at,
                ended_at: shown.ended_at.unwrap(),
                reason: shown.end_reason.unwrap(),
            },
        };
        assert_eq!(kept.ended_view(), Some(shown), "{id}");
    }
    let active = e.call("acme", "q1", t(6)).unwrap();
    let live = RestoredCall {
        id: active.id,
        agent: active.agent,
        call_type: active.call_type,
        queued_at: active.queued_at,
        lease_ttl: Duration::from_secs(30),
        state: RestoredState::Active {
            slot: active.slot.unwrap(),
            admitted_at: active.admitted_at.unwrap(),
        },
    };
    assert_eq!(live.ended_view(), None);
}

#[test]
fn restored_active_calls_are_listed_oldest_admission_first_whatever_order_they_come_in() {
    let mut e = Engine::new(Config::default());
    e.restore_org(OrgId::new("acme").unwrap(), 4, 7).unwrap();
    // The store gives them in arrival order; "late" arrived first but was admitted last.
    for (id, agent, admitted) in [("late", "A", 9), ("early", "B", 1), ("mid", "A", 5)] {
        let call = RestoredCall {
            id: CallId::new(id).unwrap(),
            agent: AgentId::new(agent).unwrap(),
            call_type: CallType::Chat,
            queued_at: Some(t(0)),
            lease_ttl: Duration::from_secs(30),
            state: RestoredState::Active {
                slot: slotgate_core::Slot::Shared,
                admitted_at: t(admitted),
            },
        };
        e.restore_call("acme", call).unwrap();
    }
    e.resume(t(20));
    acquire(&mut e, "new", "A", CallType::Chat, t(21));
    let ids = |filter: ListFilter| {
        let page = e.calls_page("acme", &filter, 0, 10, e.now()).unwrap();
        page.calls
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(ListFilter::default()), ["early", "mid", "late", "new"]);
    let of_a = ListFilter {
        agent: Some(AgentId::new("A").unwrap()),
        ..Default::default()
    };
    assert_eq!(ids(of_a), ["mid", "late", "new"]);
}

/// Each call's lease length as a store keeps it: from the events alone.
fn stored_lease_lengths(events: &[slotgate_core::Event]) -> Vec<(String, u64)> {
    use slotgate_core::EventKind;
    let mut rows: Vec<(String, u64)> = Vec::new();
    for ev in events {
        let (call, ttl) = match &ev.kind {
            EventKind::CallQueued {
                call, lease_ttl_ms, ..
            }
            | EventKind::CallAdmitted {
                call, lease_ttl_ms, ..
            }
            | EventKind::CallLeaseChanged {
                call, lease_ttl_ms, ..
            } => (call.to_string(), *lease_ttl_ms),
            _ => continue,
        };
        match rows.iter_mut().find(|(id, _)| *id == call) {
            Some(row) => row.1 = ttl,
            None => rows.push((call, ttl)),
        }
    }
    rows
}

#[test]
fn a_new_lease_ttl_is_an_event_and_a_restore_from_the_events_keeps_it() {
    use slotgate_core::EventKind;
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("acme").unwrap(), 1, t(0)).unwrap();
    acquire(&mut e, "a1", "A", CallType::Chat, t(0)); // active, 30 s
    acquire(&mut e, "q1", "B", CallType::Inbound, t(0)); // queued, 30 s
    let mut events: Vec<_> = e.drain_events().collect();

    // No length, or the same one: renewed, and nothing to record.
    e.heartbeat("acme", "a1", None, t(1)).unwrap();
    e.heartbeat("acme", "a1", Some(Duration::from_secs(30)), t(2))
        .unwrap();
    e.heartbeat("acme", "q1", Some(Duration::from_secs(30)), t(2))
        .unwrap();
    assert_eq!(e.drain_events().count(), 0);
    // A refused length changes nothing either.
    assert!(e
        .heartbeat("acme", "a1", Some(Duration::from_secs(1)), t(2))
        .is_err());
    assert_eq!(e.drain_events().count(), 0);

    // A new length, on an active and on a queued call: one event each.
    let a1 = e
        .heartbeat("acme", "a1", Some(Duration::from_secs(600)), t(3))
        .unwrap();
    assert_eq!(a1.lease_ttl_ms, 600_000);
    assert_eq!(a1.lease_expires_at, Some(t(603)));
    e.heartbeat("acme", "q1", Some(Duration::from_secs(90)), t(4))
        .unwrap();
    let changed: Vec<_> = e.drain_events().collect();
    let kinds: Vec<_> = changed
        .iter()
        .map(|ev| (ev.seq, ev.at, ev.kind.clone()))
        .collect();
    let last = events.last().unwrap().seq;
    assert_eq!(
        kinds,
        [
            (
                last + 1,
                t(3),
                EventKind::CallLeaseChanged {
                    call: CallId::new("a1").unwrap(),
                    agent: AgentId::new("A").unwrap(),
                    call_type: CallType::Chat,
                    lease_ttl_ms: 600_000,
                }
            ),
            (
                last + 2,
                t(4),
                EventKind::CallLeaseChanged {
                    call: CallId::new("q1").unwrap(),
                    agent: AgentId::new("B").unwrap(),
                    call_type: CallType::Inbound,
                    lease_ttl_ms: 90_000,
                }
            ),
        ]
    );
    // The new length again: nothing.
    e.heartbeat("acme", "a1", Some(Duration::from_secs(600)), t(5))
        .unwrap();
    assert_eq!(e.drain_events().count(), 0);
    events.extend(changed);

    // A store that applies the events has the new lengths; a restart
    // rebuilds each lease (and hold) from them.
    let stored = stored_lease_lengths(&events);
    assert_eq!(
        stored,
        [("a1".to_string(), 600_000), ("q1".to_string(), 90_000)]
    );
    let mut r = restore_with(&e, &stored);
    let restart = t(20);
    r.resume(restart);
    let a1 = r.call("acme", "a1", restart).unwrap();
    assert_eq!(
        (a1.lease_ttl_ms, a1.lease_expires_at),
        (600_000, Some(t(620)))
    );
    let q1 = r.call("acme", "q1", restart).unwrap();
    assert_eq!(
        (q1.lease_ttl_ms, q1.hold_expires_at),
        (90_000, Some(t(110)))
    );
}
