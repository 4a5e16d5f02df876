//! Expected waits through the engine, on histories whose answer is known:
//! two slots held exactly 10 s each, one freeing every 5 s.

use std::time::Duration;

use slotgate_core::{
    AcquireRequest, Acquired, AgentId, CallId, CallType, CallView, Config, Engine, OrgId,
    Reservations, Timestamp, MIN_FREES,
};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_000_000 + ms)
}

fn acquire(e: &mut Engine, id: &str, agent: &str, at: u64) -> Acquired {
    let mut req = AcquireRequest::new(
        CallId::new(id).unwrap(),
        AgentId::new(agent).unwrap(),
        CallType::Chat,
    );
    req.lease_ttl = Duration::from_secs(3600);
    e.acquire("o", req, t(at)).unwrap()
}

/// An org of `limit` slots where each agent of `agents` keeps two calls
/// going, each held 10 s, one of them ending every 5 s from 10 s to
/// `until_ms` (a new one starting at once). Returns the engine.
fn steady(limit: u32, reserved: &[(&str, u32)], agents: &[&str], until_ms: u64) -> Engine {
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("o").unwrap(), limit, t(0)).unwrap();
    for (agent, chat) in reserved {
        let r = Reservations {
            chat: *chat,
            ..Default::default()
        };
        e.set_reservations("o", &AgentId::new(agent).unwrap(), r, t(0))
            .unwrap();
    }
    for a in agents {
        for (i, at) in [(0, 0), (1, 5_000)] {
            assert!(matches!(
                acquire(&mut e, &format!("{a}{i}"), a, at),
                Acquired::Admitted(_)
            ));
        }
    }
    let mut n = 2;
    let mut at = 10_000;
    while at <= until_ms {
        for a in agents {
            e.release("o", &format!("{a}{}", n - 2), t(at)).unwrap();
            assert!(matches!(
                acquire(&mut e, &format!("{a}{n}"), a, at),
                Acquired::Admitted(_)
            ));
        }
        n += 1;
        at += 5_000;
    }
    e
}

fn estimate(e: &Engine, id: &str, at: u64) -> Option<u64> {
    let view: CallView = e.call("o", id, t(at)).unwrap();
    view.estimated_wait_ms
}

#[test]
fn null_until_enough_frees_then_position_times_the_gap() {
    // Frees at 10 s, 15 s, ...: MIN_FREES - 1 of them by 10 s + 5 s × (MIN_FREES - 2).
    let few = 10_000 + 5_000 * (MIN_FREES as u64 - 2);
    let mut e = steady(2, &[], &["a"], few);
    acquire(&mut e, "q1", "x", few);
    assert_eq!(estimate(&e, "q1", few), None, "{} frees", MIN_FREES - 1);

    let enough = few + 5_000;
    let mut e = steady(2, &[], &["a"], enough);
    for q in ["q1", "q2", "q3"] {
        assert!(matches!(
            acquire(&mut e, q, "x", enough),
            Acquired::Queued(_)
        ));
    }
    // Held 10 s, 2 slots: one frees every 5 s; position p waits p frees.
    let got: Vec<_> = ["q1", "q2", "q3"]
        .iter()
        .map(|q| estimate(&e, q, enough))
        .collect();
    assert_eq!(got, [Some(5_000), Some(10_000), Some(15_000)]);
    let queued: Vec<_> = e.queued_calls("o", t(enough)).unwrap().collect();
    assert_eq!(
        queued[1].estimated_wait_ms,
        Some(10_000),
        "the list says the same"
    );
    assert_eq!(estimate(&e, "a9", enough), None, "an active call has none");
}

#[test]
fn a_stall_makes_the_estimate_grow() {
    let end = 100_000;
    let mut e = steady(2, &[], &["a"], end);
    acquire(&mut e, "q1", "x", end);
    let (now, stalled) = (estimate(&e, "q1", end), estimate(&e, "q1", end + 60_000));
    assert_eq!(now, Some(5_000));
    assert!(stalled > now, "{stalled:?} after a minute with no free");
}

#[test]
fn a_call_with_reserved_slots_waits_for_either_kind() {
    // 4 slots: agent r reserves 2 chat (its two calls), agent s uses the 2 shared.
    let end = 100_000;
    let mut e = steady(4, &[("r", 2)], &["r", "s"], end);
    acquire(&mut e, "s-next", "s", end);
    acquire(&mut e, "r-next", "r", end);
    // s-next: first in the org, 1 shared free away (every 5 s).
    assert_eq!(estimate(&e, "s-next", end), Some(5_000));
    // r-next: 2 shared frees away (10 s), or its own next reserved free (5 s):
    // rates add, 1 / (1/10 + 1/5) = 3.33 s.
    assert_eq!(estimate(&e, "r-next", end), Some(3_333));
}
