#!/bin/sh
# install-deps.sh - install every Debian 12 package that dmarc-milter needs.
#
# This is the one place where dependencies are listed.
#   packaging/install-deps.sh          build and run dependencies
#   packaging/install-deps.sh --test   the above, plus what the test suite needs
# Run as root (or through sudo). Safe to run again.
set -eu

BUILD_PKGS="
  build-essential cmake pkg-config
  libmilter-dev
  libspf2-dev
  libopendkim-dev libssl-dev libdb-dev libbsd-dev
  libldns-dev
  libspdlog-dev libfmt-dev
  libpsl-dev publicsuffix
  libsqlite3-dev
  libxml2-dev zlib1g-dev libgmime-3.0-dev libcurl4-openssl-dev
  nlohmann-json3-dev
  libmicrohttpd-dev
"
# The test suite starts its own DNS server (NSD) on 127.0.0.1 and uses
# Catch2 v2 for the unit tests; ldnsutils gives drill for debugging zones.
# The end-to-end tests start their own Postfix instances on 127.0.0.1
# (Postfix conflicts with sendmail-bin: it is the MTA package here).
# (nlohmann-json3-dev, above: dmarc-report readiness --json.)
# Reports: xmllint (libxml2-utils) validates generated XML against the XSDs;
# sqlite3 lets the store tests look into a database as an admin would;
# chromium (headless) renders the readiness HTML page in its test.
# libmicrohttpd-dev (above): the /metrics endpoint (MetricsListen).
# Issue 15: m4 and libwrap0 for the unpacked Sendmail (below), mandoc for
# the man page lint, debhelper and lintian for packaging/build-deb.sh and its
# test (systemd for systemd-analyze verify of the units: installing it does
# not make it run). sasl2-bin (saslpasswd2)
# and libsasl2-modules (PLAIN, LOGIN, sasldb) for real SMTP AUTH in the
# Sendmail end-to-end test (tests/support/sendmail_instance.cpp).
# Issue 16: clang and libclang-rt-14-dev (libFuzzer, ASan) build and run
# the fuzz targets (tests/fuzz/run-fuzz.sh).
TEST_PKGS="
  catch2 libyaml-cpp-dev
  nsd
  ldnsutils
  python3
  postfix
  libxml2-utils sqlite3
  chromium
  m4 libwrap0 mandoc
  debhelper lintian dpkg-dev systemd
  sasl2-bin libsasl2-modules
  clang libclang-rt-14-dev
"
# Packages the tests use unpacked, never installed: sendmail-bin conflicts
# with postfix; opendmarc's shipped /etc/opendmarc.conf is what
# "dmarc-milter -n -c opendmarc.conf" is tested on. They go to $UNPACK_DIR
# (tests read DMARC_TEST_UNPACKED, default below).
UNPACK_PKGS="sendmail-bin sendmail-cf sendmail-base opendmarc"
UNPACK_DIR=${DMARC_TEST_UNPACKED:-/var/cache/dmarc-milter-tests}

pkgs="$BUILD_PKGS"
if [ "${1:-}" = "--test" ]; then
  pkgs="$pkgs $TEST_PKGS"
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (sudo $0 $*)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix asks which mail setup to write; "No configuration" writes none (no
# /etc/postfix/main.cf), so nothing listens on port 25 after the install.
if [ "${1:-}" = "--test" ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi
# shellcheck disable=SC2086
if ! dpkg-query -W -f='${Status}\n' $pkgs 2>/dev/null | grep -qv '^install ok installed$' \
   && [ "$(dpkg-query -W -f='${Status}\n' $pkgs 2>/dev/null | wc -l)" -eq "$(echo $pkgs | wc -w)" ]; then
  echo "install-deps.sh: all packages already installed"
else
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs
fi

if [ "${1:-}" = "--test" ]; then
  for pkg in $UNPACK_PKGS; do
    if [ ! -f "$UNPACK_DIR/$pkg.unpacked" ]; then
      mkdir -p "$UNPACK_DIR/debs"
      chown _apt "$UNPACK_DIR/debs" 2>/dev/null || true
      (cd "$UNPACK_DIR/debs" && rm -f "${pkg}"_*.deb && apt-get download -qq "$pkg")
      dpkg -x "$UNPACK_DIR/debs/${pkg}"_*.deb "$UNPACK_DIR/root"
      touch "$UNPACK_DIR/$pkg.unpacked"
    fi
  done
  echo "install-deps.sh: unpacked $UNPACK_PKGS in $UNPACK_DIR/root"
fi

# Debian starts NSD as a system service on port 53 when it is installed, and
# Postfix as one on port 25 once it has a main.cf; the tests run their own
# instances on free ports and need neither.
if [ "${1:-}" = "--test" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now nsd >/dev/null 2>&1 || true
  systemctl disable --now postfix >/dev/null 2>&1 || true
fi
