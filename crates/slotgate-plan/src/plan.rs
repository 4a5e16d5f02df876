//! The planner: the org limit and the reservations that meet a service-level target per call type.
//!
//! [`plan`] answers "what limit should we buy, and how should we reserve it"
//! in three steps, each documented where it is done:
//!
//! 1. **Erlang, pooled.** All traffic as one pool (rates added, durations and
//!    patience averaged by rate): for each target, the fewest slots that meet
//!    it (Erlang C, or Erlang A when every call has a patience). The largest
//!    is `erlang_limit`, what a pure shared pool needs by the formulas; the
//!    smallest is a floor no configuration goes below.
//! 2. **Reservations for strict types.** A type is *strict* when its target
//!    needs more pooled slots than the loosest target does; only then is
//!    there something to protect. Each (agent, strict type) gets the slots
//!    its own traffic needs to meet the target alone (Erlang C/A on that
//!    group), so a flood of other traffic cannot push it below its target;
//!    scaled down if they would add up to more than `erlang_limit`.
//! 3. **Check by simulation** (reservations and a shared pool have no closed
//!    form): starting at the floor, the limit grows (doubling steps, then
//!    bisection) until the simulated service level of every targeted type
//!    reaches its target. All runs share one seed (common random numbers),
//!    so limits are compared on the same traffic. If reservations end up
//!    needing more than the pure pool does in simulation, the pure pool is
//!    recommended instead.
//!
//! The answer carries a table of alternatives, the recommended limit −2 to
//! +2 with the same reservations, so the admin sees what a slot buys.

use serde::{Deserialize, Serialize};
use slotgate_api::{limits, number};
use slotgate_core::CallType;

use crate::cancel::Cancel;
use crate::erlang::PoolTraffic;
use crate::error::{check_at_least, check_positive, check_probability, Error, Result};
use crate::sim::{
    simulate_cancellable, Arrivals, DurationDist, Patience, SimConfig, SimReport, StreamSpec,
};
use crate::stats::Estimate;

/// What to plan for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanRequest {
    /// The traffic per (agent, type).
    pub traffic: Vec<TrafficSpec>,
    /// One target per call type that has one.
    pub targets: Vec<Target>,
    /// The highest limit worth considering (the plan's ceiling).
    pub max_limit: u32,
    /// How hard the simulation checks.
    #[serde(default)]
    pub check: CheckSettings,
}

/// One (agent, type)'s traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// The agent.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub agent: String,
    /// The call type.
    pub call_type: CallType,
    /// Mean calls per hour (Poisson), 0 or more.
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub calls_per_hour: f64,
    /// Mean call duration, seconds, more than 0, at most a week.
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub mean_duration_s: f64,
    /// Standard deviation of the duration, seconds (at most a week): log-normal durations if
    /// given, exponential if not.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub duration_sd_s: Option<f64>,
    /// Mean patience in the queue, seconds, at most a week (exponential); `None`: calls wait
    /// as long as it takes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub patience_s: Option<f64>,
    /// Calls per hour for each hour of the day (24 values, UTC hour 0
    /// first): simulations follow them (a Poisson process whose rate changes
    /// by the hour); the formulas use `calls_per_hour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 24, max_items = 24, value_type = Option<Vec<NonNegative>>))]
    pub calls_per_hour_by_hour: Option<Vec<f64>>,
    /// Observed durations, seconds (each at most a week): simulations draw from them instead of
    /// the log-normal or exponential; the formulas use `mean_duration_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, value_type = Option<Vec<Seconds>>))]
    pub duration_samples_s: Option<Vec<f64>>,
}

impl TrafficSpec {
    /// The calls per hour a simulation of `run_s` seconds follows, for its
    /// budget: see [`CheckSettings::simulated_calls`]. Not finite for a bad
    /// rate (refused later, by the validation).
    fn simulated_rate(&self, run_s: f64) -> f64 {
        match &self.calls_per_hour_by_hour {
            Some(hours) if !hours.is_empty() => {
                let mean = hours.iter().sum::<f64>() / hours.len() as f64;
                if run_s >= 86_400.0 {
                    mean
                } else {
                    hours.iter().copied().fold(mean, f64::max)
                }
            }
            _ => self.calls_per_hour,
        }
    }
}

