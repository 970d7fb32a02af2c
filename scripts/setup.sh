#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) for fipsike: Debian packages, the
# Python package with its test extras, the OpenSSL FIPS provider build (cached)
# and the user-mode-linux guest kernel (cached). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  softhsm2 opensc                                   # the PKCS#11 token and pkcs11-tool
  strongswan-charon strongswan-swanctl charon-systemd strongswan-pki
  libstrongswan-standard-plugins libstrongswan-extra-plugins libcharon-extra-plugins
  tcpdump tshark iputils-ping iproute2 kmod strace  # captures, the independent decoder, netns, netlink checks
  openssl ca-certificates build-essential perl      # openssl CLI (oracle) and the FIPS provider build
  chromium                                          # renders the auditor's HTML report in a test
)

apt_retry() {
  # another apt/dpkg may hold the lock on a fresh machine: wait for it, then retry
  local n
  for n in 1 2 3 4 5; do
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; then return 0; fi
    echo "apt-get $* failed (try $n), retrying in 10 s" >&2; sleep 10
  done
  return 1
}

missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt_retry update
  apt_retry install -y --no-install-recommends "${missing[@]}"
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

# Pieces the tests need that take minutes the first time (cached afterwards).
scripts/build-openssl-fips.sh
# the user-mode-linux guest kernel for the ESP tests and the demo, with its XSAVE shim for AMX hosts
scripts/guest-setup.sh
scripts/libreswan-setup.sh >/dev/null  # libreswan 4.10 unpacked (not installed), the interop matrix's pluto
# the software-integrity manifest is written at install time and checked by every start-up self-test
fipsike selftest --write-manifest
exit 0
