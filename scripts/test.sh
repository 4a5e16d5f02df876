#!/usr/bin/env bash
# Runs every slotgate test: unit, property, scenario and (as they land)
# HTTP, end-to-end and browser tests. It installs what the tests need and
# the machine lacks, so it passes on a fresh Debian machine too.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages some tests drive for real (added as those tests land).
need=()
for pkg in "$@"; do :; done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} ..."
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc
