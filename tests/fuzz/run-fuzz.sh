#!/bin/sh
# run-fuzz.sh - build the libFuzzer targets (clang, ASan + UBSan) and run
# each one over its seed corpus.
#
#   tests/fuzz/run-fuzz.sh                 (from anywhere; CI: tests/run-all.sh)
#
# CI runs are reproducible: a fixed seed and a fixed number of inputs per
# target (FUZZ_RUNS, default 1000000; the slower targets a share of it,
# below; FUZZ_SEED, default 1), so what passed
# here passes there. For a long local run: FUZZ_SECONDS=3600 (time instead
# of a count; the corpus grows in build-fuzz/corpus/TARGET and is kept).
# A crash, a leak, a timeout (10 s per input) or more than 2 GiB fails the
# run; the input is written to build-fuzz/artifacts/ and named in the log.
# Seeds: tests/fuzz/seeds.py, from ../shared/conformance and the project's
# own files, read in place.
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$here/build-fuzz}
RUNS=${FUZZ_RUNS:-1000000}
SEED=${FUZZ_SEED:-1}
CONF=$(cd "$here/.." && pwd)/shared/conformance
TARGETS="fuzz_dmarc_record fuzz_from_header fuzz_auth_results fuzz_config fuzz_session fuzz_dkim fuzz_spf fuzz_report fuzz_store"

command -v clang++ >/dev/null || { echo "run-fuzz.sh: clang++ is missing (packaging/install-deps.sh --test)" >&2; exit 1; }
mkdir -p "$BUILD"
CC=clang CXX=clang++ cmake -S "$here" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDMARC_MILTER_FUZZ=ON -DDMARC_MILTER_TESTS=OFF >"$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log" >&2; exit 1; }
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$(nproc)" --target $TARGETS

rm -rf "$BUILD/seeds"
python3 "$here/tests/fuzz/seeds.py" "$BUILD/seeds" "$CONF" "$here"
mkdir -p "$BUILD/artifacts"
status=0
for t in $TARGETS; do
  mkdir -p "$BUILD/corpus/$t"
  if [ -n "${FUZZ_SECONDS:-}" ]; then
    budget="-max_total_time=$FUZZ_SECONDS"
  else
    # Each target's share of FUZZ_RUNS, so each takes 30-60 s here (2
    # cores, shared) and the whole run stays under about 8 minutes:
    # measured inputs per second at the start, from the seeds alone.
    case $t in
      fuzz_auth_results) share=2 ;;     # ~14 000/s
      fuzz_config) share=20 ;;          # ~900/s: a whole file per input
      fuzz_spf) share=20 ;;             # ~2 500/s: libspf2, up to 10 lookups
      fuzz_dkim|fuzz_store) share=50 ;; # ~700/s: RSA and ed25519; SQLite
      fuzz_report) share=200 ;;         # ~170/s: GMime, libxml2, two XSDs
      fuzz_session) share=500 ;;        # ~60-400/s: SPF, DKIM and DMARC per message
      *) share=1 ;;                     # ~25 000/s
    esac
    runs=$(( RUNS / share ))
    budget="-runs=$runs"
    # The CI run starts from the seeds alone, so its inputs are the same
    # every time.
    rm -rf "$BUILD/corpus/$t" && mkdir -p "$BUILD/corpus/$t"
  fi
  start=$(date +%s)
  if "$BUILD/tests/fuzz/$t" "$budget" -seed="$SEED" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$BUILD/artifacts/$t-" "$BUILD/corpus/$t" "$BUILD/seeds/$t" >"$BUILD/$t.log" 2>&1; then
    echo "run-fuzz.sh: $t: $(sed -n 's/^stat::number_of_executed_units: //p' "$BUILD/$t.log") inputs in $(( $(date +%s) - start )) s, no crash, no leak"
  else
    status=1
    tail -n 60 "$BUILD/$t.log" >&2
    echo "run-fuzz.sh: $t FAILED (log: $BUILD/$t.log; input in $BUILD/artifacts/)" >&2
  fi
done
exit $status
