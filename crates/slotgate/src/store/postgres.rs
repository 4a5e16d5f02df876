//! The PostgreSQL store (`slotgate serve --store postgres://...`), written
//! with group commit like the embedded store.
//!
//! A writer task owns one connection and commits with group commit
//! (`group_commit.rs`): everything waiting in one transaction, one commit; a
//! request answers only once its change is committed in PostgreSQL. Reads (start-up, the events API, observed traffic) use a
//! second connection; they run on the blocking threads, which wait for them
//! on the runtime.
//!
//! This step serves one replica per database: the writer's connection holds
//! a session advisory lock ([`REPLICA_LOCK`]) for as long as the server runs,
//! and a second server on the same database refuses to start. Several
//! replicas on one database (each change under its org's row lock, the
//! engine catching up with the log) are the next step of issue 10.

mod migrate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotgate_core::{Event, EventKind, Timestamp};
use slotgate_plan::CallRecord;
use tokio::runtime::Handle;
use tokio::sync::{broadcast, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};

pub use migrate::{migrate, MigrateError, Migrated, LATEST, MIGRATIONS, MIGRATION_LOCK};

use super::group_commit::{self, last_ticket, newest_seqs, Tickets, Writer};
use super::rows::{self, CallRow, Dump, KeyRow, OrgRows, ReservationRow, TrafficRow};
use super::{Durable, Health, Retention, Store, StoreError, Stored, Write};
use crate::clock;

/// A statement's parameters, owned: `params![org, seq as i64]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new(($p).to_owned()) as Owned),*]
    };
}

