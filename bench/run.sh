#!/bin/bash
# run.sh - dmarc-milter against OpenDKIM + OpenDMARC, measured in one run on this machine
#
# USAGE (as root, from anywhere)
#   bench/run.sh
#   bench/run.sh --report RESULTS_FILE    the table again, from a run's results.txt
#
#   Environment (all optional):
#     BENCH_SECONDS=20         measured seconds per point
#     BENCH_CONCURRENCY="1 8 32"
#     BENCH_SESSIONS=1500      corpus size in SMTP sessions (about 1.6 messages each)
#     BENCH_SEED=5             corpus seed
#     BENCH_RSS_SECONDS=120    length of the RSS run of dmarc-milter at the end (0: none)
#     BENCH_WORK=/tmp/dmarc-bench   scratch directory (corpus, configs, logs, results)
#     BENCH_REGEN=1            generate the corpus again
#     DMARC_MILTER=path        use this dmarc-milter binary instead of building one
#     BENCH_WAIT_QUIET=0       wait up to this many seconds for the machine to be idle
#                              (other work under 0.2 CPU) before measuring
#
# DESCRIPTION
#   Installs what is missing (Debian packages, listed in lib.sh: opendkim,
#   opendmarc, dbconfig-no-thanks, nsd, ldnsutils, openssl, python3,
#   iproute2, procps, cmake, g++, pkg-config, libopendkim-dev, publicsuffix,
#   valgrind) and keeps OpenDKIM, OpenDMARC and NSD from running as system
#   services. Builds bench/ (build-bench/) and dmarc-milter
#   (build-bench/milter, RelWithDebInfo), generates the corpus and its DNS
#   world (gen_corpus.py), and in a private network namespace starts NSD
#   and, one configuration at a time:
#     ours-inet   dmarc-milter on inet:8895@127.0.0.1
#     ours-unix   dmarc-milter on a unix socket
#     inc-inet    opendkim (verify) -> opendmarc (SPFSelfValidate), inet sockets
#     inc-unix    the same on unix sockets (no Nagle, so no ~40 ms stall)
#     null-inet   bench/src/null_milter.cpp: libmilter as Debian ships it,
#     null-unix   doing nothing (the protocol's floor; inet shows the stall)
#   Each configuration is warmed up with one pass over the corpus at
#   concurrency 32 (DNS caches filled), then measured at each concurrency
#   for BENCH_SECONDS with milter-bench. Prints a table and the ratios
#   against the targets of issue 5; keeps everything under $BENCH_WORK.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_POINT=${BENCH_SECONDS:-20}
CONCS=${BENCH_CONCURRENCY:-"1 8 32"}
RSS_SECONDS=${BENCH_RSS_SECONDS:-120}
NS=dmbench$$
. "$ROOT/bench/lib.sh"

