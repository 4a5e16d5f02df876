//! The planning pool: plans and simulations on a few blocking threads, at
//! most one job per org at a time, each with a deadline, and each cancelled
//! when nobody waits for its answer any more.
//!
//! A job is long (seconds of one core) and its request is cheap to send, so
//! it is bounded in four ways, beside the budget the request is checked
//! against first ([`super::planning`]):
//!
//! - **Per org, one at a time.** A second job of an org whose job is waiting
//!   or running is refused at once (429 `planning_busy`), so one org holds at
//!   most one of the workers (`--planning-workers`, [`Settings`]) and the
//!   others stay for other orgs. Orgs
//!   waiting for a worker are served in the order they came (tokio's
//!   semaphore is fair).
//! - **A deadline** (`--planning-deadline`) for the wait and the run together; past
//!   it the job is cancelled and answered 503 `planning_cancelled`.
//! - **Cancelled when its request goes away** (the client hung up, or a
//!   follower's forwarded request was cut): the request's future is dropped,
//!   and dropping it sets the job's [`Cancel`] flag.
//! - **Cancelled at shutdown**, so that SIGTERM never waits for a simulation.
//!
//! A cancelled job stops within about a millisecond of work (the simulator
//! reads the flag every few thousand events); the org's turn and the worker
//! are given back when its thread has stopped, not before, so a cancelled
//! job never runs beside its org's next one.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotgate_plan::Cancel;
use tokio::sync::Semaphore;

use super::{Error, Result};

/// The pool's size and deadline (`serve --planning-workers`,
/// `--planning-deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How many jobs run at once, all orgs together: each on one thread, so
    /// planning never takes more than this many cores from the calls.
    pub workers: usize,
    /// The longest a job may take, waiting for a worker and running together.
    pub deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 2,
            deadline: Duration::from_secs(60),
        }
    }
}

/// How a job ended, for `/metrics`.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// It answered (a plan, a simulation, or the planner's refusal).
    Answered,
    /// Another job of its org was waiting or running.
    Busy,
    /// Its request went away first.
    Gone,
    /// Its deadline passed.
    Deadline,
    /// The server began to shut down.
    Shutdown,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Answered,
        Outcome::Busy,
        Outcome::Gone,
        Outcome::Deadline,
        Outcome::Shutdown,
    ];

    fn name(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::Gone => "gone",
            Outcome::Deadline => "deadline",
            Outcome::Shutdown => "shutdown",
        }
    }
}

/// Counts of the pool, shown in `/metrics` (no org names).
#[derive(Debug, Default)]
struct Stats {
    waiting: AtomicU64,
    running: AtomicU64,
    /// Per [`Outcome`], in the order of [`Outcome::ALL`].
    outcomes: [AtomicU64; 5],
}

impl Stats {
    fn count(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The pool.
#[derive(Debug)]
pub(super) struct Planner {
    /// One permit per job that may run at once.
    workers: Arc<Semaphore>,
    /// Orgs with a job waiting or running. A `std` mutex: held for one
    /// insert or removal, never across an await.
    busy: Arc<Mutex<HashSet<String>>>,
    stats: Arc<Stats>,
    /// The longest a job may take, waiting included.
    deadline: Duration,
}

impl Planner {
    /// A pool of `settings.workers` workers, each job within `settings.deadline`.
    pub(super) fn new(settings: Settings) -> Self {
        Planner {
            workers: Arc::new(Semaphore::new(settings.workers)),
            busy: Arc::default(),
            stats: Arc::default(),
            deadline: settings.deadline,
        }
    }
}

impl Default for Planner {
    fn default() -> Self {
        Planner::new(Settings::default())
    }
}

/// An org's turn: its entry in `busy`, removed when dropped.
struct Turn {
    busy: Arc<Mutex<HashSet<String>>>,
    org: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.busy
            .lock()
            .expect("the planning lock is never poisoned")
            .remove(&self.org);
    }
}

/// Adds one to a gauge of [`Stats`] while it lives.
struct Gauge {
    stats: Arc<Stats>,
    running: bool,
}

impl Gauge {
    fn new(stats: &Arc<Stats>, running: bool) -> Self {
        let g = Gauge {
            stats: stats.clone(),
            running,
        };
        g.counter().fetch_add(1, Ordering::Relaxed);
        g
    }

