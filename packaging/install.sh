#!/bin/sh
# install.sh - install dependencies, build, install and start dmarc-milter
#
#   sudo packaging/install.sh            (from the top of the checkout)
#
# 1. packaging/install-deps.sh (the Debian packages)
# 2. build in ./build (Release), install to /usr/local (PREFIX to change)
# 3. /etc/dmarc-milter.conf from conf/dmarc-milter.conf with
#    "UserID dmarc-milter", unless it exists (an existing file without a
#    UserID gets that line added: the unit passes no -u)
# 4. a system user "dmarc-milter" to run as
# 5. /var/lib/dmarc-milter (the report store) owned by that user, and
#    with systemd dmarc-report-run.service, the report sender (without:
#    see README's cron lines)
# 6. start: with systemd, the dmarc-milter.service unit; otherwise the
#    daemon directly. It listens on the Socket of the config
#    (inet:8895@127.0.0.1 by default); see README for the Postfix lines.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
PREFIX=${PREFIX:-/usr/local}
BUILD_DIR=${BUILD_DIR:-build}

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo $0)" >&2
  exit 1
fi

packaging/install-deps.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DDMARC_MILTER_TESTS=OFF -DDMARC_MILTER_WERROR=OFF -DDMARC_DEFAULT_CONFIG=/etc/dmarc-milter.conf
cmake --build "$BUILD_DIR" -j "$(nproc)"
cmake --install "$BUILD_DIR"

if [ ! -e /etc/dmarc-milter.conf ]; then
  sed 's/^UserID$/UserID dmarc-milter/' conf/dmarc-milter.conf > /etc/dmarc-milter.conf
  chmod 0644 /etc/dmarc-milter.conf
  echo "install.sh: wrote /etc/dmarc-milter.conf (the defaults, UserID dmarc-milter)"
elif ! grep -Eiq '^[[:space:]]*UserID[[:space:]]+[^[:space:]]' /etc/dmarc-milter.conf; then
  # Earlier units passed "-u dmarc-milter"; the user now comes from the file.
  printf '\n# Added by install.sh: the systemd unit no longer passes -u; the user\n# to run as is this setting (dmarc-milter.conf(5)).\nUserID dmarc-milter\n' \
    >> /etc/dmarc-milter.conf
  echo "install.sh: /etc/dmarc-milter.conf had no UserID; added UserID dmarc-milter"
fi
if ! getent passwd dmarc-milter >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin dmarc-milter
fi
# The report store's directory (ReportStore sqlite:/var/lib/dmarc-milter/...):
# the milter writes it as its user, dmarc-report (the timer) reads it.
install -d -m 0750 -o dmarc-milter -g dmarc-milter /var/lib/dmarc-milter
# The milter refuses to start on a bad configuration; say why here.
"$PREFIX/sbin/dmarc-milter" -c /etc/dmarc-milter.conf -n >/dev/null

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  sed "s|@SBINDIR@|$PREFIX/sbin|" packaging/dmarc-milter.service > /etc/systemd/system/dmarc-milter.service
  for unit in dmarc-report.service dmarc-report.timer dmarc-report-run.service; do
    sed "s|@SBINDIR@|$PREFIX/sbin|" "packaging/$unit" > "/etc/systemd/system/$unit"
  done
  # The unit runs as dmarc-milter with a read-only system. A configuration
  # from before (UserID with another user or group, a unix Socket elsewhere
  # than /run/dmarc-milter, e.g. in Postfix's spool, a ReportStore outside
  # /var/lib/dmarc-milter) gets a drop-in that gives the unit that user,
  # group and those directories.
  effective=$("$PREFIX/sbin/dmarc-milter" -c /etc/dmarc-milter.conf -n 2>/dev/null)
  cfg_user=$(printf '%s\n' "$effective" | sed -n 's/^UserID //p')
  cfg_socket=$(printf '%s\n' "$effective" | sed -n 's/^Socket //p')
  dropin=/etc/systemd/system/dmarc-milter.service.d/install-sh.conf
  extra=""
  u=${cfg_user%%:*}
  g=""
  case "$cfg_user" in *:*) g=${cfg_user#*:} ;; esac
  if [ -n "$u" ] && [ "$u" != dmarc-milter ]; then
    extra="${extra}User=$u
Group=$(id -gn "$u" 2>/dev/null || echo "$u")
"
  fi
  if [ -n "$g" ] && [ "$g" != "${u:-dmarc-milter}" ] && [ "$g" != dmarc-milter ]; then
    extra="${extra}SupplementaryGroups=$g
"
  fi
  case "$cfg_socket" in
    unix:/run/dmarc-milter/*|local:/run/dmarc-milter/*) ;;
    unix:/*|local:/*)
      sock_dir=$(dirname "${cfg_socket#*:}")
      extra="${extra}ReadWritePaths=$sock_dir
" ;;
  esac
  cfg_store=$(printf '%s\n' "$effective" | sed -n 's/^ReportStore sqlite://p')
  case "$cfg_store" in
    ""|/var/lib/dmarc-milter/*) ;;
    /*) extra="${extra}ReadWritePaths=$(dirname "$cfg_store")
" ;;
  esac
  if [ -n "$extra" ]; then
    mkdir -p "$(dirname "$dropin")"
    printf '# Written by packaging/install.sh for UserID %s, Socket %s, ReportStore %s\n[Service]\n%s' \
      "$cfg_user" "$cfg_socket" "$cfg_store" "$extra" > "$dropin"
    echo "install.sh: wrote $dropin (the configuration's user, group or socket directory)"
  else
    rm -f "$dropin"
  fi
  systemctl daemon-reload
  systemctl enable dmarc-milter >/dev/null 2>&1 || true
  # The long-running sender; dmarc-report.timer is the daily-only
  # alternative (do not enable both: runs would wait for each other).
  systemctl enable --now dmarc-report-run.service >/dev/null 2>&1 || true
  systemctl restart dmarc-milter
else
  mkdir -p /run/dmarc-milter
  chown dmarc-milter: /run/dmarc-milter
  if [ -f /run/dmarc-milter/dmarc-milter.pid ] && kill -0 "$(cat /run/dmarc-milter/dmarc-milter.pid)" 2>/dev/null; then
    kill "$(cat /run/dmarc-milter/dmarc-milter.pid)"
    sleep 1
  fi
  "$PREFIX/sbin/dmarc-milter" -c /etc/dmarc-milter.conf -P /run/dmarc-milter/dmarc-milter.pid
fi

socket=$("$PREFIX/sbin/dmarc-milter" -c /etc/dmarc-milter.conf -n | sed -n 's/^Socket //p')
for _ in 1 2 3 4 5 6 7 8 9 10; do
  case "$socket" in
    inet:*)
      port=${socket#inet:}; port=${port%%@*}
      if bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        echo "install.sh: dmarc-milter is running on $socket"
        exit 0
      fi
      ;;
    *)
      path=${socket#*:}
      if [ -S "$path" ]; then
        echo "install.sh: dmarc-milter is running on $socket"
        exit 0
      fi
      ;;
  esac
  sleep 1
done
echo "install.sh: dmarc-milter did not start; see the mail log (journalctl -u dmarc-milter)" >&2
exit 1
