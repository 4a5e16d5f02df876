#!/usr/bin/env bash
# Checks the published OpenAPI document against the real server with
# schemathesis (an outside conformance tool, from PyPI, in a virtual
# environment under target/): its examples, coverage, fuzzing and stateful
# phases run against `target/debug/slotgate serve` (or SLOTGATE_BIN) on a free
# port with a fresh data directory and an operator key, under every check
# schemathesis has (`--checks all`): no server error; no undocumented status,
# content type, header or body; every request the document calls valid is
# accepted and every one it calls invalid refused; no resource missing after
# it was made or present after it was deleted; no key ignored.
#
# Bounded: at most SCHEMATHESIS_MAX_EXAMPLES cases per operation and phase
# (default 30) and SCHEMATHESIS_MAX_TIME seconds in all (default 150). Further
# arguments go to `schemathesis run` (e.g. `--report har`).
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
venv=target/schemathesis-venv
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-30}
max_time=${SCHEMATHESIS_MAX_TIME:-150}

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
    echo "== installing python3-venv"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$version"
fi

bin=${SLOTGATE_BIN:-target/debug/slotgate}
if [ -z "${SLOTGATE_BIN:-}" ]; then
  cargo build -q --workspace --bins
fi

work=$(mktemp -d)
key="op-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# Limits high enough that the run's own pace and its deliberate requests
# without a key (hundreds a minute, all from 127.0.0.1) are never throttled:
# a 429 would stand in the way of the checks (rate limits: tests/it/conformance/limits.rs).
SLOTGATE_OPERATOR_KEY="$key" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --rate-operator 1000000 --auth-failures 1000000 \
  >"$work/server.log" 2>&1 &
server=$!
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT

# Ready, then an org (with an agent's reservations and a call) for the
# operations to act on; the run pins `{org}` to it.
SG_BASE="$base" SG_KEY="$key" python3 - <<'EOF'
import json, os, time, urllib.request

base, key = os.environ["SG_BASE"], os.environ["SG_KEY"]
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.05)
else:
    raise SystemExit("slotgate did not become ready")

def call(method, path, body):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()

call("POST", "/v1/orgs", {"id": "conformance", "limit": 1000})
call("PUT", "/v1/orgs/conformance/agents/agent-a/reservations", {"chat": 2, "inbound": 1})
call("POST", "/v1/orgs/conformance/calls", {"id": "call-1", "agent": "agent-a", "type": "chat"})
EOF

# `{org}` is pinned to that org. A wait in range (`wait_s` of acquire, of
# reading a call, of the event long-poll) is sent as 0, so that no request
# blocks the run for up to a minute; out-of-range ones go as generated, and
# the request timeout (75 s) is above the longest wait the server takes
# (60 s), so no wait is cut short either way. Plans and simulations run with
# the shortest check (their own tests cover the settings). The event stream
# never ends by itself: it is left out. One worker: with two threads,
# hypothesis's description of its strategies (`ast` parsing, not thread-safe
# in CPython 3.11) failed once with "AST constructor recursion depth
# mismatch", an error of the tool, not of slotgate.
#
# What the contract says that schemathesis cannot know:
# - 410 `call_ended` answers a valid heartbeat of a call that ended: like
#   409, it is about the call's state, not the request.
# - DELETE of a call ends it, and API.md keeps an ended call readable for
#   the retention window; DELETE of reservations sets them to 0, and an
#   agent reads as zeros. So a read after such a DELETE answers 200 (the
#   `use_after_free` check, off for those two reads only).
#   `use_after_free` has nothing else to check here (a key, the one thing
#   a DELETE removes, has no read of its own), so it is off in the stateful
#   phase, the only one where it runs.
# - The stateful phase chains real operations through the document's links
#   with valid data; invalid data is the coverage and fuzzing phases' part.
#   (Schemathesis judges an id from a link, such as `a:b`, as the encoded
#   `a%3Ab` against the id pattern and calls the valid request invalid.)
# - A plan's or simulation's traffic and targets agree in ways JSON Schema
#   cannot say (a target needs traffic of its type; one stream per agent and
#   type; one target per type; a what-if reservation within its limit), and
#   a check simulates at most so many calls (rate times horizon); a target
#   is reachable, or not, by simulation only: the hook below makes
#   generated valid bodies keep those rules (and "negative" ones that the
#   schema finds valid all the same).
# - A usage range's `to` is after its `from`, by at most 31 days of hours
#   or 366 days: valid usage requests go with the server's default range
#   (the Rust tests check ranges).
cat >"$work/schemathesis.toml" <<'TOML'
[parameters]
"path.org" = "conformance"

