#!/usr/bin/env bash
# matryoshka.sh: does --matryoshka 384,128 make 128-dimensional embeddings better? Fine-tunes
# all-MiniLM-L6-v2 on data/debian-pkgs twice with the same options, once plainly and once with
# --matryoshka 384,128, then evaluates both (and the pretrained model) on the first DEV dev
# pairs at 384 and at 128 dimensions (`eval --dim 128`: the first 128 components,
# re-normalized). Prints a table; the runs' logs and models stay in OUT.
#
#   STEPS (100) BATCH (64) CHUNK (32) LR (1e-4) DEV (1000) THREADS (2) OUT (out/matryoshka)
#   BUILD (build)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
G="${BUILD:-$ROOT/build}/gradcache"
MODEL="$ROOT/models/all-MiniLM-L6-v2"
DATA="$ROOT/data/debian-pkgs"
STEPS="${STEPS:-100}" BATCH="${BATCH:-64}" CHUNK="${CHUNK:-32}" LR="${LR:-1e-4}"
DEV="${DEV:-1000}" THREADS="${THREADS:-2}" OUT="${OUT:-$ROOT/out/matryoshka}"
[ -x "$G" ] || { echo "matryoshka: $G is not built" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
gzip -dc "$DATA/dev.jsonl.gz" | awk -v n="$DEV" "NR <= n" > "$OUT/dev.jsonl" # not head: SIGPIPE
LENS=(--max-query-len 32 --max-passage-len 48)
TRAIN=(--model "$MODEL" --train "$DATA/train.jsonl.gz" --steps "$STEPS" --batch-size "$BATCH"
       --chunk-size "$CHUNK" --lr "$LR" --warmup 10 --threads "$THREADS" "${LENS[@]}")

for run in plain matryoshka; do
    extra=()
    [ "$run" = matryoshka ] && extra=(--matryoshka 384,128)
    echo "== train $run: $G train ${TRAIN[*]} ${extra[*]} --out $OUT/$run --log $OUT/$run.jsonl"
    t0=$(date +%s)
    "$G" train "${TRAIN[@]}" ${extra[@]+"${extra[@]}"} --out "$OUT/$run" --log "$OUT/$run.jsonl" \
        2> "$OUT/$run.stderr"
    echo "   $(( $(date +%s) - t0 )) s"
done

metric() { grep -o "\"$1\": [0-9.]*" "$2" | awk '{ print $2 }'; }
printf "\n%-12s %5s %10s %10s %10s\n" model dim recall@10 mrr@10 ndcg@10
for m in pretrained plain matryoshka; do
    dir="$OUT/$m"
    [ "$m" = pretrained ] && dir="$MODEL"
    for dim in 384 128; do
        "$G" eval --model "$dir" --data "$OUT/dev.jsonl" "${LENS[@]}" --threads "$THREADS" \
            --dim "$dim" > "$OUT/eval-$m-$dim.json"
        printf "%-12s %5s %10.4f %10.4f %10.4f\n" "$m" "$dim" \
            "$(metric recall@10 "$OUT/eval-$m-$dim.json")" "$(metric mrr@10 "$OUT/eval-$m-$dim.json")" \
            "$(metric ndcg@10 "$OUT/eval-$m-$dim.json")"
    done
done
