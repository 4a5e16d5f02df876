//! The PostgreSQL store (`slotgate serve --store postgres://...`): the rows
//! and transactions of any number of replicas on one database, one of
//! which leads.
//!
//! **The leader** applies every change, as one server does with the embedded
//! store: its engine in memory decides, a writer task commits with group
//! commit (`group_commit.rs`: everything waiting in one transaction, one
//! commit), and a request answers only once its change is committed in
//! PostgreSQL. **The other replicas follow** and forward every request to
//! the leader. Who leads, the election, the fencing of every commit by the
//! term and the forwarding are `crate::replication`'s: this file's writer
//! (`PostgresWriter`) holds the connection, the statements and the
//! transactions; `replication/replicated.rs` drives it for the write loop
//! (`write_loop.rs`), committing while this replica leads, and each
//! transaction begins with `replication/fence.rs`'s renewal of the term it
//! is given. Only
//! transaction-scoped locks are used, so a transaction-pooling PgBouncer
//! may sit in between.
//!
//! Reads (start-up, the events API, observed traffic) use a second
//! connection; they run on the blocking threads, which wait for them on the
//! runtime.

mod migrate;
mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotgate_core::{Event, EventKind, RestoredCall, Source, Timestamp};
use slotgate_plan::CallRecord;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Row, Statement, Transaction};

pub use migrate::{migrate, MigrateError, Migrated, LATEST, MIGRATIONS, MIGRATION_LOCK};

use super::group_commit::{self, newest_seqs, Tickets};
use super::rows::{
    self, CallRow, CapRow, Dump, KeyRow, OrgRateRow, OrgRows, ReservationRow, TrafficRow,
};
use super::usage_rows::{self, Book, Seed, StoredUsage};
use super::{Retention, Store, StoreError, Stored, Write};
use crate::clock;
use crate::replication::fence;
use crate::replication::lease::{self, Replica, LEASE};
use crate::replication::replicated;
use crate::replication::Role;
use crate::tls::with_causes;

/// A statement's parameters, owned: `params![org, seq as i64]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new(($p).to_owned()) as Owned),*]
    };
}

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PostgresStore {
    /// Where the database is, to connect again after a failure.
    url: String,
    /// The connection reads use; opened again when lost.
    reader: Mutex<Arc<Reader>>,
    runtime: Handle,
    retention: Retention,
}

