#!/bin/bash
# profile.sh - where dmarc-milter's instructions go, per message (callgrind)
#
# USAGE (as root)
#   bench/profile.sh
#
#   Environment: PROFILE_MESSAGES=2000 (messages counted), and BENCH_WORK,
#   BENCH_SESSIONS, BENCH_SEED, DMARC_MILTER as for run.sh.
#
# DESCRIPTION
#   Same world as run.sh (network namespace, NSD, the corpus). Starts
#   dmarc-milter (inet socket) under valgrind --tool=callgrind, warms it up
#   with one pass over the corpus (DNS cache filled), zeroes the counters
#   (callgrind_control -z), replays PROFILE_MESSAGES messages at
#   concurrency 2, dumps the counters (callgrind_control -d) and prints the
#   split by category (callgrind_split.py) and the inclusive instruction
#   counts of the functions that matter. Instruction counts are repeatable
#   from run to run, unlike times (perf cannot count instructions on this
#   virtual machine: `perf stat -e instructions` says "not supported").
#   The dump stays in $BENCH_WORK/callgrind.out.* for callgrind_annotate or
#   kcachegrind.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${PROFILE_MESSAGES:-2000}
NS=dmbprof$$
. "$ROOT/bench/lib.sh"

prepare

start_world

rm -f "$WORK"/callgrind.out*
ip netns exec "$NS" valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
  "$DMARC_MILTER" -f -c "$WORK/conf/ours-inet.conf" 2>"$WORK/callgrind-milter.log" &
VG_PID=$!
track "$VG_PID"
for i in $(seq 1 300); do
  in_ns ss -ltnH "sport = :8895" | grep -q . && break
  kill -0 "$VG_PID" 2>/dev/null || die "dmarc-milter under valgrind exited"
  sleep 0.1
done
log "warm-up: $MSGS messages under callgrind"
in_ns "$BENCH" -c 4 -n "$MSGS" -m inet:8895@127.0.0.1 "$CORPUS" >/dev/null || die "warm-up failed"
callgrind_control -z "$VG_PID" >/dev/null
log "profiling $N messages"
OUT=$(in_ns "$BENCH" -c 2 -n "$N" -m inet:8895@127.0.0.1 --label profile "$CORPUS")
printf '%s\n' "$OUT" | grep -E '^  (measured|outcomes)' >&2
callgrind_control -d "$VG_PID" >/dev/null
sleep 1
DUMP=$(ls -t "$WORK"/callgrind.out.* | head -1)
# milter-bench stops at a session boundary: count what it really sent.
COUNTED=$(printf '%s\n' "$OUT" | sed -n 's/^RESULT.* msgs=\([0-9]*\) .*/\1/p')
stop_all

/usr/bin/python3 "$ROOT/bench/callgrind_split.py" "$DUMP" "$COUNTED" --top 20
echo "inclusive instructions per message of selected functions:"
callgrind_annotate --inclusive=yes --threshold=100 "$DUMP" 2>/dev/null \
  | grep -E ':(dkim_eoh|dkim_body|dkim_eom|dkim_sig_process|d2i_PUBKEY_bio|RSA_verify|EVP_DigestVerify|SHA256_Update|EVP_DigestUpdate|mi_engine|dmarc::SpfVerifier::check|dmarc::evaluate_dmarc|dmarc::format_auth_results|dmarc::milter::Session::eom|dmarc::dkim::build_txt_reply|dmarc::CachedResolver::query|spdlog::logger::log_it_|dmarc::SpfVerifier::create)[ (]' \
  | awk -v n="$COUNTED" '{ gsub(",", "", $1); name = $0; sub(/^[^:]*:/, "", name); sub(/ \[.*$/, "", name); sub(/\(.*$/, "", name); sub(/ +$/, "", name); printf "  %10.0f  %s\n", $1 / n, name }' \
  | sort -k2 -u | sort -rn
echo "what libopendkim's signature check (dkim_sig_process) calls, instructions per call:"
callgrind_annotate --inclusive=yes --tree=calling --threshold=100 "$DUMP" 2>/dev/null \
  | awk '/\* .*:dkim_sig_process \[/ { on = 1; next } on && !/^ *[0-9,]+ .*>/ { on = 0; next }
         on { gsub(",", "", $1); n = $0; sub(/^.*> +\?\?\?:/, "", n); calls = n; sub(/ \(.*$/, "", n)
              sub(/^[^(]*\(/, "", calls); sub(/x\).*$/, "", calls); gsub(",", "", calls)
              if (calls > 0 && $1 / calls > 20000) printf "  %10.0f  %s (%s calls)\n", $1 / calls, n, calls }'
echo "dump: $DUMP"
