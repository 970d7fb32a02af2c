#!/usr/bin/env bash
# Run `pytest tests/kernel/guest` (or a boot check) inside a user-mode-linux guest kernel that has ESP
# (the host kernel has XFRM netlink but no ESP). See /work/shared/recipes/guest-kernel.md.
#
# usage: scripts/guest-run.sh [PYTEST ARGS...]   the ESP tests of tests/kernel/guest, or the tests/... paths
#                                                 given (e.g. tests/daemon/guest), after a boot check
#        scripts/guest-run.sh --boot-check      boot with a trivial init, load the modules, say why not in one line
#   env: UML_WORK   cache + work folder (default /var/cache/fipsike-uml)
#        PYTHON     interpreter with pytest and pyroute2 (default: python3 on PATH)
#        GUEST_TIMEOUT seconds before the guest is killed (default 240; a run takes about 60 s)
#        GUEST_LOCK_WAIT seconds to wait for another run's guest (default 900)
#        GUEST_CMD  instead of pytest, run this shell command in the guest from the repo (exit status = its own)
#        FIPSIKE_UML_NO_SHIM=1  boot without the XSAVE shim (to show the failure it prevents)
# Exit status = pytest's inside the guest; 99 when the guest did not boot or wrote no result, with one
# line "guest-run: ..." on stderr that names the cause.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd -P)
PY=${PYTHON:-$(command -v python3)}
PY=$("$PY" -c 'import sys; print(sys.executable)')
W=${UML_WORK:-/var/cache/fipsike-uml}
TIMEOUT=${GUEST_TIMEOUT:-240}
MODULES="veth xfrm_user esp4 esp6 authenc gcm seqiv echainiv ghash_generic ctr cbc hmac sha256_generic \
sha512_generic xfrm4_tunnel tunnel4 xfrm6_tunnel tunnel6 ip_tables iptable_nat xt_MASQUERADE"
mkdir -p "$W"
W=$(cd "$W" && pwd -P)
LOCK="$W/.lock"

fail() { echo "guest-run: $*" >&2; exit 99; }

# One guest at a time per cache folder.
exec 9>"$LOCK"
WAIT_START=$(date +%s)
flock -w "${GUEST_LOCK_WAIT:-900}" 9 || fail "another guest run holds $LOCK (waited ${GUEST_LOCK_WAIT:-900} s)"
WAITED=$(( $(date +%s) - WAIT_START ))
[ "$WAITED" -gt 1 ] && echo "guest-run: waited ${WAITED} s for another guest run to finish" >&2

UML_WORK="$W" "$REPO/scripts/guest-setup.sh" >/dev/null 2>"$W/setup.err" || fail "$(tail -1 "$W/setup.err")"
SHIM="$W/uml_xstate_shim.so"
PRELOAD="$SHIM"
[ "${FIPSIKE_UML_NO_SHIM:-0}" = 1 ] && PRELOAD=""
MODPROBE=$(command -v modprobe || echo /usr/sbin/modprobe)

RUN=$(mktemp -d "$W/run.XXXXXX")
# UML's main process starts its own session, and helper processes of it can outlive a SIGTERM (found
# stopped, reparented to init). Every one of them carries this run's unique init path on its command
# line: after the guest ends, kill exactly those, by pid. fd 9 (the lock) is not passed to the guest.
kill_this_guest() {
  local p
  for p in /proc/[0-9]*; do
    if grep -qsF "init=$RUN/" "$p/cmdline"; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
  done
}
trap 'kill_this_guest; rm -rf "$RUN"' EXIT
printf '#!/bin/sh\nexec %s -d %s/root "$@"\n' "$MODPROBE" "$W" > "$RUN/modprobe.sh"
chmod +x "$RUN/modprobe.sh"

# boot NAME SECONDS BODY: PID 1 mounts what the guest needs, writes out/booted, loads the modules (one
# line per module that fails in out/modprobe.fail), runs BODY, writes its status to out/rc and halts.
boot() {
  local name=$1 seconds=$2 body=$3
  mkdir -p "$RUN/$name/out"
  cat > "$RUN/$name/init.sh" <<EOI
#!/bin/bash
# PID 1 of the guest: the root file system is the host's, read-only, through hostfs.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs run /run
mkdir -p /run/netns /run/tmp /run/out
mount -t hostfs none /run/out -o $RUN/$name/out
echo $RUN/modprobe.sh > /proc/sys/kernel/modprobe
export PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/run/tmp HOME=/run/tmp
export PYTHONDONTWRITEBYTECODE=1 FIPSIKE_GUEST=1 PYTHONPATH=$REPO
uname -r > /run/out/booted
for m in $MODULES; do $RUN/modprobe.sh \$m >>/run/out/modprobe.log 2>&1 || echo \$m >> /run/out/modprobe.fail; done
cd $REPO
$body
echo \$? > /run/out/rc; sync; halt -f -p
EOI
  chmod +x "$RUN/$name/init.sh"
  local start end
  start=$(date +%s.%N)
  timeout -k 10 "$seconds" env ${PRELOAD:+LD_PRELOAD="$PRELOAD"} "$W/uml/usr/bin/linux.uml" mem=1G \
    root=/dev/root rootfstype=hostfs rootflags=/ ro init="$RUN/$name/init.sh" con=null con0=fd:0,fd:1 \
    </dev/null >"$RUN/$name/console.log" 2>&1 9>&- || true
  for _ in 1 2 3 4; do kill_this_guest; sleep 0.25; done
  end=$(date +%s.%N)
  ELAPSED=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
}

