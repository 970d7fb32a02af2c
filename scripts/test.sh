#!/usr/bin/env bash
# The test command README gives: the whole suite, real parts included
# (SoftHSM2, strongSwan charon in network namespaces, XFRM in network
# namespaces, the user-mode-linux guest for ESP, the OpenSSL FIPS provider).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m pytest -q "$@"