pub(crate) fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// How long one host of the URL may take to accept a connection, unless the
/// URL sets `connect_timeout`: a multi-host URL then moves on from a primary
/// whose machine is gone (no refusal ever comes) to the next host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects to `url` and drives the connection on a task of its own. TLS is
/// as the URL's libpq parameters say (`tls.rs`).
async fn connect(url: &str) -> Result<Client, StoreError> {
    let (mut config, tls) = tls::split(url)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // A connection that gets nothing back from the database for a lease
    // fails, rather than waiting on retransmissions for minutes or on the
    // system's two-hour keepalive: its statements unacknowledged
    // (`tcp_user_timeout`), or its statements acknowledged and no answer
    // coming (a keepalive probe after 2 s of silence, itself
    // unacknowledged until the lease runs out). A leader cut from the
    // database (a partition, a machine gone) then finds out, and reconnects
    // as soon as the network heals; the URL's own settings win.
    if !url.contains("keepalives_idle") {
        config
            .keepalives_idle(Duration::from_secs(2))
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(3);
    }
    if !url.contains("tcp_user_timeout") {
        config.tcp_user_timeout(LEASE);
    }
    let (client, connection) = config.connect(tls.connector()?).await.map_err(|e| {
        StoreError(format!(
            "connecting to PostgreSQL ({tls}): {}",
            with_causes(&e)
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %with_causes(&e), "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// How long the idle check may take before the database counts as down.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a batch's transaction may take before the database counts as down.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `work`, or a failure if it takes longer than `limit`.
pub(crate) async fn within<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(StoreError(format!(
            "the database did not answer within {} s",
            limit.as_secs()
        )))
    })
}

/// How long it waits between attempts to reconnect.
pub(crate) const RETRY: Duration = Duration::from_millis(500);

/// A connection with the schema migrated and the database's clock followed.
pub(crate) async fn open_writer(url: &str) -> Result<Client, StoreError> {
    let mut writer = connect(url).await?;
    migrate(&mut writer).await.map_err(err)?;
    lease::sync_clock(&writer).await.map_err(err)?;
    Ok(writer)
}

impl PostgresStore {
    /// Connects to `url`, migrates the schema, takes the lead if nobody
    /// holds it (`replication/lease.rs`), and starts the writer task; the
    /// group-commit front to write through, and this replica's role. A
    /// replica that does not lead starts with its database `Health::Up`,
    /// its writer's gate shut (`Gate::Shut`), and [`Role::Following`] (or
    /// [`Role::Unknown`] if the leader row names nobody alive yet).
    pub async fn open(
        url: &str,
        retention: Retention,
        me: Replica,
    ) -> Result<(Self, Tickets, watch::Receiver<Role>), StoreError> {
        let (_, tls) = tls::split(url)?;
        tracing::info!("PostgreSQL connections: {tls}");
        let conn = open_writer(url).await?;
        let reader = Reader::connect(url).await?;
        let (tickets, writer) = group_commit::channel();
        let rows = PostgresWriter {
            conn: Some(conn),
            prepared: Prepared::new(),
            book: Book::default(),
            retention,
        };
        let role = replicated::start(url, me, rows, writer).await?;
        let store = PostgresStore {
            url: url.to_string(),
            reader: Mutex::new(Arc::new(reader)),
            runtime: Handle::current(),
            retention,
        };
        Ok((store, tickets, role))
    }

    /// Runs a read on the runtime and waits for it (on a blocking thread).
    fn read<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.runtime.block_on(f)
    }

    /// The read connection, opened again if it was lost.
    fn reader(&self) -> Result<Arc<Reader>, StoreError> {
        let current = self.reader.lock().expect("never poisoned").clone();
        if !current.client.is_closed() {
            return Ok(current);
        }
        let fresh = Arc::new(self.read(Reader::connect(&self.url))?);
        *self.reader.lock().expect("never poisoned") = fresh.clone();
        Ok(fresh)
    }
}

/// The connection reads use, with the statement of the one read on the
/// request path (an acquire of an id the engine does not hold) prepared on
/// it: one round trip per lookup, not two.
#[derive(Debug)]
struct Reader {
    client: Client,
    ended_call: Statement,
}

impl Reader {
    async fn connect(url: &str) -> Result<Reader, StoreError> {
        let client = connect(url).await?;
        let sql = format!(
            "SELECT {} FROM slotgate_calls WHERE org = $1 AND id = $2",
            rows::CALL_COLUMNS
        );
        // By the primary key alone: with `state = 'ended'` or a bound on
        // `ended_at`, the statement's generic plan, made while the table is
        // small, can pick the partial index of ended calls and scan them all.
        let ended_call = client.prepare(&sql).await.map_err(err)?;
        Ok(Reader { client, ended_call })
    }
}

impl Store for PostgresStore {
    fn dump(&self, ended_since: Option<Timestamp>) -> Result<Dump, StoreError> {
        // Its own connection: a transaction needs one to itself.
        self.read(async {
            let mut conn = connect(&self.url).await?;
            dump(&mut conn, ended_since).await.map_err(err)
        })
    }

    fn ended_call(&self, org: &str, id: &str) -> Result<Option<RestoredCall>, StoreError> {
        let reader = self.reader()?;
        // On the request path: bounded, so a hung connection answers 503.
        let row = self.read(within(PING_TIMEOUT, async {
            reader
                .client
                .query_opt(&reader.ended_call, &[&org, &id])
                .await
                .map_err(err)
        }))?;
        rows::kept_ended(row.map(|r| call_row(&r)), self.retention)
    }

    fn ended_ids(&self) -> Result<Vec<super::EndedId>, StoreError> {
        let sql = "SELECT org, id, ended_at FROM slotgate_calls \
                   WHERE state = 'ended' AND ended_at > $1";
        let after = rows::kept_after(self.retention);
        let reader = self.reader()?;
        let found = self.read(async { reader.client.query(sql, &[&after]).await.map_err(err) })?;
        Ok(found
            .iter()
            .map(|r| rows::ended_id((r.get(0), r.get(1), r.get(2))))
            .collect())
    }

    fn ended_retention(&self) -> std::time::Duration {
        self.retention.ended_calls
    }

    fn last_event(&self, org: &str) -> Result<u64, StoreError> {
        let reader = self.reader()?;
        self.read(async {
            let row = reader
                .client
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) FROM slotgate_events WHERE org = $1",
                    &[&org],
                )
                .await
                .map_err(err)?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn calls_complete_since(&self, org: &str, now: Timestamp) -> Result<Timestamp, StoreError> {
        let kept = now
            .as_millis()
            .saturating_sub(self.retention.ended_calls.as_millis() as u64);
        let reader = self.reader()?;
        let created: Option<i64> = self.read(async {
            let row = reader
                .client
                .query_one(
                    "SELECT MIN(at) FROM slotgate_events WHERE org = $1 AND seq = 1",
                    &[&org],
                )
                .await
                .map_err(err)?;
            Ok(row.get(0))
        })?;
        let created = created.map_or(0, |t| t.max(0) as u64);
        Ok(Timestamp::from_millis(kept.max(created)))
    }

    fn calls_since(&self, org: &str, since: Timestamp) -> Result<Vec<CallRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM slotgate_calls WHERE org = $1 AND COALESCE(queued_at, admitted_at) >= $2",
            rows::TRAFFIC_COLUMNS
        );
        let reader = self.reader()?;
        let found = self.read(async {
            reader
                .client
                .query(&sql, &[&org, &rows::ms(since)])
                .await
                .map_err(err)
        })?;
        found
            .iter()
            .map(|r| {
                TrafficRow {
                    agent: r.get(0),
                    call_type: r.get(1),
                    arrived_at: r.get(2),
                    admitted_at: r.get(3),
                    ended_at: r.get(4),
                    end_reason: r.get(5),
                }
                .record()
                .map_err(err)
            })
            .collect()
    }

    fn usage(&self, org: &str, from_ms: u64, to_ms: u64) -> Result<StoredUsage, StoreError> {
        let reader = self.reader()?;
        let (from, to) = (from_ms as i64, to_ms as i64);
        let (rows, latest) = self.read(async {
            let rows = reader
                .client
                .query(
                    "SELECT body FROM slotgate_usage WHERE org = $1 AND hour >= $2 AND hour < $3 ORDER BY hour",
                    &[&org, &from, &to],
                )
                .await
                .map_err(err)?;
            let latest = reader
                .client
                .query_opt(
                    "SELECT body FROM slotgate_usage WHERE org = $1 ORDER BY hour DESC LIMIT 1",
                    &[&org],
                )
                .await
                .map_err(err)?;
            Ok((
                rows.iter().map(|r| r.get(0)).collect(),
                latest.map(|r| r.get(0)),
            ))
        })?;
        Ok(usage_rows::parse(rows, latest))
    }

    fn plan_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<slotgate_api::PlanEvent>, StoreError> {
        let reader = self.reader()?;
        let found = self.read(async {
            reader
                .client
                .query(
                    "SELECT seq, body::text FROM slotgate_plan_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&(after as i64), &(limit as i64)],
                )
                .await
                .map_err(err)
        })?;
        found
            .iter()
            .map(|r| rows::plan_event(r.get(0), r.get::<_, &str>(1)).map_err(err))
            .collect()
    }

    fn events(
        &self,
        org: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<slotgate_api::Event>, StoreError> {
        let reader = self.reader()?;
        let found = self.read(async {
            reader
                .client
                .query(
                    "SELECT body::text FROM slotgate_events WHERE org = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&org, &(after as i64), &(limit as i64)],
                )
                .await
                .map_err(err)
        })?;
        found
            .iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(err))
            .collect()
    }
}

