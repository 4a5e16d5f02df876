//! `slotgate traffic`, `slotgate plan` and `slotgate simulate`: how many slots, and where.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use slotgate_client::plan::sim::Metrics;
use slotgate_client::plan::traffic::Summary;
use slotgate_client::plan::{
    CheckSettings, Estimate, PlanAnswer, PlanBody, Reservation, SimulateAnswer, SimulateBody,
    Target, Traffic, TrafficSpec, WhatIf,
};
use slotgate_client::{CallType, Client};

use super::output::{emit, Failure};

/// Where the traffic comes from, and how hard to simulate.
#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// Observe the org's recorded calls over this window (e.g. 7d, 12h); default 7d.
    #[arg(long, conflicts_with = "traffic")]
    pub window: Option<String>,
    /// Plan for this traffic instead: a JSON file with a list of
    /// {"agent", "call_type", "calls_per_hour", "mean_duration_s",
    /// "duration_sd_s"?, "patience_s"?}.
    #[arg(long, value_name = "FILE")]
    pub traffic: Option<PathBuf>,
    /// A service-level target, TYPE=SHARE/TIME: "inbound=80%/20s" admits 80%
    /// of inbound calls within 20 s. Repeat per type.
    #[arg(long = "target", value_name = "TYPE=SHARE/TIME", value_parser = parse_target)]
    pub targets: Vec<Target>,
    /// Simulated time per replication (e.g. 1d, 6h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub horizon: Option<std::time::Duration>,
    /// Independent replications per check (at least 2; more: narrower intervals).
    #[arg(long)]
    pub replications: Option<u32>,
    /// The seed of the simulations (the same seed gives the same answer).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `slotgate simulate`'s what-if.
#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// Try this limit.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Try this reservation, AGENT:TYPE=N (0 removes one). Repeatable.
    #[arg(long = "reserve", value_name = "AGENT:TYPE=N", value_parser = parse_reservation)]
    pub reservations: Vec<Reservation>,
}

/// `slotgate traffic`.
pub async fn traffic(
    client: &Client,
    org: &str,
    window: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let t = client.traffic(org, window).await?;
    emit(json, &t, || traffic_table(org, &t))
}

/// `slotgate plan`.
pub async fn plan(
    client: &Client,
    org: &str,
    args: TrafficArgs,
    max_limit: Option<u32>,
    json: bool,
) -> Result<(), Failure> {
    if args.targets.is_empty() {
        return Err(Failure::Other(
            "give at least one --target, e.g. --target inbound=80%/20s".into(),
        ));
    }
    let body = PlanBody {
        traffic: read_traffic(args.traffic.as_ref())?,
        window: args.window.clone(),
        max_limit,
        check: check(&args),
        targets: args.targets,
    };
    working(&format!(
        "planning {org}: simulating the candidates on the server..."
    ));
    let a = client.plan(org, &body).await?;
    emit(json, &a, || plan_text(&a))
}

/// `slotgate simulate`.
pub async fn simulate(
    client: &Client,
    org: &str,
    args: TrafficArgs,
    what_if: WhatIfArgs,
    json: bool,
) -> Result<(), Failure> {
    let mut what_ifs = Vec::new();
    if what_if.limit.is_some() || !what_if.reservations.is_empty() {
        let mut name = Vec::new();
        if let Some(l) = what_if.limit {
            name.push(format!("limit {l}"));
        }
        for r in &what_if.reservations {
            name.push(format!("{} {} {}", r.agent, r.call_type, r.reserved));
        }
        what_ifs.push(WhatIf {
            name: name.join(", "),
            limit: what_if.limit,
            reservations: what_if.reservations,
        });
    }
    let body = SimulateBody {
        traffic: read_traffic(args.traffic.as_ref())?,
        window: args.window.clone(),
        check: check(&args),
        targets: args.targets,
        what_if: what_ifs,
    };
    working(&format!("simulating {org} on the server..."));
    let a = client.simulate(org, &body).await?;
    emit(json, &a, || simulate_text(&a))
}

/// Says on a terminal's stderr that the server is working (plans take seconds).
fn working(what: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{what}");
    }
}

fn check(args: &TrafficArgs) -> Option<CheckSettings> {
    if args.horizon.is_none() && args.replications.is_none() && args.seed.is_none() {
        return None;
    }
    let d = CheckSettings::default();
    Some(CheckSettings {
        horizon_s: args.horizon.map_or(d.horizon_s, |h| h.as_secs_f64()),
        replications: args.replications.unwrap_or(d.replications),
        seed: args.seed.unwrap_or(d.seed),
        ..d
    })
}

fn read_traffic(path: Option<&PathBuf>) -> Result<Option<Vec<TrafficSpec>>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Other(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))
}

/// "inbound=80%/20s" (or "inbound=0.8/20s").
fn parse_target(s: &str) -> Result<Target, String> {
    let bad = || format!("must be TYPE=SHARE/TIME, e.g. inbound=80%/20s, got {s:?}");
    let (t, rest) = s.split_once('=').ok_or_else(bad)?;
    let (share, within) = rest.split_once('/').ok_or_else(bad)?;
    let call_type: CallType = t.parse().map_err(|e: slotgate_api::FieldError| e.message)?;
    let service_level = match share.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|p| p / 100.0),
        None => share.parse::<f64>(),
    }
    .map_err(|_| bad())?;
    let within = humantime::parse_duration(within).map_err(|e| format!("{within:?}: {e}"))?;
    Ok(Target {
        call_type,
        service_level,
        within_s: within.as_secs_f64(),
    })
}

