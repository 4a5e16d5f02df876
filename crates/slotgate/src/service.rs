//! slotgate's use cases, one method each: everything the HTTP API (or any
//! other front end) asks of the engine, the store and the keys.
//!
//! Every method takes the caller ([`Principal`]) and checks first that it may
//! act. Each org's engine sits behind a lock of its own (`service/cores.rs`),
//! so orgs never wait for each other. A change runs on its org's engine under
//! that lock with the clock's `now`; its events go to the store in order,
//! still under the lock; the method answers only once they are durable (a
//! 2xx means durable). One group commit makes every org's waiting changes
//! durable together. A read answers once everything it may have seen is
//! durable, so no answer shows a change that a crash could take back. What
//! each method waits for is in its doc.
//!
//! # Layout
//!
//! - here: the service, its errors, and how a change becomes durable;
//! - `service/cores.rs`: each org's engine behind its own lock, and the org index;
//!   `service/ended_ids.rs`: each org's ended calls as the store keeps them, compact;
//! - `service/orgs.rs`: orgs, limits, reservations, the recent past;
//!   `service/plans.rs`: plans (tiers of limit and burst) and the orgs on them;
//! - `service/calls.rs`: acquire, waiting in the queue, heartbeat, release, lists;
//! - `service/keys.rs`: org keys; `service/events.rs`: the event log and its stream;
//! - `service/planning.rs`: observed traffic, the plan, what-if simulations;
//!   `service/planner.rs`: the pool they run on (per-org turns, deadline, cancellation);
//! - `service/waiters.rs`: long-polls waiting for a call to leave the queue.

mod calls;
mod cores;
mod ended_ids;
mod events;
mod keys;
mod orgs;
mod planner;
mod plans;
pub use planner::Settings as PlanningSettings;
mod planning;
#[cfg(test)]
mod tests;
mod usage;
mod waiters;

use std::sync::Arc;

use slotgate_api::FieldError;
use slotgate_core::{CallId, Config, Engine, Event, EventKind, OrgId, Timestamp};
use tokio::sync::watch;

pub use self::calls::{Admission, CallFilter};
use self::cores::Cores;
pub use self::usage::UsageAsked;
use self::waiters::Waiters;
use crate::auth::{Denied, Keys, Principal};
use crate::clock;
use crate::driver::Driver;
use crate::history::History;
use crate::metrics::Metrics;
use crate::replication::{Leader, Role};
use crate::store::{Gate, Health, Restored, Snapshot, Store, StoreError, Tickets, Write};

/// Why a use case was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine refused (the admission rules, an unknown org or call, ...).
    #[error(transparent)]
    Refused(#[from] slotgate_core::Error),
    /// A field of the request is not acceptable.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The caller may not do this (or may not see the org).
    #[error("denied: {0:?}")]
    Denied(Denied),
    /// Only the operator key may do this.
    #[error("only the operator key may do this")]
    OperatorOnly,
    /// The org has no key with this id.
    #[error("no key with this id in this org")]
    KeyNotFound,
    /// The caller's key was revoked while its request waited.
    #[error("this key was revoked")]
    Revoked,
    /// The key's role may not do this; the message names the role needed.
    #[error("{0}")]
    RoleNeeded(&'static str),
    /// A plan or simulation of this org is waiting or running already.
    #[error("a plan or simulation of this org is already running (one at a time per org): retry once it has answered")]
    PlanningBusy,
    /// The plan or simulation was stopped before it answered: its deadline
    /// passed, or the server is shutting down (the message says which).
    #[error("{0}")]
    PlanningCancelled(String),
    /// A plan or simulation of observed traffic, and the org has no ended
    /// calls in the window: it depends on the org's state, not on the request.
    #[error("the org has no ended calls in the window to learn from (of each type with a target): give traffic, or a longer window")]
    NoTraffic,
    /// No plan with this id.
    #[error("no plan {0:?}; `GET /v1/plans` lists them")]
    PlanNotFound(String),
    /// A plan with this id exists.
    #[error("a plan {0:?} exists")]
    PlanExists(String),
    /// Orgs are on the plan: it cannot be deleted.
    #[error("{count} org(s) are on plan {plan:?} ({}): move them to another plan first", orgs.join(", "))]
    PlanInUse {
        /// The plan.
        plan: String,
        /// The first orgs on it.
        orgs: Vec<String>,
        /// How many in all.
        count: usize,
    },
    /// The plan's new limit would be below the reservations of orgs on it
    /// that take its limit; nothing changed.
    #[error("plan {plan:?}'s limit {limit} would be below the reservations of {count} org(s) on it: {}; nothing changed (lower their reservations, or give them their own limit)",
        orgs.iter().map(|(o, r)| format!("{o} (reserves {r})")).collect::<Vec<_>>().join(", "))]
    PlanBelowReservations {
        /// The plan.
        plan: String,
        /// The limit asked for.
        limit: u32,
        /// The first orgs in the way, with their reservations.
        orgs: Vec<(String, u32)>,
        /// How many in all.
        count: usize,
    },
    /// A null limit or burst (back to the plan's) for an org on no plan.
    #[error(
        "org {0:?} is on no plan: give a number, or put it on a plan (`PUT /v1/orgs/{{org}}/plan`)"
    )]
    NoPlan(String),
    /// The store could not make the change durable; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of the server.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<Denied> for Error {
    fn from(d: Denied) -> Self {
        Error::Denied(d)
    }
}

