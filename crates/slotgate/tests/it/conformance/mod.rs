//! The conformance suite: every test here passes on the embedded store, on
//! PostgreSQL and through a replica that forwards to the leading one
//! (`SLOTGATE_TEST_STORE`, read by `support::Server`).

mod api;
mod caps_burst;
mod cli;
mod client;
mod e2e;
mod ended_ids;
mod limits;
mod planning;
mod plans;
mod revocation;
mod usage;
mod wait_estimate;
