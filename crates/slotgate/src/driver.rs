//! The deadline driver: sleeps until the first org's next deadline, then lets
//! the engines of the orgs due expire leases, abandoned queue entries and
//! `max_wait`s, so deadlines pass even when no request arrives.
//!
//! It owns only its own state (each org's next deadline, the one it sleeps
//! until, and the bell that wakes it early); the service files each org's
//! deadline after every command and hands it the command to run on the orgs
//! due, so this module knows nothing of the service.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use slotgate_core::{OrgId, Timestamp};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock;

/// Each org's next deadline, earliest first.
#[derive(Debug, Default)]
struct Schedule {
    /// (deadline, org), so the first is the driver's next wake-up: O(log orgs).
    by_time: BTreeSet<(Timestamp, OrgId)>,
    /// Each org's entry in `by_time`, to remove it exactly.
    by_org: HashMap<OrgId, Timestamp>,
    /// The deadline the driver sleeps until (`None`: none, or it is awake).
    target: Option<Timestamp>,
}

/// The driver's state.
#[derive(Debug, Default)]
pub struct Driver {
    /// Rings when a command files a deadline nearer than the target.
    kick: Notify,
    /// `std` mutex: a few map updates per command, never held across an
    /// `.await`; commands file under it and the driver reads its next
    /// deadline under it, so no deadline slips between the two.
    schedule: Mutex<Schedule>,
}

impl Schedule {
    fn file(&mut self, org: &OrgId, next: Option<Timestamp>) {
        if self.by_org.get(org).copied() == next {
            return;
        }
        if let Some(at) = self.by_org.remove(org) {
            self.by_time.remove(&(at, org.clone()));
        }
        if let Some(at) = next {
            self.by_time.insert((at, org.clone()));
            self.by_org.insert(org.clone(), at);
        }
    }
}

impl Driver {
    fn schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule
            .lock()
            .expect("the schedule lock is never poisoned: nothing panics under it")
    }

    /// After a command, under its org's lock: files the org's next deadline,
    /// and wakes the driver if it is nearer than the one it sleeps until.
    pub fn file(&self, org: &OrgId, next: Option<Timestamp>) {
        let mut schedule = self.schedule();
        schedule.file(org, next);
        if next.is_some_and(|at| schedule.target.is_none_or(|target| at < target)) {
            self.kick.notify_one();
        }
    }

    /// Files every org's deadline anew (every org was replaced), and wakes the driver.
    pub fn reset(&self, deadlines: impl IntoIterator<Item = (OrgId, Option<Timestamp>)>) {
        let mut schedule = self.schedule();
        schedule.by_time.clear();
        schedule.by_org.clear();
        for (org, next) in deadlines {
            schedule.file(&org, next);
        }
        self.kick.notify_one();
    }

    /// The first deadline, filed as the one the driver sleeps until.
    fn next(&self) -> Option<Timestamp> {
        let mut schedule = self.schedule();
        schedule.target = schedule.by_time.first().map(|(at, _)| *at);
        schedule.target
    }

    /// The orgs whose deadline is at or before `now`. They stay filed until
    /// their engines handle it (and file their next one).
    fn due(&self, now: Timestamp) -> Vec<OrgId> {
        self.schedule()
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, org)| org.clone())
            .collect()
    }

    /// Runs until `shutdown` resolves: `handle` runs the engines' timeouts
    /// of the orgs due and makes them durable. A store failure stops it.
    pub async fn run<Fut, E>(
        &self,
        handle: impl Fn(Vec<OrgId>) -> Fut,
        shutdown: impl Future<Output = ()>,
    ) where
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        tokio::pin!(shutdown);
        loop {
            let sleep = match self.next() {
                Some(at) => {
                    Duration::from_millis(at.as_millis().saturating_sub(clock::now().as_millis()))
                }
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep_until(Instant::now() + sleep) => {
                    if let Err(e) = handle(self.due(clock::now())).await {
                        tracing::error!(error = %e, "deadline driver stops: the store failed");
                        return;
                    }
                }
                _ = self.kick.notified() => {}
                _ = &mut shutdown => return,
            }
        }
    }
}
