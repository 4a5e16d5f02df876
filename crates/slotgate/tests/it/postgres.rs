//! The PostgreSQL store (issue 10) against a real, throwaway PostgreSQL
//! cluster of each test's own (`support/postgres.rs`): its schema
//! migrations, `slotgate serve --store postgres://...` itself, and that
//! cluster. (Everything the API promises is checked on PostgreSQL by the
//! HTTP and end-to-end tests run with `SLOTGATE_TEST_STORE=postgres`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::pg::{self, PgCluster};
use crate::support::{eventually, Server};
use slotgate::store::postgres::{migrate, MigrateError, Migrated, LATEST};
use slotgate_api::{CallState, CallType, ErrorCode};
use tokio::sync::Barrier;

/// The tables the migrations create, and the migrations' own record.
const TABLES: &[&str] = &[
    "slotgate_calls",
    "slotgate_caps",
    "slotgate_events",
    "slotgate_keys",
    "slotgate_leader",
    "slotgate_org_rates",
    "slotgate_orgs",
    "slotgate_plan_events",
    "slotgate_plans",
    "slotgate_reservations",
    "slotgate_schema",
    "slotgate_usage",
];

/// What migrating a database without slotgate's schema does.
const FRESH: Migrated = Migrated {
    from: 0,
    to: LATEST,
};

/// What migrating an up-to-date database does: nothing.
const UP_TO_DATE: Migrated = Migrated {
    from: LATEST,
    to: LATEST,
};

/// The schema versions recorded, in order.
async fn versions(client: &tokio_postgres::Client) -> Vec<i32> {
    let rows = client
        .query("SELECT version FROM slotgate_schema ORDER BY version", &[])
        .await
        .expect("slotgate_schema reads");
    rows.iter().map(|r| r.get(0)).collect()
}

/// The tables of the public schema, sorted.
async fn tables(client: &tokio_postgres::Client) -> Vec<String> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .expect("information_schema reads");
    rows.iter().map(|r| r.get(0)).collect()
}

/// Every version from 1 to [`LATEST`].
fn all_versions() -> Vec<i32> {
    (1..=LATEST).collect()
}

