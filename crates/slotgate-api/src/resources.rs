//! What the API answers with: an org's concurrency snapshot, an agent, a
//! call, a key, and the pages that list them.

use serde::{Deserialize, Serialize};

use crate::types::{BlockedReason, CallState, CallType, Caps, EndReason, PerType, Role, Slot};

/// An RFC 3339 UTC time with milliseconds, e.g. `2026-11-23T20:00:00.000Z`.
pub type Time = String;

/// An org's concurrency snapshot: what the dashboard draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Org {
    /// The org's id.
    pub id: String,
    /// Its concurrency limit `L`.
    pub limit: u32,
    /// The plan it is on (null: none; its limit and burst are its own).
    #[serde(default)]
    pub plan: Option<String>,
    /// Where `limit` comes from: its plan's (`plan`), or its own (`org`),
    /// which overrides the plan's.
    #[serde(default)]
    pub limit_source: crate::types::Source,
    /// Where `burst` comes from: its plan's (`plan`), or its own (`org`).
    #[serde(default)]
    pub burst_source: crate::types::Source,
    /// Sum of all reservations `R`.
    pub reserved: u32,
    /// Shared capacity `S = L - R`.
    pub shared: u32,
    /// Slots it may use above its limit once the limit is in use (`B`, 0 unless set).
    #[serde(default)]
    pub burst: u32,
    /// Active calls `N`.
    pub active: u32,
    /// Active calls above the limit: `max(0, N - L)`.
    #[serde(default)]
    pub burst_in_use: u32,
    /// Queued calls.
    pub queued: u32,
    /// Queued calls that are blocked: they can never be admitted as the org
    /// is configured now (each call's `blocked` says why).
    #[serde(default)]
    pub blocked: u32,
    /// Active calls counted against the shared pool (may exceed `shared` after a change).
    pub shared_in_use: u32,
    /// Every agent with a reservation, a cap, an active call or a queued call, by id.
    pub agents: Vec<Agent>,
}

/// One agent's reservations and usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    /// The agent's id.
    pub id: String,
    /// Its caps: the most active calls per call type and in total (null: no cap).
    #[serde(default)]
    pub caps: Caps,
    /// Slots reserved per call type.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::types::PerTypeSchema))]
    pub reserved: PerType<u32>,
    /// Active calls per call type.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::types::PerTypeSchema))]
    pub active: PerType<u32>,
    /// Queued calls per call type.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::types::PerTypeSchema))]
    pub queued: PerType<u32>,
    /// Sum of its four reservations.
    pub reserved_total: u32,
    /// Active calls in its reserved slots: sum of `min(active, reserved)` per type.
    pub reserved_in_use: u32,
    /// Active calls in the shared pool: sum of `max(0, active - reserved)` per type.
    pub shared_in_use: u32,
}

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Call {
    /// Its id, unique in its org.
    pub id: String,
    /// The agent it is for.
    pub agent: String,
    /// Its type.
    #[serde(rename = "type")]
    pub call_type: CallType,
    /// Queued, active or ended.
    pub state: CallState,
    /// The part of the pool it was admitted to; null if it never was.
    pub slot: Option<Slot>,
    /// 1-based place in the org's queue, while queued.
    pub position: Option<u64>,
    /// While queued: about how many seconds until it is admitted, as of this
    /// answer. Estimated from how long the slots this call can take (the
    /// shared pool, and its agent's reserved slots of its type) were held
    /// before their recent frees (the last 64 of each), and its place among the
    /// calls ahead that compete for them: the calls ahead in the org's queue for
    /// shared slots, the calls ahead of its agent and type for reserved ones.
    /// Null while none of those slots has freed at least 8 times since the
    /// service started (too little history to say), and for active and ended calls.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub estimated_wait_s: Option<f64>,
    /// While queued: why it can never be admitted as its org is configured
    /// now (`limit_zero`, `cap_zero`, `no_shared_capacity`); null if it can.
    /// A blocked call stays queued: a configuration change may unblock it.
    #[serde(default)]
    pub blocked: Option<BlockedReason>,
    /// When it joined the queue; null if it was admitted on arrival.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub queued_at: Option<Time>,
    /// When it became active.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub admitted_at: Option<Time>,
    /// When an active call's lease runs out unless renewed by a heartbeat.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub lease_expires_at: Option<Time>,
    /// When a queued call is abandoned unless held (null while a wait holds it).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub hold_expires_at: Option<Time>,
    /// When a queued call with `max_wait_s` gives up.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub max_wait_expires_at: Option<Time>,
    /// The lease length heartbeats renew, in seconds.
    #[serde(default)]
    pub lease_ttl_s: f64,
    /// When it ended.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ended_at: Option<Time>,
    /// Why it ended.
    pub end_reason: Option<EndReason>,
}

