#!/bin/bash
# soak.sh - dmarc-milter for a million messages, then SIGKILLed under load (issue 16 item 5)
#
# USAGE (as root, from anywhere)
#   bench/soak.sh
#
#   Environment (all optional):
#     SOAK_MESSAGES=1000000     messages of the soak (phase 1)
#     SOAK_CONCURRENCY=8        milter-bench sessions at once
#     SOAK_SAMPLE_EVERY=5       seconds between samples of RSS, fds, threads, database size
#     SOAK_TOLERANCE_PCT=5      "flat": last-quarter max <= first-quarter max + this much (RSS, database)
#     SOAK_TOLERANCE_ABS=2      "flat": fds and threads may exceed the first-quarter max by this many
#     SOAK_MILTER_KILLS=20      SIGKILLs of the milter under load (phase 2)
#     SOAK_REPORT_KILLS=10      SIGKILLs of each of dmarc-report aggregate and failures (phase 3)
#     SOAK_SEED=16              seed of the kill points
#     BENCH_WORK=/tmp/dmarc-soak  scratch directory (corpus, configurations, logs, databases, sink)
#     BENCH_SESSIONS, BENCH_SEED, BENCH_REGEN, DMARC_MILTER: as for bench/run.sh (lib.sh)
#     DMARC_REPORT=path         a built dmarc-report (default: built beside dmarc-milter)
#
# DESCRIPTION
#   The world of bench/run.sh (lib.sh: a network namespace, NSD serving the
#   corpus of gen_corpus.py, milter-bench as the MTA). The corpus's zone gets
#   "ruf=mailto:ruf@DOMAIN; fo=1" beside every rua (a copy under $BENCH_WORK;
#   the generated corpus has no ruf), so that failure reports are queued.
#   dmarc-milter runs with the store on (ReportStore sqlite in $BENCH_WORK)
#   and FailureReports yes. Report mail goes to a sendmail-compatible sink
#   ($BENCH_WORK/sink.sh): like "sendmail -t -oi" it takes what arrives on
#   standard input until end of file and delivers it, one file per message
#   in a Maildir (written to tmp/, renamed into new/), so a copy cut short by
#   a SIGKILL of its sender is delivered as a real MTA would deliver it.
#
#   Phase 0, calibration: one pass over the corpus into a fresh database;
#   its rows are the corpus's distinct aggregation keys, and SQLite's dbstat
#   gives the bytes per row and per failure job. The prediction for phase 1:
#   the same rows (a row is (policy domain, UTC day, key); the corpus replays
#   the same messages, so 1M messages add counts, not rows), failure jobs as
#   the hourly limits allow, the schema's fixed pages, a WAL of at most
#   SQLite's auto-checkpoint (1000 pages) plus one batch.
#   Phase 1, soak: SOAK_MESSAGES through one milter process; every
#   SOAK_SAMPLE_EVERY seconds VmRSS, open fds, threads, database and WAL size.
#   Flat: after a warm-up (the first tenth of the samples), the maximum of
#   the last quarter against the maximum of the first quarter.
#   Phase 2, milter kills: a fresh milter on the phase 2 database, load,
#   SIGKILL at a seeded random point, the store read while nothing runs, a
#   restart; SOAK_MILTER_KILLS times. "Committed" is a record of a batch whose
#   SQLite transaction returned from COMMIT: the milter counts those in
#   dmarc_milter_store_records_written_total (metrics), read every 0.2 s
#   until the kill. Check: the store's count grew by at least what the last
#   reading said was written (else a committed record was lost), and by no
#   more than milter-bench saw answered (else a record was counted twice).
#   What was answered but not in the store was in the queue or in the
#   writer's open transaction at the kill: lost by design, counted apart.
#   Phase 3, dmarc-report kills, the milter under load meanwhile: each of
#   "aggregate" (one fresh report period per round) and "failures" is
#   SIGKILLed at a seeded random point of its run and run again until it
#   completes. At the end the sink is counted per Message-ID (stable per
#   report and destination, and per failure job): copies beyond the first
#   are reports sent twice; the store's "sent" states are compared with the
#   sink (a report marked sent and never delivered would be lost).
#
#   Prints everything and writes $BENCH_WORK/soak-results.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export BENCH_WORK=${BENCH_WORK:-/tmp/dmarc-soak}
NS=dmsoak$$
. "$ROOT/bench/lib.sh"