/// The writer's rows and transactions: the connection it commits on, the
/// statements prepared there, and the usage hours it counts. Whether it may
/// commit, and in which term, is replication's (`replication/replicated.rs`
/// drives it for the write loop).
#[derive(Debug)]
pub(crate) struct PostgresWriter {
    /// The connection it commits on; `None` once lost.
    conn: Option<Client>,
    prepared: Prepared,
    book: Book,
    retention: Retention,
}

impl PostgresWriter {
    /// The connection it commits on, if it has one.
    pub(crate) fn connection(&self) -> Option<&Client> {
        self.conn.as_ref()
    }

    /// Gives up its connection (to the one that reconnects).
    pub(crate) fn take_connection(&mut self) -> Option<Client> {
        self.conn.take()
    }

    /// Commits on `conn` from now on, with nothing prepared or counted.
    pub(crate) fn connected_on(&mut self, conn: Client) {
        self.conn = Some(conn);
        self.prepared.clear();
        self.book.clear();
    }

    /// Commits `batch` in one transaction fenced by `term`
    /// (`replication/fence.rs`): the events it stored.
    pub(crate) async fn commit(
        &mut self,
        batch: &[(u64, Write)],
        term: i64,
    ) -> Result<Vec<Stored>, StoreError> {
        let Some(live) = self.conn.as_mut() else {
            return Err(StoreError("not connected to the database".into()));
        };
        // A commit that never answers is a failure too: reloading from the
        // database then finds out whether it happened.
        within(
            COMMIT_TIMEOUT,
            commit(live, &mut self.prepared, &mut self.book, batch, term),
        )
        .await
    }

