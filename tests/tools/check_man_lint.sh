#!/bin/sh
# check_man_lint.sh - every man page lints clean: mandoc -Tlint at every
# level (style included) and groff -ww print nothing.
#   check_man_lint.sh MAN_DIR
set -u
dir=${1:?usage: check_man_lint.sh MAN_DIR}
status=0
for page in "$dir"/*.[1-8]; do
  out=$(mandoc -Tlint -Wall "$page" 2>&1; groff -man -ww -z "$page" 2>&1)
  if [ -n "$out" ]; then
    printf '%s\n' "$out"
    status=1
  else
    echo "clean: $page"
  fi
done
exit $status
