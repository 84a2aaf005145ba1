# test_cli_errors.sh: bad input of every kind gives one 'gradcache: error:' line naming the
# problem (file:line for data), exit 2 for usage errors and 1 otherwise, never a crash, and
# no partial output.
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny"
D="$FIX/pairs.jsonl"
T=(--model "$TMP/tiny" --batch-size 8 --steps 1 --threads 1)

# ---- data files ----
printf '{"query": "a", "positive": "b"}\n{"query": "c", "positive": "d"}\n{"query": "e", "positive": \n' > "$TMP/trunc.jsonl"
fails "truncated JSON line" 1 "trunc.jsonl:3" "$G" train "${T[@]}" --train "$TMP/trunc.jsonl" --out "$TMP/o1"
check "no --out after a failed run" test ! -e "$TMP/o1"
printf '{"query": "a", "positive": "b"}\n{"query": "c" "positive": "d"}\n' > "$TMP/bad.jsonl"
fails "malformed JSON" 1 "bad.jsonl:2" "$G" train "${T[@]}" --train "$TMP/bad.jsonl" --out "$TMP/o1"
printf '{"query": "a", "positive": "b"}\n{"query": "c"}\n' > "$TMP/missing.jsonl"
fails "missing field" 1 "missing.jsonl:2.*positive" "$G" train "${T[@]}" --train "$TMP/missing.jsonl" --out "$TMP/o1"
printf '{"query": "a", "positive": 5}\n' > "$TMP/nonstr.jsonl"
fails "non-string field" 1 "nonstr.jsonl:1" "$G" eval --model "$TMP/tiny" --data "$TMP/nonstr.jsonl"
printf '[1, 2]\n' > "$TMP/array.jsonl"
fails "not an object" 1 "array.jsonl:1" "$G" eval --model "$TMP/tiny" --data "$TMP/array.jsonl"
printf '{"query": "a", "positive": "b", "negatives": "c"}\n' > "$TMP/negstr.jsonl"
fails "negatives not an array" 1 "negstr.jsonl:1" "$G" eval --model "$TMP/tiny" --data "$TMP/negstr.jsonl"
: > "$TMP/empty.jsonl"
fails "empty file" 1 "empty" "$G" train "${T[@]}" --train "$TMP/empty.jsonl" --out "$TMP/o1"
printf '\n\n  \n' > "$TMP/blank.jsonl"
fails "only blank lines" 1 "blank.jsonl" "$G" eval --model "$TMP/tiny" --data "$TMP/blank.jsonl"
printf '{"query": "a", "positive": "b"}\n{"query": "caf\xe9", "positive": "d"}\n' > "$TMP/latin1.jsonl"
fails "non-UTF-8" 1 "latin1.jsonl:2" "$G" train "${T[@]}" --train "$TMP/latin1.jsonl" --out "$TMP/o1"
fails "non-UTF-8 (encode)" 1 "latin1.jsonl:2" "$G" encode --model "$TMP/tiny" --input "$TMP/latin1.jsonl" --field query --out "$TMP/x.npy"
check "no .npy after a failed encode" test ! -e "$TMP/x.npy"
printf '{"query": "a\\u0000b", "positive": "d"}\n' > "$TMP/nul.jsonl"
fails "NUL inside a string" 1 "nul.jsonl:1" "$G" eval --model "$TMP/tiny" --data "$TMP/nul.jsonl"
printf '{"query": "a", "positive": "b"}\x00garbage\n' > "$TMP/binary.jsonl"
fails "binary garbage" 1 "binary.jsonl:1" "$G" eval --model "$TMP/tiny" --data "$TMP/binary.jsonl"
fails "missing data file" 1 "nothere.jsonl" "$G" eval --model "$TMP/tiny" --data "$TMP/nothere.jsonl"
fails "a folder as data" 1 "" "$G" eval --model "$TMP/tiny" --data "$TMP"

