#!/usr/bin/env bash
# train_memory.sh: peak memory of one training step against the batch size, at a fixed chunk
# size, on the tiny model (hidden 32, 2 layers). With gradient caching only one chunk's
# activations live at a time, so the peak should hardly grow with the batch: the targets are
# batch 32768 under 1 GiB and batch 16384 within 1.15x of batch 512. What must grow is the
# engine's O(B*d) buffers (query and passage representations and their gradients, 4*d floats
# per pair without hard negatives: 512 bytes at d=32) and the loss's O(B) row statistics;
# token ids are gathered per chunk, so they do not grow with the batch.
#
#   bash bench/train_memory.sh [build-dir] [chunk-size] [extra train options...]
set -eu
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$SRC/build}"
CHUNK="${2:-32}"
shift $(( $# < 2 ? $# : 2 ))
EXTRA=("$@")
G="$BUILD/gradcache"
[ -x "$G" ] || { echo "train_memory: $G not built" >&2; exit 1; }
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gradcache-mem.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

"$G" init --config "$SRC/tests/fixtures/cli/tiny_config.json" --vocab "$SRC/tests/fixtures/cli/vocab.txt" \
    --out "$TMP/tiny" >/dev/null
# 32768 synthetic pairs with distinct positives, words from the tiny vocabulary
awk 'BEGIN {
    srand(1);
    n = split("package library tool file system network data server client game audio video " \
              "image text editor font python perl java kernel module driver plugin theme " \
              "documentation development headers shared static runtime utility command line", w, " ");
    for (i = 0; i < 32768; i++) {
        q = ""; p = "";
        for (k = 0; k < 6; k++) q = q " " w[int(rand() * n) + 1];
        for (k = 0; k < 40; k++) p = p " " w[int(rand() * n) + 1];
        printf "{\"query\": \"%s %d\", \"positive\": \"%s %d\"}\n", q, i, p, i;
    }
}' > "$TMP/pairs.jsonl"

peak_mib() { # peak RSS of the command in MiB, from /usr/bin/time or gradcache's own report
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -v "$@" 2>"$TMP/err" >/dev/null
        awk '/Maximum resident set size/ { printf "%.1f", $NF / 1024 }' "$TMP/err"
    else
        "$@" 2>"$TMP/err" >/dev/null
        sed -n 's/.*peak memory \([0-9.]*\) MiB.*/\1/p' "$TMP/err" | tail -1
    fi
}

echo "one step, tiny model, chunk size $CHUNK, 32768 pairs loaded in every run ${EXTRA[*]+${EXTRA[*]}}"
printf "%8s  %14s  %10s\n" batch "peak RSS MiB" "step s"
declare -A PEAK
for B in 512 16384 32768; do
    t0=$(date +%s.%N)
    PEAK[$B]=$(peak_mib "$G" train --model "$TMP/tiny" --train "$TMP/pairs.jsonl" --out "$TMP/out$B" \
        --batch-size $B --chunk-size $CHUNK --steps 1 --max-passage-len 64 ${EXTRA[@]+"${EXTRA[@]}"})
    t1=$(date +%s.%N)
    printf "%8s  %14s  %10.1f\n" $B "${PEAK[$B]}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
done
ratio=$(awk -v a="${PEAK[16384]}" -v b="${PEAK[512]}" 'BEGIN { printf "%.3f", a / b }')
echo "ratio peak(16384) / peak(512): $ratio (target <= 1.15)"
awk -v a="${PEAK[16384]}" -v b="${PEAK[512]}" 'BEGIN {
    printf "growth: %.0f bytes per pair from batch 512 to 16384\n", (a - b) * 1048576 / (16384 - 512) }'
echo "peak at 32768: ${PEAK[32768]} MiB (target < 1024)"
