//! Load benchmark: N concurrent callers acquire, hold and release slots over
//! HTTP against the real `slotgate serve` (durable: every answer after fsync),
//! and the same loop against the classic Redis Lua semaphore (not durable) on
//! a `redis-server` this benchmark starts itself, in the same run.
//!
//! Run: `cargo bench -p slotgate --features load-bench --bench load`
//! (options after `--`: `--callers 64 --seconds 10`). Figures go to
//! BENCHMARKS.md.
//!
//! To compare two builds with the same load generator: `SLOTGATE_BENCH_BIN`
//! names the `slotgate` binary to run instead of the one cargo built with this
//! bench (e.g. another commit's `target/release/slotgate`, as an absolute path:
//! cargo runs the bench in `crates/slotgate`; it is started with the same
//! `serve` arguments), and `--slotgate-only` skips the HTTP ceiling
//! and the Redis rows. Alternate the builds' runs on a shared machine.
//!
//! Measured, per store:
//! - throughput of acquire+release cycles, with as many slots as callers
//!   (nobody queues) and with half as many (half the callers queue: slotgate
//!   callers long-poll, Redis callers retry every millisecond);
//! - p50/p99 latency of acquire and of release, at peak and at half the peak rate;
//! - for slotgate, release-to-waiter wake-up: one slot, one holder, one caller
//!   long-polling; the time from sending the release to the waiter's answer;
//! - the HTTP ceiling: the same loop where both requests are `GET /healthz`,
//!   the most any HTTP API can do with this client on this machine.
//!
//! `--postgres` runs the slotgate rows on a PostgreSQL cluster this benchmark
//! starts itself (`initdb` and `pg_ctl`, as the tests do) instead of the
//! embedded store, and beside them the database's own ceiling on this
//! machine: `pgbench` with a one-row-update script (each client its own
//! row), at the same client count, on the same cluster.
//!
//! `--replicas N` (with `--postgres`) starts N servers on that database,
//! and the callers send each request to the next replica in turn: one
//! leads, the others forward to it. The wake-up is then measured across
//! replicas too (the waiter and the release on different ones).
//!
//! Paced runs spread the callers' start over one period, so the load is a
//! steady rate rather than every caller at once.
//!
//! `--isolation` runs only the tenant isolation check (issue 20): a quiet
//! org's callers acquire and release at a steady modest rate
//! (`--quiet-rate`, cycles/s, default 50, over 4 callers) while a heavy org
//! with a queue of `--queued` calls (default 100,000) is first idle, then
//! hammered by 8 connections paging its calls with `?limit=1` (following
//! the cursor), 8 connections scraping `/metrics` and 8 connections
//! acquiring and releasing (on reserved slots, so they are admitted). It
//! prints the quiet org's latencies in both phases and their ratio.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

// The same spawning code as the end-to-end tests: the real binary, its ready line.
#[path = "../tests/it/support/mod.rs"]
mod support;

use support::OPERATOR_KEY as OP;

#[derive(Debug, Clone, Copy)]
struct Opts {
    callers: usize,
    seconds: u64,
    /// Only the slotgate rows and the wake-up (no HTTP ceiling, no Redis).
    slotgate_only: bool,
    /// The slotgate rows on PostgreSQL, beside `pgbench`.
    postgres: bool,
    /// How many servers on the PostgreSQL database.
    replicas: usize,
    /// Only the tenant isolation run.
    isolation: bool,
    /// The heavy org's queue in the isolation run.
    queued: usize,
    /// The quiet org's cycles/s in the isolation run.
    quiet_rate: u64,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Opts {
        callers: get("--callers", 64) as usize,
        seconds: get("--seconds", 10),
        slotgate_only: args.iter().any(|a| a == "--slotgate-only"),
        postgres: args.iter().any(|a| a == "--postgres"),
        replicas: get("--replicas", 1).max(1) as usize,
        isolation: args.iter().any(|a| a == "--isolation"),
        queued: get("--queued", 100_000) as usize,
        quiet_rate: get("--quiet-rate", 50).max(1),
    }
}

/// Latencies of one kind, for percentiles.
#[derive(Debug, Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn pct(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i].as_secs_f64() * 1000.0
    }
}

#[derive(Debug, Default)]
struct Run {
    cycles: u64,
    secs: f64,
    acquire: Samples,
    release: Samples,
}