/// The result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A page of a list: `limit` items from `offset` (the previous page's cursor).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// How many items, at most.
    pub limit: usize,
    /// Where to start.
    pub offset: usize,
}

impl Page {
    /// This page of `items`, and the cursor of the next page (none on the last).
    pub fn cut<T>(&self, items: Vec<T>) -> (Vec<T>, Option<String>) {
        let total = items.len();
        let end = self.offset.saturating_add(self.limit).min(total);
        let next = (end < total).then(|| end.to_string());
        let items = items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect();
        (items, next)
    }
}

/// The service: the orgs' engines, the store, the keys and what watches them.
#[derive(Debug)]
pub struct Service {
    /// The engines' settings (each org's engine has these).
    config: Config,
    /// Each org's admission engine, behind its own lock.
    cores: Cores,
    /// The store's reads.
    store: Arc<dyn Store>,
    /// The group-commit front: where changes go, and become durable.
    tickets: Tickets,
    /// This replica's role: whether it may answer from memory, or whom
    /// requests go to.
    role: watch::Receiver<Role>,
    /// Accepted keys.
    keys: Keys,
    /// Long-polls waiting on calls, woken when their call changes.
    waiters: Waiters,
    /// Counters and histograms for `/metrics`.
    metrics: Metrics,
    /// Recent samples of each org, for the dashboard's chart.
    history: History,
    /// Each org's next deadline, for the driver that wakes its engine then.
    driver: Driver,
    /// Whether `/metrics` asks for the operator key (`--metrics-auth`).
    metrics_auth: bool,
    /// How many agents of each org `/metrics` names, the busiest; the
    /// others are summed in one series (`--metrics-agents`; 0: no agent series).
    metrics_agents: usize,
    /// Whether the database works.
    health: watch::Receiver<Health>,
    /// Whether the store commits this server's writes, or waits for it to
    /// reload.
    gate: watch::Receiver<Gate>,
    /// Set to `true` when the server begins to shut down.
    shutdown: watch::Receiver<bool>,
    /// Where plans and simulations run: a few at a time, one per org.
    planner: planner::Planner,
    /// The operator's plans (tiers of limit and burst), and their turn.
    plans: plans::Plans,
    /// Each key's rate, failed authentication, the long-poll cap.
    limits: crate::limits::Limits,
    /// With several replicas: the replicas' secret, with which this
    /// replica proves it leads and checks the leader's proof before it
    /// forwards anything (`replication/trust.rs`).
    trust: Option<Arc<crate::replication::trust::Trust>>,
}

