//! The API's shapes (API.md), as Rust types: the one definition of the JSON
//! both the client reads and the server writes (the server builds these from
//! its engine's views; with the `openapi` feature they carry OpenAPI schemas).

use serde::{Deserialize, Serialize};

/// A value per call type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PerType {
    /// Browser voice calls.
    pub webcall: u32,
    /// Text chats.
    pub chat: u32,
    /// Telephony calls the agent places.
    pub outbound: u32,
    /// Telephony calls the agent receives.
    pub inbound: u32,
}

impl PerType {
    /// The sum over the four types.
    pub fn total(&self) -> u32 {
        self.webcall + self.chat + self.outbound + self.inbound
    }
}

/// An agent's reservations and usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    /// The agent's id.
    pub id: String,
    /// Slots reserved per call type.
    pub reserved: PerType,
    /// Active calls per call type.
    pub active: PerType,
    /// Queued calls per call type.
    pub queued: PerType,
    /// Sum of the reservations.
    pub reserved_total: u32,
    /// Active calls in reserved slots.
    pub reserved_in_use: u32,
    /// Active calls in the shared pool.
    pub shared_in_use: u32,
}

/// An org's concurrency snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Org {
    /// The org's id.
    pub id: String,
    /// Its limit.
    pub limit: u32,
    /// Sum of all reservations.
    pub reserved: u32,
    /// Shared capacity.
    pub shared: u32,
    /// Active calls.
    pub active: u32,
    /// Queued calls.
    pub queued: u32,
    /// Active calls in the shared pool.
    pub shared_in_use: u32,
    /// Agents with a reservation, an active or a queued call.
    pub agents: Vec<Agent>,
}

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Call {
    /// Its id.
    pub id: String,
    /// Its agent.
    pub agent: String,
    /// `webcall`, `chat`, `outbound` or `inbound`.
    #[serde(rename = "type")]
    pub call_type: String,
    /// `queued`, `active` or `ended`.
    pub state: String,
    /// `reserved` or `shared` once admitted.
    pub slot: Option<String>,
    /// Place in the queue, while queued.
    pub position: Option<u64>,
    /// When it was queued.
    pub queued_at: Option<String>,
    /// When it was admitted.
    pub admitted_at: Option<String>,
    /// When an active call's lease runs out unless renewed by a heartbeat.
    pub lease_expires_at: Option<String>,
    /// When a queued call is abandoned unless held (null while a wait holds it).
    #[serde(default)]
    pub hold_expires_at: Option<String>,
    /// When a queued call with `max_wait_s` gives up.
    #[serde(default)]
    pub max_wait_expires_at: Option<String>,
    /// The lease length heartbeats renew, in seconds.
    #[serde(default)]
    pub lease_ttl_s: f64,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

impl Call {
    /// Holding a slot?
    pub fn is_active(&self) -> bool {
        self.state == "active"
    }

    /// Waiting for one?
    pub fn is_queued(&self) -> bool {
        self.state == "queued"
    }
}

/// A key as listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The key's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `admin` or `runtime`.
    pub role: String,
    /// When it was made (absent on a new key's answer).
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A new key with its secret, shown only once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewKey {
    /// The key's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// The secret for `Authorization: Bearer`.
    pub key: String,
}

/// One state change of an org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Org-wide, increasing from 1.
    pub seq: u64,
    /// The org.
    pub org: String,
    /// `call.queued`, `call.admitted`, `call.ended`, `org.created`,
    /// `org.limit_changed` or `agent.reservations_changed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When, RFC 3339.
    pub at: String,
    /// The call, for `call.*` events.
    #[serde(default)]
    pub call: Option<String>,
    /// The agent, for `call.*` and `agent.*` events.
    #[serde(default)]
    pub agent: Option<String>,
    /// `call.admitted`: `reserved` or `shared`.
    #[serde(default)]
    pub slot: Option<String>,
    /// `call.admitted`: how long the call waited.
    #[serde(default)]
    pub waited_ms: Option<u64>,
    /// `call.ended`: why.
    #[serde(default)]
    pub reason: Option<String>,
    /// Configuration events: the key that made the change.
    #[serde(default)]
    pub by: Option<String>,
    /// Every other field of the event (`old`, `new`, `position`, ...).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// Events, oldest first.
    pub events: Vec<Event>,
    /// The `after` for the next request.
    pub next: u64,
}
