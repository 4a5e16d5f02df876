//! The API's JSON shapes (API.md), built from the engine's views and events.
//!
//! The shapes themselves are defined once, in `slotgate-client`'s `types`
//! (the client reads what the server writes); this module fills them from the
//! engine's views, and renders events and times. The HTTP handlers, the event
//! store and the OpenAPI document all go through it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use slotgate_core::{AgentView, CallView, Event, EventKind, OrgView, PerType, Timestamp};

/// An RFC 3339 UTC time with milliseconds, e.g. `2026-11-23T20:00:00.000Z`.
pub fn rfc3339(t: Timestamp) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(t.as_millis());
    humantime::format_rfc3339_millis(at).to_string()
}

/// The engine's clock reading of the wall clock.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp::from_millis(ms)
}

pub use slotgate_client::types::{Agent, Call, Org, PerType as PerTypeJson};

/// A value per call type, on the wire.
pub fn per_type(p: PerType<u32>) -> PerTypeJson {
    PerTypeJson {
        webcall: p.webcall,
        chat: p.chat,
        outbound: p.outbound,
        inbound: p.inbound,
    }
}

/// An agent, on the wire.
pub fn agent(a: AgentView) -> Agent {
    Agent {
        id: a.id.to_string(),
        reserved: per_type(a.reserved),
        active: per_type(a.active),
        queued: per_type(a.queued),
        reserved_total: a.reserved_total,
        reserved_in_use: a.reserved_in_use,
        shared_in_use: a.shared_in_use,
    }
}

/// An org's concurrency snapshot, on the wire.
pub fn org(o: OrgView) -> Org {
    Org {
        id: o.id.to_string(),
        limit: o.limit,
        reserved: o.reserved,
        shared: o.shared,
        active: o.active,
        queued: o.queued,
        shared_in_use: o.shared_in_use,
        agents: o.agents.into_iter().map(agent).collect(),
    }
}

/// A call, on the wire.
pub fn call(c: CallView) -> Call {
    Call {
        id: c.id.to_string(),
        agent: c.agent.to_string(),
        call_type: c.call_type.as_str().into(),
        state: c.state.as_str().into(),
        slot: c.slot.map(|s| s.as_str().into()),
        position: c.position,
        queued_at: c.queued_at.map(rfc3339),
        admitted_at: c.admitted_at.map(rfc3339),
        lease_expires_at: c.lease_expires_at.map(rfc3339),
        hold_expires_at: c.hold_expires_at.map(rfc3339),
        max_wait_expires_at: c.max_wait_expires_at.map(rfc3339),
        lease_ttl_s: c.lease_ttl_ms as f64 / 1000.0,
        ended_at: c.ended_at.map(rfc3339),
        end_reason: c.end_reason.map(|r| r.as_str().into()),
    }
}

/// An event, with the key that caused it for configuration changes.
pub fn event_json(e: &Event, by: Option<&str>) -> serde_json::Value {
    use serde_json::json;
    let mut v = json!({
        "seq": e.seq,
        "org": e.org.as_str(),
        "type": e.kind.name(),
        "at": rfc3339(e.at),
    });
    let extra = match &e.kind {
        EventKind::OrgCreated { limit } => json!({ "limit": limit, "by": by }),
        EventKind::CallQueued {
            call,
            agent,
            call_type,
            position,
            lease_ttl_ms,
            max_wait_expires_at,
        } => json!({
            "call": call.as_str(), "agent": agent.as_str(), "call_type": call_type.as_str(),
            "position": position, "lease_ttl_ms": lease_ttl_ms,
            "max_wait_expires_at": max_wait_expires_at.map(rfc3339),
        }),
        EventKind::CallAdmitted {
            call,
            agent,
            call_type,
            slot,
            waited_ms,
            lease_ttl_ms,
        } => json!({
            "call": call.as_str(), "agent": agent.as_str(), "call_type": call_type.as_str(),
            "slot": slot.as_str(), "waited_ms": waited_ms, "lease_ttl_ms": lease_ttl_ms,
        }),
        EventKind::CallEnded {
            call,
            agent,
            call_type,
            reason,
        } => json!({
            "call": call.as_str(), "agent": agent.as_str(), "call_type": call_type.as_str(),
            "reason": reason.as_str(),
        }),
        EventKind::LimitChanged { old, new } => json!({ "old": old, "new": new, "by": by }),
        EventKind::ReservationsChanged { agent, old, new } => json!({
            "agent": agent.as_str(),
            "old": per_type(*old),
            "new": per_type(*new),
            "by": by,
        }),
        _ => json!({}),
    };
    if let (Some(obj), serde_json::Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_millis() {
        let t = Timestamp::from_millis(1_795_464_000_123);
        assert_eq!(rfc3339(t), "2026-11-23T20:00:00.123Z");
    }
}
