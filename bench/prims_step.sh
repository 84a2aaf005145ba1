#!/usr/bin/env bash
# prims_step.sh: a MiniLM training step with each kind of oneDNN primitive (GC_MATMUL_PRIMS
# runtime / shape), fp32 and bf16, alternating, REPEAT rounds: prints pairs/s and the process's
# CPU seconds (user + system; steadier than wall time on a shared machine) per run, then the
# medians. The step-level check behind gc_matmul_prims' default; bench/matmul_prims times the
# products alone.
#   BUILD (build) MODEL (models/all-MiniLM-L6-v2) THREADS (2) REPEAT (3)
#   SIZE ("--batch 32 --chunk 32 --qlen 32 --plen 128")
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}" MODEL="${MODEL:-$ROOT/models/all-MiniLM-L6-v2}"
THREADS="${THREADS:-2}" REPEAT="${REPEAT:-3}"
read -r -a SIZE <<< "${SIZE:---batch 32 --chunk 32 --qlen 32 --plen 128}"
export OMP_NUM_THREADS="$THREADS"
RES="$(mktemp "${TMPDIR:-/tmp}/prims_step.XXXXXX")"
trap 'rm -f "$RES"' EXIT
for r in $(seq "$REPEAT"); do
    for p in fp32 bf16; do
        for k in runtime shape; do
            out=$( { /usr/bin/time -f "cpu %U %S" env GC_MATMUL_PRIMS=$k "$BUILD/bench_train_step" \
                --model "$MODEL" "${SIZE[@]}" --steps 1 --precision $p; } 2>&1)
            rate=$(grep -o "[0-9.]* pairs/s" <<< "$out" | head -1 | grep -o "^[0-9.]*")
            cpu=$(awk '/^cpu / {printf "%.2f", $2 + $3}' <<< "$out")
            echo "round $r $p $k: $rate pairs/s, $cpu CPU s"
            echo "$p $k $rate $cpu" >> "$RES"
        done
    done
done
python3 - "$RES" <<'PYEOF'
import sys, statistics
d = {}
for line in open(sys.argv[1]):
    p, k, rate, cpu = line.split()
    d.setdefault((p, k), []).append((float(rate), float(cpu)))
for p in ("fp32", "bf16"):
    rt, sh = d[(p, "runtime")], d[(p, "shape")]
    med = lambda v, i: statistics.median(x[i] for x in v)
    print(f"{p}: runtime {med(rt, 0):.2f} pairs/s ({med(rt, 1):.2f} CPU s), shape {med(sh, 0):.2f} "
          f"pairs/s ({med(sh, 1):.2f} CPU s): shape/runtime time {med(sh, 1) / med(rt, 1):.2f}")
PYEOF
