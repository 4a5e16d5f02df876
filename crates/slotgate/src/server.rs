//! Starting and stopping the service: data directory, operator key, store,
//! restore, the deadline driver, the listener, graceful shutdown.

use std::fs::File;
use std::io::{Read, Seek, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotgate_core::{Config, Engine, OrgId};
use tokio::sync::watch;

use crate::auth::{random_hex, Keys};
use crate::replication::lease::Replica;
use crate::replication::role;
use crate::replication::trust::Trust;
use crate::service::{self, Service, Storage};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Retention, Snapshot, StoreError};
use crate::{api, clock};
use crate::{operator_key, private_files};

/// Where the state is kept (`--store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded SQLite store in the data directory.
    Sqlite,
    /// A PostgreSQL database, by its URL.
    Postgres(String),
}

impl std::str::FromStr for StoreChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "sqlite" {
            Ok(StoreChoice::Sqlite)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreChoice::Postgres(s.to_string()))
        } else {
            Err(format!(
                "expected `sqlite` (the embedded store in --data-dir) or a PostgreSQL URL \
                 (postgres://USER@HOST:5432/DB), got {s:?}"
            ))
        }
    }
}

/// What `slotgate serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the state is kept.
    pub store: StoreChoice,
    /// The embedded store's directory.
    pub data_dir: PathBuf,
    /// The operator key, if given; else read from or generated into the data directory.
    pub operator_key: Option<String>,
    /// How long ended calls stay readable and idempotent.
    pub ended_retention: Duration,
    /// How long the engine keeps ended calls in memory: long enough that an
    /// ended call's row is surely committed before the engine forgets it;
    /// the store keeps them for `ended_retention`, and retries and reads of
    /// older ones are answered from it (`--ended-in-memory`, 60 s; tests
    /// shorten it to reach the store sooner).
    pub ended_in_memory: Duration,
    /// How long events are kept.
    pub event_retention: Duration,
    /// How long usage by hour is kept.
    pub usage_retention: Duration,
    /// Most calls one org may have queued.
    pub queue_cap: u32,
    /// Whether `/metrics` asks for the operator key.
    pub metrics_auth: bool,
    /// How many agents of each org `/metrics` names, the busiest (0: none).
    pub metrics_agents: usize,
    /// Where the other replicas on the same PostgreSQL database reach this
    /// one while it leads (`--advertise-url`).
    pub advertise_url: Option<String>,
    /// The planning pool's workers and deadline.
    pub planning: crate::service::PlanningSettings,
    /// Timeouts and the cap of connections.
    pub connections: crate::connections::Limits,
    /// Each key's rate, failed authentication, the long-poll cap.
    pub limits: crate::limits::Settings,
    /// The secret every replica on the same PostgreSQL database shares
    /// (`SLOTGATE_REPLICA_SECRET`): followers forward only to a leader that
    /// proves it holds it.
    pub replica_secret: Option<String>,
    /// The CA certificates (PEM) a follower checks an `https://` leader's
    /// certificate against (`--replica-ca`); the system's roots when `None`.
    pub replica_ca: Option<PathBuf>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another process has the data directory.
    #[error("the data directory {dir} is in use by another slotgate (pid {pid}); stop it or use --data-dir")]
    DataDirInUse {
        /// The directory.
        dir: String,
        /// The other process, as it wrote itself down.
        pid: String,
    },
    /// The filesystem refused.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// With a PostgreSQL store, every replica must accept the same operator
    /// key, so none is generated.
    #[error("with --store postgres://..., set SLOTGATE_OPERATOR_KEY: every server on the database must accept the same operator key")]
    OperatorKeyNeeded,
    /// The operator key is too short or too monotonous to resist guessing.
    #[error("the operator key in {from} is too weak: {why}; {how}", how = operator_key::HOW_TO_MAKE_ONE)]
    WeakOperatorKey {
        /// Where the key came from: the variable or the key file.
        from: String,
        /// What is wrong with it (never the key itself).
        why: String,
    },
    /// With a PostgreSQL store, the other replicas must know where to
    /// forward requests while this one leads.
    #[error("with --store postgres://..., set --advertise-url (SLOTGATE_ADVERTISE_URL): the URL the other replicas reach this one at, such as http://10.0.0.5:7878 (it is only guessed when --listen names one address)")]
    AdvertiseUrlNeeded,
    /// With a PostgreSQL store, followers forward requests (with their keys)
    /// only to a leader that proves it knows the replicas' secret.
    #[error("with --store postgres://..., set SLOTGATE_REPLICA_SECRET, the same on every replica: followers forward requests only to a leader that proves it knows it; {how}", how = operator_key::HOW_TO_MAKE_ONE)]
    ReplicaSecretNeeded,
    /// The CA file of `--replica-ca` cannot be used.
    #[error("--replica-ca: {0}")]
    ReplicaCa(String),
    /// The replicas' secret is too short or too monotonous.
    #[error("SLOTGATE_REPLICA_SECRET is too weak: {0}; {how}", how = operator_key::HOW_TO_MAKE_ONE)]
    WeakReplicaSecret(String),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// What is stored does not fit the engine's rules.
    #[error(transparent)]
    Restore(#[from] crate::store::RestoreError),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StartError {
    let path = path.display().to_string();
    move |source| StartError::Io { what, path, source }
}

