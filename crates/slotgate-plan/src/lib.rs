//! slotgate's capacity planner: how many slots an org needs, and where to reserve them.
//!
//! Three parts, all pure (no I/O, no clock; threads only to run independent
//! simulation replications side by side):
//!
//! - [`erlang`]: Erlang B, C and A for one pool, with their formulas and
//!   sources, stable for pools of 10,000 slots.
//! - [`sim`]: a discrete-event simulation of one org through the real engine
//!   (`slotgate_core::Engine` on a simulated clock), for what has no closed
//!   form: reservations beside a shared pool, arrivals by hour, log-normal
//!   durations.
//! - [`traffic`]: what recorded calls say (rates by hour, durations, waits,
//!   patience), the planner's input when none is given.
//! - [`plan`]: the limit and reservations that meet a target per call type,
//!   from Erlang on the pooled traffic, checked and adjusted by simulation.
//!
//! ```
//! use slotgate_plan::ErlangC;
//!
//! // 200 calls an hour lasting 3 minutes (10 erlangs) on 14 slots:
//! let q = ErlangC::new(14, 200.0 / 3600.0, 180.0)?;
//! assert!(q.service_level(20.0) > 0.8); // 80% admitted within 20 s
//! assert!(q.mean_wait_s() < 10.0);
//! # Ok::<(), slotgate_plan::Error>(())
//! ```
//!
//! # Layout
//!
//! - [`erlang`]: closed forms and sizing for one pool.
//! - [`sim`]: the simulator (`config`, `run`: one replication, `tally`,
//!   `report`, `estimates`: the engine's expected waits against real ones);
//!   `rng`: its seedable random source; [`stats`]: confidence intervals.
//! - [`plan`]: the planner; [`whatif`]: the current configuration beside changes to it.
//! - [`traffic`]: observed traffic, from recorded calls.
//! - [`body`]: the bodies and answers of the server's planning endpoints.
//! - [`error`]: every refusal; [`Cancel`]: stopping a simulation from outside.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod body;
mod cancel;
pub mod erlang;
pub mod error;
pub mod plan;
mod rng;
pub mod sim;
pub mod stats;
pub mod traffic;
pub mod whatif;

pub use body::{PlanAnswer, PlanBody, SimulateAnswer, SimulateBody};
pub use cancel::Cancel;
pub use erlang::{erlang_b, erlang_b_load, ErlangA, ErlangC, PoolTraffic};
pub use error::{Error, Result};
pub use plan::{
    plan, plan_cancellable, Alternative, CheckSettings, Plan, PlanRequest, Reservation, Target,
    TrafficSpec, TypeOutcome,
};
pub use sim::{simulate, simulate_cancellable, SimConfig, SimReport, MAX_SIMULATED_QUEUE};
pub use stats::Estimate;
pub use traffic::{observe, CallRecord, Traffic};
pub use whatif::{
    compare, compare_cancellable, Comparison, OrgConfig, Scenario, SimulateRequest, WhatIf,
};