    /// Deletes what is past its retention (nothing without a connection).
    pub(crate) async fn purge(&mut self) -> Result<(), StoreError> {
        let Some(live) = self.conn.as_ref() else {
            return Ok(());
        };
        // Bounded like a commit: a purge that hangs would hold up the
        // lead's renewals.
        let retention = self.retention;
        within(COMMIT_TIMEOUT, async {
            purge(live, retention).await.map_err(err)
        })
        .await
    }

    /// A commit or a check failed: what it counted may not be what the
    /// database holds, and a closed connection is dropped.
    pub(crate) fn failed(&mut self) {
        self.book.clear();
        if self.conn.as_ref().is_some_and(Client::is_closed) {
            self.conn = None;
        }
    }

    /// Drops its connection: the next one is made afresh.
    pub(crate) fn disconnect(&mut self) {
        self.conn = None;
    }
}

/// Applies a batch of writes in one transaction; the events it stored.
/// First of all, it renews the lead of `term`, and fails if another
/// replica took over: then nothing of the batch is committed.
async fn commit(
    conn: &mut Client,
    prepared: &mut Prepared,
    book: &mut Book,
    batch: &[(u64, Write)],
    term: i64,
) -> Result<Vec<Stored>, StoreError> {
    let txn = conn.transaction().await.map_err(err)?;
    for org in book.unseeded(batch) {
        let seed = usage_seed(&txn, &org).await.map_err(err)?;
        book.seed(org, seed);
    }
    let mut published = Vec::new();
    let mut jobs = Vec::new();
    exec(&mut jobs, fence::RENEW, params![term]);
    exec(&mut jobs, fence::ABANDONED_AFTER_LEASE, params![]);
    let mut fenced = false;
    for (_, write) in batch {
        match write {
            Write::Import(dump) => {
                let ran = run(&txn, prepared, &mut jobs).await.map_err(err)?;
                if !fenced {
                    fence::still_leads(&ran)?;
                    fenced = true;
                }
                import(&txn, dump).await.map_err(err)?;
            }
            write => apply(&mut jobs, write, &mut published, term),
        }
    }
    for (org, seq) in newest_seqs(&published) {
        exec(
            &mut jobs,
            "UPDATE slotgate_orgs SET last_event_seq = $2 WHERE id = $1",
            params![org, seq as i64],
        );
    }
    if batch.iter().any(|(_, w)| matches!(w, Write::Import(_))) {
        book.clear();
    }
    for (org, hour, body) in book.apply(batch) {
        exec(
            &mut jobs,
            "INSERT INTO slotgate_usage (org, hour, body) VALUES ($1, $2, $3)
             ON CONFLICT (org, hour) DO UPDATE SET body = excluded.body",
            params![org, hour, body],
        );
    }
    let ran = run(&txn, prepared, &mut jobs).await.map_err(err)?;
    if !fenced {
        fence::still_leads(&ran)?;
    }
    txn.commit().await.map_err(err)?;
    Ok(published)
}

