//! The client subcommands (`org`, `reserve`, `cap`, `burst`, `calls`, `acquire`, `hold`,
//! `keys`, `status`...), spoken through the Rust client, printed as tables
//! or JSON.
//!
//! - `commands/output.rs`: printing, `--json`, errors in words;
//! - `commands/status.rs`: the concurrency bar; `commands/hold.rs`: `hold`;
//! - `commands/planning.rs`: `traffic`, `plan`, `simulate`; `commands/usage.rs`: `usage`.

pub mod hold;
pub mod output;
pub mod planning;
pub mod status;
pub mod usage;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use slotgate_client::{
    Acquire, CallFilter, CallState, CallType, Caps, Client, EndReason, IfBlocked, Org,
    Reservations, Role,
};

pub use self::hold::stop_signal;
use self::output::{count, emit, wait_text};
pub use self::output::{error_json, explain, Failure, KeySource};

/// Where the server is and which key to use; shared by every client subcommand.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection (every command but serve, export and import)")]
pub struct Conn {
    /// The server's base URL.
    #[arg(
        long,
        env = "SLOTGATE_URL",
        default_value = "http://127.0.0.1:7878",
        global = true,
        hide_env_values = true
    )]
    pub url: String,
    /// The key to use. Without it, ./slotgate-data/operator.key is read if present.
    #[arg(long, env = "SLOTGATE_KEY", global = true, hide_env_values = true)]
    pub key: Option<String>,
    /// Print JSON instead of tables (for scripts); errors too, as the API's error object.
    #[arg(long, global = true)]
    pub json: bool,
    /// With an https:// URL: trust the CA certificates in this PEM file too,
    /// besides the system's roots (for a server a private CA signed).
    #[arg(
        id = "ca-file",
        long = "ca-file",
        env = "SLOTGATE_CA_FILE",
        global = true,
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub ca_file: Option<std::path::PathBuf>,
}

/// The names of the connection options, to hide where they do not apply.
pub const CONN_ARGS: [&str; 4] = ["url", "key", "json", "ca-file"];

/// `slotgate org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org with its own limit, or on a plan (operator key).
    ///
    /// On a plan, the org takes the plan's limit and burst, and follows
    /// them when the plan changes; a --limit given too is its own and
    /// overrides the plan's (`slotgate plans list` shows the plans).
    #[command(
        after_help = "Examples:\n  slotgate org create acme --limit 20\n  slotgate org create acme --plan enterprise\n  slotgate org create acme --plan standard --limit 30"
    )]
    Create {
        /// The org's id.
        id: String,
        /// Its own concurrency limit, 0 to 1,000,000 (required without --plan).
        #[arg(long, allow_negative_numbers = true, value_parser = slots, required_unless_present = "plan")]
        limit: Option<u32>,
        /// The plan it is on: it takes the plan's limit (unless --limit) and burst.
        #[arg(long)]
        plan: Option<String>,
    },
    /// List orgs (operator key).
    #[command(after_help = "Example: slotgate org list")]
    List,
    /// Show an org: limit, reservations, usage, agents.
    #[command(after_help = "Example: slotgate org show acme")]
    Show {
        /// The org's id.
        id: String,
    },
    /// Set an org's own limit, overriding its plan's (operator key).
    ///
    /// `plan` instead of a number returns the org to its plan's limit.
    #[command(
        after_help = "Examples:\n  slotgate org limit acme 30\n  slotgate org limit acme plan    # back to its plan's limit"
    )]
    Limit {
        /// The org's id.
        id: String,
        /// The new limit, not below the sum of reservations; or `plan`.
        #[arg(allow_negative_numbers = true, value_parser = own_or_plan, value_name = "LIMIT|plan")]
        limit: OwnOrPlan,
    },
    /// Put an org on a plan: it takes the plan's limit and burst (operator key).
    ///
    /// Its own limit and burst are cleared: it follows the plan from now
    /// on. Refused (nothing changes) if the plan's limit is below the org's
    /// reservations. Lowering ends no call; new calls wait until they fit.
    /// `none` takes it off plans, keeping its limit and burst as its own.
    #[command(
        after_help = "Examples:\n  slotgate org plan acme enterprise\n  slotgate org plan acme none"
    )]
    Plan {
        /// The org's id.
        id: String,
        /// The plan's id, or `none`.
        plan: String,
    },
    /// Show or set the request rate of all an org's keys together (setting: operator key).
    ///
    /// An org's own rate wins over the server's (--rate-org-for, else
    /// --rate-org), takes effect at its next request and is stored. 0: no
    /// org rate, only each key's own. --clear: back to the server's.
    #[command(
        after_help = "Examples:\n  slotgate org rate acme          (show it)\n  slotgate org rate acme 200\n  slotgate org rate acme --clear"
    )]
    Rate {
        /// The org's id.
        id: String,
        /// Requests per second of all its keys together, 0 to 1,000,000 (0: none).
        #[arg(allow_negative_numbers = true, value_parser = slots, conflicts_with = "clear")]
        rate_per_s: Option<u32>,
        /// Back to the server's setting.
        #[arg(long)]
        clear: bool,
    },
}