/// Where the service keeps its state: a store opened with its writer
/// running, and this server's role among the replicas.
#[derive(Debug)]
pub struct Storage {
    /// The store's reads.
    pub store: Arc<dyn Store>,
    /// The store's group-commit front, for every write.
    pub tickets: Tickets,
    /// This server's role ([`crate::replication::role::single`] with the
    /// embedded store).
    pub role: watch::Receiver<Role>,
}

/// A change run on the engine and submitted to the store, not yet durable.
struct Ran<R> {
    /// What the command returned.
    result: R,
    /// The store's ticket to await: the change is durable then.
    ticket: u64,
    /// Calls admitted or ended by the command, whose waiters to wake.
    changed: Vec<(OrgId, CallId)>,
}

/// Each org of `snapshot` in an engine of its own, resumed at `now`
/// ([`Engine::resume`]: leases get their grace from now, deadlines passed
/// meanwhile are handled), and the keys.
pub fn restore(
    snapshot: Snapshot,
    config: Config,
    now: Timestamp,
) -> Result<Restored, crate::store::RestoreError> {
    let (mut orgs, keys) = snapshot.restore(config)?;
    for (_, engine) in &mut orgs {
        engine.resume(now);
    }
    Ok((orgs, keys))
}

impl Service {
    /// The service around restored orgs ([`restore`]), the ended calls their
    /// store keeps ([`Snapshot::ended`](crate::store::Snapshot::ended)) and their store.
    pub fn new(
        config: Config,
        orgs: Vec<(OrgId, Engine)>,
        ended: Vec<crate::store::EndedId>,
        storage: Storage,
        keys: Keys,
        metrics_auth: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let driver = Driver::default();
        driver.reset(orgs.iter().map(|(id, e)| (id.clone(), e.poll_timeout())));
        Service {
            config,
            cores: Cores::new(orgs, ended, storage.store.ended_retention()),
            health: storage.tickets.health(),
            gate: storage.tickets.gate(),
            store: storage.store,
            tickets: storage.tickets,
            role: storage.role,
            keys,
            waiters: Waiters::default(),
            metrics: Metrics::default(),
            history: History::default(),
            driver,
            metrics_auth,
            metrics_agents: 0,
            shutdown,
            planner: planner::Planner::default(),
            plans: plans::Plans::default(),
            limits: crate::limits::Limits::default(),
            trust: None,
        }
    }

    /// The service with these plans (else none), as the store holds them.
    pub fn with_plans(self, plans: Vec<crate::store::PlanRow>) -> Self {
        self.plans.replace(plans);
        self
    }

    /// The service with these caller limits (else the defaults).
    pub fn with_limits(self, limits: crate::limits::Limits) -> Self {
        Service { limits, ..self }
    }

    /// The service naming at most `n` agents of each org in `/metrics`
    /// (else none).
    pub fn with_metrics_agents(self, n: usize) -> Self {
        Service {
            metrics_agents: n,
            ..self
        }
    }

    /// The service with this planning pool (else 2 workers, 60 s each job).
    pub fn with_planning(self, settings: PlanningSettings) -> Self {
        Service {
            planner: planner::Planner::new(settings),
            ..self
        }
    }

