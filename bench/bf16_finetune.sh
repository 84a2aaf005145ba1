#!/usr/bin/env bash
# bf16_finetune.sh: the same MiniLM fine-tune in fp32 and in bf16 (train --precision), then
# dev recall@10 of both; the issue asks that bf16 end within 0.005 of fp32. The demo's data
# (scripts/demo.sh), 200 steps of 32 pairs (chunks of 32), queries of up to 32 tokens and
# passages of up to 64 by default (sized for 2 shared cores; the demo's are 1024 pairs, 128).
#   STEPS (200) BATCH (32) CHUNK (32) PLEN (64) LR (1e-4) DEV (2000 dev pairs) THREADS (2)
#   BUILD (build)  OUT (out/bf16_finetune)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
G="$BUILD/gradcache"
MODEL="$ROOT/models/all-MiniLM-L6-v2"
DATA="$ROOT/data/debian-pkgs"
STEPS="${STEPS:-200}" BATCH="${BATCH:-32}" PLEN="${PLEN:-64}" CHUNK="${CHUNK:-32}" LR="${LR:-1e-4}"
DEV="${DEV:-2000}" THREADS="${THREADS:-2}" OUT="${OUT:-$ROOT/out/bf16_finetune}"
[ -x "$G" ] || { echo "bf16_finetune: $G is not built" >&2; exit 1; }
mkdir -p "$OUT"
{ gzip -dc "$DATA/dev.jsonl.gz" || true; } | head -n "$DEV" > "$OUT/dev.jsonl"
EVAL=(--max-query-len 32 --max-passage-len "$PLEN" --batch-size 64 --threads "$THREADS")
for p in fp32 bf16; do
    rm -rf "$OUT/$p"
    T1=$(date +%s)
    "$G" train --model "$MODEL" --train "$DATA/train.jsonl.gz" --out "$OUT/$p" \
        --batch-size "$BATCH" --chunk-size "$CHUNK" --steps "$STEPS" --lr "$LR" \
        --max-query-len 32 --max-passage-len "$PLEN" --threads "$THREADS" --precision "$p" \
        --log "$OUT/$p.log" 2> "$OUT/$p.err"
    T2=$(date +%s)
    "$G" eval --model "$OUT/$p" --data "$OUT/dev.jsonl" "${EVAL[@]}" > "$OUT/$p.json"
    echo "$p: trained in $((T2 - T1)) s; $(tr -d '\n' < "$OUT/$p.json")"
done
r() { grep -o "\"recall@10\": *[0-9.]*" "$OUT/$1.json" | grep -o "[0-9.]*$"; }
awk -v a="$(r fp32)" -v b="$(r bf16)" 'BEGIN {
    d = b - a; printf "dev recall@10: fp32 %.4f, bf16 %.4f, difference %+.4f (%s 0.005)\n",
    a, b, d, (d < 0 ? -d : d) <= 0.005 ? "within" : "NOT within" }'