/// A started server: its state, and the lock on its data directory.
#[derive(Debug)]
pub struct Server {
    /// The service (tests drive its router directly).
    pub service: Arc<Service>,
    /// The operator key, when it was generated by this start (to print once).
    pub generated_operator_key: Option<String>,
    /// The data directory's lock, with the embedded store.
    _lock: Option<File>,
}

/// Takes the data directory's lock, or says who holds it.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<File, StartError> {
    let path = dir.join("slotgate.lock");
    let mut file = private_files::options()
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(io("opening", &path))?;
    if file.try_lock().is_err() {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(StartError::DataDirInUse {
            dir: dir.display().to_string(),
            pid: pid.trim().to_string(),
        });
    }
    file.set_len(0).map_err(io("writing", &path))?;
    file.rewind().map_err(io("writing", &path))?;
    write!(file, "{}", std::process::id()).map_err(io("writing", &path))?;
    Ok(file)
}

/// The operator key: given, or saved in the data directory, or made now
/// (and saved, 0600). A weak key is refused, wherever it comes from.
fn operator_key(dir: &Path, given: Option<String>) -> Result<(String, Option<String>), StartError> {
    if let Some(k) = given.filter(|k| !k.is_empty()) {
        return Ok((k, None));
    }
    let path = operator_key::path(dir);
    if let Some(k) = operator_key::saved(dir).map_err(io("reading", &path))? {
        check_operator_key(&k, &path.display().to_string())?;
        return Ok((k, None));
    }
    let key = operator_key::generate(dir).map_err(io("creating", &path))?;
    Ok((key.clone(), Some(key)))
}