/// What the usage figures of `org` continue from (usage_rows.rs), read
/// in the batch's transaction before its writes.
async fn usage_seed(txn: &Transaction<'_>, org: &str) -> Result<Seed, tokio_postgres::Error> {
    let limit = txn
        .query_opt("SELECT lim FROM slotgate_orgs WHERE id = $1", &[&org])
        .await?
        .map_or(0, |r| r.get::<_, i32>(0).max(0) as u32);
    let calls = txn
        .query(
            "SELECT id, type, state FROM slotgate_calls WHERE org = $1 AND state IN ('queued', 'active')",
            &[&org],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let latest = txn
        .query_opt(
            "SELECT body FROM slotgate_usage WHERE org = $1 ORDER BY hour DESC LIMIT 1",
            &[&org],
        )
        .await?
        .map(|r| r.get(0));
    Ok(Seed {
        limit,
        calls,
        latest,
    })
}

async fn purge(conn: &Client, retention: Retention) -> Result<(), tokio_postgres::Error> {
    conn.execute(
        "DELETE FROM slotgate_usage WHERE hour < $1",
        &[&(rows::ms(clock::now()) - retention.usage.as_millis() as i64)],
    )
    .await?;
    let now = rows::ms(clock::now());
    let ended = now - retention.ended_calls.as_millis() as i64;
    let events = now - retention.events.as_millis() as i64;
    conn.execute(
        "DELETE FROM slotgate_calls WHERE state = 'ended' AND ended_at < $1",
        &[&ended],
    )
    .await?;
    conn.execute("DELETE FROM slotgate_events WHERE at < $1", &[&events])
        .await?;
    Ok(())
}

/// A statement's parameter, owned, so a batch's statements can be sent
/// together before any answer comes back.
type Owned = Box<dyn ToSql + Sync + Send>;

/// A statement to run in the batch's transaction.
struct Job {
    sql: &'static str,
    params: Vec<Owned>,
}

/// The writer's prepared statements, by their text.
type Prepared = HashMap<&'static str, Statement>;

/// Queues one statement of the batch.
fn exec(jobs: &mut Vec<Job>, sql: &'static str, params: Vec<Owned>) {
    jobs.push(Job { sql, params });
}

/// Runs the queued statements, in order, pipelined: all are sent before the
/// first answer is awaited (PostgreSQL runs them one after another, as
/// sent). Each is prepared once per connection.
/// Returns how many rows each changed.
async fn run(
    txn: &Transaction<'_>,
    prepared: &mut Prepared,
    jobs: &mut Vec<Job>,
) -> Result<Vec<u64>, tokio_postgres::Error> {
    for job in jobs.iter() {
        if !prepared.contains_key(job.sql) {
            let statement = txn.prepare(job.sql).await?;
            prepared.insert(job.sql, statement);
        }
    }
    let sent = jobs.iter().map(|job| {
        let params = job.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync));
        txn.execute_raw(&prepared[job.sql], params)
    });
    let changed = futures_util::future::try_join_all(sent).await?;
    jobs.clear();
    Ok(changed)
}

fn apply(jobs: &mut Vec<Job>, write: &Write, published: &mut Vec<Stored>, term: i64) {
    match write {
        Write::PutKey(k) => {
            // A key put again is its rate changed.
            exec(jobs,
                "INSERT INTO slotgate_keys (id, org, name, role, hash, created_at, rate_per_s) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET rate_per_s = excluded.rate_per_s",
                params![k.id, k.org.as_str(), k.name, k.role.as_str(), &k.hash[..], &rows::ms(k.created_at), &k.rate_per_s.map(i64::from)],
            );
        }
        Write::DeleteKey { id } => {
            exec(jobs, "DELETE FROM slotgate_keys WHERE id = $1", params![id]);
        }
        Write::OrgRate { org, rate_per_s } => match rate_per_s {
            Some(rate) => exec(
                jobs,
                "INSERT INTO slotgate_org_rates (org, rate_per_s) VALUES ($1, $2)
                 ON CONFLICT (org) DO UPDATE SET rate_per_s = excluded.rate_per_s",
                params![org, (i64::from(*rate))],
            ),
            None => exec(
                jobs,
                "DELETE FROM slotgate_org_rates WHERE org = $1",
                params![org],
            ),
        },
        Write::Import(_) => unreachable!("imports run on their own (commit)"),
        Write::Resign => {
            exec(jobs,
                "UPDATE slotgate_leader SET holder = '', renewed_at = 'epoch' WHERE id = 1 AND term = $1",
                params![term],
            );
        }
        Write::Plan(plan) => {
            let p = &plan.plan;
            if plan.deleted {
                exec(
                    jobs,
                    "DELETE FROM slotgate_plans WHERE id = $1",
                    params![p.id],
                );
            } else {
                exec(
                    jobs,
                    "INSERT INTO slotgate_plans (id, lim, burst) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET lim = $2, burst = $3",
                    params![p.id, (p.limit as i32), (p.burst as i32)],
                );
            }
            let body = serde_json::to_string(&plan.event).expect("an event renders to JSON");
            exec(
                jobs,
                "INSERT INTO slotgate_plan_events (at, body) VALUES ($1, $2::text::jsonb)",
                params![rows::ms(clock::now()), body],
            );
            apply_events(jobs, &plan.events, published);
        }
        Write::Events(events) => apply_events(jobs, events, published),
    }
}

/// Engine events, in order: the rows they change, and the event log.
fn apply_events(
    jobs: &mut Vec<Job>,
    events: &[(Event, Option<String>)],
    published: &mut Vec<Stored>,
) {
    {
        {
            for (e, by) in events {
                apply_event(jobs, e);
                let body = serde_json::to_string(&e.to_api(by.as_deref()))
                    .expect("an event renders to JSON");
                exec(jobs,
                    "INSERT INTO slotgate_events (org, seq, at, body) VALUES ($1, $2, $3, $4::text::jsonb)",
                    params![e.org.as_str(), (e.seq as i64), rows::ms(e.at), body],
                );
                published.push(Stored {
                    org: e.org.clone(),
                    seq: e.seq,
                });
            }
        }
    }
}

