//! Durable state behind the engine: what is kept, and the narrow interface a backend offers.
//!
//! The engine is the single source of truth while the server runs; a store
//! keeps what is needed to rebuild it after a restart. Every change reaches the
//! store as a [`Write`]: the engine's events (from which orgs, reservations and
//! calls are derived) and key changes. Writes are submitted in the order the
//! changes happened, without blocking, through the group-commit front
//! ([`Tickets`], which the service owns), and a request answers only once
//! its write is durable ([`Tickets::durable`]): "a 2xx answer means durable".
//!
//! A backend ([`Store`]) offers reads; its writer task commits what the
//! front hands it. Who leads, with several replicas, is not the store's
//! business: see `crate::replication`.

pub(crate) mod group_commit;
pub mod postgres;
mod rows;
pub mod sqlite;
mod usage_rows;
pub(crate) mod write_loop;

use std::future::Future;
use std::pin::Pin;

use slotgate_core::types::Caps;
use slotgate_core::{AgentId, Config, Engine, Event, OrgId, Reservations, RestoredCall, Timestamp};

/// Each org in an engine of its own, and the keys: what a [`Snapshot`] restores.
pub type Restored = (Vec<(OrgId, Engine)>, Vec<KeyRecord>);

pub use self::group_commit::{Gate, Tickets};
pub use self::rows::{Corrupt, Dump, PlanRow, DUMP_FORMAT};
pub use self::usage_rows::StoredUsage;
use crate::auth::KeyRecord;

/// How long a store keeps things the engine no longer needs.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Ended calls (the engine keeps them as long, for idempotent retries).
    pub ended_calls: std::time::Duration,
    /// Events, for the events API.
    pub events: std::time::Duration,
    /// Usage by hour (`--usage-retention`).
    pub usage: std::time::Duration,
}

/// One change to make durable.
#[derive(Debug, Clone)]
pub enum Write {
    /// Engine events, in order; config events carry the id of the key that made them.
    Events(Vec<(Event, Option<String>)>),
    /// A new org key.
    PutKey(KeyRecord),
    /// A revoked org key.
    DeleteKey {
        /// The key's id.
        id: String,
    },
    /// An org's own request rate for all its keys together (`None`: back
    /// to the server's setting).
    OrgRate {
        /// The org.
        org: String,
        /// Its rate in requests per second, 0: none.
        rate_per_s: Option<u32>,
    },
    /// A plan created, changed or deleted, with every event of the orgs it
    /// changed: one transaction, so that all of it is durable or none.
    Plan(Box<PlanWrite>),
    /// Everything of an export, into an empty store (`slotgate import`).
    Import(Box<Dump>),
    /// The last write, at shutdown: with several replicas, gives up the
    /// lead so that another replica takes over at once. Nothing for one server.
    Resign,
}

impl Write {
    /// The engine events this write carries, in order (a plan change's
    /// too): what the usage hours count.
    pub fn engine_events(&self) -> &[(Event, Option<String>)] {
        match self {
            Write::Events(events) => events,
            Write::Plan(plan) => &plan.events,
            _ => &[],
        }
    }
}

/// A plan change as one write ([`Write::Plan`]).
#[derive(Debug, Clone)]
pub struct PlanWrite {
    /// The plan as it is now, or as it was if `deleted`.
    pub plan: PlanRow,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Its `plan.changed` event (its `seq` is the store's to give).
    pub event: slotgate_api::PlanEvent,
    /// The events of the orgs it changed, in order, as in [`Write::Events`].
    pub events: Vec<(Event, Option<String>)>,
}

/// Everything needed to rebuild the server's state.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every org.
    pub orgs: Vec<StoredOrg>,
    /// Every org key.
    pub keys: Vec<KeyRecord>,
    /// Orgs' own request rates (for all their keys together), set over the API.
    pub org_rates: Vec<(OrgId, u32)>,
    /// Every plan (taken out before [`Snapshot::restore`]).
    pub plans: Vec<PlanRow>,
    /// Every ended call the store keeps ([`Store::ended_ids`]; taken out
    /// before [`Snapshot::restore`]).
    pub ended: Vec<EndedId>,
}

/// An ended call the store keeps, by its org, its id and when it ended.
pub type EndedId = (String, String, Timestamp);

/// What is stored does not fit the engine's rules.
#[derive(Debug, thiserror::Error)]
#[error("restoring org {org}: {source}")]
pub struct RestoreError {
    /// The org.
    pub org: String,
    /// The engine's refusal.
    pub source: slotgate_core::Error,
}

impl Snapshot {
    /// Each org in an engine of its own (before [`Engine::resume`]), and the keys.
    pub fn restore(self, config: Config) -> Result<Restored, RestoreError> {
        let mut engines = Vec::with_capacity(self.orgs.len());
        for org in self.orgs {
            let mut engine = Engine::new(config);
            let name = org.id.to_string();
            let refused = |source| RestoreError {
                org: name.clone(),
                source,
            };
            engine
                .restore_org(org.id.clone(), org.limit, org.last_event_seq)
                .map_err(refused)?;
            engine
                .restore_burst(org.id.as_str(), org.burst)
                .map_err(refused)?;
            engine
                .restore_plan(org.id.as_str(), org.plan)
                .map_err(refused)?;
            for (agent, r) in &org.reservations {
                engine
                    .restore_reservations(org.id.as_str(), agent, *r)
                    .map_err(refused)?;
            }
            // Caps after reservations: a cap is checked against the reservation it covers.
            for (agent, caps) in &org.caps {
                engine
                    .restore_caps(org.id.as_str(), agent, *caps)
                    .map_err(refused)?;
            }
            for call in org.calls {
                engine
                    .restore_call(org.id.as_str(), call)
                    .map_err(refused)?;
            }
            engines.push((org.id, engine));
        }
        Ok((engines, self.keys))
    }
}

