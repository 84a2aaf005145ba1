# test_cli_bf16.sh: train --precision. bf16 trains, is resumed bit for bit with --threads 1,
# and a checkpoint of one precision refuses a resume in the other; a bad value is a usage
# error. On a CPU without native bf16 the run says so and trains fp32.
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny"
D="$FIX/pairs.jsonl"
ARGS=(--model "$TMP/tiny" --train "$D" --batch-size 16 --chunk-size 5 --threads 1 --seed 3
      --dropout 0.1 --lr 1e-3 --steps 4)

fails "--precision fp16" 2 "fp32 or bf16" "$G" train "${ARGS[@]}" --out "$TMP/x" --precision fp16
ok "bf16, 4 steps" "$G" train "${ARGS[@]}" --out "$TMP/a" --precision bf16
if grep -q "no native bf16" "$TMP/err"; then
    echo "no native bf16 here: the bf16 run was fp32"
    NATIVE=0
else
    check "says bf16" grep -q "precision bf16" "$TMP/err"
    NATIVE=1
fi
ok "fp32, 4 steps" "$G" train "${ARGS[@]}" --out "$TMP/f" --precision fp32
if [ $NATIVE = 1 ]; then
    check "bf16 weights differ from fp32" not cmp -s "$TMP/a/model.safetensors" "$TMP/f/model.safetensors"
    ok "bf16, 2 steps" "$G" train "${ARGS[@]}" --out "$TMP/b" --precision bf16 --stop-after 2
    fails "resume in fp32" 1 "precision" "$G" train "${ARGS[@]}" --out "$TMP/b" --resume
    ok "resume in bf16" "$G" train "${ARGS[@]}" --out "$TMP/b" --resume --precision bf16
    check "resumed bf16 is bit-identical" cmp -s "$TMP/a/model.safetensors" "$TMP/b/model.safetensors"
    fails "fp32 checkpoint refuses bf16" 1 "precision" "$G" train "${ARGS[@]}" --out "$TMP/f" --resume --precision bf16 --steps 5
fi
ok "no option is fp32" "$G" train "${ARGS[@]}" --out "$TMP/n"
check "default is fp32, bit for bit" cmp -s "$TMP/f/model.safetensors" "$TMP/n/model.safetensors"
finish test_cli_bf16
