#!/usr/bin/env bash
# Runs every slotgate test: unit, property, scenario, HTTP, end-to-end (the
# real binary) and the dashboard in headless Chromium. It installs what the
# tests need and the machine lacks (Debian's chromium and postgresql, the npm
# packages of the browser tests), so it passes on a fresh Debian machine too.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
command -v curl >/dev/null 2>&1 || need+=(curl)   # the README test runs its curl lines
# The PostgreSQL tests run initdb and pg_ctl themselves (tests/support/postgres.rs
# looks on PATH, then in Debian's /usr/lib/postgresql/*/bin).
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

# One build of everything, used once: incremental caches would only double the
# disk it takes. Every cargo command below selects the whole workspace, so they
# share one build (the same features) instead of building slotgate again.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== Rust tests"
cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc

echo "== the HTTP and end-to-end tests again, on PostgreSQL (the conformance suite of both stores)"
# Each test server gets a throwaway cluster of its own (tests/support/postgres.rs).
SLOTGATE_TEST_STORE=postgres cargo test --workspace \
  --test api --test e2e --test client --test cli --test planning --test wait_estimate --test limits --test revocation --test caps_burst --test plans

echo "== and once more through a second replica, which forwards every request to the leading one"
SLOTGATE_TEST_STORE=replicas cargo test --workspace \
  --test api --test e2e --test client --test cli --test planning --test wait_estimate --test limits --test revocation --test caps_burst --test plans

echo "== dashboard in headless Chromium"
browser=crates/slotgate/tests/browser
(cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
cargo build --workspace --bins
SLOTGATE_BIN="$PWD/target/debug/slotgate" node --test "$browser/dashboard.test.mjs"
echo "== and through a replica that forwards every request to the leading one"
SLOTGATE_TEST_STORE=replicas cargo test --workspace --test dashboard -- --ignored

echo "== Python client"
SLOTGATE_BIN="$PWD/target/debug/slotgate" clients/python/test.sh

echo "== TypeScript client"
SLOTGATE_BIN="$PWD/target/debug/slotgate" clients/typescript/test.sh

echo "== deployment files: Prometheus rules, Grafana dashboard, systemd unit, a confined run"
SLOTGATE_BIN="$PWD/target/debug/slotgate" deploy/test.sh

echo "== OpenAPI conformance (schemathesis, every check)"
scripts/schemathesis.sh

echo "== clients generated from the OpenAPI document (openapi-python-client, openapi-typescript)"
scripts/openapi-clients.sh