impl Run {
    fn rate(&self) -> f64 {
        self.cycles as f64 / self.secs
    }

    fn row(&mut self, what: &str) -> String {
        format!(
            "| {what} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.rate(),
            self.acquire.pct(0.5),
            self.acquire.pct(0.99),
            self.release.pct(0.5),
            self.release.pct(0.99)
        )
    }
}

/// Something that can take and give back a slot.
trait Limiter: Send + Sync + 'static {
    /// Takes a slot for `id`, waiting as long as needed.
    fn acquire(&self, id: String) -> impl std::future::Future<Output = ()> + Send;
    /// Gives it back.
    fn release(&self, id: String) -> impl std::future::Future<Output = ()> + Send;
}

/// Runs `callers` loops of acquire+release for `secs`, optionally paced to `rate` cycles/s in all.
async fn drive<L: Limiter>(
    limiter: Arc<L>,
    callers: usize,
    secs: u64,
    rate: Option<f64>,
    tag: &str,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let (limiter, stop, counter) = (limiter.clone(), stop.clone(), counter.clone());
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut tick = rate.map(|r| {
                let period = Duration::from_secs_f64(callers as f64 / r);
                // Callers start spread over one period: a steady rate, not
                // bursts of every caller at once.
                let first = tokio::time::Instant::now() + period.mul_f64(c as f64 / callers as f64);
                let mut i = tokio::time::interval_at(first, period);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
            while !stop.load(Ordering::Relaxed) {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let id = format!("{tag}-{c}-{}", counter.fetch_add(1, Ordering::Relaxed));
                let t0 = Instant::now();
                limiter.acquire(id.clone()).await;
                let t1 = Instant::now();
                limiter.release(id).await;
                run.acquire.0.push(t1 - t0);
                run.release.0.push(t1.elapsed());
                run.cycles += 1;
            }
            run
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Run::default();
    for t in tasks {
        let r = t.await.expect("a caller task does not panic");
        total.cycles += r.cycles;
        total.acquire.0.extend(r.acquire.0);
        total.release.0.extend(r.release.0);
    }
    total.secs = start.elapsed().as_secs_f64();
    total
}

/// The real server (or several replicas on one database), started from the
/// binary on free ports with fresh data dirs.
struct Slotgate {
    children: Vec<tokio::process::Child>,
    /// The first server's API (it leads when there are several).
    base: String,
    /// Every server's API.
    bases: Vec<String>,
    http: reqwest::Client,
    _dirs: Vec<tempfile::TempDir>,
}

impl Slotgate {
    async fn start(store: &[String], replicas: usize) -> Slotgate {
        // The data dir sits on the project's disk (not a tmpfs), so fsyncs are real.
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
        std::fs::create_dir_all(&target).expect("target/ (CARGO_TARGET_DIR may be elsewhere)");
        let (mut children, mut bases, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..replicas {
            let dir = tempfile::tempdir_in(&target).expect("a temp dir under target/");
            let (child, port) = spawn(dir.path(), store).await;
            children.push(child);
            bases.push(format!("http://127.0.0.1:{port}/v1"));
            dirs.push(dir);
        }
        let http = support::http_builder()
            .pool_max_idle_per_host(1024)
            .build()
            .unwrap();
        Slotgate {
            children,
            base: bases[0].clone(),
            bases,
            http,
            _dirs: dirs,
        }
    }

    async fn org(&self, id: &str, limit: u32) {
        let r = self
            .http
            .post(format!("{}/orgs", self.base))
            .bearer_auth(OP)
            .json(&json!({"id": id, "limit": limit}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "creating org {id}");
    }

    fn org_client(&self, org: &str) -> Arc<SlotgateOrg> {
        self.agent_client(org, "bench")
    }

    /// An org's calls for one agent's chat calls.
    fn agent_client(&self, org: &str, agent: &str) -> Arc<SlotgateOrg> {
        Arc::new(SlotgateOrg {
            http: self.http.clone(),
            agent: agent.to_string(),
            calls: self
                .bases
                .iter()
                .map(|b| format!("{b}/orgs/{org}/calls"))
                .collect(),
            turn: AtomicUsize::new(0),
        })
    }
}

/// `slotgate serve` as the tests run it ([`support::serve_command`]), from
/// `SLOTGATE_BENCH_BIN` when set; waits for the ready line, returns the port.
async fn spawn(dir: &std::path::Path, store: &[String]) -> (tokio::process::Child, u16) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut cmd = support::serve_command("127.0.0.1:0", dir);
    cmd.args(store);
    if let Some(bin) = std::env::var_os("SLOTGATE_BENCH_BIN") {
        let mut other = Command::new(bin);
        other.args(cmd.get_args()).stdin(Stdio::null());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => other.env(k, v),
                None => other.env_remove(k),
            };
        }
        cmd = other;
    }
    let mut child = tokio::process::Command::from(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the slotgate binary starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("slotgate prints a ready line");
        if let Some(rest) = line.split("ready on http://").nth(1) {
            let addr = rest
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap();
            break addr.rsplit(':').next().unwrap().parse().expect("a port");
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

impl Drop for Slotgate {
    fn drop(&mut self) {
        // kill_on_drop is set too; this makes it immediate.
        for child in &mut self.children {
            let _ = child.start_kill();
        }
    }
}

/// The HTTP ceiling: the same client and server, but each "acquire" and
/// "release" is a `GET /healthz` (no auth, no engine, no store).
struct Healthz {
    http: reqwest::Client,
    url: String,
}

impl Healthz {
    async fn get(&self) {
        let r = self
            .http
            .get(&self.url)
            .send()
            .await
            .expect("healthz answered");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("healthz body");
    }
}

impl Limiter for Healthz {
    async fn acquire(&self, _id: String) {
        self.get().await
    }

    async fn release(&self, _id: String) {
        self.get().await
    }
}

/// One org's calls, on every replica: each request goes to the next in turn.
struct SlotgateOrg {
    http: reqwest::Client,
    /// The agent its calls are for.
    agent: String,
    calls: Vec<String>,
    turn: AtomicUsize,
}

impl SlotgateOrg {
    fn next(&self) -> &str {
        &self.calls[self.turn.fetch_add(1, Ordering::Relaxed) % self.calls.len()]
    }
}

impl Limiter for SlotgateOrg {
    async fn acquire(&self, id: String) {
        loop {
            let r = self
                .http
                .post(self.next())
                .bearer_auth(OP)
                .json(&json!({"id": id, "agent": self.agent, "type": "chat", "wait_s": 30}))
                .send()
                .await
                .expect("acquire answered");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("a JSON call");
            if body["state"] == "active" {
                return;
            }
            assert!(matches!(status, 200 | 202), "acquire: {status} {body}");
        }
    }

    async fn release(&self, id: String) {
        let r = self
            .http
            .delete(format!("{}/{id}", self.next()))
            .bearer_auth(OP)
            .send()
            .await
            .expect("release answered");
        assert_eq!(r.status(), 200);
    }
}

/// The classic Redis semaphore: a sorted set of holders scored by expiry.
const ACQUIRE_LUA: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2] + ARGV[3], ARGV[4])
  return 1
end
return 0
";

struct RedisSemaphore {
    conn: redis::aio::MultiplexedConnection,
    script: redis::Script,
    key: String,
    limit: u32,
}

impl Limiter for RedisSemaphore {
    async fn acquire(&self, id: String) {
        let mut conn = self.conn.clone();
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let got: i64 = self
                .script
                .key(&self.key)
                .arg(self.limit)
                .arg(now)
                .arg(60_000)
                .arg(&id)
                .invoke_async(&mut conn)
                .await
                .expect("the Lua semaphore answers");
            if got == 1 {
                return;
            }
            // No slot: the classic client polls.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn release(&self, id: String) {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("ZREM")
            .arg(&self.key)
            .arg(&id)
            .query_async(&mut conn)
            .await
            .expect("ZREM answers");
    }
}

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(RedisServer { child, port });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    async fn semaphore(&self, key: &str, limit: u32) -> Arc<RedisSemaphore> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        Arc::new(RedisSemaphore {
            conn,
            script: redis::Script::new(ACQUIRE_LUA),
            key: key.to_string(),
            limit,
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One slot, one holder, one waiter: from sending the release to the waiter's answer.
async fn wakeups(sg: &Slotgate, rounds: usize) -> Samples {
    sg.org("wake", 1).await;
    let org = sg.org_client("wake");
    let mut samples = Samples::default();
    org.acquire("holder-0".into()).await;
    for i in 0..rounds {
        let waiter_id = format!("holder-{}", i + 1);
        let waiter = {
            let org = org.clone();
            let id = waiter_id.clone();
            tokio::spawn(async move {
                org.acquire(id).await;
                Instant::now()
            })
        };
        // Release only once the waiter is queued and waiting.
        loop {
            let r = sg
                .http
                .get(format!("{}/{waiter_id}", org.calls[0]))
                .bearer_auth(OP)
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let sent = Instant::now();
        org.release(format!("holder-{i}")).await;
        let woke = waiter.await.unwrap();
        samples.0.push(woke.saturating_duration_since(sent));
    }
    samples
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n = o.callers;
        println!("load: {n} callers, {} s per run, on {} cores", o.seconds, std::thread::available_parallelism().map_or(0, |p| p.get()));
        if let Some(bin) = std::env::var_os("SLOTGATE_BENCH_BIN") {
            println!("server: {}", bin.to_string_lossy());
        }
        let postgres = match o.postgres {
            true => Some(support::pg::PgCluster::start().await),
            false => None,
        };
        let store: Vec<String> = match &postgres {
            Some(db) => vec!["--store".into(), db.url()],
            None => Vec::new(),
        };
        let replicas = if o.postgres { o.replicas } else { 1 };
        if replicas > 1 {
            println!("{replicas} replicas on one database; each request goes to the next in turn");
        }
        let sg = Slotgate::start(&store, replicas).await;
        if o.isolation {
            isolation(&sg, &o).await;
            return;
        }
        sg.org("roomy", n as u32).await;
        sg.org("tight", (n / 2) as u32).await;
        sg.org("paced", n as u32).await;
        let mut rows = Vec::new();

        let mut peak = drive(sg.org_client("roomy"), n, o.seconds, None, "r").await;
        let on = match replicas {
            1 => String::new(),
            r => format!(", {r} replicas"),
        };
        rows.push(peak.row(&format!("slotgate (durable){on}, {n} slots")));
        let mut half = drive(sg.org_client("paced"), n, o.seconds, Some(peak.rate() / 2.0), "p").await;
        rows.push(half.row(&format!("slotgate (durable){on}, {n} slots, paced at half its peak")));
        let mut queued = drive(sg.org_client("tight"), n, o.seconds, None, "t").await;
        rows.push(queued.row(&format!("slotgate (durable){on}, {} slots: half the callers queue", n / 2)));
        let mut wake = wakeups(&sg, 300).await;
        // Exact counts, for per-cycle figures of the server (CPU, instructions).
        println!(
            "slotgate cycles per row: {} in {:.3} s, {} in {:.3} s, {} in {:.3} s",
            peak.cycles, peak.secs, half.cycles, half.secs, queued.cycles, queued.secs
        );
        if let Some(db) = &postgres {
            let tps = pgbench(db, n, o.seconds, None).await;
            rows.push(format!("| pgbench, one-row update per transaction, {n} clients (transactions/s) | {tps:.0} | | | | |"));
            // The database's own latency at the rate of slotgate's paced row:
            // two transactions per cycle.
            let mut paced = Samples::default();
            pgbench(db, n, o.seconds, Some((2.0 * half.rate(), &mut paced))).await;
            rows.push(format!(
                "| pgbench, paced at the transactions of slotgate's half-peak row ({:.0}/s): one transaction's latency | | {:.2} | {:.2} | | |",
                2.0 * half.rate(),
                paced.pct(0.5),
                paced.pct(0.99)
            ));
            println!(
                "\nslotgate cycles/s ÷ (pgbench transactions/s ÷ 2 transactions per cycle): {:.2} ({n} slots), {:.2} ({} slots)",
                peak.rate() / (tps / 2.0),
                queued.rate() / (tps / 2.0),
                n / 2
            );
        }
        if o.slotgate_only || o.postgres {
            print_rows(rows, &mut wake);
            return;
        }
        let ceiling = Arc::new(Healthz {
            http: sg.http.clone(),
            url: sg.base.replace("/v1", "/healthz"),
        });
        let mut http = drive(ceiling, n, o.seconds, None, "h").await;
        rows.push(http.row("HTTP ceiling: the same client and server, `GET /healthz` twice per cycle"));

        match RedisServer::start() {
            Some(redis) => {
                let mut r = drive(redis.semaphore("roomy", n as u32).await, n, o.seconds, None, "r").await;
                rows.push(r.row(&format!("Redis Lua semaphore (not durable), {n} slots")));
                let rate = r.rate() / 2.0;
                let mut rh = drive(redis.semaphore("paced", n as u32).await, n, o.seconds, Some(rate), "p").await;
                rows.push(rh.row(&format!("Redis Lua semaphore, {n} slots, paced at half its peak")));
                let mut rq = drive(redis.semaphore("tight", (n / 2) as u32).await, n, o.seconds, None, "t").await;
                rows.push(rq.row(&format!("Redis Lua semaphore, {} slots, 1 ms retry", n / 2)));
                println!(
                    "\nthroughput ratio slotgate / Redis: {:.2} ({n} slots), {:.2} ({} slots); HTTP ceiling / Redis: {:.2}",
                    peak.rate() / r.rate(),
                    queued.rate() / rq.rate(),
                    n / 2,
                    http.rate() / r.rate()
                );
            }
            None => println!("\nredis-server not found: install it (apt-get install redis-server) for the baseline"),
        }
        print_rows(rows, &mut wake);
    });
}

/// The database's own ceiling: `pgbench` with `clients` clients, each
/// updating its own row once per transaction, for `seconds`; transactions/s.
/// Paced (`-R`) at a rate, it also collects each transaction's latency.
async fn pgbench(
    db: &support::pg::PgCluster,
    clients: usize,
    seconds: u64,
    paced: Option<(f64, &mut Samples)>,
) -> f64 {
    let client = db.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS bench_rows (id integer PRIMARY KEY, n bigint NOT NULL);
             INSERT INTO bench_rows SELECT g, 0 FROM generate_series(1, {clients}) g ON CONFLICT DO NOTHING;"
        ))
        .await
        .expect("the pgbench table");
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        "UPDATE bench_rows SET n = n + 1 WHERE id = :client_id + 1;\n",
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("pgbench");
    cmd.args(["-n", "-h", "127.0.0.1", "-U", "postgres", "-j", "2"])
        .args(["-p", &db.port.to_string(), "-c", &clients.to_string()])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(script.path());
    if let Some((rate, _)) = &paced {
        // -l: one line per transaction, its latency (µs) third.
        cmd.args(["-R", &format!("{rate:.0}"), "-l", "--log-prefix"])
            .arg(logs.path().join("tx"));
    }
    let out = cmd
        .arg(support::pg::DATABASE)
        .output()
        .expect("pgbench runs (apt-get install postgresql-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some((_, samples)) = paced {
        for entry in std::fs::read_dir(logs.path()).unwrap() {
            let log = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            samples.0.extend(log.lines().filter_map(|l| {
                let us: u64 = l.split_whitespace().nth(2)?.parse().ok()?;
                Some(Duration::from_micros(us))
            }));
        }
    }
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

/// The rows as BENCHMARKS.md shows them, then the wake-up percentiles.
fn print_rows(rows: Vec<String>, wake: &mut Samples) {
    println!(
        "\n| run | cycles/s | acquire p50 ms | acquire p99 ms | release p50 ms | release p99 ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!("{r}");
    }
    println!(
        "\nrelease-to-waiter wake-up (from sending the release to the waiter's answer), {} rounds: p50 {:.2} ms, p99 {:.2} ms",
        wake.0.len(),
        wake.pct(0.5),
        wake.pct(0.99)
    );
}

/// Connections of each kind hammering the heavy org in the isolation run.
const HAMMERS: usize = 8;

/// The tenant isolation run: the quiet org's latencies with the heavy org
/// idle, then busy (see the module's doc).
async fn isolation(sg: &Slotgate, o: &Opts) {
    // The heavy org: 8 slots reserved for the hammering agent's chat calls,
    // one shared slot held by a long call, and the queue behind it.
    sg.org("heavy", HAMMERS as u32 + 1).await;
    let r = sg
        .http
        .put(format!("{}/orgs/heavy/agents/hammer/reservations", sg.base))
        .bearer_auth(OP)
        .json(&json!({ "chat": HAMMERS }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reserving the hammer's slots");
    let calls = format!("{}/orgs/heavy/calls", sg.base);
    let (http0, calls0) = (sg.http.clone(), calls.clone());
    let queue = move |agent: &'static str, expect: u16| {
        let (http, calls) = (http0.clone(), calls0.clone());
        async move {
            let r = http
                .post(&calls)
                .bearer_auth(OP)
                .json(&json!({"agent": agent, "type": "chat", "lease_ttl_s": 3600}))
                .send()
                .await
                .expect("acquire answered");
            assert_eq!(r.status(), expect, "filling the heavy org");
        }
    };
    queue("blocker", 201).await;
    let filled = Instant::now();
    let left = Arc::new(AtomicUsize::new(o.queued));
    let fillers: Vec<_> = (0..64)
        .map(|_| {
            let (left, queue) = (left.clone(), queue.clone());
            tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    queue("backlog", 202).await;
                }
            })
        })
        .collect();
    for f in fillers {
        f.await.expect("a filler does not panic");
    }
    println!(
        "heavy org: {} calls queued in {:.1} s",
        o.queued,
        filled.elapsed().as_secs_f64()
    );
    sg.org("quiet", 8).await;
    let quiet = sg.org_client("quiet");
    let rate = Some(o.quiet_rate as f64);
    let mut idle = drive(quiet.clone(), 4, o.seconds, rate, "idle").await;

    let stop = Arc::new(AtomicBool::new(false));
    let (pages, scrapes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for i in 0..HAMMERS {
        let (http, calls, halt, pages) =
            (sg.http.clone(), calls.clone(), stop.clone(), pages.clone());
        load.push(tokio::spawn(async move {
            // Each pager follows the cursor from its own place in the queue.
            let mut cursor = (i * 10_000).to_string();
            while !halt.load(Ordering::Relaxed) {
                let r = http
                    .get(format!("{calls}?limit=1&cursor={cursor}"))
                    .bearer_auth(OP)
                    .send()
                    .await
                    .expect("a page answered");
                assert_eq!(r.status(), 200, "paging the heavy org");
                let page: serde_json::Value = r.json().await.expect("a JSON page");
                cursor = page["next_cursor"].as_str().unwrap_or("0").to_string();
                pages.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let (http, url, halt, scrapes) = (
            sg.http.clone(),
            sg.base.replace("/v1", "/metrics"),
            stop.clone(),
            scrapes.clone(),
        );
        load.push(tokio::spawn(async move {
            while !halt.load(Ordering::Relaxed) {
                // With the operator key, as Prometheus scrapes: every org's
                // series (a scrape without a key reads no org).
                let r = http
                    .get(&url)
                    .bearer_auth(OP)
                    .send()
                    .await
                    .expect("metrics answered");
                assert_eq!(r.status(), 200, "scraping /metrics");
                r.bytes().await.expect("the metrics text");
                scrapes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let hammer = tokio::spawn(drive(
        sg.agent_client("heavy", "hammer"),
        HAMMERS,
        o.seconds + 2,
        None,
        "hammer",
    ));
    // A second for the load to build up, then the quiet org again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (pages0, scrapes0, busy_from) = (
        pages.load(Ordering::Relaxed),
        scrapes.load(Ordering::Relaxed),
        Instant::now(),
    );
    let mut busy = drive(quiet, 4, o.seconds, rate, "busy").await;
    let busy_secs = busy_from.elapsed().as_secs_f64();
    let (pages1, scrapes1) = (
        pages.load(Ordering::Relaxed),
        scrapes.load(Ordering::Relaxed),
    );
    let mut hammered = hammer.await.expect("the hammering callers do not panic");
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.expect("a pager or scraper does not panic");
    }
    let (idle99, busy99) = (idle.acquire.pct(0.99), busy.acquire.pct(0.99));
    println!(
        "\nheavy org while busy: {:.0} pages/s (`?limit=1`), {:.0} scrapes/s of /metrics, {:.0} acquire+release cycles/s (acquire p99 {:.2} ms)",
        (pages1 - pages0) as f64 / busy_secs,
        (scrapes1 - scrapes0) as f64 / busy_secs,
        hammered.rate(),
        hammered.acquire.pct(0.99)
    );
    println!(
        "\n| quiet org, 4 callers paced at {} cycles/s in all | cycles/s | acquire p50 ms | acquire p99 ms | release p50 ms | release p99 ms |",
        o.quiet_rate
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "{}",
        idle.row(&format!("heavy org idle ({} queued)", o.queued))
    );
    println!(
        "{}",
        busy.row("heavy org busy (8 pagers, 8 scrapers, 8 acquiring)")
    );
    println!(
        "\nquiet org's acquire p99, busy ÷ idle: {:.2} (p50: {:.2})",
        busy99 / idle99,
        busy.acquire.pct(0.5) / idle.acquire.pct(0.5)
    );
}
