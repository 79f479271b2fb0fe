# lib.sh - shared by bench/run.sh and bench/profile.sh (bash; sourced, not run)
#
# Everything runs in a private network namespace with only a loopback
# interface: NSD answers the benchmark's world on 127.0.0.1:53 there, and
# /etc/netns/$NS/resolv.conf (which `ip netns exec` mounts over
# /etc/resolv.conf for the programs it starts) points at it. The host's own
# /etc/resolv.conf is never touched.
#
# Callers set ROOT (the checkout) and NS (namespace name) before sourcing;
# the settings both scripts share come from the environment here.
WORK=${BENCH_WORK:-/tmp/dmarc-bench}
BUILD=$ROOT/build-bench
SESSIONS=${BENCH_SESSIONS:-1500}
SEED=${BENCH_SEED:-5}
CORPUS=$WORK/corpus

# The Debian packages the benchmark needs besides the milter's own
# (packaging/install-deps.sh). dbconfig-no-thanks keeps opendmarc's install
# from setting up a MySQL database; ldnsutils gives drill for the checks.
BENCH_PKGS="opendkim opendmarc dbconfig-no-thanks nsd ldnsutils openssl python3 iproute2 procps libmilter-dev
  cmake g++ pkg-config libopendkim-dev publicsuffix valgrind"

PIDS=""

log() { printf '%s\n' "run: $*" >&2; }
die() { printf '%s\n' "run: $*" >&2; exit 1; }

# install_packages - install what is missing; keep the daemons from running
# as system services (the benchmark starts its own instances).
install_packages() {
  local missing="" p
  for p in $BENCH_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
  fi
  local s
  for s in opendkim opendmarc nsd; do
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
      systemctl disable --now "$s" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$s" ]; then
      update-rc.d "$s" disable >/dev/null 2>&1 || true
      "/etc/init.d/$s" stop >/dev/null 2>&1 || true
    fi
  done
}

# setup_netns - the namespace, its loopback, its resolv.conf.
setup_netns() {
  ip netns add "$NS" || die "cannot create network namespace $NS"
  ip netns exec "$NS" ip link set lo up
  mkdir -p "/etc/netns/$NS"
  printf 'nameserver 127.0.0.1\noptions attempts:2 timeout:2\n' >"/etc/netns/$NS/resolv.conf"
}

# in_ns - run a command in the namespace.
in_ns() { ip netns exec "$NS" "$@"; }

# track - remember a started process, for stop_all.
track() { PIDS="$PIDS $1"; }

# stop_pid - SIGTERM, then wait until the process is gone (a milter that
# drains must have closed its socket before the next one binds it).
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  local p
  for p in $PIDS; do stop_pid "$p"; done
  PIDS=""
}

cleanup() {
  stop_all
  if [ -n "${NSD_PID:-}" ]; then stop_pid "$NSD_PID"; fi
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "/etc/netns/$NS"
}

# wait_listen SOCKET PID - until the milter accepts connections.
wait_listen() {
  local spec=$1 pid=$2 i port
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    case $spec in
      unix:*) [ -S "${spec#unix:}" ] && return 0 ;;
      inet:*)
        port=${spec#inet:}
        port=${port%@*}
        in_ns ss -ltnH "sport = :$port" | grep -q . && return 0
        ;;
    esac
    sleep 0.1
  done
  return 1
}

