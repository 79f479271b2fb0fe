#!/bin/bash
# test-deb.sh - the Debian package from packaging/build-deb.sh, end to end,
# on a host without systemd (CI): build (one build; lintian errors fail it),
# dpkg -i, start the milter with the unit's own ExecStartPre/ExecStart as
# its User= with an empty capability bounding set and no_new_privs (what
# systemd would do), speak the milter protocol to its socket (SMFIC_OPTNEG),
# SIGHUP reload, an admin's change to /etc/dmarc-milter.conf, an upgrade to
# a higher version (the same package with its version raised and its
# conffile changed) with dpkg -i --force-confold while the milter runs (the
# change kept, no second copy started), a restart on the kept file, and
# dpkg --purge (programs, conffile, store, user, group, systemd state gone;
# no process left).
#
#   tests/package/test-deb.sh        (root; from anywhere)
#
# TEST_DEB=path.deb tests an existing package instead of building one.
# The machine is left as it was found: the test refuses to start when the
# package, its user or its files are there already, and removes whatever it
# installed on any exit (trap).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
PKG=dmarc-milter
UNIT=/lib/systemd/system/dmarc-milter.service
STATE_PATHS="/etc/dmarc-milter.conf /var/lib/dmarc-milter /run/dmarc-milter"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)
t0=$(date +%s)

say() { echo "test-deb.sh: [$(( $(date +%s) - t0 ))s] $*"; }
fail() {
  echo "test-deb.sh: FAIL: $*" >&2
  exit 1
}

# --- preconditions: nothing of ours is on this machine -----------------------
[ "$(id -u)" -eq 0 ] || fail "run as root (dpkg -i, a system user, /etc): sudo $0"
[ -n "$PY" ] || fail "python3 is missing (it speaks the milter protocol here)"
for tool in dpkg dpkg-deb setpriv getent; do
  command -v "$tool" >/dev/null || fail "$tool is missing"
done
# A run killed outright (ctest's SIGKILL at its timeout) left its marker:
# clean up what that run installed before checking that nothing is there.
MARKER=/var/lib/dmarc-milter-test-deb.running
scrub() {
  local pid
  for pid in $(package_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  if dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null | grep -qv '^[up]n'; then
    DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >&2 </dev/null || true
  fi
  getent passwd dmarc-milter >/dev/null && userdel dmarc-milter
  getent group dmarc-milter >/dev/null && groupdel dmarc-milter
  rm -rf /etc/dmarc-milter.conf /etc/dmarc-milter.conf.dpkg-* /var/lib/dmarc-milter /run/dmarc-milter
  for f in $(leftover_systemd); do rm -f "$f"; done
  rm -rf /tmp/dmarc-deb-test.*
  rm -f "$MARKER"
}
# Any process running one of the package's programs (also after the binary
# is gone: "(deleted)").
package_pids() {
  local exe pid
  for exe in /proc/[0-9]*/exe; do
    pid=${exe#/proc/}; pid=${pid%/exe}
    case "$(readlink "$exe" 2>/dev/null)" in
      /usr/sbin/dmarc-milter*|/usr/sbin/dmarc-report*|/usr/bin/dmarc-check*) echo "$pid" ;;
    esac
  done
}
leftover_systemd() {
  find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
    -name '*dmarc-*' 2>/dev/null || true
}
if [ -e "$MARKER" ]; then
  echo "test-deb.sh: an earlier run was killed ($MARKER): removing what it installed" >&2
  scrub
fi
if [ -d /run/systemd/system ]; then
  fail "systemd runs on this host: postinst would start the units itself; this test stands in for systemd on a host without it (CI)"
fi
status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null || true)
case "$status" in
  ""|"un "*|"pn "*) ;;
  *) fail "the package $PKG is on this machine already (dpkg status '$status'); the test would purge it: dpkg --purge $PKG first" ;;
esac
getent passwd dmarc-milter >/dev/null && fail "a user dmarc-milter exists already (packaging/install.sh?); the test's purge would remove it"
getent group dmarc-milter >/dev/null && fail "a group dmarc-milter exists already; the test's purge would remove it"
for p in $STATE_PATHS; do
  [ -e "$p" ] && fail "$p exists already; the test would replace and then remove it"
