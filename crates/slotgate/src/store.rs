//! Durable state behind the engine: what is kept, and the narrow interface a backend offers.
//!
//! The engine is the single source of truth while the server runs; a store
//! keeps what is needed to rebuild it after a restart. Every change reaches the
//! store as a [`Write`]: the engine's events (from which orgs, reservations and
//! calls are derived) and key changes. Writes are submitted in the order the
//! changes happened, without blocking, and a request answers only once its
//! write is durable ([`Store::durable`]): "a 2xx answer means durable".

mod group_commit;
pub mod postgres;
mod rows;
pub mod sqlite;
mod usage_rows;

use std::future::Future;
use std::pin::Pin;

use slotgate_core::types::Caps;
use slotgate_core::{AgentId, Config, Engine, Event, OrgId, Reservations, RestoredCall, Timestamp};

/// Each org in an engine of its own, and the keys: what a [`Snapshot`] restores.
pub type Restored = (Vec<(OrgId, Engine)>, Vec<KeyRecord>);

pub use self::group_commit::Tickets;
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
    /// A call's new lease length, set by a heartbeat (no event records it).
    LeaseTtl {
        /// The call's org.
        org: String,
        /// The call's id.
        call: String,
        /// The new `lease_ttl`, in milliseconds.
        lease_ttl_ms: u32,
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

/// Whether the store works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Committing.
    Up,
    /// A commit failed (the message says why): nothing is acknowledged.
    Down(String),
    /// Reachable again, or this replica now leads: the service reloads its
    /// state from the store, then calls [`Store::resume`].
    Reconnected,
    /// Another replica leads (PostgreSQL, several replicas): requests go to
    /// it.
    Following(Leader),
}

/// The replica that leads, as the leader row names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// Where it serves: its `--advertise-url`.
    pub url: String,
    /// Its term, written with the URL when it took the lead: it proves it
    /// leads in this term before a follower forwards to it.
    pub term: i64,
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

/// A durable backend.
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

    /// The requests' side of the store's group commit: the store's
    /// writes, their durability and its health go through it.
    fn tickets(&self) -> &Tickets;

    /// Queues a write; never blocks. Returns its ticket: writes are numbered in
    /// submission order, which must be the order the changes happened.
    fn submit(&self, write: Write) -> u64 {
        self.tickets().submit(write)
    }

    /// The ticket of the last write submitted (0 if none).
    fn last_ticket(&self) -> u64 {
        self.tickets().last()
    }

    /// Resolves once every write up to `ticket` is durable.
    fn durable(&self, ticket: u64) -> Durable {
        self.tickets().durable(ticket)
    }

    /// Whether the store works, as it changes.
    fn health(&self) -> tokio::sync::watch::Receiver<Health> {
        self.tickets().health()
    }

    /// Sizes and durations of the batches group commit committed, for `/metrics`.
    fn commits(&self) -> &crate::metrics::Commits {
        self.tickets().commits()
    }

    /// Whether this server may still answer from memory: with several
    /// replicas, only while its lead is surely not yet another's.
    fn leads(&self) -> bool {
        true
    }

    /// The term this replica leads in, while [`Store::leads`]; `None` with
    /// a single server (no term) and while it follows.
    fn term(&self) -> Option<i64> {
        None
    }

    /// After a failure and [`Health::Reconnected`], once the orgs and keys
    /// are reloaded from the store: drops every write submitted before and
    /// commits the next ones. Called with every org's lock held, with the
    /// [`Store::generation`] read before the reload began; refuses (`false`)
    /// if the store failed or announced another reload since.
    fn resume(&self, generation: u64) -> bool {
        self.tickets().resume(generation)
    }

    /// Which reload the store awaits: read it before reloading, and pass it
    /// to [`Store::resume`].
    fn generation(&self) -> u64 {
        self.tickets().generation()
    }

    /// Which events became durable, as they do, for live streams (which then
    /// read them with [`Store::events`]).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Stored> {
        self.tickets().subscribe()
    }

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
