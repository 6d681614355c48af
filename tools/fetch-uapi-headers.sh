#!/usr/bin/env bash
# Fetch the real uAPI headers the ABI test (tests/test_abi.py) compiles against, and print
# the include directory:
#
#   Linux's uapi headers   Debian's linux-libc-dev   (linux/vfio.h, linux/dma-buf.h, ...)
#   rdma-core's headers    Debian's libibverbs-dev   (infiniband/verbs.h, ...)
#
# from Debian unstable (the newest kernel headers), with `apt-get download` into a private
# apt state: no root needed, the system's apt configuration is not touched, nothing is
# installed.  The result is cached; a second run prints the cached directory at once.
#
#   usage:  tools/fetch-uapi-headers.sh [CACHE_DIR]
#   then:   export MOCKKERNEL_UAPI_INCLUDE=$(tools/fetch-uapi-headers.sh)
#
# CACHE_DIR defaults to $MOCKKERNEL_UAPI_CACHE, else ~/.cache/mockkernel/uapi-headers
# ($XDG_CACHE_HOME honoured).  Needs apt-get and dpkg-deb (Debian, Ubuntu) and access to a
# Debian mirror (read from the machine's apt sources, else deb.debian.org).  On failure it
# prints one line saying why on stderr and exits 1.  tests/test_abi.py runs this script
# when $MOCKKERNEL_UAPI_INCLUDE is unset (MOCKKERNEL_UAPI_FETCH=0 stops it from trying).
set -euo pipefail

cache=${1:-${MOCKKERNEL_UAPI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mockkernel/uapi-headers}}
inc=$cache/root/usr/include
die() { echo "fetch-uapi-headers: $*" >&2; exit 1; }

if [ -f "$inc/linux/vfio.h" ] && [ -f "$inc/infiniband/verbs.h" ]; then
  echo "$inc"
  exit 0
fi
command -v apt-get >/dev/null || die "apt-get not found (Debian/Ubuntu only)"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian/Ubuntu only)"

# The machine's own Debian mirror (deb822 sources first, then sources.list); only the suite
# is ours.
mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
         | grep -v -- '-security' | grep '/debian/\?$' | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
           | awk '{print $2}' | grep '/debian/\?$' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

work=$cache/apt
rm -rf "$work" "$cache/root.tmp"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/dl" "$cache/root.tmp"
echo "deb [trusted=yes] $mirror sid main" >"$work/sources.list"
opts=(
  -o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=-
  -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
  -o Dir::State::status=/dev/null -o APT::Sandbox::User="$(id -un)"
  -o Acquire::Retries=1 -o Acquire::http::Timeout=30 -o Acquire::Languages=none
)
apt-get "${opts[@]}" -qq update >"$work/update.log" 2>&1 \
  || die "apt-get update from $mirror failed: $(grep -m1 -E '^(E|W):' "$work/update.log" || tail -n1 "$work/update.log")"
(cd "$work/dl" && apt-get "${opts[@]}" -qq download linux-libc-dev libibverbs-dev) >"$work/download.log" 2>&1 \
  || die "apt-get download linux-libc-dev libibverbs-dev failed: $(tail -n1 "$work/download.log")"
for deb in "$work"/dl/*.deb; do
  dpkg-deb -x "$deb" "$cache/root.tmp"
done
[ -f "$cache/root.tmp/usr/include/linux/vfio.h" ] || die "linux-libc-dev has no linux/vfio.h"
rm -rf "$cache/root"
mv "$cache/root.tmp" "$cache/root"
rm -rf "$work"
echo "$inc"
