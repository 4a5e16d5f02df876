//! The API's JSON shapes (API.md), built from the engine's views and events.
//!
//! The shapes themselves are defined once, in `slotgate-client`'s `types`
//! (the client reads what the server writes); this module fills them from the
//! engine's views, and renders events and times. The HTTP handlers, the event
//! store and the OpenAPI document all go through it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use slotgate_core::{
    AgentId, AgentView, CallId, CallType, CallView, Event, EventKind, OrgView, PerType, Timestamp,
};

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

/// An event as the API shows it (`GET .../events`, the SSE stream), with the
/// key that caused it on configuration changes: one JSON object, rendered
/// straight to text.
pub fn event_json(e: &Event, by: Option<&str>) -> String {
    serde_json::to_string(&EventJson { e, by }).expect("an event renders to JSON")
}

/// An RFC 3339 time, written without an intermediate `String`.
struct Rfc3339(Timestamp);

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let at = UNIX_EPOCH + Duration::from_millis(self.0.as_millis());
        s.collect_str(&humantime::format_rfc3339_millis(at))
    }
}

/// The fields every call event has.
fn call_fields<M: serde::ser::SerializeMap>(
    m: &mut M,
    call: &CallId,
    agent: &AgentId,
    call_type: CallType,
) -> Result<(), M::Error> {
    m.serialize_entry("call", call.as_str())?;
    m.serialize_entry("agent", agent.as_str())?;
    m.serialize_entry("call_type", call_type.as_str())
}

struct EventJson<'a> {
    e: &'a Event,
    by: Option<&'a str>,
}

impl serde::Serialize for EventJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.e;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("seq", &e.seq)?;
        m.serialize_entry("org", e.org.as_str())?;
        m.serialize_entry("type", e.kind.name())?;
        m.serialize_entry("at", &Rfc3339(e.at))?;
        match &e.kind {
            EventKind::OrgCreated { limit } => {
                m.serialize_entry("limit", limit)?;
                m.serialize_entry("by", &self.by)?;
            }
            EventKind::CallQueued {
                call,
                agent,
                call_type,
                position,
                lease_ttl_ms,
                max_wait_expires_at,
            } => {
                call_fields(&mut m, call, agent, *call_type)?;
                m.serialize_entry("position", position)?;
                m.serialize_entry("lease_ttl_ms", lease_ttl_ms)?;
                m.serialize_entry("max_wait_expires_at", &max_wait_expires_at.map(Rfc3339))?;
            }
            EventKind::CallAdmitted {
                call,
                agent,
                call_type,
                slot,
                waited_ms,
                lease_ttl_ms,
            } => {
                call_fields(&mut m, call, agent, *call_type)?;
                m.serialize_entry("slot", slot.as_str())?;
                m.serialize_entry("waited_ms", waited_ms)?;
                m.serialize_entry("lease_ttl_ms", lease_ttl_ms)?;
            }
            EventKind::CallEnded {
                call,
                agent,
                call_type,
                reason,
            } => {
                call_fields(&mut m, call, agent, *call_type)?;
                m.serialize_entry("reason", reason.as_str())?;
            }
            EventKind::LimitChanged { old, new } => {
                m.serialize_entry("old", old)?;
                m.serialize_entry("new", new)?;
                m.serialize_entry("by", &self.by)?;
            }
            EventKind::ReservationsChanged { agent, old, new } => {
                m.serialize_entry("agent", agent.as_str())?;
                m.serialize_entry("old", &per_type(*old))?;
                m.serialize_entry("new", &per_type(*new))?;
                m.serialize_entry("by", &self.by)?;
            }
            _ => {}
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_millis() {
        let t = Timestamp::from_millis(1_795_464_000_123);
        assert_eq!(rfc3339(t), "2026-11-23T20:00:00.123Z");
    }

    #[test]
    fn events_render_with_their_kind_fields() {
        use slotgate_core::{AgentId, CallId, CallType, OrgId, Slot};
        let at = Timestamp::from_millis(1_795_464_000_123);
        let e = Event {
            org: OrgId::new("acme").unwrap(),
            seq: 7,
            at,
            kind: EventKind::CallAdmitted {
                call: CallId::new("c1").unwrap(),
                agent: AgentId::new("sales").unwrap(),
                call_type: CallType::Chat,
                slot: Slot::Reserved,
                waited_ms: 1500,
                lease_ttl_ms: 30_000,
            },
        };
        let v: serde_json::Value = serde_json::from_str(&event_json(&e, None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "seq": 7, "org": "acme", "type": "call.admitted", "at": "2026-11-23T20:00:00.123Z",
                "call": "c1", "agent": "sales", "call_type": "chat", "slot": "reserved",
                "waited_ms": 1500, "lease_ttl_ms": 30_000,
            })
        );
        let e = Event {
            kind: EventKind::LimitChanged { old: 5, new: 9 },
            ..e
        };
        let v: serde_json::Value = serde_json::from_str(&event_json(&e, Some("k1"))).unwrap();
        assert_eq!(
            (v["old"].clone(), v["new"].clone(), v["by"].clone()),
            (5.into(), 9.into(), "k1".into())
        );
    }
}