/// A service-level target: `service_level` of the type's calls admitted
/// within `within_s` seconds (e.g. inbound 0.8 within 20 s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The call type.
    pub call_type: CallType,
    /// The share to admit in time, 0 to 1.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub service_level: f64,
    /// The time, seconds, 0 or more.
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub within_s: f64,
}

/// The simulation budget of each check; a field left out takes its default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CheckSettings {
    /// Simulated seconds measured per replication, more than 0.
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0))]
    pub horizon_s: f64,
    /// Simulated seconds before measuring, 0 or more.
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub warmup_s: f64,
    /// Replications per check, 2 to 10,000 (at least 2, for confidence intervals).
    #[serde(deserialize_with = "number::whole::<_, _, 2, MAX_REPLICATIONS>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 10_000))]
    pub replications: u32,
    /// The seed all checks share.
    #[serde(deserialize_with = "number::whole::<_, _, 0, { number::MAX_WHOLE }>")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)
    )]
    pub seed: u64,
    /// Threads, 0 to 1024; 0 uses every core. (The server runs each check on
    /// one thread whatever this says, so that planning never takes the
    /// cores the calls need.)
    #[serde(deserialize_with = "number::whole::<_, _, 0, MAX_THREADS>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1024))]
    pub threads: u32,
    /// The confidence level of the reported intervals, strictly between 0 and 1.
    #[cfg_attr(
        feature = "openapi",
        schema(exclusive_minimum = 0, exclusive_maximum = 1)
    )]
    pub confidence: f64,
}

/// A number 0 or more, for the document's lists of them (rates by hour, durations).
#[cfg(feature = "openapi")]
struct NonNegative;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for NonNegative {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        number_from_0(None)
    }
}

/// A number from 0, up to `max` if given.
#[cfg(feature = "openapi")]
fn number_from_0(max: Option<f64>) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(0.0))
        .maximum(max)
        .into()
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for NonNegative {}

/// The longest call duration or patience a stream may have, in seconds: a
/// week (the simulator's clock counts milliseconds; a longer call is no call).
pub const MAX_DURATION_S: f64 = 604_800.0;

/// A duration of a call in seconds, 0 to [`MAX_DURATION_S`], for the document's lists of them.
#[cfg(feature = "openapi")]
struct Seconds;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Seconds {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        number_from_0(Some(MAX_DURATION_S))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Seconds {}

/// The most replications a check may ask for.
pub const MAX_REPLICATIONS: u64 = 10_000;
/// The most threads a check may ask for.
pub const MAX_THREADS: u64 = 1024;

impl CheckSettings {
    /// About how many calls one check of `traffic` simulates, all
    /// replications together: what its run time grows with (about a
    /// microsecond a call). A stream's rate is the one the simulation
    /// follows: the mean of `calls_per_hour_by_hour` when given (at least
    /// the busiest hour's, for a run shorter than a day, which may fall in
    /// it), else `calls_per_hour`.
    pub fn simulated_calls(&self, traffic: &[TrafficSpec]) -> f64 {
        let run_s = self.horizon_s + self.warmup_s;
        let per_hour: f64 = traffic.iter().map(|s| s.simulated_rate(run_s)).sum();
        per_hour / 3600.0 * run_s * f64::from(self.replications)
    }
}

impl Default for CheckSettings {
    /// A day per replication after an hour of warm-up, 8 replications, 95% intervals.
    fn default() -> Self {
        CheckSettings {
            horizon_s: 86_400.0,
            warmup_s: 3_600.0,
            replications: 8,
            seed: 1,
            threads: 0,
            confidence: 0.95,
        }
    }
}

/// A recommended reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reservation {
    /// The agent.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub agent: String,
    /// The call type.
    pub call_type: CallType,
    /// Slots to reserve, 0 to 1,000,000.
    #[serde(deserialize_with = "number::whole::<_, _, 0, { limits::MAX_LIMIT as u64 }>")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub reserved: u32,
}