done
[ -z "$(leftover_systemd)" ] || fail "systemd state of dmarc-* units exists already: $(leftover_systemd | tr '\n' ' ')"
port_free() {
  "$PY" -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}
port_free 8895 || fail "127.0.0.1:8895 (the packaged Socket) is in use by another process"

work=$(mktemp -d /tmp/dmarc-deb-test.XXXXXX)
started_pids=""
# From here on, what is found of the package was made by this run.
: >"$MARKER"

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  for pid in $started_pids $(package_pids); do
    kill -TERM "$pid" 2>/dev/null
  done
  for _ in $(seq 1 50); do
    [ -z "$(package_pids)" ] && break
    sleep 0.2
  done
  for pid in $(package_pids); do kill -KILL "$pid" 2>/dev/null; done
  if dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null | grep -qv '^[up]n'; then
    echo "test-deb.sh: cleanup: dpkg --purge $PKG" >&2
    DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >&2 </dev/null
  fi
  # Only what this test made (the preconditions above saw none of it).
  getent passwd dmarc-milter >/dev/null && { echo "test-deb.sh: cleanup: userdel dmarc-milter" >&2; userdel dmarc-milter; }
  getent group dmarc-milter >/dev/null && { echo "test-deb.sh: cleanup: groupdel dmarc-milter" >&2; groupdel dmarc-milter; }
  rm -rf /etc/dmarc-milter.conf /etc/dmarc-milter.conf.dpkg-* /var/lib/dmarc-milter /run/dmarc-milter
  for f in $(leftover_systemd); do rm -f "$f"; done
  rm -rf "$work"
  rm -f "$MARKER"
  if [ "$rc" -eq 0 ]; then
    say "PASS"
  else
    echo "test-deb.sh: FAILED (exit $rc); the machine was cleaned up" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. build and lint ---------------------------------------------------------
if [ -n "${TEST_DEB:-}" ]; then
  deb=$TEST_DEB
  [ -f "$deb" ] || fail "TEST_DEB=$deb: no such file"
  say "testing $deb (not built here); lintian"
  lintian --fail-on error "$deb" || fail "lintian found errors in $deb"
else
  say "building: packaging/build-deb.sh (lintian errors fail it)"
  b0=$(date +%s)
  if ! timeout 1800 "$here/packaging/build-deb.sh" >"$work/build.out" 2>&1; then
    tail -n 80 "$work/build.out" >&2
    fail "packaging/build-deb.sh failed (above; full log: $here/build-deb/build.log)"
  fi
  grep -E '^build-deb.sh: ' "$work/build.out" || true
  echo "lintian tags:"
  grep -E '^[EWIXPO]: ' "$work/build.out" | sed 's/^/  /' || echo "  (none)"
  deb=$(tail -n 1 "$work/build.out")
  [ -f "$deb" ] || fail "build-deb.sh did not name a .deb on its last line (got '$deb')"
  say "built $(basename "$deb") in $(( $(date +%s) - b0 )) s"
fi
version=$(dpkg-deb -f "$deb" Version)

# --- 2. install ------------------------------------------------------------------
say "dpkg -i $(basename "$deb")"
if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/install.out" 2>&1 </dev/null; then
  cat "$work/install.out" >&2
  fail "dpkg -i failed (dependencies? above)"
fi
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG")" = "ii " ] || fail "after dpkg -i, $PKG is not 'ii': $(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG")"
for f in /usr/sbin/dmarc-milter /usr/sbin/dmarc-report /usr/bin/dmarc-check; do
  [ -x "$f" ] || fail "$f is not installed"
done
for f in /usr/share/man/man8/dmarc-milter.8.gz /usr/share/man/man8/dmarc-report.8.gz \
         /usr/share/man/man1/dmarc-check.1.gz /usr/share/man/man5/dmarc-milter.conf.5.gz \
         "$UNIT" /lib/systemd/system/dmarc-report.service /lib/systemd/system/dmarc-report.timer \
         /lib/systemd/system/dmarc-report-run.service /usr/lib/tmpfiles.d/dmarc-milter.conf; do
  [ -f "$f" ] || fail "$f is not installed"
