# test_cli_formats.sh: what users bring: data lines of the sentence-transformers and
# FlagEmbedding/Tevatron shapes (and named fields), BEIR folders for eval and train --dev, and
# prompts (given or from the model folder, saved into --out, applied by encode --prompt-name).
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny"
BEIR="$SRC/tests/fixtures/beir"
T=(--model "$TMP/tiny" --batch-size 8 --steps 2 --threads 1)

# ---- shapes: the same pairs written three ways train the same model ----
python3 - "$FIX/pairs.jsonl" "$TMP" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][:32]
d = sys.argv[2]
with open(d + "/ours.jsonl", "w") as f:
    for r in rows: f.write(json.dumps({"query": r["query"], "positive": r["positive"]}) + "\n")
with open(d + "/st.jsonl", "w") as f:
    for r in rows: f.write(json.dumps({"anchor": r["query"], "positive": r["positive"], "id": 18446744073709551615}) + "\n")
with open(d + "/flag.jsonl", "w") as f:
    for r in rows: f.write(json.dumps({"query": r["query"], "pos": [r["positive"]], "neg": []}) + "\n")
with open(d + "/named.jsonl", "w") as f:
    for r in rows: f.write(json.dumps({"q": r["query"], "answers": [r["positive"]]}) + "\n")
with open(d + "/mixed.jsonl", "w") as f:
    for r in rows[:3]: f.write(json.dumps({"query": r["query"], "positive": r["positive"]}) + "\n")
    f.write(json.dumps({"anchor": "a", "positive": "b"}) + "\n")
with open(d + "/multi.jsonl", "w") as f:  # 8 queries with 4 positives each
    for i in range(8): f.write(json.dumps({"query": rows[i]["query"], "pos": [rows[4*j + i % 4]["positive"] + " %d" % i for j in range(4)]}) + "\n")
with open(d + "/texts.jsonl", "w") as f:
    for r in rows: f.write(json.dumps({"t": r["query"], "pt": "query: " + r["query"]}) + "\n")
PY
ok "train on our shape" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --out "$TMP/m_ours"
ok "train on the sentence-transformers shape" "$G" train "${T[@]}" --train "$TMP/st.jsonl" --out "$TMP/m_st"
check "the shape is named" grep -q "sentence-transformers" "$TMP/err"
ok "train on the FlagEmbedding shape" "$G" train "${T[@]}" --train "$TMP/flag.jsonl" --out "$TMP/m_flag"
ok "train on named fields" "$G" train "${T[@]}" --train "$TMP/named.jsonl" --query-field q --positive-field answers --out "$TMP/m_named"
check "ST shape trains the same model" cmp "$TMP/m_ours/model.safetensors" "$TMP/m_st/model.safetensors"
check "FlagEmbedding shape trains the same model" cmp "$TMP/m_ours/model.safetensors" "$TMP/m_flag/model.safetensors"
check "named fields train the same model" cmp "$TMP/m_ours/model.safetensors" "$TMP/m_named/model.safetensors"
fails "mixed shapes" 1 "mixed.jsonl:4: .*line 1 has the shape query/positive/negatives" "$G" train "${T[@]}" --train "$TMP/mixed.jsonl" --out "$TMP/m_mixed"
fails "a named field missing" 1 "named.jsonl:1: missing \"query\"" "$G" train "${T[@]}" --train "$TMP/named.jsonl" --positive-field answers --out "$TMP/m_x"
ok "pos lists: 32 pairs of 8 queries in batches of 8" "$G" train "${T[@]}" --train "$TMP/multi.jsonl" --out "$TMP/m_multi"
check "pos lists: 32 pairs read" grep -q "32 pairs" "$TMP/err"
fails "pos lists: a batch of 9 cannot avoid two positives of one query" 2 "" "$G" train "${T[@]}" --batch-size 9 --train "$TMP/multi.jsonl" --out "$TMP/m_multi9"
ok "eval reads the FlagEmbedding shape" "$G" eval --model "$TMP/tiny" --data "$TMP/flag.jsonl" --threads 1

