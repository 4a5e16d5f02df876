//! slotgate, the service: the HTTP API of API.md around the admission engine
//! (`slotgate-core`), on a durable embedded store.
//!
//! # Layout
//!
//! - [`cli`]: the `slotgate` command line; [`commands`]: its client subcommands;
//!   [`server`]: start-up, restore, shutdown.
//! - [`api`]: routes and handlers; errors become HTTP in [`api::error`] only.
//! - [`state`]: the engine behind one lock, and how a change becomes durable.
//! - [`driver`]: the task that wakes the engine at its deadlines; [`history`]: samples for the dashboard's chart.
//! - [`store`]: what is kept and the backend interface; [`store::sqlite`]: the embedded store.
//! - [`auth`]: keys and roles; [`wire`]: the JSON shapes; [`metrics`]: `/metrics`.

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod driver;
pub mod history;
pub mod metrics;
pub mod server;
pub mod state;
pub mod store;
pub mod wire;
