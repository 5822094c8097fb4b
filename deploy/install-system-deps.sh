#!/usr/bin/env bash
# Debian packages the Python dependencies need to build: libgmp-dev for fastecdsa
# (pinned by py-libp2p) and a C compiler. Installs only what is missing.
set -euo pipefail
needed=()
for pkg in gcc libgmp-dev python3-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || needed+=("$pkg")
done
if [ ${#needed[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${needed[*]} (run: sudo apt-get install ${needed[*]})" >&2
    exit 1
fi
echo "installing Debian packages: ${needed[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
