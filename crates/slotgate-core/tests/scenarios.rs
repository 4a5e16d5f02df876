//! Scenario tables: SEMANTICS.md's walk-through and cases, as scripts a person can read.
//!
//! Each file in `tests/scenarios/` is a list of steps, one per line, run against
//! a fresh engine. A step may end in `-> outcome`, which is asserted. `#` starts
//! a comment. The language:
//!
//! ```text
//! org ORG LIMIT                                 create an org
//! limit ORG N                                   set its limit
//! reserve ORG AGENT webcall=N chat=N ...        set an agent's reservations (missing types are 0)
//! unreserve ORG AGENT                           remove the agent's reservations and caps
//! burst ORG N                                   set its burst
//! caps ORG AGENT chat=N ... total=N             set an agent's caps (missing ones: no cap)
//! acquire ORG CALL AGENT TYPE [ttl=30s] [max_wait=20s] [if_blocked=refuse]
//! release ORG CALL                              release (active) or cancel (queued)
//! heartbeat ORG CALL [ttl=30s]
//! wait ORG CALL / unwait ORG CALL               open / close a long-poll on a call
//! advance DURATION                              move the clock and handle every deadline
//! expect ORG key=value ...                      org snapshot: limit reserved shared active queued
//!                                               shared_in_use burst burst_in_use blocked
//! call ORG CALL                                 assert a call's state with `-> ...`
//! blocked ORG CALL                              why the call is blocked: `-> REASON` or `-> none`
//! queue ORG CALL CALL ...                       the org's queue, in order
//!
//! outcomes:  -> active reserved|shared|burst   -> queued POSITION   -> existing <outcome>
//!            -> ended REASON   -> ok   -> error CODE [field=value]
//! ```
//!
//! A call id written `a1..a12` repeats the step for `a1`, `a2`, ... `a12`, each
//! with the same expected outcome. `config queue_cap=N retention=DURATION`, as
//! the first step, sets the engine's configuration. Durations are `500ms`,
//! `30s` or `2m`. The clock starts at 1,000,000 ms.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use slotgate_core::{
    AcquireRequest, Acquired, AgentId, CallId, CallState, CallType, CallView, Caps, Config, Engine,
    Error, IfBlocked, OrgId, Reservations, Timestamp, WaitToken,
};

struct Script {
    engine: Engine,
    now: Timestamp,
    /// Open waits by (org, call), newest last: `unwait` closes the newest.
    waits: HashMap<(String, String), Vec<WaitToken>>,
}

fn duration(s: &str) -> Duration {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("bad duration {s:?}"));
    match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        _ => panic!("bad duration unit in {s:?}"),
    }
}

fn error_text(e: &Error) -> String {
    match e {
        Error::Invalid { field, .. } => format!("error invalid_request field={field}"),
        Error::OrgNotFound => "error org_not_found".into(),
        Error::OrgExists => "error org_exists".into(),
        Error::CallNotFound => "error call_not_found".into(),
        Error::CallEnded { .. } => "error call_ended".into(),
        Error::CallIdConflict => "error call_id_conflict".into(),
        Error::LimitBelowReservations { reserved } => {
            format!("error limit_below_reservations reserved={reserved}")
        }
        Error::ReservationsExceedLimit { available } => {
            format!("error reservations_exceed_limit available={available}")
        }
        Error::QueueFull { cap } => format!("error queue_full cap={cap}"),
        Error::CapBelowReservation { call_type, lowest } => format!(
            "error cap_below_reservation type={} lowest={lowest}",
            call_type.map_or("total", |t| t.as_str())
        ),
        Error::CallBlocked { reason } => format!("error call_blocked reason={reason}"),
        other => format!("error {other:?}"),
    }
}

fn call_text(c: &CallView) -> String {
    match c.state {
        CallState::Active => format!(
            "active {}",
            c.slot.expect("an active call has a slot").as_str()
        ),
        CallState::Queued => format!(
            "queued {}",
            c.position.expect("a queued call has a position")
        ),
        CallState::Ended => format!(
            "ended {}",
            c.end_reason.expect("an ended call has a reason").as_str()
        ),
    }
}