/// The rows of an export.
async fn import(txn: &Transaction<'_>, dump: &Dump) -> Result<(), tokio_postgres::Error> {
    let int = |n: u32| n as i32;
    if let Some(plans) = &dump.plans {
        txn.execute("DELETE FROM slotgate_plans", &[]).await?;
        for p in plans {
            txn.execute(
                "INSERT INTO slotgate_plans (id, lim, burst) VALUES ($1, $2, $3)",
                &[&p.id, &int(p.limit), &int(p.burst)],
            )
            .await?;
        }
    }
    for o in &dump.orgs {
        txn.execute(
            "INSERT INTO slotgate_orgs (id, lim, last_event_seq, burst, plan, limit_from_plan, burst_from_plan)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &o.id,
                &int(o.limit),
                &(o.last_event_seq as i64),
                &int(o.burst),
                &o.plan,
                &o.limit_from_plan,
                &o.burst_from_plan,
            ],
        )
        .await?;
        for c in &o.caps {
            let [w, ch, ob, ib, t] = cap_columns(c);
            txn.execute(
                "INSERT INTO slotgate_caps (org, agent, webcall, chat, outbound, inbound, total) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&o.id, &c.agent, &w, &ch, &ob, &ib, &t],
            )
            .await?;
        }
        for r in &o.reservations {
            txn.execute(
                "INSERT INTO slotgate_reservations (org, agent, webcall, chat, outbound, inbound) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&o.id, &r.agent, &int(r.webcall), &int(r.chat), &int(r.outbound), &int(r.inbound)],
            )
            .await?;
        }
        for (seq, c) in o.queue_seqs() {
            txn.execute(
                "INSERT INTO slotgate_calls (org, id, agent, type, state, slot, queue_seq, queued_at, admitted_at, lease_ttl_ms, max_wait_at, ended_at, end_reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[&o.id, &c.id, &c.agent, &c.call_type, &c.state, &c.slot, &seq, &c.queued_at, &c.admitted_at,
                    &c.lease_ttl_ms, &c.max_wait_at, &c.ended_at, &c.end_reason],
            )
            .await?;
        }
    }
    for k in &dump.keys {
        txn.execute(
            "INSERT INTO slotgate_keys (id, org, name, role, hash, created_at, rate_per_s) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&k.id, &k.org, &k.name, &k.role, &k.hash, &k.created_at, &k.rate_per_s],
        )
        .await?;
    }
    for r in &dump.org_rates {
        txn.execute(
            "INSERT INTO slotgate_org_rates (org, rate_per_s) VALUES ($1, $2)",
            &[&r.org, &i64::from(r.rate_per_s)],
        )
        .await?;
    }
    Ok(())
}

