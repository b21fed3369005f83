#!/usr/bin/env bash
# Starts versitygw (Versity S3 Gateway, posix backend) on 127.0.0.1 and creates the test bucket.
# The binary is built once with `go install` into a cache outside the repository
# (${S3DB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/s3db}/versitygw-v1.8.0/bin), so clones share it.
# Objects live under tests/.work/versitygw-<port>/, removed by s3_server_stop.
# Usage: source tests/s3-server.sh; s3_server_start; … ; s3_server_stop
# Exports S3DB_TEST_S3_URL=http://s3dbtest:s3dbtestsecret@127.0.0.1:<port>/s3db-test

S3_SERVER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSITYGW_VERSION=v1.8.0
S3_SERVER_KEY=s3dbtest
S3_SERVER_SECRET=s3dbtestsecret
S3_SERVER_BUCKET=s3db-test

# Prints the path of the versitygw binary, building it first when the cache has none.
versitygw_bin() {
  local cache bin tmp t0
  cache="${S3DB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/s3db}/versitygw-$VERSITYGW_VERSION"
  bin="$cache/bin/versitygw"
  if [ ! -x "$bin" ]; then
    echo "building versitygw $VERSITYGW_VERSION into $cache/bin (a few minutes, once)" >&2
    mkdir -p "$cache/bin"
    tmp="$(mktemp -d "$cache/build.XXXXXX")"
    t0=$(date +%s)
    # Built in a temporary GOBIN and renamed, so a concurrent start never runs half a file.
    if ! (cd "$tmp" && GOBIN="$tmp" \
          go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2; then
      rm -rf "$tmp"
      echo "go install versitygw@$VERSITYGW_VERSION failed" >&2
      return 1
    fi
    mv -f "$tmp/versitygw" "$bin"
    rm -rf "$tmp"
    echo "versitygw built in $(( $(date +%s) - t0 ))s" >&2
  fi
  echo "$bin"
}

s3_server_start() {
  local bin port log url
  bin="$(versitygw_bin)" || return 1
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  S3_SERVER_ROOT="$S3_SERVER_DIR/.work/versitygw-$port"
  rm -rf "$S3_SERVER_ROOT"
  mkdir -p "$S3_SERVER_ROOT/data"
  log="$S3_SERVER_ROOT/versitygw.log"
  # --keep-alive: S3 keeps connections open; without it every response closes its connection.
  "$bin" --access "$S3_SERVER_KEY" --secret "$S3_SERVER_SECRET" --port "127.0.0.1:$port" \
    --keep-alive --quiet posix "$S3_SERVER_ROOT/data" >"$log" 2>&1 &
  S3_SERVER_PID=$!
  url="http://127.0.0.1:$port"
  # Any HTTP answer (403 to an unsigned request) means it listens.
  for _ in $(seq 1 100); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/")" != 000 ]; then break; fi
    if ! kill -0 "$S3_SERVER_PID" 2>/dev/null; then echo "versitygw died:"; cat "$log"; return 1; fi
    sleep 0.1
  done
  # CreateBucket signed by curl: a bare directory is not a bucket (posix wants its ACL xattr).
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_SERVER_KEY:$S3_SERVER_SECRET" \
    -H "x-amz-content-sha256: $(printf '' | sha256sum | cut -d' ' -f1)" \
    -X PUT "$url/$S3_SERVER_BUCKET" >/dev/null \
    || { echo "cannot create bucket $S3_SERVER_BUCKET on versitygw"; cat "$log"; return 1; }
  export S3DB_TEST_S3_URL="http://$S3_SERVER_KEY:$S3_SERVER_SECRET@127.0.0.1:$port/$S3_SERVER_BUCKET"
  export S3_SERVER_PID S3_SERVER_ROOT
  echo "versitygw $VERSITYGW_VERSION: pid $S3_SERVER_PID on 127.0.0.1:$port, data in $S3_SERVER_ROOT/data"
}

s3_server_stop() {
  if [ -n "${S3_SERVER_PID:-}" ]; then
    kill "$S3_SERVER_PID" 2>/dev/null || true
    wait "$S3_SERVER_PID" 2>/dev/null || true
    S3_SERVER_PID=
    [ -n "${S3_SERVER_ROOT:-}" ] && rm -rf "$S3_SERVER_ROOT"
  fi
}
