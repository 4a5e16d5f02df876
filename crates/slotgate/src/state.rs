//! The server's shared state: the engine behind one lock, the store, keys, waiters.
//!
//! Every change goes through [`Shared::apply`]: lock the engine, run the
//! command with the wall clock as `now`, hand the events to the store (still
//! under the lock, so the store sees changes in their order), unlock, await
//! durability, then wake the long-polls whose calls changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use slotgate_core::{CallId, Engine, Event, EventKind, OrgId, Timestamp};
use tokio::sync::{watch, Notify};

use crate::auth::Keys;
use crate::history::History;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, Write};
use crate::wire;

/// Everything the handlers and the driver share.
#[derive(Debug)]
pub struct Shared {
    /// The admission engine. A `std` mutex: every command is a short,
    /// CPU-only critical section with no `.await` inside.
    engine: Mutex<Engine>,
    /// Where changes become durable.
    pub store: Arc<dyn Store>,
    /// Accepted keys.
    pub keys: Keys,
    /// Long-polls waiting on calls.
    pub waiters: Waiters,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Recent samples of each org, for the dashboard's chart.
    pub history: History,
    /// Wakes the deadline driver when a nearer deadline appears.
    pub driver_kick: Notify,
    /// The deadline the driver sleeps until, in ms (u64::MAX when none).
    pub driver_target: AtomicU64,
    /// Whether `/metrics` asks for the operator key (`--metrics-auth`).
    pub metrics_auth: bool,
    /// Set to `true` when the server begins to shut down.
    pub shutdown: watch::Receiver<bool>,
}

/// The outcome of [`Shared::run`]: the command's result, the store ticket to
/// await, and the calls whose state changed.
#[derive(Debug)]
pub struct Ran<R> {
    /// What the command returned.
    pub result: R,
    /// Await this before answering: the change (or the state read) is durable then.
    pub ticket: u64,
    /// Calls admitted or ended by the command.
    pub changed: Vec<(OrgId, CallId)>,
}

impl Shared {
    /// Shared state around a restored engine.
    pub fn new(engine: Engine, store: Arc<dyn Store>, keys: Keys) -> Self {
        Shared {
            engine: Mutex::new(engine),
            store,
            keys,
            waiters: Waiters::default(),
            metrics: Metrics::default(),
            history: History::default(),
            driver_kick: Notify::new(),
            driver_target: AtomicU64::new(u64::MAX),
            metrics_auth: false,
            shutdown: watch::channel(false).1,
        }
    }

    /// Resolves when the server begins to shut down: long-polls answer with
    /// what they have and event streams end, so shutdown never waits on them.
    /// Never resolves when nothing can signal shutdown (tests without a server).
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine
            .lock()
            .expect("the engine lock is never poisoned: engine commands do not panic")
    }

    /// Reads the engine at once, durable or not (for the driver's own bookkeeping).
    pub fn read_now<R>(&self, f: impl FnOnce(&Engine) -> R) -> R {
        f(&self.lock())
    }

    /// Reads the engine (no change). Answers once everything the read may
    /// have seen is durable, so no answer shows a change that could be lost.
    pub async fn read<R>(&self, f: impl FnOnce(&Engine) -> R) -> Result<R, StoreError> {
        let (result, ticket) = {
            let engine = self.lock();
            (f(&engine), self.store.last_ticket())
        };
        self.store.durable(ticket).await?;
        Ok(result)
    }

    /// Runs a command on the engine now and submits its events; `by` is the
    /// key id recorded on configuration events.
    pub fn run<R>(&self, by: Option<&str>, f: impl FnOnce(&mut Engine, Timestamp) -> R) -> Ran<R> {
        let mut engine = self.lock();
        let result = f(&mut engine, wire::now());
        let mut changed = Vec::new();
        let events: Vec<(Event, Option<String>)> = engine
            .drain_events()
            .map(|e| {
                self.metrics.observe(&e);
                let who = match &e.kind {
                    EventKind::CallAdmitted { call, .. } | EventKind::CallEnded { call, .. } => {
                        changed.push((e.org.clone(), call.clone()));
                        None
                    }
                    EventKind::CallQueued { .. } => None,
                    _ => by.map(str::to_string),
                };
                (e, who)
            })
            .collect();
        let ticket = if events.is_empty() {
            self.store.last_ticket()
        } else {
            self.store.submit(Write::Events(events))
        };
        // Under the lock, like the driver's own update: no deadline slips between the two.
        let next = engine.poll_timeout().map_or(u64::MAX, Timestamp::as_millis);
        if next < self.driver_target.load(Ordering::SeqCst) {
            self.driver_kick.notify_one();
        }
        drop(engine);
        Ran {
            result,
            ticket,
            changed,
        }
    }

    /// [`Shared::run`], then waits until durable and wakes the waiters of changed calls.
    pub async fn apply<R>(
        &self,
        by: Option<&str>,
        f: impl FnOnce(&mut Engine, Timestamp) -> R,
    ) -> Result<R, StoreError> {
        let ran = self.run(by, f);
        self.store.durable(ran.ticket).await?;
        for (org, call) in &ran.changed {
            self.waiters.wake(org, call);
        }
        Ok(ran.result)
    }

    /// Submits a non-engine write (keys) and waits until it is durable.
    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        let ticket = self.store.submit(write);
        self.store.durable(ticket).await
    }
}

/// Long-polls waiting for a call to leave the queue.
#[derive(Debug, Default)]
pub struct Waiters {
    /// One `Notify` per waited call. `std` mutex: map updates only, no await.
    map: Mutex<HashMap<(OrgId, CallId), Arc<Notify>>>,
}

/// A registration; dropping it unregisters.
#[derive(Debug)]
pub struct WaitGuard<'a> {
    waiters: &'a Waiters,
    key: (OrgId, CallId),
    /// Notified when the call is admitted or ends.
    pub notify: Arc<Notify>,
}

impl Waiters {
    fn map(&self) -> MutexGuard<'_, HashMap<(OrgId, CallId), Arc<Notify>>> {
        self.map.lock().expect("the waiters lock is never poisoned")
    }

    /// Registers interest in a call.
    pub fn register(&self, org: OrgId, call: CallId) -> WaitGuard<'_> {
        let key = (org, call);
        let notify = self.map().entry(key.clone()).or_default().clone();
        WaitGuard {
            waiters: self,
            key,
            notify,
        }
    }

    /// Wakes everyone waiting on a call.
    pub fn wake(&self, org: &OrgId, call: &CallId) {
        let notify = self.map().get(&(org.clone(), call.clone())).cloned();
        if let Some(n) = notify {
            n.notify_waiters();
        }
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.map();
        // The map's and ours: nobody else waits on this call.
        if Arc::strong_count(&self.notify) <= 2 {
            map.remove(&self.key);
        }
    }
}