/// `slotgate plans ...`
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// List plans: their limit, burst and how many orgs are on each (operator key).
    #[command(after_help = "Example: slotgate plans list")]
    List,
    /// Create a plan (operator key).
    #[command(after_help = "Example: slotgate plans create pro --limit 50 --burst 5")]
    Create {
        /// The plan's id.
        id: String,
        /// The limit of the orgs on it, 0 to 1,000,000.
        #[arg(long, allow_negative_numbers = true, value_parser = slots)]
        limit: u32,
        /// The burst of the orgs on it, 0 to 1,000,000 (default 0).
        #[arg(long, allow_negative_numbers = true, value_parser = slots, default_value = "0")]
        burst: u32,
    },
    /// Change a plan's limit or burst, and with it every org on it (operator key).
    ///
    /// Every org on the plan that takes the plan's limit or burst (not its
    /// own) changes in one durable change, or none does: if the new limit
    /// is below any such org's reservations the change is refused, naming
    /// those orgs. Lowering ends no call; new calls wait until they fit.
    #[command(
        after_help = "Examples:\n  slotgate plans set standard --limit 25\n  slotgate plans set enterprise --burst 30"
    )]
    Set {
        /// The plan's id.
        id: String,
        /// Its new limit.
        #[arg(long, allow_negative_numbers = true, value_parser = slots, required_unless_present = "burst")]
        limit: Option<u32>,
        /// Its new burst.
        #[arg(long, allow_negative_numbers = true, value_parser = slots)]
        burst: Option<u32>,
    },
    /// Delete a plan no org is on (operator key).
    #[command(after_help = "Example: slotgate plans delete pro")]
    Delete {
        /// The plan's id.
        id: String,
    },
}

/// An org's rate as the CLI prints it.
fn rate_text(org: &str, rate: &slotgate_api::OrgRate) -> String {
    let held = match rate.effective_rate_per_s {
        0 => "no org rate (each key's own still holds)".to_string(),
        n => format!("{n} requests per second for all its keys together"),
    };
    let from = match rate.source {
        slotgate_api::RateSource::Org => "its own",
        slotgate_api::RateSource::Server => "the server's setting",
    };
    format!("org {org}: {held} ({from})")
}

/// `slotgate keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for an org; its secret is printed once.
    #[command(
        after_help = "Example: slotgate keys create acme --role runtime --name orchestrator"
    )]
    Create {
        /// The org.
        org: String,
        /// `admin` (everything but the limit and the burst) or `runtime` (calls, and reading the org).
        #[arg(long, value_parser = parse_api::<Role>)]
        role: Role,
        /// A name for people.
        #[arg(long)]
        name: String,
    },
    /// List an org's keys (no secrets).
    #[command(after_help = "Example: slotgate keys list acme")]
    List {
        /// The org.
        org: String,
    },
    /// Revoke a key: it stops working at once.
    #[command(after_help = "Example: slotgate keys revoke acme KEY_ID")]
    Revoke {
        /// The org.
        org: String,
        /// The key's id.
        id: String,
    },
}

/// The reservation numbers of `slotgate reserve`.
#[derive(Debug, Args)]
pub struct ReserveArgs {
    /// The org.
    pub org: String,
    /// The agent.
    pub agent: String,
    /// Reserved browser voice calls.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = slots)]
    pub webcall: u32,
    /// Reserved chats.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = slots)]
    pub chat: u32,
    /// Reserved outbound telephony calls.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = slots)]
    pub outbound: u32,
    /// Reserved inbound telephony calls.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = slots)]
    pub inbound: u32,
}

/// `slotgate cap`: the agent and its caps.
#[derive(Debug, Args)]
pub struct CapArgs {
    /// The org.
    pub org: String,
    /// The agent.
    pub agent: String,
    /// The caps.
    #[command(flatten)]
    pub caps: CapValues,
}