# report FILE - the table and the ratios, from the RESULT lines of FILE.
report() {
awk -v concs="$CONCS" '
function kv(line, key,   n, i, a, p) {
  n = split(line, a, " ")
  for (i = 1; i <= n; i++) { split(a[i], p, "="); if (p[1] == key) return p[2] }
  return ""
}
/^RESULT/ {
  l = kv($0, "label"); c = kv($0, "conc")
  rate[l, c] = kv($0, "rate"); p50[l, c] = kv($0, "p50_ms"); p90[l, c] = kv($0, "p90_ms")
  p99[l, c] = kv($0, "p99_ms"); cpu[l, c] = kv($0, "cpu_us"); err[l, c] = kv($0, "errors")
  oth[l, c] = kv($0, "host_other"); ag[l, c] = kv($0, "dmarc_agree"); dis[l, c] = kv($0, "dmarc_disagree"); cl[l, c] = kv($0, "client_us")
  split($0, f, " ")
  part[l, c] = ""
  for (i = 1; i <= length(f); i++) if (f[i] ~ /^cpu_us\./) {
    nm = f[i]; sub(/^cpu_us\./, "", nm); split(nm, q, "="); nm = q[1]
    part[l, c] = part[l, c] sprintf("%s %.0f (user %.0f, sys %.0f) ", nm, q[2], kv($0, "cpu_user_us." nm), kv($0, "cpu_sys_us." nm))
  }
  if (l == "ours-rss") {
    for (i in f) if (f[i] ~ /^rss_kb\./) { split(f[i], q, "="); rss_end = q[2] }
    for (i in f) if (f[i] ~ /^rss_slope\./) { split(f[i], q, "="); rss_slope = q[2] }
    rss = sprintf("%d messages in %s s at concurrency 8: RSS at the end %d KiB, slope %+.1f KiB per 100k messages", kv($0, "msgs"), kv($0, "secs"), rss_end, rss_slope)
  }
}
END {
  nc = split(concs, cc, " ")
  printf "\n| configuration | conc | msgs/s | p50 ms | p90 ms | p99 ms | CPU us/msg (milters) | per process | client us/msg | other load (CPUs) | errors | dmarc as expected |\n"
  printf "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n"
  split("ours-inet ours-unix inc-inet inc-unix null-inet null-unix", labels, " ")
  for (k = 1; k <= 6; k++) for (j = 1; j <= nc; j++) {
    l = labels[k]; c = cc[j]
    if (!((l, c) in rate)) continue
    printf "| %s | %s | %.1f | %.2f | %.2f | %.2f | %.0f | %s| %.0f | %.2f | %s | %s/%s |\n", l, c, rate[l, c], p50[l, c], p90[l, c], p99[l, c], cpu[l, c], part[l, c], cl[l, c], oth[l, c], err[l, c], ag[l, c], ag[l, c] + dis[l, c]
  }
  printf "\nRatios (dmarc-milter over the incumbent chain, same run):\n"
  for (j = 1; j <= nc; j++) {
    c = cc[j]
    if (rate["inc-inet", c] > 0 && cpu["ours-inet", c] > 0)
      printf "  concurrency %-3s inet: throughput x%.1f, CPU per message 1/%.1f (%.0f vs %.0f us), p99 %.2f vs %.2f ms\n", c, rate["ours-inet", c] / rate["inc-inet", c], cpu["inc-inet", c] / cpu["ours-inet", c], cpu["ours-inet", c], cpu["inc-inet", c], p99["ours-inet", c], p99["inc-inet", c]
    if (rate["inc-unix", c] > 0 && cpu["ours-unix", c] > 0)
      printf "  concurrency %-3s unix: throughput x%.1f, CPU per message 1/%.1f (%.0f vs %.0f us)\n", c, rate["ours-unix", c] / rate["inc-unix", c], cpu["inc-unix", c] / cpu["ours-unix", c], cpu["ours-unix", c], cpu["inc-unix", c]
  }
  printf "\nTargets (issue 5):\n"
  if (("ours-inet", 8) in rate && ("inc-inet", 8) in rate) {
    r = rate["ours-inet", 8] / rate["inc-inet", 8]
    printf "  inet, concurrency 8: throughput x%.1f (target >= 10): %s\n", r, (r >= 10 ? "met" : "NOT met")
    printf "  inet, concurrency 8: p99 %.2f ms (target <= 5): %s\n", p99["ours-inet", 8], (p99["ours-inet", 8] <= 5 ? "met" : "NOT met")
    cr = cpu["inc-inet", 8] / cpu["ours-inet", 8]
    printf "  CPU per message, concurrency 8: %.0f us vs %.0f us = 1/%.1f (target 1/8 or better): %s\n", cpu["ours-inet", 8], cpu["inc-inet", 8], cr, (cr >= 8 ? "met" : "NOT met")
  }
  if (("ours-inet", 1) in rate && ("inc-inet", 1) in rate)
    printf "  the inet stall, concurrency 1: incumbent p50 %.1f ms inet vs %.1f ms unix; dmarc-milter %.2f ms inet vs %.2f ms unix\n", p50["inc-inet", 1], p50["inc-unix", 1], p50["ours-inet", 1], p50["ours-unix", 1]
  if (("null-unix", 8) in rate)
    printf "  the protocol floor (null-milter, libmilter as shipped), concurrency 8: %.0f us per message over unix, %.0f over inet\n", cpu["null-unix", 8], cpu["null-inet", 8]
  if (rss != "") printf "  RSS: %s\n", rss
}' "$1"
}

