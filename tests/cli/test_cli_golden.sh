# test_cli_golden.sh: the trainer's numbers do not change. A 3-step run with every feature that
# decides the numbers (dropout, hard negatives, symmetric loss, learnable temperature, gradient
# accumulation, ragged chunks, warmup and linear decay) must reproduce the committed output of
# the build before the trainer moved into the library (tests/fixtures/trainer/README.md): the
# model file byte for byte and the checkpoint's state exactly.
. "$(dirname "$0")/lib.sh"

# oneDNN picks its matrix kernels by the CPU's instruction set (AVX2, AVX-512, AMX), and each
# sums in its own order: the fixture was written with its AVX2 kernels, so pin that level here.
export ONEDNN_MAX_CPU_ISA=AVX2
CKPT_CMP="$BIN_DIR/ckpt_cmp"
if [ ! -x "$CKPT_CMP" ]; then echo "test_cli_golden: $CKPT_CMP not built"; exit 1; fi
GOLD="$SRC/tests/fixtures/trainer"
make_tiny "$TMP/tiny"
head -32 "$FIX/pairs.jsonl" > "$TMP/neg.jsonl"
RUN=(--model "$TMP/tiny" --train "$TMP/neg.jsonl" --steps 3 --threads 1 --dropout 0.1 --symmetric
     --learn-temperature --accumulation-steps 2 --batch-size 8 --chunk-size 3 --warmup 1 --lr 1e-3)
ok "golden run" "$G" train "${RUN[@]}" --out "$TMP/run" --log "$TMP/log.jsonl"
check "model.safetensors equals the fixture byte for byte" cmp "$TMP/run/model.safetensors" "$GOLD/model.safetensors"
ok "checkpoint state equals the fixture" "$CKPT_CMP" "$TMP/run/training_state/checkpoint.bin" "$GOLD/checkpoint.bin"
# the logged losses too (the timing fields differ; the options record is newer than the fixture)
strip() { grep -v '^{"options": ' "$1" | sed -E 's/, "pairs_per_s": [^,]*, "step_s": [^}]*//'; }
check "logged losses equal the fixture" cmp <(strip "$TMP/log.jsonl") <(strip "$GOLD/log.jsonl")

# the comparison can fail: one more step gives another state
ok "a longer run" "$G" train "${RUN[@]}" --steps 4 --out "$TMP/out4"
check "ckpt_cmp notices a different state" not quiet "$CKPT_CMP" "$TMP/out4/training_state/checkpoint.bin" "$GOLD/checkpoint.bin"
check "cmp notices a different model" not cmp -s "$TMP/out4/model.safetensors" "$GOLD/model.safetensors"

finish test_cli_golden
