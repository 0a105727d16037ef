#!/usr/bin/env bash
# Installs the Debian 12 packages Conclave needs to build and run — only those missing — and,
# with --test, what the tests need too (Debian's chromium for the browser tests).
# Uses sudo when not root. Safe to run again: does nothing when everything is there.
# The web UI needs Node.js >= 20.19 with npm: a machine that has no node gets Debian's nodejs
# and npm (scripts/build-web.sh says clearly if that one is too old).
set -euo pipefail

packages=(
    build-essential cmake ninja-build ccache pkg-config git
    libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
    libsqlite3-dev libpq-dev postgresql libssl-dev libjemalloc-dev
    libspdlog-dev libcli11-dev libtomlplusplus-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    clang-format clang libclang-rt-14-dev
)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
fi
if [ "${1:-}" = "--test" ]; then
    packages+=(chromium)
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