/// The session advisory lock the serving replica holds: "slotgate" + 1.
pub const REPLICA_LOCK: i64 = MIGRATION_LOCK + 1;

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PostgresStore {
    tickets: Tickets,
    /// Where the database is, to connect again after a failure.
    url: String,
    /// The connection reads use; opened again when lost.
    reader: Mutex<Arc<Client>>,
    runtime: Handle,
    retention: Retention,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Connects to `url` and drives the connection on a task of its own.
async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| StoreError(format!("connecting to PostgreSQL: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// How long the writer waits for writes before it checks its connection.
const IDLE: Duration = Duration::from_secs(1);

/// How long the idle check may take before the database counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a batch's transaction may take before the database counts as down.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `work`, or a failure if it takes longer than `limit`.
async fn within<T>(
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
const RETRY: Duration = Duration::from_millis(500);

/// The writer's connection: migrated, and holding the replica lock.
async fn open_writer(url: &str) -> Result<Client, StoreError> {
    let mut writer = connect(url).await?;
    migrate(&mut writer).await.map_err(err)?;
    let locked: bool = writer
        .query_one("SELECT pg_try_advisory_lock($1)", &[&REPLICA_LOCK])
        .await
        .map_err(err)?
        .get(0);
    sync_clock(&writer).await.map_err(err)?;
    if !locked {
        return Err(StoreError(
            "another slotgate serves this database; for now one server per database \
             (several replicas on one database come with issue 10's next step)"
                .into(),
        ));
    }
    Ok(writer)
}

impl PostgresStore {
    /// Connects to `url`, migrates the schema, takes the replica lock and
    /// starts the writer task.
    pub async fn open(url: &str, retention: Retention) -> Result<Self, StoreError> {
        let writer = open_writer(url).await?;
        let reader = connect(url).await?;
        let (tickets, write) = group_commit::channel();
        tokio::spawn(write_loop(url.to_string(), writer, write, retention));
        Ok(PostgresStore {
            tickets,
            url: url.to_string(),
            reader: Mutex::new(Arc::new(reader)),
            runtime: Handle::current(),
            retention,
        })
    }

    /// Runs a read on the runtime and waits for it (on a blocking thread).
    fn read<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.runtime.block_on(f)
    }

    /// The read connection, opened again if it was lost.
    fn reader(&self) -> Result<Arc<Client>, StoreError> {
        let current = self.reader.lock().expect("never poisoned").clone();
        if !current.is_closed() {
            return Ok(current);
        }
        let fresh = Arc::new(self.read(connect(&self.url))?);
        *self.reader.lock().expect("never poisoned") = fresh.clone();
        Ok(fresh)
    }
}

impl Store for PostgresStore {
    fn dump(&self) -> Result<Dump, StoreError> {
        // Its own connection: a transaction needs one to itself.
        self.read(async {
            let mut conn = connect(&self.url).await?;
            dump(&mut conn).await.map_err(err)
        })
    }

    fn submit(&self, write: Write) -> u64 {
        self.tickets.submit(write)
    }

    fn last_ticket(&self) -> u64 {
        self.tickets.last()
    }

    fn durable(&self, ticket: u64) -> Durable {
        self.tickets.durable(ticket)
    }

    fn subscribe(&self) -> broadcast::Receiver<Stored> {
        self.tickets.subscribe()
    }

    fn health(&self) -> watch::Receiver<Health> {
        self.tickets.health()
    }

    fn resume(&self) {
        self.tickets.resume()
    }

    fn last_event(&self, org: &str) -> Result<u64, StoreError> {
        let reader = self.reader()?;
        self.read(async {
            let row = reader
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

    fn events(
        &self,
        org: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<slotgate_api::Event>, StoreError> {
        let reader = self.reader()?;
        let found = self.read(async {
            reader
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

/// The writer task: batches, one transaction and one commit per batch. When
/// a commit fails, or its connection is found lost while idle, it connects
/// again until it can, then waits for the service to reload and resume.
async fn write_loop(url: String, mut conn: Client, mut writer: Writer, retention: Retention) {
    let mut batch = Vec::new();
    let mut prepared = Prepared::new();
    loop {
        let up = match writer.next_batch(&mut batch, IDLE).await {
            Some(0) => return, // the server is gone
            // Idle: check the connection, and follow the database's clock.
            None => {
                match within(PING_TIMEOUT, async { sync_clock(&conn).await.map_err(err) }).await {
                    Ok(()) => true,
                    Err(e) => writer.finish(0, Err(e)),
                }
            }
            Some(_) if batch.is_empty() => true,
            Some(_) => {
                let last = last_ticket(&batch);
                // A commit that never answers is a failure too: reloading
                // from the database then finds out whether it happened.
                let result = within(COMMIT_TIMEOUT, commit(&mut conn, &mut prepared, &batch)).await;
                batch.clear();
                writer.finish(last, result)
            }
        };
        if !up {
            conn = reconnect(&url, &mut writer).await;
            prepared.clear();
            writer.reconnected().await;
            tracing::info!("the store is back; changes are acknowledged again");
        } else if writer.purge_due() {
            if let Err(e) = purge(&conn, retention).await {
                tracing::warn!(error = %e, "purging old calls and events failed");
            }
        }
    }
}

/// Reads the database's clock, and makes it the server's ([`clock::follow`]).
async fn sync_clock(conn: &Client) -> Result<(), tokio_postgres::Error> {
    let sent = clock::system_ms();
    let row = conn
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .await?;
    clock::follow(row.get(0), sent, clock::system_ms());
    Ok(())
}

/// Connects the writer again, as soon as the database lets it; meanwhile
/// every write submitted fails.
async fn reconnect(url: &str, writer: &mut Writer) -> Client {
    loop {
        writer.drop_waiting();
        tokio::time::sleep(RETRY).await;
        match within(PING_TIMEOUT, open_writer(url)).await {
            Ok(conn) => return conn,
            Err(e) => tracing::debug!(error = %e, "the store is still unreachable"),
        }
    }
}

/// Applies a batch of writes in one transaction; the events it stored.
async fn commit(
    conn: &mut Client,
    prepared: &mut Prepared,
    batch: &[(u64, Write)],
) -> Result<Vec<Stored>, StoreError> {
    let txn = conn.transaction().await.map_err(err)?;
    let mut published = Vec::new();
    let mut jobs = Vec::new();
    for (_, write) in batch {
        match write {
            Write::Import(dump) => {
                run(&txn, prepared, &mut jobs).await.map_err(err)?;
                import(&txn, dump).await.map_err(err)?;
            }
            write => apply(&mut jobs, write, &mut published),
        }
    }
    for (org, seq) in newest_seqs(&published) {
        exec(
            &mut jobs,
            "UPDATE slotgate_orgs SET last_event_seq = $2 WHERE id = $1",
            params![org, seq as i64],
        );
    }
    run(&txn, prepared, &mut jobs).await.map_err(err)?;
    txn.commit().await.map_err(err)?;
    Ok(published)
}

async fn purge(conn: &Client, retention: Retention) -> Result<(), tokio_postgres::Error> {
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
async fn run(
    txn: &Transaction<'_>,
    prepared: &mut Prepared,
    jobs: &mut Vec<Job>,
) -> Result<(), tokio_postgres::Error> {
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
    futures_util::future::try_join_all(sent).await?;
    jobs.clear();
    Ok(())
}

fn apply(jobs: &mut Vec<Job>, write: &Write, published: &mut Vec<Stored>) {
    match write {
        Write::PutKey(k) => {
            exec(jobs,
                "INSERT INTO slotgate_keys (id, org, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                params![k.id, k.org.as_str(), k.name, k.role.as_str(), &k.hash[..], &rows::ms(k.created_at)],
            );
        }
        Write::DeleteKey { id } => {
            exec(jobs, "DELETE FROM slotgate_keys WHERE id = $1", params![id]);
        }
        Write::Import(_) => unreachable!("imports run on their own (commit)"),
        Write::Events(events) => {
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
    for o in &dump.orgs {
        txn.execute(
            "INSERT INTO slotgate_orgs (id, lim, last_event_seq) VALUES ($1, $2, $3)",
            &[&o.id, &int(o.limit), &(o.last_event_seq as i64)],
        )
        .await?;
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
            "INSERT INTO slotgate_keys (id, org, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&k.id, &k.org, &k.name, &k.role, &k.hash, &k.created_at],
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
        EventKind::CallEnded { call, reason, .. } => {
            exec(jobs,
                "UPDATE slotgate_calls SET state = 'ended', ended_at = $3, end_reason = $4 WHERE org = $1 AND id = $2",
                params![org, call.as_str(), rows::ms(e.at), reason.as_str()],
            );
        }
        _ => {}
    }
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
        Some(_) => dump(&mut conn).await.map_err(err),
    }
}

/// Everything but the event log, read in one repeatable-read transaction: a
/// consistent snapshot even while a server writes.
async fn dump(conn: &mut Client) -> Result<Dump, tokio_postgres::Error> {
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
            "SELECT id, lim, last_event_seq FROM slotgate_orgs ORDER BY id",
            &[],
        )
        .await?;
    let reservations_sql = "SELECT agent, webcall, chat, outbound, inbound FROM slotgate_reservations WHERE org = $1 ORDER BY agent";
    let calls_sql = format!(
        "SELECT {} FROM slotgate_calls WHERE org = $1 ORDER BY {}",
        rows::CALL_COLUMNS,
        rows::CALL_ORDER
    );
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
        let calls = txn.query(&calls_sql, &[&id]).await?;
        dump.orgs.push(OrgRows {
            limit: count(org, 1),
            last_event_seq: org.get::<_, i64>(2).max(0) as u64,
            reservations,
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
        })
        .collect();
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