    /// The caller limits.
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.limits
    }

    /// The rate of a key, in requests per second: its own, else its
    /// role's default.
    pub fn rate_of(&self, who: &Principal) -> u32 {
        match who {
            Principal::Operator => self.limits.role_rate(None),
            Principal::Org { key_id, role, .. } => self
                .keys
                .rate_of(key_id)
                .unwrap_or_else(|| self.limits.role_rate(Some(*role))),
        }
    }

    /// The service of a replica that shares `trust` with the others (with
    /// several replicas; `None` for a single server).
    pub fn trusting(self, trust: Option<crate::replication::trust::Trust>) -> Self {
        Service {
            trust: trust.map(Arc::new),
            ..self
        }
    }

    /// The replicas' shared secret, with several replicas.
    pub fn trust(&self) -> Option<Arc<crate::replication::trust::Trust>> {
        self.trust.clone()
    }

    /// Who sends `token` (a bearer key), if anybody.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.keys.authenticate(token)
    }

    /// Whether `/metrics` asks for the operator key.
    pub fn metrics_need_operator(&self) -> bool {
        self.metrics_auth
    }

    /// The request counters, for the HTTP layer to record latencies and refusals.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus text of `/metrics`, once what it shows is durable.
    /// While the store cannot commit it still answers, with this server's
    /// own counters and `slotgate_store_up 0`, so that the outage is seen.
    /// Only the orgs `scope` shows are read and named: a scrape without a
    /// key takes no org's lock.
    pub async fn metrics_text(&self, scope: crate::metrics::Scope<'_>) -> Result<String> {
        let role = |leads: bool| {
            format!(
                "# HELP slotgate_replica_leads Whether this server holds the orgs (1), or not: it forwards to the replica that does, or its store cannot commit (0).\n\
                 # TYPE slotgate_replica_leads gauge\nslotgate_replica_leads {}\n",
                u8::from(leads)
            )
        };
        let store = crate::metrics::render_store(self.database_up(), self.tickets.commits());
        if self.leader().is_some() || !self.store_up() {
            // The leader holds the orgs, or the store is down and memory may
            // be ahead of it: this replica shows its own counters only.
            return Ok(self.metrics.render(&[], scope)
                + &role(false)
                + &store
                + &self.planner.render()
                + &self.limits.render());
        }
        // A snapshot of each org taken under its own lock, one at a time:
        // a scrape never holds every org, and renders holding none. Without
        // agent series (the default) the snapshot is O(1) under the lock,
        // however many agents the org has; with them, one pass over the
        // org's agents' counts (`Engine::org_summary`).
        let ids: Vec<OrgId> = self
            .cores
            .ids()
            .into_iter()
            .filter(|id| scope.shows(id.as_str()))
            .collect();
        let orgs = self
            .observe_each(&ids, |e| {
                e.org_summary(e.id.as_str(), self.metrics_agents).ok()
            })
            .await?;
        let orgs: Vec<_> = orgs.into_iter().flatten().collect();
        Ok(self.metrics.render(&orgs, scope)
            + &role(true)
            + &store
            + &self.planner.render()
            + &self.limits.render())
    }

    /// Stores whatever the engines changed on their own (calls that timed
    /// out while the server was down), like any change; answers once submitted.
    pub async fn settle(&self) {
        for org in self.cores.ids() {
            let _ = self.execute(org.as_str(), None, |_, _| ()).await;
        }
    }

    /// Resolves when the server begins to shut down: long-polls answer with
    /// what they have and event streams end, so shutdown never waits on them.
    /// Never resolves when nothing can signal shutdown.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when the server begins to shut down, or stops serving from
    /// its memory (its store failed, or another replica took the lead):
    /// long-polls then answer and event streams end, so that their clients
    /// come back, through any replica, to the one that serves, and open
    /// their waits there (a wait open in an engine that is gone holds
    /// nothing).
    pub async fn interrupted(&self) {
        let mut gate = self.tickets.gate();
        let not_serving = async move {
            if gate.wait_for(|g| *g != Gate::Open).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = self.shutting_down() => {}
            () = not_serving => {}
        }
    }

    /// Resolves when the server shuts down or whatever could signal it is gone:
    /// the background tasks (driver, sampler) stop then.
    async fn stopped(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// At shutdown: waits until every change submitted so far is durable,
    /// then gives up the lead, if this replica has it ([`Write::Resign`]).
    pub async fn flush(&self) -> Result<()> {
        if !self.store_up() {
            return Ok(());
        }
        Ok(self
            .tickets
            .durable(self.tickets.submit(Write::Resign))
            .await?)
    }

    /// Whether the store commits this server's writes (its database works,
    /// and no reload is awaited) and this server may answer from memory
    /// (else every change and read answers 503).
    pub fn store_up(&self) -> bool {
        self.database_up() && *self.gate.borrow() == Gate::Open && self.role.borrow().serves()
    }

    /// Whether this server's database works (after a failure: once the
    /// state is reloaded from it), whoever leads.
    fn database_up(&self) -> bool {
        *self.health.borrow() == Health::Up
    }

    /// The leading replica, while another replica leads: requests go there.
    pub fn leader(&self) -> Option<Leader> {
        self.role.borrow().leader().cloned()
    }

    /// The term this replica leads in, while it leads and its store
    /// commits (with several replicas; `None` for a single server).
    pub fn term(&self) -> Option<i64> {
        self.role.borrow().term().filter(|_| self.store_up())
    }

    /// Until shutdown: whenever the store asks for a reload ([`Gate::Reload`]:
    /// its database is back after a failure, or this replica took the lead
    /// in a new term), reloads the engine and the keys from it, then lets
    /// it commit again. Changes made in memory while it was down were never
    /// acknowledged, and are dropped with the engine that made them. While
    /// another replica leads ([`Role::Following`]), the engine is empty.
    pub async fn recover_from_store_failures(&self) {
        let mut gate = self.tickets.gate();
        let mut role = self.role.clone();
        loop {
            let following = tokio::select! {
                changed = gate.wait_for(|g| matches!(g, Gate::Reload(_))) => {
                    if changed.is_err() { return }
                    false
                }
                () = until(&mut role, |r| matches!(r, Role::Following(_))) => true,
                () = self.stopped() => return,
            };
            if following {
                self.forget().await;
                tokio::select! {
                    () = until(&mut role, |r| !matches!(r, Role::Following(_))) => {}
                    () = self.stopped() => return,
                }
                continue;
            }
            // Until it resumes, or the store moves on (then the outer loop
            // waits for what comes next).
            while let Some(generation) = self.tickets.reload_asked() {
                match self.reload(generation).await {
                    Ok(()) => {
                        tracing::info!("loaded the state from the store; serving");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reloading from the store failed; trying again");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    /// Empties the service of orgs, while another replica leads: their
    /// state lives there, and this replica's copy would only age.
    async fn forget(&self) {
        self.cores
            .replace(Vec::new(), Vec::new(), |_| {
                self.driver.reset([]);
                self.plans.replace(Vec::new());
                true
            })
            .await;
    }

    /// Rebuilds every org's engine and the keys from the store, and resumes
    /// it at `generation`, the reload asked before loading began.
    async fn reload(&self, generation: u64) -> Result<()> {
        let started = std::time::Instant::now();
        let store = self.store.clone();
        let since = ended_since(self.config);
        let mut snapshot = blocking(move || store.load(since)).await?;
        let org_rates = std::mem::take(&mut snapshot.org_rates);
        let plans = std::mem::take(&mut snapshot.plans);
        let ended = std::mem::take(&mut snapshot.ended);
        let (orgs, keys) = restore(snapshot, self.config, clock::now())
            .map_err(|e| Error::Internal(e.to_string()))?;
        crate::server::log_recovered(&orgs, started.elapsed());
        // With every org locked: nothing is submitted between the store's
        // resumption and the new engines taking over.
        let resumed = self
            .cores
            .replace(orgs, ended, |orgs| {
                if !self.tickets.resume(generation) {
                    return false;
                }
                self.keys.replace(keys);
                self.limits.replace_own_org_rates(org_rates);
                self.plans.replace(plans);
                self.driver
                    .reset(orgs.iter().map(|(id, e)| (id.clone(), e.poll_timeout())));
                true
            })
            .await;
        if !resumed {
            return Err(Error::Internal(
                "the store failed or moved on while loading; loading again".into(),
            ));
        }
        self.settle().await;
        Ok(())
    }

    /// Runs the deadline driver until shutdown: expires leases, abandoned
    /// queue entries and `max_wait`s when they are due, even with no traffic.
    /// The orgs due are handled side by side, each under its own lock.
    pub async fn drive_deadlines(&self) {
        self.driver
            .run(
                |due| async move {
                    let handled = futures_util::future::join_all(due.iter().map(|org| {
                        self.change(org.as_str(), None, |e, now| e.handle_timeout(now))
                    }))
                    .await;
                    for failed in handled.into_iter().filter_map(Result::err) {
                        match failed {
                            // Replaced since it was filed: nothing left to do there.
                            Error::Refused(slotgate_core::Error::OrgNotFound) => {}
                            // While the store is down or another replica leads,
                            // there is nothing to expire here: wait until this one serves.
                            _ => {
                                self.until_serving().await;
                                break;
                            }
                        }
                    }
                    Ok::<(), Error>(())
                },
                self.stopped(),
            )
            .await;
    }

    /// Samples every org for the dashboard's chart until shutdown.
    pub async fn sample_history(&self) {
        self.history
            .run(
                || async {
                    self.cores
                        .each(&self.cores.ids(), |e| {
                            // O(1) under the lock: no agent is read.
                            e.org_summary(e.id.as_str(), 0)
                                .map(|(o, _)| (o.id.to_string(), o.active, o.queued))
                                .ok()
                        })
                        .await
                        .into_iter()
                        .flatten()
                        .collect()
                },
                self.stopped(),
            )
            .await;
    }

    /// Resolves once the store commits again and this replica serves (or at shutdown).
    async fn until_serving(&self) {
        let mut gate = self.tickets.gate();
        loop {
            tokio::select! {
                _ = gate.wait_for(|g| *g == Gate::Open) => {}
                () = self.stopped() => return,
            }
            if self.store_up() {
                return;
            }
            // Open, but the lead is not renewed yet: at most a second away.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Reads an org's engine. Answers once everything the read may have
    /// seen is durable, so no answer shows a change that could be lost.
    async fn observe<R>(&self, org: &str, f: impl FnOnce(&Engine) -> R) -> Result<R> {
        self.observe_at(org, |e, _| f(e)).await
    }

    /// Reads an org's engine as of now (for what depends on the time of
    /// reading, such as a queued call's expected wait), as [`Service::observe`] does.
    async fn observe_at<R>(&self, org: &str, f: impl FnOnce(&Engine, Timestamp) -> R) -> Result<R> {
        self.check_up()?;
        let (result, ticket) = {
            let engine = self.cores.lock(org).await?;
            (f(&engine, clock::now()), self.tickets.last())
        };
        self.tickets.durable(ticket).await?;
        Ok(result)
    }

    /// Reads each of the orgs `ids` in turn, each under its own lock, as
    /// [`Service::observe`] does; orgs gone meanwhile are left out.
    async fn observe_each<R>(
        &self,
        ids: &[OrgId],
        read: impl FnMut(&cores::Locked) -> R,
    ) -> Result<Vec<R>> {
        self.check_up()?;
        let result = self.cores.each(ids, read).await;
        self.tickets.durable(self.tickets.last()).await?;
        Ok(result)
    }

    /// Runs a command on an org's engine now and submits its events to the
    /// store, without waiting; `by` is the key id recorded on configuration
    /// events. Waits only for the org's turn.
    async fn execute<R>(
        &self,
        org: &str,
        by: Option<&str>,
        f: impl FnOnce(&mut Engine, Timestamp) -> R,
    ) -> Result<Ran<R>> {
        self.execute_core(org, by, |core, now| f(&mut core.engine, now))
            .await
    }

    /// As [`Service::execute`], with the org's index of ended ids at hand too.
    async fn execute_core<R>(
        &self,
        org: &str,
        by: Option<&str>,
        f: impl FnOnce(&mut cores::OrgCore, Timestamp) -> R,
    ) -> Result<Ran<R>> {
        let mut engine = self.cores.lock(org).await?;
        let id = engine.id.clone();
        Ok(self.run(&id, engine.core(), by, f))
    }

    /// Runs a command on `org`'s engine, which the caller holds, and submits
    /// its events to the store (still held: so each org's events reach the
    /// store in the order they happened).
    fn run<R>(
        &self,
        org: &OrgId,
        core: &mut cores::OrgCore,
        by: Option<&str>,
        f: impl FnOnce(&mut cores::OrgCore, Timestamp) -> R,
    ) -> Ran<R> {
        let result = f(core, clock::now());
        let (events, changed) = self.drain(org, core, by);
        let ticket = if events.is_empty() {
            self.tickets.last()
        } else {
            self.tickets.submit(Write::Events(events))
        };
        Ran {
            result,
            ticket,
            changed,
        }
    }

    /// Takes the events a command made on `org`'s engine, which the caller
    /// holds, for the store (configuration events with `by`), notes the
    /// calls that ended in the org's index of ended ids, and files the
    /// org's next deadline; the calls admitted or ended, to wake.
    #[allow(clippy::type_complexity)]
    fn drain(
        &self,
        org: &OrgId,
        core: &mut cores::OrgCore,
        by: Option<&str>,
    ) -> (Vec<(Event, Option<String>)>, Vec<(OrgId, CallId)>) {
        let mut changed = Vec::new();
        let cores::OrgCore { engine, ended } = core;
        let events: Vec<(Event, Option<String>)> = engine
            .drain_events()
            .map(|e| {
                self.metrics.observe(&e);
                let who = match &e.kind {
                    EventKind::CallAdmitted { call, .. } => {
                        changed.push((e.org.clone(), call.clone()));
                        None
                    }
                    EventKind::CallEnded { call, .. } => {
                        // Every call that ends passes here: none escapes the index.
                        ended.insert(call.as_str(), e.at);
                        changed.push((e.org.clone(), call.clone()));
                        None
                    }
                    EventKind::CallQueued { .. } | EventKind::CallLeaseChanged { .. } => None,
                    _ => by.map(str::to_string),
                };
                (e, who)
            })
            .collect();
        // Under the org's lock, like the driver's own handling: no deadline
        // slips between the two.
        self.driver.file(org, engine.poll_timeout());
        (events, changed)
    }

    /// Runs a command ([`Service::execute`]), waits until it is durable, then
    /// wakes the long-polls of the calls it admitted or ended.
    async fn change<R>(
        &self,
        org: &str,
        by: Option<&str>,
        f: impl FnOnce(&mut Engine, Timestamp) -> R,
    ) -> Result<R> {
        self.check_up()?;
        let ran = self.execute(org, by, f).await?;
        self.finish(ran).await
    }

    /// Fails fast while the store cannot commit (or another replica leads).
    fn check_up(&self) -> Result<()> {
        match self.store_up() {
            true => Ok(()),
            false => Err(StoreError("the store is unavailable".into()).into()),
        }
    }

    /// Waits until a command that ran is durable, then wakes the long-polls
    /// of the calls it admitted or ended.
    async fn finish<R>(&self, ran: Ran<R>) -> Result<R> {
        self.tickets.durable(ran.ticket).await?;
        for (org, call) in &ran.changed {
            self.waiters.wake(org, call);
        }
        Ok(ran.result)
    }

    /// Submits a change of keys and waits until it is durable.
    async fn write(&self, write: Write) -> Result<()> {
        let ticket = self.tickets.submit(write);
        Ok(self.tickets.durable(ticket).await?)
    }
}

/// From when the engine holds ended calls (its `ended_retention`, shorter
/// than the store's): what it loads from the store.
pub fn ended_since(config: slotgate_core::Config) -> Timestamp {
    let kept = u64::try_from(config.ended_retention.as_millis()).unwrap_or(u64::MAX);
    Timestamp::from_millis(clock::now().as_millis().saturating_sub(kept))
}

/// Resolves once `role` is as `wanted` says; never, if nothing publishes
/// roles (a single server's).
async fn until(role: &mut watch::Receiver<Role>, wanted: impl FnMut(&Role) -> bool) {
    if role.wait_for(wanted).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs a store read on the blocking threads, never on the async runtime's.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(Error::from)
}
