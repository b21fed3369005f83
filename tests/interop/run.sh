#!/usr/bin/env bash
# Python writes, Node reads and writes, Python and Rust check: on file:// and on the S3 server.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."

run() {
  local url="$1"
  echo "-- interop on $(printf %s "$url" | sed -E 's#//[^@/]*@#//***@#')"
  python "$here/python_write.py" "$url"
  node "$here/node_read_write.mjs" "$url"
  python "$here/python_verify.py" "$url"
}

run "file://$(mktemp -d "${TMPDIR:-/tmp}/s3db-interop-XXXXXX")"
if [ -n "${S3DB_TEST_S3_URL:-}" ]; then
  run "$S3DB_TEST_S3_URL/interop-$(date +%s%N)"
else
  echo "S3DB_TEST_S3_URL is not set: the S3 leg needs the test server (run-tests.sh starts it)" >&2
  exit 1
fi
echo "interop: ok"