#[tokio::test]
async fn migrating_a_fresh_database_creates_the_schema() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    assert!(tables(&client).await.is_empty());

    let done = migrate(&mut client)
        .await
        .expect("a fresh database migrates");
    assert_eq!(done, FRESH);
    assert_eq!(tables(&client).await, TABLES);
    assert_eq!(versions(&client).await, all_versions());

    // The event log is ordered per org: one row per (org, seq), and a second
    // append of the same seq (two replicas racing) is refused.
    let append = "INSERT INTO slotgate_events (org, seq, at, body) VALUES ($1, $2, 0, '{}')";
    client.execute(append, &[&"acme", &1i64]).await.unwrap();
    client.execute(append, &[&"other", &1i64]).await.unwrap();
    let again = client.execute(append, &[&"acme", &1i64]).await;
    let code = again.expect_err("a seq is appended once").code().cloned();
    assert_eq!(
        code,
        Some(tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    migrate(&mut client).await.expect("the first migration");
    client
        .execute(
            "INSERT INTO slotgate_orgs (id, lim) VALUES ('acme', 3)",
            &[],
        )
        .await
        .unwrap();

    let again = migrate(&mut client).await.expect("the second migration");
    assert_eq!(again, UP_TO_DATE);
    assert_eq!(versions(&client).await, all_versions());
    let orgs = client
        .query("SELECT id, lim FROM slotgate_orgs", &[])
        .await
        .unwrap();
    let orgs: Vec<(String, i32)> = orgs.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(orgs, [("acme".to_string(), 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrators_started_together_on_a_fresh_database_do_not_race() {
    let db = PgCluster::start().await;
    migrate_together(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrators_do_not_race_where_transactions_default_to_serializable() {
    // A migrator that waited for the lock must still see what the one before
    // it committed, whatever the database's default isolation level.
    let db = PgCluster::start().await;
    let admin = db.connect().await;
    let serializable = "ALTER DATABASE slotgate SET default_transaction_isolation = 'serializable'";
    admin.batch_execute(serializable).await.unwrap();
    migrate_together(&db).await;
}

/// Four migrators on four connections to a fresh database, released at once
/// as replicas starting together: all succeed, exactly one applies the
/// migrations, and each version is recorded once.
async fn migrate_together(db: &PgCluster) {
    const MIGRATORS: usize = 4;
    // Connected first, then released together, as replicas starting at once.
    let start = Arc::new(Barrier::new(MIGRATORS));
    let mut tasks = Vec::new();
    for _ in 0..MIGRATORS {
        let mut client = db.connect().await;
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            migrate(&mut client).await
        }));
    }
    let mut from = Vec::new();
    for task in tasks {
        let done = task.await.unwrap().expect("every migrator succeeds");
        assert_eq!(done.to, LATEST);
        from.push(done.from);
    }
    // Exactly one applied the migrations; the others found them applied.
    from.sort_unstable();
    let mut want = vec![LATEST; MIGRATORS];
    want[0] = 0;
    assert_eq!(from, want);

    let client = db.connect().await;
    assert_eq!(versions(&client).await, all_versions());
    assert_eq!(tables(&client).await, TABLES);
}

#[tokio::test]
async fn a_database_with_a_newer_schema_is_refused_with_both_versions() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    migrate(&mut client).await.expect("the first migration");
    // What a newer slotgate would leave behind: a version this one does not know.
    let newer = LATEST + 3;
    client
        .execute(
            "INSERT INTO slotgate_schema (version) VALUES ($1)",
            &[&newer],
        )
        .await
        .unwrap();

    let refused = migrate(&mut client)
        .await
        .expect_err("a newer schema is refused");
    assert!(
        matches!(refused, MigrateError::Newer { found, known } if found == newer && known == LATEST),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(
        message.contains(&format!("version {newer}, newer than version {LATEST}")),
        "{message}"
    );
    // Nothing was changed, and the connection is still usable.
    let mut want = all_versions();
    want.push(newer);
    assert_eq!(versions(&client).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_stops_and_starts_again_keeping_its_data() {
    let db = PgCluster::start().await;
    let mut client = db.connect().await;
    migrate(&mut client).await.expect("the first migration");

    db.stop();
    let down = client.query("SELECT 1", &[]).await;
    assert!(down.is_err(), "a query answered with the server stopped");
    assert!(
        pg::connect(&db.url()).await.is_err(),
        "a connection opened with the server stopped"
    );

    db.start_again();
    let mut client = db.connect().await;
    assert_eq!(versions(&client).await, all_versions());
    let again = migrate(&mut client)
        .await
        .expect("migrating after a restart");
    assert_eq!(again, UP_TO_DATE);
}

#[tokio::test]
async fn dropping_the_cluster_stops_it_and_removes_its_directory() {
    let db = PgCluster::start().await;
    let url = db.url();
    let dir = db.dir().to_path_buf();
    assert!(dir.join("data").is_dir());
    drop(db);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(
        pg::connect(&url).await.is_err(),
        "the server still answers at {url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_migrates_the_database_and_commits_each_change_before_answering() {
    let s = Server::start_on_postgres(&[]).await;
    let db = s.postgres().expect("a PostgreSQL server");
    let client = db.connect().await;
    assert_eq!(tables(&client).await, TABLES, "serve created the schema");
    assert_eq!(versions(&client).await, all_versions());

    s.create_org("acme", 2).await;
    let a = s
        .acquire("acme", "c1", "A", CallType::Inbound)
        .await
        .ok(201);
    assert_eq!(a.brief().1, CallState::Active);
    // Answered, so committed: another connection sees the call, its events
    // and the org's version.
    let row = client
        .query_one(
            "SELECT state, slot FROM slotgate_calls WHERE org = 'acme' AND id = 'c1'",
            &[],
        )
        .await
        .expect("the call's row");
    assert_eq!(
        (row.get::<_, &str>(0), row.get::<_, &str>(1)),
        ("active", "shared")
    );
    let version: i64 = client
        .query_one(
            "SELECT last_event_seq FROM slotgate_orgs WHERE id = 'acme'",
            &[],
        )
        .await
        .expect("the org's row")
        .get(0);
    let events: i64 = client
        .query_one(
            "SELECT count(*) FROM slotgate_events WHERE org = 'acme'",
            &[],
        )
        .await
        .expect("the events")
        .get(0);
    assert_eq!((version, events), (2, 2), "org.created and call.admitted");
    let kinds: Vec<String> = client
        .query(
            "SELECT body->>'type' FROM slotgate_events WHERE org = 'acme' ORDER BY seq",
            &[],
        )
        .await
        .expect("the events")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["org.created", "call.admitted"]);
}

/// `slotgate serve` with these options and environment; its exit status and stderr.
async fn serve_refuses(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"));
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .env_remove("SLOTGATE_OPERATOR_KEY")
        .env_remove("SLOTGATE_REPLICA_SECRET")
        .envs(env.iter().copied());
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::from(c).kill_on_drop(true).output(),
    )
    .await
    .expect("serve exits instead of serving")
    .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_says_what_is_missing() {
    let db = PgCluster::start().await;
    let url = db.url();
    let key = [("SLOTGATE_OPERATOR_KEY", crate::support::OPERATOR_KEY)];

    let (ok, err) = serve_refuses(&["--store", &url], &[]).await;
    assert!(!ok && err.contains("set SLOTGATE_OPERATOR_KEY"), "{err}");
    let (ok, err) = serve_refuses(&["--store", &url], &key).await;
    assert!(!ok && err.contains("set SLOTGATE_REPLICA_SECRET"), "{err}");
    let weak = [key[0], ("SLOTGATE_REPLICA_SECRET", "short")];
    let (ok, err) = serve_refuses(&["--store", &url], &weak).await;
    assert!(
        !ok && err.contains("SLOTGATE_REPLICA_SECRET is too weak"),
        "{err}"
    );
    let key = [
        key[0],
        ("SLOTGATE_REPLICA_SECRET", crate::support::REPLICA_SECRET),
    ];

    let (ok, err) = serve_refuses(&["--store", "redis://127.0.0.1/"], &key).await;
    assert!(!ok && err.contains("a PostgreSQL URL"), "{err}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_slotgate"))
        .args(["serve", "--help"])
        .output()
        .expect("serve --help runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("postgres://"), "{help}");
    assert!(
        !help.contains("redis"),
        "no store is promised for Redis: {help}"
    );

    db.stop();
    let (ok, err) = serve_refuses(&["--store", &url], &key).await;
    assert!(!ok && err.contains("connecting to PostgreSQL"), "{err}");
}

/// What a stream of acquires of new ids saw: the ids acknowledged, in order,
/// and the 503s, as (how many acknowledged before it).
#[derive(Default)]
struct Seen {
    acked: Vec<String>,
    refused_after: Vec<usize>,
}

/// Acquires `c1`, `c2`, ... on `org` one after another until `stop`, each
/// through the next of the replicas in turn.
async fn acquire_stream(r: Arc<Vec<Server>>, org: &str, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    for i in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let id = format!("c{i}");
        let a = r[i % r.len()].acquire(org, &id, "A", CallType::Chat).await;
        match a.status {
            201 => seen.acked.push(id),
            503 => {
                assert_eq!(a.refusal().1, ErrorCode::StoreUnavailable, "{a}");
                assert_eq!(a.header("retry-after"), "1", "{a}");
                seen.refused_after.push(seen.acked.len());
            }
            _ => panic!("neither admitted nor store_unavailable: {a}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

/// Three replicas on the database at `url`; the first leads.
async fn three_replicas(url: &str) -> Arc<Vec<Server>> {
    let mut r = Vec::new();
    for _ in 0..3 {
        r.push(Server::start_on(None, &["--store", url]).await);
    }
    Arc::new(r)
}

/// Every replica's `/healthz` status.
async fn all_healthz(r: &[Server]) -> Vec<u16> {
    let mut out = Vec::new();
    for s in r {
        out.push(healthz(s).await);
    }
    out
}

/// Asserts that every call `seen` acknowledged is active in the database,
/// and that the server shows as many active calls as the database holds
/// (nothing it admitted only in memory); returns the database's active ids.
async fn committed_and_shown(
    s: &Server,
    client: &tokio_postgres::Client,
    seen: &Seen,
) -> Vec<String> {
    let active: Vec<String> = client
        .query(
            "SELECT id FROM slotgate_calls WHERE org = 'acme' AND state = 'active'",
            &[],
        )
        .await
        .expect("the calls")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &seen.acked {
        assert!(
            active.contains(id),
            "acknowledged {id} is not in the database"
        );
    }
    assert_eq!(s.org("acme").await.active as usize, active.len());
    active
}

async fn healthz(s: &Server) -> u16 {
    let r = s.anon.get(s.url("/healthz")).send().await;
    r.map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_stopped_under_load_gives_503_then_the_replicas_recover_by_themselves() {
    let db = PgCluster::start().await;
    let r = three_replicas(&db.url()).await;
    r[0].create_org("acme", 100_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(acquire_stream(r.clone(), "acme", stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    tokio::task::block_in_place(|| db.stop());
    eventually(10, "every /healthz says 503", || async {
        all_healthz(&r).await == [503; 3]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| db.start_again());
    eventually(30, "every /healthz says 200 again", || async {
        all_healthz(&r).await == [200; 3]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = load.await.expect("the load ran");

    let (first_refusal, last_refusal) = match seen.refused_after[..] {
        [first, .., last] => (first, last),
        _ => panic!("fewer than two 503s while the database was down"),
    };
    assert!(first_refusal > 0, "acknowledged before the failure");
    assert!(
        seen.acked.len() > last_refusal,
        "acknowledged again after it, without a restart: {} acked, last 503 after {last_refusal}",
        seen.acked.len()
    );
    // Every acknowledged call is committed, and every replica shows exactly
    // what is committed: nothing admitted in memory while the database was down.
    let client = db.connect().await;
    for s in r.iter() {
        let active = committed_and_shown(s, &client, &seen).await;
        assert_eq!(s.all_calls("acme").await.len(), active.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failover_loses_no_acknowledged_change() {
    let primary = PgCluster::start().await;
    let standby = primary.start_standby().await;
    // Both hosts in one URL: the replicas follow whichever accepts writes.
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{}?target_session_attrs=read-write",
        primary.port,
        standby.port,
        pg::DATABASE
    );
    let r = three_replicas(&url).await;
    r[0].create_org("acme", 100_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(acquire_stream(r.clone(), "acme", stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    tokio::task::block_in_place(|| primary.stop()); // -m immediate: a crash
    eventually(10, "every /healthz says 503", || async {
        all_healthz(&r).await == [503; 3]
    })
    .await;
    tokio::task::block_in_place(|| standby.promote());
    let promoted = std::time::Instant::now();
    eventually(30, "every /healthz says 200 on the new primary", || async {
        all_healthz(&r).await == [200; 3]
    })
    .await;
    let back_after = promoted.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = load.await.expect("the load ran");

    assert!(back_after < Duration::from_secs(30), "{back_after:?}");
    let last_refusal = *seen.refused_after.last().expect("503s during the failover");
    assert!(
        seen.acked.len() > last_refusal,
        "acknowledged again after it"
    );
    let client = standby.connect().await;
    for s in r.iter() {
        committed_and_shown(s, &client, &seen).await;
    }
    eprintln!(
        "failover: three replicas answering again {back_after:?} after the promotion; {} acknowledged, {} refused",
        seen.acked.len(),
        seen.refused_after.len()
    );
}

/// Milliseconds since the Unix epoch of an API time.
fn ms_of(t: &str) -> i64 {
    let at = humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    at.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_clock_is_ten_minutes_off_keeps_the_databases_time() {
    let db = PgCluster::start().await;
    let client = db.connect().await;
    let s = Server::start_on(Some(db), &["--clock-skew-ms=600000"]).await;
    s.create_org("acme", 1).await;
    let db_now = |c: tokio_postgres::Client| async move {
        let row = c
            .query_one(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                &[],
            )
            .await
            .expect("the database's clock");
        (row.get::<_, i64>(0), c)
    };
    let (before, client) = db_now(client).await;
    let body = serde_json::json!({"id": "c1", "agent": "A", "type": "chat", "lease_ttl_s": 30});
    let call: slotgate_api::Call = s
        .op(reqwest::Method::POST, "/v1/orgs/acme/calls", Some(&body))
        .await
        .ok(201)
        .json();
    let (after, _) = db_now(client).await;
    let admitted = ms_of(call.admitted_at.as_deref().expect("admitted"));
    assert!(
        (before - 1000..=after + 1000).contains(&admitted),
        "admitted at {admitted}, the database's clock read {before} to {after}"
    );
    let lease = ms_of(call.lease_expires_at.as_deref().expect("a lease"));
    assert_eq!(lease - admitted, 30_000, "the lease runs on the same clock");
}
