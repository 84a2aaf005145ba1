#!/usr/bin/env bash
# loss_memory.sh: peak memory and time of the tiled InfoNCE loss at B = 65,536, d = 384, K = 0,
# with the dot product and with the cosine. Builds nothing; runs the benchmark binary from a
# build folder.
#   usage: bench/loss_memory.sh [build-dir] [extra bench_loss_memory options...]
set -euo pipefail
build=${1:-build}
shift || true
bin="$build/bench_loss_memory"
if [ ! -x "$bin" ]; then
    echo "loss_memory.sh: $bin not found (build the project first)" >&2
    exit 1
fi
for mode in "" "--cosine"; do
    echo "== ${mode:-dot product}"
    "$bin" --batch 65536 --dim 384 --negatives 0 $mode "$@"
done
