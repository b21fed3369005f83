#!/usr/bin/env bash
# Runs the quickstart in Rust, Python, Node, C and Go against one embedded file:// store.
set -euo pipefail
cd "$(dirname "$0")"
source tests/lib.sh
S3DB_T0=$(date +%s)

store="$(mktemp -d "${TMPDIR:-/tmp}/s3db-quickstart-XXXXXX")"
export S3DB_URL="file://$store"

python_env
build_c
build_python
build_node

step "Rust";   cargo run -q -p s3db --example quickstart -- "$S3DB_URL"
step "Python"; python examples/python/quickstart.py "$S3DB_URL"
step "Node";   node examples/node/quickstart.mjs "$S3DB_URL"
step "C";      examples/c/run.sh "$S3DB_URL"
step "Go";     examples/go/run.sh "$S3DB_URL"

step "All five quickstarts shared $S3DB_URL (took $(elapsed))"
