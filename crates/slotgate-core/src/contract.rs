//! The engine's views and events in the API's shapes (`slotgate-api`): the
//! one mapping from what the engine knows to what the wire carries.

use slotgate_api::time::rfc3339;

use crate::event::{Event, EventKind};
use crate::time::Timestamp;
use crate::view::{AgentView, CallView, OrgView};

fn time(t: Timestamp) -> slotgate_api::Time {
    rfc3339(t.as_millis())
}

/// Milliseconds as the API's seconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl From<CallView> for slotgate_api::Call {
    fn from(c: CallView) -> Self {
        slotgate_api::Call {
            id: c.id.to_string(),
            agent: c.agent.to_string(),
            call_type: c.call_type,
            state: c.state,
            slot: c.slot,
            position: c.position,
            estimated_wait_s: c.estimated_wait_ms.map(seconds),
            blocked: c.blocked,
            queued_at: c.queued_at.map(time),
            admitted_at: c.admitted_at.map(time),
            lease_expires_at: c.lease_expires_at.map(time),
            hold_expires_at: c.hold_expires_at.map(time),
            max_wait_expires_at: c.max_wait_expires_at.map(time),
            lease_ttl_s: c.lease_ttl_ms as f64 / 1000.0,
            ended_at: c.ended_at.map(time),
            end_reason: c.end_reason,
        }
    }
}

impl From<AgentView> for slotgate_api::Agent {
    fn from(a: AgentView) -> Self {
        slotgate_api::Agent {
            id: a.id.to_string(),
            caps: a.caps,
            reserved: a.reserved,
            active: a.active,
            queued: a.queued,
            reserved_total: a.reserved_total,
            reserved_in_use: a.reserved_in_use,
            shared_in_use: a.shared_in_use,
        }
    }
}

impl From<OrgView> for slotgate_api::Org {
    fn from(o: OrgView) -> Self {
        slotgate_api::Org {
            id: o.id.to_string(),
            limit: o.limit,
            plan: o.plan.plan.map(|p| p.to_string()),
            limit_source: o.plan.limit_source,
            burst_source: o.plan.burst_source,
            reserved: o.reserved,
            shared: o.shared,
            burst: o.burst,
            active: o.active,
            burst_in_use: o.burst_in_use,
            queued: o.queued,
            blocked: o.blocked,
            shared_in_use: o.shared_in_use,
            agents: o.agents.into_iter().map(Into::into).collect(),
        }
    }
}

impl Event {
    /// The event as the API shows it; `by` is the id of the key that made a
    /// configuration change (the engine does not know keys).
    pub fn to_api(&self, by: Option<&str>) -> slotgate_api::Event {
        use slotgate_api::EventKind as K;
        let by = by.map(str::to_string);
        let kind = match &self.kind {
            EventKind::OrgCreated { limit } => K::OrgCreated { limit: *limit, by },
            EventKind::CallQueued {
                call,
                agent,
                call_type,
                position,
                estimated_wait_ms,
                lease_ttl_ms,
                max_wait_expires_at,
                blocked,
            } => K::CallQueued {
                call: call.to_string(),
                agent: agent.to_string(),
                call_type: *call_type,
                position: *position,
                estimated_wait_s: estimated_wait_ms.map(seconds),
                lease_ttl_ms: *lease_ttl_ms,
                max_wait_expires_at: max_wait_expires_at.map(time),
                blocked: *blocked,
            },
            EventKind::CallAdmitted {
                call,
                agent,
                call_type,
                slot,
                waited_ms,
                lease_ttl_ms,
            } => K::CallAdmitted {
                call: call.to_string(),
                agent: agent.to_string(),
                call_type: *call_type,
                slot: *slot,
                waited_ms: *waited_ms,
                lease_ttl_ms: *lease_ttl_ms,
            },
            EventKind::CallEnded {
                call,
                agent,
                call_type,
                reason,
            } => K::CallEnded {
                call: call.to_string(),
                agent: agent.to_string(),
                call_type: *call_type,
                reason: *reason,
            },
            EventKind::CallLeaseChanged {
                call,
                agent,
                call_type,
                lease_ttl_ms,
            } => K::CallLeaseChanged {
                call: call.to_string(),
                agent: agent.to_string(),
                call_type: *call_type,
                lease_ttl_ms: *lease_ttl_ms,
            },
            EventKind::LimitChanged { old, new } => K::LimitChanged {
                old: *old,
                new: *new,
                by,
            },
            EventKind::BurstChanged { old, new } => K::BurstChanged {
                old: *old,
                new: *new,
                by,
            },
            EventKind::PlanChanged { old, new } => K::PlanChanged {
                old: old.plan.as_ref().map(ToString::to_string),
                new: new.plan.as_ref().map(ToString::to_string),
                limit_source: new.limit_source,
                burst_source: new.burst_source,
                by,
            },
            EventKind::CapsChanged { agent, old, new } => K::CapsChanged {
                agent: agent.to_string(),
                old: *old,
                new: *new,
                by,
            },
            EventKind::BlockedChanged { old, new } => K::BlockedChanged {
                old: *old,
                new: *new,
            },
            EventKind::ReservationsChanged { agent, old, new } => K::ReservationsChanged {
                agent: agent.to_string(),
                old: *old,
                new: *new,
                by,
            },
        };
        slotgate_api::Event {
            seq: self.seq,
            org: self.org.to_string(),
            at: time(self.at),
            kind,
        }
    }
}
