//! `/metrics`: Prometheus text. Counters and histograms accumulate here as
//! requests and events come; the per-org gauges are rendered from snapshots
//! of the orgs ([`OrgView`]) that the service copies at scrape time, one org
//! at a time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use slotgate_core::{AgentTotals, CallType, Event, EventKind, OrgView};

/// The `agent` label of the agents an org's series do not name, summed
/// (`--metrics-agents`). Not a possible agent id (ids are `A-Z a-z 0-9 . _ : -`),
/// so it never collides with a real agent's series.
pub const OTHER_AGENTS: &str = "(other)";

/// Upper bounds of the queue-wait histogram, in seconds.
const WAIT_BUCKETS: [f64; 11] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];
/// Upper bounds of the request-latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len()];
        }
        for (c, b) in self.counts.iter_mut().zip(bounds) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braced = match labels {
            "" => String::new(),
            l => format!("{{{l}}}"),
        };
        let _ = writeln!(out, "{name}_sum{braced} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braced} {}", self.count);
    }
}

#[derive(Debug, Default, Clone)]
struct Inner {
    /// (org, slot) -> admissions.
    admissions: BTreeMap<(String, &'static str), u64>,
    /// org -> queueings.
    queueings: BTreeMap<String, u64>,
    /// (org, reason) -> ends.
    ends: BTreeMap<(String, &'static str), u64>,
    /// error code -> refusals.
    refusals: BTreeMap<&'static str, u64>,
    /// org -> queue wait of admitted calls.
    queue_wait: BTreeMap<String, Histogram>,
    /// route -> request latency.
    latency: BTreeMap<String, Histogram>,
    /// Reads of an ended call in the store on the request path (an
    /// acquire, read, heartbeat or release of an id the engine no longer holds).
    ended_call_reads: u64,
}

/// Whose series a scrape shows: org and agent names are the orgs' own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every org's (the operator key).
    Everything,
    /// One org's, beside the server's own (a `metrics` key of that org).
    Org(&'a str),
    /// The server's own series only, naming no org (no key).
    NoOrgs,
}

impl Scope<'_> {
    /// Whether the series of `org` are shown.
    pub fn shows(self, org: &str) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Org(own) => own == org,
            Scope::NoOrgs => false,
        }
    }
}

/// The server's counters and histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `std` mutex: tiny updates, never held across an await.
    inner: Mutex<Inner>,
}

