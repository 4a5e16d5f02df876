#!/usr/bin/env bash
# Tests deploy/ (docs/DEPLOY.md):
#   1. the Prometheus rules: `promtool check rules` and `promtool test rules`;
#   2. every metric the Grafana dashboard and the rules name is exported by
#      the real binary: a live /metrics after an org, an agent with
#      reservations, admitted, queued and released calls and a refusal
#      (which `promtool check metrics` parses and lints);
#   3. the systemd unit: `systemd-analyze verify`, and its exposure level by
#      `systemd-analyze security --offline`;
#   4. the binary runs confined as the unit confines it: its own user, no
#      capabilities, no new privileges, a read-only system, a private /tmp,
#      no home directories, and only its state directory writable. Under
#      systemd (PID 1) the unit itself is started; elsewhere the confinement
#      is emulated with unshare (a mount namespace) and setpriv, and the
#      output says which;
#   5. the names of settings the unit, its environment file and the
#      Containerfile use are settings of `slotgate serve`. No container is
#      built here (no container engine): see docs/DEPLOY.md.
#
# The binary is $SLOTGATE_BIN (default target/debug/slotgate). Installs the
# Debian packages it needs when missing (prometheus for promtool, systemd for
# systemd-analyze, python3-yaml, curl). Every wait is bounded; nothing relies
# on SIGINT, so it runs in the background too. Runs as root (mounts, setpriv).
set -euo pipefail
cd "$(dirname "$0")/.."
here=deploy

bin=$(realpath "${SLOTGATE_BIN:-target/debug/slotgate}" 2>/dev/null || true)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "no slotgate binary at ${SLOTGATE_BIN:-target/debug/slotgate}: cargo build --bins, or set SLOTGATE_BIN" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deploy/test.sh runs as root: it mounts and changes user like systemd does" >&2
  exit 1
