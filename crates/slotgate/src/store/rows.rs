//! The rows both stores keep, read back into what the engine and the keys
//! are rebuilt from. Each store fills these plain rows from its own driver;
//! what they mean is decided once, here.

use std::time::Duration;

use slotgate_core::types::Caps;
use slotgate_core::{
    AgentId, CallId, CallType, EndReason, OrgId, PlanId, PlanLink, Reservations, RestoredCall,
    RestoredState, Slot, Source, Timestamp,
};
use slotgate_plan::CallRecord;

use serde::{Deserialize, Serialize};

use super::{Snapshot, StoredOrg};
use crate::auth::{KeyRecord, Role};

/// The columns of a call row, in [`CallRow`]'s order.
pub(super) const CALL_COLUMNS: &str = "id, agent, type, state, slot, queued_at, admitted_at, \
     lease_ttl_ms, max_wait_at, ended_at, end_reason";

/// Which calls a dump reads: live ones, and ended ones from `?2`/`$2` on.
pub(super) const CALLS_KEPT: &str = "org = $1 AND (state <> 'ended' OR ended_at >= $2)";

/// `ended_since` as the bound of [`CALLS_KEPT`]: every ended call when `None`.
pub(super) fn ended_bound(ended_since: Option<Timestamp>) -> i64 {
    ended_since.map_or(i64::MIN, ms)
}

/// A call's row, if it is an ended call still kept: as the engine keeps
/// ended calls, while `ended_at + retention > now` (the purge deletes rows
/// later).
pub(super) fn kept_ended(
    row: Option<CallRow>,
    retention: super::Retention,
) -> Result<Option<RestoredCall>, super::StoreError> {
    let after = kept_after(retention);
    row.filter(|r| r.state == "ended" && r.ended_at.is_some_and(|t| t > after))
        .map(|r| r.restored().map_err(|e| super::StoreError(e.to_string())))
        .transpose()
}

/// Ended calls the store keeps ended after this (ms): as the engine keeps them.
pub(super) fn kept_after(retention: super::Retention) -> i64 {
    ms(crate::clock::now()) - retention.ended_calls.as_millis() as i64
}

/// An ended call's id row (org, id, `ended_at`) as [`super::EndedId`].
pub(super) fn ended_id((org, id, ended_at): (String, String, i64)) -> super::EndedId {
    (org, id, Timestamp::from_millis(ended_at.max(0) as u64))
}

/// The order calls are restored in: active ones, then queued ones in queue
/// order, then ended ones in the order they ended.
pub(super) const CALL_ORDER: &str =
    "CASE state WHEN 'active' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END, \
     CASE state WHEN 'ended' THEN ended_at ELSE queue_seq END";

/// The columns of a call as observed traffic, in [`TrafficRow`]'s order.
pub(super) const TRAFFIC_COLUMNS: &str =
    "agent, type, COALESCE(queued_at, admitted_at), admitted_at, ended_at, end_reason";

/// The columns of a key row, in [`KeyRow`]'s order.
pub(super) const KEY_COLUMNS: &str = "id, org, name, role, hash, created_at, rate_per_s";

/// Stored data that does not parse: the store was written by something else.
#[derive(Debug, Clone, thiserror::Error)]
#[error("stored data does not parse: {0}")]
pub struct Corrupt(pub String);

/// A time as stored: milliseconds since the Unix epoch.
pub(super) fn ms(t: Timestamp) -> i64 {
    t.as_millis() as i64
}

/// A stored time.
pub(super) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms.max(0) as u64)
}

/// A stored call type.
pub(super) fn call_type(s: &str) -> Result<CallType, Corrupt> {
    s.parse().map_err(|_| Corrupt(s.to_string()))
}

/// A stored end reason.
pub(super) fn end_reason(s: &str) -> Result<EndReason, Corrupt> {
    EndReason::ALL
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| Corrupt(s.to_string()))
}