done
grep -n '@[A-Z]*@' /lib/systemd/system/dmarc-* && fail "a unit still has an @PLACEHOLDER@ (above)"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q '^ /etc/dmarc-milter.conf ' \
  || fail "/etc/dmarc-milter.conf is not a conffile of $PKG: $(dpkg-query -W -f='${Conffiles}' "$PKG")"
pw=$(getent passwd dmarc-milter) || fail "postinst made no user dmarc-milter"
uid=$(echo "$pw" | cut -d: -f3)
[ "$uid" -lt 1000 ] || fail "dmarc-milter is not a system user (uid $uid)"
case "$(echo "$pw" | cut -d: -f7)" in */nologin|/bin/false) ;; *) fail "dmarc-milter has a login shell: $pw" ;; esac
getent group dmarc-milter >/dev/null || fail "postinst made no group dmarc-milter"
[ "$(stat -c '%U:%G %a' /var/lib/dmarc-milter)" = "dmarc-milter:dmarc-milter 750" ] \
  || fail "/var/lib/dmarc-milter is $(stat -c '%U:%G %a' /var/lib/dmarc-milter 2>&1), not dmarc-milter:dmarc-milter 750"
[ -z "$(package_pids)" ] || fail "dpkg -i started a process without systemd: $(package_pids)"
/usr/sbin/dmarc-milter -V | grep -q '^dmarc-milter ' || fail "dmarc-milter -V does not run"
# No -c: the programs read /etc/dmarc-milter.conf by default.
/usr/sbin/dmarc-milter -n >"$work/effective" 2>"$work/effective.err" \
  || { cat "$work/effective.err" >&2; fail "dmarc-milter -n (the default config file) fails"; }
grep -q '^UserID dmarc-milter$' "$work/effective" \
  || fail "dmarc-milter -n without -c does not show the packaged /etc/dmarc-milter.conf's 'UserID dmarc-milter'"
# Repeating the configure step changes nothing (an existing user is kept).
dpkg-reconfigure -fnoninteractive "$PKG" >/dev/null 2>&1 </dev/null || true
[ "$(getent passwd dmarc-milter)" = "$pw" ] || fail "configuring again changed the user: $(getent passwd dmarc-milter)"
say "installed $version: programs, man pages, units, tmpfiles.d, conffile, user uid $uid"
# systemd itself reads the units (no systemd needs to run): any complaint
# (an unknown or misspelt setting, a bad value) fails.
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (Debian package systemd; packaging/install-deps.sh --test)"
if :; then
  (cd /lib/systemd/system && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
     dmarc-milter.service dmarc-report.service dmarc-report.timer dmarc-report-run.service) >"$work/verify.out" 2>&1 || true
  if [ -s "$work/verify.out" ]; then
    cat "$work/verify.out" >&2
    fail "systemd-analyze verify complains about the installed units (above)"
  fi
  say "systemd-analyze verify: the four units parse clean"
fi

# What dpkg runs on a systemd host (not this one): the start on install
# becomes a restart on upgrade ($2 set), and prerm stops the units only on
# remove, so an upgrade never starts a second copy. The run below checks the
# same without systemd.
dpkg-deb -e "$deb" "$work/ctl"
grep -q '_dh_action=restart' "$work/ctl/postinst" || fail "postinst does not restart on upgrade (dh_installsystemd snippet missing)"
grep -q 'deb-systemd-invoke stop' "$work/ctl/prerm" && ! grep -q '"$1" = remove' "$work/ctl/prerm" \
  && fail "prerm stops the units on other than remove"

