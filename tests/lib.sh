#!/usr/bin/env bash
# Shared set-up for run-quickstart.sh and run-tests.sh: builds every binding from source.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export S3DB_WORK="$ROOT/tests/.work"
TARGET_DIR="$ROOT/target/x86_64-unknown-linux-gnu"
VENV="$S3DB_WORK/venv"
mkdir -p "$S3DB_WORK"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Seconds since the script started, for the build-time figures.
elapsed() { echo "$(( $(date +%s) - ${S3DB_T0:-$(date +%s)} ))s"; }

# Runs a command and prints how long it took (the shared-build figures come from these).
timed() {
  local t0
  t0=$(date +%s)
  "$@"
  echo "   took $(( $(date +%s) - t0 ))s: $*"
}

python_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  python -m pip install -q --upgrade pip >/dev/null
  python -m pip install -q -r "$ROOT/tests/requirements.txt"
}

build_c() {
  step "C library (libs3db.so / libs3db.a)"
  timed cargo build --locked -p s3db-c
  timed cargo build --locked -p s3db-c --release
}

build_python() {
  step "Python module (pip install ./bindings-python)"
  MATURIN_PEP517_ARGS="--locked" timed python -m pip install -q "$ROOT/bindings-python"
}

build_node() {
  step "Node addon (npm ci in bindings-node)"
  (cd "$ROOT/bindings-node" && timed npm ci --no-audit --no-fund --loglevel=error)
}
