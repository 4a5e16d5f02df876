//! What the API takes: every request body, with the check of each field.
//!
//! Bodies refuse unknown fields. Ids and numbers are checked by the methods
//! here, so a handler and a client check them the same way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::limits;
use crate::number;
use crate::types::{CallType, Caps, IfBlocked, PerType, Role};

/// `POST /v1/orgs`: a new org with a limit of `limit` concurrent calls, or
/// on a plan (`plan`), or both (its own limit then overrides the plan's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// The new org's id.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub id: String,
    /// Its own concurrency limit, 0 to 1,000,000; required unless `plan` is given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub limit: Option<u32>,
    /// The plan it is on (`GET /v1/plans`): it takes the plan's limit
    /// (unless `limit` is given) and burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub plan: Option<String>,
}

/// `PUT /v1/orgs/{org}/limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetLimit {
    /// The new limit, 0 to 1,000,000; not below the sum of the org's
    /// reservations. Null: back to the org's plan's limit (the org must be on a plan).
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, minimum = 0, maximum = 1_000_000)
    )]
    pub limit: Option<u32>,
}

/// `PUT /v1/orgs/{org}/burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetBurst {
    /// Slots the org may use above its limit once the whole limit is in
    /// use, 0 to 1,000,000 (0: none, as in version 1). Null: back to the
    /// org's plan's burst (the org must be on a plan).
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, minimum = 0, maximum = 1_000_000)
    )]
    pub burst: Option<u32>,
}

/// `PUT /v1/orgs/{org}/plan`: moves an org to a plan (or off plans).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPlan {
    /// The plan: the org takes its limit and burst (its own ones are
    /// cleared). Null: off plans, keeping its limit and burst as its own.
    /// Required (null must be said, not left out).
    #[serde(deserialize_with = "required_nullable")]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, pattern = r"^[A-Za-z0-9._:-]{1,128}$")
    )]
    pub plan: Option<String>,
}

/// A field that must be present, and may be null (serde would read a
/// missing `Option` as `None`).
fn required_nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// `POST /v1/plans`: a new plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// The new plan's id.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub id: String,
    /// Its limit, 0 to 1,000,000.
    #[serde(deserialize_with = "number::whole::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub limit: u32,
    /// Its burst, 0 to 1,000,000 (0 if absent).
    #[serde(
        default,
        deserialize_with = "number::whole::<_, _, 0, { limits::MAX_LIMIT as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub burst: u32,
}

/// `PUT /v1/orgs/{org}/rate`: the org's own request rate, for all its keys
/// together (operator only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetOrgRate {
    /// Requests per second of all the org's keys together, 0 to 1,000,000
    /// (0: no org rate, only each key's); null: back to the server's
    /// setting (`--rate-org-for`, else `--rate-org`). Required.
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_RATE_PER_S as u64 }>")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000, required = true)
    )]
    pub rate_per_s: Option<u32>,
}

/// `PATCH /v1/plans/{plan}`: a new limit, burst or both; a missing one is unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    /// The plan's new limit, 0 to 1,000,000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub limit: Option<u32>,
    /// The plan's new burst, 0 to 1,000,000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub burst: Option<u32>,
}

/// `PUT /v1/orgs/{org}/agents/{agent}/caps`: all five caps at once; a
/// missing or null one is no cap.
pub type SetCaps = Caps;

/// [`SetCaps`] as the server reads it: each cap 0 to 1,000,000 or null (no
/// cap), a missing one null. A cap is never below the reservation it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SetCaps))]
#[serde(default, deny_unknown_fields)]
pub struct CapsBody {
    /// The most active `webcall` calls (null: no cap).
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub webcall: Option<u32>,
    /// The most active `chat` calls (null: no cap).
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub chat: Option<u32>,
    /// The most active `outbound` calls (null: no cap).
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub outbound: Option<u32>,
    /// The most active `inbound` calls (null: no cap).
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub inbound: Option<u32>,
    /// The most active calls over all four types (null: no cap).
    #[serde(deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub total: Option<u32>,
}

impl From<CapsBody> for SetCaps {
    fn from(b: CapsBody) -> Self {
        Caps {
            webcall: b.webcall,
            chat: b.chat,
            outbound: b.outbound,
            inbound: b.inbound,
            total: b.total,
        }
    }
}

/// `PUT /v1/orgs/{org}/agents/{agent}/reservations`: slots per call type; a missing type means 0.
pub type SetReservations = PerType<u32>;

