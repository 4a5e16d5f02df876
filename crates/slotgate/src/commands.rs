//! The operator's subcommands (`org`, `reserve`, `calls`, `keys`, `status`...),
//! spoken through the Rust client, printed as tables or JSON.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use slotgate_client::{CallFilter, CallState, Client, Org, Reservations, Role};

/// Where the server is and which key to use; shared by every client subcommand.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The server's base URL.
    #[arg(
        long,
        env = "SLOTGATE_URL",
        default_value = "http://127.0.0.1:7878",
        global = true
    )]
    pub url: String,
    /// The key to use. Without it, ./slotgate-data/operator.key is read if present.
    #[arg(long, env = "SLOTGATE_KEY", global = true, hide_env_values = true)]
    pub key: Option<String>,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

/// `slotgate org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org with a limit (operator key).
    Create {
        /// The org's id.
        id: String,
        /// Its concurrency limit (plan).
        #[arg(long)]
        limit: u32,
    },
    /// List orgs (operator key).
    List,
    /// Show an org: limit, reservations, usage, agents.
    Show {
        /// The org's id.
        id: String,
    },
    /// Set an org's limit (operator key).
    Limit {
        /// The org's id.
        id: String,
        /// The new limit.
        limit: u32,
    },
}

/// `slotgate keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for an org; its secret is printed once.
    Create {
        /// The org.
        org: String,
        /// `admin` (everything but the limit) or `runtime` (calls, and reading the org).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A name for people.
        #[arg(long)]
        name: String,
    },
    /// List an org's keys (no secrets).
    List {
        /// The org.
        org: String,
    },
    /// Revoke a key: it stops working at once.
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
    #[arg(long, default_value_t = 0)]
    pub webcall: u32,
    /// Reserved chats.
    #[arg(long, default_value_t = 0)]
    pub chat: u32,
    /// Reserved outbound telephony calls.
    #[arg(long, default_value_t = 0)]
    pub outbound: u32,
    /// Reserved inbound telephony calls.
    #[arg(long, default_value_t = 0)]
    pub inbound: u32,
}

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Orgs and their limits.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Reserve slots for an agent, per call type (missing types are 0).
    Reserve(ReserveArgs),
    /// Remove an agent's reservations; its slots return to the shared pool.
    Unreserve {
        /// The org.
        org: String,
        /// The agent.
        agent: String,
    },
    /// List live calls: active ones, then queued ones in queue order.
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
    /// End a call: released if active, cancelled if queued.
    Release {
        /// The org.
        org: String,
        /// The call's id.
        call: String,
    },
    /// Org keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The concurrency bar and the agents table, in the terminal.
    Status {
        /// The org.
        org: String,
        /// Redraw every 2 seconds until interrupted.
        #[arg(long)]
        watch: bool,
    },
}

fn key(conn: &Conn) -> Result<String, String> {
    if let Some(k) = &conn.key {
        return Ok(k.clone());
    }
    std::fs::read_to_string("slotgate-data/operator.key")
        .map(|k| k.trim().to_string())
        .map_err(|_| "no key: pass --key or set SLOTGATE_KEY (or run from the directory holding slotgate-data/)".into())
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: slotgate_api::FieldError| e.message)
}

fn parse_live_state(s: &str) -> Result<CallState, String> {
    match s.parse() {
        Ok(CallState::Ended) | Err(_) => Err(format!("must be active or queued, got {s:?}")),
        Ok(state) => Ok(state),
    }
}

fn explain(e: slotgate_client::Error, url: &str) -> String {
    match e {
        slotgate_client::Error::Api { error: a, .. } => {
            let mut s = format!("{} ({})", a.message, a.code);
            if let Some(n) = a.available {
                let _ = write!(s, "; available: {n}");
            }
            if let Some(n) = a.reserved {
                let _ = write!(s, "; reserved: {n}");
            }
            s
        }
        slotgate_client::Error::Transport(t) => {
            let mut s = format!("cannot reach slotgate at {url}: {t}");
            let mut cause = std::error::Error::source(&t);
            while let Some(c) = cause {
                let _ = write!(s, ": {c}");
                cause = c.source();
            }
            s
        }
        other => other.to_string(),
    }
}

