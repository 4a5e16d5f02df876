//! The embedded store: one SQLite file in the data directory, written with group commit.
//!
//! A single writer thread owns the write connection and commits with group
//! commit (`group_commit.rs`): everything waiting in one transaction, one
//! commit (WAL, `synchronous=FULL`: one fsync). So concurrent requests share
//! one fsync, and a request answers once its ticket is durable.
//! Reads (start-up, the events API) use their own connection. The schema
//! has numbered migrations (`sqlite/migrate.rs`), applied at start.

mod migrate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use slotgate_core::{EventKind, RestoredCall, Source, Timestamp};
use slotgate_plan::CallRecord;

use super::group_commit::{self, newest_seqs, Tickets, Writer};
use super::rows::{
    self, ms, CallRow, CapRow, Dump, KeyRow, OrgRateRow, OrgRows, ReservationRow, TrafficRow,
};
use super::usage_rows::{self, Book, Seed, StoredUsage};
use super::write_loop::{write_loop, Backend};
use super::{Retention, Store, StoreError, Stored, Write};
use crate::clock;

pub use migrate::{migrate, MigrateError, Migrated, LATEST, MIGRATIONS};

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    reader: Arc<Mutex<Connection>>,
    retention: Retention,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) `DIR/slotgate.db`, migrates its schema
    /// (refusing one newer than this binary knows) and starts the writer
    /// thread; the group-commit front to write through.
    pub fn open(dir: &Path, retention: Retention) -> Result<(Self, Tickets), StoreError> {
        let path = dir.join("slotgate.db");
        // Created 0600 here, so SQLite's journal files (which take the
        // database's mode) are private too.
        crate::private_files::options()
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| err(format!("creating {}: {e}", path.display())))?;
        let mut writer = open(&path).map_err(err)?;
        migrate(&mut writer, dir).map_err(err)?;
        let reader = open(&path).map_err(err)?;
        let (tickets, write) = group_commit::channel();
        let backend = SqliteWriter {
            conn: writer,
            book: Book::default(),
            retention,
            failed: false,
        };
        // Its own thread, with a runtime of its own: SQLite blocks.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(err)?;
        std::thread::Builder::new()
            .name("slotgate-store".into())
            .spawn(move || runtime.block_on(write_loop(backend, write)))
            .map_err(err)?;
        let store = SqliteStore {
            path,
            reader: Arc::new(Mutex::new(reader)),
            retention,
        };
        Ok((store, tickets))
    }

    /// The read connection.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader
            .lock()
            .expect("the reader lock is never poisoned: no panics under it")
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for SqliteStore {
    fn dump(&self, ended_since: Option<Timestamp>) -> Result<Dump, StoreError> {
        dump(&mut self.reader(), ended_since).map_err(err)
    }

    fn ended_call(&self, org: &str, id: &str) -> Result<Option<RestoredCall>, StoreError> {
        let sql = format!(
            "SELECT {} FROM calls WHERE org = ?1 AND id = ?2",
            rows::CALL_COLUMNS
        );
        let conn = self.reader();
        let row = conn
            .prepare_cached(&sql)
            .and_then(|mut q| q.query_row([org, id], call_row).optional())
            .map_err(err)?;
        rows::kept_ended(row, self.retention)
    }

    fn ended_ids(&self) -> Result<Vec<super::EndedId>, StoreError> {
        let sql = "SELECT org, id, ended_at FROM calls WHERE state = 'ended' AND ended_at > ?1";
        let conn = self.reader();
        let mut q = conn.prepare(sql).map_err(err)?;
        let found = q.query_map([rows::kept_after(self.retention)], |r| {
            Ok(rows::ended_id((r.get(0)?, r.get(1)?, r.get(2)?)))
        });
        found.and_then(Iterator::collect).map_err(err)
    }

    fn ended_retention(&self) -> std::time::Duration {
        self.retention.ended_calls
    }

    fn last_event(&self, org: &str) -> Result<u64, StoreError> {
        let conn = self.reader();
        conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE org = ?1",
            [org],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(err)
    }

    fn calls_complete_since(&self, org: &str, now: Timestamp) -> Result<Timestamp, StoreError> {
        let kept = now
            .as_millis()
            .saturating_sub(self.retention.ended_calls.as_millis() as u64);
        let created: Option<i64> = self
            .reader()
            .query_row(
                "SELECT MIN(at) FROM events WHERE org = ?1 AND seq = 1",
                [org],
                |r| r.get(0),
            )
            .map_err(err)?;
        let created = created.map_or(0, |t| t.max(0) as u64);
        Ok(Timestamp::from_millis(kept.max(created)))
    }

    fn calls_since(&self, org: &str, since: Timestamp) -> Result<Vec<CallRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {} FROM calls WHERE org = ?1 AND COALESCE(queued_at, admitted_at) >= ?2",
                rows::TRAFFIC_COLUMNS
            ))
            .map_err(err)?;
        let found = stmt
            .query_map(params![org, ms(since)], |r| {
                TrafficRow {
                    agent: r.get(0)?,
                    call_type: r.get(1)?,
                    arrived_at: r.get(2)?,
                    admitted_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    end_reason: r.get(5)?,
                }
                .record()
                .map_err(bad)
            })
            .map_err(err)?;
        found.collect::<rusqlite::Result<_>>().map_err(err)
    }

    fn usage(&self, org: &str, from_ms: u64, to_ms: u64) -> Result<StoredUsage, StoreError> {
        let conn = self.reader();
        let rows = conn
            .prepare_cached(
                "SELECT body FROM usage WHERE org = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
            )
            .and_then(|mut q| {
                q.query_map(params![org, from_ms as i64, to_ms as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(err)?;
        let latest = conn
            .prepare_cached("SELECT body FROM usage WHERE org = ?1 ORDER BY hour DESC LIMIT 1")
            .and_then(|mut q| q.query_row([org], |r| r.get(0)).optional())
            .map_err(err)?;
        Ok(usage_rows::parse(rows, latest))
    }

    fn plan_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<slotgate_api::PlanEvent>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, body FROM plan_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![after as i64, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(err)?;
        rows.map(|r| {
            let (seq, body) = r.map_err(err)?;
            rows::plan_event(seq, &body).map_err(err)
        })
        .collect()
    }

    fn events(
        &self,
        org: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<slotgate_api::Event>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT body FROM events WHERE org = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![org, after as i64, limit as i64], |r| {
                r.get::<_, String>(0)
            })
            .map_err(err)?;
        rows.map(|r| {
            let body = r.map_err(err)?;
            serde_json::from_str(&body).map_err(err)
        })
        .collect()
    }
}

/// The writer's side of the store, for the write loop (`write_loop.rs`),
/// on a thread of its own: one transaction and one fsync per batch. It
/// stops at the first failure (the server then answers 503 until
/// restarted).
struct SqliteWriter {
    conn: Connection,
    book: Book,
    retention: Retention,
    /// Whether a commit failed: nothing more is committed.
    failed: bool,
}

impl Backend for SqliteWriter {
    async fn ready(&mut self, _: &mut Writer) -> bool {
        !self.failed
    }

    async fn commit(&mut self, batch: &[(u64, Write)]) -> Result<Vec<Stored>, StoreError> {
        commit(&mut self.conn, batch, &mut self.book)
    }

    /// Nothing to check: the file is there.
    async fn idle(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge(&mut self, _: &Writer) {
        if let Err(e) = purge(&self.conn, self.retention) {
            tracing::warn!(error = %e, "purging old calls and events failed");
        }
    }

    fn failed(&mut self) {
        self.failed = true;
    }

    /// One server leads nothing: it goes on (the server shuts down).
    fn resigned(&mut self) -> bool {
        false
    }
}

/// Applies a batch of writes in one transaction, with the usage hours its
/// events change; the events it stored.
fn commit(
    conn: &mut Connection,
    batch: &[(u64, Write)],
    book: &mut Book,
) -> Result<Vec<Stored>, StoreError> {
    let txn = conn.transaction().map_err(err)?;
    for org in book.unseeded(batch) {
        let seed = usage_seed(&txn, &org).map_err(err)?;
        book.seed(org, seed);
    }
    let mut published = Vec::new();
    for (_, write) in batch {
        apply(&txn, write, &mut published).map_err(err)?;
    }
    if batch.iter().any(|(_, w)| matches!(w, Write::Import(_))) {
        book.clear();
    }
    for (org, hour, body) in book.apply(batch) {
        exec(
            &txn,
            "INSERT INTO usage (org, hour, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (org, hour) DO UPDATE SET body = excluded.body",
            params![org, hour, body],
        )
        .map_err(err)?;
    }
    for (org, seq) in newest_seqs(&published) {
        exec(
            &txn,
            "UPDATE orgs SET last_event_seq = ?2 WHERE id = ?1",
            params![org, seq as i64],
        )
        .map_err(err)?;
    }
    txn.commit().map_err(err)?;
    Ok(published)
}

/// What the usage figures of `org` continue from (usage_rows.rs).
fn usage_seed(txn: &Transaction<'_>, org: &str) -> rusqlite::Result<Seed> {
    let limit = txn
        .prepare_cached("SELECT lim FROM orgs WHERE id = ?1")?
        .query_row([org], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let calls = txn
        .prepare_cached(
            "SELECT id, type, state FROM calls WHERE org = ?1 AND state IN ('queued', 'active')",
        )?
        .query_map([org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let latest = txn
        .prepare_cached("SELECT body FROM usage WHERE org = ?1 ORDER BY hour DESC LIMIT 1")?
        .query_row([org], |r| r.get(0))
        .optional()?;
    Ok(Seed {
        limit,
        calls,
        latest,
    })
}

fn purge(conn: &Connection, retention: Retention) -> rusqlite::Result<()> {
    let now = ms(clock::now());
    conn.execute(
        "DELETE FROM usage WHERE hour < ?1",
        [now - retention.usage.as_millis() as i64],
    )?;
    conn.execute(
        "DELETE FROM calls WHERE state = 'ended' AND ended_at < ?1",
        [now - retention.ended_calls.as_millis() as i64],
    )?;
    conn.execute(
        "DELETE FROM events WHERE at < ?1",
        [now - retention.events.as_millis() as i64],
    )?;
    Ok(())
}

/// Runs one statement, parsed once per connection and then cached.
fn exec(
    txn: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    txn.prepare_cached(sql)?.execute(params)
}

fn apply(
    txn: &Transaction<'_>,
    write: &Write,
    published: &mut Vec<Stored>,
) -> rusqlite::Result<()> {
    match write {
        Write::PutKey(k) => {
            // A key put again is its rate changed.
            exec(txn,
                "INSERT INTO keys (id, org, name, role, hash, created_at, rate_per_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET rate_per_s = excluded.rate_per_s",
                params![k.id, k.org.as_str(), k.name, k.role.as_str(), &k.hash[..], ms(k.created_at), k.rate_per_s],
            )?;
        }
        Write::DeleteKey { id } => {
            exec(txn, "DELETE FROM keys WHERE id = ?1", [id])?;
        }
        Write::OrgRate { org, rate_per_s } => match rate_per_s {
            Some(rate) => {
                exec(
                    txn,
                    "INSERT INTO org_rates (org, rate_per_s) VALUES (?1, ?2)
                     ON CONFLICT (org) DO UPDATE SET rate_per_s = excluded.rate_per_s",
                    params![org, rate],
                )?;
            }
            None => {
                exec(txn, "DELETE FROM org_rates WHERE org = ?1", [org])?;
            }
        },
        Write::Import(dump) => import(txn, dump)?,
        Write::Resign => {}
        Write::Plan(plan) => {
            let p = &plan.plan;
            if plan.deleted {
                exec(txn, "DELETE FROM plans WHERE id = ?1", [&p.id])?;
            } else {
                exec(
                    txn,
                    "INSERT INTO plans (id, lim, burst) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET lim = ?2, burst = ?3",
                    params![p.id, p.limit, p.burst],
                )?;
            }
            let body = serde_json::to_string(&plan.event).expect("an event renders to JSON");
            exec(
                txn,
                "INSERT INTO plan_events (at, body) VALUES (?1, ?2)",
                params![ms(clock::now()), body],
            )?;
            apply_events(txn, &plan.events, published)?;
        }
        Write::Events(events) => apply_events(txn, events, published)?,
    }
    Ok(())
}

/// Engine events, in order: the rows they change, and the event log.
fn apply_events(
    txn: &Transaction<'_>,
    events: &[(slotgate_core::Event, Option<String>)],
    published: &mut Vec<Stored>,
) -> rusqlite::Result<()> {
    {
        {
            for (e, by) in events {
                apply_event(txn, e)?;
                let body = serde_json::to_string(&e.to_api(by.as_deref()))
                    .expect("an event renders to JSON");
                exec(
                    txn,
                    "INSERT INTO events (org, seq, at, body) VALUES (?1, ?2, ?3, ?4)",
                    params![e.org.as_str(), e.seq as i64, ms(e.at), body],
                )?;
                published.push(Stored {
                    org: e.org.clone(),
                    seq: e.seq,
                });
            }
        }
    }
    Ok(())
}

/// The rows of an export.
fn import(txn: &Transaction<'_>, dump: &Dump) -> rusqlite::Result<()> {
    if let Some(plans) = &dump.plans {
        exec(txn, "DELETE FROM plans", [])?;
        for p in plans {
            exec(
                txn,
                "INSERT INTO plans (id, lim, burst) VALUES (?1, ?2, ?3)",
                params![p.id, p.limit, p.burst],
            )?;
        }
    }
    for o in &dump.orgs {
        exec(
            txn,
            "INSERT INTO orgs (id, lim, last_event_seq, burst, plan, limit_from_plan, burst_from_plan)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![o.id, o.limit, o.last_event_seq as i64, o.burst, o.plan, o.limit_from_plan, o.burst_from_plan],
        )?;
        for r in &o.reservations {
            exec(txn,
                "INSERT INTO reservations (org, agent, webcall, chat, outbound, inbound) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![o.id, r.agent, r.webcall, r.chat, r.outbound, r.inbound],
            )?;
        }
        for c in &o.caps {
            put_caps(txn, &o.id, c)?;
        }
        for (seq, c) in o.queue_seqs() {
            exec(txn,
                "INSERT INTO calls (org, id, agent, type, state, slot, queue_seq, queued_at, admitted_at, lease_ttl_ms, max_wait_at, ended_at, end_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![o.id, c.id, c.agent, c.call_type, c.state, c.slot, seq, c.queued_at, c.admitted_at,
                    c.lease_ttl_ms, c.max_wait_at, c.ended_at, c.end_reason],
            )?;
        }
    }
    for k in &dump.keys {
        exec(txn,
            "INSERT INTO keys (id, org, name, role, hash, created_at, rate_per_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![k.id, k.org, k.name, k.role, k.hash, k.created_at, k.rate_per_s],
        )?;
    }
    for r in &dump.org_rates {
        exec(
            txn,
            "INSERT INTO org_rates (org, rate_per_s) VALUES (?1, ?2)",
            params![r.org, r.rate_per_s],
        )?;
    }
    Ok(())
}

/// The rows an event changes.
fn apply_event(txn: &Transaction<'_>, e: &slotgate_core::Event) -> rusqlite::Result<()> {
    let org = e.org.as_str();
    match &e.kind {
        EventKind::OrgCreated { limit } => {
            exec(
                txn,
                "INSERT INTO orgs (id, lim, last_event_seq) VALUES (?1, ?2, 0)",
                params![org, limit],
            )?;
        }
        EventKind::LimitChanged { new, .. } => {
            exec(
                txn,
                "UPDATE orgs SET lim = ?2 WHERE id = ?1",
                params![org, new],
            )?;
        }
        EventKind::BurstChanged { new, .. } => {
            exec(
                txn,
                "UPDATE orgs SET burst = ?2 WHERE id = ?1",
                params![org, new],
            )?;
        }
        EventKind::PlanChanged { new, .. } => {
            exec(
                txn,
                "UPDATE orgs SET plan = ?2, limit_from_plan = ?3, burst_from_plan = ?4 WHERE id = ?1",
                params![
                    org,
                    new.plan.as_ref().map(|p| p.as_str()),
                    new.limit_source == Source::Plan,
                    new.burst_source == Source::Plan
                ],
            )?;
        }
        EventKind::CapsChanged { agent, new, .. } => {
            if new.is_empty() {
                exec(
                    txn,
                    "DELETE FROM caps WHERE org = ?1 AND agent = ?2",
                    params![org, agent.as_str()],
                )?;
            } else {
                put_caps(txn, org, &CapRow::new(agent, new))?;
            }
        }
        EventKind::ReservationsChanged { agent, new, .. } => {
            if new.total() == 0 {
                exec(
                    txn,
                    "DELETE FROM reservations WHERE org = ?1 AND agent = ?2",
                    params![org, agent.as_str()],
                )?;
            } else {
                exec(txn,
                    "INSERT INTO reservations (org, agent, webcall, chat, outbound, inbound)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (org, agent) DO UPDATE SET webcall = ?3, chat = ?4, outbound = ?5, inbound = ?6",
                    params![org, agent.as_str(), new.webcall, new.chat, new.outbound, new.inbound],
                )?;
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
            exec(txn,
                // An id may come back once its ended call has left the engine's
                // retention window; the old row is then replaced whole.
                "INSERT INTO calls (org, id, agent, type, state, queue_seq, queued_at, lease_ttl_ms, max_wait_at)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8)
                 ON CONFLICT (org, id) DO UPDATE SET agent = ?3, type = ?4, state = 'queued', slot = NULL,
                     queue_seq = ?5, queued_at = ?6, admitted_at = NULL, lease_ttl_ms = ?7, max_wait_at = ?8,
                     ended_at = NULL, end_reason = NULL",
                params![
                    org,
                    call.as_str(),
                    agent.as_str(),
                    call_type.as_str(),
                    e.seq as i64,
                    ms(e.at),
                    *lease_ttl_ms as i64,
                    max_wait_expires_at.map(ms)
                ],
            )?;
        }
        EventKind::CallAdmitted {
            call,
            agent,
            call_type,
            slot,
            lease_ttl_ms,
            ..
        } => {
            exec(
                txn,
                "INSERT INTO calls (org, id, agent, type, state, slot, admitted_at, lease_ttl_ms)
                 VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?7)
                 ON CONFLICT (org, id) DO UPDATE SET state = 'active', slot = ?5, admitted_at = ?6,
                     agent = ?3, type = ?4, lease_ttl_ms = ?7, ended_at = NULL, end_reason = NULL,
                     queued_at = CASE calls.state WHEN 'queued' THEN calls.queued_at END,
                     queue_seq = CASE calls.state WHEN 'queued' THEN calls.queue_seq END",
                params![
                    org,
                    call.as_str(),
                    agent.as_str(),
                    call_type.as_str(),
                    slot.as_str(),
                    ms(e.at),
                    *lease_ttl_ms as i64
                ],
            )?;
        }
        EventKind::CallLeaseChanged {
            call, lease_ttl_ms, ..
        } => {
            exec(
                txn,
                "UPDATE calls SET lease_ttl_ms = ?3 WHERE org = ?1 AND id = ?2",
                params![org, call.as_str(), *lease_ttl_ms as i64],
            )?;
        }
        EventKind::CallEnded { call, reason, .. } => {
            exec(txn,
                "UPDATE calls SET state = 'ended', ended_at = ?3, end_reason = ?4 WHERE org = ?1 AND id = ?2",
                params![org, call.as_str(), ms(e.at), reason.as_str()],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// Writes an agent's caps row, replacing the one it had.
fn put_caps(txn: &Transaction<'_>, org: &str, c: &CapRow) -> rusqlite::Result<()> {
    exec(txn,
        "INSERT INTO caps (org, agent, webcall, chat, outbound, inbound, total) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (org, agent) DO UPDATE SET webcall = ?3, chat = ?4, outbound = ?5, inbound = ?6, total = ?7",
        params![org, c.agent, c.webcall, c.chat, c.outbound, c.inbound, c.total],
    )?;
    Ok(())
}

fn bad(e: rows::Corrupt) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(e.to_string())
}

/// What `slotgate export` reads: the store in `dir`, opened read-only (a
/// server may be running on it).
pub fn dump_dir(dir: &Path) -> Result<Dump, StoreError> {
    let path = dir.join("slotgate.db");
    if !path.is_file() {
        return Err(StoreError(format!(
            "no slotgate store in {} (no slotgate.db there)",
            dir.display()
        )));
    }
    let mut conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    migrate::version(&conn, dir).map_err(err)?;
    dump(&mut conn, None).map_err(err)
}

/// Everything but the event log, read in one transaction: a consistent
/// snapshot even while the server writes.
fn dump(conn: &mut Connection, ended_since: Option<Timestamp>) -> rusqlite::Result<Dump> {
    let txn = conn.transaction()?;
    let mut dump = Dump {
        format: rows::DUMP_FORMAT.into(),
        ..Dump::default()
    };
    let calls_sql = format!(
        "SELECT {} FROM calls WHERE {} ORDER BY {}",
        rows::CALL_COLUMNS,
        rows::CALLS_KEPT,
        rows::CALL_ORDER
    );
    let bound = rows::ended_bound(ended_since);
    let orgs = txn
        .prepare("SELECT id, lim, last_event_seq, burst, plan, limit_from_plan, burst_from_plan FROM orgs ORDER BY id")?
        .query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                (r.get(4)?, r.get(5)?, r.get(6)?),
            ))
        })?
        .collect::<rusqlite::Result<Vec<((String, u32, i64, u32), (Option<String>, bool, bool))>>>()?;
    for ((id, limit, last, burst), (plan, limit_from_plan, burst_from_plan)) in orgs {
        let reservations = txn
            .prepare_cached(
                "SELECT agent, webcall, chat, outbound, inbound FROM reservations WHERE org = ?1 ORDER BY agent",
            )?
            .query_map([&id], |r| {
                Ok(ReservationRow {
                    agent: r.get(0)?,
                    webcall: r.get(1)?,
                    chat: r.get(2)?,
                    outbound: r.get(3)?,
                    inbound: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let caps = txn
            .prepare_cached(
                "SELECT agent, webcall, chat, outbound, inbound, total FROM caps WHERE org = ?1 ORDER BY agent",
            )?
            .query_map([&id], |r| {
                Ok(CapRow {
                    agent: r.get(0)?,
                    webcall: r.get(1)?,
                    chat: r.get(2)?,
                    outbound: r.get(3)?,
                    inbound: r.get(4)?,
                    total: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let calls = txn
            .prepare_cached(&calls_sql)?
            .query_map(rusqlite::params![&id, bound], call_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        dump.orgs.push(OrgRows {
            id,
            limit,
            last_event_seq: last.max(0) as u64,
            burst,
            plan,
            limit_from_plan,
            burst_from_plan,
            reservations,
            caps,
            calls,
        });
    }
    dump.keys = txn
        .prepare(&format!(
            "SELECT {} FROM keys ORDER BY id",
            rows::KEY_COLUMNS
        ))?
        .query_map([], |r| {
            Ok(KeyRow {
                id: r.get(0)?,
                org: r.get(1)?,
                name: r.get(2)?,
                role: r.get(3)?,
                hash: r.get(4)?,
                created_at: r.get(5)?,
                rate_per_s: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    dump.org_rates = txn
        .prepare("SELECT org, rate_per_s FROM org_rates ORDER BY org")?
        .query_map([], |r| {
            Ok(OrgRateRow {
                org: r.get(0)?,
                rate_per_s: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    dump.plans = Some(
        txn.prepare("SELECT id, lim, burst FROM plans ORDER BY id")?
            .query_map([], |r| {
                Ok(rows::PlanRow {
                    id: r.get(0)?,
                    limit: r.get(1)?,
                    burst: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    );
    Ok(dump)
}

/// A call's row, as [`rows::CALL_COLUMNS`] selects it.
fn call_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRow> {
    Ok(CallRow {
        id: r.get(0)?,
        agent: r.get(1)?,
        call_type: r.get(2)?,
        state: r.get(3)?,
        slot: r.get(4)?,
        queued_at: r.get(5)?,
        admitted_at: r.get(6)?,
        lease_ttl_ms: r.get(7)?,
        max_wait_at: r.get(8)?,
        ended_at: r.get(9)?,
        end_reason: r.get(10)?,
    })
}
