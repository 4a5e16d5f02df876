#!/usr/bin/env bash
# The TypeScript client's checks: npm ci, build, tsc --strict, eslint, the
# generated API types current with the server's OpenAPI document, the tests
# and the example's test against the real slotgate binary (SLOTGATE_BIN;
# default: the workspace's target/debug/slotgate), and `npm pack` installed
# into an empty project and imported there.
set -euo pipefail
cd "$(dirname "$0")"

export SLOTGATE_BIN="${SLOTGATE_BIN:-$(cd ../.. && pwd)/target/debug/slotgate}"
if [ ! -x "$SLOTGATE_BIN" ]; then
  echo "no slotgate binary at $SLOTGATE_BIN: run cargo build -p slotgate, or set SLOTGATE_BIN" >&2
  exit 1
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing nodejs and npm"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old: the package needs 20 or later" >&2
  exit 1
fi

export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
echo "== npm ci"
npm ci --no-progress
echo "== build"
npm run --silent build
(cd examples/phone-webhook && npm ci --no-progress)
echo "== tsc --strict"
npm run --silent typecheck
(cd examples/phone-webhook && npx tsc -p . --noEmit)
echo "== eslint"
npm run --silent lint
echo "== the generated API types are current"
npm run --silent check:types
echo "== tests"
npm test
echo "== the example's test"
(cd examples/phone-webhook && npm test)

echo "== npm pack, installed into an empty project"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
npm pack --silent --pack-destination "$scratch" >/dev/null
mkdir "$scratch/project"
(
  cd "$scratch/project"
  npm init -y >/dev/null
  npm pkg set type=module >/dev/null
  npm install --no-progress "$scratch"/slotgate-*.tgz >/dev/null
  cat > check.mjs <<'JS'
import { Client, CallBlocked, QueueTimeout, newCallId } from "slotgate";
import { startServer } from "slotgate/testing";

const server = await startServer();
try {
  const client = new Client({ url: server.url, key: server.operatorKey });
  await client.createOrg({ id: "packed", limit: 1 });
  const kept = await client.withSlot({ org: "packed", agent: "a", type: "chat" }, (slot) => slot.call.state);
  if (kept !== "active" || (await client.getOrg("packed")).active !== 0) throw new Error("withSlot did not hold and release");
  if (typeof CallBlocked !== "function" || typeof QueueTimeout !== "function" || !newCallId().startsWith("call_")) {
    throw new Error("exports missing");
  }
  console.log("the packed slotgate installs, imports and holds a slot");
} finally {
  await server.stop();
}
JS
  node check.mjs
  test -f node_modules/slotgate/dist/index.d.ts
)
echo "== clients/typescript: all checks passed"
