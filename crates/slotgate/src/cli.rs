//! The `slotgate` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::commands::{self, ClientCommand, Conn};
use crate::server::{ready_line, Server, Settings};

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
    /// On the first start it creates the data directory, generates an
    /// operator key (unless SLOTGATE_OPERATOR_KEY is set), saves it to
    /// DATA_DIR/operator.key and prints it once. Every acknowledged change is
    /// on disk before the answer; a restart on the same directory restores
    /// orgs, reservations, keys, active calls and the queue in order.
    Serve(ServeArgs),
    /// Client subcommands.
    #[command(flatten)]
    Client(ClientCommand),
}

/// `slotgate serve` options; each has an environment variable.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SLOTGATE_LISTEN", default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Directory of the embedded store. One server per directory.
    #[arg(long, env = "SLOTGATE_DATA_DIR", default_value = "./slotgate-data")]
    pub data_dir: PathBuf,
    /// Store: `sqlite` (embedded, in --data-dir) or `redis://host:port/db` (many replicas).
    #[arg(long, env = "SLOTGATE_STORE", default_value = "sqlite")]
    pub store: String,
    /// How long ended calls stay readable and their ids idempotent (e.g. 24h, 90m).
    #[arg(long, env = "SLOTGATE_ENDED_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub ended_retention: Duration,
    /// How long events stay readable through the events API.
    #[arg(long, env = "SLOTGATE_EVENT_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,
    /// Most calls one org may have queued; more are refused with 429 queue_full.
    #[arg(long, env = "SLOTGATE_QUEUE_CAP", default_value_t = 100_000)]
    pub queue_cap: u32,
    /// Ask for the operator key on /metrics (open by default, for scrapers on a private network).
    #[arg(long, env = "SLOTGATE_METRICS_AUTH")]
    pub metrics_auth: bool,
}

/// Runs the command line; returns the process's exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Client(cmd) => runtime
            .block_on(commands::run(&cli.conn, cmd))
            .map(|text| println!("{text}")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    if args.store != "sqlite" {
        return Err(if args.store.starts_with("redis://") {
            "the Redis store is not in this build yet; run with --store sqlite (the default)".into()
        } else {
            format!(
                "--store must be `sqlite` or `redis://host:port/db`, got {:?}",
                args.store
            )
        });
    }
    let settings = Settings {
        data_dir: args.data_dir,
        operator_key: std::env::var("SLOTGATE_OPERATOR_KEY").ok(),
        ended_retention: args.ended_retention,
        event_retention: args.event_retention,
        queue_cap: args.queue_cap,
        metrics_auth: args.metrics_auth,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = Server::start(&settings, stop_rx.clone()).map_err(|e| e.to_string())?;
    if let Some(key) = &server.generated_operator_key {
        println!(
            "operator key (shown once, saved to {}): {key}",
            settings.data_dir.join("operator.key").display()
        );
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("{}", ready_line(addr));
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_tx.send(true);
    });
    server
        .serve(listener, stop_rx)
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be handled");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
