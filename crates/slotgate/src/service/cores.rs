//! Every org's engine behind a lock of its own, and the index that finds them.
//!
//! Each org has a [`slotgate_core::Engine`] holding that org alone, so a
//! command of one org never waits for another org's: two orgs' requests run
//! at once, and one org's long read (a page of a large queue) or burst
//! delays that org only. The index (org id to engine) is read on every
//! request, only long enough to clone one `Arc`, and written only when an
//! org is created or every org is replaced (a reload from the store, a lead
//! taken or lost).

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, RwLock};

use slotgate_core::{Config, Engine, OrgId};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::ended_ids::EndedIds;
use crate::store::EndedId;

/// One org's engine, and the ids of the calls it ended that the store still
/// keeps: under one lock, so an acquire checks both at once.
#[derive(Debug)]
pub(super) struct OrgCore {
    /// The org's engine.
    pub(super) engine: Engine,
    /// Every call of the org that ended within the store's retention, as
    /// fingerprints: an acquire of an id the engine does not hold reads the
    /// store only if this may hold it.
    pub(super) ended: EndedIds,
}

/// One org's engine; `None` once replaced, for commands that looked it up
/// just before (they look the org up again).
///
/// A tokio mutex, not a `std` one, although no `.await` happens under it: a
/// command waiting for its org's turn then parks its task, not one of the
/// runtime's few worker threads, so a busy org can never take the threads
/// that other orgs' requests run on.
type Core = Arc<Mutex<Option<OrgCore>>>;

/// Every org's engine.
#[derive(Debug)]
pub(super) struct Cores {
    /// Org id to its engine. A `std` lock held for a lookup or an insert
    /// only, never across an `.await`.
    index: RwLock<HashMap<OrgId, Core>>,
    /// How long the store keeps ended calls: the index of ended ids keeps
    /// their fingerprints as long.
    ended_retention: std::time::Duration,
}

/// One org's engine, locked: commands run on it and submit their events to
/// the store before it is released, so each org's changes reach the store
/// in the order they happened.
#[derive(Debug)]
pub(super) struct Locked {
    /// The org.
    pub(super) id: OrgId,
    guard: OwnedMutexGuard<Option<OrgCore>>,
}

impl Locked {
    /// The org's engine and its index of ended ids.
    pub(super) fn core(&mut self) -> &mut OrgCore {
        self.guard
            .as_mut()
            .expect("a core is locked only while it is current")
    }
}

impl Deref for Locked {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self
            .guard
            .as_ref()
            .expect("a core is locked only while it is current")
            .engine
    }
}

impl DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.core().engine
    }
}

impl Cores {
    /// The orgs of `engines`, one engine each, with the ended calls the
    /// store keeps, `ended` (kept `ended_retention`).
    pub(super) fn new(
        engines: Vec<(OrgId, Engine)>,
        ended: Vec<EndedId>,
        ended_retention: std::time::Duration,
    ) -> Self {
        let cores = Cores {
            index: RwLock::new(HashMap::new()),
            ended_retention,
        };
        *cores.write() = cores.index(engines, ended);
        cores
    }

    /// Each of `engines` behind a lock of its own, with its org's ended calls of `ended`.
    fn index(&self, engines: Vec<(OrgId, Engine)>, ended: Vec<EndedId>) -> HashMap<OrgId, Core> {
        let mut cores: HashMap<OrgId, OrgCore> = engines
            .into_iter()
            .map(|(id, engine)| (id, self.core(engine)))
            .collect();
        for (org, id, ended_at) in ended {
            if let Some(core) = cores.get_mut(org.as_str()) {
                core.ended.insert(&id, ended_at);
            }
        }
        cores
            .into_iter()
            .map(|(id, core)| (id, Arc::new(Mutex::new(Some(core)))))
            .collect()
    }

