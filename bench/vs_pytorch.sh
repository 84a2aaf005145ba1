#!/usr/bin/env bash
# vs_pytorch.sh: the project's training step against PyTorch's, interleaved in one run on the
# same model (all-MiniLM-L6-v2), sizes and threads:
#   project: bench_train_step, fp32 and bf16 (--precision), gradient cache and no cache;
#   PyTorch: scripts/bench_torch_step.py (Hugging Face BertModel, the same gradient-cache step),
#            fp32 and bf16 autocast, gradient cache and no cache;
# at q32/p128 batch 64 and q32/p32 batch 128, chunks of 32. Prints pairs/s (median of REPEAT
# rounds, each round running every variant once, so drifting machine load hits all alike),
# the ratios, the machine's oneDNN fp32/bf16 matmul rate (bench/matmul_rate) and the
# effective rate of the bf16 cached step (the model FLOPs of one forward and one backward,
# 3x the forward, over the step's time) against it.
#
# PyTorch comes from PyPI into a virtualenv this script makes (python3 -m venv) unless VENV
# names one that has torch and transformers (e.g. VENV=/work/venv). Never part of make test.
#   THREADS (2) REPEAT (3) STEPS (2 timed steps per measurement) BUILD (build)
#   VENV (out/venv-torch)  MODEL (models/all-MiniLM-L6-v2)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
THREADS="${THREADS:-2}" REPEAT="${REPEAT:-3}" STEPS="${STEPS:-2}"
VENV="${VENV:-$ROOT/out/venv-torch}"
MODEL="${MODEL:-$ROOT/models/all-MiniLM-L6-v2}"
export OMP_NUM_THREADS="$THREADS" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if ! "$VENV/bin/python" -c "import torch, transformers" 2>/dev/null; then
    echo "-- making $VENV (PyTorch CPU wheels and transformers from PyPI)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch
    "$VENV/bin/pip" install -q transformers
fi
PY="$VENV/bin/python"
if [ ! -x "$BUILD/bench_train_step" ] || [ ! -x "$BUILD/matmul_rate" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j"$THREADS" --target bench_train_step matmul_rate >/dev/null
fi

echo "== machine"
lscpu | grep -E "^(Model name|CPU\(s\)|Thread|Core)" || true
echo "flags (vector): $(grep -o -w -E 'avx2|fma|avx512[a-z_0-9]*|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "PyTorch: $("$PY" -c 'import torch; print(torch.__version__)'), threads $THREADS"
echo
echo "== oneDNN matmul rate (gc_matmul_ex, 4096 rows, MiniLM shapes)"
"$BUILD/matmul_rate" --reps 5 | tee "${TMPDIR:-/tmp}/vs_pytorch_mm.$$"
MM_BF16=$(grep "matmul rate bf16" "${TMPDIR:-/tmp}/vs_pytorch_mm.$$" | grep -o "[0-9.]* GFLOP" | grep -o "[0-9.]*" || echo 0)
rm -f "${TMPDIR:-/tmp}/vs_pytorch_mm.$$"

RES="$(mktemp "${TMPDIR:-/tmp}/vs_pytorch.XXXXXX")"
trap 'rm -f "$RES"' EXIT
SIZES=("32 128 64" "32 32 128") # qlen plen batch
rate() { grep -o "[0-9.]* pairs/s" | tail -1 | grep -o "^[0-9.]*"; }
echo
echo "== steps (pairs/s), $REPEAT rounds"
for r in $(seq "$REPEAT"); do
    for s in "${SIZES[@]}"; do
        read -r q p b <<< "$s"
        for mode in cache nocache; do
            nc=(); [ $mode = nocache ] && nc=(--no-cache)
            common=(--batch "$b" --chunk 32 --qlen "$q" --plen "$p" --steps "$STEPS")
            for impl in c_fp32 c_bf16 torch_fp32 torch_bf16; do
                case $impl in
                c_fp32) v=$("$BUILD/bench_train_step" --model "$MODEL" "${common[@]}" "${nc[@]}" --precision fp32 | rate) ;;
                c_bf16) v=$("$BUILD/bench_train_step" --model "$MODEL" "${common[@]}" "${nc[@]}" --precision bf16 | rate) ;;
                torch_fp32) v=$("$PY" "$ROOT/scripts/bench_torch_step.py" --model "$MODEL" --threads "$THREADS" "${common[@]}" "${nc[@]}" 2>/dev/null | rate) ;;
                torch_bf16) v=$("$PY" "$ROOT/scripts/bench_torch_step.py" --model "$MODEL" --threads "$THREADS" "${common[@]}" "${nc[@]}" --bf16 2>/dev/null | rate) ;;
                esac
                echo "q$q/p$p B$b $mode $impl round $r: $v"
                echo "q$q/p$p/B$b $mode $impl $v" >> "$RES"
            done
        done
    done
done

echo
echo "== summary (medians)"
python3 - "$RES" "$MM_BF16" <<'PYEOF'
import sys, statistics
res, mm = sys.argv[1], float(sys.argv[2])
d = {}
for line in open(res):
    k, mode, impl, v = line.split()
    d.setdefault((k, mode), {}).setdefault(impl, []).append(float(v))
C, I, L = 384, 1536, 6  # MiniLM-L6
def fwd_flops(T):  # one sequence: the linear layers and the two attention products
    return L * (T * 2 * (4 * C * C + 2 * C * I) + 2 * 2 * T * T * C)
print("| step | project fp32 | project bf16 | PyTorch fp32 | PyTorch bf16 | fp32 ratio | bf16 ratio | project bf16/fp32 |")
print("|---|---|---|---|---|---|---|---|")
for (k, mode), m in d.items():
    med = {i: statistics.median(v) for i, v in m.items()}
    print(f"| {k} {'gradient cache' if mode == 'cache' else 'no cache'} | {med['c_fp32']:.1f} | "
          f"{med['c_bf16']:.1f} | {med['torch_fp32']:.1f} | {med['torch_bf16']:.1f} | "
          f"{med['c_fp32'] / med['torch_fp32']:.2f}x | {med['c_bf16'] / med['torch_bf16']:.2f}x | "
          f"{med['c_bf16'] / med['c_fp32']:.2f}x |")
print()
for (k, mode), m in d.items():
    if mode != "cache":
        continue
    q, p, b = k.split("/")
    per_pair = 3 * (fwd_flops(int(q[1:])) + fwd_flops(int(p[1:])))
    eff = statistics.median(m["c_bf16"]) * per_pair / 1e9
    pct = 100 * eff / mm if mm > 0 else 0
    print(f"{k} bf16 gradient cache: effective {eff:.1f} GFLOP/s (3x forward FLOPs), "
          f"{pct:.0f}% of the bf16 matmul rate {mm:.1f} GFLOP/s")
PYEOF