/// [`SetReservations`] as the server reads it: each count 0 to 1,000,000
/// (the highest limit), a missing type 0. A count per type in an answer
/// ([`PerType`]) has no such ceiling, so the two are apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Reservations))]
#[serde(default, deny_unknown_fields)]
pub struct ReservationsBody {
    /// Slots for `webcall` calls (0 if absent).
    #[serde(deserialize_with = "number::whole::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub webcall: u32,
    /// Slots for `chat` calls (0 if absent).
    #[serde(deserialize_with = "number::whole::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub chat: u32,
    /// Slots for `outbound` calls (0 if absent).
    #[serde(deserialize_with = "number::whole::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub outbound: u32,
    /// Slots for `inbound` calls (0 if absent).
    #[serde(deserialize_with = "number::whole::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub inbound: u32,
}

impl From<ReservationsBody> for SetReservations {
    fn from(b: ReservationsBody) -> Self {
        PerType {
            webcall: b.webcall,
            chat: b.chat,
            outbound: b.outbound,
            inbound: b.inbound,
        }
    }
}

/// `POST /v1/orgs/{org}/calls`: a call asks for a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcquireCall {
    /// The call's id; give one to retry safely. The server makes one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub id: Option<String>,
    /// The agent the call is for.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub agent: String,
    /// Its type.
    #[serde(rename = "type")]
    pub call_type: CallType,
    /// Lease length in seconds, 5 to 3600 (default 60), renewed by heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 5, maximum = 3600))]
    pub lease_ttl_s: Option<f64>,
    /// The longest it may wait in the queue before it ends `timed_out`, in seconds (at most a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub max_wait_s: Option<f64>,
    /// How long this request may block for admission, 0 to 60 s (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 60))]
    pub wait_s: Option<f64>,
    /// A call that would wait blocked (it can never be admitted as the org
    /// is configured now): `queue` it anyway, saying why (the default), or
    /// `refuse` it with 409 `call_blocked`, queueing nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_blocked: Option<IfBlocked>,
}

impl AcquireCall {
    /// A request for a slot of `call_type` for `agent`, with the defaults.
    pub fn new(agent: impl Into<String>, call_type: CallType) -> Self {
        AcquireCall {
            id: None,
            agent: agent.into(),
            call_type,
            lease_ttl_s: None,
            max_wait_s: None,
            wait_s: None,
            if_blocked: None,
        }
    }

    /// The lease asked for, checked (the default if none).
    pub fn lease_ttl(&self) -> Result<Duration> {
        self.lease_ttl_s
            .map_or(Ok(limits::DEFAULT_LEASE_TTL), limits::lease_ttl)
    }

    /// The `max_wait` asked for, checked.
    pub fn max_wait(&self) -> Result<Option<Duration>> {
        self.max_wait_s.map(limits::max_wait).transpose()
    }

    /// How long the request may block, checked (0 if not asked).
    pub fn wait(&self) -> Result<Duration> {
        limits::request_wait(self.wait_s.unwrap_or(0.0))
    }
}

/// `POST /v1/orgs/{org}/calls/{id}/heartbeat` (body optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// A new lease length in seconds, 5 to 3600; the call's current one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 5, maximum = 3600))]
    pub lease_ttl_s: Option<f64>,
}

impl Heartbeat {
    /// The new lease asked for, checked.
    pub fn lease_ttl(&self) -> Result<Option<Duration>> {
        self.lease_ttl_s.map(limits::lease_ttl).transpose()
    }
}

/// `POST /v1/orgs/{org}/keys`: a new org key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What it may do.
    pub role: Role,
    /// A name for people.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub name: String,
    /// Its own rate limit, in requests per second (1 to 1,000,000; the
    /// operator key only). Absent: its role's default, as the server is set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "number::whole_opt::<_, _, 1, { limits::MAX_RATE_PER_S as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub rate_per_s: Option<u32>,
}

impl CreateKey {
    /// Checks the name and the rate.
    pub fn check(&self) -> Result<()> {
        limits::check_id("name", &self.name)?;
        limits::rate_per_s(self.rate_per_s)
    }
}

/// `PATCH /v1/orgs/{org}/keys/{id}`: what to change of a key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    /// Its own rate limit, in requests per second (1 to 1,000,000); null:
    /// back to its role's default.
    #[serde(
        default,
        deserialize_with = "number::whole_opt::<_, _, 1, { limits::MAX_RATE_PER_S as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub rate_per_s: Option<u32>,
}

impl UpdateKey {
    /// Checks the rate.
    pub fn check(&self) -> Result<()> {
        limits::rate_per_s(self.rate_per_s)
    }
}