# gzip: detected by content; a plain file named .gz is fine, a broken stream is not
cp "$D" "$TMP/plain.jsonl.gz"
ok "plain JSONL named .gz" "$G" eval --model "$TMP/tiny" --data "$TMP/plain.jsonl.gz" --threads 1
ok "plain JSONL named .gz (encode)" "$G" encode --model "$TMP/tiny" --input "$TMP/plain.jsonl.gz" --field positive --out "$TMP/p.npy"
gzip -c "$D" > "$TMP/good.jsonl.gz"
head -c 700 "$TMP/good.jsonl.gz" > "$TMP/cut.jsonl.gz"
fails "truncated gzip" 1 "cut.jsonl.gz" "$G" train "${T[@]}" --train "$TMP/cut.jsonl.gz" --out "$TMP/o1"
fails "truncated gzip (encode)" 1 "cut.jsonl.gz" "$G" encode --model "$TMP/tiny" --input "$TMP/cut.jsonl.gz" --field query --out "$TMP/x.npy"
cp "$TMP/good.jsonl.gz" "$TMP/corrupt.jsonl.gz"
printf 'XXXXXXXXXXXXXXXX' | dd of="$TMP/corrupt.jsonl.gz" bs=1 seek=400 conv=notrunc 2>/dev/null
fails "corrupt gzip" 1 "corrupt.jsonl.gz" "$G" eval --model "$TMP/tiny" --data "$TMP/corrupt.jsonl.gz"
fails "corrupt gzip (encode)" 1 "corrupt.jsonl.gz" "$G" encode --model "$TMP/tiny" --input "$TMP/corrupt.jsonl.gz" --field query --out "$TMP/x.npy"
check "no .npy after failed encodes" test ! -e "$TMP/x.npy"
fails "encode: missing field" 1 "pairs.jsonl:1.*nofield" "$G" encode --model "$TMP/tiny" --input "$D" --field nofield --out "$TMP/x.npy"

# ---- hard negatives ----
fails "more negatives than the data has" 1 "has only 0 negatives" "$G" train "${T[@]}" --train "$D" --negatives 1 --out "$TMP/o1"
head -32 "$D" > "$TMP/neg.jsonl"
fails "more negatives than any line has" 1 "has only 2" "$G" train "${T[@]}" --train "$TMP/neg.jsonl" --negatives 3 --out "$TMP/o1"

# ---- models ----
fails "missing model folder" 1 "nomodel" "$G" eval --model "$TMP/nomodel" --data "$D"
cp -r "$TMP/tiny" "$TMP/noweights"; rm "$TMP/noweights/model.safetensors"
fails "model without weights" 1 "model.safetensors" "$G" train "${T[@]}" --model "$TMP/noweights" --train "$D" --out "$TMP/o1"
cp -r "$TMP/tiny" "$TMP/novocab"; rm "$TMP/novocab/vocab.txt"
fails "model without a vocabulary" 1 "vocab" "$G" encode --model "$TMP/novocab" --input "$D" --field query --out "$TMP/x.npy"
cp -r "$TMP/tiny" "$TMP/badweights"; head -c 100 "$TMP/tiny/model.safetensors" > "$TMP/badweights/model.safetensors"
fails "truncated weights" 1 "safetensors" "$G" eval --model "$TMP/badweights" --data "$D"
fails "max length beyond the model" 2 "positions" "$G" train "${T[@]}" --train "$D" --max-passage-len 1000 --out "$TMP/o1"

# ---- numbers and options ----
for bad in "--chunk-size 0" "--chunk-size -3" "--batch-size -1" "--batch-size 0" "--batch-size 1.5" \
           "--batch-size 12abc" "--batch-size ''" "--batch-size 99999999999999999999" \
           "--lr nan" "--lr inf" "--lr -1" "--lr 1e-3x" "--lr 1e999" "--temperature 0" \
           "--dropout 1" "--dropout -0.1" "--steps 0" "--epochs -1" "--warmup -2" "--threads 0" \
           "--accumulation-steps 0" "--max-grad-norm nan" "--weight-decay -0.1" "--negatives -1" \
           "--max-query-len 1" "--seed -5" "--optimizer adam" "--schedule cosine" \
           "--accumulation-steps 3" "--steps 2 --epochs 1" "--frobnicate" "--no-cache=1" "extra" \
           "--steps"; do
    eval "fails \"train $bad\" 2 \"\" \"\$G\" train --model \"\$TMP/tiny\" --train \"\$D\" --out \"\$TMP/o1\" --batch-size 8 $bad"