/// One org as stored.
#[derive(Debug)]
pub struct StoredOrg {
    /// Its id.
    pub id: OrgId,
    /// Its limit.
    pub limit: u32,
    /// Its burst `B`.
    pub burst: u32,
    /// Its plan, and whether its limit and burst are the plan's.
    pub plan: slotgate_core::PlanLink,
    /// The seq of its last event.
    pub last_event_seq: u64,
    /// Every agent with a reservation.
    pub reservations: Vec<(AgentId, Reservations)>,
    /// Every agent with a cap.
    pub caps: Vec<(AgentId, Caps)>,
    /// Its calls: active ones, then queued ones in queue order, then ended ones in the order they ended.
    pub calls: Vec<RestoredCall>,
}

/// A future resolving once a write is durable.
pub type Durable = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

/// Whether the database works. It says nothing of who leads (with several
/// replicas, that is this replica's role, `crate::replication::Role`), nor
/// whether the writer commits this replica's writes (the group commit's
/// [`Gate`]): a follower whose database works is `Up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The database works.
    Up,
    /// It cannot be reached or a commit failed (the message says why):
    /// nothing is acknowledged.
    Down(String),
    /// Reachable again after a failure; the service must reload (the
    /// [`Gate`] asks it to) before anything is committed: `Up` again once
    /// it has ([`Tickets::resume`]). A replica that follows holds nothing
    /// to reload: its database goes from `Down` to `Up`.
    Back,
}

/// A store failure. No change is acknowledged after one until the store is
/// back and the service has reloaded: memory and the store could disagree.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store failure: {0}")]
pub struct StoreError(pub String);

/// An event that is now durable: which org, which seq.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The org it belongs to.
    pub org: slotgate_core::OrgId,
    /// Its seq in the org.
    pub seq: u64,
}

impl Stored {
    /// Is this an event of `org` newer than `after`?
    pub fn is_news(&self, org: &str, after: u64) -> bool {
        self.org.as_str() == org && self.seq > after
    }
}

/// A durable backend's reads (its writes go through [`Tickets`]).
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Everything but the event log, as rows, read as one consistent
    /// snapshot; ended calls only from `ended_since` on, if given.
    fn dump(&self, ended_since: Option<Timestamp>) -> Result<Dump, StoreError>;

    /// Reads back what the engine holds, at start: everything, but ended
    /// calls only from `ended_since` on (the engine keeps them a short while;
    /// [`Store::ended_call`] reads the older ones).
    /// With the ids of every ended call the store keeps ([`Store::ended_ids`]).
    fn load(&self, ended_since: Timestamp) -> Result<Snapshot, StoreError> {
        let mut snapshot = self
            .dump(Some(ended_since))?
            .snapshot()
            .map_err(|e| StoreError(e.to_string()))?;
        snapshot.ended = self.ended_ids()?;
        Ok(snapshot)
    }

    /// An ended call the store keeps (for `--ended-retention`), if any.
    fn ended_call(&self, org: &str, id: &str) -> Result<Option<RestoredCall>, StoreError>;

    /// The org, id and end of every ended call the store keeps: the
    /// service's index of ended ids is filled from them, so that an acquire
    /// reads [`Store::ended_call`] only for an id that may have ended.
    fn ended_ids(&self) -> Result<Vec<EndedId>, StoreError>;

    /// How long the store keeps ended calls (`--ended-retention`).
    fn ended_retention(&self) -> std::time::Duration;

    /// The seq of an org's newest stored event (0 if none).
    fn last_event(&self, org: &str) -> Result<u64, StoreError>;

    /// The org's calls that arrived at `since` or later, as far back as the
    /// store keeps ended calls (`--ended-retention`), in no particular order.
    fn calls_since(
        &self,
        org: &str,
        since: Timestamp,
    ) -> Result<Vec<slotgate_plan::CallRecord>, StoreError>;

    /// The earliest time from which the store holds every call of the org
    /// that arrived (for rates over a window): the org's creation while its
    /// event is kept, and never before `now` minus the ended-call retention.
    fn calls_complete_since(&self, org: &str, now: Timestamp) -> Result<Timestamp, StoreError>;

    /// An org's usage hours stored with a start in `from_ms..to_ms`, oldest
    /// first, and its latest stored hour (from which the current one
    /// continues, see `usage.rs`).
    fn usage(&self, org: &str, from_ms: u64, to_ms: u64) -> Result<StoredUsage, StoreError>;

    /// `plan.changed` events after `after`, oldest first, at most `limit`.
    fn plan_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<slotgate_api::PlanEvent>, StoreError>;

    /// Events of an org after `after`, oldest first, at most `limit`.
    fn events(
        &self,
        org: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<slotgate_api::Event>, StoreError>;
}
