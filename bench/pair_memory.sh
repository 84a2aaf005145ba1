#!/usr/bin/env bash
# pair_memory.sh: what one more pair of batch costs in memory, on a real model. One training
# step (gradient cache, in-batch negatives, chunk 64, 8-token queries and passages) at batch
# 512 and at batch 8192, fp32 and bf16; the per-pair cost is the difference of the two peak
# resident sizes over the 7680 pairs between them. Targets (issue 9): <= 3.5 KiB a pair in
# fp32, <= 2 KiB in bf16 (what must grow: the representations, 2 d floats or bf16s a pair, the
# loss's per-pair statistics and the token ids).
#
#   bash bench/pair_memory.sh [build-dir] [model-dir]      (threads: OMP_NUM_THREADS, default 2)
set -eu
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$SRC/build}"
MODEL="${2:-$SRC/models/all-MiniLM-L6-v2}"
B="$BUILD/bench_train_step"
[ -x "$B" ] || { echo "pair_memory: $B not built" >&2; exit 1; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
small=512 large=8192
declare -A PEAK
for prec in fp32 bf16; do
    for n in $small $large; do
        out=$("$B" --model "$MODEL" --batch $n --chunk 64 --qlen 8 --plen 8 --steps 1 --no-warmup \
            --precision $prec)
        echo "$out" | head -1
        PEAK[$prec$n]=$(echo "$out" | sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p')
        echo "$out" | grep "peak RSS"
    done
done
for prec in fp32 bf16; do
    awk -v a="${PEAK[$prec$large]}" -v b="${PEAK[$prec$small]}" -v p=$prec -v n=$((large - small)) \
        -v t="$([ $prec = fp32 ] && echo 3.5 || echo 2)" 'BEGIN {
        per = (a - b) * 1048576 / n / 1024;
        printf "%s: peak %.1f MiB at batch 512, %.1f MiB at 8192: %.2f KiB a pair (target <= %s KiB): %s\n",
               p, b, a, per, t, per <= t ? "met" : "NOT met";
    }'
done