    /// `engine` with an empty index of ended ids.
    fn core(&self, engine: Engine) -> OrgCore {
        OrgCore {
            engine,
            ended: EndedIds::new(self.ended_retention),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<OrgId, Core>> {
        self.index
            .read()
            .expect("the org index is never poisoned: nothing panics under it")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<OrgId, Core>> {
        self.index
            .write()
            .expect("the org index is never poisoned: nothing panics under it")
    }

    /// Ids of all orgs, sorted.
    pub(super) fn ids(&self) -> Vec<OrgId> {
        let mut ids: Vec<OrgId> = self.read().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Waits for the org's turn and locks its engine.
    pub(super) async fn lock(&self, org: &str) -> slotgate_core::Result<Locked> {
        loop {
            let (id, core) = self
                .read()
                .get_key_value(org)
                .map(|(id, core)| (id.clone(), core.clone()))
                .ok_or(slotgate_core::Error::OrgNotFound)?;
            let guard = core.lock_owned().await;
            if guard.is_some() {
                return Ok(Locked { id, guard });
            }
            // Replaced while this waited: the index holds its successor.
        }
    }

    /// Creates an org: `create` runs on a new engine (with `config`) and
    /// makes the org there (or refuses); the engine joins the index if it
    /// holds the org then. The index stays locked meanwhile, so that nothing
    /// else creates the same org or replaces every org in between.
    pub(super) fn create<R>(
        &self,
        id: &OrgId,
        config: Config,
        create: impl FnOnce(&mut OrgCore) -> R,
    ) -> slotgate_core::Result<R> {
        let mut index = self.write();
        if index.contains_key(id) {
            return Err(slotgate_core::Error::OrgExists);
        }
        let mut core = self.core(Engine::new(config));
        let result = create(&mut core);
        if core.engine.org(id.as_str()).is_ok() {
            index.insert(id.clone(), Arc::new(Mutex::new(Some(core))));
        }
        Ok(result)
    }

    /// Replaces every org with `engines` (with the ended calls the store
    /// keeps, `ended`), if `swap` agrees. `swap` runs with
    /// every current org locked and the index held, so no command runs or
    /// submits anything meanwhile, and it sees the new engines before anyone
    /// else can. The old engines are dropped; commands that were waiting
    /// for them look their org up again. Returns whether it replaced.
    pub(super) async fn replace(
        &self,
        engines: Vec<(OrgId, Engine)>,
        ended: Vec<EndedId>,
        swap: impl FnOnce(&[(OrgId, Engine)]) -> bool,
    ) -> bool {
        loop {
            // By org id, as [`Cores::lock_where`] locks several: two that
            // lock many never wait for each other in a circle.
            let mut current: Vec<(OrgId, Core)> = self
                .read()
                .iter()
                .map(|(id, core)| (id.clone(), core.clone()))
                .collect();
            current.sort_by(|a, b| a.0.cmp(&b.0));
            let current: Vec<Core> = current.into_iter().map(|(_, core)| core).collect();
            let mut held = Vec::with_capacity(current.len());
            for core in current {
                held.push(core.lock_owned().await);
            }
            let mut index = self.write();
            // An org created while this locked the others: lock it too.
            let locked: HashSet<*const Mutex<Option<OrgCore>>> = held
                .iter()
                .map(|g| Arc::as_ptr(OwnedMutexGuard::mutex(g)))
                .collect();
            if index.len() != locked.len()
                || index.values().any(|c| !locked.contains(&Arc::as_ptr(c)))
            {
                continue;
            }
            if !swap(&engines) {
                return false;
            }
            for engine in &mut held {
                **engine = None;
            }
            *index = self.index(engines, ended);
            return true;
        }
    }

    /// Locks every org for which `keep` holds, in order by org id (so two
    /// callers that lock several never wait for each other in a circle),
    /// each org released at once if `keep` does not hold; the orgs kept
    /// stay locked until the answer is dropped.
    pub(super) async fn lock_where(&self, mut keep: impl FnMut(&Locked) -> bool) -> Vec<Locked> {
        let mut held = Vec::new();
        for id in self.ids() {
            if let Ok(engine) = self.lock(id.as_str()).await {
                if keep(&engine) {
                    held.push(engine);
                }
            }
        }
        held
    }

    /// Runs `read` on each org's engine in turn (sorted by id), each under
    /// its own lock only: no moment holds more than one org.
    pub(super) async fn each<R>(
        &self,
        ids: &[OrgId],
        mut read: impl FnMut(&Locked) -> R,
    ) -> Vec<R> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(engine) = self.lock(id.as_str()).await {
                out.push(read(&engine));
            }
        }
        out
    }
}