N_MSGS=${SOAK_MESSAGES:-1000000}
CONC=${SOAK_CONCURRENCY:-8}
EVERY=${SOAK_SAMPLE_EVERY:-5}
TOL_PCT=${SOAK_TOLERANCE_PCT:-5}
TOL_ABS=${SOAK_TOLERANCE_ABS:-2}
MILTER_KILLS=${SOAK_MILTER_KILLS:-20}
REPORT_KILLS=${SOAK_REPORT_KILLS:-10}
SOAK_SEED=${SOAK_SEED:-16}
RANDOM=$SOAK_SEED
PY=/usr/bin/python3
OUT=$WORK/soak-results.txt
SOCK=$WORK/sock/soak.sock
METRICS=127.0.0.1:9916

say() { printf '%s\n' "$*" | tee -a "$OUT"; }

prepare
command -v sqlite3 >/dev/null || { apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null; }
command -v curl >/dev/null || { apt-get install -y -qq --no-install-recommends curl >/dev/null; }
if [ -z "${DMARC_REPORT:-}" ]; then
  DMARC_REPORT=$(dirname "$DMARC_MILTER")/dmarc-report
  if [ ! -x "$DMARC_REPORT" ] || [ "$DMARC_REPORT" -ot "$DMARC_MILTER" ]; then
    cmake --build "$(dirname "$DMARC_MILTER")" -j2 --target dmarc-report >/dev/null || die "building dmarc-report failed"
  fi
fi

# The corpus with ruf= beside every rua=, in a copy.
SOAK_CORPUS=$WORK/soak-corpus
rm -rf "$SOAK_CORPUS"
mkdir -p "$SOAK_CORPUS/zones"
cp "$CORPUS/manifest.tsv" "$CORPUS/summary.txt" "$SOAK_CORPUS/"
ln -s "$CORPUS/msgs" "$SOAK_CORPUS/msgs"
for z in "$CORPUS"/zones/*.zone; do
  sed 's/rua=mailto:dmarc@\([A-Za-z0-9.-]*\)/&; ruf=mailto:ruf@\1; fo=1/' "$z" >"$SOAK_CORPUS/zones/$(basename "$z")"
done
CORPUS=$SOAK_CORPUS

# The sink: a sendmail-compatible command (arguments ignored).
SINK=$WORK/sink
rm -rf "$SINK"
mkdir -p "$SINK/tmp" "$SINK/new" "$SINK/cur"
cat >"$WORK/sink.sh" <<'EOF'
#!/bin/bash
# sendmail -t -oi as far as a sink needs: standard input until EOF is the message.
d=$1
f=$(date +%s%N).$$.$RANDOM
cat >"$d/tmp/$f" || exit 75
mv "$d/tmp/$f" "$d/new/$f"
EOF
chmod 755 "$WORK/sink.sh"

# conf NAME DB [extra lines] - a configuration for the milter and dmarc-report.
conf() {
  local name=$1 db=$2
  shift 2
  mkdir -p "$WORK/conf" "$WORK/sock"
  {
    echo "# soak.sh: bench defaults, store and failure reports on, reports to the sink"
    echo "Nameservers 127.0.0.1"
    echo "Socket unix:$SOCK"
    echo "Background no"
    echo "Syslog no"
    echo "LogLevel info"
    echo "AuthservID bench.example"
    echo "UMask 000"
    echo "ReportStore sqlite:$db"
    echo "FailureReports yes"
    echo "MetricsListen $METRICS"
    echo "ReportOrgName soak.example"
    echo "ReportSender dmarc-reports@soak.example"
    echo "ReportCommand $WORK/sink.sh $SINK"
    for l in "$@"; do echo "$l"; done
  } >"$WORK/conf/$name.conf"
  rm -f "$db" "$db-wal" "$db-shm" "$db.lock"
}

# start_milter CONF LOG - sets MPID.
start_milter() {
  rm -f "$SOCK"
  ip netns exec "$NS" "$DMARC_MILTER" -f -c "$1" 2>>"$2" &
  MPID=$!
  wait_listen "unix:$SOCK" "$MPID" || { tail "$2" >&2; die "dmarc-milter did not start"; }
}

metric() { # metric NAME - from the running milter's /metrics (empty when unreachable)
  { in_ns curl -s --max-time 1 "http://$METRICS/metrics" 2>/dev/null || true; } | awk -v n="$1" '$1 == n { print $2; exit }'
}

# answered FILE - messages milter-bench got an end-of-body reply for.
answered() {
  sed -n 's/^  milter 1 .*: end of body\([^;]*\);.*/\1/p' "$1" | awk '{ for (i = 2; i <= NF; i += 2) s += $i } END { print s + 0 }'
}

