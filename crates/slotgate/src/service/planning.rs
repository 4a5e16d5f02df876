//! Capacity planning for an org: its observed traffic, the plan, and what-if simulations.
//!
//! The traffic comes from the store's recorded calls; the plan and the
//! simulations run in `slotgate-plan`, on the planning pool
//! (`service/planner.rs`: a few at a time, one per org, on one thread each,
//! with a deadline), so planning never takes the cores the call path needs.
//! Planning needs an admin key of the org or the operator key: a runtime
//! key is for calls.
//!
//! Before a job starts, what it would simulate is counted against a budget:
//! every stream's rate as the simulation follows it (its hourly rates when
//! given), the horizon and warm-up, the replications, and for a simulation
//! every what-if. A body over it is refused naming the field to lower.

use std::sync::Arc;
use std::time::Duration;

use slotgate_api::{limits, FieldError};
use slotgate_core::Timestamp;
use slotgate_plan::body::MAX_WHAT_IFS;
use slotgate_plan::{
    CheckSettings, OrgConfig, PlanAnswer, PlanBody, PlanRequest, Reservation, SimulateAnswer,
    SimulateBody, SimulateRequest, Traffic, TrafficSpec,
};

use super::{Error, Result, Service};
use crate::auth::{Action, Denied, Principal};
use crate::clock;

/// The most calls one simulated check may run, all replications together
/// (about 2 s of one core; a plan runs from a few to a few dozen checks).
const MAX_SIMULATED_CALLS: f64 = 2_000_000.0;
/// The most calls a check with the default settings simulates (a fraction
/// of a second): a busy org's simulated day is shortened to fit.
const FITTED_SIMULATED_CALLS: f64 = 250_000.0;
/// The most calls one simulation may run, its current configuration and
/// every what-if together (about 8 s of one core).
const MAX_SIMULATE_CALLS: f64 = 8_000_000.0;
/// Why a key may not plan, for its 403.
const PLANNING_ROLE: &str = "planning needs an admin key of the org or the operator key \
     (plans and simulations take seconds of a core; runtime and metrics keys may not run them)";
/// The time of observed service levels when none is asked: admitted within 20 s.
const DEFAULT_WITHIN_S: f64 = 20.0;
/// The plan's ceiling when the body gives none.
const DEFAULT_MAX_LIMIT: u32 = 10_000;

impl Service {
    /// The org's traffic over the last `window` (default 7 days; `7d`,
    /// `12h`, `90s`), from its recorded calls. The window starts no earlier
    /// than the store holds every call: the org's creation, and
    /// `--ended-retention` ago (so rates are never diluted by time with no
    /// record); the answer's `from_ms` and `window_s` say what was covered.
    pub async fn traffic(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        window: Option<&str>,
        within_s: Option<f64>,
    ) -> Result<Traffic> {
        may_plan(p, org)?;
        let window = limits::traffic_window(window)?;
        let within = limits::seconds(
            "within_s",
            within_s.unwrap_or(DEFAULT_WITHIN_S),
            Duration::ZERO,
            limits::MAX_MAX_WAIT,
        )?;
        self.observed(org, window, within).await
    }

