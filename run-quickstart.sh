#!/usr/bin/env bash
# Runs the quickstart in Rust, Python, Node, C and Go, then the s3db CLI, against one embedded
# file:// store.
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

step "Rust";   cargo run --locked -q -p s3db --example quickstart -- "$S3DB_URL"
step "Python"; python examples/python/quickstart.py "$S3DB_URL"
step "Node";   node examples/node/quickstart.mjs "$S3DB_URL"
step "C";      examples/c/run.sh "$S3DB_URL"
step "Go";     examples/go/run.sh "$S3DB_URL"
step "CLI";    cli() { cargo run --locked -q -p s3db-cli -- --connection "$S3DB_URL" "$@"; }
cli resources
cli count users
cli list users --limit 3

step "All five quickstarts and the CLI shared $S3DB_URL (took $(elapsed))"
