#!/bin/sh
# check_core_purity.sh - the core does no I/O and links only libpsl.
#
# usage: check_core_purity.sh LIBDMARC_CORE.a
# Fails when the core archive refers to a system call or library function
# that does I/O (files, sockets, processes, console), or to any library
# other than libc/libstdc++/libpsl.
set -eu
lib=$1
undef=$(nm -u -C "$lib" | awk '{print $2}' | sort -u)
bad=$(echo "$undef" | grep -E '^(open|open64|openat|fopen|fopen64|read|write|pread|pwrite|close|socket|connect|send|sendto|recv|recvfrom|getaddrinfo|gethostbyname|res_query|res_nquery|system|popen|fork|execv|execve|posix_spawn|syslog|printf|fprintf|puts|fputs|fwrite|stat|mmap|psl_load_file|psl_load_fp|ldns_.*|SPF_.*|dkim_.*|sqlite3_.*|smfi_.*)$|std::basic_(i|o)?fstream|std::cout|std::cerr' || true)
if [ -n "$bad" ]; then
  echo "core refers to I/O functions or non-core libraries:" >&2
  echo "$bad" >&2
  exit 1
fi
# Every external C symbol must come from libc, libstdc++ or libpsl.
others=$(echo "$undef" | grep -E '^psl_' | grep -vE '^psl_(registrable_domain|free|is_public_suffix2?|suffix_count)$' || true)
if [ -n "$others" ]; then
  echo "unexpected libpsl functions: $others" >&2
  exit 1
fi
echo "core purity: $(echo "$undef" | grep -c '^psl_') libpsl functions, no I/O symbols"