/// The five caps of `slotgate cap`, set at once (a missing one: no cap), or `--clear`.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct CapValues {
    /// The most active browser voice calls.
    #[arg(long, allow_negative_numbers = true, value_parser = slots)]
    pub webcall: Option<u32>,
    /// The most active chats.
    #[arg(long, allow_negative_numbers = true, value_parser = slots)]
    pub chat: Option<u32>,
    /// The most active outbound telephony calls.
    #[arg(long, allow_negative_numbers = true, value_parser = slots)]
    pub outbound: Option<u32>,
    /// The most active inbound telephony calls.
    #[arg(long, allow_negative_numbers = true, value_parser = slots)]
    pub inbound: Option<u32>,
    /// The most active calls over all four types.
    #[arg(long, allow_negative_numbers = true, value_parser = slots)]
    pub total: Option<u32>,
    /// Remove every cap of the agent.
    #[arg(long, conflicts_with_all = ["webcall", "chat", "outbound", "inbound", "total"])]
    pub clear: bool,
}

/// `slotgate acquire` and `slotgate hold`: the call and how it waits.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The org.
    pub org: String,
    /// The agent the call is for.
    #[arg(long)]
    pub agent: String,
    /// Its type.
    #[arg(long = "type", value_parser = parse_api::<CallType>)]
    pub call_type: CallType,
    /// The call's id (give one to retry safely); made up if absent.
    #[arg(long)]
    pub id: Option<String>,
    /// Lease length in seconds (5 to 3600), renewed by heartbeats.
    #[arg(long, default_value_t = 60.0)]
    pub lease_ttl: f64,
    /// Give up (the call ends `timed_out`) after this many seconds in the queue.
    #[arg(long)]
    pub max_wait: Option<f64>,
    /// A call the org as configured now can never admit (blocked): `queue`
    /// it anyway, saying why (the default), or `refuse` it, queueing nothing.
    #[arg(long, value_parser = parse_api::<IfBlocked>, value_name = "queue|refuse")]
    pub if_blocked: Option<IfBlocked>,
}

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Orgs and their limits.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Plans: tiers of limit and burst that orgs are put on (operator key).
    ///
    /// A new server has `standard` (limit 20, burst 0) and `enterprise`
    /// (limit 100, burst 20). An org on a plan takes its limit and burst
    /// unless it sets its own (`slotgate org limit`, `slotgate burst`).
    #[command(subcommand)]
    Plans(PlanCommand),
    /// Reserve slots for an agent, per call type (missing types are 0).
    #[command(after_help = "Example: slotgate reserve acme agent-a --chat 3 --inbound 2")]
    Reserve(ReserveArgs),
    /// Cap an agent's active calls, per call type and in total (missing ones: no cap).
    ///
    /// Sets all five caps at once: a type not given has no cap. A cap is
    /// never below the reservation it covers. Lowering a cap ends no call;
    /// new calls of the agent wait until they fit.
    #[command(
        after_help = "Examples:\n  slotgate cap acme agent-a --chat 2 --total 5\n  slotgate cap acme agent-a --clear"
    )]
    Cap(CapArgs),
    /// Set an org's burst: slots it may use above its limit once the whole limit is in use (operator key).
    ///
    /// On an org on a plan, its own burst overrides the plan's; `plan`
    /// instead of a number returns it to the plan's burst.
    #[command(
        after_help = "Examples:\n  slotgate burst acme 5\n  slotgate burst acme plan    # back to its plan's burst"
    )]
    Burst {
        /// The org.
        org: String,
        /// Slots above the limit, 0 to 1,000,000 (0: none); or `plan`.
        #[arg(allow_negative_numbers = true, value_parser = own_or_plan, value_name = "BURST|plan")]
        burst: OwnOrPlan,
    },
    /// Remove an agent's reservations and caps; its slots return to the shared pool.
    #[command(after_help = "Example: slotgate unreserve acme agent-a")]
    Unreserve {
        /// The org.
        org: String,
        /// The agent.
        agent: String,
    },
    /// List live calls: active ones, then queued ones in queue order.
    #[command(after_help = "Example: slotgate calls acme --state queued")]
    Calls {
        /// The org.
        org: String,
        /// Only `active` or only `queued` calls.
        #[arg(long, value_parser = parse_live_state)]
        state: Option<CallState>,
        /// Only this agent's calls.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Start a call: prints whether it is active (with its slot) or queued (with its position).
    ///
    /// The call keeps its slot while heartbeats renew its lease (`slotgate
    /// heartbeat`) and until `slotgate release`; a queued call stays queued
    /// for one lease unless something waits on it (`--wait`). The id of a
    /// call that has ended does not start a new one: that exits 1, saying
    /// how the call ended.
    #[command(
        after_help = "Example: slotgate acquire acme --agent agent-a --type chat --id c1 --wait 10"
    )]
    Acquire {
        /// The call.
        #[command(flatten)]
        call: CallArgs,
        /// Wait up to this many seconds (0 to 60) for admission if queued.
        #[arg(long, default_value_t = 0.0)]
        wait: f64,
    },
    /// Run a command while holding a slot: the shell's `flock`, with slots.
    ///
    /// Waits in the queue (showing its position), runs COMMAND while holding
    /// the slot with heartbeats, and releases it when COMMAND ends, also on
    /// Ctrl-C or SIGTERM. Exits with COMMAND's status; if the slot is lost,
    /// says so, stops COMMAND and exits 75.
    #[command(
        after_help = "Example: slotgate hold acme --agent agent-a --type outbound -- ./dial.sh +15551234567"
    )]
    Hold {
        /// The call.
        #[command(flatten)]
        call: CallArgs,
        /// The command to run, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Renew a call's lease (or a queued call's place).
    #[command(after_help = "Example: slotgate heartbeat acme c1")]
    Heartbeat {
        /// The org.
        org: String,
        /// The call's id.
        call: String,
    },
    /// End a call: released if active (its slot goes to the queue), cancelled
    /// if queued (it leaves the queue; no slot is freed).
    #[command(after_help = "Example: slotgate release acme c1")]
    Release {
        /// The org.
        org: String,
        /// The call's id.
        call: String,
    },
    /// Org keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The org's observed traffic per agent and type: calls per hour,
    /// durations, waits, give-ups and patience.
    #[command(after_help = "Example: slotgate traffic acme --window 7d")]
    Traffic {
        /// The org.
        org: String,
        /// How far back (e.g. 7d, 12h, 90s); default 7d.
        #[arg(long)]
        window: Option<String>,
    },
    /// The org's usage by UTC hour or day: peak active and queued calls,
    /// seconds at the limit, burst, calls admitted, waited and given up,
    /// wait p50 and p90 (org admin or operator; kept 90 days by default).
    #[command(after_help = "Example: slotgate usage acme --step 1d --from 2026-11-01T00:00:00Z")]
    Usage {
        /// The org.
        org: String,
        /// Start, RFC 3339 UTC (default: a day before --to; a week with --step 1d).
        #[arg(long)]
        from: Option<String>,
        /// End, RFC 3339 UTC (default: now).
        #[arg(long)]
        to: Option<String>,
        /// 1h or 1d (default 1h).
        #[arg(long, value_parser = parse_step)]
        step: Option<slotgate_client::api::Step>,
    },
    /// Recommend a limit and reservations that meet service-level targets.
    ///
    /// From the org's observed traffic (or --traffic FILE), sizes the pool
    /// by Erlang's formulas, reserves slots for the types with the strictest
    /// targets, and checks the result by simulating the org through the real
    /// admission engine. Prints the recommendation and the limits around it,
    /// so you see what one slot more or less buys. Changes nothing.
    #[command(
        after_help = "Example: slotgate plan acme --target inbound=80%/20s --target outbound=95%/5m"
    )]
    Plan {
        /// The org.
        org: String,
        /// Traffic and targets.
        #[command(flatten)]
        traffic: planning::TrafficArgs,
        /// The highest limit worth considering (default 10,000).
        #[arg(long)]
        max_limit: Option<u32>,
    },
    /// Simulate the org as configured now beside a what-if (a limit, reservations).
    ///
    /// Runs the org's traffic (observed, or --traffic FILE) through the real
    /// admission engine on a simulated clock, for the current limit and
    /// reservations and for the changes given, on the same random traffic,
    /// and prints service level, waits, abandonment and slot usage side by
    /// side. Changes nothing.
    #[command(
        after_help = "Example: slotgate simulate acme --limit 25 --reserve agent-a:inbound=4 --target inbound=80%/20s"
    )]
    Simulate {
        /// The org.
        org: String,
        /// Traffic and targets.
        #[command(flatten)]
        traffic: planning::TrafficArgs,
        /// The change to compare.
        #[command(flatten)]
        what_if: planning::WhatIfArgs,
    },
    /// The concurrency bar and the agents table, in the terminal.
    #[command(after_help = "Example: slotgate status acme --watch")]
    Status {
        /// The org.
        org: String,
        /// Redraw every 2 seconds until interrupted.
        #[arg(long)]
        watch: bool,
    },
}

