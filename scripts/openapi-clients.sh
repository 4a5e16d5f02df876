#!/usr/bin/env bash
# Checks that the OpenAPI document the server publishes makes clean clients
# with the generators users run: `openapi-python-client generate` (PyPI, in a
# virtual environment under target/) and `openapi-typescript` (npm, installed
# under target/) must generate from `GET /v1/openapi.json` of
# `target/debug/slotgate serve` (or SLOTGATE_BIN) with no warning and no
# error, and the Python client must hold a class per event kind.
set -euo pipefail
cd "$(dirname "$0")/.."

python_client_version=0.29.1
ruff_version=0.17.5
typescript_version=7.13.0
venv=target/openapi-python-client-venv
npm_dir=target/openapi-typescript

if ! "$venv/bin/openapi-python-client" --version 2>/dev/null | grep -q "$python_client_version"; then
  if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
    echo "== installing python3-venv"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv"
  fi
  # ruff formats what it generates (without it, it warns).
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "openapi-python-client==$python_client_version" "ruff==$ruff_version"
fi
if [ ! -x "$npm_dir/node_modules/.bin/openapi-typescript" ] \
  || ! grep -q "\"version\": \"$typescript_version\"" "$npm_dir/node_modules/openapi-typescript/package.json"; then
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error "openapi-typescript@$typescript_version" >/dev/null
fi

bin=${SLOTGATE_BIN:-target/debug/slotgate}
if [ -z "${SLOTGATE_BIN:-}" ]; then
  cargo build -q --workspace --bins
fi

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SLOTGATE_OPERATOR_KEY="op-openapi-clients-$(python3 -c "import secrets; print(secrets.token_hex(16))")" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  >"$work/server.log" 2>&1 &
server=$!
stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 200); do
  if curl -sf "http://127.0.0.1:$port/v1/openapi.json" -o "$work/openapi.json"; then break; fi
  sleep 0.05
done
[ -s "$work/openapi.json" ] || { echo "slotgate did not serve its document"; cat "$work/server.log"; exit 1; }

# Says what a generator printed and fails if it warned or failed.
clean() {
  local name=$1 status=$2 log=$3
  if [ "$status" -ne 0 ] || grep -Eiq 'warn|error|cannot|unable|skipp' "$log"; then
    echo "$name did not generate cleanly (exit $status):"
    cat "$log"
    exit 1
  fi
  echo "$name: generated with no warning"
}

status=0
(cd "$work" && PATH="$OLDPWD/$venv/bin:$PATH" "$OLDPWD/$venv/bin/openapi-python-client" generate --path openapi.json \
  --output-path python-client --meta none) >"$work/python.log" 2>&1 || status=$?
clean openapi-python-client "$status" "$work/python.log"
# Every event kind is a class of its own, told apart by `type`.
for kind in org_created_event call_queued_event call_admitted_event call_ended_event call_lease_changed_event \
  org_limit_changed_event agent_reservations_changed_event event_page; do
  [ -f "$work/python-client/models/$kind.py" ] || { echo "openapi-python-client made no $kind"; exit 1; }
done

status=0
"$npm_dir/node_modules/.bin/openapi-typescript" "$work/openapi.json" -o "$work/schema.d.ts" \
  >"$work/typescript.log" 2>&1 || status=$?
# It reports what it wrote with a check mark; anything else is a complaint.
grep -v '✨' "$work/typescript.log" >"$work/typescript-complaints.log" || true
clean openapi-typescript "$status" "$work/typescript-complaints.log"
grep -q 'CallAdmittedEvent' "$work/schema.d.ts" || { echo "openapi-typescript made no CallAdmittedEvent"; exit 1; }
