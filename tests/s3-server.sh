#!/usr/bin/env bash
# Starts moto's S3 server on 127.0.0.1 and creates the test bucket. It runs through
# tests/moto_atomic.py, which makes moto's conditional writes atomic (stock moto lets two
# concurrent If-Match PUTs from the same etag both win: see that file).
# Usage: source tests/s3-server.sh; s3_server_start; … ; s3_server_stop
# Exports S3DB_TEST_S3_URL=http://test:test@127.0.0.1:<port>/s3db-test

S3_SERVER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

s3_server_start() {
  local port log
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  log="${S3DB_WORK:-/tmp}/moto.log"
  python3 "$S3_SERVER_DIR/moto_atomic.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  S3_SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/"; then break; fi
    if ! kill -0 "$S3_SERVER_PID" 2>/dev/null; then echo "moto_server died:"; cat "$log"; return 1; fi
    sleep 0.1
  done
  curl -sf -X PUT "http://127.0.0.1:$port/s3db-test" >/dev/null || { echo "cannot create bucket"; return 1; }
  export S3DB_TEST_S3_URL="http://test:test@127.0.0.1:$port/s3db-test"
  export S3_SERVER_PID
  echo "moto S3 server: pid $S3_SERVER_PID on 127.0.0.1:$port"
}

s3_server_stop() {
  if [ -n "${S3_SERVER_PID:-}" ]; then
    kill "$S3_SERVER_PID" 2>/dev/null || true
    wait "$S3_SERVER_PID" 2>/dev/null || true
    S3_SERVER_PID=
  fi
}
