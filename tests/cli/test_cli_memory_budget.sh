# test_cli_memory_budget.sh: --memory-budget. With a budget that holds the batch every chunk's
# pass-1 activations are kept (nothing re-encoded) and one huge-lr SGD step changes every tensor
# as the run without the planner does (norm-relative <= 1e-5 per tensor, bench/st_diff); so
# does a budget that keeps only some chunks; the plan is printed and logged; a budget below
# one example, a malformed size and --no-cache with a budget are usage errors (exit 2).
. "$(dirname "$0")/lib.sh"

ST_DIFF="$BIN_DIR/st_diff"
if [ ! -x "$ST_DIFF" ]; then echo "test_cli_memory_budget: $ST_DIFF not built"; exit 1; fi
make_tiny "$TMP/tiny"
head -32 "$FIX/pairs.jsonl" > "$TMP/neg.jsonl" # two hard negatives per line
STEP=(--model "$TMP/tiny" --train "$TMP/neg.jsonl" --steps 1 --threads 1 --optimizer sgd
      --lr 1000 --weight-decay 0 --max-grad-norm 0 --schedule constant --dropout 0.1
      --batch-size 24 --symmetric)
base="$TMP/tiny/model.safetensors"

ok "no planner, chunk 3" "$G" train "${STEP[@]}" --chunk-size 3 --out "$TMP/ref"
ok "budget that holds the batch, chunk 3" "$G" train "${STEP[@]}" --chunk-size 3 \
    --memory-budget 8GiB --out "$TMP/all" --log "$TMP/all.jsonl"
check "the plan is printed" grep -q "memory plan (budget 8.00 GiB): chunks 3/3" "$TMP/err"
check "every chunk kept, none re-encoded" grep -qE "kept for 8 of 8 query and 24 of 24 passage chunks \(96 examples kept, 0 re-encoded\)" "$TMP/err"
check "the budget is logged" grep -q '"memory_budget": 8589934592' "$TMP/all.jsonl"
ok "kept chunks: the same step as re-encoded ones" "$ST_DIFF" "$base" "$TMP/all/model.safetensors" "$TMP/ref/model.safetensors" 1e-5
check "the step changed the weights" not cmp -s "$base" "$TMP/all/model.safetensors"

# the smallest budget for chunk 3 from the too-small message, then a little more: some kept
fails "budget below one chunk" 2 "memory budget of 1024 bytes is too small" \
    "$G" train "${STEP[@]}" --chunk-size 3 --memory-budget 1KiB --out "$TMP/small"
need=$(sed -nE 's/.*needs ([0-9]+) bytes.*/\1/p' "$TMP/err")
check "the message says what one chunk needs" test -n "$need"
ok "a budget that keeps some chunks" "$G" train "${STEP[@]}" --chunk-size 3 \
    --memory-budget $((need + 400000)) --out "$TMP/some"
check "some chunks are re-encoded" grep -qE "[1-9][0-9]* re-encoded" "$TMP/err"
ok "some kept: the same step" "$ST_DIFF" "$base" "$TMP/some/model.safetensors" "$TMP/ref/model.safetensors" 1e-5

# no chunk size: the planner chooses (at most 32) and keeps everything
ok "chosen chunk size" "$G" train "${STEP[@]}" --memory-budget 8GiB --out "$TMP/chosen"
check "chosen chunks 24/32, nothing re-encoded" grep -qE "chunks 24/32; .* 0 re-encoded" "$TMP/err"
ok "chosen chunks: the same step" "$ST_DIFF" "$base" "$TMP/chosen/model.safetensors" "$TMP/ref/model.safetensors" 1e-5

fails "malformed size" 2 "--memory-budget needs a size" "$G" train "${STEP[@]}" --memory-budget 3XB --out "$TMP/x"
fails "zero size" 2 "--memory-budget needs a size" "$G" train "${STEP[@]}" --memory-budget 0 --out "$TMP/x"
fails "with --no-cache" 2 "not with --no-cache" "$G" train "${STEP[@]}" --no-cache --memory-budget 1GiB --out "$TMP/x"
fails "too small for one example" 2 "too small" "$G" train "${STEP[@]}" --memory-budget 100KB --out "$TMP/x"

finish test_cli_memory_budget
