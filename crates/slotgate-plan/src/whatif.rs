//! What-ifs: the org's current configuration and changes to it, simulated side by side on the same traffic.
//!
//! [`compare`] simulates the current limit and reservations, then each
//! [`WhatIf`] (a new limit, reservations changed per agent and type), all with
//! one seed (common random numbers), so the differences between scenarios
//! come from the configuration, not from the luck of the draw.

use serde::{Deserialize, Serialize};
use slotgate_api::{limits, number};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::plan::{
    sim_config, validate_targets, validate_traffic, CheckSettings, Reservation, Target, TrafficSpec,
};
use crate::sim::{simulate_cancellable, SimReport};

/// A limit and its reservations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgConfig {
    /// The org's limit.
    pub limit: u32,
    /// Its reservations, per agent and type (zeros left out).
    pub reservations: Vec<Reservation>,
}

/// One change to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WhatIf {
    /// Its name in the comparison (e.g. "limit 25").
    pub name: String,
    /// The limit to try, 0 to 1,000,000; the current one if absent.
    #[serde(
        default,
        deserialize_with = "number::whole_opt::<_, _, 0, { limits::MAX_LIMIT as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000))]
    pub limit: Option<u32>,
    /// Reservations to set, per agent and type (0 removes one); the others stay as they are.
    #[serde(default)]
    pub reservations: Vec<Reservation>,
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulateRequest {
    /// The traffic per agent and type.
    pub traffic: Vec<TrafficSpec>,
    /// Service-level targets, whose times the reports use per type (20 s for a type without one).
    pub targets: Vec<Target>,
    /// The changes to compare with the current configuration.
    pub what_if: Vec<WhatIf>,
    /// How long and how often to simulate.
    pub check: CheckSettings,
}

/// One simulated configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scenario {
    /// "current", or the what-if's name.
    pub name: String,
    /// The configuration simulated.
    #[serde(flatten)]
    pub config: OrgConfig,
    /// What it gave.
    pub report: SimReport,
}

/// The current configuration first, then each what-if.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comparison {
    /// The scenarios, in the order asked.
    pub scenarios: Vec<Scenario>,
}

/// Simulates `current` and each of `req.what_if` on the same traffic.
pub fn compare(current: &OrgConfig, req: &SimulateRequest) -> Result<Comparison> {
    compare_cancellable(current, req, &Cancel::new())
}

