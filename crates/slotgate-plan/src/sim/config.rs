//! What a simulation is asked: the org's limit and reservations, and its traffic per agent and type.

use serde::{Deserialize, Serialize};
use slotgate_core::CallType;

use crate::error::{check_at_least, check_positive, check_probability, Error, Result};

/// One simulated org: its configuration, its traffic, and how long and how
/// often to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimConfig {
    /// The org's limit `L`.
    pub limit: u32,
    /// The traffic, one entry per (agent, type); also carries the reservations.
    pub streams: Vec<StreamSpec>,
    /// Simulated seconds over which calls are measured (after the warm-up).
    pub horizon_s: f64,
    /// Simulated seconds run before measuring, so the org starts measured
    /// from a loaded state rather than empty (a few mean durations is plenty
    /// for steady traffic). Simulated time 0 is midnight.
    pub warmup_s: f64,
    /// Independent replications (different seeds); their spread gives the
    /// confidence intervals. At least 2 for a finite interval.
    pub replications: u32,
    /// The seed of the first replication; the others derive from it.
    pub seed: u64,
    /// The `T` of the service level "admitted within T seconds".
    pub service_level_within_s: f64,
    /// The confidence level of the intervals, e.g. 0.95.
    pub confidence: f64,
    /// Threads to run replications on; 0 uses every core.
    #[serde(default)]
    pub threads: u32,
}

/// The calls of one agent and one type, and the slots reserved for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamSpec {
    /// The agent's id, as the engine takes it.
    pub agent: String,
    /// The call type.
    pub call_type: CallType,
    /// `r(agent, type)`: slots reserved for these calls.
    #[serde(default)]
    pub reserved: u32,
    /// When calls arrive.
    pub arrivals: Arrivals,
    /// How long an admitted call holds its slot.
    pub duration: DurationDist,
    /// How long a queued call waits before giving up.
    pub patience: Patience,
    /// This stream's service-level time, seconds, if not the config's
    /// `service_level_within_s` (targets differ by type: inbound 20 s,
    /// outbound 5 min).
    #[serde(default)]
    pub service_level_within_s: Option<f64>,
}

/// A Poisson arrival process, steady or by hour of day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Arrivals {
    /// The same rate all day.
    Poisson {
        /// Mean calls per hour.
        calls_per_hour: f64,
    },
    /// A rate per hour of the day (24 values, hour 0 from midnight): a
    /// Poisson process whose rate is constant within each hour.
    Hourly {
        /// Mean calls per hour, for each hour of the day.
        calls_per_hour: Vec<f64>,
    },
}

impl Arrivals {
    /// Mean calls per second in `hour` (0 to 23).
    pub(crate) fn rate_per_s(&self, hour: usize) -> f64 {
        match self {
            Arrivals::Poisson { calls_per_hour } => calls_per_hour / 3600.0,
            Arrivals::Hourly { calls_per_hour } => calls_per_hour[hour] / 3600.0,
        }
    }

    /// Mean calls per second over a day.
    pub fn mean_rate_per_s(&self) -> f64 {
        (0..24).map(|h| self.rate_per_s(h)).sum::<f64>() / 24.0
    }
}

/// How long calls last once admitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DurationDist {
    /// Exponential: what Erlang C and A assume.
    Exponential {
        /// Mean seconds.
        mean_s: f64,
    },
    /// Log-normal with this mean and standard deviation (of the duration
    /// itself, not of its logarithm): the usual shape of real call durations.
    LogNormal {
        /// Mean seconds.
        mean_s: f64,
        /// Standard deviation, seconds.
        sd_s: f64,
    },
    /// Drawn uniformly from observed durations (e.g. from the event log).
    Empirical {
        /// Observed durations, seconds.
        samples_s: Vec<f64>,
    },
}

impl DurationDist {
    /// The mean duration, seconds.
    pub fn mean_s(&self) -> f64 {
        match self {
            DurationDist::Exponential { mean_s } | DurationDist::LogNormal { mean_s, .. } => {
                *mean_s
            }
            DurationDist::Empirical { samples_s } => {
                samples_s.iter().sum::<f64>() / samples_s.len().max(1) as f64
            }
        }
    }
}

/// How long a queued call waits before giving up (sent as its `max_wait`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Patience {
    /// Waits as long as it takes.
    Unlimited,
    /// Gives up after an exponential time with this mean (Erlang A's model).
    Exponential {
        /// Mean seconds.
        mean_s: f64,
    },
}

impl Patience {
    /// The mean patience, seconds; `None` if unlimited.
    pub fn mean_s(&self) -> Option<f64> {
        match self {
            Patience::Unlimited => None,
            Patience::Exponential { mean_s } => Some(*mean_s),
        }
    }
}

impl SimConfig {
    /// Checks every field; the engine checks the rest (ids, reservations against the limit).
    pub fn validate(&self) -> Result<()> {
        check_positive("horizon_s", self.horizon_s)?;
        check_at_least("warmup_s", self.warmup_s, 0.0)?;
        check_at_least("service_level_within_s", self.service_level_within_s, 0.0)?;
        let level = check_probability("confidence", self.confidence)?;
        if level <= 0.0 || level >= 1.0 {
            return Err(Error::invalid(
                "confidence",
                "must be strictly between 0 and 1",
            ));
        }
        if self.replications == 0 {
            return Err(Error::invalid("replications", "must be at least 1"));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.streams {
            if !seen.insert((s.agent.as_str(), s.call_type)) {
                return Err(Error::invalid(
                    "streams",
                    format!("{}/{} appears twice", s.agent, s.call_type),
                ));
            }
            s.validate()?;
        }
        Ok(())
    }
}

impl StreamSpec {
    fn validate(&self) -> Result<()> {
        match &self.arrivals {
            Arrivals::Poisson { calls_per_hour } => {
                check_at_least("calls_per_hour", *calls_per_hour, 0.0)?;
            }
            Arrivals::Hourly { calls_per_hour } => {
                if calls_per_hour.len() != 24 {
                    return Err(Error::invalid(
                        "calls_per_hour",
                        format!(
                            "needs 24 values, one per hour, got {}",
                            calls_per_hour.len()
                        ),
                    ));
                }
                for &r in calls_per_hour {
                    check_at_least("calls_per_hour", r, 0.0)?;
                }
            }
        }
        match &self.duration {
            DurationDist::Exponential { mean_s } => {
                check_positive("mean_s", *mean_s)?;
            }
            DurationDist::LogNormal { mean_s, sd_s } => {
                check_positive("mean_s", *mean_s)?;
                check_positive("sd_s", *sd_s)?;
            }
            DurationDist::Empirical { samples_s } => {
                if samples_s.is_empty() {
                    return Err(Error::invalid("samples_s", "needs at least one duration"));
                }
                for &d in samples_s {
                    check_at_least("samples_s", d, 0.0)?;
                }
            }
        }
        if let Patience::Exponential { mean_s } = self.patience {
            check_positive("patience.mean_s", mean_s)?;
        }
        if let Some(t) = self.service_level_within_s {
            check_at_least("service_level_within_s", t, 0.0)?;
        }
        Ok(())
    }
}