/// One call type's outcome at one limit, from simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypeOutcome {
    /// The call type.
    pub call_type: CallType,
    /// Its target, if it has one.
    pub target: Option<Target>,
    /// Share admitted within the target's time (or 20 s without a target).
    pub service_level: Estimate,
    /// Mean wait of all its calls, seconds.
    pub mean_wait_s: Estimate,
    /// Share that gave up.
    pub abandoned: Estimate,
}

/// The org at one limit: what each type gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alternative {
    /// The limit.
    pub limit: u32,
    /// Per call type with traffic.
    pub types: Vec<TypeOutcome>,
    /// Mean busy slots over the limit.
    pub occupancy: Estimate,
    /// Every targeted type's simulated service level reaches its target.
    pub meets_targets: bool,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// The recommended limit: the smallest found to meet every target in simulation.
    pub limit: u32,
    /// The recommended reservations (none for a pure shared pool).
    pub reservations: Vec<Reservation>,
    /// What a pure shared pool needs by the Erlang formulas (the starting point).
    pub erlang_limit: u32,
    /// The recommended limit −2 to +2, with the same reservations.
    pub alternatives: Vec<Alternative>,
    /// How many simulations the plan ran.
    pub simulations: u32,
}

/// Plans the org: see the module's doc for the method.
pub fn plan(req: &PlanRequest) -> Result<Plan> {
    plan_cancellable(req, &Cancel::new())
}

/// [`plan`], stopping with [`Error::Cancelled`] soon after `cancel` is set.
pub fn plan_cancellable(req: &PlanRequest, cancel: &Cancel) -> Result<Plan> {
    validate(req)?;
    let pooled = pooled_traffic(&req.traffic);
    // 1. Erlang, pooled: slots per target.
    let mut sizes = Vec::new();
    for t in &req.targets {
        let c = pooled
            .min_servers(t.service_level, t.within_s, req.max_limit)?
            .ok_or(Error::Unreachable {
                ceiling: req.max_limit,
            })?;
        sizes.push((t, c));
    }
    let erlang_limit = sizes
        .iter()
        .map(|&(_, c)| c)
        .max()
        .expect("targets validated non-empty");
    let floor = sizes
        .iter()
        .map(|&(_, c)| c)
        .min()
        .expect("targets validated non-empty");

    // 2. Reservations for the strict types.
    let mut reservations = Vec::new();
    for &(target, c) in &sizes {
        if c <= floor {
            continue;
        }
        for s in req
            .traffic
            .iter()
            .filter(|s| s.call_type == target.call_type)
        {
            let own = PoolTraffic {
                arrivals_per_s: s.calls_per_hour / 3600.0,
                mean_duration_s: s.mean_duration_s,
                mean_patience_s: s.patience_s,
            };
            let r = own
                .min_servers(target.service_level, target.within_s, req.max_limit)?
                .unwrap_or(erlang_limit);
            if r > 0 {
                reservations.push(Reservation {
                    agent: s.agent.clone(),
                    call_type: s.call_type,
                    reserved: r,
                });
            }
        }
    }
    let total: u64 = reservations.iter().map(|r| u64::from(r.reserved)).sum();
    if total > u64::from(erlang_limit) {
        for r in &mut reservations {
            r.reserved = (u64::from(r.reserved) * u64::from(erlang_limit) / total) as u32;
        }
        reservations.retain(|r| r.reserved > 0);
    }
    let reserved: u32 = reservations.iter().map(|r| r.reserved).sum();

    // 3. Check by simulation, growing the limit until every target is met.
    let mut checker = Checker {
        req,
        simulations: 0,
        cancel,
    };
    let start = floor.max(reserved).max(1);
    let mut limit = checker.smallest_meeting(start, &reservations)?;
    if !reservations.is_empty() && limit > erlang_limit {
        let pooled_limit = checker.smallest_meeting(floor.max(1), &[])?;
        if pooled_limit <= limit {
            reservations.clear();
            limit = pooled_limit;
        }
    }

    let reserved: u32 = reservations.iter().map(|r| r.reserved).sum();
    let mut alternatives = Vec::new();
    for l in limit.saturating_sub(2).max(reserved).max(1)
        ..=limit.saturating_add(2).min(req.max_limit.max(limit))
    {
        let report = checker.run(l, &reservations)?;
        alternatives.push(alternative(req, &report));
    }
    Ok(Plan {
        limit,
        reservations,
        erlang_limit,
        alternatives,
        simulations: checker.simulations,
    })
}

