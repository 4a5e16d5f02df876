//! Events: every state change of an org, in order, for the driver to persist and stream.

use crate::id::{AgentId, CallId, OrgId};
use crate::time::Timestamp;
use crate::types::{BlockedReason, CallType, Caps, EndReason, Reservations, Slot};
use crate::view::PlanLink;

/// One state change of an org.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Event {
    /// The org it happened in.
    pub org: OrgId,
    /// Org-wide, strictly increasing from 1, with no gaps.
    pub seq: u64,
    /// When it happened, on the engine's clock.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// What happened. Names follow the API: `call.queued`, `call.admitted`, ...
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum EventKind {
    /// `org.created`: the org exists with this limit.
    OrgCreated {
        /// Its limit.
        limit: u32,
    },
    /// `call.queued`: a call arrived and had to wait.
    CallQueued {
        /// The call.
        call: CallId,
        /// Its agent.
        agent: AgentId,
        /// Its type.
        call_type: CallType,
        /// Its position on arrival.
        position: u64,
        /// Its expected wait on arrival, in ms (see [`crate::CallView::estimated_wait_ms`]).
        estimated_wait_ms: Option<u64>,
        /// Its lease length, in ms (for a store to restore the call).
        lease_ttl_ms: u64,
        /// When its `max_wait` runs out, if it has one.
        max_wait_expires_at: Option<Timestamp>,
        /// Why it can never be admitted as the org is configured now, if so.
        blocked: Option<BlockedReason>,
    },
    /// `call.admitted`: a call took a slot.
    CallAdmitted {
        /// The call.
        call: CallId,
        /// Its agent.
        agent: AgentId,
        /// Its type.
        call_type: CallType,
        /// The part of the pool it took.
        slot: Slot,
        /// How long it waited in the queue (0 when admitted on arrival).
        waited_ms: u64,
        /// Its lease length, in ms (for a store to restore the call).
        lease_ttl_ms: u64,
    },
    /// `call.ended`: a call ended, once and for all.
    CallEnded {
        /// The call.
        call: CallId,
        /// Its agent.
        agent: AgentId,
        /// Its type.
        call_type: CallType,
        /// Why.
        reason: EndReason,
    },
    /// `call.lease_changed`: a heartbeat gave a live call another
    /// `lease_ttl` (a heartbeat without one, or with the same, emits nothing).
    CallLeaseChanged {
        /// The call.
        call: CallId,
        /// Its agent.
        agent: AgentId,
        /// Its type.
        call_type: CallType,
        /// Its new lease length, in ms (for a store to restore the call).
        lease_ttl_ms: u64,
    },
    /// `org.limit_changed`.
    LimitChanged {
        /// The limit before.
        old: u32,
        /// The limit now.
        new: u32,
    },
    /// `org.burst_changed`.
    BurstChanged {
        /// The burst before.
        old: u32,
        /// The burst now.
        new: u32,
    },
    /// `org.plan_changed`: the org's plan, or where its limit or burst
    /// comes from, changed (a label: the limit and burst change by their own events).
    PlanChanged {
        /// Before.
        old: PlanLink,
        /// Now.
        new: PlanLink,
    },
    /// `agent.caps_changed`.
    CapsChanged {
        /// The agent.
        agent: AgentId,
        /// Its caps before.
        old: Caps,
        /// Its caps now.
        new: Caps,
    },
    /// `org.blocked_changed`: a configuration change blocked or unblocked
    /// queued calls (after the dispatch it caused).
    BlockedChanged {
        /// Blocked queued calls before the change.
        old: u32,
        /// Blocked queued calls now.
        new: u32,
    },
    /// `agent.reservations_changed`.
    ReservationsChanged {
        /// The agent.
        agent: AgentId,
        /// Its reservations before.
        old: Reservations,
        /// Its reservations now.
        new: Reservations,
    },
}