impl Metrics {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the metrics lock is never poisoned")
    }

    /// Counts an engine event.
    pub fn observe(&self, e: &Event) {
        let org = e.org.to_string();
        let mut m = self.inner();
        match &e.kind {
            EventKind::CallQueued { .. } => *m.queueings.entry(org).or_default() += 1,
            EventKind::CallAdmitted {
                slot, waited_ms, ..
            } => {
                *m.admissions
                    .entry((org.clone(), slot.as_str()))
                    .or_default() += 1;
                m.queue_wait
                    .entry(org)
                    .or_default()
                    .observe(&WAIT_BUCKETS, *waited_ms as f64 / 1000.0);
            }
            EventKind::CallEnded { reason, .. } => {
                *m.ends.entry((org, reason.as_str())).or_default() += 1
            }
            _ => {}
        }
    }

    /// Counts a refused request by its error code.
    pub fn refused(&self, code: &'static str) {
        *self.inner().refusals.entry(code).or_default() += 1;
    }

    /// Counts a read of an ended call in the store.
    pub fn ended_call_read(&self) {
        self.inner().ended_call_reads += 1;
    }

    /// Records how long a request to `route` took.
    pub fn request(&self, route: &str, took: Duration) {
        let mut m = self.inner();
        // A route's name is copied once, on its first request.
        if !m.latency.contains_key(route) {
            m.latency.insert(route.to_string(), Histogram::default());
        }
        if let Some(h) = m.latency.get_mut(route) {
            h.observe(&LATENCY_BUCKETS, took.as_secs_f64());
        }
    }

    /// The whole exposition: gauges from the snapshots of `orgs`, then
    /// counters and histograms (copied first: no request waits while the
    /// text is written).
    /// Only the orgs that `scope` shows appear, in the gauges and in the counters.
    pub fn render(&self, orgs: &[(OrgView, AgentTotals)], scope: Scope<'_>) -> String {
        let orgs: Vec<&(OrgView, AgentTotals)> = orgs
            .iter()
            .filter(|(o, _)| scope.shows(o.id.as_str()))
            .collect();
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        };
        for (name, help, f) in [
            (
                "slotgate_org_limit",
                "The org's concurrency limit.",
                (|o| o.limit) as fn(&OrgView) -> u32,
            ),
            (
                "slotgate_org_reserved",
                "Sum of the org's reservations.",
                |o| o.reserved,
            ),
            (
                "slotgate_org_shared",
                "Shared capacity: limit minus reserved.",
                |o| o.shared,
            ),
            (
                "slotgate_org_shared_in_use",
                "Active calls in the shared pool.",
                |o| o.shared_in_use,
            ),
            ("slotgate_org_active", "Active calls of the org.", |o| {
                o.active
            }),
            ("slotgate_org_queued", "Queued calls of the org.", |o| {
                o.queued
            }),
            (
                "slotgate_org_burst",
                "The org's burst: slots it may use above its limit once the limit is in use.",
                |o| o.burst,
            ),
            (
                "slotgate_org_burst_in_use",
                "Active calls above the org's limit, within its burst.",
                |o| o.burst_in_use,
            ),
            (
                "slotgate_org_blocked_calls",
                "Queued calls that can never be admitted as the org is configured now.",
                |o| o.blocked,
            ),
        ] {
            gauge(&mut out, name, help);
            for (o, _) in &orgs {
                let _ = writeln!(out, "{name}{{org=\"{}\"}} {}", o.id, f(o));
            }
        }
        // The org's plan, as an info series (1) of the orgs on one; ids
        // are of the id alphabet, so need no escaping.
        let on_plans = orgs.iter().filter(|(o, _)| o.plan.plan.is_some());
        let mut named = false;
        for (o, _) in on_plans {
            if !named {
                let help = "The org's plan (1 for the plan it is on), and whether its limit is the plan's or its own.";
                gauge(&mut out, "slotgate_org_plan_info", help);
                named = true;
            }
            let plan = o.plan.plan.as_ref().map_or("", |p| p.as_str());
            let source = o.plan.limit_source.as_str();
            let _ = writeln!(
                out,
                "slotgate_org_plan_info{{org=\"{}\",plan=\"{plan}\",limit_source=\"{source}\"}} 1",
                o.id
            );
        }
        for (name, help, pick) in [
            (
                "slotgate_agent_active",
                "Active calls per org, agent and type (the busiest agents, with --metrics-agents).",
                0,
            ),
            (
                "slotgate_agent_queued",
                "Queued calls per org, agent and type (the busiest agents, with --metrics-agents).",
                1,
            ),
            (
                "slotgate_agent_reserved",
                "Reserved slots per org, agent and type (the busiest agents, with --metrics-agents).",
                2,
            ),
        ] {
            // None named: no agent series at all (the default).
            if orgs.iter().all(|(o, others)| o.agents.is_empty() && others.agents == 0) {
                continue;
            }
            gauge(&mut out, name, help);
            for (o, others) in &orgs {
                let named = o
                    .agents
                    .iter()
                    .map(|a| (a.id.as_str(), [a.active, a.queued, a.reserved][pick]));
                let summed = (others.agents > 0)
                    .then(|| (OTHER_AGENTS, [others.active, others.queued, others.reserved][pick]));
                for (agent, per) in named.chain(summed) {
                    for t in CallType::ALL {
                        let _ = writeln!(
                            out,
                            "{name}{{org=\"{}\",agent=\"{agent}\",type=\"{}\"}} {}",
                            o.id,
                            t.as_str(),
                            per.get(t)
                        );
                    }
                }
            }
        }
        let m = self.inner().clone();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        // The engine counts burst time; it starts at 0 when the server
        // starts (a counter reset to Prometheus), as the other counters do.
        counter(
            &mut out,
            "slotgate_org_burst_seconds_total",
            "Burst time: the integral of the org's burst in use, in slot-seconds (what a platform bills as overage).",
        );
        for (o, _) in &orgs {
            let _ = writeln!(
                out,
                "slotgate_org_burst_seconds_total{{org=\"{}\"}} {}",
                o.id,
                o.burst_ms as f64 / 1000.0
            );
        }
        counter(
            &mut out,
            "slotgate_admissions_total",
            "Calls admitted, by slot.",
        );
        for ((org, slot), n) in m.admissions.iter().filter(|((o, _), _)| scope.shows(o)) {
            let _ = writeln!(
                out,
                "slotgate_admissions_total{{org=\"{org}\",slot=\"{slot}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "slotgate_queueings_total",
            "Calls that had to queue.",
        );
        for (org, n) in m.queueings.iter().filter(|(o, _)| scope.shows(o)) {
            let _ = writeln!(out, "slotgate_queueings_total{{org=\"{org}\"}} {n}");
        }
        counter(&mut out, "slotgate_ends_total", "Calls ended, by reason.");
        for ((org, reason), n) in m.ends.iter().filter(|((o, _), _)| scope.shows(o)) {
            let _ = writeln!(
                out,
                "slotgate_ends_total{{org=\"{org}\",reason=\"{reason}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "slotgate_refusals_total",
            "Requests refused, by error code.",
        );
        for (code, n) in &m.refusals {
            let _ = writeln!(out, "slotgate_refusals_total{{code=\"{code}\"}} {n}");
        }
        counter(
            &mut out,
            "slotgate_store_reads_total",
            "Reads of the store on the request path, by what they read (ended_call: a call the engine no longer holds, for an acquire retry or a read of an old call).",
        );
        let _ = writeln!(
            out,
            "slotgate_store_reads_total{{read=\"ended_call\"}} {}",
            m.ended_call_reads
        );
        let _ = writeln!(
            out,
            "# HELP slotgate_queue_wait_seconds Time admitted calls waited in the queue.\n# TYPE slotgate_queue_wait_seconds histogram"
        );
        for (org, h) in m.queue_wait.iter().filter(|(o, _)| scope.shows(o)) {
            h.render(
                &mut out,
                "slotgate_queue_wait_seconds",
                &format!("org=\"{org}\""),
                &WAIT_BUCKETS,
            );
        }
        let _ = writeln!(
            out,
            "# HELP slotgate_request_duration_seconds HTTP request latency.\n# TYPE slotgate_request_duration_seconds histogram"
        );
        for (route, h) in &m.latency {
            h.render(
                &mut out,
                "slotgate_request_duration_seconds",
                &format!("route=\"{route}\""),
                &LATENCY_BUCKETS,
            );
        }
        out
    }
}