fn slot(s: Option<&str>) -> Result<Option<Slot>, Corrupt> {
    match s {
        None => Ok(None),
        Some("reserved") => Ok(Some(Slot::Reserved)),
        Some("shared") => Ok(Some(Slot::Shared)),
        Some("burst") => Ok(Some(Slot::Burst)),
        Some(other) => Err(Corrupt(other.to_string())),
    }
}

/// A stored agent id.
pub(super) fn agent_id(s: &str) -> Result<AgentId, Corrupt> {
    AgentId::new(s).map_err(|_| Corrupt(s.to_string()))
}

/// A stored org id.
pub(super) fn org(s: &str) -> Result<OrgId, Corrupt> {
    OrgId::new(s).map_err(|_| Corrupt(s.to_string()))
}

/// One agent's reservations as stored: webcall, chat, outbound, inbound.
pub(super) fn reservations(counts: [u32; 4]) -> Reservations {
    let [webcall, chat, outbound, inbound] = counts;
    Reservations {
        webcall,
        chat,
        outbound,
        inbound,
    }
}

/// Everything a store holds but its event log and its schema: what
/// `slotgate export` writes and `slotgate import` reads, and what a store is
/// loaded from at start ([`Dump::snapshot`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dump {
    /// What this document is: [`DUMP_FORMAT`].
    pub format: String,
    /// Every org.
    pub orgs: Vec<OrgRows>,
    /// Every org key (its hash only).
    pub keys: Vec<KeyRow>,
    /// Orgs' own request rates (absent in a dump: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub org_rates: Vec<OrgRateRow>,
    /// Every plan (absent in an older export: the importing store keeps its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plans: Option<Vec<PlanRow>>,
}

/// An org's own request rate, for all its keys together.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgRateRow {
    /// The org.
    pub org: String,
    /// Requests per second; 0: none.
    pub rate_per_s: u32,
}

/// A stored `plan.changed` event: its body, with the seq of its row.
pub(super) fn plan_event(seq: i64, body: &str) -> Result<slotgate_api::PlanEvent, Corrupt> {
    let mut event: slotgate_api::PlanEvent =
        serde_json::from_str(body).map_err(|e| Corrupt(e.to_string()))?;
    event.seq = seq.max(0) as u64;
    Ok(event)
}

/// One plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRow {
    /// Its id.
    pub id: String,
    /// Its limit.
    pub limit: u32,
    /// Its burst.
    pub burst: u32,
}

/// A stored plan link: the plan (none: no plan) and whether the limit and
/// burst are the plan's.
pub(super) fn plan_link(
    plan: Option<String>,
    limit_from_plan: bool,
    burst_from_plan: bool,
) -> Result<PlanLink, Corrupt> {
    let source = |from_plan| match from_plan {
        true => Source::Plan,
        false => Source::Org,
    };
    Ok(PlanLink {
        plan: plan
            .map(|p| PlanId::new(&p).map_err(|_| Corrupt(p)))
            .transpose()?,
        limit_source: source(limit_from_plan),
        burst_source: source(burst_from_plan),
    })
}

/// [`Dump::format`]: the kind of document, and its version.
pub const DUMP_FORMAT: &str = "slotgate-export/1";

/// One org's rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgRows {
    /// Its id.
    pub id: String,
    /// Its limit.
    pub limit: u32,
    /// The seq of its newest event: its next event is one more.
    pub last_event_seq: u64,
    /// Its burst `B` (absent in a dump: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub burst: u32,
    /// Its plan (absent in a dump: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Whether its limit is its plan's (absent: its own).
    #[serde(default, skip_serializing_if = "is_false")]
    pub limit_from_plan: bool,
    /// Whether its burst is its plan's (absent: its own).
    #[serde(default, skip_serializing_if = "is_false")]
    pub burst_from_plan: bool,
    /// Agents with reservations.
    pub reservations: Vec<ReservationRow>,
    /// Agents with caps (absent in a dump: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<CapRow>,
    /// Its calls ([`CALL_ORDER`]).
    pub calls: Vec<CallRow>,
}

