//! Read views: what the API reports of an org, an agent and a call.
//!
//! Views are computed from the engine's counts on demand ("derived, never
//! stored twice"), so they are always consistent with the admission rule.

use crate::id::{AgentId, CallId, OrgId, PlanId};
use crate::time::Timestamp;
use crate::types::{
    BlockedReason, CallState, CallType, Caps, EndReason, PerType, Reservations, Slot, Source,
};

/// The plan an org is on, and whether its limit and burst are the plan's
/// or its own. A label to the admission rule, which reads only the limit
/// and burst themselves: whoever manages plans sets those alongside.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct PlanLink {
    /// The plan; `None`: the org is on no plan (both sources are then `Org`).
    pub plan: Option<PlanId>,
    /// Where the org's limit comes from.
    pub limit_source: Source,
    /// Where the org's burst comes from.
    pub burst_source: Source,
}

impl PlanLink {
    /// On `plan`, taking its limit and burst.
    pub fn on(plan: PlanId) -> Self {
        PlanLink {
            plan: Some(plan),
            limit_source: Source::Plan,
            burst_source: Source::Plan,
        }
    }
}

/// A call as the API shows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CallView {
    /// The call's id, unique in its org.
    pub id: CallId,
    /// The agent the call is for.
    pub agent: AgentId,
    /// The call's type.
    pub call_type: CallType,
    /// Queued, active or ended.
    pub state: CallState,
    /// The part of the pool it was admitted to; `None` if it never was.
    pub slot: Option<Slot>,
    /// 1-based place in the org's queue, while queued.
    pub position: Option<u64>,
    /// While queued, how long until it is likely admitted, in ms, as of the
    /// instant of the view: from how long the slots it can take (the shared
    /// pool, its group's reserved slots) were held before their recent frees,
    /// and its place among the calls ahead that compete for them (see
    /// `wait.rs`). `None` while those slots have freed fewer than
    /// [`crate::MIN_FREES`] times since the engine started, and for active
    /// and ended calls.
    pub estimated_wait_ms: Option<u64>,
    /// While queued, why it can never be admitted as the org is configured
    /// now (SEMANTICS.md, "Blocked calls"); `None` if it can.
    pub blocked: Option<BlockedReason>,
    /// When it joined the queue; `None` if it was admitted on arrival.
    pub queued_at: Option<Timestamp>,
    /// When it became active.
    pub admitted_at: Option<Timestamp>,
    /// When an active call's lease runs out unless renewed.
    pub lease_expires_at: Option<Timestamp>,
    /// When a queued call is abandoned unless held (`None` while a wait holds it).
    pub hold_expires_at: Option<Timestamp>,
    /// When a queued call gives up waiting (`max_wait`), if it has a limit.
    pub max_wait_expires_at: Option<Timestamp>,
    /// The lease length heartbeats renew, in milliseconds.
    pub lease_ttl_ms: u64,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// Why it ended.
    pub end_reason: Option<EndReason>,
}

/// One agent's reservations and usage.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AgentView {
    /// The agent.
    pub id: AgentId,
    /// Its caps per type and in total (`None`: no cap).
    pub caps: Caps,
    /// Its reservation per type.
    pub reserved: Reservations,
    /// Its active calls per type.
    pub active: PerType<u32>,
    /// Its queued calls per type.
    pub queued: PerType<u32>,
    /// Sum of its four reservations.
    pub reserved_total: u32,
    /// Active calls sitting in its reserved slots: sum of `min(active, reserved)` per type.
    pub reserved_in_use: u32,
    /// Active calls counted against the shared pool: sum of `max(0, active - reserved)` per type.
    pub shared_in_use: u32,
}

/// Several agents' reservations and calls, summed per type: what
/// `/metrics` shows of the agents it does not name.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct AgentTotals {
    /// How many agents are summed.
    pub agents: u32,
    /// Their reservations per type.
    pub reserved: Reservations,
    /// Their active calls per type.
    pub active: PerType<u32>,
    /// Their queued calls per type.
    pub queued: PerType<u32>,
}

/// The concurrency snapshot of an org, as the dashboard draws it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OrgView {
    /// The org.
    pub id: OrgId,
    /// Its concurrency limit `L`.
    pub limit: u32,
    /// Its plan, and where its limit and burst come from.
    pub plan: PlanLink,
    /// Sum of all reservations `R`.
    pub reserved: u32,
    /// Shared capacity `S = L - R`.
    pub shared: u32,
    /// Slots it may use above its limit, `B`.
    pub burst: u32,
    /// Active calls `N`.
    pub active: u32,
    /// Active calls above the limit: `max(0, N - L)`.
    pub burst_in_use: u32,
    /// The org's burst time so far: the integral of `burst_in_use` over
    /// time, in slot-milliseconds, up to the engine's clock (since the
    /// engine started or restored the org). What a platform bills as overage.
    pub burst_ms: u64,
    /// Queued calls.
    pub queued: u32,
    /// Queued calls that are blocked (each says why in its view).
    pub blocked: u32,
    /// Active calls counted against the shared pool (may exceed `shared` after a change).
    pub shared_in_use: u32,
    /// Every agent with a reservation, an active call or a queued call, by id.
    pub agents: Vec<AgentView>,
}
