#!/usr/bin/env bash
# The Python client's checks: a virtualenv with the package and its test
# extras, then ruff, mypy --strict and pytest against the real slotgate
# binary (SLOTGATE_BIN; default: the workspace's target/debug/slotgate).
set -euo pipefail
cd "$(dirname "$0")"

export SLOTGATE_BIN="${SLOTGATE_BIN:-$(cd ../.. && pwd)/target/debug/slotgate}"
if [ ! -x "$SLOTGATE_BIN" ]; then
  echo "no slotgate binary at $SLOTGATE_BIN: run cargo build -p slotgate, or set SLOTGATE_BIN" >&2
  exit 1
fi

venv="${SLOTGATE_PY_VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    # Debian splits venv (and ensurepip) out of python3.
    rm -rf "$venv"
    echo "== installing python3-venv"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "python${pyver}-venv" >/dev/null 2>&1 || true
    "$python" -m venv "$venv"
  fi
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
echo "== mypy --strict"
"$venv/bin/mypy" --strict
echo "== pytest"
"$venv/bin/pytest" -q "$@"