fn out<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> String {
    if json {
        serde_json::to_string_pretty(value).expect("API values serialize")
    } else {
        human()
    }
}

/// Runs a client subcommand; the text to print, or the error in words.
pub async fn run(conn: &Conn, cmd: ClientCommand) -> Result<String, String> {
    let client = Client::new(&conn.url, &key(conn)?);
    let e = |err| explain(err, &conn.url);
    let json = conn.json;
    Ok(match cmd {
        ClientCommand::Org(OrgCommand::Create { id, limit }) => {
            let org = client.create_org(&id, limit).await.map_err(e)?;
            out(json, &org, || {
                format!("created org {} with limit {}", org.id, org.limit)
            })
        }
        ClientCommand::Org(OrgCommand::List) => {
            let orgs = client.orgs().await.map_err(e)?;
            out(json, &orgs, || orgs_table(&orgs))
        }
        ClientCommand::Org(OrgCommand::Show { id }) => {
            let org = client.org(&id).await.map_err(e)?;
            out(json, &org, || status(&org, false))
        }
        ClientCommand::Org(OrgCommand::Limit { id, limit }) => {
            let org = client.set_limit(&id, limit).await.map_err(e)?;
            out(json, &org, || {
                format!(
                    "org {} now has limit {} (shared {})",
                    org.id, org.limit, org.shared
                )
            })
        }
        ClientCommand::Reserve(r) => {
            let per = Reservations {
                webcall: r.webcall,
                chat: r.chat,
                outbound: r.outbound,
                inbound: r.inbound,
            };
            let a = client
                .set_reservations(&r.org, &r.agent, per)
                .await
                .map_err(e)?;
            out(json, &a, || {
                format!(
                    "{} reserves {} (webcall {}, chat {}, outbound {}, inbound {})",
                    a.id,
                    a.reserved_total,
                    a.reserved.webcall,
                    a.reserved.chat,
                    a.reserved.outbound,
                    a.reserved.inbound
                )
            })
        }
        ClientCommand::Unreserve { org, agent } => {
            let a = client.remove_agent(&org, &agent).await.map_err(e)?;
            out(json, &a, || {
                format!("{} has no reservations; its slots are shared again", a.id)
            })
        }
        ClientCommand::Calls { org, state, agent } => {
            let calls = client
                .calls(&org, &CallFilter { state, agent })
                .await
                .map_err(e)?;
            out(json, &calls, || {
                let mut t = String::from(
                    "CALL                 AGENT            TYPE      STATE    SLOT      POSITION\n",
                );
                for c in &calls {
                    let _ = writeln!(
                        t,
                        "{:<20} {:<16} {:<9} {:<8} {:<9} {}",
                        c.id,
                        c.agent,
                        c.call_type,
                        c.state,
                        c.slot.map_or("-", |s| s.as_str()),
                        c.position.map_or("-".into(), |p| p.to_string())
                    );
                }
                let _ = write!(t, "{} calls", calls.len());
                t
            })
        }
        ClientCommand::Release { org, call } => {
            let c = client.release(&org, &call).await.map_err(e)?;
            out(json, &c, || {
                format!(
                    "call {} ended: {}",
                    c.id,
                    c.end_reason.map_or("?", |r| r.as_str())
                )
            })
        }
        ClientCommand::Keys(KeysCommand::Create { org, role, name }) => {
            let k = client.create_key(&org, role, &name).await.map_err(e)?;
            out(json, &k, || {
                format!(
                    "key {} ({}, {}) created; its secret, shown only now:\n{}",
                    k.id, k.name, k.role, k.key
                )
            })
        }
        ClientCommand::Keys(KeysCommand::List { org }) => {
            let keys = client.keys(&org).await.map_err(e)?;
            out(json, &keys, || {
                let mut t =
                    String::from("ID                NAME                 ROLE     CREATED\n");
                for k in &keys {
                    let _ = writeln!(
                        t,
                        "{:<17} {:<20} {:<8} {}",
                        k.id, k.name, k.role, k.created_at
                    );
                }
                let _ = write!(t, "{} keys", keys.len());
                t
            })
        }
        ClientCommand::Keys(KeysCommand::Revoke { org, id }) => {
            client.revoke_key(&org, &id).await.map_err(e)?;
            out(json, &serde_json::json!({"revoked": id}), || {
                format!("key {id} revoked")
            })
        }
        ClientCommand::Status { org, watch } => {
            let color = std::io::stdout().is_terminal();
            loop {
                let o = client.org(&org).await.map_err(e)?;
                let text = out(json, &o, || status(&o, color));
                if !watch {
                    break text;
                }
                print!("\x1b[2J\x1b[H{text}\n\n(updating every 2 s; Ctrl-C to stop)\n");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    })
}

fn orgs_table(orgs: &[Org]) -> String {
    let mut t = String::from("ORG                  LIMIT  RESERVED  SHARED  ACTIVE  QUEUED\n");
    for o in orgs {
        let _ = writeln!(
            t,
            "{:<20} {:>5}  {:>8}  {:>6}  {:>6}  {:>6}",
            o.id, o.limit, o.reserved, o.shared, o.active, o.queued
        );
    }
    let _ = write!(t, "{} orgs", orgs.len());
    t
}

const BAR: usize = 60;
const COLORS: [u8; 6] = [34, 35, 32, 36, 33, 31];

/// The org as text: its numbers, the concurrency bar and the agents table.
pub fn status(o: &Org, color: bool) -> String {
    let mut t = format!(
        "{}  limit {} · reserved {} · shared {} · active {} · queued {}\n",
        o.id, o.limit, o.reserved, o.shared, o.active, o.queued
    );
    // One segment per agent with a reservation, then shared; '#' in use, '.' free.
    let reserved: Vec<_> = o.agents.iter().filter(|a| a.reserved_total > 0).collect();
    let width = |slots: u32| {
        if o.limit == 0 {
            0
        } else {
            (slots as usize * BAR).div_ceil(o.limit as usize)
        }
    };
    let mut bar = String::from("[");
    let mut legend = String::new();
    let paint = |s: &str, i: usize| {
        if color {
            format!("\x1b[{}m{s}\x1b[0m", COLORS[i % COLORS.len()])
        } else {
            s.to_string()
        }
    };
    for (i, a) in reserved.iter().enumerate() {
        let w = width(a.reserved_total).max(1);
        let used = (a.reserved_in_use as usize * w)
            .div_ceil(a.reserved_total.max(1) as usize)
            .min(w);
        let mark = (b'A' + (i % 26) as u8) as char;
        bar.push_str(&paint(
            &format!("{}{}", mark.to_string().repeat(used), ".".repeat(w - used)),
            i,
        ));
        bar.push('|');
        let _ = write!(
            legend,
            "{mark} {} {}/{}   ",
            a.id, a.reserved_in_use, a.reserved_total
        );
    }
    let w = width(o.shared);
    let used = if o.shared == 0 {
        0
    } else {
        (o.shared_in_use.min(o.shared) as usize * w)
            .div_ceil(o.shared as usize)
            .min(w)
    };
    bar.push_str(&format!("{}{}", "#".repeat(used), ".".repeat(w - used)));
    bar.push(']');
    let _ = write!(legend, "# shared {}/{}", o.shared_in_use, o.shared);
    let _ = writeln!(t, "{bar}\n{legend}");
    if o.queued > 0 {
        let _ = writeln!(t, "{} queued", o.queued);
    }
    let _ = writeln!(
        t,
        "\nAGENT                 WEBCALL     CHAT        OUTBOUND    INBOUND     ACTIVE  QUEUED"
    );
    for a in &o.agents {
        let cell = |r: u32, n: u32, q: u32| format!("{r} {n}/{q}");
        let _ = writeln!(
            t,
            "{:<20}  {:<10}  {:<10}  {:<10}  {:<10}  {:>6}  {:>6}",
            a.id,
            cell(a.reserved.webcall, a.active.webcall, a.queued.webcall),
            cell(a.reserved.chat, a.active.chat, a.queued.chat),
            cell(a.reserved.outbound, a.active.outbound, a.queued.outbound),
            cell(a.reserved.inbound, a.active.inbound, a.queued.inbound),
            a.active.total(),
            a.queued.total()
        );
    }
    let _ = write!(t, "(per type: reserved, then active/queued)");
    t
}
