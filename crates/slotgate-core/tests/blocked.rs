//! SEMANTICS.md, version 2, "Blocked calls": a configuration change that
//! blocks or unblocks queued calls emits `org.blocked_changed` saying how
//! many are blocked before and after; a change that moves no count emits none.

use slotgate_core::{
    AcquireRequest, Acquired, AgentId, BlockedReason, CallId, CallType, Caps, Config, Engine,
    EventKind, OrgId, Reservations, Slot, Timestamp,
};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_000_000 + ms)
}

fn agent(id: &str) -> AgentId {
    AgentId::new(id).unwrap()
}

fn acquire(e: &mut Engine, id: &str, by: &str) -> Acquired {
    let req = AcquireRequest::new(CallId::new(id).unwrap(), agent(by), CallType::Chat);
    e.acquire("o", req, t(0)).unwrap()
}

/// The `(old, new)` of every `org.blocked_changed` since the last call.
fn blocked_changes(e: &mut Engine) -> Vec<(u32, u32)> {
    e.drain_events()
        .filter_map(|ev| match ev.kind {
            EventKind::BlockedChanged { old, new } => Some((old, new)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_configuration_change_says_how_many_queued_calls_it_blocks_or_unblocks() {
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("o").unwrap(), 2, t(0)).unwrap();
    // Both slots taken by A, then two calls of Y and one of Z queue: not blocked.
    acquire(&mut e, "a1", "A");
    acquire(&mut e, "a2", "A");
    for (id, by) in [("y1", "Y"), ("y2", "Y"), ("z1", "Z")] {
        match acquire(&mut e, id, by) {
            Acquired::Queued(c) => assert_eq!(c.blocked, None, "{id}"),
            other => panic!("{id} should queue, got {other:?}"),
        }
    }
    blocked_changes(&mut e);

    // Y's chat cap of 0 blocks Y's two calls.
    let y_zero = Caps {
        chat: Some(0),
        ..Caps::default()
    };
    e.set_caps("o", &agent("Y"), y_zero, t(1)).unwrap();
    assert_eq!(blocked_changes(&mut e), [(0, 2)]);
    assert_eq!(e.org("o").unwrap().blocked, 2);
    let y1 = e.call("o", "y1", t(1)).unwrap();
    assert_eq!(y1.blocked, Some(BlockedReason::CapZero));

    // A reserves both slots: S = 0, so Z's call (no reservation) is blocked too.
    let r = Reservations {
        chat: 2,
        ..Default::default()
    };
    e.set_reservations("o", &agent("A"), r, t(2)).unwrap();
    assert_eq!(blocked_changes(&mut e), [(2, 3)]);
    let z1 = e.call("o", "z1", t(2)).unwrap();
    assert_eq!(z1.blocked, Some(BlockedReason::NoSharedCapacity));

    // A caps change that blocks nothing more emits no event.
    let a_total = Caps {
        total: Some(2),
        ..Caps::default()
    };
    e.set_caps("o", &agent("A"), a_total, t(3)).unwrap();
    assert_eq!(blocked_changes(&mut e), []);

    // Blocked is judged in an idle org: with a burst of 1, Z's call still
    // counts as blocked there (S = 0 < L), yet the limit is in use here, so
    // it takes the burst slot, and the count falls by one.
    e.set_burst("o", 1, t(4)).unwrap();
    assert_eq!(blocked_changes(&mut e), [(3, 2)]);
    let z1 = e.call("o", "z1", t(4)).unwrap();
    assert_eq!(z1.slot, Some(Slot::Burst));

    // A limit and burst of 0 block every queued call, whatever its reason.
    match acquire(&mut e, "w1", "W") {
        Acquired::Queued(c) => assert_eq!(c.blocked, Some(BlockedReason::NoSharedCapacity)),
        other => panic!("w1 should queue, got {other:?}"),
    }
    e.set_reservations("o", &agent("A"), Reservations::default(), t(5))
        .unwrap();
    e.set_burst("o", 0, t(5)).unwrap();
    assert_eq!(blocked_changes(&mut e), [(3, 2)]);
    e.set_limit("o", 0, t(6)).unwrap();
    assert_eq!(blocked_changes(&mut e), [(2, 3)]);
    let w1 = e.call("o", "w1", t(6)).unwrap();
    assert_eq!(w1.blocked, Some(BlockedReason::LimitZero));
    assert_eq!(e.org("o").unwrap().blocked, 3);
}
