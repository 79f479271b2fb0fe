#!/bin/sh
# check_symbol_scope.sh - dmarc-milter's stand-ins for libc and OpenSSL
# functions reach only the library that needs them (issue 12 item 5).
#
# usage: check_symbol_scope.sh DMARC-MILTER-BINARY
# The binary links libmilter.a and libopendkim.a through "ld -r --wrap"
# (CMakeLists.txt). So:
#   - it exports no accept, read, poll, close, sigwait or d2i_PUBKEY_bio
#     of its own (an exported definition would take the place of libc's or
#     OpenSSL's for every library in the process: SQLite, libcurl, libpq);
#   - it defines the __wrap_ functions libmilter's and libopendkim's calls
#     were renamed to;
#   - it needs neither libmilter.so nor libopendkim.so (the wrapped static
#     copies are the ones in use; a shared copy beside them would bring
#     its own unwrapped calls).
set -eu
bin=$1
status=0
exported=$(nm -D --defined-only "$bin" | awk '{print $3}')
for f in accept read poll close sigwait d2i_PUBKEY_bio; do
  if echo "$exported" | grep -qx "$f"; then
    echo "FAIL: $bin exports $f: it would replace the one every library uses" >&2
    status=1
  fi
done
defined=$(nm --defined-only "$bin" | awk '{print $3}')
for f in __wrap_accept __wrap_read __wrap_poll __wrap_close __wrap_sigwait __wrap_d2i_PUBKEY_bio; do
  if ! echo "$defined" | grep -qx "$f"; then
    echo "FAIL: $bin does not define $f" >&2
    status=1
  fi
done
needed=$(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}')
for lib in libmilter libopendkim; do
  if echo "$needed" | grep -q "^$lib\\.so"; then
    echo "FAIL: $bin needs the shared $lib beside its wrapped static copy" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "symbol scope: libmilter and libopendkim reach the stand-ins; the process exports none"
exit $status