    /// Plans the org's limit and reservations for `body`'s targets, from the
    /// given traffic or the observed one; changes nothing.
    pub async fn plan(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        body: PlanBody,
    ) -> Result<PlanAnswer> {
        let observed = body.traffic.is_none();
        let (traffic, check, current) = self
            .prepare(p, org, body.traffic, body.window, body.check)
            .await?;
        // A target of a type the org's recorded calls do not have is the
        // org's state (409), as no recorded calls at all are; in given
        // traffic it is the request's mistake (400, from the planner).
        let unseen = |t: &slotgate_plan::Target| {
            !traffic
                .iter()
                .any(|s| s.call_type == t.call_type && s.calls_per_hour > 0.0)
        };
        if observed && body.targets.iter().any(unseen) {
            return Err(Error::NoTraffic);
        }
        let max_limit = body.max_limit.unwrap_or(DEFAULT_MAX_LIMIT);
        if !(1..=limits::MAX_LIMIT).contains(&max_limit) {
            let range = format!("must be 1 to {}, got {max_limit}", limits::MAX_LIMIT);
            return Err(FieldError::new("max_limit", range).into());
        }
        let req = PlanRequest {
            traffic: traffic.clone(),
            targets: body.targets,
            max_limit,
            check,
        };
        let plan = self
            .planning(org, move |cancel| {
                slotgate_plan::plan_cancellable(&req, cancel)
            })
            .await?;
        Ok(PlanAnswer {
            current,
            traffic,
            plan,
        })
    }

    /// Simulates the org as configured now and with each of `body`'s
    /// what-ifs, on the given or observed traffic; changes nothing.
    pub async fn simulate(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        body: SimulateBody,
    ) -> Result<SimulateAnswer> {
        if body.what_if.len() > MAX_WHAT_IFS {
            let many = format!(
                "at most {MAX_WHAT_IFS} per simulation, got {}",
                body.what_if.len()
            );
            return Err(FieldError::new("what_if", many).into());
        }
        let (traffic, check, current) = self
            .prepare(p, org, body.traffic, body.window, body.check)
            .await?;
        let scenarios = 1 + body.what_if.len();
        let calls = check.simulated_calls(&traffic) * scenarios as f64;
        if calls > MAX_SIMULATE_CALLS {
            return Err(FieldError::new(
                "what_if",
                format!(
                    "the current configuration and {} what-ifs would simulate about {calls:.0} calls, \
                     more than {MAX_SIMULATE_CALLS:.0}: compare fewer, or shorten check.horizon_s",
                    scenarios - 1
                ),
            )
            .into());
        }
        let req = SimulateRequest {
            traffic: traffic.clone(),
            targets: body.targets,
            what_if: body.what_if,
            check,
        };
        let comparison = self
            .planning(org, move |cancel| {
                slotgate_plan::compare_cancellable(&current, &req, cancel)
            })
            .await?;
        Ok(SimulateAnswer {
            traffic,
            scenarios: comparison.scenarios,
        })
    }

    /// What a plan and a simulation start from: the traffic, the check
    /// settings the server runs, and the org's configuration now.
    async fn prepare(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        traffic: Option<Vec<TrafficSpec>>,
        window: Option<String>,
        check: Option<CheckSettings>,
    ) -> Result<(Vec<TrafficSpec>, CheckSettings, OrgConfig)> {
        may_plan(p, org)?;
        let traffic = self.given_or_observed(org, traffic, window).await?;
        let check = server_check(check, &traffic)?;
        let current = self.current(org).await?;
        Ok((traffic, check, current))
    }

    async fn observed(
        self: &Arc<Self>,
        org: &str,
        window: Duration,
        within: Duration,
    ) -> Result<Traffic> {
        self.observe(org, |e| e.org(org).map(|_| ())).await??;
        let to = clock::now();
        let asked = to
            .as_millis()
            .saturating_sub(window.as_millis().min(u128::from(u64::MAX)) as u64);
        let (s, org) = (self.clone(), org.to_string());
        let (from, calls) = super::blocking(move || {
            let complete = s.store.calls_complete_since(&org, to)?;
            let from = Timestamp::from_millis(asked.max(complete.as_millis()));
            Ok((from, s.store.calls_since(&org, from)?))
        })
        .await?;
        Ok(slotgate_plan::observe(
            calls,
            from.as_millis(),
            to.as_millis(),
            within.as_secs_f64(),
        ))
    }