/// Runs the checks and counts them.
struct Checker<'r> {
    req: &'r PlanRequest,
    simulations: u32,
    cancel: &'r Cancel,
}

impl Checker<'_> {
    fn run(&mut self, limit: u32, reservations: &[Reservation]) -> Result<SimReport> {
        self.simulations += 1;
        let req = self.req;
        let cfg = sim_config(&req.traffic, &req.targets, &req.check, limit, reservations);
        simulate_cancellable(&cfg, self.cancel)
    }

    fn meets(&mut self, limit: u32, reservations: &[Reservation]) -> Result<bool> {
        let report = self.run(limit, reservations)?;
        Ok(meets_targets(self.req, &report))
    }

    /// The smallest limit from `start` up whose simulation meets every target:
    /// steps of 1, 2, 4, ... until one does, then bisection back down.
    fn smallest_meeting(&mut self, start: u32, reservations: &[Reservation]) -> Result<u32> {
        let ceiling = self.req.max_limit;
        if start > ceiling {
            return Err(Error::Unreachable { ceiling });
        }
        if self.meets(start, reservations)? {
            return Ok(start);
        }
        let (mut failing, mut step) = (start, 1u32);
        let passing = loop {
            if failing >= ceiling {
                return Err(Error::Unreachable { ceiling });
            }
            let next = failing.saturating_add(step).min(ceiling);
            if self.meets(next, reservations)? {
                break next;
            }
            failing = next;
            step = step.saturating_mul(2);
        };
        let (mut lo, mut hi) = (failing, passing);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.meets(mid, reservations)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }
}

/// Every targeted type's simulated mean service level reaches its target.
/// (The mean, not the interval's low end: the alternatives show the intervals.)
fn meets_targets(req: &PlanRequest, report: &SimReport) -> bool {
    req.targets.iter().all(|t| {
        report
            .types
            .iter()
            .find(|r| r.call_type == t.call_type)
            .is_none_or(|r| r.metrics.service_level.mean >= t.service_level)
    })
}

/// The service level's time reported for a type with no target.
const UNTARGETED_WITHIN_S: f64 = 20.0;

