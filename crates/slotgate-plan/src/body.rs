//! The bodies and answers of the server's planning endpoints
//! (`POST /v1/orgs/{org}/plan` and `/simulate`): traffic given, or observed
//! over a window of the org's recorded calls.

use serde::{Deserialize, Serialize};
use slotgate_api::{limits, number};

use crate::plan::{CheckSettings, Plan, Target, TrafficSpec};
use crate::whatif::{OrgConfig, Scenario, WhatIf};

/// The body of `POST /v1/orgs/{org}/plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// One target per call type that has one (e.g. inbound 0.8 within 20 s).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub targets: Vec<Target>,
    /// The traffic per agent and type; absent: the org's observed traffic
    /// over `window`. Not with `window`.
    #[serde(default)]
    pub traffic: Option<Vec<TrafficSpec>>,
    /// How far back to observe when `traffic` is absent: a whole number of
    /// ms, s, m, h or d (e.g. "7d", "12h"); default 7d. Not with `traffic`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[1-9][0-9]{0,9}(ms|s|m|h|d)$")
    )]
    pub window: Option<String>,
    /// The highest limit worth considering, 1 to 1,000,000; default 10,000.
    #[serde(
        default,
        deserialize_with = "number::whole_opt::<_, _, 1, { limits::MAX_LIMIT as u64 }>"
    )]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub max_limit: Option<u32>,
    /// How hard each simulated check is; every field optional.
    #[serde(default)]
    pub check: Option<CheckSettings>,
}

/// The answer of `POST /v1/orgs/{org}/plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanAnswer {
    /// The org's configuration now, to compare with.
    pub current: OrgConfig,
    /// The traffic planned for (given, or observed).
    pub traffic: Vec<TrafficSpec>,
    /// The recommendation and its alternatives.
    pub plan: Plan,
}

/// The most what-ifs one simulation compares (the OpenAPI document's
/// `maxItems` of `what_if` says the same number).
pub const MAX_WHAT_IFS: usize = 16;

/// The body of `POST /v1/orgs/{org}/simulate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    /// The traffic per agent and type; absent: the org's observed traffic
    /// over `window`. Not with `window`.
    #[serde(default)]
    pub traffic: Option<Vec<TrafficSpec>>,
    /// How far back to observe when `traffic` is absent: a whole number of
    /// ms, s, m, h or d (e.g. "7d", "12h"); default 7d. Not with `traffic`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[1-9][0-9]{0,9}(ms|s|m|h|d)$")
    )]
    pub window: Option<String>,
    /// Targets whose times the service levels use, per type (20 s for a type without one).
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Changes to simulate beside the current configuration: at most
    /// [`MAX_WHAT_IFS`].
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    pub what_if: Vec<WhatIf>,
    /// How long and how often to simulate; every field optional.
    #[serde(default)]
    pub check: Option<CheckSettings>,
}

/// The answer of `POST /v1/orgs/{org}/simulate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimulateAnswer {
    /// The traffic simulated (given, or observed).
    pub traffic: Vec<TrafficSpec>,
    /// The current configuration first, then each what-if.
    pub scenarios: Vec<Scenario>,
}
