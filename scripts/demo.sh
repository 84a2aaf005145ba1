#!/usr/bin/env bash
# demo.sh: fine-tune all-MiniLM-L6-v2 on Debian package descriptions with gradient caching and
# show retrieval quality before and after (run by `make demo` after the build and the model
# fetch). Each optimizer step sees a batch of 1024 pairs (1023 in-batch negatives per query)
# while only 64 sequences' activations are in memory at once.
#
# Sized for about 10 minutes on 2 cores; override with environment variables:
#   DEMO_STEPS (8)   optimizer steps of 1024 pairs
#   DEMO_DEV (5472)  dev pairs evaluated (the first N of data/debian-pkgs/dev.jsonl.gz,
#                    all of it by default)
#   DEMO_LR (1e-4)   peak learning rate (linear decay)
#   DEMO_OUT (out/demo)  where the fine-tuned model goes (replaced on every run)
#   BUILD (build)    the build folder holding `gradcache`
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
G="$BUILD/gradcache"
MODEL="$ROOT/models/all-MiniLM-L6-v2"
DATA="$ROOT/data/debian-pkgs"
STEPS="${DEMO_STEPS:-8}"
DEV_N="${DEMO_DEV:-5472}"
LR="${DEMO_LR:-1e-4}"
OUT="${DEMO_OUT:-$ROOT/out/demo}"

[ -x "$G" ] || { echo "demo: $G is not built (run make build)" >&2; exit 1; }
[ -f "$MODEL/model.safetensors" ] || { echo "demo: $MODEL is missing (run make model)" >&2; exit 1; }
[ -f "$DATA/train.jsonl.gz" ] || { echo "demo: $DATA/train.jsonl.gz is missing" >&2; exit 1; }

T0=$(date +%s)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gradcache-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
gzip -dc "$DATA/dev.jsonl.gz" | head -n "$DEV_N" > "$WORK/dev.jsonl"
NDEV=$(wc -l < "$WORK/dev.jsonl")
EVAL=(--max-query-len 32 --max-passage-len 128 --batch-size 64)

echo "== gradcache demo: all-MiniLM-L6-v2 on Debian package descriptions"
echo "   retrieval task: each of $NDEV dev synopses ranks all $NDEV dev descriptions"
echo
echo "-- evaluating the pretrained model"
"$G" eval --model "$MODEL" --data "$WORK/dev.jsonl" "${EVAL[@]}" > "$WORK/before.json"
cat "$WORK/before.json"

echo
echo "-- fine-tuning: $STEPS steps x 1024 pairs (chunks of 64), lr $LR"
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -v -o "$WORK/time.txt")
T1=$(date +%s)
${TIME[@]+"${TIME[@]}"} "$G" train --model "$MODEL" --train "$DATA/train.jsonl.gz" --out "$OUT" \
    --batch-size 1024 --chunk-size 64 --steps "$STEPS" --lr "$LR" \
    --max-query-len 32 --max-passage-len 128 --log "$OUT.log"
T2=$(date +%s)

echo
echo "-- evaluating the fine-tuned model"
"$G" eval --model "$OUT" --data "$WORK/dev.jsonl" "${EVAL[@]}" > "$WORK/after.json"
cat "$WORK/after.json"
T3=$(date +%s)

metric() { grep -o "\"$1\": [0-9.]*" "$2" | awk '{ print $2 }'; }
echo
printf "%-10s %8s %8s %8s\n" metric before after change
for m in recall@1 recall@10 recall@100 mrr@10 ndcg@10; do
    b=$(metric "$m" "$WORK/before.json")
    a=$(metric "$m" "$WORK/after.json")
    printf "%-10s %8.4f %8.4f %+8.4f\n" "$m" "$b" "$a" "$(awk -v a="$a" -v b="$b" 'BEGIN { print a - b }')"
done
echo
PEAK=""
if [ -f "$WORK/time.txt" ]; then
    PEAK=$(awk '/Maximum resident set size/ { printf "%.0f MiB", $NF / 1024 }' "$WORK/time.txt")
fi
echo "training: $((T2 - T1)) s for $STEPS steps of 1024 pairs${PEAK:+, peak memory $PEAK}"
echo "total wall time: $((T3 - T0)) s; fine-tuned model in $OUT (log: $OUT.log, report: $OUT.html)"