/// The rows an event changes.
fn apply_event(jobs: &mut Vec<Job>, e: &Event) {
    let org = e.org.as_str();
    match &e.kind {
        EventKind::OrgCreated { limit } => {
            exec(
                jobs,
                "INSERT INTO slotgate_orgs (id, lim, last_event_seq) VALUES ($1, $2, 0)",
                params![org, (*limit as i32)],
            );
        }
        EventKind::LimitChanged { new, .. } => {
            exec(
                jobs,
                "UPDATE slotgate_orgs SET lim = $2 WHERE id = $1",
                params![org, (*new as i32)],
            );
        }
        EventKind::BurstChanged { new, .. } => {
            exec(
                jobs,
                "UPDATE slotgate_orgs SET burst = $2 WHERE id = $1",
                params![org, (*new as i32)],
            );
        }
        EventKind::PlanChanged { new, .. } => {
            exec(
                jobs,
                "UPDATE slotgate_orgs SET plan = $2, limit_from_plan = $3, burst_from_plan = $4 WHERE id = $1",
                params![
                    org,
                    new.plan.as_ref().map(|p| p.to_string()),
                    (new.limit_source == Source::Plan),
                    (new.burst_source == Source::Plan)
                ],
            );
        }
        EventKind::CapsChanged { agent, new, .. } => {
            if new.is_empty() {
                exec(
                    jobs,
                    "DELETE FROM slotgate_caps WHERE org = $1 AND agent = $2",
                    params![org, agent.as_str()],
                );
            } else {
                let [w, c, o, i, t] = cap_columns(&CapRow::new(agent, new));
                exec(jobs,
                    "INSERT INTO slotgate_caps (org, agent, webcall, chat, outbound, inbound, total)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (org, agent) DO UPDATE SET webcall = $3, chat = $4, outbound = $5, inbound = $6, total = $7",
                    params![org, agent.as_str(), w, c, o, i, t],
                );
            }
        }
        EventKind::ReservationsChanged { agent, new, .. } => {
            if new.total() == 0 {
                exec(
                    jobs,
                    "DELETE FROM slotgate_reservations WHERE org = $1 AND agent = $2",
                    params![org, agent.as_str()],
                );
            } else {
                let [w, c, o, i] =
                    [new.webcall, new.chat, new.outbound, new.inbound].map(|n| n as i32);
                exec(jobs,
                    "INSERT INTO slotgate_reservations (org, agent, webcall, chat, outbound, inbound)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (org, agent) DO UPDATE SET webcall = $3, chat = $4, outbound = $5, inbound = $6",
                    params![org, agent.as_str(), w, c, o, i],
                );
            }
        }
        EventKind::CallQueued {
            call,
            agent,
            call_type,
            lease_ttl_ms,
            max_wait_expires_at,
            ..
        } => {
            exec(jobs,
                // An id may come back once its ended call has left the engine's
                // retention window; the old row is then replaced whole.
                "INSERT INTO slotgate_calls (org, id, agent, type, state, queue_seq, queued_at, lease_ttl_ms, max_wait_at)
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8)
                 ON CONFLICT (org, id) DO UPDATE SET agent = $3, type = $4, state = 'queued', slot = NULL,
                     queue_seq = $5, queued_at = $6, admitted_at = NULL, lease_ttl_ms = $7, max_wait_at = $8,
                     ended_at = NULL, end_reason = NULL",
                params![org, call.as_str(), agent.as_str(), call_type.as_str(), (e.seq as i64), rows::ms(e.at), (*lease_ttl_ms as i64), max_wait_expires_at.map(rows::ms)],
            );
        }
        EventKind::CallAdmitted {
            call,
            agent,
            call_type,
            slot,
            lease_ttl_ms,
            ..
        } => {
            exec(jobs,
                "INSERT INTO slotgate_calls (org, id, agent, type, state, slot, admitted_at, lease_ttl_ms)
                 VALUES ($1, $2, $3, $4, 'active', $5, $6, $7)
                 ON CONFLICT (org, id) DO UPDATE SET state = 'active', slot = $5, admitted_at = $6,
                     agent = $3, type = $4, lease_ttl_ms = $7, ended_at = NULL, end_reason = NULL,
                     queued_at = CASE slotgate_calls.state WHEN 'queued' THEN slotgate_calls.queued_at END,
                     queue_seq = CASE slotgate_calls.state WHEN 'queued' THEN slotgate_calls.queue_seq END",
                params![org, call.as_str(), agent.as_str(), call_type.as_str(), slot.as_str(), rows::ms(e.at), (*lease_ttl_ms as i64)],
            );
        }
        EventKind::CallLeaseChanged {
            call, lease_ttl_ms, ..
        } => {
            exec(
                jobs,
                "UPDATE slotgate_calls SET lease_ttl_ms = $3 WHERE org = $1 AND id = $2",
                params![org, call.as_str(), (*lease_ttl_ms as i64)],
            );
        }
        EventKind::CallEnded { call, reason, .. } => {
            exec(jobs,
                "UPDATE slotgate_calls SET state = 'ended', ended_at = $3, end_reason = $4 WHERE org = $1 AND id = $2",
                params![org, call.as_str(), rows::ms(e.at), reason.as_str()],
            );
        }
        _ => {}
    }
}

/// An agent's caps as `integer` columns: webcall, chat, outbound, inbound, total.
fn cap_columns(c: &CapRow) -> [Option<i32>; 5] {
    [c.webcall, c.chat, c.outbound, c.inbound, c.total].map(|n| n.map(|n| n as i32))
}

/// What `slotgate export` reads: the database at `url`, without changing it
/// (a server may be running on it).
pub async fn dump_url(url: &str) -> Result<Dump, StoreError> {
    let mut conn = connect(url).await?;
    let has_schema: bool = conn
        .query_one("SELECT to_regclass('slotgate_schema') IS NOT NULL", &[])
        .await
        .map_err(err)?
        .get(0);
    let version: Option<i32> = match has_schema {
        false => None,
        true => conn
            .query_one("SELECT max(version) FROM slotgate_schema", &[])
            .await
            .map_err(err)?
            .get(0),
    };
    match version {
        None => Err(StoreError("no slotgate schema in this database".into())),
        Some(v) if v > LATEST => Err(err(MigrateError::Newer {
            found: v,
            known: LATEST,
        })),
        Some(_) => dump(&mut conn, None).await.map_err(err),
    }
}