fi

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
  # The prometheus package also installs the server and, under systemd,
  # starts it: only promtool is wanted.
  if [[ " ${need[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi

work=$(mktemp -d -p /var/lib slotgate-deploy-test.XXXXXX)
chmod 0755 "$work"
pids=()
cleanup() {
  # The confined server is unshare's grandchild, under the test's uid: not
  # killed with unshare, so found by the pid it logged.
  local confined
  confined=$(sed -n 's/^confined: .*; pid \([0-9]*\)$/\1/p' "$work/confined.log" 2>/dev/null || true)
  if [ -n "$confined" ] && grep -qsE "^Uid:\s+${uid:-x}\s" "/proc/$confined/status"; then
    kill -KILL "$confined" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "${unit:-}" ]; then
    systemctl stop "$unit" >/dev/null 2>&1 || true
    rm -f "/run/systemd/system/$unit"
    systemctl daemon-reload >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

# Waits (at most 30 s) for the ready line of a server logging to $1; prints its port.
ready_port() {
  local log=$1 port=""
  for _ in $(seq 300); do
    port=$(sed -n 's|.*slotgate ready on http://[0-9.]*:\([0-9]*\).*|\1|p' "$log" | head -1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    sleep 0.1
  done
  echo "no ready line within 30 s; the server's log:" >&2
  cat "$log" >&2
  return 1
}

# stop_server PID LOG [SERVER_PID]: SIGTERM to the server (PID itself, or
# the server it runs), then waits at most 20 s for PID's clean exit (0).
stop_server() {
  local pid=$1 log=$2 code=0
  kill -TERM "${3:-$pid}" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: no exit within 20 s of SIGTERM; the log:" >&2; cat "$log" >&2; return 1
  fi
  wait "$pid" || code=$?
  # Reaped: its pid may be another process's from now on.
  local left=()
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || left+=("$p"); done
  pids=("${left[@]}")
  if [ "$code" -ne 0 ]; then
    echo "FAIL: exit status $code after SIGTERM; the log:" >&2; cat "$log" >&2; return 1
  fi
}

# call EXPECTED_STATUS METHOD URL [JSON]: one request with the operator key.
call() {
  local want=$1 method=$2 url=$3 got args=()
  if [ $# -gt 3 ]; then args=(-H 'Content-Type: application/json' --data "$4"); fi
  got=$(curl -s -o "$work/body" -w '%{http_code}' --max-time 10 -X "$method" \
    -H "Authorization: Bearer $key" "${args[@]}" "$url")
  if [ "$got" != "$want" ]; then
    echo "FAIL $method $url: $got, not $want: $(cat "$work/body")" >&2
    return 1
  fi
}

echo "== Prometheus rules"
(cd $here/prometheus && timeout 60 promtool check rules slotgate.rules.yml)
(cd $here/prometheus && timeout 60 promtool test rules slotgate.rules.test.yml)

echo "== the dashboard's and the rules' metrics against a live /metrics ($bin)"
/usr/bin/python3 $here/check_metric_names.py --self-test
mkdir -p "$work/live"
SLOTGATE_OPERATOR_KEY=$key "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/live" \
  --metrics-agents 10 >"$work/live.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$(ready_port "$work/live.log")"
call 201 POST "$base/v1/orgs" '{"id": "acme", "limit": 2}'
call 200 PUT "$base/v1/orgs/acme/agents/agent-a/reservations" '{"inbound": 1}'
call 201 POST "$base/v1/orgs/acme/calls" '{"id": "c1", "agent": "agent-a", "type": "inbound"}'
call 201 POST "$base/v1/orgs/acme/calls" '{"id": "c2", "agent": "agent-b", "type": "chat"}'
call 202 POST "$base/v1/orgs/acme/calls" '{"id": "c3", "agent": "agent-b", "type": "chat"}'
call 200 DELETE "$base/v1/orgs/acme/calls/c2" # admits c3 from the queue
call 404 GET "$base/v1/orgs/nope"             # a refusal, counted by code
call 200 GET "$base/metrics"
mv "$work/body" "$work/metrics.txt"
grep -qx 'slotgate_store_up 1' "$work/metrics.txt" || { echo "FAIL: no slotgate_store_up 1" >&2; exit 1; }
# Prometheus's own parser and linter on the exposition.
timeout 60 promtool check metrics <"$work/metrics.txt"
echo "promtool check metrics: the live exposition parses, no lint"
/usr/bin/python3 $here/check_metric_names.py "$work/metrics.txt" \
  $here/grafana/slotgate.json $here/prometheus/slotgate.rules.yml
stop_server "${pids[-1]}" "$work/live.log"

echo "== the systemd unit"
# verify wants ExecStart's binary to exist: this one, where it is.
sed "s|^ExecStart=/usr/local/bin/slotgate |ExecStart=$bin |" $here/systemd/slotgate.service \
  >"$work/slotgate.service"
grep -q "^ExecStart=$bin serve" "$work/slotgate.service"
timeout 60 systemd-analyze verify "$work/slotgate.service"
echo "systemd-analyze verify: no complaints"
# 0 is fully confined, 10 not at all; above 2.0 ("OK") fails.
timeout 60 systemd-analyze security --offline=yes --threshold=20 "$work/slotgate.service" |
  grep 'Overall exposure level'

echo "== the settings named in deploy/ are settings of slotgate serve"
help=$("$bin" serve --help)
names=$(grep -ohE 'SLOTGATE_[A-Z_]+' $here/systemd/slotgate.service $here/systemd/slotgate.env.example \
  $here/Containerfile | sort -u)
for name in $names; do
  grep -q "$name" <<<"$help" || { echo "FAIL: $name is not a setting of slotgate serve" >&2; exit 1; }
done
echo "$(wc -w <<<"$names") settings, each in slotgate serve --help"
# The Containerfile: a build stage and a runtime stage, the runtime one not
# as root, and the binary it copies built by the build stage. (Checked by
# reading: no container engine here.)
cf=$here/Containerfile
[ "$(grep -c '^FROM ' $cf)" -eq 2 ] || { echo "FAIL: $cf should have two stages" >&2; exit 1; }
grep -qE '^USER [1-9][0-9]*' $cf || { echo "FAIL: $cf must run as a non-root user" >&2; exit 1; }
grep -q 'cargo build --release --locked -p slotgate --bin slotgate' $cf
grep -q '^name = "slotgate"' crates/slotgate/Cargo.toml
echo "Containerfile: two stages, non-root user, builds the slotgate binary (read, not built)"

echo "== slotgate confined as the unit confines it"
# DynamicUser= takes a free id in 61184-65519: so does this run.
uid=61184
in_use() { getent passwd "$1" >/dev/null || grep -qsE "^Uid:\s+$1\s" /proc/[0-9]*/status; }
while in_use $uid; do uid=$((uid + 1)); done
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "SLOTGATE_OPERATOR_KEY=$key" >"$work/slotgate.env"
echo "SLOTGATE_LISTEN=127.0.0.1:$port" >>"$work/slotgate.env"
chmod 0600 "$work/slotgate.env"

if [ "$(cat /proc/1/comm)" = systemd ] && systemctl is-system-running >/dev/null 2>&1; then
  way="under systemd (PID 1): the unit itself"
  unit=slotgate-deploy-test-$$.service
  sed -e "s|^EnvironmentFile=.*|EnvironmentFile=$work/slotgate.env|" \
      -e "s|^StateDirectory=slotgate|StateDirectory=${unit%.service}|" \
      -e "s|^Environment=SLOTGATE_DATA_DIR=%S/slotgate|Environment=SLOTGATE_DATA_DIR=%S/${unit%.service}|" \
      "$work/slotgate.service" >"/run/systemd/system/$unit"
  systemctl daemon-reload
  systemctl start "$unit"
  state=/var/lib/${unit%.service}
  server_pid=$(systemctl show -p MainPID --value "$unit")
else
  way="emulated: PID 1 is $(cat /proc/1/comm), not systemd; unshare (mount namespace) + setpriv"
  state="$work/state"
  install -d -m 0700 -o $uid -g $uid "$state"
  install -D -m 0755 "$bin" "$work/bin/slotgate"
  # In a mount namespace of its own: every mount read-only (ProtectSystem=
  # strict) but the state directory; an empty /tmp (PrivateTmp=); empty,
  # read-only home directories (ProtectHome=). Then, as the unit's user with
  # no capabilities and no new privileges, the server.
  unshare --mount --propagation private --fork -- /bin/bash -c '
    set -eu
    state=$1 uid=$2 env=$3 bin=$4
    set -a; . "$env"; set +a
    for m in $(awk "{print \$2}" /proc/self/mounts | sort -u); do
      case $m in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
      mount -o bind,remount,ro "$m" 2>/dev/null || true
    done
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
    for h in /root /home; do
      if [ -d $h ]; then mount -t tmpfs -o ro,mode=0755 tmpfs $h; fi
    done
    mount --bind "$state" "$state"
    mount -o bind,remount,rw "$state"
    if touch /etc/.slotgate-ro-check 2>/dev/null; then echo "FAIL: / is writable"; exit 1; fi
    if touch "$(dirname "$state")/.slotgate-ro-check" 2>/dev/null; then echo "FAIL: beside the state directory is writable"; exit 1; fi
    echo "confined: /etc and the state directory'\''s parent are read-only; pid $$"
    exec setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs \
      --inh-caps=-all --bounding-set=-all -- \
      env -i PATH=/usr/bin:/bin SLOTGATE_DATA_DIR="$state" \
      SLOTGATE_OPERATOR_KEY="$SLOTGATE_OPERATOR_KEY" SLOTGATE_LISTEN="$SLOTGATE_LISTEN" \
      "$bin" serve
  ' confine "$state" "$uid" "$work/slotgate.env" "$work/bin/slotgate" >"$work/confined.log" 2>&1 &
  pids+=($!)
  ready_port "$work/confined.log" >/dev/null
  server_pid=$(sed -n 's/^confined: .*; pid \([0-9]*\)$/\1/p' "$work/confined.log")
  grep '^confined:' "$work/confined.log"
fi
echo "ran $way"

base="http://127.0.0.1:$port"
for _ in $(seq 300); do
  curl -s --max-time 2 -o /dev/null "$base/healthz" && break
  sleep 0.1
done
status=$(curl -s --max-time 5 -o "$work/healthz" -w '%{http_code}' "$base/healthz")
[ "$status" = 200 ] || { echo "FAIL: /healthz answered $status: $(cat "$work/healthz")" >&2; exit 1; }
echo "/healthz: $status $(cat "$work/healthz")"
call 201 POST "$base/v1/orgs" '{"id": "acme", "limit": 1}' # a commit, in the state directory
# Who the server runs as, and with what.
status_of() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$server_pid/status"; }
[ "$(status_of Uid)" != 0 ] || { echo "FAIL: the server runs as root" >&2; exit 1; }
[ "$(status_of NoNewPrivs)" = 1 ] || { echo "FAIL: the server may gain privileges" >&2; exit 1; }
[ "$(status_of CapEff)" = 0000000000000000 ] || { echo "FAIL: the server has capabilities" >&2; exit 1; }
[ "$(status_of CapBnd)" = 0000000000000000 ] || { echo "FAIL: the server may regain capabilities" >&2; exit 1; }
echo "server pid $server_pid: uid $(status_of Uid), no capabilities, no new privileges"
owner=$(stat -L -c %u "$state")
files=$(find -H "$state" -mindepth 1 -user "$owner" | wc -l)
[ "$files" -gt 0 ] || { echo "FAIL: nothing written in the state directory" >&2; exit 1; }
echo "state directory: $files files, owned by uid $owner"
# SIGTERM, as systemctl stop sends: a clean exit, well within TimeoutStopSec.
if [ -n "${unit:-}" ]; then
  timeout 100 systemctl stop "$unit"
  result=$(systemctl show -p Result --value "$unit")
  [ "$result" = success ] || { echo "FAIL: the unit stopped with $result" >&2; exit 1; }
else
  stop_server "${pids[-1]}" "$work/confined.log" "$server_pid"
fi
echo "stopped cleanly on SIGTERM"
echo "== deploy: all passed"
