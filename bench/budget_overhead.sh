#!/usr/bin/env bash
# budget_overhead.sh: what the gradient cache costs over no caching under --memory-budget, on
# MiniLM (2 threads, chunk 32, 32-token queries, 128-token passages, B = 64 and 256). For each
# batch: the no-cache step, a budget that holds the batch (no chunk re-encoded: issue 9 asks
# cached/no-cache <= 1.05), and budgets that keep only some chunks, where the bound is the
# no-cache step plus one encode of every chunk not kept (pass 1 encodes it, pass 2 runs it
# forward again): cached <= 1.05 x that. Runs are interleaved, ROUNDS times (default 2).
#
#   bash bench/budget_overhead.sh [build-dir] [model-dir]
set -eu
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$SRC/build}"
MODEL="${2:-$SRC/models/all-MiniLM-L6-v2}"
B="$BUILD/bench_train_step"
[ -x "$B" ] || { echo "budget_overhead: $B not built" >&2; exit 1; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
run() { "$B" --model "$MODEL" --chunk 32 --qlen 32 --plen 128 --steps 2 "$@"; }
sec() { sed -n 's/.* \([0-9.]*\) s\/step.*/\1/p' <<<"$1" | head -1; }
for batch in 64 256; do
    budgets="16G 1.25G 1.6G"
    [ $batch = 256 ] && budgets="16G 1.6G 2.5G"
    for r in $(seq "$ROUNDS"); do
        nc=$(run --batch $batch --no-cache)
        tn=$(sec "$nc")
        for bud in $budgets; do
            out=$(run --batch $batch --memory-budget $bud)
            tc=$(sec "$out")
            plan=$(grep "memory plan" <<<"$out")
            # chunks not kept and the encode time of one chunk of each side
            read -r qn qk pn pk < <(sed -n 's/.*kept \([0-9]*\) of \([0-9]*\) query and \([0-9]*\) of \([0-9]*\) passage.*/\2 \1 \4 \3/p' <<<"$plan")
            tpe=$(sed -n 's/.*passage chunk of [0-9]*: encode \([0-9.]*\) s.*/\1/p' <<<"$out")
            tqe=$(sed -n 's/.*query chunk: encode \([0-9.]*\) s.*/\1/p' <<<"$out")
            awk -v b=$batch -v r=$r -v bud=$bud -v tn=$tn -v tc=$tc -v qn=$qn -v qk=$qk -v pn=$pn \
                -v pk=$pk -v tq=$tqe -v tp=$tpe 'BEGIN {
                re = (qn - qk) * tq + (pn - pk) * tp; bound = tn + re;
                printf "B %3d round %d budget %-5s kept %d/%d query %d/%d passage chunks: cached %.3f s, no-cache %.3f s, re-encode %.3f s: cached / (no-cache + re-encode) = %.3f (<= 1.05: %s)\n",
                       b, r, bud, qk, qn, pk, pn, tc, tn, re, tc / bound, tc / bound <= 1.05 ? "yes" : "NO";
            }'
        done
    done
done
