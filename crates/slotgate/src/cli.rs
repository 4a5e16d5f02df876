//! The `slotgate` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backup;
use crate::commands::{self, ClientCommand, Conn, Failure};
use crate::server::{ready_line, Server, Settings, StoreChoice};
use crate::tls::https::Certificate;

/// slotgate: concurrency control for AI agents on live calls.
///
/// Each org gets `limit` concurrent calls shared by all its agents and call
/// types; admins reserve slots per agent and type; calls beyond the limit
/// queue in arrival order and are dispatched as slots free.
#[derive(Debug, Parser)]
#[command(name = "slotgate", version, about, long_about)]
#[command(
    after_help = "Start with `slotgate serve`; then, from the same directory, `slotgate org create acme --limit 20`."
)]
pub struct Cli {
    /// Server and key for the client subcommands.
    #[command(flatten)]
    pub conn: Conn,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: the HTTP API, the dashboard and the metrics.
    ///
    /// On the embedded store (the default), the first start creates the data
    /// directory (0700), generates an operator key (unless SLOTGATE_OPERATOR_KEY
    /// is set: 32 characters or more), saves it to DATA_DIR/operator.key (0600)
    /// and shows it once on a terminal. Every acknowledged change is on disk
    /// before the answer; a restart on the same directory restores plans,
    /// orgs, their plans, limits and bursts, reservations, caps, keys,
    /// active calls and the queue in order.
    ///
    /// With --store postgres://..., SLOTGATE_OPERATOR_KEY and
    /// SLOTGATE_REPLICA_SECRET must be set (each the same on every replica,
    /// 32 characters or more), every acknowledged change is committed in
    /// PostgreSQL before the answer, and any number of replicas may serve
    /// one database: one leads, the others forward to it once it proved it
    /// holds the replicas' secret (--advertise-url; docs/REPLICAS.md).
    // Boxed: its options are many, the other subcommands' few.
    Serve(Box<ServeArgs>),
    /// Write a store's state as one JSON document: a backup of either store,
    /// and the way to move the embedded store to PostgreSQL.
    ///
    /// It holds plans, orgs, their plans, limits, bursts, reservations, caps,
    /// active, queued and ended calls, and org keys (their hashes), read as one consistent snapshot; a
    /// server may keep running meanwhile. The event log is not included:
    /// event numbering goes on from where it was.
    #[command(
        after_help = "Examples:\n  slotgate export --data-dir ./slotgate-data -o backup.json\n  slotgate export --store postgres://slotgate@db:5432/slotgate > backup.json"
    )]
    Export(ExportArgs),
    /// Load a document of `slotgate export` into a new, empty store.
    ///
    /// Stop the servers on the store first (it takes the same lock as a
    /// server). Nothing is written unless the whole document is valid, and
    /// everything is written in one transaction.
    #[command(
        after_help = "Example (the embedded store to PostgreSQL):\n  slotgate export --data-dir ./slotgate-data -o backup.json\n  slotgate import --store postgres://slotgate@db:5432/slotgate backup.json"
    )]
    Import(ImportArgs),
    /// Client subcommands.
    #[command(flatten)]
    Client(ClientCommand),
}

/// Which store: `--store` and `--data-dir`, for `serve`, `export` and `import`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Directory of the embedded store. One server per directory.
    #[arg(
        long,
        env = "SLOTGATE_DATA_DIR",
        hide_env_values = true,
        default_value = "./slotgate-data"
    )]
    pub data_dir: PathBuf,
    /// Store: `sqlite`, the embedded store in --data-dir, or a PostgreSQL
    /// URL (`postgres://USER:PASSWORD@HOST:5432/DB`), whose schema is created
    /// and migrated at start; the operator key then comes from
    /// SLOTGATE_OPERATOR_KEY, and the replicas' shared secret from
    /// SLOTGATE_REPLICA_SECRET. TLS to the database as libpq's `sslmode`,
    /// `sslrootcert`, `sslcert`, `sslkey` in the URL say, or, where the URL
    /// lacks one, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY (the URL
    /// wins); the log says which mode is in use and where it came from.
    #[arg(
        long,
        env = "SLOTGATE_STORE",
        hide_env_values = true,
        default_value = "sqlite"
    )]
    pub store: StoreChoice,
}