fn option<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

impl Script {
    fn step(&mut self, words: &[&str]) -> String {
        let e = &mut self.engine;
        let now = self.now;
        let outcome = |r: Result<String, Error>| r.unwrap_or_else(|err| error_text(&err));
        match words {
            ["org", org, limit] => outcome(
                e.create_org(OrgId::new(org).unwrap(), limit.parse().unwrap(), now)
                    .map(|_| "ok".into()),
            ),
            ["limit", org, n] => outcome(
                e.set_limit(org, n.parse().unwrap(), now)
                    .map(|_| "ok".into()),
            ),
            ["reserve", org, agent, types @ ..] => {
                let n = |t: &str| option(types, t).map_or(0, |v| v.parse().unwrap());
                let r = Reservations {
                    webcall: n("webcall"),
                    chat: n("chat"),
                    outbound: n("outbound"),
                    inbound: n("inbound"),
                };
                outcome(
                    e.set_reservations(org, &AgentId::new(agent).unwrap(), r, now)
                        .map(|_| "ok".into()),
                )
            }
            ["burst", org, n] => outcome(
                e.set_burst(org, n.parse().unwrap(), now)
                    .map(|_| "ok".into()),
            ),
            ["caps", org, agent, caps @ ..] => {
                let c = |t: &str| option(caps, t).map(|v| v.parse().unwrap());
                let caps = Caps {
                    webcall: c("webcall"),
                    chat: c("chat"),
                    outbound: c("outbound"),
                    inbound: c("inbound"),
                    total: c("total"),
                };
                outcome(
                    e.set_caps(org, &AgentId::new(agent).unwrap(), caps, now)
                        .map(|_| "ok".into()),
                )
            }
            ["blocked", org, call] => outcome(
                e.call(org, call, self.now)
                    .map(|c| c.blocked.map_or("none".into(), |r| r.as_str().to_string())),
            ),
            ["unreserve", org, agent] => outcome(
                e.remove_agent(org, &AgentId::new(agent).unwrap(), now)
                    .map(|_| "ok".into()),
            ),
            ["acquire", org, call, agent, call_type, opts @ ..] => {
                let mut req = AcquireRequest::new(
                    CallId::new(call).unwrap(),
                    AgentId::new(agent).unwrap(),
                    call_type.parse::<CallType>().unwrap(),
                );
                if let Some(ttl) = option(opts, "ttl") {
                    req.lease_ttl = duration(ttl);
                }
                req.max_wait = option(opts, "max_wait").map(duration);
                if let Some(b) = option(opts, "if_blocked") {
                    req.if_blocked = b.parse::<IfBlocked>().unwrap();
                }
                outcome(e.acquire(org, req, now).map(|a| match a {
                    Acquired::Existing(c) => format!("existing {}", call_text(&c)),
                    Acquired::Admitted(c) | Acquired::Queued(c) => call_text(&c),
                }))
            }
            ["release", org, call] => outcome(e.release(org, call, now).map(|c| call_text(&c))),
            ["heartbeat", org, call, opts @ ..] => {
                let ttl = option(opts, "ttl").map(duration);
                outcome(e.heartbeat(org, call, ttl, now).map(|c| call_text(&c)))
            }
            ["wait", org, call] => outcome(e.open_wait(org, call, now).map(|(c, token)| {
                let key = (org.to_string(), call.to_string());
                self.waits.entry(key).or_default().push(token);
                call_text(&c)
            })),
            ["unwait", org, call] => {
                let key = (org.to_string(), call.to_string());
                let token = self.waits.get_mut(&key).and_then(Vec::pop);
                let token = token.unwrap_or_else(|| panic!("unwait {org} {call}: no open wait"));
                outcome(e.close_wait(org, call, token, now).map(|c| call_text(&c)))
            }
            ["advance", d] => {
                self.now = self.now + duration(d);
                self.engine.handle_timeout(self.now);
                "ok".into()
            }
            ["call", org, call] => outcome(e.call(org, call, self.now).map(|c| call_text(&c))),
            ["expect", org, pairs @ ..] => {
                let v = e.org(org).unwrap();
                for pair in pairs {
                    let (k, want) = pair.split_once('=').expect("expect takes key=value");
                    let got = match k {
                        "limit" => v.limit,
                        "reserved" => v.reserved,
                        "shared" => v.shared,
                        "active" => v.active,
                        "queued" => v.queued,
                        "shared_in_use" => v.shared_in_use,
                        "burst" => v.burst,
                        "burst_in_use" => v.burst_in_use,
                        "blocked" => v.blocked,
                        _ => panic!("unknown org field {k}"),
                    };
                    assert_eq!(got.to_string(), *want, "{org}.{k}");
                }
                "ok".into()
            }
            ["queue", org, calls @ ..] => {
                let got: Vec<String> = e
                    .queued_calls(org, self.now)
                    .unwrap()
                    .map(|c| c.id.to_string())
                    .collect();
                assert_eq!(got, calls.to_vec(), "queue of {org}");
                for (i, c) in e.queued_calls(org, self.now).unwrap().enumerate() {
                    assert_eq!(c.position, Some(i as u64 + 1), "position of {}", c.id);
                }
                "ok".into()
            }
            _ => panic!("unknown step {words:?}"),
        }
    }
}