/// The simulation of `traffic` at `limit` with `reservations`; each type's
/// service level is measured at its target's time. A reservation of an
/// (agent, type) without traffic is simulated as a stream with no arrivals,
/// so its slots still leave the shared pool.
pub(crate) fn sim_config(
    traffic: &[TrafficSpec],
    targets: &[Target],
    check: &CheckSettings,
    limit: u32,
    reservations: &[Reservation],
) -> SimConfig {
    let reserved = |agent: &str, t: CallType| {
        reservations
            .iter()
            .find(|r| r.agent == agent && r.call_type == t)
            .map_or(0, |r| r.reserved)
    };
    let within = |t: CallType| {
        targets
            .iter()
            .find(|x| x.call_type == t)
            .map(|x| x.within_s)
    };
    let idle = reservations
        .iter()
        .filter(|r| {
            !traffic
                .iter()
                .any(|s| s.agent == r.agent && s.call_type == r.call_type)
        })
        .map(|r| StreamSpec {
            agent: r.agent.clone(),
            call_type: r.call_type,
            reserved: r.reserved,
            arrivals: Arrivals::Poisson {
                calls_per_hour: 0.0,
            },
            duration: DurationDist::Exponential { mean_s: 1.0 },
            patience: Patience::Unlimited,
            service_level_within_s: within(r.call_type),
        });
    let streams = traffic
        .iter()
        .map(|s| StreamSpec {
            agent: s.agent.clone(),
            call_type: s.call_type,
            reserved: reserved(&s.agent, s.call_type),
            arrivals: match &s.calls_per_hour_by_hour {
                Some(hours) => Arrivals::Hourly {
                    calls_per_hour: hours.clone(),
                },
                None => Arrivals::Poisson {
                    calls_per_hour: s.calls_per_hour,
                },
            },
            duration: match (&s.duration_samples_s, s.duration_sd_s) {
                (Some(samples), _) => DurationDist::Empirical {
                    samples_s: samples.clone(),
                },
                (None, Some(sd_s)) => DurationDist::LogNormal {
                    mean_s: s.mean_duration_s,
                    sd_s,
                },
                (None, None) => DurationDist::Exponential {
                    mean_s: s.mean_duration_s,
                },
            },
            patience: match s.patience_s {
                Some(mean_s) => Patience::Exponential { mean_s },
                None => Patience::Unlimited,
            },
            service_level_within_s: within(s.call_type),
        })
        .chain(idle)
        .collect();
    SimConfig {
        limit,
        streams,
        horizon_s: check.horizon_s,
        warmup_s: check.warmup_s,
        replications: check.replications,
        seed: check.seed,
        service_level_within_s: UNTARGETED_WITHIN_S,
        confidence: check.confidence,
        threads: check.threads,
    }
}

fn alternative(req: &PlanRequest, report: &SimReport) -> Alternative {
    let types = report
        .types
        .iter()
        .map(|r| TypeOutcome {
            call_type: r.call_type,
            target: req
                .targets
                .iter()
                .find(|t| t.call_type == r.call_type)
                .copied(),
            service_level: r.metrics.service_level,
            mean_wait_s: r.metrics.mean_wait_s,
            abandoned: r.metrics.abandoned,
        })
        .collect();
    Alternative {
        limit: report.limit,
        types,
        occupancy: report.occupancy,
        meets_targets: meets_targets(req, report),
    }
}

/// All traffic as one pool: rates add; duration and patience are averaged
/// weighted by rate (patience as a rate, 1/mean); any call that never gives
/// up makes the pool Erlang C.
fn pooled_traffic(traffic: &[TrafficSpec]) -> PoolTraffic {
    let rate: f64 = traffic.iter().map(|s| s.calls_per_hour / 3600.0).sum();
    let weight = |f: &dyn Fn(&TrafficSpec) -> f64| {
        traffic
            .iter()
            .map(|s| s.calls_per_hour / 3600.0 * f(s))
            .sum::<f64>()
            / rate
    };
    if rate == 0.0 {
        return PoolTraffic {
            arrivals_per_s: 0.0,
            mean_duration_s: 1.0,
            mean_patience_s: None,
        };
    }
    let patient = traffic
        .iter()
        .any(|s| s.patience_s.is_none() && s.calls_per_hour > 0.0);
    PoolTraffic {
        arrivals_per_s: rate,
        mean_duration_s: weight(&|s| s.mean_duration_s),
        mean_patience_s: (!patient)
            .then(|| 1.0 / weight(&|s| 1.0 / s.patience_s.expect("every stream has a patience"))),
    }
}

fn validate(req: &PlanRequest) -> Result<()> {
    if req.targets.is_empty() {
        return Err(Error::invalid("targets", "needs at least one target"));
    }
    validate_targets(&req.targets)?;
    for t in &req.targets {
        if !req
            .traffic
            .iter()
            .any(|s| s.call_type == t.call_type && s.calls_per_hour > 0.0)
        {
            return Err(Error::invalid(
                "targets",
                format!("{} has a target but no traffic", t.call_type),
            ));
        }
    }
    validate_traffic(&req.traffic)
}

