//! `Engine::org_summary`: the snapshot `/metrics` reads, with only the
//! busiest agents named and the others summed, so that a scrape of an org
//! with many agents stays small.

use slotgate_core::{AcquireRequest, AgentId, CallId, CallType, Config, Engine, OrgId, Timestamp};

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_000_000 + ms)
}

fn acquire(e: &mut Engine, id: &str, by: &str) {
    let req = AcquireRequest::new(
        CallId::new(id).unwrap(),
        AgentId::new(by).unwrap(),
        CallType::Chat,
    );
    e.acquire("o", req, t(0)).unwrap();
}

fn ids(e: &Engine, busiest: usize) -> Vec<String> {
    let (view, _) = e.org_summary("o", busiest).unwrap();
    view.agents.iter().map(|a| a.id.to_string()).collect()
}

#[test]
fn the_busiest_agents_are_named_and_the_others_summed() {
    let mut e = Engine::new(Config::default());
    e.create_org(OrgId::new("o").unwrap(), 3, t(0)).unwrap();
    // A holds two slots, B one; then D queues three calls and E one.
    for (id, by) in [("a1", "A"), ("a2", "A"), ("b1", "B")] {
        acquire(&mut e, id, by);
    }
    for (id, by) in [("d1", "D"), ("d2", "D"), ("d3", "D"), ("e1", "E")] {
        acquire(&mut e, id, by);
    }
    let full = e.org("o").unwrap();

    // None named: nothing of the agents is read.
    let (view, others) = e.org_summary("o", 0).unwrap();
    assert!(view.agents.is_empty());
    assert_eq!(others.agents, 0);
    assert_eq!((view.active, view.queued), (full.active, full.queued));

    // The two busiest (calls active and queued), shown by id; B and E summed.
    assert_eq!(ids(&e, 2), ["A", "D"]);
    let (view, others) = e.org_summary("o", 2).unwrap();
    assert_eq!(others.agents, 2);
    assert_eq!((others.active.chat, others.queued.chat), (1, 1));
    let named = |f: fn(&slotgate_core::AgentView) -> u32| view.agents.iter().map(f).sum::<u32>();
    assert_eq!(named(|a| a.active.chat) + others.active.chat, full.active);
    assert_eq!(named(|a| a.queued.chat) + others.queued.chat, full.queued);

    // A tie (B and E have one call each) goes to the agent met first.
    assert_eq!(ids(&e, 3), ["A", "B", "D"]);
    // Room for all: every agent, as the full view has them, none summed.
    let (view, others) = e.org_summary("o", 10).unwrap();
    assert_eq!(view.agents, full.agents);
    assert_eq!(others, Default::default());
    // However many are asked for, no more than there are.
    let (view, _) = e.org_summary("o", usize::MAX).unwrap();
    assert_eq!(view.agents, full.agents);
}
