# test_cli_basic.sh: every subcommand on a tiny model made by `gradcache init`: help and
# version, init, encode, eval, train (plain, hard negatives, accumulation, learnable
# temperature, symmetric, --dev, data through a pipe), and the shape of what each writes.
. "$(dirname "$0")/lib.sh"

# ---- help and version: stdout, exit 0, every advertised option accepted ----
ok "--help" "$G" --help
check "--help on stdout" grep -q "Usage: gradcache <command>" "$TMP/out"
ok "--version" "$G" --version
check "--version text" grep -qE "^gradcache [0-9]+\.[0-9]+\.[0-9]+$" "$TMP/out"
check "--version names the kernel path" grep -qE "^kernels: (generic|avx2|avx512)$" "$TMP/out"
check "--version says whether bf16 is native" grep -qE "^bf16 native: (yes|no) \(oneDNN ISA [a-z0-9_]+" "$TMP/out"
ok "--version under GC_CPU=generic" env GC_CPU=generic "$G" --version
check "GC_CPU=generic selects the generic kernels" grep -qx "kernels: generic" "$TMP/out"
for cmd in train encode eval init; do
    ok "$cmd --help" "$G" $cmd --help
    check "$cmd --help on stdout" grep -q "Usage: gradcache $cmd" "$TMP/out"
    check "$cmd --help nothing on stderr" test ! -s "$TMP/err"
    cp "$TMP/out" "$TMP/help_$cmd"
    # every option the help names must be known to the parser
    for opt in $(grep -oE -- '--[a-z][a-z-]+' "$TMP/help_$cmd" | sort -u); do
        "$G" $cmd "$opt" >/dev/null 2>"$TMP/err"
        if grep -q "unknown option" "$TMP/err"; then fail "$cmd --help names $opt, which is unknown"; else pass; fi
    done
done
fails "no command" 2 "unknown command" "$G" frobnicate

# ---- init ----
ok "init" make_tiny "$TMP/tiny"
for f in config.json model.safetensors modules.json sentence_bert_config.json \
         1_Pooling/config.json vocab.txt tokenizer_config.json special_tokens_map.json; do
    check "init wrote $f" test -s "$TMP/tiny/$f"
done
check "init config hidden 32" grep -q '"hidden_size": 32' "$TMP/tiny/config.json"
check "init leaves no temporary folders" test -z "$(ls -A "$TMP" | grep '^\.')"
fails "init into a non-empty folder" 1 "not empty" make_tiny "$TMP/tiny"
mkdir -p "$TMP/empty"
ok "init into an empty folder" make_tiny "$TMP/empty"
ok "init with another seed" make_tiny "$TMP/tiny2" 8
check "seeds give different weights" not cmp -s "$TMP/tiny/model.safetensors" "$TMP/tiny2/model.safetensors"
ok "init is deterministic" make_tiny "$TMP/tiny3" 7
check "same seed, same weights" cmp -s "$TMP/tiny/model.safetensors" "$TMP/tiny3/model.safetensors"

# ---- encode ----
ok "encode" "$G" encode --model "$TMP/tiny" --input "$FIX/pairs.jsonl" --field query --out "$TMP/q.npy" --threads 1
check "encode .npy magic" grep -qa "NUMPY" "$TMP/q.npy"
check "encode shape (64, 32)" grep -qa "'shape': (64, 32)" "$TMP/q.npy"
check "encode size" test "$(stat -c %s "$TMP/q.npy")" -eq $((128 + 64 * 32 * 4))
gzip -c "$FIX/pairs.jsonl" > "$TMP/pairs.jsonl.gz"
ok "encode gzip, other batch size" "$G" encode --model "$TMP/tiny" --input "$TMP/pairs.jsonl.gz" --field query --out "$TMP/q2.npy" --batch-size 5 --threads 1
check "batch size does not change embeddings much" test "$(stat -c %s "$TMP/q2.npy")" -eq "$(stat -c %s "$TMP/q.npy")"
printf '{"text": "alpha beta"}\n\n{"text": "gamma", "x": 1}\n' > "$TMP/texts.jsonl"
ok "encode any field, blank lines skipped" "$G" encode --model "$TMP/tiny" --input "$TMP/texts.jsonl" --field text --out "$TMP/t.npy"
check "encode 2 rows" grep -qa "'shape': (2, 32)" "$TMP/t.npy"
ok "encode from a pipe" "$G" encode --model "$TMP/tiny" --input <(zcat "$TMP/pairs.jsonl.gz") --field query --out "$TMP/q3.npy" --threads 1
check "a pipe gives the same embeddings" cmp -s "$TMP/q.npy" "$TMP/q3.npy"

# ---- eval ----
ok "eval" "$G" eval --model "$TMP/tiny" --data "$FIX/pairs.jsonl" --threads 1
check "eval prints one line" test "$(wc -l < "$TMP/out")" -eq 1
for key in '"recall@1"' '"recall@10"' '"recall@100"' '"mrr@10"' '"ndcg@10"' '"n": 64'; do
    check "eval has $key" grep -q "$key" "$TMP/out"