done
check "no --out after usage errors" test ! -e "$TMP/o1"
fails "missing --train" 2 "train is required" "$G" train --model "$TMP/tiny" --out "$TMP/o1"
fails "missing --model" 2 "model is required" "$G" eval --data "$D"
fails "eval --k 0" 2 "--k" "$G" eval --model "$TMP/tiny" --data "$D" --k 0
fails "eval --k 1,,2" 2 "--k" "$G" eval --model "$TMP/tiny" --data "$D" --k 1,,2
fails "eval --k x" 2 "--k" "$G" eval --model "$TMP/tiny" --data "$D" --k x
fails "encode --batch-size 0" 2 "batch-size" "$G" encode --model "$TMP/tiny" --input "$D" --field query --out "$TMP/x.npy" --batch-size 0
fails "batch larger than the data" 2 "larger than the data" "$G" train --model "$TMP/tiny" --train "$D" --out "$TMP/o1" --batch-size 65 --steps 1
fails "batch larger than the distinct positives" 2 "distinct positives" "$G" train --model "$TMP/tiny" --train "$D" --out "$TMP/o1" --batch-size 64 --steps 1
# pair 2's hard negative is pair 1's positive, so all four pairs never share one batch
printf '{"query": "q one", "positive": "alpha", "negatives": ["x"]}\n{"query": "q two", "positive": "beta", "negatives": ["alpha"]}\n{"query": "q three", "positive": "gamma", "negatives": ["y"]}\n{"query": "q four", "positive": "delta", "negatives": ["z"]}\n' > "$TMP/falseneg.jsonl"
fails "a hard negative equal to another pair's positive" 2 "hard negative equal to another pair's positive" "$G" train --model "$TMP/tiny" --train "$TMP/falseneg.jsonl" --out "$TMP/o1" --batch-size 4 --steps 1
ok "batches that keep them apart" "$G" train --model "$TMP/tiny" --train "$TMP/falseneg.jsonl" --out "$TMP/o1" --batch-size 2 --epochs 1 --threads 1 --log "$TMP/falseneg.log"
check "one epoch of 2 batches, or 1 when the order strands a pair" grep -qE '"step": [12], "epoch": 0' "$TMP/falseneg.log"
rm -rf "$TMP/o1"
check "no --out after these" test ! -e "$TMP/o1"

# ---- output folders ----
: > "$TMP/afile"
fails "unwritable --out (under a file)" 1 "out" "$G" train "${T[@]}" --train "$D" --out "$TMP/afile/sub"
fails "--out is a file" 1 "not a folder" "$G" train "${T[@]}" --train "$D" --out "$TMP/afile"
fails "encode to an unwritable place" 1 "" "$G" encode --model "$TMP/tiny" --input "$D" --field query --out "$TMP/afile/x.npy"
fails "init into a file's folder" 1 "" "$G" init --config "$FIX/tiny_config.json" --vocab "$FIX/vocab.txt" --out "$TMP/afile/m"
fails "--log unwritable" 1 "log" "$G" train "${T[@]}" --train "$D" --out "$TMP/o2" --log "$TMP/afile/log"

# ---- init inputs ----
printf '{"hidden_size": 32}\n' > "$TMP/partial_config.json"
fails "init: incomplete config" 1 "" "$G" init --config "$TMP/partial_config.json" --vocab "$FIX/vocab.txt" --out "$TMP/m1"
printf '{"hidden_size": 32,' > "$TMP/broken_config.json"
fails "init: broken config JSON" 1 "broken_config" "$G" init --config "$TMP/broken_config.json" --vocab "$FIX/vocab.txt" --out "$TMP/m1"
printf 'a\nb\nc\n' > "$TMP/small_vocab.txt"
fails "init: vocabulary without special tokens" 1 "" "$G" init --config "$FIX/tiny_config.json" --vocab "$TMP/small_vocab.txt" --out "$TMP/m1"
sed 's/"vocab_size": 837/"vocab_size": 100/' "$FIX/tiny_config.json" > "$TMP/smallvocab_config.json"
fails "init: vocabulary larger than vocab_size" 1 "vocab_size" "$G" init --config "$TMP/smallvocab_config.json" --vocab "$FIX/vocab.txt" --out "$TMP/m1"
check "no model folder after failed inits" test ! -e "$TMP/m1"
check "no temporary folders left" test -z "$(ls -A "$TMP" | grep '^\.')"

# ---- a diverging run stops, keeps its last good checkpoint ----
DIV=(--model "$TMP/tiny" --train "$D" --batch-size 16 --steps 5 --threads 1 --optimizer sgd --lr 1e30 --max-grad-norm 0 --save-every 1)
fails "NaN loss stops training" 1 "non-finite|not finite|diverged" "$G" train "${DIV[@]}" --out "$TMP/div" --log "$TMP/div.log"
check "diverged after one good step" test "$(grep -c '"loss"' "$TMP/div.log")" -eq 1
check "the good checkpoint is kept" test -s "$TMP/div/training_state/checkpoint.bin"
ok "the kept checkpoint is whole (resume to its own step)" "$G" train "${DIV[@]}" --steps 1 --out "$TMP/div" --resume

finish test_cli_errors