/// "agent-a:inbound=4".
fn parse_reservation(s: &str) -> Result<Reservation, String> {
    let bad = || format!("must be AGENT:TYPE=N, e.g. agent-a:inbound=4, got {s:?}");
    let (agent, rest) = s.rsplit_once(':').ok_or_else(bad)?;
    let (t, n) = rest.split_once('=').ok_or_else(bad)?;
    Ok(Reservation {
        agent: agent.to_string(),
        call_type: t.parse().map_err(|e: slotgate_api::FieldError| e.message)?,
        reserved: n.parse().map_err(|_| bad())?,
    })
}

fn secs(s: Option<Summary>, pick: fn(&Summary) -> f64) -> String {
    s.map_or("-".into(), |s| format!("{:.0} s", pick(&s)))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn traffic_table(org: &str, t: &Traffic) -> String {
    let mut out = format!(
        "traffic of {org} over the last {}\n",
        humantime::format_duration(if t.window_s < 10.0 {
            std::time::Duration::from_millis((t.window_s * 1000.0) as u64)
        } else {
            std::time::Duration::from_secs(t.window_s as u64)
        })
    );
    out.push_str("AGENT            TYPE      CALLS  PER HOUR  DURATION MEAN  P90     WAITED  WAIT P90  GAVE UP  PATIENCE\n");
    for s in &t.streams {
        let o = &s.observed;
        let _ = writeln!(
            out,
            "{:<16} {:<9} {:>5}  {:>8.1}  {:>13}  {:>6}  {:>6}  {:>8}  {:>7}  {:>8}",
            s.agent,
            s.call_type,
            o.calls,
            o.calls_per_hour,
            secs(o.duration, |d| d.mean_s),
            secs(o.duration, |d| d.p90_s),
            pct(o.waited),
            secs(o.wait, |w| w.p90_s),
            pct(o.gave_up),
            o.patience_s.map_or("-".into(), |p| format!("{p:.0} s")),
        );
    }
    if t.streams.is_empty() {
        out.push_str("no calls in the window\n");
    }
    out.trim_end().to_string()
}

fn est(e: &Estimate, f: fn(f64) -> String) -> String {
    if e.half_width.is_finite() {
        format!("{} ±{}", f(e.mean), f(e.half_width))
    } else {
        f(e.mean)
    }
}

fn plan_text(a: &PlanAnswer) -> String {
    let p = &a.plan;
    let mut out = format!(
        "recommended limit: {} (now {}); a pure shared pool needs {} by Erlang's formulas\n",
        p.limit, a.current.limit, p.erlang_limit
    );
    if p.reservations.is_empty() {
        out.push_str("reservations: none; a shared pool meets every target\n");
    } else {
        out.push_str("reservations:\n");
        for r in &p.reservations {
            let _ = writeln!(out, "  {} {} {}", r.agent, r.call_type, r.reserved);
        }
    }
    out.push_str("\nLIMIT  TYPE      TARGET          SERVICE LEVEL    MEAN WAIT          ABANDONED      OCCUPANCY  MEETS\n");
    for alt in &p.alternatives {
        for t in &alt.types {
            let target = t.target.map_or("-".into(), |t| {
                format!("{} in {:.0} s", pct(t.service_level), t.within_s)
            });
            let _ = writeln!(
                out,
                "{:>5}  {:<9} {:<15} {:<16} {:<18} {:<14} {:<10} {}{}",
                alt.limit,
                t.call_type,
                target,
                est(&t.service_level, pct),
                est(&t.mean_wait_s, |s| format!("{s:.1} s")),
                est(&t.abandoned, pct),
                pct(alt.occupancy.mean),
                if alt.meets_targets { "yes" } else { "no" },
                if alt.limit == p.limit {
                    "  <- recommended"
                } else {
                    ""
                },
            );
        }
    }
    let _ = write!(
        out,
        "\n{} simulations; ± is the 95% confidence interval",
        p.simulations
    );
    out
}

fn simulate_text(a: &SimulateAnswer) -> String {
    let w = a
        .scenarios
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let mut out = format!(
        "{:<w$}  LIMIT  TYPE      SERVICE LEVEL    WAIT P50  WAIT P90  ABANDONED  BUSY SLOTS\n",
        "SCENARIO"
    );
    for s in &a.scenarios {
        let row = |out: &mut String, label: &str, m: &Metrics| {
            let _ = writeln!(
                out,
                "{:<w$}  {:>5}  {:<9} {:<16} {:>8}  {:>8}  {:>9}  {:>10.1}",
                s.name,
                s.config.limit,
                label,
                est(&m.service_level, pct),
                format!("{:.1} s", m.wait_p50_s.mean),
                format!("{:.1} s", m.wait_p90_s.mean),
                pct(m.abandoned.mean),
                m.busy_slots.mean,
            );
        };
        for t in &s.report.types {
            row(&mut out, t.call_type.as_str(), &t.metrics);
        }
        row(&mut out, "all", &s.report.org);
    }
    out.push_str("service level: admitted within the type's target time (20 s without one); ± is the 95% confidence interval");
    out
}
