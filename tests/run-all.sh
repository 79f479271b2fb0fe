#!/bin/sh
# run-all.sh - install what the tests need, build with -Werror, run every test.
#
#   sudo tests/run-all.sh            (from the top of the checkout)
#
# Environment: BUILD_DIR (default build-test), JOBS (default: nproc),
# SANITIZE=1 for an ASan/UBSan build.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
BUILD_DIR=${BUILD_DIR:-build-test}
JOBS=${JOBS:-$(nproc)}

packaging/install-deps.sh --test

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDMARC_MILTER_WERROR=ON \
  -DDMARC_MILTER_SANITIZE="$( [ "${SANITIZE:-0}" = 1 ] && echo ON || echo OFF )"
cmake --build "$BUILD_DIR" -j "$JOBS"

status=0
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 600 -j "$JOBS") || status=$?

# The libFuzzer targets (tests/fuzz), a fixed seed and number of inputs
# each: a clang build of its own in build-fuzz.
echo
echo "== fuzz (tests/fuzz/run-fuzz.sh) =="
tests/fuzz/run-fuzz.sh || status=$?

# The conformance counts, from the test output.
echo
echo "== conformance summary =="
grep -h '^conformance:' "$BUILD_DIR/Testing/Temporary/LastTest.log" | sort -u || true
exit $status