    async fn given_or_observed(
        self: &Arc<Self>,
        org: &str,
        given: Option<Vec<TrafficSpec>>,
        window: Option<String>,
    ) -> Result<Vec<TrafficSpec>> {
        if let Some(traffic) = given {
            if window.is_some() {
                return Err(FieldError::new(
                    "window",
                    "observes traffic; give either traffic or window, not both",
                )
                .into());
            }
            return Ok(traffic);
        }
        let window = limits::traffic_window(window.as_deref())?;
        let within = Duration::from_secs_f64(DEFAULT_WITHIN_S);
        let specs = self.observed(org, window, within).await?.specs();
        if specs.is_empty() {
            return Err(Error::NoTraffic);
        }
        Ok(specs)
    }

    /// The org's limit and reservations now.
    async fn current(&self, org: &str) -> Result<OrgConfig> {
        let view = self.observe(org, |e| e.org(org)).await??;
        let reservations = view
            .agents
            .iter()
            .flat_map(|a| {
                slotgate_core::CallType::ALL
                    .into_iter()
                    .filter(|&t| a.reserved.get(t) > 0)
                    .map(|t| Reservation {
                        agent: a.id.to_string(),
                        call_type: t,
                        reserved: a.reserved.get(t),
                    })
            })
            .collect();
        Ok(OrgConfig {
            limit: view.limit,
            reservations,
        })
    }

    /// Runs `work` for `org` on the planning pool: cancelled if its
    /// deadline passes, the server shuts down, or this future is dropped.
    async fn planning<T: Send + 'static>(
        &self,
        org: &str,
        work: impl FnOnce(&slotgate_plan::Cancel) -> slotgate_plan::Result<T> + Send + 'static,
    ) -> Result<T> {
        self.planner
            .run(org, self.shutting_down(), work)
            .await?
            .map_err(planning_error)
    }
}

/// Refuses a key that may not plan in `org`, naming the role needed.
fn may_plan(p: &Principal, org: &str) -> Result<()> {
    p.check(org, Action::Plan).map_err(|d| match d {
        Denied::Forbidden => Error::RoleNeeded(PLANNING_ROLE),
        hidden => hidden.into(),
    })
}

/// The body's check settings on one thread, within the simulation budget.
/// Without settings, the defaults (a day per replication), shortened for a
/// busy org so that a check simulates at most [`FITTED_SIMULATED_CALLS`].
fn server_check(check: Option<CheckSettings>, traffic: &[TrafficSpec]) -> Result<CheckSettings> {
    let fitted = check.is_none();
    let mut check = CheckSettings {
        threads: 1,
        ..check.unwrap_or_default()
    };
    if check.replications < 2 {
        return Err(FieldError::new(
            "check.replications",
            "must be at least 2, for confidence intervals",
        )
        .into());
    }
    let calls = check.simulated_calls(traffic);
    if fitted && calls > FITTED_SIMULATED_CALLS {
        let shorter = FITTED_SIMULATED_CALLS / calls;
        check.horizon_s *= shorter;
        check.warmup_s *= shorter;
    } else if calls > MAX_SIMULATED_CALLS {
        return Err(FieldError::new(
            "check.horizon_s",
            format!(
                "each check would simulate about {calls:.0} calls, more than {MAX_SIMULATED_CALLS:.0}: \
                 shorten horizon_s or use fewer replications"
            ),
        )
        .into());
    }
    Ok(check)
}

fn planning_error(e: slotgate_plan::Error) -> Error {
    match e {
        slotgate_plan::Error::Invalid { field, message } => FieldError::new(field, message).into(),
        slotgate_plan::Error::Unreachable { ceiling } => FieldError::new(
            "max_limit",
            format!(
                "no limit up to {ceiling} meets the targets: raise max_limit or relax a target"
            ),
        )
        .into(),
        slotgate_plan::Error::Engine(e) => Error::Refused(e),
        // Only after the pool stopped waiting for it: never answered.
        slotgate_plan::Error::Cancelled => Error::PlanningCancelled("cancelled".into()),
        e => Error::Internal(e.to_string()),
    }
}