/// One agent's reservations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationRow {
    /// The agent.
    pub agent: String,
    /// Reserved webcall slots.
    pub webcall: u32,
    /// Reserved chat slots.
    pub chat: u32,
    /// Reserved outbound slots.
    pub outbound: u32,
    /// Reserved inbound slots.
    pub inbound: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One agent's caps: the most active calls per type and in total (none: no cap).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapRow {
    /// The agent.
    pub agent: String,
    /// Its webcall cap.
    pub webcall: Option<u32>,
    /// Its chat cap.
    pub chat: Option<u32>,
    /// Its outbound cap.
    pub outbound: Option<u32>,
    /// Its inbound cap.
    pub inbound: Option<u32>,
    /// Its cap over all types.
    pub total: Option<u32>,
}

impl CapRow {
    /// The row of an agent's caps.
    pub(super) fn new(agent: &AgentId, caps: &Caps) -> Self {
        CapRow {
            agent: agent.to_string(),
            webcall: caps.webcall,
            chat: caps.chat,
            outbound: caps.outbound,
            inbound: caps.inbound,
            total: caps.total,
        }
    }

    /// The agent and its caps, as the engine restores them.
    fn restored(self) -> Result<(AgentId, Caps), Corrupt> {
        let caps = Caps {
            webcall: self.webcall,
            chat: self.chat,
            outbound: self.outbound,
            inbound: self.inbound,
            total: self.total,
        };
        Ok((agent_id(&self.agent)?, caps))
    }
}

impl OrgRows {
    /// The queue seq each call is stored with: its place in the list, which
    /// keeps queued calls in order (lower than any seq the org gives later,
    /// since each call took at least one of its events).
    pub(super) fn queue_seqs(&self) -> impl Iterator<Item = (i64, &CallRow)> {
        (1..).zip(&self.calls)
    }
}

impl Dump {
    /// How many orgs, calls and keys it holds.
    pub fn counts(&self) -> (usize, usize, usize) {
        let calls = self.orgs.iter().map(|o| o.calls.len()).sum();
        (self.orgs.len(), calls, self.keys.len())
    }

    /// The state these rows hold, or what in them does not parse.
    pub fn snapshot(self) -> Result<Snapshot, Corrupt> {
        let mut orgs = Vec::with_capacity(self.orgs.len());
        for o in self.orgs {
            let reservations = o
                .reservations
                .into_iter()
                .map(|r| {
                    let counts = [r.webcall, r.chat, r.outbound, r.inbound];
                    Ok((agent_id(&r.agent)?, reservations(counts)))
                })
                .collect::<Result<_, Corrupt>>()?;
            let caps = o
                .caps
                .into_iter()
                .map(CapRow::restored)
                .collect::<Result<_, _>>()?;
            let calls = o
                .calls
                .into_iter()
                .map(CallRow::restored)
                .collect::<Result<_, _>>()?;
            orgs.push(StoredOrg {
                id: org(&o.id)?,
                limit: o.limit,
                burst: o.burst,
                plan: plan_link(o.plan, o.limit_from_plan, o.burst_from_plan)?,
                last_event_seq: o.last_event_seq,
                reservations,
                caps,
                calls,
            });
        }
        let keys = self
            .keys
            .into_iter()
            .map(KeyRow::record)
            .collect::<Result<_, _>>()?;
        let org_rates = self
            .org_rates
            .into_iter()
            .map(|r| Ok((org(&r.org)?, r.rate_per_s)))
            .collect::<Result<_, Corrupt>>()?;
        Ok(Snapshot {
            orgs,
            keys,
            org_rates,
            plans: self.plans.unwrap_or_default(),
            ended: Vec::new(),
        })
    }
}