done
check "eval recall@100 of 64 docs is 1" grep -q '"recall@100": 1.000000' "$TMP/out"
ok "eval --k" "$G" eval --model "$TMP/tiny" --data "$FIX/pairs.jsonl" --k 2,5 --threads 1
check "eval --k 2,5" grep -q '"recall@2": .*"recall@5"' "$TMP/out"
check "eval --k drops the default" not grep -q '"recall@100"' "$TMP/out"

# ---- train ----
ok "train" "$G" train --model "$TMP/tiny" --train "$FIX/pairs.jsonl" --out "$TMP/m1" \
    --batch-size 16 --chunk-size 5 --steps 3 --threads 1 --log "$TMP/m1.log"
for f in config.json model.safetensors modules.json sentence_bert_config.json \
         1_Pooling/config.json vocab.txt tokenizer_config.json training_state/checkpoint.bin; do
    check "train wrote $f" test -s "$TMP/m1/$f"
done
check "train log has 3 steps" test "$(grep -c '"step"' "$TMP/m1.log")" -eq 3
for key in step loss lr temperature grad_norm pairs_per_s; do
    check "log has $key" grep -q "\"$key\": " "$TMP/m1.log"
done
check "weights changed" not cmp -s "$TMP/tiny/model.safetensors" "$TMP/m1/model.safetensors"
ok "train from a pipe" "$G" train --model "$TMP/tiny" --train <(zcat "$TMP/pairs.jsonl.gz") --out "$TMP/m1p" \
    --batch-size 16 --chunk-size 5 --steps 3 --threads 1
check "a pipe trains the same model" cmp -s "$TMP/m1/model.safetensors" "$TMP/m1p/model.safetensors"
ok "eval from a pipe" "$G" eval --model "$TMP/tiny" --data <(cat "$TMP/pairs.jsonl.gz") --threads 1
ok "trained model evaluates" "$G" eval --model "$TMP/m1" --data "$FIX/pairs.jsonl" --threads 1
fails "an existing run is not overwritten" 1 "resume" "$G" train --model "$TMP/tiny" --train "$FIX/pairs.jsonl" --out "$TMP/m1" --batch-size 16 --steps 1

head -32 "$FIX/pairs.jsonl" > "$TMP/neg.jsonl"
ok "train with hard negatives" "$G" train --model "$TMP/tiny" --train "$TMP/neg.jsonl" --out "$TMP/m2" \
    --batch-size 8 --chunk-size 3 --steps 2 --threads 1 --log "$TMP/m2.log"
check "hard negatives used" grep -q "2 hard negatives" "$TMP/err"
ok "train --negatives 1, accumulation, symmetric, learnable temperature" "$G" train --model "$TMP/tiny" \
    --train "$TMP/neg.jsonl" --out "$TMP/m3" --batch-size 8 --accumulation-steps 2 --negatives 1 \
    --symmetric --learn-temperature --lr 1e-2 --steps 3 --threads 1 --log "$TMP/m3.log"
check "temperature learned" test "$(grep -o '"temperature": [0-9.e-]*' "$TMP/m3.log" | sort -u | wc -l)" -gt 1
ok "train --epochs 1 with a duplicate positive" "$G" train --model "$TMP/tiny" --train "$FIX/pairs.jsonl" \
    --out "$TMP/m4" --batch-size 16 --epochs 1 --threads 1 --log "$TMP/m4.log" --schedule constant --warmup 1
check "one epoch is 3 or 4 steps" grep -qE '"step": [34], "epoch": 0' "$TMP/m4.log"
check "warmup starts at lr 0" grep -q '"step": 1, .*"lr": 0,' "$TMP/m4.log"
ok "train --dev" "$G" train --model "$TMP/tiny" --train "$FIX/pairs.jsonl" --dev "$FIX/pairs.jsonl" \
    --out "$TMP/m5" --batch-size 32 --steps 2 --save-every 1 --threads 1 --log "$TMP/m5.log"
check "--dev prints the final metrics on stdout" grep -q '"mrr@10"' "$TMP/out"
check "--dev metrics logged before, at the save and at the end" test "$(grep -c '"dev"' "$TMP/m5.log")" -eq 3
ok "train --no-cache, separate chunk sizes, sgd" "$G" train --model "$TMP/tiny" --train "$TMP/neg.jsonl" \
    --out "$TMP/m6" --batch-size 8 --no-cache --steps 1 --optimizer sgd --lr 0.1 --threads 1
ok "train with query/passage chunk sizes" "$G" train --model "$TMP/tiny" --train "$TMP/neg.jsonl" \
    --out "$TMP/m7" --batch-size 8 --query-chunk-size 2 --passage-chunk-size 7 --steps 1 --threads 2 \
    --max-query-len 8 --max-passage-len 16 --dropout 0 --weight-decay 0 --max-grad-norm 0.5

finish test_cli_basic
