//! The server's integration tests, in one test binary (as large Rust projects
//! do), so a clean build links the server's tests once.
//!
//! Each module runs the real `slotgate serve` binary (`support`). The modules
//! under [`conformance`] are the conformance suite of every store:
//! `scripts/test.sh` runs them again with `SLOTGATE_TEST_STORE=postgres` and
//! `SLOTGATE_TEST_STORE=replicas` (`cargo test --test it -- conformance::`).

mod support;

mod conformance;

mod dashboard;
mod export;
mod https;
mod metrics_agents;
mod metrics_listen;
mod partitions;
mod planning_limits;
mod postgres;
mod postgres_tls;
mod readme;
mod replicas;
mod safe_defaults;
mod store_metrics;
mod store_upgrade;