/// A call row ([`CALL_COLUMNS`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRow {
    pub(super) id: String,
    pub(super) agent: String,
    pub(super) call_type: String,
    pub(super) state: String,
    pub(super) slot: Option<String>,
    pub(super) queued_at: Option<i64>,
    pub(super) admitted_at: Option<i64>,
    pub(super) lease_ttl_ms: i64,
    pub(super) max_wait_at: Option<i64>,
    pub(super) ended_at: Option<i64>,
    pub(super) end_reason: Option<String>,
}

impl CallRow {
    /// The call as the engine restores it.
    pub(super) fn restored(self) -> Result<RestoredCall, Corrupt> {
        let slot = slot(self.slot.as_deref())?;
        let admitted_at = self.admitted_at.map(ts);
        let state = match self.state.as_str() {
            "queued" => RestoredState::Queued {
                max_wait_expires_at: self.max_wait_at.map(ts),
            },
            "active" => RestoredState::Active {
                slot: slot.ok_or_else(|| Corrupt("active call without slot".into()))?,
                admitted_at: admitted_at
                    .ok_or_else(|| Corrupt("active call without admitted_at".into()))?,
            },
            "ended" => RestoredState::Ended {
                slot,
                admitted_at,
                ended_at: ts(self
                    .ended_at
                    .ok_or_else(|| Corrupt("ended call without ended_at".into()))?),
                reason: end_reason(self.end_reason.as_deref().unwrap_or_default())?,
            },
            other => return Err(Corrupt(format!("call state {other}"))),
        };
        Ok(RestoredCall {
            id: CallId::new(&self.id).map_err(|_| Corrupt(self.id.clone()))?,
            agent: agent_id(&self.agent)?,
            call_type: call_type(&self.call_type)?,
            queued_at: self.queued_at.map(ts),
            lease_ttl: Duration::from_millis(self.lease_ttl_ms.max(0) as u64),
            state,
        })
    }
}

/// A call as observed traffic ([`TRAFFIC_COLUMNS`]).
#[derive(Debug)]
pub(super) struct TrafficRow {
    pub(super) agent: String,
    pub(super) call_type: String,
    pub(super) arrived_at: Option<i64>,
    pub(super) admitted_at: Option<i64>,
    pub(super) ended_at: Option<i64>,
    pub(super) end_reason: Option<String>,
}

impl TrafficRow {
    /// The call as the planner reads it.
    pub(super) fn record(self) -> Result<CallRecord, Corrupt> {
        let when = |t: Option<i64>| t.map(|t| t.max(0) as u64);
        Ok(CallRecord {
            agent: self.agent,
            call_type: call_type(&self.call_type)?,
            arrived_ms: when(self.arrived_at).unwrap_or(0),
            admitted_ms: when(self.admitted_at),
            ended_ms: when(self.ended_at),
            end_reason: self.end_reason.as_deref().map(end_reason).transpose()?,
        })
    }
}

/// A key row ([`KEY_COLUMNS`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRow {
    pub(super) id: String,
    pub(super) org: String,
    pub(super) name: String,
    pub(super) role: String,
    #[serde(with = "hex")]
    pub(super) hash: Vec<u8>,
    pub(super) created_at: i64,
    /// The key's own rate limit, requests per second (none: its org's or role's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rate_per_s: Option<i64>,
}

impl KeyRow {
    /// The key as the server checks it.
    pub(super) fn record(self) -> Result<KeyRecord, Corrupt> {
        Ok(KeyRecord {
            id: self.id,
            org: org(&self.org)?,
            name: self.name,
            role: self
                .role
                .parse::<Role>()
                .map_err(|_| Corrupt(self.role.clone()))?,
            hash: self
                .hash
                .try_into()
                .map_err(|_| Corrupt("key hash".into()))?,
            created_at: ts(self.created_at),
            rate_per_s: self
                .rate_per_s
                .map(u32::try_from)
                .transpose()
                .map_err(|_| Corrupt("key rate_per_s".into()))?,
        })
    }
}

/// Bytes as lowercase hex text, in a dump.
mod hex {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 || !text.is_ascii() {
            return Err(D::Error::custom("expected hex digits"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(D::Error::custom))
            .collect()
    }
}
