//! `slotgate usage`: an org's usage by UTC hour or day, as a table.

use std::fmt::Write as _;

use slotgate_client::api::{Step, Usage, UsageFigures};
use slotgate_client::Client;

use super::output::{emit, Failure};

/// `slotgate usage ORG [--from] [--to] [--step]`.
pub async fn run(
    client: &Client,
    org: &str,
    from: Option<&str>,
    to: Option<&str>,
    step: Option<Step>,
    json: bool,
) -> Result<(), Failure> {
    let usage = client.usage(org, from, to, step).await?;
    emit(json, &usage, || table(&usage))
}

fn wait(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) => format!("{}s", ms / 1000),
    }
}

fn row(t: &mut String, when: &str, limit: &str, at_limit: f64, burst: f64, f: &UsageFigures) {
    let _ = writeln!(
        t,
        "{when:<17} {limit:>5} {:>6} {:>6} {:>8.0} {:>7.0} {:>8} {:>6} {:>6} {:>6} {:>7}",
        f.peak_active,
        f.peak_queued,
        at_limit,
        burst,
        f.admitted,
        f.waited,
        wait(f.wait_p50_ms),
        wait(f.wait_p90_ms),
        f.gave_up,
    );
}

/// One line per step with any activity, then the totals over the range.
pub fn table(u: &Usage) -> String {
    let mut t = format!(
        "usage of {} from {} to {}, by {} (UTC); times in seconds\n",
        u.org,
        u.from,
        u.to,
        if u.step == Step::Hour { "hour" } else { "day" }
    );
    t.push_str("STEP              LIMIT  PEAK  QUEUE AT_LIMIT   BURST ADMITTED WAITED    P50    P90 GAVE_UP\n");
    let mut shown = 0;
    for s in &u.steps {
        let f = &s.overall;
        if f.peak_active == 0 && f.peak_queued == 0 && f.admitted == 0 && f.gave_up == 0 {
            continue;
        }
        shown += 1;
        // 2026-11-23T20:00:00.000Z -> 2026-11-23 20:00
        let when = s.start.get(..16).unwrap_or(&s.start).replace('T', " ");
        row(
            &mut t,
            &when,
            &s.limit.to_string(),
            s.at_limit_seconds,
            s.burst_seconds,
            f,
        );
    }
    if shown == 0 {
        t.push_str("(no activity in this range)\n");
    }
    let hours_at_limit = u.steps.iter().filter(|s| s.at_limit_seconds > 0.0).count();
    let _ = write!(
        t,
        "{shown} of {} steps with activity; {hours_at_limit} reached the limit",
        u.steps.len()
    );
    t
}