/// Everything but the event log, read in one repeatable-read transaction: a
/// consistent snapshot even while a server writes.
async fn dump(
    conn: &mut Client,
    ended_since: Option<Timestamp>,
) -> Result<Dump, tokio_postgres::Error> {
    let txn = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut dump = Dump {
        format: rows::DUMP_FORMAT.into(),
        ..Dump::default()
    };
    let orgs = txn
        .query(
            "SELECT id, lim, last_event_seq, burst, plan, limit_from_plan, burst_from_plan FROM slotgate_orgs ORDER BY id",
            &[],
        )
        .await?;
    let reservations_sql = "SELECT agent, webcall, chat, outbound, inbound FROM slotgate_reservations WHERE org = $1 ORDER BY agent";
    let caps_sql = "SELECT agent, webcall, chat, outbound, inbound, total FROM slotgate_caps WHERE org = $1 ORDER BY agent";
    let calls_sql = format!(
        "SELECT {} FROM slotgate_calls WHERE {} ORDER BY {}",
        rows::CALL_COLUMNS,
        rows::CALLS_KEPT,
        rows::CALL_ORDER
    );
    let bound = rows::ended_bound(ended_since);
    let count = |r: &Row, i| r.get::<_, i32>(i).max(0) as u32;
    for org in &orgs {
        let id: String = org.get(0);
        let reservations = txn
            .query(reservations_sql, &[&id])
            .await?
            .iter()
            .map(|r| ReservationRow {
                agent: r.get(0),
                webcall: count(r, 1),
                chat: count(r, 2),
                outbound: count(r, 3),
                inbound: count(r, 4),
            })
            .collect();
        let cap = |r: &Row, i| r.get::<_, Option<i32>>(i).map(|n| n.max(0) as u32);
        let caps = txn
            .query(caps_sql, &[&id])
            .await?
            .iter()
            .map(|r| CapRow {
                agent: r.get(0),
                webcall: cap(r, 1),
                chat: cap(r, 2),
                outbound: cap(r, 3),
                inbound: cap(r, 4),
                total: cap(r, 5),
            })
            .collect();
        let calls = txn.query(&calls_sql, &[&id, &bound]).await?;
        dump.orgs.push(OrgRows {
            limit: count(org, 1),
            last_event_seq: org.get::<_, i64>(2).max(0) as u64,
            burst: count(org, 3),
            plan: org.get(4),
            limit_from_plan: org.get(5),
            burst_from_plan: org.get(6),
            reservations,
            caps,
            calls: calls.iter().map(call_row).collect(),
            id,
        });
    }
    let keys_sql = format!(
        "SELECT {} FROM slotgate_keys ORDER BY id",
        rows::KEY_COLUMNS
    );
    dump.keys = txn
        .query(&keys_sql, &[])
        .await?
        .iter()
        .map(|r| KeyRow {
            id: r.get(0),
            org: r.get(1),
            name: r.get(2),
            role: r.get(3),
            hash: r.get(4),
            created_at: r.get(5),
            rate_per_s: r.get(6),
        })
        .collect();
    dump.org_rates = txn
        .query(
            "SELECT org, rate_per_s FROM slotgate_org_rates ORDER BY org",
            &[],
        )
        .await?
        .iter()
        .map(|r| OrgRateRow {
            org: r.get(0),
            rate_per_s: u32::try_from(r.get::<_, i64>(1)).unwrap_or(u32::MAX),
        })
        .collect();
    dump.plans = Some(
        txn.query("SELECT id, lim, burst FROM slotgate_plans ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| rows::PlanRow {
                id: r.get(0),
                limit: count(r, 1),
                burst: count(r, 2),
            })
            .collect(),
    );
    txn.commit().await?;
    Ok(dump)
}

fn call_row(r: &Row) -> CallRow {
    CallRow {
        id: r.get(0),
        agent: r.get(1),
        call_type: r.get(2),
        state: r.get(3),
        slot: r.get(4),
        queued_at: r.get(5),
        admitted_at: r.get(6),
        lease_ttl_ms: r.get(7),
        max_wait_at: r.get(8),
        ended_at: r.get(9),
        end_reason: r.get(10),
    }
}