# start_nsd - NSD on 127.0.0.1:53 in the namespace, serving $CORPUS/zones.
start_nsd() {
  local d=$WORK/nsd z
  rm -rf "$d"
  mkdir -p "$d"
  {
    echo "server:"
    echo "    ip-address: 127.0.0.1@53"
    echo "    do-ip6: no"
    echo "    server-count: 1"
    echo "    username: \"\""
    echo "    chroot: \"\""
    echo "    zonesdir: \"$d\""
    echo "    database: \"\""
    echo "    zonelistfile: \"$d/zone.list\""
    echo "    xfrdfile: \"$d/xfrd.state\""
    echo "    xfrdir: \"$d\""
    echo "    pidfile: \"$d/nsd.pid\""
    echo "    logfile: \"$d/nsd.log\""
    echo "    cookie-secret-file: \"$d/cookiesecrets.txt\""
    echo "    hide-version: yes"
    echo "    verbosity: 1"
    echo "remote-control:"
    echo "    control-enable: no"
    for z in "$CORPUS"/zones/*.zone; do
      nsd-checkzone "$(basename "$z" .zone)" "$z" >/dev/null || die "zone $z does not load"
      echo "zone:"
      echo "    name: \"$(basename "$z" .zone)\""
      echo "    zonefile: \"$z\""
    done
  } >"$d/nsd.conf"
  ip netns exec "$NS" nsd -d -c "$d/nsd.conf" >"$d/nsd.stderr" 2>&1 &
  NSD_PID=$!
  local i
  for i in $(seq 1 50); do
    if in_ns drill -Q _dmarc.brand001.example TXT 2>/dev/null | grep -q DMARC1; then return 0; fi
    sleep 0.2
  done
  cat "$d/nsd.log" "$d/nsd.stderr" >&2 2>/dev/null
  die "NSD does not answer in the namespace"
}

# write_configs - the milters' configuration files under $WORK/conf.
write_configs() {
  local c=$WORK/conf
  mkdir -p "$c" "$WORK/sock"
  for sock in inet:8895@127.0.0.1 "unix:$WORK/sock/ours.sock"; do
    local name=ours-inet
    case $sock in unix:*) name=ours-unix ;; esac
    cat >"$c/$name.conf" <<EOF
# dmarc-milter for the benchmark: the defaults, but DNS from the namespace's
# NSD, a fixed authserv-id, and the per-message log line to stderr (a file).
Nameservers 127.0.0.1
Socket $sock
Background no
Syslog no
LogLevel info
AuthservID bench.example
UMask 000
# The store is on, as by default, but in the scratch directory;
# BENCH_REPORT_STORE=none measures without it.
ReportStore ${BENCH_REPORT_STORE:-sqlite:$WORK/reports.db}
EOF
  done
  rm -f "$WORK/reports.db" "$WORK/reports.db-wal" "$WORK/reports.db-shm"
  for sock in inet:8891@127.0.0.1 "unix:$WORK/sock/opendkim.sock"; do
    local name=opendkim-inet
    case $sock in unix:*) name=opendkim-unix ;; esac
    cat >"$c/$name.conf" <<EOF
# OpenDKIM, verify only, as in front of OpenDMARC in a Postfix chain.
Mode                v
Socket              $sock
AuthservID          bench.example
Nameservers         127.0.0.1
Syslog              no
SoftwareHeader      no
Background          no
UMask               000
EOF
  done
  # OpenDMARC takes its organizational domains from the Public Suffix List.
  # "example" is in no list; without it OpenDMARC never looks above a
  # subdomain (dmarc=none for news.brand001.example). Add it, so that it
  # does the same work and finds the same policies as dmarc-milter.
  { cat /usr/share/publicsuffix/public_suffix_list.dat
    printf '\n// bench: the benchmark world lives under the RFC 2606 name example\nexample\n'
  } >"$c/psl.dat"
  for sock in inet:8893@127.0.0.1 "unix:$WORK/sock/opendmarc.sock"; do
    local name=opendmarc-inet
    case $sock in unix:*) name=opendmarc-unix ;; esac
    cat >"$c/$name.conf" <<EOF
# OpenDMARC after OpenDKIM: DKIM results from OpenDKIM's A-R field, SPF
# checked itself (SPFSelfValidate), failures rejected like dmarc-milter does.
Socket              $sock
AuthservID          bench.example
TrustedAuthservIDs  bench.example
SPFSelfValidate     true
SPFIgnoreResults    true
RejectFailures      true
PublicSuffixList    $c/psl.dat
Syslog              false
Background          false
UMask               000
EOF
  done
}

# start_ours KIND (inet|unix) - sets OURS_PID, OURS_SOCK.
start_ours() {
  local kind=$1
  OURS_SOCK=$(sed -n 's/^Socket //p' "$WORK/conf/ours-$kind.conf")
  rm -f "$WORK/sock/ours.sock"
  ip netns exec "$NS" "$DMARC_MILTER" -f -c "$WORK/conf/ours-$kind.conf" 2>>"$WORK/ours-$kind.log" &
  OURS_PID=$!
  track "$OURS_PID"
  wait_listen "$OURS_SOCK" "$OURS_PID" || { tail "$WORK/ours-$kind.log" >&2; die "dmarc-milter did not start"; }
}

# start_incumbent KIND - sets DKIM_PID, DMARC_PID, DKIM_SOCK, DMARC_SOCK.
start_incumbent() {
  local kind=$1
  DKIM_SOCK=$(sed -n 's/^Socket *//p' "$WORK/conf/opendkim-$kind.conf")
  DMARC_SOCK=$(sed -n 's/^Socket *//p' "$WORK/conf/opendmarc-$kind.conf")
  rm -f "$WORK/sock/opendkim.sock" "$WORK/sock/opendmarc.sock"
  ip netns exec "$NS" opendkim -f -x "$WORK/conf/opendkim-$kind.conf" >>"$WORK/opendkim-$kind.log" 2>&1 &
  DKIM_PID=$!
  track "$DKIM_PID"
  ip netns exec "$NS" opendmarc -f -c "$WORK/conf/opendmarc-$kind.conf" >>"$WORK/opendmarc-$kind.log" 2>&1 &
  DMARC_PID=$!
  track "$DMARC_PID"
  wait_listen "$DKIM_SOCK" "$DKIM_PID" || { tail "$WORK/opendkim-$kind.log" >&2; die "opendkim did not start"; }
  wait_listen "$DMARC_SOCK" "$DMARC_PID" || { tail "$WORK/opendmarc-$kind.log" >&2; die "opendmarc did not start"; }
}

# build_tools - the load generator and the signer (bench/CMakeLists.txt).
build_tools() {
  cmake -S "$ROOT/bench" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 >/dev/null || die "building bench/ failed"
}

# build_milter - dmarc-milter from this checkout, optimized with symbols,
# unless DMARC_MILTER names a binary already built.
build_milter() {
  if [ -n "${DMARC_MILTER:-}" ]; then
    [ -x "$DMARC_MILTER" ] || die "DMARC_MILTER=$DMARC_MILTER is not an executable"
    return
  fi
  "$ROOT/packaging/install-deps.sh" >/dev/null
  cmake -S "$ROOT" -B "$BUILD/milter" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDMARC_MILTER_TESTS=OFF >/dev/null
  cmake --build "$BUILD/milter" -j2 --target dmarc-milter >/dev/null || die "building dmarc-milter failed"
  DMARC_MILTER=$BUILD/milter/dmarc-milter
}

# make_corpus - generate it once per seed and size (BENCH_REGEN=1 forces).
make_corpus() {
  if [ "${BENCH_REGEN:-0}" = 1 ] || [ ! -f "$CORPUS/manifest.tsv" ] \
     || [ "$(cat "$CORPUS/.params" 2>/dev/null)" != "$SESSIONS $SEED" ]; then
    log "generating the corpus ($SESSIONS sessions, seed $SEED) in $CORPUS"
    /usr/bin/python3 "$ROOT/bench/gen_corpus.py" --out "$CORPUS" --sign "$BUILD/bench-sign" \
      --sessions "$SESSIONS" --seed "$SEED" >/dev/null || die "corpus generation failed"
    echo "$SESSIONS $SEED" >"$CORPUS/.params"
  fi
}

# start_null KIND (inet|unix) - bench/src/null_milter.cpp; sets NULL_PID, NULL_SOCK.
start_null() {
  local kind=$1
  if [ "$kind" = inet ]; then NULL_SOCK=inet:8897@127.0.0.1; else NULL_SOCK=unix:$WORK/sock/null.sock; fi
  rm -f "$WORK/sock/null.sock"
  ip netns exec "$NS" "$BUILD/null-milter" "$NULL_SOCK" 2>>"$WORK/null-$kind.log" &
  NULL_PID=$!
  track "$NULL_PID"
  wait_listen "$NULL_SOCK" "$NULL_PID" || { tail "$WORK/null-$kind.log" >&2; die "null-milter did not start"; }
}

# prepare - as root: packages, tools, dmarc-milter, corpus; sets BENCH and
# MSGS (messages in the corpus).
prepare() {
  [ "$(id -u)" -eq 0 ] || die "run as root (network namespace, packages)"
  mkdir -p "$WORK"
  install_packages
  build_tools
  build_milter
  make_corpus
  BENCH=$BUILD/milter-bench
  MSGS=$(grep -vc '^#' "$CORPUS/manifest.tsv")
}

# start_world - the namespace with NSD serving the corpus, and the milters'
# configurations; torn down when the script exits.
start_world() {
  trap cleanup EXIT
  setup_netns
  start_nsd
  write_configs
}
