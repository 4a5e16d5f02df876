#!/usr/bin/env bash
# Renders the README's dashboard picture (docs/dashboard.png) from the seed
# example of SEMANTICS.md, by running the browser test of that example against
# the real binary. The example's story (calls end, the queue moves, a call
# arrives) is stretched over most of a minute, so that the chart's caption,
# "Last 60 seconds", and its axis, "60 s ago", describe what it shows (the
# test checks both). It also renders docs/plan.png, the Plan view, below.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p slotgate
(cd crates/slotgate/tests/browser && npm ci --no-audit --no-fund --loglevel=error)
rm -f target/dashboard.png
DASHBOARD_STORY_S=50 SLOTGATE_BIN="$PWD/target/debug/slotgate" \
  node --test --test-name-pattern="README screenshot" crates/slotgate/tests/browser/dashboard.test.mjs
cp target/dashboard.png docs/dashboard.png
echo "docs/dashboard.png updated"

# The Plan view of docs/PLANNING.md: two minutes of Poisson traffic on a
# small org, then the plan.
rm -f target/plan.png
PLAN_STORY_S=120 SLOTGATE_BIN="$PWD/target/debug/slotgate" \
  node --test --test-name-pattern="Plan view" crates/slotgate/tests/browser/dashboard.test.mjs
cp target/plan.png docs/plan.png
echo "docs/plan.png updated"
