//! The `slotgate` command line as a user runs it: the real binary against a
//! real server, with stdout a pipe (not a terminal).

use std::process::{Command, Stdio};
use std::time::Duration;

use slotgate_client::{Acquire, Call, CallState, CallType, Client, Org};

use crate::support::{cli, slotgate, Server, OPERATOR_KEY as OP};

async fn server() -> Server {
    Server::start().await
}

/// Runs the CLI against `s`: its standard output, once it exited 0.
fn succeeds(s: &Server) -> impl Fn(&[&str]) -> String + '_ {
    move |args| {
        let (code, out, err) = cli(s, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cli_subcommand_as_a_process() {
    let s = server().await;
    let ok = succeeds(&s);
    assert!(
        ok(&["org", "create", "acme", "--limit", "20"]).contains("created org acme with limit 20")
    );
    assert!(ok(&["org", "list"]).contains("acme"));
    assert!(ok(&[
        "reserve",
        "acme",
        "agent-a",
        "--webcall",
        "2",
        "--chat",
        "3",
        "--outbound",
        "4",
        "--inbound",
        "3"
    ])
    .contains("agent-a reserves 12"));
    let (code, _, err) = cli(&s, &["reserve", "acme", "agent-b", "--inbound", "9"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("reservations_exceed_limit") && err.contains("available: 8"),
        "{err}"
    );
    let (code, _, err) = cli(&s, &["org", "limit", "acme", "5"]);
    assert_eq!(code, 1);
    assert!(err.contains("limit_below_reservations"), "{err}");
    assert!(ok(&["org", "limit", "acme", "30"]).contains("limit 30"));

    let c = Client::new(&s.base, OP);
    let _held = c
        .acquire("acme", Acquire::new("agent-a", CallType::Chat).id("c1"))
        .await
        .unwrap();
    let calls = ok(&["calls", "acme", "--state", "active", "--agent", "agent-a"]);
    assert!(
        calls.contains("c1") && calls.contains("reserved") && calls.ends_with("\n1 call\n"),
        "{calls}"
    );
    let org: Org = serde_json::from_str(&ok(&["org", "show", "acme", "--json"])).unwrap();
    assert_eq!((org.limit, org.active), (30, 1));
    let status = ok(&["status", "acme"]);
    assert!(
        status.contains("limit 30 · reserved 12 · shared 18 · active 1"),
        "{status}"
    );
    assert!(
        status.contains("A agent-a: 1 of 12 reserved in use"),
        "{status}"
    );
    assert!(ok(&["release", "acme", "c1"]).contains("call c1 ended: released"));
    assert!(ok(&["unreserve", "acme", "agent-a"]).contains("no reservations"));

    let created = ok(&[
        "keys", "create", "acme", "--role", "runtime", "--name", "ci",
    ]);
    let secret = created.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("sgk_"), "{created}");
    let id = secret.split('_').nth(1).unwrap().to_string();
    assert!(ok(&["keys", "list", "acme"]).contains(&id));
    let (code, out, _) = cli(&s, &["--key", &secret, "org", "show", "acme"]);
    assert_eq!(code, 0, "the new runtime key works: {out}");
    assert!(ok(&["keys", "revoke", "acme", &id]).contains("revoked"));
    let (code, _, err) = cli(&s, &["--key", &secret, "org", "show", "acme"]);
    assert_eq!(code, 1);
    assert!(err.contains("unauthorized"), "{err}");
    let (code, _, err) = cli(&s, &["--url", "http://127.0.0.1:1", "org", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach slotgate"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_watch_in_a_pipe_prints_frames_without_escapes_until_interrupted() {
    let s = server().await;
    Client::new(&s.base, OP)
        .create_org("acme", 4)
        .await
        .unwrap();
    for json in [false, true] {
        let mut args = vec!["status", "acme", "--watch"];
        if json {
            args.push("--json");
        }
        let mut child = slotgate(&s, &args).stdout(Stdio::piped()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let frame = if json {
            "\"limit\":4"
        } else {
            "acme  limit 4 · reserved 0"
        };
        let text = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut text = String::new();
            for line in std::io::BufReader::new(out).lines() {
                text.push_str(&line.unwrap());
                text.push('\n');
                if text.matches(frame).count() == 2 {
                    break;
                }
            }
            text
        })
        .await
        .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(text.matches(frame).count(), 2, "two frames: {text}");
        assert!(
            !text.contains('\x1b'),
            "no terminal escapes in a pipe: {text:?}"
        );
        if json {
            for line in text.lines() {
                let org: Org = serde_json::from_str(line).expect("one JSON document per line");
                assert_eq!(org.limit, 4);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acquire_heartbeat_and_release_a_call_from_the_shell() {
    let s = server().await;
    let ok = succeeds(&s);
    ok(&["org", "create", "acme", "--limit", "1"]);
    let call = |id| {
        [
            "acquire", "acme", "--agent", "a", "--type", "chat", "--id", id,
        ]
    };
    let first = ok(&call("c1"));
    assert!(
        first.contains("call c1 is active in a shared slot"),
        "{first}"
    );
    let second = ok(&call("c2"));
    assert!(
        second.contains("call c2 is queued at position 1"),
        "{second}"
    );
    assert!(ok(&call("c1")).contains("existed already"));
    assert!(ok(&["heartbeat", "acme", "c2"]).contains("call c2 (queued) renewed"));
    let released = ok(&["release", "acme", "c1"]);
    assert!(
        released.contains("call c1 ended: released")
            && released
                .contains("call c2 (a, chat) was admitted from the queue into a shared slot"),
        "{released}"
    );
    let c2 = Client::new(&s.base, OP)
        .call_info("acme", "c2", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        c2.state,
        CallState::Active,
        "the queued call took the freed slot"
    );
    let c2: Call = serde_json::from_str(&ok(&["--json", "heartbeat", "acme", "c2"])).unwrap();
    assert_eq!(c2.state, CallState::Active);
}

/// Version 2 from the shell: caps, the burst, and a blocked call, said in
/// words, refused with `--if-blocked refuse`.
#[tokio::test(flavor = "multi_thread")]
async fn caps_burst_and_blocked_calls_from_the_shell() {
    let s = server().await;
    let ok = succeeds(&s);
    ok(&["org", "create", "acme", "--limit", "2"]);
    ok(&["reserve", "acme", "agent-a", "--chat", "2"]);
    let (code, _, err) = cli(&s, &["cap", "acme", "agent-a", "--chat", "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cap_below_reservation") && err.contains("lowest allowed cap is 2"),
        "{err}"
    );
    let capped = ok(&["cap", "acme", "agent-a", "--chat", "2", "--total", "5"]);
    assert!(
        capped.contains("agent-a is capped at chat 2, total 5"),
        "{capped}"
    );
    let (code, _, err) = cli(&s, &["cap", "acme", "agent-a"]);
    assert_ne!(code, 0, "a cap or --clear is needed");
    assert!(err.contains("--clear"), "{err}");
    assert!(ok(&["cap", "acme", "agent-a", "--clear"]).contains("agent-a has no caps"));
    assert!(ok(&["burst", "acme", "3"]).contains("org acme now has burst 3"));

    // Reservations take the whole limit: agent-y's call can never be admitted.
    let call = |id| {
        [
            "acquire", "acme", "--agent", "agent-y", "--type", "chat", "--id", id,
        ]
    };
    let queued = ok(&call("y1"));
    assert!(
        queued.contains("call y1 is queued at position 1, blocked (no_shared_capacity)"),
        "{queued}"
    );
    let mut refuse = call("y2").to_vec();
    refuse.extend(["--if-blocked", "refuse"]);
    let (code, _, err) = cli(&s, &refuse);
    assert_eq!(code, 1);
    assert!(
        err.contains("call_blocked") && err.contains("blocked: no_shared_capacity"),
        "{err}"
    );
    let org: Org = serde_json::from_str(&ok(&["org", "show", "acme", "--json"])).unwrap();
    assert_eq!((org.burst, org.queued, org.blocked), (3, 1, 1));
    // The calls table says it would wait forever, and why, not a wait.
    let calls = ok(&["calls", "acme"]);
    let y1 = calls.lines().find(|l| l.starts_with("y1 ")).expect(&calls);
    assert!(
        y1.ends_with("never: blocked (no_shared_capacity)"),
        "{calls}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_from_the_shell() {
    let s = server().await;
    let ok = |args: &[&str]| {
        let (code, out, err) = cli(&s, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let list = ok(&["plans", "list"]);
    assert!(
        list.contains("standard") && list.contains("enterprise"),
        "{list}"
    );
    assert!(
        ok(&["plans", "create", "pro", "--limit", "10", "--burst", "2"])
            .contains("created plan pro with limit 10 and burst 2")
    );
    let created = ok(&["org", "create", "x", "--plan", "pro"]);
    assert!(
        created.contains("created org x with limit 10, from plan pro"),
        "{created}"
    );
    ok(&["reserve", "x", "agent-a", "--chat", "8"]);

    // Case 19 from the shell: refused, naming the org in the way.
    let (code, _, err) = cli(&s, &["plans", "set", "pro", "--limit", "5"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("plan_below_reservations") && err.contains("x (reserves 8)"),
        "{err}"
    );
    let set = ok(&["plans", "set", "pro", "--limit", "9"]);
    assert!(
        set.contains("plan pro now has limit 9 and burst 2 (1 org on it)"),
        "{set}"
    );
    let own = ok(&["org", "limit", "x", "12"]);
    assert!(
        own.contains("limit 12 (shared 4), its own (on plan pro)"),
        "{own}"
    );
    let back = ok(&["org", "limit", "x", "plan"]);
    assert!(back.contains("limit 9 (shared 1), from plan pro"), "{back}");
    assert!(ok(&["burst", "x", "4"]).contains("org x now has burst 4"));
    assert!(ok(&["burst", "x", "plan"]).contains("org x now has burst 2"));
    let moved = ok(&["org", "plan", "x", "enterprise"]);
    assert!(
        moved.contains("org x is on plan enterprise: limit 100, burst 20"),
        "{moved}"
    );
    assert!(ok(&["org", "list"])
        .lines()
        .any(|l| l.starts_with("x ") && l.ends_with("enterprise")));
    assert!(ok(&["plans", "delete", "pro"]).contains("deleted plan pro"));
    let (code, _, err) = cli(&s, &["plans", "delete", "enterprise"]);
    assert_eq!(code, 1);
    assert!(err.contains("plan_in_use"), "{err}");
    let off = ok(&["org", "plan", "x", "none"]);
    assert!(
        off.contains("org x is on no plan: its own limit 100, burst 20"),
        "{off}"
    );
}

/// Releasing a queued call cancels it and frees no slot; the id of an ended
/// call gets no slot from `acquire`, which a script sees in the exit code.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_call_released_is_cancelled_and_an_ended_call_is_not_acquired_again() {
    let s = server().await;
    let ok = succeeds(&s);
    ok(&["org", "create", "acme", "--limit", "1"]);
    let call = |id| {
        [
            "acquire", "acme", "--agent", "a", "--type", "chat", "--id", id,
        ]
    };
    for id in ["c1", "c2", "c3"] {
        ok(&call(id));
    }
    let cancelled = ok(&["release", "acme", "c2"]);
    assert_eq!(
        cancelled.trim(),
        "call c2 cancelled: it left the queue (it held no slot, so none was freed)"
    );
    let again = ok(&["release", "acme", "c2"]);
    assert_eq!(
        again.trim(),
        "call c2 had already ended (cancelled); nothing changed"
    );

    let (code, out, err) = cli(&s, &call("c2"));
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("call c2 has already ended (cancelled at ")
            && err.contains("acquire with a new --id"),
        "{err}"
    );
    let mut json = vec!["--json"];
    json.extend(call("c2"));
    let (code, out, err) = cli(&s, &json);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    let refusal: slotgate_api::ErrorBody = serde_json::from_str(&err).expect(&err);
    assert_eq!(refusal.error.code, slotgate_api::ErrorCode::CallEnded);
    let ended = refusal.error.call.expect("the ended call");
    assert_eq!((ended.id.as_str(), ended.state), ("c2", CallState::Ended));
    // Nothing was queued again: c3 is still the only queued call.
    let c = Client::new(&s.base, OP);
    assert_eq!(c.org("acme").await.unwrap().queued, 1);

    let released = ok(&["release", "acme", "c1"]);
    assert!(
        released.contains("call c1 ended: released")
            && released
                .contains("call c3 (a, chat) was admitted from the queue into a shared slot"),
        "{released}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_runs_the_command_in_a_slot_and_exits_with_its_status() {
    let s = server().await;
    let c = Client::new(&s.base, OP);
    c.create_org("acme", 1).await.unwrap();
    let (code, _, err) = cli(
        &s,
        &[
            "hold", "acme", "--agent", "a", "--type", "chat", "--id", "h1", "--", "sh", "-c",
            "exit 3",
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("holding a shared slot of acme (call h1)"),
        "{err}"
    );
    let h1 = c.call_info("acme", "h1", Duration::ZERO).await.unwrap();
    assert_eq!(
        h1.state,
        CallState::Ended,
        "released when the command ended"
    );
    assert_eq!(c.org("acme").await.unwrap().active, 0);
    let (code, _, err) = cli(
        &s,
        &[
            "hold",
            "acme",
            "--agent",
            "a",
            "--type",
            "chat",
            "--lease-ttl",
            "2",
            "--",
            "true",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("lease_ttl_s: must be 5 to 3600 seconds, got 2"),
        "refused as the server would: {err}"
    );
}

/// Starts `slotgate hold ... -- sleep 60` as call `id`; returns once it holds the slot.
async fn hold_a_sleep(s: &Server, id: &str) -> std::process::Child {
    let args = [
        "hold",
        "acme",
        "--agent",
        "a",
        "--type",
        "chat",
        "--id",
        id,
        "--lease-ttl",
        "5",
    ];
    let child = slotgate(s, &args)
        .args(["--", "sleep", "60"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let c = Client::new(&s.base, OP);
    while !c
        .call_info("acme", id, Duration::ZERO)
        .await
        .is_ok_and(|call| call.state == CallState::Active)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_stops_the_command_when_the_slot_is_lost_and_releases_on_ctrl_c() {
    let s = server().await;
    let c = Client::new(&s.base, OP);
    c.create_org("acme", 2).await.unwrap();
    // Lost: someone else ends the call; the next heartbeat hears 410.
    let lost = hold_a_sleep(&s, "lost").await;
    c.release("acme", "lost").await.unwrap();
    let out = tokio::task::spawn_blocking(move || lost.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("the slot was lost (released)"), "{err}");
    // Ctrl-C: the command is stopped and the slot given back.
    let held = hold_a_sleep(&s, "held").await;
    let pid = held.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || held.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(130));
    let call = c.call_info("acme", "held", Duration::ZERO).await.unwrap();
    assert_eq!(call.state, CallState::Ended);
    assert_eq!(c.org("acme").await.unwrap().active, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_ends_the_cli_quietly() {
    let s = server().await;
    let c = Client::new(&s.base, OP);
    for i in 0..50 {
        c.create_org(&format!("org-{i}"), 5).await.unwrap();
    }
    let mut child = slotgate(&s, &["--json", "org", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the answer comes, like `| head -c 0`.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_what_went_wrong_in_words_or_as_the_apis_json() {
    let s = server().await;
    let (code, _, err) = cli(&s, &["--json", "org", "show", "nope"]);
    assert_eq!(code, 1);
    let body: slotgate_api::ErrorBody =
        serde_json::from_str(err.trim()).expect("the API's error object");
    assert_eq!(body.error.code, slotgate_api::ErrorCode::OrgNotFound);
    let out = slotgate(&s, &["org", "list"])
        .env("SLOTGATE_KEY", "wrong")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the key in SLOTGATE_KEY is not accepted"),
        "{err}"
    );
    assert!(
        !err.contains("Authorization"),
        "no HTTP talk for a CLI user: {err}"
    );
    let (code, _, err) = cli(&s, &["reserve", "acme", "a", "--chat", "-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("must be a whole number from 0"), "{err}");
    ok_keys_are_counted_in_words(&s);
}

fn ok_keys_are_counted_in_words(s: &Server) {
    let (code, _, err) = cli(s, &["org", "create", "solo", "--limit", "1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(
        s,
        &["keys", "create", "solo", "--role", "admin", "--name", "one"],
    );
    assert_eq!(code, 0, "{err}");
    let (_, list, _) = cli(s, &["keys", "list", "solo"]);
    assert!(list.trim_end().ends_with("\n1 key"), "{list}");
}

#[test]
fn serve_help_lists_only_what_serve_takes_and_commands_show_an_example() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_slotgate"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let serve = help(&["serve", "--help"]);
    assert!(
        serve.contains("--data-dir") && serve.contains("--log-format"),
        "{serve}"
    );
    for client_only in ["--url", "--key", "--json"] {
        assert!(
            !serve.contains(client_only),
            "serve --help lists {client_only}: {serve}"
        );
    }
    let reserve = help(&["reserve", "--help"]);
    assert!(
        reserve.contains("Example: slotgate reserve acme agent-a"),
        "{reserve}"
    );
    assert!(
        reserve.contains("Connection"),
        "connection options in their own group: {reserve}"
    );
    assert!(
        !reserve.contains("SLOTGATE_URL="),
        "no empty env values: {reserve}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_watch_says_the_server_is_away_and_keeps_trying() {
    let mut s = server().await;
    Client::new(&s.base, OP)
        .create_org("acme", 4)
        .await
        .unwrap();
    let mut child = slotgate(&s, &["status", "acme", "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    s.kill9().await;
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(err).lines();
        lines.next().unwrap().unwrap()
    })
    .await
    .unwrap();
    assert!(
        line.contains("cannot reach slotgate") && line.contains("retrying in 2 s"),
        "{line}"
    );
    assert!(child.try_wait().unwrap().is_none(), "still watching");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// An org's request rate from the shell: shown, set, cleared.
#[tokio::test(flavor = "multi_thread")]
async fn an_orgs_rate_from_the_shell() {
    let s = server().await;
    let ok = succeeds(&s);
    ok(&["org", "create", "acme", "--limit", "2"]);
    let shown = ok(&["org", "rate", "acme"]);
    assert!(shown.contains("(the server's setting)"), "{shown}");
    let set = ok(&["org", "rate", "acme", "200"]);
    assert!(
        set.contains("org acme: 200 requests per second for all its keys together (its own)"),
        "{set}"
    );
    let rate: slotgate_api::OrgRate =
        serde_json::from_str(&ok(&["org", "rate", "acme", "--json"])).unwrap();
    assert_eq!(rate.rate_per_s, Some(200));
    let (code, _, err) = cli(&s, &["org", "rate", "acme", "200", "--clear"]);
    assert_ne!(code, 0, "a rate or --clear, not both");
    assert!(err.contains("--clear"), "{err}");
    let cleared = ok(&["org", "rate", "acme", "--clear"]);
    assert!(cleared.contains("(the server's setting)"), "{cleared}");
}
