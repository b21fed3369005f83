#!/usr/bin/env bash
# Builds libs3db and the C quickstart, then runs it:  examples/c/run.sh [connection-url]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
lib="${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu/debug"
out="$root/tests/.work/c"
mkdir -p "$out"
(cd "$root" && cargo build -q -p s3db-c)
gcc -std=c11 -Wall -Wextra -Werror -I "$root/include" "$root/examples/c/quickstart.c" \
  -o "$out/quickstart" -L "$lib" -ls3db -Wl,-rpath,"$lib"
exec "$out/quickstart" "$@"
