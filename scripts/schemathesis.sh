#!/usr/bin/env bash
# Checks the published OpenAPI document against the real server with
# schemathesis (an outside conformance tool, from PyPI, in a virtual
# environment under target/): its examples, coverage, fuzzing and stateful
# phases run against `target/debug/slotgate serve` on a free port with a fresh
# data directory and an operator key, and must find no server error, no
# undocumented status, content type or body, and no schema error.
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

bin=target/debug/slotgate
cargo build -q --workspace --bins

work=$(mktemp -d)
key="op-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
SLOTGATE_OPERATOR_KEY="$key" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
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
# blocks the run for up to a minute; out-of-range ones go as generated. Plans
# and simulations run with the shortest check (their own tests cover the
# settings). The event stream never ends by itself: it is left out.
cat >"$work/schemathesis.toml" <<'TOML'
[parameters]
"path.org" = "conformance"
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


@schemathesis.hook
def before_call(context, case, kwargs):
    for part in (case.query, case.body):
        if isinstance(part, dict) and "wait_s" in part and not isinstance(part["wait_s"], bool):
            part["wait_s"] = _no_wait(part["wait_s"])
    if case.operation.path in ("/v1/orgs/{org}/plan", "/v1/orgs/{org}/simulate") \
            and isinstance(case.body, dict):
        case.body["check"] = dict(QUICK_CHECK)
PY

start=$(date +%s)
PYTHONPATH="$work" SCHEMATHESIS_HOOKS=slotgate_hooks \
  "$venv/bin/schemathesis" --no-color --config-file "$work/schemathesis.toml" run "$base/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --phases examples,coverage,fuzzing,stateful \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-operation-id stream_events \
  --max-examples "$max_examples" \
  --max-time "$max_time" \
  --request-timeout 10 \
  --workers 2 \
  --seed 1 \
  "$@"
echo "schemathesis ran $(($(date +%s) - start)) s"
