//! The API's JSON shapes (API.md), built from the engine's views and events.
//!
//! One place defines how an org, agent, call and event look on the wire; the
//! HTTP handlers, the event store and the OpenAPI document all use it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use slotgate_core::{AgentView, CallView, Event, EventKind, OrgView, PerType, Timestamp};
use utoipa::ToSchema;

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

/// A value per call type.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct PerTypeJson {
    /// Browser voice calls.
    pub webcall: u32,
    /// Text chats.
    pub chat: u32,
    /// Telephony calls the agent places.
    pub outbound: u32,
    /// Telephony calls the agent receives.
    pub inbound: u32,
}

impl From<PerType<u32>> for PerTypeJson {
    fn from(p: PerType<u32>) -> Self {
        PerTypeJson {
            webcall: p.webcall,
            chat: p.chat,
            outbound: p.outbound,
            inbound: p.inbound,
        }
    }
}

/// An agent's reservations and usage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Agent {
    /// The agent's id.
    pub id: String,
    /// Slots reserved per call type.
    pub reserved: PerTypeJson,
    /// Active calls per call type.
    pub active: PerTypeJson,
    /// Queued calls per call type.
    pub queued: PerTypeJson,
    /// Sum of the four reservations.
    pub reserved_total: u32,
    /// Active calls in reserved slots.
    pub reserved_in_use: u32,
    /// Active calls in the shared pool.
    pub shared_in_use: u32,
}

impl From<AgentView> for Agent {
    fn from(a: AgentView) -> Self {
        Agent {
            id: a.id.to_string(),
            reserved: a.reserved.into(),
            active: a.active.into(),
            queued: a.queued.into(),
            reserved_total: a.reserved_total,
            reserved_in_use: a.reserved_in_use,
            shared_in_use: a.shared_in_use,
        }
    }
}

/// An org's concurrency snapshot.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Org {
    /// The org's id.
    pub id: String,
    /// Its concurrency limit (plan).
    pub limit: u32,
    /// Sum of all reservations.
    pub reserved: u32,
    /// Shared capacity: limit minus reserved.
    pub shared: u32,
    /// Active calls.
    pub active: u32,
    /// Queued calls.
    pub queued: u32,
    /// Active calls counted against the shared pool.
    pub shared_in_use: u32,
    /// Every agent with a reservation, an active or a queued call.
    pub agents: Vec<Agent>,
}

impl From<OrgView> for Org {
    fn from(o: OrgView) -> Self {
        Org {
            id: o.id.to_string(),
            limit: o.limit,
            reserved: o.reserved,
            shared: o.shared,
            active: o.active,
            queued: o.queued,
            shared_in_use: o.shared_in_use,
            agents: o.agents.into_iter().map(Agent::from).collect(),
        }
    }
}

/// One call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Call {
    /// The call's id.
    pub id: String,
    /// Its agent.
    pub agent: String,
    /// `webcall`, `chat`, `outbound` or `inbound`.
    #[serde(rename = "type")]
    pub call_type: &'static str,
    /// `queued`, `active` or `ended`.
    pub state: &'static str,
    /// `reserved` or `shared` once admitted.
    pub slot: Option<&'static str>,
    /// 1-based place in the org's queue, while queued.
    pub position: Option<u64>,
    /// When it was queued (null if admitted on arrival).
    pub queued_at: Option<String>,
    /// When it was admitted.
    pub admitted_at: Option<String>,
    /// When an active call's lease runs out unless renewed by a heartbeat.
    pub lease_expires_at: Option<String>,
    /// When a queued call is abandoned unless held (null while a wait holds it).
    pub hold_expires_at: Option<String>,
    /// When a queued call with `max_wait_s` gives up.
    pub max_wait_expires_at: Option<String>,
    /// The lease length heartbeats renew.
    pub lease_ttl_s: f64,
    /// When it ended.
    pub ended_at: Option<String>,
    /// `released`, `cancelled`, `expired`, `abandoned` or `timed_out`.
    pub end_reason: Option<&'static str>,
}

impl From<CallView> for Call {
    fn from(c: CallView) -> Self {
        Call {
            id: c.id.to_string(),
            agent: c.agent.to_string(),
            call_type: c.call_type.as_str(),
            state: c.state.as_str(),
            slot: c.slot.map(|s| s.as_str()),
            position: c.position,
            queued_at: c.queued_at.map(rfc3339),
            admitted_at: c.admitted_at.map(rfc3339),
            lease_expires_at: c.lease_expires_at.map(rfc3339),
            hold_expires_at: c.hold_expires_at.map(rfc3339),
            max_wait_expires_at: c.max_wait_expires_at.map(rfc3339),
            lease_ttl_s: c.lease_ttl_ms as f64 / 1000.0,
            ended_at: c.ended_at.map(rfc3339),
            end_reason: c.end_reason.map(|r| r.as_str()),
        }
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
            "old": PerTypeJson::from(*old),
            "new": PerTypeJson::from(*new),
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