/// `a1..a3` in a step's words makes three steps; other steps are one.
fn expand(words: &[&str]) -> Vec<Vec<String>> {
    let range = words.iter().enumerate().find_map(|(i, w)| {
        let (from, to) = w.split_once("..")?;
        let split = |s: &str| {
            let digits = s.trim_end_matches(|c: char| c.is_ascii_digit());
            (digits.to_string(), s[digits.len()..].parse::<u32>().ok())
        };
        let ((prefix, Some(a)), (prefix2, Some(b))) = (split(from), split(to)) else {
            return None;
        };
        (prefix == prefix2).then_some((i, prefix, a, b))
    });
    let owned = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    match range {
        None => vec![owned(words)],
        Some((i, prefix, a, b)) => (a..=b)
            .map(|n| {
                let mut ws = owned(words);
                ws[i] = format!("{prefix}{n}");
                ws
            })
            .collect(),
    }
}

fn run(path: &Path) {
    let text = fs::read_to_string(path).unwrap();
    let mut script = Script {
        engine: Engine::new(Config::default()),
        now: Timestamp::from_millis(1_000_000),
        waits: HashMap::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let (step, want) = match line.split_once("->") {
            Some((s, w)) => (s.trim(), Some(w.trim())),
            None => (line, None),
        };
        let words: Vec<&str> = step.split_whitespace().collect();
        if let ["config", opts @ ..] = &words[..] {
            let mut config = Config::default();
            if let Some(cap) = option(opts, "queue_cap") {
                config.queue_cap = cap.parse().unwrap();
            }
            if let Some(r) = option(opts, "retention") {
                config.ended_retention = duration(r);
            }
            script.engine = Engine::new(config);
            continue;
        }
        for one in expand(&words) {
            let one: Vec<&str> = one.iter().map(String::as_str).collect();
            let got = script.step(&one);
            let where_ = format!("{}:{}: {}", path.display(), n + 1, one.join(" "));
            match want {
                Some(want) => assert_eq!(got, want, "{where_}"),
                None => assert!(!got.starts_with("error"), "{where_}: unexpected {got}"),
            }
        }
        let where_ = format!("{}:{}", path.display(), n + 1);
        // The one invariant every step must keep.
        for org in script.engine.org_ids() {
            let v = script.engine.org(org.as_str()).unwrap();
            assert!(v.reserved <= v.limit, "{where_}: R > L");
        }
    }
}

#[test]
fn every_scenario_file_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "scenario files are missing from {}",
        dir.display()
    );
    for f in files {
        run(&f);
    }
}
