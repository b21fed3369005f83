#!/usr/bin/env bash
# Multi-process torture: Rust, Python and Node processes contend on one lock and on one
# sequence, on file:// and on the S3 server; check.py proves that no two critical sections
# overlapped, that fencing tokens strictly increased, and that the ids have no duplicates and
# no gaps.
#
# Environment (all optional):
#   TORTURE_RUNS (1)          how many times to run everything
#   PROCS_PER_LANGUAGE (2)    processes per language (3 languages)
#   LOCKS_PER_PROCESS (90)    acquisitions per process (2 × 3 × 90 = 540)
#   IDS_PER_PROCESS (180)     sequence ids per process (2 × 3 × 180 = 1,080)
#   S3DB_TEST_S3_URL          the S3 server; started here (versitygw, tests/s3-server.sh) when unset
#   S3DB_NODE_LIB             path of the Node binding's lib.mjs (default: this checkout's)
#   PYTHON (python3)          an interpreter where `import s3db` works
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
RUNS="${TORTURE_RUNS:-1}"
PROCS="${PROCS_PER_LANGUAGE:-2}"
LOCKS="${LOCKS_PER_PROCESS:-90}"
IDS="${IDS_PER_PROCESS:-180}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/s3db-torture-XXXXXX")"

"$PYTHON" -c 'import s3db' || { echo "torture: python cannot import s3db (PYTHON=$PYTHON)" >&2; exit 1; }
node_lib="${S3DB_NODE_LIB:-$root/bindings-node/lib.mjs}"
ls "$(dirname "$node_lib")"/*.node >/dev/null 2>&1 || {
  echo "torture: no Node addon next to $node_lib (npm install in bindings-node, or set S3DB_NODE_LIB)" >&2
  exit 1
}
export S3DB_NODE_LIB="$node_lib"

echo "-- building the Rust worker (cargo build -p s3db --example torture)"
rust_bin="$(cd "$root" && cargo build -q -p s3db --example torture --message-format=json \
  | "$PYTHON" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "torture" and m.get("executable"):
        print(m["executable"])')"
[ -x "$rust_bin" ] || { echo "torture: no worker binary" >&2; exit 1; }

if [ -z "${S3DB_TEST_S3_URL:-}" ]; then
  # shellcheck disable=SC1091
  source "$root/tests/s3-server.sh"
  s3_server_start
  trap s3_server_stop EXIT
fi

mask() { printf %s "$1" | sed -E 's#//[^@/]*@#//***@#'; }

# phase MODE URL PER_PROCESS LOG
phase() {
  local mode="$1" url="$2" per="$3" log="$4" pids=() failed=0 t0 langs=3
  t0=$(date +%s)
  : >"$log"
  for _ in $(seq "$PROCS"); do
    "$rust_bin" "$mode" "$url" "$per" "$log" & pids+=($!)
    "$PYTHON" "$here/worker.py" "$mode" "$url" "$per" "$log" & pids+=($!)
    node "$here/worker.mjs" "$mode" "$url" "$per" "$log" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  if [ "$failed" != 0 ]; then echo "torture: a $mode worker failed" >&2; return 1; fi
  printf '   %ss, %s processes: ' "$(( $(date +%s) - t0 ))" "${#pids[@]}"
  "$PYTHON" "$here/check.py" "$mode" "$log" "$(( PROCS * langs * per ))"
}

for run in $(seq "$RUNS"); do
  for backend in file s3; do
    if [ "$backend" = file ]; then
      url="file://$(mktemp -d "$WORK/file-XXXXXX")"
    else
      url="${S3DB_TEST_S3_URL%/}/torture-$(date +%s%N)"
    fi
    echo "-- run $run/$RUNS on $(mask "$url")"
    phase lock "$url" "$LOCKS" "$WORK/run$run-$backend-lock.log"
    phase sequence "$url" "$IDS" "$WORK/run$run-$backend-sequence.log"
  done
done
echo "torture: ok (logs in $WORK)"
