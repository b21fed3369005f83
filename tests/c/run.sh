#!/usr/bin/env bash
# Builds libs3db (debug) and the C test program twice, linked against libs3db.so and statically
# against libs3db.a, and runs both against memory://, file:// and, when S3DB_TEST_S3_URL is set,
# that S3 server.
#   tests/c/run.sh                      (S3DB_PROFILE=release to test the release build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
profile="${S3DB_PROFILE:-debug}"
lib="${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-gnu/$profile"
out="$root/tests/.work/c"
mkdir -p "$out"

if [ "$profile" = release ]; then cargo build -q -p s3db-c --release; else cargo build -q -p s3db-c; fi

cflags=(-std=c11 -Wall -Wextra -Werror -g -pthread -I "$root/include")

# The header must also be valid C++ (extern "C", no keywords as names).
g++ -std=c++11 -Wall -Werror -fsyntax-only -x c++ "$root/include/s3db.h"

gcc "${cflags[@]}" tests/c/test_s3db.c -o "$out/test_s3db_shared" \
  -L "$lib" -ls3db -Wl,-rpath,"$lib"
# Static: the native libraries are what `cargo rustc -- --print native-static-libs` lists.
gcc "${cflags[@]}" tests/c/test_s3db.c -o "$out/test_s3db_static" \
  "$lib/libs3db.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
if ldd "$out/test_s3db_static" | grep -q libs3db; then
  echo "test_s3db_static is linked against libs3db.so" >&2
  exit 1
fi

status=0
"$out/test_s3db_shared" "libs3db.so ($profile)" || status=1
"$out/test_s3db_static" "libs3db.a ($profile)" || status=1
exit $status