/// Refuses a weak operator key; `from` says where it came from.
fn check_operator_key(key: &str, from: &str) -> Result<(), StartError> {
    match operator_key::weakness(key) {
        Some(why) => Err(StartError::WeakOperatorKey {
            from: from.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

impl Server {
    /// Opens the store (the data directory's, or PostgreSQL), restores the
    /// orgs' engines and starts the deadline driver.
    pub async fn start(
        settings: &Settings,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Server, StartError> {
        let retention = Retention {
            ended_calls: settings.ended_retention,
            events: settings.event_retention,
            usage: settings.usage_retention,
        };
        // A weak key given is refused before anything is created.
        if let Some(k) = settings.operator_key.as_deref().filter(|k| !k.is_empty()) {
            check_operator_key(k, "SLOTGATE_OPERATOR_KEY")?;
        }
        let (storage, operator, generated, lock, trust) = match &settings.store {
            StoreChoice::Sqlite => {
                let dir = &settings.data_dir;
                private_files::create_dir(dir).map_err(io("creating", dir))?;
                let lock = lock_data_dir(dir)?;
                let (operator, generated) = operator_key(dir, settings.operator_key.clone())?;
                let (store, tickets) = SqliteStore::open(dir, retention)?;
                let storage = Storage {
                    store: Arc::new(store),
                    tickets,
                    role: role::single(),
                };
                (storage, operator, generated, Some(lock), None)
            }
            StoreChoice::Postgres(url) => {
                let operator = settings
                    .operator_key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .ok_or(StartError::OperatorKeyNeeded)?;
                let secret = settings
                    .replica_secret
                    .as_deref()
                    .filter(|k| !k.is_empty())
                    .ok_or(StartError::ReplicaSecretNeeded)?;
                if let Some(why) = operator_key::weakness(secret) {
                    return Err(StartError::WeakReplicaSecret(why));
                }
                let me = Replica {
                    id: random_hex(16),
                    url: settings
                        .advertise_url
                        .clone()
                        .ok_or(StartError::AdvertiseUrlNeeded)?,
                };
                let tls = crate::tls::client_config(settings.replica_ca.as_deref())
                    .map_err(StartError::ReplicaCa)?;
                let trust = Trust::new(secret, &me.url).with_tls(tls);
                let (store, tickets, role) = PostgresStore::open(url, retention, me).await?;
                let storage = Storage {
                    store: Arc::new(store),
                    tickets,
                    role,
                };
                (storage, operator, None, None, Some(trust))
            }
        };
        let config = Config {
            queue_cap: settings.queue_cap,
            ended_retention: settings.ended_retention.min(settings.ended_in_memory),
        };
        // A replica that starts as a follower forwards every request and
        // holds nothing; it loads the state when it takes the lead.
        let started = Instant::now();
        let leads = storage.role.borrow().serves();
        let mut snapshot = if leads {
            let reader = storage.store.clone();
            let since = service::ended_since(config);
            tokio::task::spawn_blocking(move || reader.load(since))
                .await
                .map_err(|e| StoreError(e.to_string()))??
        } else {
            Snapshot::default()
        };
        let org_rates = std::mem::take(&mut snapshot.org_rates);
        let plans = std::mem::take(&mut snapshot.plans);
        let ended = std::mem::take(&mut snapshot.ended);
        // Leases get their grace from now; deadlines passed while down are handled.
        let (orgs, keys) = service::restore(snapshot, config, clock::now())?;
        if leads {
            log_recovered(&orgs, started.elapsed());
        }
        let keys = Keys::new(&operator, keys);
        let limits = crate::limits::Limits::new(settings.limits.clone());
        limits.replace_own_org_rates(org_rates);
        let service = Service::new(
            config,
            orgs,
            ended,
            storage,
            keys,
            settings.metrics_auth,
            shutdown,
        )
        .with_limits(limits)
        .with_metrics_agents(settings.metrics_agents)
        .with_planning(settings.planning)
        .with_plans(plans)
        .trusting(trust);
        let service = Arc::new(service);
        // Whatever resuming changed (calls that timed out while down) is stored like any change.
        service.settle().await;
        let s = service.clone();
        tokio::spawn(async move { s.drive_deadlines().await });
        let s = service.clone();
        tokio::spawn(async move { s.sample_history().await });
        let s = service.clone();
        tokio::spawn(async move { s.recover_from_store_failures().await });
        Ok(Server {
            service,
            generated_operator_key: generated,
            _lock: lock,
        })
    }

    /// Serves on `tcp` (HTTPS with `tls`), and the metrics alone on
    /// `metrics_tcp` (`--metrics-listen`), each within `connections'`
    /// limits, until `shutdown` is set, then finishes in-flight requests and
    /// waits until every change is durable.
    pub async fn serve(
        self,
        tcp: tokio::net::TcpListener,
        tls: Option<crate::tls::https::Handshakes>,
        metrics_tcp: Option<tokio::net::TcpListener>,
        connections: crate::connections::Limits,
        shutdown: watch::Receiver<bool>,
    ) {
        let metrics = metrics_tcp.map(|tcp| {
            let app = api::metrics_router(self.service.clone());
            crate::connections::serve(tcp, None, app, connections, shutdown.clone())
        });
        let app = api::router(self.service.clone());
        let main = crate::connections::serve(tcp, tls, app, connections, shutdown);
        match metrics {
            Some(metrics) => {
                tokio::join!(main, metrics);
            }
            None => main.await,
        }
        if let Err(e) = self.service.flush().await {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
    }
}

/// Logs what the engine holds after loading the store and resuming (calls
/// whose `max_wait` passed while the server was down have ended by then),
/// and how long loading took: one line, so an operator sees what a restart
/// brought back.
pub(crate) fn log_recovered(orgs: &[(OrgId, Engine)], took: Duration) {
    let (mut active, mut queued) = (0u64, 0u64);
    for (id, engine) in orgs {
        let org = engine
            .org(id.as_str())
            .expect("each restored engine holds the org it is filed under");
        active += u64::from(org.active);
        queued += u64::from(org.queued);
    }
    tracing::info!(
        "recovered from the store in {} ms: {} orgs, {active} active calls, {queued} queued calls (every lease has one lease_ttl of grace from now)",
        took.as_millis(),
        orgs.len()
    );
}

/// The one line logged when ready; `scheme` is `http` or `https`.
pub fn ready_line(scheme: &str, addr: SocketAddr) -> String {
    let base = format!("{scheme}://{addr}");
    format!("slotgate ready on {base} (dashboard: {base}/, API: {base}/v1/openapi.json)")
}