# --- the unit, read as systemd would ---------------------------------------------
# The last assignment of KEY in [Service] (an empty one resets it).
unit_get() {
  awk -v key="$2" '
    /^\[/ { sect = $0; next }
    sect == "[Service]" && index($0, key "=") == 1 { val = substr($0, length(key) + 2); found = 1 }
    END { if (found) print val; else exit 1 }' "$1"
}
unit_has() { unit_get "$1" "$2" >/dev/null; }
# systemd's prefixes of an Exec line (@ - : + !) are not part of the command.
exec_line() {
  local line
  line=$(unit_get "$1" "$2") || return 1
  while :; do
    case "$line" in [@:+!-]*) line=${line#?} ;; *) break ;; esac
  done
  echo "$line"
}

u_user=$(unit_get "$UNIT" User) || fail "$UNIT has no User="
u_group=$(unit_get "$UNIT" Group || id -gn "$u_user")
u_type=$(unit_get "$UNIT" Type || echo simple)
u_pidfile=$(unit_get "$UNIT" PIDFile || true)
u_rtdir=$(unit_get "$UNIT" RuntimeDirectory || true)
u_rtmode=$(unit_get "$UNIT" RuntimeDirectoryMode || echo 0755)
u_stop_timeout=$(unit_get "$UNIT" TimeoutStopSec || echo 90)
u_start=$(exec_line "$UNIT" ExecStart) || fail "$UNIT has no ExecStart="
u_pre=$(exec_line "$UNIT" ExecStartPre || true)
u_reload=$(exec_line "$UNIT" ExecReload || true)
[ "$u_user" = dmarc-milter ] || fail "$UNIT runs as User=$u_user, not dmarc-milter"
# The hardening the issue asks for.
[ "$(unit_get "$UNIT" CapabilityBoundingSet)" = "" ] || fail "$UNIT: CapabilityBoundingSet is not empty"
unit_has "$UNIT" CapabilityBoundingSet || fail "$UNIT has no CapabilityBoundingSet="
[ "$(unit_get "$UNIT" NoNewPrivileges)" = yes ] || fail "$UNIT: NoNewPrivileges is not yes"
[ "$(unit_get "$UNIT" ProtectSystem)" = strict ] || fail "$UNIT: ProtectSystem is not strict"
[ "$(unit_get "$UNIT" PrivateTmp)" = yes ] || fail "$UNIT: PrivateTmp is not yes"
rw=" $(unit_get "$UNIT" ReadWritePaths) "
for d in /var/lib/dmarc-milter /run/dmarc-milter; do
  case "$rw" in *" $d "*|*" -$d "*) ;; *) fail "$UNIT: ReadWritePaths lacks $d (has:$rw)" ;; esac
done
[ "$u_type" = forking ] || [ "$u_type" = simple ] || fail "$UNIT: Type=$u_type is not one this test can stand in for"
say "unit: Type=$u_type User=$u_user Group=$u_group RuntimeDirectory=$u_rtdir; ExecStart=$u_start"

# Run a command line as the unit's user, as systemd runs it there: no
# capabilities at all (CapabilityBoundingSet=), no_new_privs, a clean
# environment, cwd /.
as_unit() {
  local -a argv
  read -r -a argv <<<"$1"
  (cd / && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 MAINPID="${MAINPID:-}" \
     setpriv --reuid="$u_user" --regid="$u_group" --init-groups --bounding-set=-all --inh-caps=-all --no-new-privs \
     -- "${argv[@]}")
}

MAINPID=""
unit_start() {
  if [ -n "$u_rtdir" ]; then
    rm -rf "/run/$u_rtdir"
    install -d -m "$u_rtmode" -o "$u_user" -g "$u_group" "/run/$u_rtdir"
  fi
  if [ -n "$u_pre" ]; then
    as_unit "$u_pre" >"$work/pre.out" 2>&1 || { cat "$work/pre.out" >&2; fail "ExecStartPre failed: $u_pre"; }
  fi
  if [ "$u_type" = forking ]; then
    as_unit "$u_start" >"$work/start.out" 2>&1 </dev/null \
      || { cat "$work/start.out" >&2; fail "ExecStart failed: $u_start"; }
    [ -n "$u_pidfile" ] || fail "Type=forking without PIDFile="
    for _ in $(seq 1 100); do
      [ -s "$u_pidfile" ] && break
      sleep 0.1
    done
    [ -s "$u_pidfile" ] || fail "no PIDFile $u_pidfile 10 s after ExecStart ($(cat "$work/start.out"))"
    MAINPID=$(cat "$u_pidfile")
  else
    as_unit "$u_start" >"$work/start.out" 2>&1 </dev/null &
    MAINPID=$!
  fi
  started_pids="$started_pids $MAINPID"
  kill -0 "$MAINPID" 2>/dev/null || fail "the milter (pid $MAINPID) is not running: $(cat "$work/start.out")"
  [ "$(stat -c %U "/proc/$MAINPID")" = "$u_user" ] || fail "the milter runs as $(stat -c %U "/proc/$MAINPID"), not $u_user"
  grep -q '^CapBnd:[[:space:]]*0000000000000000$' "/proc/$MAINPID/status" \
    || fail "the milter has a capability bounding set: $(grep CapBnd "/proc/$MAINPID/status")"
  grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$MAINPID/status" || fail "the milter runs without no_new_privs"
}