impl Call {
    /// Holding a slot?
    pub fn is_active(&self) -> bool {
        self.state == CallState::Active
    }

    /// Waiting for one?
    pub fn is_queued(&self) -> bool {
        self.state == CallState::Queued
    }
}

/// An org's request rate, for all its keys together (`GET`/`PUT
/// /v1/orgs/{org}/rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgRate {
    /// The org's own rate, set over the API; null: none of its own.
    pub rate_per_s: Option<u32>,
    /// The rate its keys are held to together, in requests per second: its
    /// own, else the server's setting for it (`--rate-org-for`, else
    /// `--rate-org`); 0: no org rate (each key's own still holds).
    pub effective_rate_per_s: u32,
    /// Where `effective_rate_per_s` comes from.
    pub source: RateSource,
}

/// Where an org's rate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RateSource {
    /// The org's own, set with `PUT /v1/orgs/{org}/rate`.
    Org,
    /// The server's options (`--rate-org-for`, `--rate-org`).
    Server,
}

/// An org key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The key's id, for revoking it.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Its own rate limit, in requests per second; null: its role's default.
    pub rate_per_s: Option<u32>,
    /// When it was made.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Time,
}

/// A new key with its secret, shown only in this answer (the store keeps a hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewKey {
    /// The key's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its own rate limit, in requests per second; null: its role's default.
    pub rate_per_s: Option<u32>,
    /// The secret, for `Authorization: Bearer`.
    pub key: String,
}

/// A plan: an operator-defined tier of limit and burst that orgs take
/// unless they set their own. In the OpenAPI document `PlanTier`: `Plan`
/// there is capacity planning's recommendation (older).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = PlanTier))]
pub struct Plan {
    /// The plan's id, e.g. `standard`.
    pub id: String,
    /// The limit `L` of every org on it that has no limit of its own.
    pub limit: u32,
    /// The burst `B` of every org on it that has no burst of its own.
    pub burst: u32,
    /// How many orgs are on it.
    pub orgs: u32,
}

/// `GET /v1/plans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanList {
    /// Every plan, by id.
    pub plans: Vec<Plan>,
}

/// A plan's terms, as a `plan.changed` event shows them before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanTerms {
    /// Its limit.
    pub limit: u32,
    /// Its burst.
    pub burst: u32,
}

/// `plan.changed`: a plan was created, changed or deleted (operator-visible,
/// `GET /v1/plans/events`). The orgs it changed each have their own
/// `org.limit_changed` / `org.burst_changed` events in their stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanEvent {
    /// Increasing from 1 over all plans.
    pub seq: u64,
    /// Always `plan.changed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Time,
    /// The plan.
    pub plan: String,
    /// Its terms before (null: it was created).
    pub old: Option<PlanTerms>,
    /// Its terms now (null: it was deleted).
    pub new: Option<PlanTerms>,
    /// How many orgs' limit or burst it changed.
    pub orgs_changed: u32,
    /// The id of the key that made it (null for the operator).
    pub by: Option<String>,
}

/// `GET /v1/plans/events`: a page of plan events, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanEventPage {
    /// The events.
    pub events: Vec<PlanEvent>,
    /// The `after` of the next request.
    pub next: u64,
}

/// `GET /v1/orgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgList {
    /// The orgs, by id.
    pub orgs: Vec<Org>,
    /// The cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/orgs/{org}/calls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallList {
    /// Active calls (oldest admission first), then queued calls in queue order.
    pub calls: Vec<Call>,
    /// The cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/orgs/{org}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyList {
    /// The org's keys, oldest first.
    pub keys: Vec<KeyInfo>,
    /// The cursor of the next page, null on the last.
    pub next_cursor: Option<String>,
}

/// One sample of an org's recent past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sample {
    /// When, in ms since the Unix epoch.
    pub at_ms: u64,
    /// Active calls then.
    pub active: u32,
    /// Queued calls then.
    pub queued: u32,
}

/// `GET /v1/orgs/{org}/history`: active and queued calls of the last 15 minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    /// Seconds between samples.
    pub interval_s: u64,
    /// Oldest first (since the server started).
    pub samples: Vec<Sample>,
}
