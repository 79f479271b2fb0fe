#!/bin/sh
# build-deb.sh - build the Debian package of dmarc-milter into build-deb/
#
#   packaging/build-deb.sh          (from anywhere; as any user)
#
# 1. build-deb/src: the checkout as of its last commit (git archive HEAD,
#    packaging/debian as debian/); DEB_SOURCE=worktree takes the tracked
#    files as they are in the working tree instead (uncommitted edits
#    included). Outside a git checkout: the tree as it is.
# 2. dpkg-buildpackage -us -uc -b there (debhelper, dh compat 13; the build
#    dependencies are checked first): build-deb/dmarc-milter_VERSION_ARCH.deb
#    (and its -dbgsym package); the full log is build-deb/build.log
# 3. lintian on the .deb files: an error fails the script (LINTIAN=0 skips)
# The last line of output is the path of the .deb.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/build-deb
src=$out/src
jobs=${JOBS:-$(nproc)}

for tool in dpkg-buildpackage dh; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-deb.sh: $tool is missing (packaging/install-deps.sh --test installs debhelper, dpkg-dev and lintian)" >&2
    exit 1
  fi
done

mkdir -p "$out"
rm -rf "$src"
rm -f "$out"/dmarc-milter*.deb "$out"/dmarc-milter*.ddeb "$out"/dmarc-milter_*.changes \
      "$out"/dmarc-milter_*.buildinfo "$out"/build.log
mkdir -p "$src"

# The source tree, without build directories or .git.
if [ -d "$here/.git" ] && command -v git >/dev/null 2>&1; then
  if [ "${DEB_SOURCE:-HEAD}" = HEAD ]; then
    # Through a file: a failing git archive (e.g. "dubious ownership" when
    # root builds another user's checkout) must stop here, not later.
    git -C "$here" archive --format=tar -o "$out/src.tar" HEAD \
      || { echo "build-deb.sh: git archive HEAD failed (above)" >&2; exit 1; }
    tar -xf "$out/src.tar" -C "$src" && rm -f "$out/src.tar"
    echo "build-deb.sh: source: commit $(git -C "$here" rev-parse --short HEAD)"
    if ! git -C "$here" diff --quiet HEAD 2>/dev/null; then
      echo "build-deb.sh: note: uncommitted changes are not in the package (DEB_SOURCE=worktree includes them)"
    fi
  else
    # Tracked files as they are now (a tracked file deleted in the work
    # tree is left out).
    (cd "$here" && git ls-files -z --cached | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
       | tar --null --no-recursion -T - -cf -) | tar -xf - -C "$src"
  fi
else
  (cd "$here" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
if [ ! -d "$src/packaging/debian" ]; then
  echo "build-deb.sh: $src has no packaging/debian (not committed yet? DEB_SOURCE=worktree)" >&2
  exit 1
fi
mv "$src/packaging/debian" "$src/debian"

echo "build-deb.sh: building in $src ($jobs jobs; log: $out/build.log)"
start=$(date +%s)
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
  tail -n 60 "$out/build.log" >&2
  echo "build-deb.sh: dpkg-buildpackage failed (full log: $out/build.log)" >&2
  exit 1
fi
echo "build-deb.sh: built in $(( $(date +%s) - start )) s"

deb=$(ls "$out"/dmarc-milter_*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
  echo "build-deb.sh: dpkg-buildpackage made no dmarc-milter_*.deb in $out" >&2
  exit 1
fi

if [ "${LINTIAN:-1}" != 0 ]; then
  if ! command -v lintian >/dev/null 2>&1; then
    echo "build-deb.sh: lintian is missing (LINTIAN=0 to build without it)" >&2
    exit 1
  fi
  # Errors fail (lintian's exit status); warnings and the rest are shown.
  # shellcheck disable=SC2046
  if ! lintian --fail-on error --display-info --info $(ls "$out"/dmarc-milter*.deb); then
    echo "build-deb.sh: lintian found errors in $deb" >&2
    exit 1
  fi
  echo "build-deb.sh: lintian: no errors"
fi
# Run as root on another user's checkout (tests/package/test-deb.sh): the
# build directory goes to the checkout's owner, so a later build as that
# user can replace it.
if [ "$(id -u)" -eq 0 ] && [ "$(stat -c %u "$here")" -ne 0 ]; then
  chown -R "$(stat -c %u:%g "$here")" "$out"
fi
echo "$deb"
