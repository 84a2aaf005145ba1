#!/usr/bin/env bash
# Installs the Debian packages gradcache needs to build, test and run its demo.
# Idempotent and quiet when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libdnnl-dev libutf8proc-dev libjansson-dev zlib1g-dev
      python3 python3-pip unzip time clang libclang-rt-14-dev clang-format
      qemu-user openmpi-bin libopenmpi-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