    fn counter(&self) -> &AtomicU64 {
        match self.running {
            true => &self.stats.running,
            false => &self.stats.waiting,
        }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.counter().fetch_sub(1, Ordering::Relaxed);
    }
}

/// Cancels the job when the request's future is dropped before it answered.
struct CancelOnDrop {
    cancel: Cancel,
    stats: Arc<Stats>,
    org: String,
    /// Still waiting for the answer.
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.cancel.cancel();
            self.stats.count(Outcome::Gone);
            tracing::info!(org = %self.org, "planning job cancelled: its request went away");
        }
    }
}

impl Planner {
    /// Runs `work` for `org` on a worker, within the deadline, until it
    /// answers, `shutdown` resolves, or this future is dropped; cancels it
    /// in the last three cases.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        org: &str,
        shutdown: impl Future<Output = ()>,
        work: impl FnOnce(&Cancel) -> slotgate_plan::Result<T> + Send + 'static,
    ) -> Result<slotgate_plan::Result<T>> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let turn = self.turn(org)?;
        tokio::pin!(shutdown);
        let waiting = Gauge::new(&self.stats, false);
        let permit = tokio::select! {
            permit = tokio::time::timeout_at(deadline, self.workers.clone().acquire_owned()) => match permit {
                Ok(p) => p.map_err(|e| Error::Internal(e.to_string()))?,
                Err(_) => return Err(self.ended(Outcome::Deadline)),
            },
            () = &mut shutdown => return Err(self.ended(Outcome::Shutdown)),
        };
        drop(waiting);
        let cancel = Cancel::new();
        let mut guard = CancelOnDrop {
            cancel: cancel.clone(),
            stats: self.stats.clone(),
            org: org.to_string(),
            armed: true,
        };
        let running = Gauge::new(&self.stats, true);
        let job = tokio::task::spawn_blocking(move || {
            // Given back when the work has stopped, cancelled or not.
            let _held = (permit, turn, running);
            work(&cancel)
        });
        let outcome = tokio::select! {
            done = job => {
                guard.armed = false;
                self.stats.count(Outcome::Answered);
                return done.map_err(|e| Error::Internal(e.to_string()));
            }
            () = tokio::time::sleep_until(deadline) => Outcome::Deadline,
            () = &mut shutdown => Outcome::Shutdown,
        };
        guard.armed = false;
        guard.cancel.cancel();
        Err(self.ended(outcome))
    }

    /// The org's turn, or `PlanningBusy` if it has a job waiting or running.
    fn turn(&self, org: &str) -> Result<Turn> {
        let mut busy = self
            .busy
            .lock()
            .expect("the planning lock is never poisoned");
        if !busy.insert(org.to_string()) {
            self.stats.count(Outcome::Busy);
            return Err(Error::PlanningBusy);
        }
        Ok(Turn {
            busy: self.busy.clone(),
            org: org.to_string(),
        })
    }

    /// Counts a job that ended without an answer, and says why.
    fn ended(&self, outcome: Outcome) -> Error {
        self.stats.count(outcome);
        Error::PlanningCancelled(match outcome {
            Outcome::Shutdown => "the server is shutting down; plan again on a running server".into(),
            _ => format!(
                "the plan or simulation did not finish within {} (waiting for a planning worker included): \
                 ask for less (a shorter check.horizon_s, fewer check.replications or what_if entries)",
                humantime::format_duration(self.deadline)
            ),
        })
    }

    /// The pool's series for `/metrics`: jobs waiting and running, and how
    /// jobs ended. No org names.
    pub(super) fn render(&self) -> String {
        let s = &self.stats;
        let mut out = String::from(
            "# HELP slotgate_planning_jobs Plans and simulations waiting for a planning worker, and running.\n\
             # TYPE slotgate_planning_jobs gauge\n",
        );
        let _ = writeln!(
            out,
            "slotgate_planning_jobs{{state=\"waiting\"}} {}\nslotgate_planning_jobs{{state=\"running\"}} {}",
            s.waiting.load(Ordering::Relaxed),
            s.running.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP slotgate_planning_jobs_total Plans and simulations by how they ended: answered, refused as busy (one per org at a time), gone (the request went away: cancelled), deadline, shutdown.\n\
             # TYPE slotgate_planning_jobs_total counter\n",
        );
        for o in Outcome::ALL {
            let _ = writeln!(
                out,
                "slotgate_planning_jobs_total{{outcome=\"{}\"}} {}",
                o.name(),
                s.outcomes[o as usize].load(Ordering::Relaxed)
            );
        }
        out
    }
}