# ---- BEIR ----
ok "eval --beir" "$G" eval --model "$TMP/tiny" --beir "$BEIR" --threads 1
check "eval --beir prints the six metrics of 13 queries" grep -qE '^\{"ndcg@10": [0-9.]+, "mrr@10": [0-9.]+, "recall@1": [0-9.]+, "recall@10": [0-9.]+, "recall@100": [0-9.]+, "map@100": [0-9.]+, "n": 13\}$' "$TMP/out"
ok "eval --beir --split dev" "$G" eval --model "$TMP/tiny" --beir "$BEIR" --split dev --threads 1
check "the dev split has 4 queries" grep -q '"n": 4}' "$TMP/out"
fails "eval --beir, a split without qrels" 1 "qrels/nope.tsv" "$G" eval --model "$TMP/tiny" --beir "$BEIR" --split nope
fails "eval --beir and --data" 2 "not both" "$G" eval --model "$TMP/tiny" --beir "$BEIR" --data "$TMP/ours.jsonl"
fails "eval --beir with --k" 2 "--k goes with --data" "$G" eval --model "$TMP/tiny" --beir "$BEIR" --k 5
fails "eval --split without --beir" 2 "--split" "$G" eval --model "$TMP/tiny" --data "$TMP/ours.jsonl" --split dev
mkdir -p "$TMP/badbeir/qrels"
cp "$BEIR/corpus.jsonl" "$BEIR/queries.jsonl" "$TMP/badbeir/"
printf 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n' > "$TMP/badbeir/qrels/test.tsv"
fails "eval --beir, a bad qrels line" 1 "qrels/test.tsv:3" "$G" eval --model "$TMP/tiny" --beir "$TMP/badbeir"
ok "train --dev BEIR" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --dev "$BEIR" --dev-split dev --out "$TMP/m_dev"
check "train --dev BEIR prints the final metrics" grep -qE '"map@100": [0-9.]+, "n": 4\}$' "$TMP/out"
fails "--dev-split without a BEIR --dev" 2 "dev-split" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --dev "$TMP/ours.jsonl" --dev-split dev --out "$TMP/m_x"

# ---- prompts ----
ok "train with prompts" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --query-prompt "query: " --passage-prompt "passage: " --out "$TMP/m_p" --save-every 1 --stop-after 1
check "prompts saved" python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); p=c["prompts"]; sys.exit(not (p["query"]=="query: " and p["passage"]=="passage: " and "document" not in p and c["similarity_fn_name"]=="cosine"))' "$TMP/m_p/config_sentence_transformers.json"
check "prompts change training" not cmp -s "$TMP/m_p/model.safetensors" "$TMP/m_ours/model.safetensors"
fails "resume with another prompt" 1 "" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --query-prompt "q: " --passage-prompt "passage: " --out "$TMP/m_p" --resume
fails "resume with another --max-query-len (the CLI's part of the checkpoint's options)" 1 "max_query_len=32 but this run has max_query_len=20" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --query-prompt "query: " --passage-prompt "passage: " --max-query-len 20 --out "$TMP/m_p" --resume
ok "resume with the same prompts" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --query-prompt "query: " --passage-prompt "passage: " --out "$TMP/m_p" --resume
ok "encode --prompt-name query" "$G" encode --model "$TMP/m_p" --input "$TMP/texts.jsonl" --field t --prompt-name query --out "$TMP/e1.npy" --threads 1
ok "encode the prompt written out" "$G" encode --model "$TMP/m_p" --input "$TMP/texts.jsonl" --field pt --out "$TMP/e2.npy" --threads 1
check "--prompt-name puts the prompt before the text" cmp "$TMP/e1.npy" "$TMP/e2.npy"
ok "encode without a prompt" "$G" encode --model "$TMP/m_p" --input "$TMP/texts.jsonl" --field t --out "$TMP/e3.npy" --threads 1
check "without --prompt-name the embeddings differ" not cmp -s "$TMP/e1.npy" "$TMP/e3.npy"
fails "encode --prompt-name unknown" 1 "no such prompt" "$G" encode --model "$TMP/m_p" --input "$TMP/texts.jsonl" --field t --prompt-name classification --out "$TMP/e4.npy"
check "no .npy after an unknown prompt" test ! -e "$TMP/e4.npy"
# eval applies the folder's prompts by default, and an explicit prompt replaces them
ok "eval with the folder's prompts" "$G" eval --model "$TMP/m_p" --data "$TMP/ours.jsonl" --threads 1
cp "$TMP/out" "$TMP/eval_folder.json"
ok "eval with the same prompts given" "$G" eval --model "$TMP/m_p" --data "$TMP/ours.jsonl" --query-prompt "query: " --passage-prompt "passage: " --threads 1
check "the folder's prompts are the default" cmp "$TMP/out" "$TMP/eval_folder.json"
ok "train from a folder with prompts" "$G" train "${T[@]}" --train "$TMP/ours.jsonl" --model "$TMP/m_p" --out "$TMP/m_p2"
check "the starting folder's prompts are used and kept" python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["prompts"]; sys.exit(p.get("query")!="query: ")' "$TMP/m_p2/config_sentence_transformers.json"
check "and noted" grep -q 'prompts: query "query: "' "$TMP/err"

finish test_cli_formats