/// A number of slots: a whole number from 0 to 1,000,000.
fn slots(s: &str) -> Result<u32, String> {
    match s.parse::<i64>() {
        Ok(n) if (0..=i64::from(slotgate_api::limits::MAX_LIMIT)).contains(&n) => Ok(n as u32),
        _ => Err(format!(
            "must be a whole number from 0 to {}, got {s:?}",
            slotgate_api::limits::MAX_LIMIT
        )),
    }
}

/// One of the API's closed sets (a call type, a role), refused in its words.
fn parse_api<T: std::str::FromStr<Err = slotgate_api::FieldError>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: slotgate_api::FieldError| e.message)
}

fn parse_live_state(s: &str) -> Result<CallState, String> {
    match s.parse() {
        Ok(CallState::Ended) | Err(_) => Err(format!("must be active or queued, got {s:?}")),
        Ok(state) => Ok(state),
    }
}

impl Conn {
    /// The key to use and where it came from.
    pub fn key(&self) -> Result<(String, KeySource), Failure> {
        if let Some(k) = &self.key {
            let from_env = std::env::var("SLOTGATE_KEY").is_ok_and(|e| &e == k);
            let source = if from_env {
                KeySource::Env
            } else {
                KeySource::Flag
            };
            return Ok((k.clone(), source));
        }
        std::fs::read_to_string("slotgate-data/operator.key")
            .map(|k| (k.trim().to_string(), KeySource::File))
            .map_err(|_| {
                Failure::Other(
                    "no key: pass --key or set SLOTGATE_KEY (or run from the directory holding slotgate-data/)".into(),
                )
            })
    }
}