/// Upper bounds of the histogram of events per committed batch.
const BATCH_BUCKETS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// What the store's group commit did: how many events each committed batch
/// held and how long it took. Kept by the store's writer (the service does
/// not see batches), rendered with the rest by [`render_store`].
#[derive(Debug, Default)]
pub struct Commits {
    /// Events per batch, then commit durations. A `std` mutex: one tiny
    /// update per commit, never held across an await.
    inner: Mutex<(Histogram, Histogram)>,
}

impl Commits {
    /// Records a committed batch of `events` that took `took` from being
    /// taken off the queue to durable.
    pub fn record(&self, events: usize, took: Duration) {
        let mut m = self
            .inner
            .lock()
            .expect("the commits lock is never poisoned");
        m.0.observe(&BATCH_BUCKETS, events as f64);
        m.1.observe(&LATENCY_BUCKETS, took.as_secs_f64());
    }
}

/// The store's part of `/metrics`: whether it works (`up`) and its commits.
/// Rendered apart from [`Metrics::render`], since it is there even when the
/// store is down and the orgs cannot be shown.
pub fn render_store(up: bool, commits: &Commits) -> String {
    let mut out = format!(
        "# HELP slotgate_store_up Whether this server's database works (1), whoever leads: on a follower, that it reaches the database; 0 while it cannot be reached or a commit failed, and after a failure until the state is reloaded.\n\
         # TYPE slotgate_store_up gauge\nslotgate_store_up {}\n",
        u8::from(up)
    );
    let m = commits
        .inner
        .lock()
        .expect("the commits lock is never poisoned");
    let _ = writeln!(
        out,
        "# HELP slotgate_commit_batch_events Events written per committed batch (group commit: one transaction for all the changes waiting).\n# TYPE slotgate_commit_batch_events histogram"
    );
    m.0.render(&mut out, "slotgate_commit_batch_events", "", &BATCH_BUCKETS);
    let _ = writeln!(
        out,
        "# HELP slotgate_commit_duration_seconds How long a committed batch took, from being taken to durable.\n# TYPE slotgate_commit_duration_seconds histogram"
    );
    m.1.render(
        &mut out,
        "slotgate_commit_duration_seconds",
        "",
        &LATENCY_BUCKETS,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotgate_core::OrgId;

    fn org(id: &str) -> OrgView {
        OrgView {
            id: OrgId::new(id).expect("a valid id"),
            limit: 10,
            plan: slotgate_core::PlanLink::default(),
            reserved: 0,
            shared: 10,
            burst: 2,
            active: 11,
            burst_in_use: 1,
            burst_ms: 1_500,
            queued: 3,
            blocked: 1,
            shared_in_use: 10,
            agents: Vec::new(),
        }
    }

    #[test]
    fn burst_and_blocked_series_are_the_orgs_and_only_in_its_scope() {
        let orgs = [
            (org("acme"), AgentTotals::default()),
            (org("beta"), AgentTotals::default()),
        ];
        let text = Metrics::default().render(&orgs, Scope::Org("acme"));
        for line in [
            "# TYPE slotgate_org_burst_seconds_total counter",
            "slotgate_org_burst_seconds_total{org=\"acme\"} 1.5",
            "slotgate_org_burst{org=\"acme\"} 2",
            "slotgate_org_burst_in_use{org=\"acme\"} 1",
            "slotgate_org_blocked_calls{org=\"acme\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        assert!(!text.contains("beta"), "another org's series: {text}");
        let anonymous = Metrics::default().render(&orgs, Scope::NoOrgs);
        assert!(!anonymous.contains("org=\""), "{anonymous}");
    }
}