/// `slotgate export` options.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The store to read.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Write the document to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `slotgate import` options.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The store to fill: new or empty, and no server running on it.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The document `slotgate export` wrote (`-` for standard input).
    pub file: PathBuf,
}

/// `slotgate serve` options; each has an environment variable.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(
        long,
        env = "SLOTGATE_LISTEN",
        hide_env_values = true,
        default_value = "127.0.0.1:7878"
    )]
    pub listen: SocketAddr,
    /// Where the state is kept.
    #[command(flatten)]
    pub store: StoreArgs,
    /// With several replicas on one PostgreSQL database: the URL the others
    /// forward requests to while this one leads, such as
    /// http://10.0.0.5:7878 (in Kubernetes, the pod's IP from the downward
    /// API). By default http://LISTEN-ADDRESS, or http://$HOSTNAME:PORT when
    /// listening on all interfaces (https:// with --tls-cert).
    #[arg(long, env = "SLOTGATE_ADVERTISE_URL", hide_env_values = true)]
    pub advertise_url: Option<String>,
    /// How long ended calls stay readable and their ids idempotent (e.g. 24h, 90m).
    #[arg(long, env = "SLOTGATE_ENDED_RETENTION", hide_env_values = true, default_value = "24h", value_parser = humantime::parse_duration)]
    pub ended_retention: Duration,
    /// How long events stay readable through the events API.
    #[arg(long, env = "SLOTGATE_EVENT_RETENTION", hide_env_values = true, default_value = "24h", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,
    /// How long usage by hour (`GET /v1/orgs/{org}/usage`, `slotgate usage`) is kept.
    #[arg(long, env = "SLOTGATE_USAGE_RETENTION", hide_env_values = true, default_value = "90days", value_parser = humantime::parse_duration)]
    pub usage_retention: Duration,
    /// Most calls one org may have queued; more are refused with 429 queue_full.
    #[arg(
        long,
        env = "SLOTGATE_QUEUE_CAP",
        hide_env_values = true,
        default_value_t = 100_000
    )]
    pub queue_cap: u32,
    /// Serve HTTPS with this certificate (PEM: the server's certificate, then
    /// its chain), with --tls-key. Both files are read again on SIGHUP or
    /// when they change (--tls-watch): renew them in place; connections from
    /// then on get the new one. A pair that cannot be used keeps the old one.
    #[arg(
        long,
        env = "SLOTGATE_TLS_CERT",
        hide_env_values = true,
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "SLOTGATE_TLS_KEY",
        hide_env_values = true,
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// How often the --tls-cert and --tls-key files are checked for a
    /// change (their modification time and size): a changed pair is read
    /// again as on SIGHUP. 0s: only on SIGHUP.
    #[arg(long, env = "SLOTGATE_TLS_WATCH", hide_env_values = true, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub tls_watch: Duration,
    /// With several replicas serving HTTPS (--tls-cert): the CA
    /// certificates (PEM) a follower checks the leading replica's
    /// certificate against before it forwards anything; by default the
    /// system's roots. The replica secret still authenticates both ends.
    #[arg(
        long,
        env = "SLOTGATE_REPLICA_CA",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub replica_ca: Option<PathBuf>,
    /// Ask for the operator key on /metrics (open by default, for scrapers on a private network).
    #[arg(long, env = "SLOTGATE_METRICS_AUTH", hide_env_values = true)]
    pub metrics_auth: bool,
    /// Also serve GET /metrics, with every org's series and no key asked,
    /// and GET /healthz, on this address (plain HTTP), meant for a private
    /// network only Prometheus reaches, e.g. 10.0.0.5:9464. Nothing else is
    /// served there. The main listener's /metrics is unchanged: with
    /// --metrics-auth it still asks for a key.
    #[arg(
        long,
        env = "SLOTGATE_METRICS_LISTEN",
        hide_env_values = true,
        value_name = "ADDR"
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// Per-agent series on /metrics (slotgate_agent_active, _queued,
    /// _reserved): at most N agents of each org, its busiest (most active
    /// and queued calls, then most reserved slots, then the agent met first), the others
    /// summed under agent="(other)". 0: no per-agent series, only the org's.
    #[arg(
        long,
        env = "SLOTGATE_METRICS_AGENTS",
        hide_env_values = true,
        default_value_t = 0,
        value_name = "N"
    )]
    pub metrics_agents: usize,
    /// How long a client may take to send a request's headers, from their
    /// first byte (and to complete a TLS handshake). A slower one is
    /// disconnected without an answer.
    #[arg(long, env = "SLOTGATE_HEADER_TIMEOUT", hide_env_values = true, default_value = "10s", value_parser = humantime::parse_duration, help_heading = "Limits")]
    pub header_timeout: Duration,
    /// How long a connection may wait for its next request (keep-alive)
    /// before it is closed. A request in progress (a long-poll, an event
    /// stream) is never cut by it.
    #[arg(long, env = "SLOTGATE_IDLE_TIMEOUT", hide_env_values = true, default_value = "60s", value_parser = humantime::parse_duration, help_heading = "Limits")]
    pub idle_timeout: Duration,
    /// Most connections open at once. A new one above it closes the one
    /// idle the longest; if every connection has a request in progress, the
    /// new one is closed at once. Default: 16384, or 7/8 of the limit of
    /// open files if lower (the soft limit is raised to the hard one at start).
    #[arg(
        long,
        env = "SLOTGATE_MAX_CONNECTIONS",
        hide_env_values = true,
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_connections: Option<usize>,
    /// Most long-polls (wait_s) and event streams open at once; more are
    /// answered 503 too_many_waits. Default: half of --max-connections.
    #[arg(
        long,
        env = "SLOTGATE_MAX_WAITS",
        hide_env_values = true,
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_waits: Option<usize>,
    /// Requests per second of each runtime key (a burst of as many is
    /// allowed); more are answered 429 rate_limited with Retry-After. A key
    /// may have its own (`rate_per_s`, set by the operator key).
    #[arg(
        long,
        env = "SLOTGATE_RATE_RUNTIME",
        hide_env_values = true,
        default_value_t = 500,
        value_name = "PER_S",
        help_heading = "Limits"
    )]
    pub rate_runtime: u32,
    /// Requests per second of each admin key, as --rate-runtime.
    #[arg(
        long,
        env = "SLOTGATE_RATE_ADMIN",
        hide_env_values = true,
        default_value_t = 100,
        value_name = "PER_S",
        help_heading = "Limits"
    )]
    pub rate_admin: u32,
    /// Requests per second of the operator key.
    #[arg(
        long,
        env = "SLOTGATE_RATE_OPERATOR",
        hide_env_values = true,
        default_value_t = 500,
        value_name = "PER_S",
        help_heading = "Limits"
    )]
    pub rate_operator: u32,
    /// Requests per second of all the keys of one org together (a burst of
    /// as many is allowed), whatever each key's own rate; more are answered
    /// 429 rate_limited with Retry-After. The operator key's requests are not
    /// the org's. 0: no org-wide rate.
    #[arg(
        long,
        env = "SLOTGATE_RATE_ORG",
        hide_env_values = true,
        default_value_t = 0,
        value_name = "PER_S",
        help_heading = "Limits"
    )]
    pub rate_org: u32,
    /// One org's rate for all its keys together, in place of --rate-org:
    /// ORG=PER_S (0: none for that org); repeat, or separate with commas in
    /// the variable.
    #[arg(long, env = "SLOTGATE_RATE_ORG_FOR", hide_env_values = true, value_delimiter = ',', value_parser = crate::limits::parse_org_rate, value_name = "ORG=PER_S", help_heading = "Limits")]
    pub rate_org_for: Vec<(slotgate_core::OrgId, u32)>,
    /// Failed authentications (no key, or a wrong one) one client address
    /// may make per --auth-failure-window; beyond them, every request from
    /// it is answered 429 rate_limited until its allowance refills.
    #[arg(
        long,
        env = "SLOTGATE_AUTH_FAILURES",
        hide_env_values = true,
        default_value_t = 20,
        value_name = "N",
        help_heading = "Limits"
    )]
    pub auth_failures: u32,
    /// The window of --auth-failures.
    #[arg(long, env = "SLOTGATE_AUTH_FAILURE_WINDOW", hide_env_values = true, default_value = "60s", value_parser = humantime::parse_duration, help_heading = "Limits")]
    pub auth_failure_window: Duration,
    /// A reverse proxy or load balancer in front of the server (an address,
    /// or a network like 10.0.0.0/8; repeat, or separate with commas in the
    /// variable). Only from these peers is X-Forwarded-For believed, to find
    /// the client's address for --auth-failures.
    #[arg(long, env = "SLOTGATE_TRUSTED_PROXY", hide_env_values = true, value_delimiter = ',', value_parser = crate::limits::parse_trusted_proxy, value_name = "IP|CIDR", help_heading = "Limits")]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// How many plans and simulations (POST .../plan, .../simulate) run at
    /// once, all orgs together, each on one thread: planning never takes
    /// more than this many cores from the calls. An org has at most one job
    /// waiting or running; orgs waiting for a worker are served in turn.
    #[arg(
        long,
        env = "SLOTGATE_PLANNING_WORKERS",
        hide_env_values = true,
        default_value_t = 2,
        value_parser = clap::value_parser!(u8).range(1..=64),
        value_name = "N",
        help_heading = "Limits"
    )]
    pub planning_workers: u8,
    /// The longest a plan or simulation may take, waiting for a worker
    /// included (e.g. 60s, 5m); past it the job is stopped and answered 503
    /// planning_cancelled. A longer one lets one org's big job hold a
    /// worker longer while other orgs wait: raise --planning-workers with it.
    #[arg(long, env = "SLOTGATE_PLANNING_DEADLINE", hide_env_values = true, default_value = "60s", value_parser = parse_planning_deadline, value_name = "DURATION", help_heading = "Limits")]
    pub planning_deadline: Duration,
    /// Log lines as text (coloured on a terminal only) or as JSON objects, for log collectors.
    /// `RUST_LOG` sets the level (default `info`; `debug` logs every request).
    #[arg(long, env = "SLOTGATE_LOG_FORMAT", hide_env_values = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// For tests: milliseconds to add to this machine's clock, to play a
    /// machine whose clock is wrong (replicas follow the database's clock).
    #[arg(long, hide = true, default_value_t = 0, allow_negative_numbers = true)]
    pub clock_skew_ms: i64,
    /// For tests: how long the engine keeps ended calls in memory before the
    /// store alone answers for them (shortened to reach the store sooner).
    #[arg(long, hide = true, default_value = "60s", value_parser = humantime::parse_duration)]
    pub ended_in_memory: Duration,
}