# Every check (as `--checks all` says on the command line, where it would
# also override the two phase settings below).
[checks]
enabled = true

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]

[phases.stateful.generation]
mode = "positive"

[phases.stateful.checks.use_after_free]
enabled = false

[phases.stateful.checks.negative_data_rejection]
enabled = false
TOML
cat >"$work/slotgate_hooks.py" <<'PY'
import schemathesis


def _no_wait(value):
    try:
        return 0 if 0 < float(value) <= 60 else value
    except (TypeError, ValueError):
        return value


# A plan or simulation as short as the API allows: one simulated hour,
# two replications (any traffic the budget accepts then answers in well
# under a second).
QUICK_CHECK = {"horizon_s": 3600.0, "warmup_s": 0.0, "replications": 2}


def _keep_rules_across_items(body):
    """The rules across items that the schema cannot say, kept by a
    planning body: one target per call type, traffic for each target, the
    simulation budget, a ceiling that can be met, what-ifs within their
    limit. A generated "negative" body can be valid by the schema all the
    same (and is then to be accepted): what makes it negative stays."""
    targets = body.get("targets")
    if isinstance(targets, list):
        seen = set()
        kept = []
        for t in targets:
            kind = t.get("call_type") if isinstance(t, dict) else None
            if isinstance(kind, str):
                if kind in seen:
                    continue
                seen.add(kind)
            kept.append(t)
        body["targets"] = kept
    # A check simulates at most so many calls (rates times the horizon):
    # rates (no maximum in the schema) as the positive bodies' are.
    traffic = body.get("traffic")
    if isinstance(traffic, list):
        # One stream per agent and type; a target needs traffic of its type.
        seen, kept = set(), []
        for spec in traffic:
            key = (spec.get("agent"), spec.get("call_type")) if isinstance(spec, dict) else None
            if key is not None and all(isinstance(k, str) for k in key):
                if key in seen:
                    continue
                seen.add(key)
            kept.append(spec)
        fed = {spec["call_type"] for spec in kept if isinstance(spec, dict)
               and isinstance(spec.get("call_type"), str)
               and _count_or_rate(spec.get("calls_per_hour")) and spec["calls_per_hour"] > 0}
        for target in body.get("targets") if isinstance(body.get("targets"), list) else []:
            kind = target.get("call_type") if isinstance(target, dict) else None
            if isinstance(kind, str) and kind not in fed:
                fed.add(kind)
                kept.append({"agent": "hook", "call_type": kind,
                             "calls_per_hour": 10.0, "mean_duration_s": 60.0})
        body["traffic"] = traffic = kept
    for spec in traffic if isinstance(traffic, list) else []:
        if isinstance(spec, dict):
            # Calls that give up, or last for days, can make any target
            # unreachable: valid ones as the positive bodies' are.
            if _count_or_rate(spec.get("patience_s")):
                spec.pop("patience_s")
            for key in ("mean_duration_s", "duration_sd_s"):
                if _count_or_rate(spec.get(key)) and spec[key] <= 604800:
                    spec[key] = min(spec[key], 3600.0)
            if _count_or_rate(spec.get("calls_per_hour")):
                spec["calls_per_hour"] = min(spec["calls_per_hour"], 100.0)
            samples = spec.get("duration_samples_s")
            if isinstance(samples, list):
                spec["duration_samples_s"] = [
                    min(d, 3600.0) if _count_or_rate(d) and d <= 604800 else d for d in samples]
            by_hour = spec.get("calls_per_hour_by_hour")
            if isinstance(by_hour, list):
                spec["calls_per_hour_by_hour"] = [
                    min(r, 100.0) if _count_or_rate(r) else r for r in by_hour]
    # A valid ceiling can be below every limit that meets the targets: the
    # default one (10,000) meets them.
    ceiling = body.get("max_limit")
    if _count(ceiling) and 1 <= ceiling <= 1_000_000:
        body.pop("max_limit")
    # What-ifs whose reservations exceed a limit (theirs or the org's) are
    # refused; where every what-if is well formed, the body's negative part
    # is elsewhere, and they go as the positive bodies' do.
    what_ifs = body.get("what_if")
    if isinstance(what_ifs, list) and what_ifs and all(map(_well_formed_what_if, what_ifs)):
        for what_if in what_ifs:
            what_if["reservations"] = []
            what_if.pop("limit", None)


