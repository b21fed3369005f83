#!/usr/bin/env bash
# Every test: lint, header drift, Rust, C, Go, Python, Node and cross-language suites,
# against memory://, file:// and a versitygw S3 server started here on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")"
source tests/lib.sh
source tests/s3-server.sh
S3DB_T0=$(date +%s)
trap s3_server_stop EXIT

step "Tools (pip: pytest, mypy, maturin, boto3; cargo: cbindgen; go: versitygw)"
python_env
if ! command -v cbindgen >/dev/null || ! cbindgen --version | grep -q ' 0\.29\.'; then
  cargo install cbindgen --version 0.29.0 --locked
fi
versitygw_bin >/dev/null

step "Format and lints"
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

step "C header is up to date"
bindings-c/gen-header.sh "$S3DB_WORK/s3db.h"
diff -u include/s3db.h "$S3DB_WORK/s3db.h" || { echo "include/s3db.h is stale: run bindings-c/gen-header.sh"; exit 1; }

step "Generated bindings are up to date"
cargo run --locked -q -p s3db-gen -- --check

build_c
build_python
build_node
echo "bindings built after $(elapsed)"

step "S3 test server"
s3_server_start

step "Rust (engine, C ABI, operation table generator, CLI, fault proxy)"
cargo test --locked -p s3db -p s3db-c -p s3db-gen -p s3db-cli -p s3db-faultproxy

step "C"
tests/c/run.sh

step "Go"
(cd tests/go && go test -count=1 ./...)

step "Python"
python -m pytest -q tests/python
python -m mypy.stubtest s3db

step "Node"
(cd bindings-node && npm test && npm run typecheck)

step "Cross-language"
tests/interop/run.sh

step "Multi-process torture (Rust, Python, Node on one lock and one sequence)"
tests/torture/run.sh

step "All tests passed in $(elapsed)"
