#!/usr/bin/env bash
# Prepares (once, cached) libreswan 4.10's pluto for the interop matrix: Debian's libreswan package and the
# three libraries it needs that are not installed, downloaded and UNPACKED into the cache, never installed
# (libreswan's package conflicts with strongSwan's). See /work/shared/recipes/libreswan.md.
# The matrix's NAT path needs iptables (masquerading in a middle namespace; the guest kernel has no nft
# NAT chain type): iptables and its four missing libraries are unpacked beside pluto in the same way.
#
# usage: scripts/libreswan-setup.sh     env: LIBRESWAN_WORK cache folder (default /var/cache/fipsike-libreswan)
# On success prints the cache folder; on failure one line "libreswan-setup: ..." and exit 99.
# Use: LD_LIBRARY_PATH=$W/root/usr/lib/x86_64-linux-gnu $W/root/usr/libexec/ipsec/pluto ... (or usr/sbin/xtables-legacy-multi)
set -euo pipefail
W=${LIBRESWAN_WORK:-/var/cache/fipsike-libreswan}
DEBS=(libreswan libnss3-tools libevent-pthreads-2.1-7 libldns3 iptables libip6tc2 libnetfilter-conntrack3 libnfnetlink0 libnftnl11)
BINS=(usr/libexec/ipsec/pluto usr/libexec/ipsec/whack usr/libexec/ipsec/addconn usr/bin/certutil usr/bin/pk12util usr/sbin/xtables-legacy-multi)
fail() { echo "libreswan-setup: $*" >&2; exit 99; }
mkdir -p "$W"
W=$(cd "$W" && pwd -P)

ready() {
  local b
  for b in "${BINS[@]}"; do [ -x "$W/root/$b" ] || return 1; done
  LD_LIBRARY_PATH="$W/root/usr/lib/x86_64-linux-gnu" "$W/root/usr/libexec/ipsec/pluto" --version 2>&1 | grep -q "Libreswan 4\." &&
    LD_LIBRARY_PATH="$W/root/usr/lib/x86_64-linux-gnu" "$W/root/usr/sbin/xtables-legacy-multi" iptables --version >/dev/null 2>&1
}
if ready; then echo "$W"; exit 0; fi

exec 9>"$W/.lock"
flock -w 600 9 || fail "another set-up holds $W/.lock"
if ready; then echo "$W"; exit 0; fi
rm -rf "$W/debs" "$W/root.tmp" && mkdir -p "$W/debs" "$W/root.tmp"
download() { ( cd "$W/debs" && apt-get download "${DEBS[@]}" ) >"$W/download.log" 2>&1; }
download || { apt-get update >/dev/null 2>&1 && download; } \
  || fail "apt-get download ${DEBS[*]} failed: $(tail -1 "$W/download.log")"
for d in "$W"/debs/*.deb; do dpkg -x "$d" "$W/root.tmp" || fail "dpkg -x $d failed"; done
rm -rf "$W/root" && mv "$W/root.tmp" "$W/root" && rm -rf "$W/debs"
for b in "${BINS[@]}"; do [ -x "$W/root/$b" ] || fail "missing binary after unpacking: $W/root/$b"; done
ready || fail "pluto does not run: $(LD_LIBRARY_PATH="$W/root/usr/lib/x86_64-linux-gnu" "$W/root/usr/libexec/ipsec/pluto" --version 2>&1 | tail -1)"
echo "$W"
