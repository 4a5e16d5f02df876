#!/usr/bin/env bash
# Renders the README's dashboard picture (docs/dashboard.png) from the seed
# example of SEMANTICS.md, by running the browser tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p slotgate
(cd crates/slotgate/tests/browser && npm ci --no-audit --no-fund --loglevel=error)
SLOTGATE_BIN="$PWD/target/debug/slotgate" node --test crates/slotgate/tests/browser/dashboard.test.mjs
cp target/dashboard.png docs/dashboard.png
echo "docs/dashboard.png updated"