/// A planning deadline: a duration like 60s or 5m, above zero.
fn parse_planning_deadline(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s).map_err(|e| e.to_string())? {
        d if d.is_zero() => Err("a job needs some time: give more than 0s".into()),
        d => Ok(d),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people: one line each, coloured only on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logs to stderr at `RUST_LOG`'s level (default `info`).
fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
}

/// The command line. `serve` takes none of the connection options; it gets
/// hidden ones of the same names, so the global ones are not shown in its help.
fn parse() -> Cli {
    let command = Cli::command().mut_subcommand("serve", |serve| {
        commands::CONN_ARGS.into_iter().fold(serve, |serve, id| {
            let arg = clap::Arg::new(id).long(id).hide(true);
            serve.arg(if id == "json" {
                arg.action(clap::ArgAction::SetTrue)
            } else {
                arg
            })
        })
    });
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs the command line; returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format);
            finish(runtime.block_on(serve(*args)))
        }
        Command::Export(args) => {
            init_logging(LogFormat::Text);
            let store = &args.store;
            let output = args.output.as_deref();
            finish(runtime.block_on(backup::export(&store.store, &store.data_dir, output)))
        }
        Command::Import(args) => {
            init_logging(LogFormat::Text);
            let store = &args.store;
            finish(runtime.block_on(backup::import(&store.store, &store.data_dir, &args.file)))
        }
        Command::Client(cmd) => {
            init_logging(LogFormat::Text);
            runtime.block_on(client(&cli.conn, cmd))
        }
    }
}