/// Each target in range, at most one per type.
pub(crate) fn validate_targets(targets: &[Target]) -> Result<()> {
    for t in targets {
        check_probability("service_level", t.service_level)?;
        check_at_least("within_s", t.within_s, 0.0)?;
        if targets
            .iter()
            .filter(|u| u.call_type == t.call_type)
            .count()
            > 1
        {
            return Err(Error::invalid(
                "targets",
                format!("{} has two targets", t.call_type),
            ));
        }
    }
    Ok(())
}

/// A duration of a stream (mean, deviation, patience): above 0, at most [`MAX_DURATION_S`].
fn check_duration(field: &'static str, v: f64) -> Result<f64> {
    check_positive(field, v)?;
    check_at_most(field, v, MAX_DURATION_S)
}

/// `Ok(v)` if `v` is at most `max`, else [`Error::Invalid`] naming `field`.
fn check_at_most(field: &'static str, v: f64, max: f64) -> Result<f64> {
    if v <= max {
        Ok(v)
    } else {
        Err(Error::invalid(
            field,
            format!("must be at most {max}, got {v}"),
        ))
    }
}

/// Each stream in range, at most one per (agent, type).
pub(crate) fn validate_traffic(traffic: &[TrafficSpec]) -> Result<()> {
    for (i, s) in traffic.iter().enumerate() {
        if traffic[..i]
            .iter()
            .any(|o| o.agent == s.agent && o.call_type == s.call_type)
        {
            return Err(Error::invalid(
                "traffic",
                format!("{}/{} appears twice", s.agent, s.call_type),
            ));
        }
        check_at_least("calls_per_hour", s.calls_per_hour, 0.0)?;
        check_duration("mean_duration_s", s.mean_duration_s)?;
        if let Some(sd) = s.duration_sd_s {
            check_duration("duration_sd_s", sd)?;
        }
        if let Some(p) = s.patience_s {
            check_duration("patience_s", p)?;
        }
        if let Some(hours) = &s.calls_per_hour_by_hour {
            if hours.len() != 24 {
                let got = hours.len();
                return Err(Error::invalid(
                    "calls_per_hour_by_hour",
                    format!("needs 24 values, one per hour, got {got}"),
                ));
            }
            for &r in hours {
                check_at_least("calls_per_hour_by_hour", r, 0.0)?;
            }
        }
        if let Some(samples) = &s.duration_samples_s {
            if samples.is_empty() {
                return Err(Error::invalid(
                    "duration_samples_s",
                    "needs at least one duration",
                ));
            }
            for &d in samples {
                check_at_least("duration_samples_s", d, 0.0)?;
                check_at_most("duration_samples_s", d, MAX_DURATION_S)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_the_hourly_rates_the_simulation_follows() {
        let spec = TrafficSpec {
            agent: "a".into(),
            call_type: CallType::Inbound,
            calls_per_hour: 1.0,
            mean_duration_s: 60.0,
            duration_sd_s: None,
            patience_s: None,
            calls_per_hour_by_hour: Some(vec![200_000.0; 24]),
            duration_samples_s: None,
        };
        let day = CheckSettings {
            horizon_s: 86_400.0,
            warmup_s: 0.0,
            replications: 2,
            ..CheckSettings::default()
        };
        assert_eq!(
            day.simulated_calls(std::slice::from_ref(&spec)),
            200_000.0 * 24.0 * 2.0
        );
        // A run shorter than a day counts the busiest hour.
        let mut peak = spec.clone();
        peak.calls_per_hour_by_hour =
            Some((0..24).map(|h| if h == 9 { 2400.0 } else { 0.0 }).collect());
        let hour = CheckSettings {
            horizon_s: 3600.0,
            ..day
        };
        assert_eq!(hour.simulated_calls(&[peak]), 2400.0 * 2.0);
    }
}