/// Runs a client subcommand and prints its result; the exit code.
pub async fn run(conn: &Conn, key: &str, cmd: ClientCommand) -> Result<ExitCode, Failure> {
    let client = match &conn.ca_file {
        None => Client::new(&conn.url, key),
        Some(file) => Client::new(&conn.url, key).with_ca_file(file)?,
    };
    let json = conn.json;
    match cmd {
        ClientCommand::Org(OrgCommand::Create { id, limit, plan }) => {
            let body = slotgate_api::CreateOrg { id, limit, plan };
            let org = client.create_org_with(&body).await?;
            emit(json, &org, || {
                format!(
                    "created org {} with limit {}{}",
                    org.id,
                    org.limit,
                    plan_note(&org)
                )
            })?;
        }
        ClientCommand::Org(OrgCommand::Rate {
            id,
            rate_per_s,
            clear,
        }) => {
            let rate = match (rate_per_s, clear) {
                (None, false) => client.org_rate(&id).await?,
                (rate, _) => client.set_org_rate(&id, rate).await?,
            };
            emit(json, &rate, || rate_text(&id, &rate))?;
        }
        ClientCommand::Org(OrgCommand::Plan { id, plan }) => {
            let plan = (plan != "none").then_some(plan);
            let org = client.set_org_plan(&id, plan.as_deref()).await?;
            emit(json, &org, || match &org.plan {
                Some(p) => format!(
                    "org {} is on plan {p}: limit {}, burst {}",
                    org.id, org.limit, org.burst
                ),
                None => format!(
                    "org {} is on no plan: its own limit {}, burst {}",
                    org.id, org.limit, org.burst
                ),
            })?;
        }
        ClientCommand::Plans(cmd) => plan_command(&client, json, cmd).await?,
        ClientCommand::Org(OrgCommand::List) => {
            let orgs = client.orgs().await?;
            emit(json, &orgs, || orgs_table(&orgs))?;
        }
        ClientCommand::Org(OrgCommand::Show { id }) => {
            let org = client.org(&id).await?;
            emit(json, &org, || {
                status::render(&org, status::Look::of_stdout())
            })?;
        }
        ClientCommand::Org(OrgCommand::Limit { id, limit }) => {
            let org = match limit.0 {
                Some(limit) => client.set_limit(&id, limit).await?,
                None => client.clear_limit(&id).await?,
            };
            emit(json, &org, || {
                format!(
                    "org {} now has limit {} (shared {}){}",
                    org.id,
                    org.limit,
                    org.shared,
                    plan_note(&org)
                )
            })?;
        }
        ClientCommand::Reserve(r) => {
            let per = Reservations {
                webcall: r.webcall,
                chat: r.chat,
                outbound: r.outbound,
                inbound: r.inbound,
            };
            let a = client.set_reservations(&r.org, &r.agent, per).await?;
            emit(json, &a, || {
                format!(
                    "{} reserves {} (webcall {}, chat {}, outbound {}, inbound {})",
                    a.id,
                    a.reserved_total,
                    a.reserved.webcall,
                    a.reserved.chat,
                    a.reserved.outbound,
                    a.reserved.inbound
                )
            })?;
        }
        ClientCommand::Cap(CapArgs {
            org,
            agent,
            caps: c,
        }) => {
            // `--clear` comes alone (clap): every cap is then `None`.
            let caps = Caps {
                webcall: c.webcall,
                chat: c.chat,
                outbound: c.outbound,
                inbound: c.inbound,
                total: c.total,
            };
            let a = client.set_caps(&org, &agent, caps).await?;
            emit(json, &a, || caps_text(&a.id, &a.caps))?;
        }
        ClientCommand::Burst { org, burst } => {
            let o = match burst.0 {
                Some(burst) => client.set_burst(&org, burst).await?,
                None => client.clear_burst(&org).await?,
            };
            emit(json, &o, || {
                format!(
                    "org {} now has burst {} above its limit {} (in use: {})",
                    o.id, o.burst, o.limit, o.burst_in_use
                )
            })?;
        }
        ClientCommand::Unreserve { org, agent } => {
            let a = client.remove_agent(&org, &agent).await?;
            emit(json, &a, || {
                format!("{} has no reservations; its slots are shared again", a.id)
            })?;
        }
        ClientCommand::Calls { org, state, agent } => {
            let calls = client.calls(&org, &CallFilter { state, agent }).await?;
            emit(json, &calls, || {
                let mut t = String::from(
                    "CALL                 AGENT            TYPE      STATE    SLOT      POSITION  EXPECTED WAIT\n",
                );
                for c in &calls {
                    let _ = writeln!(
                        t,
                        "{:<20} {:<16} {:<9} {:<8} {:<9} {:<9} {}",
                        c.id,
                        c.agent,
                        c.call_type,
                        c.state,
                        c.slot.map_or("-", |s| s.as_str()),
                        c.position.map_or("-".into(), |p| p.to_string()),
                        if let Some(reason) = c.blocked {
                            // It would wait forever: say why instead.
                            format!("never: blocked ({reason})")
                        } else if c.is_queued() {
                            wait_text(c.estimated_wait_s)
                        } else {
                            "-".into()
                        }
                    );
                }
                t + &count(calls.len(), "call")
            })?;
        }
        ClientCommand::Acquire { call, wait } => {
            let (status, c) = client
                .start_call(&call.org, &acquire_body(&call, Some(wait)))
                .await?;
            if c.state == CallState::Ended {
                // The id of an ended call answers that call: no slot for a script to use.
                return Err(Failure::CallEnded(Box::new(c)));
            }
            emit(json, &c, || {
                match c.state {
                CallState::Active => format!(
                    "call {} is active in a {} slot{}",
                    c.id,
                    c.slot.map_or("?", |s| s.as_str()),
                    if status == 200 { " (it existed already)" } else { "" }
                ),
                CallState::Queued => match c.blocked {
                    Some(reason) => format!(
                        "call {} is queued at position {}, blocked ({reason}): the org as configured now can never admit it, until its limit, burst, reservations or caps change; heartbeat it within its lease ({} s) to keep its place",
                        c.id,
                        c.position.unwrap_or(0),
                        c.lease_ttl_s
                    ),
                    None => format!(
                        "call {} is queued at position {} (expected wait {}); heartbeat it within its lease ({} s) to keep its place",
                        c.id,
                        c.position.unwrap_or(0),
                        wait_text(c.estimated_wait_s),
                        c.lease_ttl_s
                    ),
                },
                CallState::Ended => unreachable!("an ended call is a failure, above"),
            }
            })?;
        }
        ClientCommand::Hold { call, command } => {
            // The API's own checks, so a bad value is refused here as the server would.
            let body = acquire_body(&call, None);
            let invalid = |e: slotgate_api::FieldError| Failure::Other(e.to_string());
            let mut req = Acquire::new(&call.agent, call.call_type)
                .lease_ttl(body.lease_ttl().map_err(invalid)?);
            if let Some(id) = &call.id {
                req = req.id(id);
            }
            if let Some(w) = body.max_wait().map_err(invalid)? {
                req = req.max_wait(w);
            }
            req.if_blocked = call.if_blocked;
            return hold::run(&client, &call.org, req, &command).await;
        }
        ClientCommand::Heartbeat { org, call } => {
            let c = client.heartbeat(&org, &call, None).await?;
            emit(json, &c, || {
                let until = c
                    .lease_expires_at
                    .as_deref()
                    .or(c.hold_expires_at.as_deref());
                let place = match c.position.filter(|_| c.is_queued()) {
                    Some(p) => format!(
                        "; position {p}, expected wait {}",
                        wait_text(c.estimated_wait_s)
                    ),
                    None => String::new(),
                };
                format!(
                    "call {} ({}) renewed{}{place}",
                    c.id,
                    c.state,
                    until.map_or(String::new(), |t| format!(" until {t}"))
                )
            })?;
        }
        ClientCommand::Release { org, call } => release(&client, &org, &call, json).await?,
        ClientCommand::Keys(KeysCommand::Create { org, role, name }) => {
            let k = client.create_key(&org, role, &name).await?;
            emit(json, &k, || {
                format!(
                    "key {} ({}, {}) created; its secret, shown only now:\n{}",
                    k.id, k.name, k.role, k.key
                )
            })?;
        }
        ClientCommand::Keys(KeysCommand::List { org }) => {
            let keys = client.keys(&org).await?;
            emit(json, &keys, || {
                let mut t =
                    String::from("ID                NAME                 ROLE     CREATED\n");
                for k in &keys {
                    let _ = writeln!(
                        t,
                        "{:<17} {:<20} {:<8} {}",
                        k.id, k.name, k.role, k.created_at
                    );
                }
                t + &count(keys.len(), "key")
            })?;
        }
        ClientCommand::Keys(KeysCommand::Revoke { org, id }) => {
            client.revoke_key(&org, &id).await?;
            emit(json, &serde_json::json!({"revoked": id}), || {
                format!("key {id} revoked")
            })?;
        }
        ClientCommand::Status { org, watch } => {
            status::run(&client, &org, watch, json, &conn.url).await?;
        }
        ClientCommand::Traffic { org, window } => {
            planning::traffic(&client, &org, window.as_deref(), json).await?;
        }
        ClientCommand::Usage {
            org,
            from,
            to,
            step,
        } => usage::run(&client, &org, from.as_deref(), to.as_deref(), step, json).await?,
        ClientCommand::Plan {
            org,
            traffic,
            max_limit,
        } => planning::plan(&client, &org, traffic, max_limit, json).await?,
        ClientCommand::Simulate {
            org,
            traffic,
            what_if,
        } => planning::simulate(&client, &org, traffic, what_if, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_step(s: &str) -> Result<slotgate_client::api::Step, String> {
    s.parse()
        .map_err(|e: slotgate_client::api::FieldError| e.message)
}

/// `slotgate release`: ends the call and says what that did. Releasing an
/// active call frees its slot (and names the queued calls that took it);
/// cancelling a queued call frees none; an ended call is left as it was.
async fn release(client: &Client, org: &str, call: &str, json: bool) -> Result<(), Failure> {
    let before = client.call_info(org, call, Duration::ZERO).await?;
    if before.state == CallState::Ended {
        return emit(json, &before, || {
            format!(
                "call {} had already ended ({}); nothing changed",
                before.id,
                before.end_reason.map_or("?", |r| r.as_str())
            )
        });
    }
    // Which queued calls take the freed slot: those queued before and active after.
    let live = |state| CallFilter {
        state: Some(state),
        agent: None,
    };
    let queued: Vec<String> = match before.state {
        CallState::Active => client
            .calls(org, &live(CallState::Queued))
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect(),
        _ => Vec::new(),
    };
    let c = client.release(org, call).await?;
    let admitted = if queued.is_empty() {
        Vec::new()
    } else {
        client
            .calls(org, &live(CallState::Active))
            .await?
            .into_iter()
            .filter(|a| queued.contains(&a.id))
            .collect()
    };
    emit(json, &c, || {
        if c.end_reason == Some(EndReason::Cancelled) {
            return format!(
                "call {} cancelled: it left the queue (it held no slot, so none was freed)",
                c.id
            );
        }
        let mut t = format!(
            "call {} ended: {}",
            c.id,
            c.end_reason.map_or("?", |r| r.as_str())
        );
        for a in &admitted {
            let _ = write!(
                t,
                "\ncall {} ({}, {}) was admitted from the queue into a {} slot",
                a.id,
                a.agent,
                a.call_type,
                a.slot.map_or("?", |s| s.as_str())
            );
        }
        if admitted.is_empty() && !queued.is_empty() {
            t.push_str("\nno queued call could take the freed slot");
        }
        t
    })
}

/// The acquire request of `slotgate acquire`.
fn acquire_body(call: &CallArgs, wait: Option<f64>) -> slotgate_api::AcquireCall {
    slotgate_api::AcquireCall {
        id: call.id.clone(),
        lease_ttl_s: Some(call.lease_ttl),
        max_wait_s: call.max_wait,
        wait_s: wait,
        if_blocked: call.if_blocked,
        ..slotgate_api::AcquireCall::new(call.agent.clone(), call.call_type)
    }
}

/// An agent's caps in words: `agent-a is capped at chat 2, total 5`.
/// `slotgate plans ...`.
async fn plan_command(client: &Client, json: bool, cmd: PlanCommand) -> Result<(), Failure> {
    match cmd {
        PlanCommand::List => {
            let plans = client.plans().await?;
            emit(json, &plans, || {
                let mut t = String::from("PLAN                 LIMIT  BURST  ORGS\n");
                for p in &plans {
                    let _ = writeln!(
                        t,
                        "{:<20} {:>5}  {:>5}  {:>4}",
                        p.id, p.limit, p.burst, p.orgs
                    );
                }
                t + &count(plans.len(), "plan")
            })?;
        }
        PlanCommand::Create { id, limit, burst } => {
            let p = client.create_plan(&id, limit, burst).await?;
            emit(json, &p, || {
                format!(
                    "created plan {} with limit {} and burst {}",
                    p.id, p.limit, p.burst
                )
            })?;
        }
        PlanCommand::Set { id, limit, burst } => {
            let p = client.update_plan(&id, limit, burst).await?;
            emit(json, &p, || {
                format!(
                    "plan {} now has limit {} and burst {} ({} on it)",
                    p.id,
                    p.limit,
                    p.burst,
                    count(p.orgs as usize, "org")
                )
            })?;
        }
        PlanCommand::Delete { id } => {
            client.delete_plan(&id).await?;
            emit(json, &serde_json::json!({"deleted": id}), || {
                format!("deleted plan {id}")
            })?;
        }
    }
    Ok(())
}

/// ", from plan P" or ", its own (plan P)" after an org's limit.
fn plan_note(org: &Org) -> String {
    match (&org.plan, org.limit_source) {
        (None, _) => String::new(),
        (Some(p), slotgate_api::Source::Plan) => format!(", from plan {p}"),
        (Some(p), slotgate_api::Source::Org) => format!(", its own (on plan {p})"),
    }
}

/// An org's own limit or burst, or `None`: back to its plan's.
#[derive(Debug, Clone, Copy)]
pub struct OwnOrPlan(pub Option<u32>);

/// A number, or `plan`: back to the org's plan's.
fn own_or_plan(s: &str) -> Result<OwnOrPlan, String> {
    match s {
        "plan" => Ok(OwnOrPlan(None)),
        n => slots(n).map(|n| OwnOrPlan(Some(n))),
    }
}

fn caps_text(agent: &str, caps: &Caps) -> String {
    let set: Vec<String> = CallType::ALL
        .iter()
        .map(|&t| (t.as_str(), caps.get(t)))
        .chain([("total", caps.total)])
        .filter_map(|(name, cap)| cap.map(|n| format!("{name} {n}")))
        .collect();
    match set.is_empty() {
        true => format!("{agent} has no caps"),
        false => format!("{agent} is capped at {}", set.join(", ")),
    }
}

fn orgs_table(orgs: &[Org]) -> String {
    let mut t =
        String::from("ORG                  LIMIT  RESERVED  SHARED  ACTIVE  QUEUED  PLAN\n");
    for o in orgs {
        let _ = writeln!(
            t,
            "{:<20} {:>5}  {:>8}  {:>6}  {:>6}  {:>6}  {}",
            o.id,
            o.limit,
            o.reserved,
            o.shared,
            o.active,
            o.queued,
            o.plan.as_deref().unwrap_or("-")
        );
    }
    t + &count(orgs.len(), "org")
}
