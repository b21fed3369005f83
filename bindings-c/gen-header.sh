#!/usr/bin/env bash
# Regenerates the C header from bindings-c/src/lib.rs with the cbindgen CLI.
#   bindings-c/gen-header.sh [OUTPUT]      (default: include/s3db.h at the repository root)
# The tests write to a temporary file and diff it against include/s3db.h to catch drift.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=${1:-$root/include/s3db.h}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

want=0.29.0
if ! command -v cbindgen >/dev/null 2>&1; then
  echo "gen-header.sh: cbindgen not found; install it with: cargo install cbindgen --version $want --locked" >&2
  exit 127
fi
have=$(cbindgen --version | awk '{print $2}')
if [ "$have" != "$want" ]; then
  echo "gen-header.sh: warning: cbindgen $have, the committed header was made with $want" >&2
fi
mkdir -p "$(dirname "$out")"
cbindgen --quiet --config "$here/cbindgen.toml" --crate s3db-c --output "$out" "$here"