if [ "${1:-}" = "--report" ]; then
  report "${2:?usage: run.sh --report RESULTS_FILE}"
  exit 0
fi

prepare
RESULTS=$WORK/results.txt
: >"$RESULTS"

# busy_cpus - CPUs busy on the whole machine over 5 seconds.
busy_cpus() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 5
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$a $b" | awk -v n="$(nproc)" '{ printf "%.2f", ($3 - $1) / ($4 - $2) * n }'
}
waited=0
while :; do
  busy=$(busy_cpus)
  log "machine busy: $busy CPUs (before the benchmark starts)"
  awk -v b="$busy" 'BEGIN { exit !(b < 0.2) }' && break
  [ "$waited" -lt "${BENCH_WAIT_QUIET:-0}" ] || break
  sleep 25
  waited=$((waited + 30))
done

start_world

{
  echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), $(nproc) CPUs, $(uname -r)"
  echo "# dmarc-milter $($DMARC_MILTER -V 2>&1 | head -1) ($DMARC_MILTER), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)"
  echo "# $(opendkim -V | head -1); $(opendmarc -V | head -1)"
  echo "# corpus: $(head -3 "$CORPUS/summary.txt" | tr '\n' ';')"
  echo "# load before: $(uptime); busy $busy CPUs over 5 s"
  top -bn1 -o %CPU | sed -n '7,12p' | sed 's/^/#   /'
} | tee -a "$RESULTS"

# point LABEL CONC ARGS... - one measurement; its RESULT line goes to $RESULTS.
point() {
  local label=$1 conc=$2
  shift 2
  local out
  out=$(in_ns "$BENCH" -c "$conc" -d "$SECONDS_PER_POINT" -n 10000000 --label "$label" "$@" "$CORPUS") || true
  printf '%s\n' "$out" | sed -n '/^milter-bench/,$p' | grep -v '^RESULT' >&2
  printf '%s\n' "$out" | grep '^RESULT' | tee -a "$RESULTS" >/dev/null
}

for kind in inet unix; do
  log "dmarc-milter over $kind"
  start_ours "$kind"
  in_ns "$BENCH" -c 32 -n "$MSGS" -m "$OURS_SOCK" "$CORPUS" >/dev/null || die "warm-up of dmarc-milter failed"
  for c in $CONCS; do
    point "ours-$kind" "$c" -m "$OURS_SOCK" -p "dmarc-milter=$OURS_PID"
  done
  stop_all
done

for kind in inet unix; do
  log "opendkim -> opendmarc over $kind"
  start_incumbent "$kind"
  in_ns "$BENCH" -c 32 -n "$MSGS" -m "$DKIM_SOCK" -m "$DMARC_SOCK" "$CORPUS" >/dev/null \
    || die "warm-up of the incumbent chain failed"
  for c in $CONCS; do
    point "inc-$kind" "$c" -m "$DKIM_SOCK" -m "$DMARC_SOCK" -p "opendkim=$DKIM_PID" -p "opendmarc=$DMARC_PID"
  done
  stop_all
done

for kind in inet unix; do
  log "null-milter over $kind"
  start_null "$kind"
  for c in $CONCS; do
    point "null-$kind" "$c" -m "$NULL_SOCK" -p "null-milter=$NULL_PID"
  done
  stop_all
done

if [ "$RSS_SECONDS" -gt 0 ]; then
  log "dmarc-milter RSS over $RSS_SECONDS s at concurrency 8 (inet)"
  start_ours inet
  out=$(in_ns "$BENCH" -c 8 -d "$RSS_SECONDS" -n 100000000 -w "$MSGS" -m "$OURS_SOCK" -p "dmarc-milter=$OURS_PID" \
    --rss-every 5 --rss-log "$WORK/rss.log" --label ours-rss "$CORPUS") || true
  printf '%s\n' "$out" | grep -E '^  (measured|throughput|rss)' >&2
  printf '%s\n' "$out" | grep '^RESULT' >>"$RESULTS"
  stop_all
fi
echo "# load after: $(uptime)" | tee -a "$RESULTS"

report "$RESULTS" | tee -a "$RESULTS.report"
cat "$RESULTS.report" >>"$RESULTS"
rm -f "$RESULTS.report"
log "results in $RESULTS"
