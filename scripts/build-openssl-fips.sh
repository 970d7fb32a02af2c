#!/bin/sh
# Build OpenSSL's FIPS provider (fips.so) from Debian's openssl source package, so that the unmodified
# `cryptography` wheel can run under it and fipsike's `--fips-mode required` can be tested for real.
#
# THIS BUILD IS NOT A VALIDATED MODULE. Only CMVP-certified OpenSSL versions, built exactly as their
# security policy prescribes, are validated. This exists to test that fipsike refuses / accepts correctly.
#
# Usage: scripts/build-openssl-fips.sh            (cache dir: $FIPSIKE_FIPS_DIR or /var/cache/fipsike/openssl-fips)
# Idempotent: when fips.so, fipsmodule.cnf and openssl-fips.cnf exist and the module loads, nothing is rebuilt.
# On success the last lines are the environment to export.
set -eu

W="${FIPSIKE_FIPS_DIR:-/var/cache/fipsike/openssl-fips}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
PY="${PYTHON:-python3}"

print_env() {
    echo "export OPENSSL_CONF=$W/openssl-fips.cnf"
    echo "export OPENSSL_MODULES=$W/mods"
}

# Check through the cryptography wheel itself (the thing fipsike uses), never assume: a wrong path
# falls back silently to non-FIPS.
check_fips() {
    OPENSSL_CONF="$W/openssl-fips.cnf" OPENSSL_MODULES="$W/mods" "$PY" -c \
        'import sys; from cryptography.hazmat.bindings._rust import openssl as o; sys.exit(0 if o.is_fips_enabled() else 1)'
}

if [ -f "$W/mods/fips.so" ] && [ -f "$W/mods/fipsmodule.cnf" ] && [ -f "$W/openssl-fips.cnf" ]; then
    if check_fips; then
        echo "build-openssl-fips: already built in $W (FIPS provider active under cryptography)" >&2
        print_env
        exit 0
    fi
    echo "build-openssl-fips: cached build in $W does not activate FIPS; rebuilding" >&2
fi

mkdir -p "$W/apt/parts" "$W/apt/lists/partial"
# A deb-src twin of the machine's own apt sources; private apt state, nothing in /etc/apt changes.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$W/apt/parts/src.sources"
else
    echo "build-openssl-fips: /etc/apt/sources.list.d/debian.sources not found" >&2
    exit 2
fi
O="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$W/apt/parts -o Dir::State::Lists=$W/apt/lists"

if ! ls "$W"/openssl_3.*.orig.tar.gz >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    apt-get $O update >&2
    # shellcheck disable=SC2086
    # The orig tarball is enough (apt checks it against the signed Sources index); a mirror that lacks
    # the .dsc/.debian.tar.xz makes apt-get exit non-zero, so judge by the tarball, not the status.
    (cd "$W" && apt-get $O source --download-only openssl >&2) || true
fi
if ! ls "$W"/openssl_3.*.orig.tar.gz >/dev/null 2>&1; then
    echo "build-openssl-fips: could not download the openssl source tarball into $W" >&2
    exit 2
fi
TARBALL=$(ls "$W"/openssl_3.*.orig.tar.gz | sort | tail -n 1)
SRC="$W/src"
rm -rf "$SRC" && mkdir -p "$SRC"
tar xzf "$TARBALL" -C "$SRC"
cd "$SRC"/openssl-3.*
./Configure enable-fips --prefix="$W/inst" --libdir=lib >&2
make -j"$JOBS" build_generated >&2
make -j"$JOBS" providers/fips.so >&2
mkdir -p "$W/mods"
cp providers/fips.so "$W/mods/fips.so"
openssl fipsinstall -module "$W/mods/fips.so" -out "$W/mods/fipsmodule.cnf" -provider_name fips >&2

cat > "$W/openssl-fips.cnf" <<CNF
config_diagnostics = 1
openssl_conf = openssl_init
.include $W/mods/fipsmodule.cnf
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
fips = fips_sect
base = base_sect
[base_sect]
activate = 1
[algorithm_sect]
default_properties = fips=yes
CNF

# The sources are no longer needed; keep the tarball so a rebuild needs no network.
cd "$W" && rm -rf "$SRC"

if ! check_fips; then
    echo "build-openssl-fips: built, but cryptography does not report FIPS enabled under $W/openssl-fips.cnf" >&2
    exit 1
fi
echo "build-openssl-fips: FIPS provider built in $W (NOT a validated module)" >&2
print_env
