#!/usr/bin/env bash
# Builds libs3db and runs the Go quickstart:  examples/go/run.sh [connection-url]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
(cd "$root" && cargo build -q -p s3db-c)
cd "$root/examples/go"
exec go run . "$@"