unit_stop() {
  kill -TERM "$MAINPID" 2>/dev/null || fail "the milter (pid $MAINPID) was gone before the stop"
  local ticks=$(( ${u_stop_timeout%s} * 10 ))
  for _ in $(seq 1 "$ticks"); do
    kill -0 "$MAINPID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$MAINPID" 2>/dev/null && fail "the milter (pid $MAINPID) did not stop within TimeoutStopSec=$u_stop_timeout after SIGTERM"
  [ -n "$u_rtdir" ] && rm -rf "/run/$u_rtdir"
  MAINPID=""
}

cat >"$work/optneg.py" <<'EOF'
# SMFIC_OPTNEG to a milter; the reply must be SMFIC_OPTNEG ('O') too.
import socket, struct, sys, time
host, port = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 15
while True:
    try:
        s = socket.create_connection((host, port), timeout=5)
        break
    except OSError as e:
        if time.time() > deadline:
            sys.exit(f"cannot connect to {host}:{port}: {e}")
        time.sleep(0.2)
body = b"O" + struct.pack(">III", 6, 0x1FF, 0x1FFFFF)
s.sendall(struct.pack(">I", len(body)) + body)
def recv(n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            sys.exit(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data
length = struct.unpack(">I", recv(4))[0]
reply = recv(length)
if reply[:1] != b"O" or length < 13:
    sys.exit(f"reply is not SMFIC_OPTNEG: {reply[:16]!r} (length {length})")
version, actions, protocol = struct.unpack(">III", reply[1:13])
quit_ = b"Q"
s.sendall(struct.pack(">I", len(quit_)) + quit_)
s.close()
print(f"OPTNEG reply: version {version}, actions 0x{actions:x}, protocol 0x{protocol:x}")
EOF
optneg() {
  local socket port
  socket=$(sed -n 's/^Socket //p' "$1")
  case "$socket" in
    inet:*@127.0.0.1|inet:*@localhost) port=${socket#inet:}; port=${port%%@*} ;;
    *) fail "Socket $socket: the test speaks to inet:PORT@127.0.0.1 only" ;;
  esac
  "$PY" "$work/optneg.py" 127.0.0.1 "$port" || fail "the milter on $socket does not answer SMFIC_OPTNEG"
}

# --- 3. start with the unit's lines, the milter protocol, reload -----------------
say "start: ExecStartPre, ExecStart as $u_user (no capabilities, no_new_privs)"
unit_start
pid1=$MAINPID
optneg "$work/effective"
if [ -n "$u_reload" ]; then
  as_unit "${u_reload//\$MAINPID/$MAINPID}" || fail "ExecReload failed: $u_reload"
  sleep 1
  kill -0 "$MAINPID" 2>/dev/null || fail "the milter stopped on ExecReload ($u_reload)"
  optneg "$work/effective"
fi
say "milter pid $pid1 answers the milter protocol on $(sed -n 's/^Socket //p' "$work/effective"); reload kept it"

# --- 4. the admin's change, and an upgrade to a higher version -------------------
port2=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/^Socket .*/Socket inet:$port2@127.0.0.1/" /etc/dmarc-milter.conf
printf '\n# changed by the admin (test-deb.sh)\n' >>/etc/dmarc-milter.conf
cp /etc/dmarc-milter.conf "$work/admin.conf"

new_version="$version+pkgtest1"
dpkg --compare-versions "$new_version" gt "$version" || fail "$new_version is not higher than $version"
say "building $new_version: the same package, its version raised and its conffile changed"
dpkg-deb -R "$deb" "$work/v2"
sed -i "s/^Version: .*/Version: $new_version/" "$work/v2/DEBIAN/control"
printf '\n# new in %s (test-deb.sh)\n' "$new_version" >>"$work/v2/etc/dmarc-milter.conf"
# (DEBIAN/md5sums lists no conffiles: dpkg hashes them itself.)
grep -q ' etc/dmarc-milter.conf$' "$work/v2/DEBIAN/md5sums" && fail "DEBIAN/md5sums lists the conffile; update it here"
dpkg-deb --root-owner-group -b "$work/v2" "$work/${PKG}_${new_version}.deb" >/dev/null

say "dpkg -i --force-confold $new_version (the milter still running)"
if ! DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$work/${PKG}_${new_version}.deb" \
       >"$work/upgrade.out" 2>&1 </dev/null; then
  cat "$work/upgrade.out" >&2
  fail "the upgrade to $new_version failed"
fi
[ "$(dpkg-query -W -f='${Version} ${db:Status-Abbrev}' "$PKG")" = "$new_version ii " ] \
  || fail "after the upgrade: $(dpkg-query -W -f='${Version} ${db:Status-Abbrev}' "$PKG")"
cmp -s /etc/dmarc-milter.conf "$work/admin.conf" || {
  diff "$work/admin.conf" /etc/dmarc-milter.conf >&2 || true
  fail "the upgrade did not keep the admin's /etc/dmarc-milter.conf (diff above)"
}
grep -q "new in $new_version" /etc/dmarc-milter.conf.dpkg-dist 2>/dev/null \
  || fail "the new version's conffile is not beside it as /etc/dmarc-milter.conf.dpkg-dist"
pids=$(package_pids | tr '\n' ' ')
[ "$pids" = "$pid1 " ] || fail "after the upgrade the package's processes are '$pids', not the one milter (pid $pid1): a second copy?"
[ "$(getent passwd dmarc-milter)" = "$pw" ] || fail "the upgrade changed the user: $(getent passwd dmarc-milter)"
say "upgraded to $new_version: the admin's file kept (.dpkg-dist beside it), the one milter still pid $pid1"

# --- 5. restart on the kept file ---------------------------------------------------
unit_stop
/usr/sbin/dmarc-milter -n >"$work/effective2" 2>"$work/effective.err" \
  || { cat "$work/effective.err" >&2; fail "dmarc-milter -n fails on the kept file"; }
grep -q "^Socket inet:$port2@127.0.0.1\$" "$work/effective2" || fail "the kept file's Socket is not in effect"
unit_start
optneg "$work/effective2"
say "restarted (pid $MAINPID): answers on the admin's socket inet:$port2@127.0.0.1"
unit_stop
[ -z "$(package_pids)" ] || fail "processes left after the stop: $(package_pids)"

# --- 6. purge -----------------------------------------------------------------------
say "dpkg --purge $PKG"
if ! DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >"$work/purge.out" 2>&1 </dev/null; then
  cat "$work/purge.out" >&2
  fail "dpkg --purge failed"
fi
grep 'dmarc-milter: the \(user\|group\) dmarc-milter was not removed' "$work/purge.out" >&2 \
  && fail "postrm could not remove the user or group (above)"
status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null || true)
case "$status" in ""|"un "*|"pn "*) ;; *) fail "after the purge $PKG is '$status'" ;; esac
for f in /usr/sbin/dmarc-milter /usr/sbin/dmarc-report /usr/bin/dmarc-check "$UNIT" \
         /usr/lib/tmpfiles.d/dmarc-milter.conf /usr/share/man/man8/dmarc-milter.8.gz \
         /etc/dmarc-milter.conf /etc/dmarc-milter.conf.dpkg-dist /etc/dmarc-milter.conf.dpkg-old \
         /var/lib/dmarc-milter /run/dmarc-milter; do
  [ -e "$f" ] && fail "$f is still there after the purge"
done
ls /var/lib/dpkg/info/"$PKG".* >/dev/null 2>&1 && fail "dpkg still has /var/lib/dpkg/info/$PKG.*"
getent passwd dmarc-milter >/dev/null && fail "the user dmarc-milter is still there after the purge"
getent group dmarc-milter >/dev/null && fail "the group dmarc-milter is still there after the purge"
[ -z "$(leftover_systemd)" ] || fail "systemd state left after the purge: $(leftover_systemd | tr '\n' ' ')"
[ -z "$(package_pids)" ] || fail "processes left after the purge: $(package_pids)"
say "purged: programs, conffile, store, user, group and unit state gone; no process left"
