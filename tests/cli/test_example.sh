# test_example.sh: the library example examples/train_pairs.c loads a model folder, trains a
# few steps through gc_trainer and saves a folder that the CLI can load and evaluate.
. "$(dirname "$0")/lib.sh"

EX="$BIN_DIR/train_pairs"
if [ ! -x "$EX" ]; then echo "test_example: $EX not built"; exit 1; fi
make_tiny "$TMP/tiny"
ok "train_pairs runs" "$EX" "$TMP/tiny" "$FIX/pairs.jsonl" "$TMP/ex" 3
check "it printed three steps" test "$(grep -c '^step ' "$TMP/out")" -eq 3
check "it saved a model" test -s "$TMP/ex/model.safetensors"
check "the weights changed" not cmp -s "$TMP/tiny/model.safetensors" "$TMP/ex/model.safetensors"
ok "the CLI evaluates the saved folder" "$G" eval --model "$TMP/ex" --data "$FIX/pairs.jsonl"
check "a missing model folder is an error" not quiet "$EX" "$TMP/none" "$FIX/pairs.jsonl" "$TMP/ex2"
finish test_example
