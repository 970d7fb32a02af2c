#!/usr/bin/env bash
# Prepares (once, cached) the user-mode-linux guest kernel that runs fipsike's ESP tests and demo:
# Debian's user-mode-linux package unpacked (not installed), its modules indexed for the guest's
# modprobe, and the XSAVE shim (scripts/guest/uml_xstate_shim.c) that lets it boot on hosts whose CPU
# has AMX. Called by scripts/setup.sh and, when something is missing, by scripts/guest-run.sh.
#
# usage: scripts/guest-setup.sh        env: UML_WORK cache folder (default /var/cache/fipsike-uml)
# Prints one line saying what is missing and exits 99 when it cannot prepare the guest.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd -P)
W=${UML_WORK:-/var/cache/fipsike-uml}
mkdir -p "$W"
W=$(cd "$W" && pwd -P)
fail() { echo "guest-setup: $*" >&2; exit 99; }

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" \
    >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" >/dev/null 2>&1; }
}
command -v depmod >/dev/null 2>&1 || [ -x /usr/sbin/depmod ] || apt_install kmod || fail "missing binary: depmod (package kmod)"
command -v gcc >/dev/null 2>&1 || apt_install gcc libc6-dev || fail "missing binary: gcc (builds the XSAVE shim)"
DEPMOD=$(command -v depmod || echo /usr/sbin/depmod)

if [ ! -x "$W/uml/usr/bin/linux.uml" ]; then
  ( cd "$W" && rm -f user-mode-linux_*.deb && apt-get download user-mode-linux >/dev/null 2>&1 ) \
    || fail "missing binary: linux.uml (apt-get download user-mode-linux failed)"
  rm -rf "$W/uml.tmp" && dpkg -x "$W"/user-mode-linux_*.deb "$W/uml.tmp" && rm -rf "$W/uml" && mv "$W/uml.tmp" "$W/uml"
  rm -f "$W"/user-mode-linux_*.deb
fi
KVER=$(ls "$W/uml/usr/lib/uml/modules" 2>/dev/null | head -1)
[ -n "$KVER" ] || fail "missing module folder: $W/uml/usr/lib/uml/modules is empty"
mkdir -p "$W/root/lib/modules"
ln -sfn "$W/uml/usr/lib/uml/modules/$KVER" "$W/root/lib/modules/$KVER"
[ -f "$W/root/lib/modules/$KVER/modules.dep" ] || "$DEPMOD" -a -b "$W/root" "$KVER"

# The shim is rebuilt whenever its source changes (the cache keeps the source's hash beside it).
SRC="$REPO/scripts/guest/uml_xstate_shim.c"
SUM=$(sha256sum "$SRC" | cut -d' ' -f1)
if [ ! -f "$W/uml_xstate_shim.so" ] || [ "$(cat "$W/uml_xstate_shim.sum" 2>/dev/null)" != "$SUM" ]; then
  gcc -O2 -Wall -Wextra -shared -fPIC -o "$W/uml_xstate_shim.so.tmp" "$SRC" -ldl \
    || fail "cannot build the XSAVE shim from $SRC"
  mv "$W/uml_xstate_shim.so.tmp" "$W/uml_xstate_shim.so"
  echo "$SUM" > "$W/uml_xstate_shim.sum"
fi
echo "guest-setup: user-mode-linux $KVER ready in $W"