# why_not NAME: one line naming why the guest of run NAME did not get to run its init.
why_not() {
  local c="$RUN/$1/console.log"
  if grep -q "ptrace set fp regs failed" "$c" 2>/dev/null; then
    local amx="no AMX"; grep -qo amx_tile /proc/cpuinfo && amx="AMX"
    if [ -n "$PRELOAD" ]; then
      echo "the host refused UML's FPU/XSAVE state (ptrace set fp regs failed, host CPU has $amx) although the XSAVE shim $SHIM was preloaded"
    else
      echo "the host refused UML's FPU/XSAVE state (ptrace set fp regs failed, host CPU has $amx): the XSAVE shim was not preloaded"
    fi
  elif grep -q "Kernel panic" "$c" 2>/dev/null; then
    echo "the guest kernel panicked: $(grep -m1 'Kernel panic' "$c" | tr -d '\r')"
  elif [ ! -s "$c" ]; then
    echo "linux.uml printed nothing in ${ELAPSED} s (timeout ${2:-$TIMEOUT} s, or it could not start)"
  else
    echo "no init output after ${ELAPSED} s (timeout ${2:-$TIMEOUT} s); last console line: $(tail -1 "$c" | tr -d '\r')"
  fi
}

# The boot check: a trivial init, every module, and nothing else (about 3 s).
BOOT_TIMEOUT=$(( TIMEOUT < 60 ? TIMEOUT : 60 ))
boot check "$BOOT_TIMEOUT" 'ip xfrm state list >/dev/null'
if [ ! -f "$RUN/check/out/booted" ]; then
  tail -40 "$RUN/check/console.log" >&2 || true
  fail "the UML guest did not boot: $(why_not check "$BOOT_TIMEOUT")"
fi
if [ -s "$RUN/check/out/modprobe.fail" ]; then
  fail "the UML guest booted but is missing module(s): $(tr '\n' ' ' < "$RUN/check/out/modprobe.fail")(see $W/root/lib/modules)"
fi
if [ ! -f "$RUN/check/out/rc" ] || [ "$(cat "$RUN/check/out/rc")" != 0 ]; then
  fail "the UML guest booted but its XFRM netlink does not answer (ip xfrm state list failed)"
fi
if [ "${1:-}" = "--boot-check" ]; then
  echo "guest-run: boot check ok: kernel $(cat "$RUN/check/out/booted"), $(echo $MODULES | wc -w) modules, ${ELAPSED} s$([ -n "$PRELOAD" ] && echo ', XSAVE shim preloaded')"
  exit 0
fi

ARGS=""
TESTS="tests/kernel/guest"
for a in "$@"; do
  ARGS="$ARGS $(printf '%q' "$a")"
  case "$a" in tests/*) TESTS="" ;; esac  # test paths given: run those instead of tests/kernel/guest
done
if [ -n "${GUEST_CMD:-}" ]; then
  BODY="( $GUEST_CMD ) > /run/out/pytest.log 2>&1"
else
  BODY="$PY -m pytest -p no:cacheprovider -q -m guest $TESTS $ARGS --junitxml=/run/out/junit.xml > /run/out/pytest.log 2>&1"
fi
boot main "$TIMEOUT" "$BODY"
cat "$RUN/main/out/pytest.log" 2>/dev/null || true
if [ ! -f "$RUN/main/out/booted" ]; then
  tail -40 "$RUN/main/console.log" >&2 || true
  fail "the UML guest did not boot: $(why_not main)"
fi
if [ ! -f "$RUN/main/out/rc" ]; then
  tail -40 "$RUN/main/console.log" >&2 || true
  fail "the UML guest produced no result file (timeout ${TIMEOUT}s or crash, after ${ELAPSED} s)"
fi
RC=$(cat "$RUN/main/out/rc")
echo "guest-run: the guest exited $RC after ${ELAPSED} s"
exit "$RC"
