//! slotgate, the service: the HTTP API of API.md around the admission engine
//! (`slotgate-core`), on a durable embedded store or on PostgreSQL.
//!
//! # Layout
//!
//! - [`cli`]: the `slotgate` command line; [`commands`]: its client subcommands;
//!   [`server`]: start-up, restore, shutdown; [`connections`]: the accept loop, the connection cap and timeouts; [`backup`]: `slotgate export` and `import`.
//! - [`api`]: routes and handlers; errors become HTTP in [`api::error`] only.
//! - [`service`]: one method per use case; each org's engine behind its own lock, and how a change becomes durable.
//! - [`driver`]: the task that wakes each org's engine at its deadlines; [`history`]: samples for the dashboard's chart.
//! - [`store`]: what is kept, the backend's reads and the group-commit front; [`store::sqlite`]: the embedded store;
//!   [`store::postgres`]: the PostgreSQL store's rows and transactions.
//! - [`replication`]: any number of replicas on one PostgreSQL database, one of which leads: the role,
//!   the lease row and election, fencing, forwarding to the leader ([`api::forward`] is its tower layer).
//! - [`tls`]: rustls on ring, for HTTPS ([`tls::https`]) and for TLS to PostgreSQL.
//! - [`auth`]: keys and roles; [`limits`]: each key's rate, failed authentication, the long-poll cap; [`operator_key`]: the operator key's strength and file;
//!   [`private_files`]: the data directory 0700, its files 0600;
//!   [`metrics`]: `/metrics`; [`clock`]: the wall clock as the engine's `now`; [`usage`]: usage by hour.
//! - The API's shapes are the contract crate's (`slotgate-api`), filled from the
//!   engine's views by `slotgate-core`.

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod connections;
pub mod driver;
pub mod history;
pub mod limits;
pub mod metrics;
pub mod operator_key;
pub mod private_files;
pub mod replication;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
pub mod usage;