def _count_or_rate(n):
    return isinstance(n, (int, float)) and not isinstance(n, bool) and n >= 0


def _count(n):
    # A whole number, as JSON Schema counts them (1.0 is one).
    return _count_or_rate(n) and float(n).is_integer()


def _well_formed_what_if(w):
    if not isinstance(w, dict) or not isinstance(w.get("name"), str):
        return False
    if "limit" in w and w["limit"] is not None and not (_count(w["limit"]) and w["limit"] <= 1_000_000):
        return False
    reservations = w.get("reservations", [])
    return isinstance(reservations, list) and all(
        isinstance(r, dict) and isinstance(r.get("agent"), str) and isinstance(r.get("call_type"), str)
        and _count(r.get("reserved"))
        for r in reservations)


@schemathesis.hook
def before_call(context, case, kwargs):
    for part in (case.query, case.body):
        if isinstance(part, dict) and "wait_s" in part and not isinstance(part["wait_s"], bool):
            part["wait_s"] = _no_wait(part["wait_s"])
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if case.operation.path == "/v1/orgs/{org}/usage" and positive \
            and isinstance(case.query, dict):
        # The range's rules span both fields (`to` after `from`, at most 31
        # days of hours): left to the server's defaults (the Rust tests
        # check ranges).
        case.query.pop("from", None)
        case.query.pop("to", None)
    # An org's plan: a plan that exists (the stateful phase reads the
    # 404 of an unknown plan as the org gone; the Rust tests cover it).
    if case.operation.method.upper() == "PUT" and case.operation.path == "/v1/orgs/{org}/plan" \
            and positive and isinstance(case.body, dict) and isinstance(case.body.get("plan"), str):
        case.body["plan"] = "standard"
    # Capacity planning (POST); PUT .../plan is an org's plan (plans).
    if case.operation.method.upper() == "POST" \
            and case.operation.path in ("/v1/orgs/{org}/plan", "/v1/orgs/{org}/simulate") \
            and isinstance(case.body, dict):
        case.body["check"] = dict(QUICK_CHECK)
        _keep_rules_across_items(case.body)
PY

start=$(date +%s)
PYTHONPATH="$work" SCHEMATHESIS_HOOKS=slotgate_hooks \
  "$venv/bin/schemathesis" --no-color --config-file "$work/schemathesis.toml" run "$base/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --phases examples,coverage,fuzzing,stateful \
  --exclude-operation-id stream_events \
  --max-examples "$max_examples" \
  --max-time "$max_time" \
  --request-timeout 75 \
  --workers 1 \
  --seed 1 \
  "$@"
echo "schemathesis ran $(($(date +%s) - start)) s"