/// [`compare`], stopping with [`Error::Cancelled`] soon after `cancel` is set.
pub fn compare_cancellable(
    current: &OrgConfig,
    req: &SimulateRequest,
    cancel: &Cancel,
) -> Result<Comparison> {
    validate_traffic(&req.traffic)?;
    validate_targets(&req.targets)?;
    let mut configs = vec![("current".to_string(), current.clone())];
    for w in &req.what_if {
        configs.push((w.name.clone(), apply(current, w)));
    }
    let scenarios = configs
        .into_iter()
        .map(|(name, config)| {
            let cfg = sim_config(
                &req.traffic,
                &req.targets,
                &req.check,
                config.limit,
                &config.reservations,
            );
            let report = simulate_cancellable(&cfg, cancel).map_err(|e| match e {
                Error::Engine(e) => Error::Invalid {
                    field: "what_if",
                    message: format!("{name}: {e}"),
                },
                e => e,
            })?;
            Ok(Scenario {
                name,
                config,
                report,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Comparison { scenarios })
}

/// `current` with `w`'s changes.
pub fn apply(current: &OrgConfig, w: &WhatIf) -> OrgConfig {
    let mut reservations = current.reservations.clone();
    for r in &w.reservations {
        reservations.retain(|x| !(x.agent == r.agent && x.call_type == r.call_type));
        if r.reserved > 0 {
            reservations.push(r.clone());
        }
    }
    OrgConfig {
        limit: w.limit.unwrap_or(current.limit),
        reservations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotgate_core::CallType;

    fn traffic() -> Vec<TrafficSpec> {
        ["agent-a", "agent-b"]
            .into_iter()
            .map(|agent| TrafficSpec {
                agent: agent.into(),
                call_type: CallType::Inbound,
                calls_per_hour: 300.0,
                mean_duration_s: 120.0,
                duration_sd_s: None,
                patience_s: None,
                calls_per_hour_by_hour: None,
                duration_samples_s: None,
            })
            .collect()
    }

    fn request(what_if: Vec<WhatIf>) -> SimulateRequest {
        SimulateRequest {
            traffic: traffic(),
            targets: vec![],
            what_if,
            check: CheckSettings {
                horizon_s: 6.0 * 3600.0,
                warmup_s: 600.0,
                replications: 4,
                ..CheckSettings::default()
            },
        }
    }

    #[test]
    fn a_bigger_limit_waits_less_on_the_same_traffic() {
        // 20 erlangs on 21 slots, against 25.
        let current = OrgConfig {
            limit: 21,
            reservations: vec![],
        };
        let more = WhatIf {
            name: "limit 25".into(),
            limit: Some(25),
            reservations: vec![],
        };
        let c = compare(&current, &request(vec![more])).unwrap();
        let names: Vec<&str> = c.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["current", "limit 25"]);
        let wait = |i: usize| c.scenarios[i].report.org.mean_wait_s.mean;
        assert!(wait(1) < wait(0) / 2.0, "{} vs {}", wait(1), wait(0));
    }

    #[test]
    fn a_limit_of_zero_queues_no_more_than_the_cap_and_says_so() {
        // 20,000 calls an hour for 2 h, none ever admitted: the queue would
        // hold every call of the run without its cap.
        let mut req = request(vec![WhatIf {
            name: "nothing".into(),
            limit: Some(0),
            reservations: vec![],
        }]);
        for t in &mut req.traffic {
            t.calls_per_hour = 10_000.0;
        }
        req.check.horizon_s = 2.0 * 3600.0;
        req.check.warmup_s = 0.0;
        req.check.replications = 2;
        // 667 erlangs on 1,000 slots.
        let current = OrgConfig {
            limit: 1000,
            reservations: vec![],
        };
        let c = compare(&current, &req).unwrap();
        let (fine, starved) = (&c.scenarios[0].report, &c.scenarios[1].report);
        assert_eq!(fine.queue_full_calls, 0);
        assert_eq!(starved.queue_cap, crate::MAX_SIMULATED_QUEUE);
        let offered = starved.org.calls.mean * 2.0;
        let turned_away = starved.queue_full_calls as f64;
        let cap = f64::from(crate::MAX_SIMULATED_QUEUE);
        assert!(
            (turned_away - (offered - 2.0 * cap)).abs() < 1.0,
            "{turned_away} turned away of {offered}"
        );
        assert_eq!(starved.org.service_level.mean, 0.0);
    }

    #[test]
    fn a_cancelled_comparison_stops_with_cancelled() {
        let current = OrgConfig {
            limit: 21,
            reservations: vec![],
        };
        let cancel = Cancel::new();
        cancel.cancel();
        let e = compare_cancellable(&current, &request(vec![]), &cancel).unwrap_err();
        assert_eq!(e, Error::Cancelled);
    }

    #[test]
    fn a_what_if_changes_only_the_reservations_it_names() {
        let r = |agent: &str, reserved| Reservation {
            agent: agent.into(),
            call_type: CallType::Inbound,
            reserved,
        };
        let current = OrgConfig {
            limit: 10,
            reservations: vec![r("agent-a", 2), r("agent-b", 3)],
        };
        let w = WhatIf {
            name: "a reserves 4, b none".into(),
            limit: None,
            reservations: vec![r("agent-a", 4), r("agent-b", 0)],
        };
        assert_eq!(apply(&current, &w).reservations, [r("agent-a", 4)]);
        assert_eq!(apply(&current, &w).limit, 10);
    }

    #[test]
    fn reservations_over_the_limit_are_refused_naming_the_what_if() {
        let current = OrgConfig {
            limit: 5,
            reservations: vec![],
        };
        let w = WhatIf {
            name: "too many".into(),
            limit: None,
            reservations: vec![Reservation {
                agent: "agent-a".into(),
                call_type: CallType::Inbound,
                reserved: 6,
            }],
        };
        let e = compare(&current, &request(vec![w])).unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field: "what_if", message } if message.starts_with("too many")),
            "{e}"
        );
    }
}