/// The exit code of a local command, its error on stderr.
fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client subcommand: errors in words (or as the API's error object
/// with `--json`) on stderr; a closed stdout ends it quietly, as Unix tools do.
async fn client(conn: &Conn, cmd: ClientCommand) -> ExitCode {
    let mut source = None;
    let result = match conn.key() {
        Ok((key, from)) => {
            source = Some(from);
            commands::run(conn, &key, cmd).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => code,
        // The reader is gone (`| head`): nothing to say, and nobody to say it to.
        Err(Failure::StdoutClosed) => ExitCode::from(141),
        Err(f) if conn.json => {
            eprintln!("{}", commands::error_json(&f, &conn.url));
            ExitCode::FAILURE
        }
        Err(f) => {
            eprintln!("error: {}", commands::explain(&f, &conn.url, source));
            ExitCode::FAILURE
        }
    }
}

/// Where the other replicas reach this one, if its address says so: the
/// address it listens on, or its host name when it listens on all.
fn advertised(scheme: &str, addr: SocketAddr) -> Option<String> {
    if !addr.ip().is_unspecified() {
        return Some(format!("{scheme}://{addr}"));
    }
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}:{}", addr.port()))
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    crate::clock::set_skew_ms(args.clock_skew_ms);
    let open_files = crate::connections::raise_open_files_limit();
    let max_connections = args
        .max_connections
        .unwrap_or_else(|| crate::connections::default_max_connections(open_files))
        .max(1);
    let connections = crate::connections::Limits {
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections,
    };
    let limits = crate::limits::Settings {
        runtime_rate: args.rate_runtime,
        admin_rate: args.rate_admin,
        operator_rate: args.rate_operator,
        org_rate: args.rate_org,
        org_rates: args.rate_org_for.into_iter().collect(),
        auth_failures: args.auth_failures,
        auth_window: args.auth_failure_window,
        trusted_proxies: args.trusted_proxy,
        max_waits: args.max_waits.unwrap_or(max_connections / 2).max(1),
    };
    let settings = Settings {
        store: args.store.store,
        data_dir: args.store.data_dir,
        operator_key: std::env::var("SLOTGATE_OPERATOR_KEY").ok(),
        ended_retention: args.ended_retention,
        ended_in_memory: args.ended_in_memory,
        event_retention: args.event_retention,
        usage_retention: args.usage_retention,
        queue_cap: args.queue_cap,
        metrics_auth: args.metrics_auth,
        metrics_agents: args.metrics_agents,
        planning: crate::service::PlanningSettings {
            workers: args.planning_workers.into(),
            deadline: args.planning_deadline,
        },
        advertise_url: None,
        connections,
        limits,
        replica_secret: std::env::var("SLOTGATE_REPLICA_SECRET").ok(),
        replica_ca: args.replica_ca,
    };
    // The certificate and the port first: a wrong file or a taken port must
    // not leave a new data directory and a new operator key behind.
    let certificate = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(Certificate::load(cert, key)?)),
        _ => None,
    };
    let scheme = if certificate.is_some() {
        "https"
    } else {
        "http"
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_listener = match args.metrics_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .map_err(|e| format!("cannot listen on {at} (--metrics-listen): {e}"))?,
        ),
        None => None,
    };
    let defaulted = args.advertise_url.is_none();
    let settings = Settings {
        advertise_url: args.advertise_url.or_else(|| advertised(scheme, addr)),
        ..settings
    };
    if let (StoreChoice::Postgres(_), Some(url)) = (&settings.store, &settings.advertise_url) {
        if defaulted && addr.ip().is_loopback() {
            tracing::warn!(
                advertise_url = %url,
                "replicas on other machines cannot reach this one while it leads: \
                 listen on 0.0.0.0 or set --advertise-url to an address they reach"
            );
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = Server::start(&settings, stop_rx.clone())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(key) = &server.generated_operator_key {
        let path = crate::operator_key::path(&settings.data_dir);
        // Shown to a person at a terminal only: a log collector keeps what it reads.
        if std::io::stderr().is_terminal() {
            eprintln!(
                "operator key (shown once, saved to {}): {key}",
                path.display()
            );
        } else {
            tracing::info!("generated an operator key: read it from {}", path.display());
        }
    }
    tracing::info!("{}", ready_line(scheme, addr));
    if let Some(at) = metrics_listener.as_ref().and_then(|l| l.local_addr().ok()) {
        tracing::info!(
            "metrics for every org, no key asked, on http://{at}/metrics (--metrics-listen)"
        );
    }
    tokio::spawn(async move {
        commands::stop_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    });
    let handshakes = certificate.map(|certificate| {
        let handshakes = certificate.handshakes();
        if !args.tls_watch.is_zero() {
            tokio::spawn(certificate.clone().reload_on_change(args.tls_watch));
        }
        tokio::spawn(async move {
            if let Err(e) = certificate.reload_on_sighup().await {
                tracing::error!(error = %e, "cannot reload the TLS certificate on SIGHUP");
            }
        });
        handshakes
    });
    server
        .serve(
            listener,
            handshakes,
            metrics_listener,
            settings.connections,
            stop_rx,
        )
        .await;
    Ok(())
}