store_counts() { # DB -> "sum_of_counts rows jobs"
  sqlite3 "$1" "SELECT (SELECT coalesce(sum(count),0) FROM agg_rows), (SELECT count(*) FROM agg_rows), (SELECT count(*) FROM failure_jobs)" | tr '|' ' '
}

start_world
MPID="" SAMPLER="" BPID="" LOADPID=""
soak_cleanup() {
  local p
  for p in $SAMPLER $BPID $LOADPID $MPID; do kill -KILL "$p" 2>/dev/null || true; done
  cleanup
}
trap soak_cleanup EXIT
: >"$OUT"
say "# soak.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), $(nproc) CPUs, $(uname -r), $(awk '/MemTotal/{print $2" KiB"}' /proc/meminfo)"
say "# dmarc-milter $("$DMARC_MILTER" -V 2>&1 | head -1) ($DMARC_MILTER), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)"
say "# corpus: $(head -1 "$CORPUS/summary.txt"); ruf= added beside $(grep -c 'ruf=' "$CORPUS"/zones/*.zone | awk -F: '{s+=$NF} END{print s}') rua="
say "# load before: $(uptime)"

# ------------------------------------------------------------ phase 0
log "phase 0: one pass over the corpus ($MSGS messages) into a fresh database"
CAL_DB=$WORK/calibrate.db
conf calibrate "$CAL_DB"
start_milter "$WORK/conf/calibrate.conf" "$WORK/calibrate.log"
in_ns "$BENCH" -c "$CONC" -n "$MSGS" -m "unix:$SOCK" "$CORPUS" >"$WORK/calibrate.bench" || die "calibration pass failed"
stop_pid "$MPID"
sqlite3 "$CAL_DB" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
read -r CAL_SUM CAL_ROWS CAL_JOBS < <(store_counts "$CAL_DB")
# Bytes per row: the pages of agg_rows and its two indexes over its rows;
# per job: failure_jobs and its indexes over its jobs. (dbstat: page sizes
# of each b-tree; unused space in pages included, as on disk.)
read -r ROW_BYTES JOB_BYTES FIXED_BYTES PAGE < <(sqlite3 "$CAL_DB" "
  SELECT
    (SELECT sum(pgsize) FROM dbstat WHERE name IN ('agg_rows','sqlite_autoindex_agg_rows_1','agg_rows_day')) * 1.0 / $CAL_ROWS,
    CASE WHEN $CAL_JOBS > 0 THEN (SELECT sum(pgsize) FROM dbstat WHERE name IN ('failure_jobs','failure_jobs_status','failure_jobs_sent')) * 1.0 / $CAL_JOBS ELSE 0 END,
    (SELECT sum(pgsize) FROM dbstat WHERE name NOT IN ('agg_rows','sqlite_autoindex_agg_rows_1','agg_rows_day','failure_jobs','failure_jobs_status','failure_jobs_sent')),
    (SELECT page_size FROM pragma_page_size)" | tr '|' ' ')
CAL_DOMAINS=$(sqlite3 "$CAL_DB" "SELECT count(DISTINCT reported_domain) FROM failure_jobs")
CAL_SIZE=$(stat -c %s "$CAL_DB")
say "calibration: $(answered "$WORK/calibrate.bench") messages answered, store sum $CAL_SUM, $CAL_ROWS rows (distinct keys), $CAL_JOBS failure jobs ($CAL_DOMAINS reported domains); $CAL_SIZE bytes: $(printf '%.0f' "$ROW_BYTES") per row, $(printf '%.0f' "$JOB_BYTES") per job, $FIXED_BYTES fixed (schema), page $PAGE"

# ------------------------------------------------------------ phase 1
log "phase 1: $N_MSGS messages at concurrency $CONC, sampling every $EVERY s"
SOAK_DB=$WORK/soak.db
conf soak "$SOAK_DB"
start_milter "$WORK/conf/soak.conf" "$WORK/soak.log"
SAMPLES=$WORK/samples.tsv
echo "t	messages	rss_kb	fds	threads	db_bytes	wal_bytes" >"$SAMPLES"
T0=$(date +%s.%N)
T0_EPOCH=$(date +%s)
sampler() {
  while kill -0 "$MPID" 2>/dev/null; do
    local rss thr fds db wal msgs t
    t=$(date +%s.%N)
    rss=$(awk '/^VmRSS:/{print $2}' "/proc/$MPID/status" 2>/dev/null) || break
    thr=$(awk '/^Threads:/{print $2}' "/proc/$MPID/status" 2>/dev/null) || break
    fds=$(ls "/proc/$MPID/fd" 2>/dev/null | wc -l)
    db=$(stat -c %s "$SOAK_DB" 2>/dev/null || echo 0)
    wal=$(stat -c %s "$SOAK_DB-wal" 2>/dev/null || echo 0)
    msgs=$(metric dmarc_milter_messages_total)
    [ -n "$rss" ] && printf '%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(awk -v a="$t" -v b="$T0" 'BEGIN { print a - b }')" "${msgs:-0}" "$rss" "$fds" "$thr" "$db" "$wal" >>"$SAMPLES"
    sleep "$EVERY"
  done
}
sampler &
SAMPLER=$!
in_ns "$BENCH" -c "$CONC" -n "$N_MSGS" -m "unix:$SOCK" -p "dmarc-milter=$MPID" --label soak "$CORPUS" >"$WORK/soak.bench" || true
T1=$(date +%s.%N)
T1_EPOCH=$(date +%s)
sleep "$EVERY" # one more sample, idle, after the last commit
SOAK_WRITTEN=$(metric dmarc_milter_store_records_written_total)
SOAK_QUEUED=$(metric dmarc_milter_store_records_queued_total)
SOAK_DROPPED=$(metric dmarc_milter_store_records_dropped_total)
SOAK_JOBSQ=$(metric dmarc_milter_report_jobs_queued_total)
SOAK_JOBSD=$(metric dmarc_milter_report_jobs_dropped_total)
DB_AT_END=$(stat -c %s "$SOAK_DB")
WAL_AT_END=$(stat -c %s "$SOAK_DB-wal" 2>/dev/null || echo 0)
stop_pid "$MPID"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
grep -E '^  (measured|throughput|latency|outcomes|error|cpu|rss)' "$WORK/soak.bench" | tee -a "$OUT" >&2 || true
read -r SOAK_SUM SOAK_ROWS SOAK_JOBS < <(store_counts "$SOAK_DB")
SOAK_ANSWERED=$(answered "$WORK/soak.bench")
# Failure jobs the hourly limits let one process queue: per clock hour
# touched, min(FailureReportRateTotal 100, FailureReportRateDomain 10 x the
# domains that fail with a ruf), and never more than the corpus fails.
HOURS=$(( T1_EPOCH / 3600 - T0_EPOCH / 3600 + 1 ))
$PY - "$SAMPLES" "$TOL_PCT" "$TOL_ABS" "$CAL_ROWS" "$ROW_BYTES" "$JOB_BYTES" "$FIXED_BYTES" "$PAGE" \
  "$CAL_DOMAINS" "$HOURS" "$SOAK_ROWS" "$SOAK_JOBS" "$DB_AT_END" "$WAL_AT_END" "$T0" "$T1" "$SOAK_ANSWERED" \
  "$SOAK_SUM" "${SOAK_QUEUED:-?}" "${SOAK_WRITTEN:-?}" "${SOAK_DROPPED:-?}" "${SOAK_JOBSQ:-?}" "${SOAK_JOBSD:-?}" <<'EOF' | tee -a "$OUT"
import sys
(samples, tol_pct, tol_abs, cal_rows, row_b, job_b, fixed_b, page, domains, hours, rows, jobs, db_end, wal_end,
 t0, t1, answered, ssum, queued, written, dropped, jobsq, jobsd) = sys.argv[1:]
tol_pct, tol_abs = float(tol_pct), float(tol_abs)
lines = [l.rstrip("\n").split("\t") for l in open(samples)][1:]
S = [dict(t=float(a[0]), msgs=int(a[1]), rss=int(a[2]), fds=int(a[3]), thr=int(a[4]), db=int(a[5]), wal=int(a[6]))
     for a in lines]
n = len(S)
print(f"soak: {answered} messages answered in {float(t1) - float(t0):.0f} s ({int(answered) / (float(t1) - float(t0)):.0f} msgs/s), "
      f"{n} samples every ~{(S[-1]['t'] - S[0]['t']) / max(n - 1, 1):.1f} s")
print(f"store: sum of counts {ssum}, queued {queued}, written {written}, dropped (queue full) {dropped}; "
      f"failure jobs {jobs} (queued {jobsq}, dropped by the limits {jobsd})")
w = n // 10
body = S[w:]
q = max(len(body) // 4, 1)
first, last = body[:q], body[-q:]
ok_all = True
for key, name, unit, rel in (("rss", "RSS", "KiB", True), ("fds", "open fds", "", False), ("thr", "threads", "", False),
                             ("db", "database", "bytes", True), ("wal", "WAL", "bytes", True)):
    f, l = max(s[key] for s in first), max(s[key] for s in last)
    allowed = f * (1 + tol_pct / 100) if rel else f + tol_abs
    flat = l <= allowed
    ok_all = ok_all and flat
    print(f"  {name:9} first {S[0][key]} last {S[-1][key]} max {max(s[key] for s in S)} {unit}; after warm-up "
          f"({w} samples): first-quarter max {f}, last-quarter max {l} (allowed {allowed:.0f}): "
          f"{'flat' if flat else 'NOT flat'}")
print(f"  flat: {'all' if ok_all else 'NO'}")
# The prediction.
cal_rows, row_b, job_b, fixed_b, page = int(cal_rows), float(row_b), float(job_b), int(fixed_b), int(page)
domains, hours = int(domains), int(hours)
days = 1  # rows are per UTC day
pred_rows = cal_rows * days
pred_jobs = min(100, 10 * domains) * hours
pred_db = fixed_b + pred_rows * row_b + pred_jobs * job_b
pred_wal_max = 32 + (1000 + 500 * 2) * (page + 24)
db_end, wal_end = int(db_end), int(wal_end)
print(f"database: predicted {pred_rows} rows, at most {pred_jobs} failure jobs ({hours} clock hour(s) x min(100, 10 x {domains} domains)), "
      f"{pred_db / 1024:.0f} KiB = {fixed_b} fixed + {pred_rows} x {row_b:.0f} + {pred_jobs} x {job_b:.0f} bytes; "
      f"measured {rows} rows, {jobs} jobs, {db_end / 1024:.0f} KiB ({100 * (db_end - pred_db) / pred_db:+.1f}%); "
      f"WAL {wal_end / 1024:.0f} KiB (bound {pred_wal_max / 1024:.0f} KiB: 1000 pages of auto-checkpoint + a batch)")
EOF

# ------------------------------------------------------------ phase 2
log "phase 2: $MILTER_KILLS SIGKILLs of the milter under load"
KILL_DB=$WORK/kill.db
# The milter with the default hourly limits of failure reports (per
# process: each restart may queue 100 more); dmarc-report with limits high
# enough that it sends every queued job (report.conf, the same database).
conf report "$KILL_DB" "FailureReportRateDomain 100000" "FailureReportRateTotal 100000"
conf kill "$KILL_DB"
K_ANS=0 K_LOG=0 K_IN=0 K_LOST_COMMITTED=0 K_UNCOMMITTED=0 K_OVER=0 K_JOBS_LOST=0
PREV_SUM=0 PREV_JOBS=0
for i in $(seq 1 "$MILTER_KILLS"); do
  start_milter "$WORK/conf/kill.conf" "$WORK/kill.log"
  # Not through in_ns: a shell function in the background is a subshell,
  # and $! would name it, not the process.
  ip netns exec "$NS" "$BENCH" -c "$CONC" -d 3600 -n 100000000 -m "unix:$SOCK" --label "kill$i" "$CORPUS" >"$WORK/kill$i.bench" 2>&1 &
  BPID=$!
  delay_ms=$(( 1000 + RANDOM % 7000 ))
  end=$(( $(date +%s%3N) + delay_ms ))
  W=0 JQ=0
  while [ "$(date +%s%3N)" -lt "$end" ]; do
    v=$(metric dmarc_milter_store_records_written_total); [ -n "$v" ] && W=$v
    v=$(metric dmarc_milter_report_jobs_queued_total); [ -n "$v" ] && JQ=$v
    sleep 0.2
  done
  kill -KILL "$MPID"
  wait "$MPID" 2>/dev/null || true
  wait "$BPID" 2>/dev/null || true
  A=$(answered "$WORK/kill$i.bench")
  # Records the instance submitted: one per logged message with a policy
  # (the log line is written, then the record queued, then the reply sent;
  # spdlog's stderr sink writes each line at once, so SIGKILL loses none).
  L=$(grep -F "dmarc-milter[$MPID]:" "$WORK/kill.log" | grep -c ' policy=[a-z]' || true)
  read -r SUM ROWS JOBS < <(store_counts "$KILL_DB")
  D=$(( SUM - PREV_SUM ))
  DJ=$(( JOBS - PREV_JOBS ))
  lostc=0; [ "$D" -lt "$W" ] && lostc=$(( W - D ))
  over=0; [ "$D" -gt "$L" ] && over=$(( D - L ))
  say "milter kill $i after ${delay_ms} ms: answered $A, records queued (log) $L, store +$D (written at the last reading $W, so committed-and-lost $lostc), not committed at the kill $(( L - D )), store over queued $over; failure jobs +$DJ (queued at the last reading $JQ)"
  K_ANS=$(( K_ANS + A )); K_LOG=$(( K_LOG + L )); K_IN=$(( K_IN + D )); K_LOST_COMMITTED=$(( K_LOST_COMMITTED + lostc ))
  K_UNCOMMITTED=$(( K_UNCOMMITTED + L - D )); K_OVER=$(( K_OVER + over ))
  PREV_SUM=$SUM PREV_JOBS=$JOBS
done
QC=$(sqlite3 "$KILL_DB" "PRAGMA integrity_check")
say "milter kills: $MILTER_KILLS; messages answered $K_ANS, records queued $K_LOG, in the store $K_IN; committed records lost: $K_LOST_COMMITTED; not committed at the kills (queue, open transaction; by design): $K_UNCOMMITTED; store over queued: $K_OVER; integrity_check: $QC"

# ------------------------------------------------------------ phase 3
log "phase 3: SIGKILLs of dmarc-report aggregate and failures, the milter under load"
start_milter "$WORK/conf/kill.conf" "$WORK/kill.log"
ip netns exec "$NS" "$BENCH" -c "$CONC" -d 3600 -n 100000000 -m "unix:$SOCK" --label report-load "$CORPUS" >"$WORK/report-load.bench" 2>&1 &
LOADPID=$!
sleep 3
REPLOG=$WORK/report.log
: >"$REPLOG"
report_run() { # report_run KILL_AFTER_MS ARGS... - sets RC (137 when killed), RUN_MS
  local after=$1 t0 pid
  shift
  t0=$(date +%s%3N)
  ip netns exec "$NS" "$DMARC_REPORT" "$@" -c "$WORK/conf/report.conf" >>"$REPLOG" 2>&1 &
  pid=$!
  if [ "$after" -gt 0 ]; then
    while [ $(( $(date +%s%3N) - t0 )) -lt "$after" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  RC=0
  wait "$pid" || RC=$?
  RUN_MS=$(( $(date +%s%3N) - t0 ))
}
# complete ARGS... - run again until a run exits 0 or 1 (1: something given up, logged)
complete() {
  local n=0
  while :; do
    report_run 0 "$@"
    n=$((n + 1))
    { [ "$RC" -eq 0 ] || [ "$RC" -eq 1 ] || [ "$n" -ge 5 ]; } && break
  done
}
DAY0=$(( $(date +%s) / 86400 * 86400 ))
TREF=$(( $(date +%s) - 2 ))
R_KILLS=0 R_KILLED=0
# Aggregate: a baseline period, then one fresh period per kill.
report_run 0 aggregate --begin "$DAY0" --end "$TREF"
AGG_MS=$RUN_MS
say "aggregate baseline: exit $RC in $RUN_MS ms"
for i in $(seq 1 "$REPORT_KILLS"); do
  after=$(( 1 + RANDOM % (AGG_MS > 1 ? AGG_MS : 1) ))
  report_run "$after" aggregate --begin "$DAY0" --end "$(( TREF - i ))"
  killed=$RC
  complete aggregate --begin "$DAY0" --end "$(( TREF - i ))"
  R_KILLS=$((R_KILLS + 1)); [ "$killed" -eq 137 ] && R_KILLED=$((R_KILLED + 1))
  say "aggregate kill $i after $after ms: exit $killed; run again: exit $RC"
done
# Failures: the jobs phase 2 and this load queued; each run is killed at a
# random point of its first 2 s (a run over all of them takes longer), the
# next run takes over what it left, the last one completes.
for i in $(seq 1 "$REPORT_KILLS"); do
  pending=$(sqlite3 "$KILL_DB" "SELECT count(*) FROM failure_jobs WHERE status = 'pending'")
  after=$(( 100 + RANDOM % 2000 ))
  report_run "$after" failures
  killed=$RC
  R_KILLS=$((R_KILLS + 1)); [ "$killed" -eq 137 ] && R_KILLED=$((R_KILLED + 1))
  say "failures kill $i after $after ms ($pending jobs pending before): exit $killed"
done
kill -TERM "$LOADPID" 2>/dev/null || true
wait "$LOADPID" 2>/dev/null || true
stop_pid "$MPID"
complete failures
say "failures drained: exit $RC in $RUN_MS ms"
TODAY=$(date -u +%F)
$PY - "$SINK" "$KILL_DB" "$R_KILLS" "$R_KILLED" <<'EOF' | tee -a "$OUT"
import collections, email, email.policy, os, sqlite3, sys
sink, db, kills, killed = sys.argv[1:]
by_mid = collections.defaultdict(list)
rid_of = {}
for f in sorted(os.listdir(os.path.join(sink, "new"))):
    raw = open(os.path.join(sink, "new", f), "rb").read()
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    mid = (m.get("Message-ID") or "").strip()
    subj = " ".join((m.get("Subject") or "").split())
    kind = "aggregate" if subj.startswith("Report Domain:") else "failure"
    complete = m.is_multipart() and not any(type(d).__name__ in ("CloseBoundaryNotFoundDefect", "StartBoundaryNotFoundDefect")
                                             for p in m.walk() for d in p.defects)
    if not mid:
        kind = "no Message-ID"
    by_mid[(kind, mid)].append(complete)
    if "Report-ID:" in subj:
        rid_of[(kind, mid)] = subj.split("Report-ID:")[1].strip()
con = sqlite3.connect(db)
sent_reports = con.execute("SELECT count(*) FROM report_state WHERE status = 'sent'").fetchone()[0]
states = dict(con.execute("SELECT status, count(*) FROM report_state GROUP BY status").fetchall())
jobs = dict(con.execute("SELECT status, count(*) FROM failure_jobs GROUP BY status").fetchall())
for kind in ("aggregate", "failure", "no Message-ID"):
    ks = {k: v for k, v in by_mid.items() if k[0] == kind}
    if not ks:
        continue
    copies = sum(len(v) for v in ks.values())
    dup = {k: v for k, v in ks.items() if len(v) > 1}
    dup_complete = {k: v for k, v in dup.items() if sum(v) > 1}
    never_complete = [k for k, v in ks.items() if not any(v)]
    print(f"sink {kind}: {copies} mails, {len(ks)} distinct Message-IDs; sent more than once: {len(dup)} "
          f"({sum(len(v) - 1 for v in dup.values())} extra copies; {len(dup_complete)} with two or more complete copies, "
          f"the others a cut copy and a complete one); cut copies {sum(v.count(False) for v in ks.values())}; "
          f"Message-IDs never delivered complete: {len(never_complete)}")
    for k, v in list(dup.items())[:5]:
        print(f"    e.g. {k[1]} {rid_of.get(k, '')}: copies {['complete' if c else 'cut' for c in v]}")
complete_mids = {k for k, v in by_mid.items() if any(v)}
print(f"store: report states {states}; failure jobs {jobs}")
agg_complete = sum(1 for k in complete_mids if k[0] == "aggregate")
fail_complete = sum(1 for k in complete_mids if k[0] == "failure")
print(f"store vs sink: aggregate destinations sent {sent_reports}, delivered complete {agg_complete}; "
      f"failure jobs sent {jobs.get('sent', 0)}, failure Message-IDs delivered complete {fail_complete} "
      f"(a job can have several recipients: ruf and Bcc)")
print(f"dmarc-report kills: {kills} tried, {killed} landed (the others found the run already over)")
EOF
say "# load after: $(uptime)"
log "results in $OUT"
