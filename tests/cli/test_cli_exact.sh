# test_cli_exact.sh: gradient caching is exact. One SGD step with a huge learning rate (so the
# weight change is the gradient, well above rounding) must change every tensor the same way
# with chunk size 3 (ragged chunks), 16, and no cache at all (norm-relative difference per
# tensor <= 1e-5, compared by bench/st_diff), with dropout on, hard negatives, and both the
# one-sided and the symmetric loss.
. "$(dirname "$0")/lib.sh"

ST_DIFF="$BIN_DIR/st_diff"
if [ ! -x "$ST_DIFF" ]; then echo "test_cli_exact: $ST_DIFF not built"; exit 1; fi
make_tiny "$TMP/tiny"
head -32 "$FIX/pairs.jsonl" > "$TMP/neg.jsonl" # two hard negatives per line
STEP=(--model "$TMP/tiny" --steps 1 --threads 1 --optimizer sgd --lr 1000 --weight-decay 0
      --max-grad-norm 0 --schedule constant --dropout 0.1)

for variant in plain symmetric; do
    extra=()
    [ $variant = symmetric ] && extra=(--symmetric --learn-temperature)
    for data in pairs neg; do
        if [ $data = pairs ]; then file="$FIX/pairs.jsonl"; else file="$TMP/neg.jsonl"; fi
        for c in 3 16 nocache; do
            if [ $c = nocache ]; then how=(--no-cache); else how=(--chunk-size $c); fi
            ok "$variant $data $c" "$G" train "${STEP[@]}" "${extra[@]}" --train "$file" \
                --batch-size 24 "${how[@]}" --out "$TMP/$variant-$data-$c"
        done
        base="$TMP/tiny/model.safetensors"
        tol=1e-5
        ok "$variant $data: chunk 3 == no cache" "$ST_DIFF" "$base" "$TMP/$variant-$data-3/model.safetensors" "$TMP/$variant-$data-nocache/model.safetensors" $tol
        ok "$variant $data: chunk 16 == no cache" "$ST_DIFF" "$base" "$TMP/$variant-$data-16/model.safetensors" "$TMP/$variant-$data-nocache/model.safetensors" $tol
        check "$variant $data: the step changed the weights" not cmp -s "$base" "$TMP/$variant-$data-3/model.safetensors"
    done
done
# the comparison itself can fail: dropout off gives another update
ok "dropout 0" "$G" train "${STEP[@]}" --dropout 0 --train "$FIX/pairs.jsonl" --batch-size 24 --chunk-size 3 --out "$TMP/nodrop"
check "st_diff notices a different update" not quiet "$ST_DIFF" "$TMP/tiny/model.safetensors" "$TMP/nodrop/model.safetensors" "$TMP/plain-pairs-nocache/model.safetensors" 1e-5

finish test_cli_exact
