#!/usr/bin/env bash
# Run `pytest tests/kernel/guest` inside a user-mode-linux guest kernel that has ESP
# (the host kernel has XFRM netlink but no ESP). See /work/shared/recipes/guest-kernel.md.
#
# usage: scripts/guest-run.sh [PYTEST ARGS...]
#   env: UML_WORK   cache + work folder (default /var/cache/fipsike-uml)
#        PYTHON     interpreter with pytest and pyroute2 (default: python3 on PATH)
#        GUEST_TIMEOUT seconds before the guest is killed (default 240; a run takes about 60 s)
# Exit status = pytest's inside the guest; 99 when the guest did not boot or wrote no result.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd -P)
PY=${PYTHON:-$(command -v python3)}
PY=$("$PY" -c 'import sys; print(sys.executable)')
W=${UML_WORK:-/var/cache/fipsike-uml}
TIMEOUT=${GUEST_TIMEOUT:-240}
mkdir -p "$W"
W=$(cd "$W" && pwd -P)
LOCK="$W/.lock"

fail() { echo "guest-run: $*" >&2; exit 99; }

# One guest at a time per cache folder: the hostfs out/ folder is shared.
exec 9>"$LOCK"
flock -w 600 9 || fail "another guest run holds $LOCK"

if ! command -v depmod >/dev/null 2>&1 && [ ! -x /usr/sbin/depmod ] && [ ! -x /sbin/depmod ]; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends kmod \
    >/dev/null || fail "cannot install kmod (depmod)"
fi
DEPMOD=$(command -v depmod || echo /usr/sbin/depmod)
MODPROBE=$(command -v modprobe || echo /usr/sbin/modprobe)

if [ ! -x "$W/uml/usr/bin/linux.uml" ]; then
  ( cd "$W" && rm -f user-mode-linux_*.deb && apt-get download user-mode-linux >/dev/null 2>&1 ) \
    || fail "apt-get download user-mode-linux failed"
  rm -rf "$W/uml.tmp" && dpkg -x "$W"/user-mode-linux_*.deb "$W/uml.tmp" && mv "$W/uml.tmp" "$W/uml"
  rm -f "$W"/user-mode-linux_*.deb
fi
KVER=$(ls "$W/uml/usr/lib/uml/modules" | head -1)
[ -n "$KVER" ] || fail "no modules in $W/uml/usr/lib/uml/modules"
mkdir -p "$W/root/lib/modules"
ln -sfn "$W/uml/usr/lib/uml/modules/$KVER" "$W/root/lib/modules/$KVER"
[ -f "$W/root/lib/modules/$KVER/modules.dep" ] || "$DEPMOD" -a -b "$W/root" "$KVER"

RUN=$(mktemp -d "$W/run.XXXXXX")
# UML's main process starts its own session, and helper processes of it can outlive a SIGTERM (found
# stopped, reparented to init). Every one of them carries this run's unique init path on its command
# line: after the guest ends, kill exactly those, by pid. fd 9 (the lock) is not passed to the guest.
kill_this_guest() {
  local p
  for p in /proc/[0-9]*; do
    if grep -qsF "init=$RUN/init.sh" "$p/cmdline"; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
  done
}
trap 'kill_this_guest; rm -rf "$RUN"' EXIT
mkdir -p "$RUN/out"
printf '#!/bin/sh\nexec %s -d %s/root "$@"\n' "$MODPROBE" "$W" > "$RUN/modprobe.sh"
chmod +x "$RUN/modprobe.sh"

ARGS=""
for a in "$@"; do ARGS="$ARGS $(printf '%q' "$a")"; done

cat > "$RUN/init.sh" <<EOI
#!/bin/bash
# PID 1 of the guest: the root file system is the host's, read-only, through hostfs.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs run /run
mkdir -p /run/netns /run/tmp /run/out
mount -t hostfs none /run/out -o $RUN/out
echo $RUN/modprobe.sh > /proc/sys/kernel/modprobe
export PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/run/tmp HOME=/run/tmp
export PYTHONDONTWRITEBYTECODE=1 FIPSIKE_GUEST=1 PYTHONPATH=$REPO
echo booted > /run/out/booted
$RUN/modprobe.sh -a veth xfrm_user esp4 esp6 authenc gcm seqiv echainiv ghash_generic ctr cbc hmac \
  sha256_generic sha512_generic xfrm4_tunnel tunnel4 >/run/out/modprobe.log 2>&1
cd $REPO && $PY -m pytest -p no:cacheprovider -q -m guest tests/kernel/guest $ARGS \
  --junitxml=/run/out/junit.xml > /run/out/pytest.log 2>&1
echo \$? > /run/out/rc; sync; halt -f -p
EOI
chmod +x "$RUN/init.sh"

START=$(date +%s)
timeout -k 10 "$TIMEOUT" "$W/uml/usr/bin/linux.uml" mem=1G root=/dev/root rootfstype=hostfs rootflags=/ ro \
  init="$RUN/init.sh" con=null con0=fd:0,fd:1 </dev/null >"$RUN/console.log" 2>&1 9>&- || true
for _ in 1 2 3 4; do kill_this_guest; sleep 0.25; done
END=$(date +%s)

cat "$RUN/out/pytest.log" 2>/dev/null || true
if [ ! -f "$RUN/out/booted" ]; then
  tail -40 "$RUN/console.log" >&2
  fail "the UML guest did not boot (no init output after $((END - START)) s)"
fi
if [ ! -f "$RUN/out/rc" ]; then
  tail -40 "$RUN/console.log" >&2
  fail "the UML guest produced no result file (timeout ${TIMEOUT}s or crash, after $((END - START)) s)"
fi
RC=$(cat "$RUN/out/rc")
echo "guest-run: pytest in the guest exited $RC after $((END - START)) s"
exit "$RC"
