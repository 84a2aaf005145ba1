#!/usr/bin/env bash
# mpi_loss.sh: the loss is sharded, not replicated, across MPI ranks. At B = 8,192 (tiny model
# width d = 32, symmetric, cosine) prints each rank's loss workspace, scores and loss time at
# 1, 2 and 3 ranks (bench_loss_shard), then the per-step time split of a whole gradient-cache
# step (encode / gather / loss / scatter / reduce, bench_mpi_step) at 1, 2 and 3 ranks with the
# tiny test model at the same B. One thread per rank. Builds nothing.
#   usage: bench/mpi_loss.sh [build-dir]
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
for b in bench_loss_shard bench_mpi_step gradcache; do
    if [ ! -x "$build/$b" ]; then echo "mpi_loss.sh: $build/$b not found (build first)" >&2; exit 1; fi
done
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/gradcache" init --config "$src/tests/fixtures/cli/tiny_config.json" \
    --vocab "$src/tests/fixtures/cli/vocab.txt" --out "$tmp/tiny" --seed 7 >/dev/null
echo "== the loss alone"
for n in 1 2 3; do timeout 600 mpirun -np $n "$build/bench_loss_shard" --batch 8192 --dim 32 --symmetric; done
echo "== a whole step (tiny model, B = 8,190 so that 3 ranks divide it)"
for n in 1 2 3; do timeout 600 mpirun -np $n "$build/bench_mpi_step" --model "$tmp/tiny" --batch 8190 --chunk 256; done
