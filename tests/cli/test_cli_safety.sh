# test_cli_safety.sh: what the command line may read, write, replace and echo (issue 12,
# defects 1-12 and 15-17; the kill and disk-full tests are test_cli_kill.sh and
# test_cli_diskfull.sh). Each block names its defect.
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny"
D="$FIX/pairs.jsonl"
T=(--train "$D" --batch-size 16 --chunk-size 8 --threads 1 --lr 1e-3)
# the checkpoint of a trained folder, wherever the layout keeps it
ckpt() { if [ -e "$1/training_state/checkpoint.bin" ]; then echo "$1/training_state/checkpoint.bin"; else echo "$1/checkpoint.bin"; fi; }

# 1. tokenizer files: a symlink out of the model folder is not copied into --out; a copy keeps
#    the stricter of the source's mode and 0644
cp -r "$TMP/tiny" "$TMP/m1"
printf '{"secret": "PRIVATE-KEY-MATERIAL"}\n' > "$TMP/secret.json"
chmod 600 "$TMP/secret.json"
rm "$TMP/m1/special_tokens_map.json"
ln -s "$TMP/secret.json" "$TMP/m1/special_tokens_map.json"
chmod 600 "$TMP/m1/vocab.txt"
ok "1: train from a model with a symlinked tokenizer file" "$G" train --model "$TMP/m1" "${T[@]}" --steps 1 --out "$TMP/o1"
check "1: the symlink's target is not in --out" not grep -rq PRIVATE-KEY "$TMP/o1"
check "1: a 0600 vocab.txt stays 0600 (got $(stat -c %a "$TMP/o1/vocab.txt" 2>/dev/null))" test "$(stat -c %a "$TMP/o1/vocab.txt" 2>/dev/null)" = 600
check "1: a new JSON file is 0644" test "$(stat -c %a "$TMP/o1/config.json")" = 644

# 2. encode --out: a FIFO is written in place, a symlink stays a symlink
printf '{"text": "hello world"}\n{"text": "a b c"}\n' > "$TMP/texts.jsonl"
E=(encode --model "$TMP/tiny" --input "$TMP/texts.jsonl" --field text --threads 1)
ok "2: encode to a file" "$G" "${E[@]}" --out "$TMP/ref.npy"
mkfifo "$TMP/fifo2"
timeout 120 cat "$TMP/fifo2" > "$TMP/fromfifo.npy" &
reader=$!
"$G" "${E[@]}" --out "$TMP/fifo2" >/dev/null 2>"$TMP/err2"
check "2: the FIFO is still a FIFO" test -p "$TMP/fifo2"
[ -p "$TMP/fifo2" ] && { exec 4<>"$TMP/fifo2"; exec 4>&-; } # never blocks; lets a waiting reader finish
wait $reader
check "2: what went through the FIFO is the embeddings" cmp -s "$TMP/ref.npy" "$TMP/fromfifo.npy"
echo old > "$TMP/target2.npy"
ln -s "$TMP/target2.npy" "$TMP/link2.npy"
"$G" "${E[@]}" --out "$TMP/link2.npy" >/dev/null 2>&1
check "2: a symlink --out stays a symlink" test -L "$TMP/link2.npy"
check "2: ... and its target got the embeddings" cmp -s "$TMP/ref.npy" "$TMP/target2.npy"

# 3. no input is opened for writing: --log naming the data or a model file, encode --out
#    naming its input
cp "$D" "$TMP/d3.jsonl"
cp -r "$TMP/tiny" "$TMP/m3"
fails "3: --log is the training data" - "input|same file" "$G" train --model "$TMP/tiny" "${T[@]}" --train "$TMP/d3.jsonl" --steps 1 --out "$TMP/o3a" --log "$TMP/d3.jsonl"
check "3: the data is untouched" cmp -s "$D" "$TMP/d3.jsonl"
ln "$TMP/d3.jsonl" "$TMP/d3-hardlink.jsonl"
fails "3: --log is a hard link of the data" - "input|same file" "$G" train --model "$TMP/tiny" "${T[@]}" --train "$TMP/d3.jsonl" --steps 1 --out "$TMP/o3b" --log "$TMP/d3-hardlink.jsonl"
check "3: the data is untouched (hard link)" cmp -s "$D" "$TMP/d3.jsonl"
cp "$TMP/m3/model.safetensors" "$TMP/w3.safetensors"
fails "3: --log is the model's weights" - "input|same file" "$G" train --model "$TMP/m3" "${T[@]}" --steps 1 --out "$TMP/o3c" --log "$TMP/m3/model.safetensors"
check "3: the weights are untouched" cmp -s "$TMP/w3.safetensors" "$TMP/m3/model.safetensors"
fails "3: --log is the dev data" - "input|same file" "$G" train --model "$TMP/tiny" "${T[@]}" --dev "$TMP/d3.jsonl" --steps 1 --out "$TMP/o3d" --log "$TMP/d3.jsonl"
check "3: the dev data is untouched" cmp -s "$D" "$TMP/d3.jsonl"
cp "$TMP/texts.jsonl" "$TMP/t3.jsonl"
fails "3: encode --out is its input" - "input|same file" "$G" encode --model "$TMP/tiny" --input "$TMP/t3.jsonl" --field text --out "$TMP/t3.jsonl"
check "3: the input is untouched" cmp -s "$TMP/texts.jsonl" "$TMP/t3.jsonl"
mkdir -p "$TMP/o3e"
fails "3: --log inside --out (every save replaces --out)" 2 "inside --out" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/o3e" --log "$TMP/o3e/log.jsonl"
rmdir "$TMP/o3e"
check "3: no --out was made" test -z "$(ls -d "$TMP"/o3? 2>/dev/null)"

# 4. a non-empty --out without a checkpoint needs --overwrite; --out may never be --model
cp -r "$TMP/tiny" "$TMP/m4"
cp "$TMP/m4/model.safetensors" "$TMP/w4.safetensors"
fails "4: --out is --model" - "model|overwrite" "$G" train --model "$TMP/m4" "${T[@]}" --steps 1 --out "$TMP/m4"
check "4: the starting model is untouched" cmp -s "$TMP/w4.safetensors" "$TMP/m4/model.safetensors"
fails "4: --out is --model, even with --overwrite" - "model" "$G" train --model "$TMP/m4" "${T[@]}" --steps 1 --out "$TMP/m4" --overwrite
check "4: the starting model is untouched (--overwrite)" cmp -s "$TMP/w4.safetensors" "$TMP/m4/model.safetensors"
make_tiny "$TMP/other4" 11
cp "$TMP/other4/model.safetensors" "$TMP/w4o.safetensors"
echo note > "$TMP/other4/README.md"
fails "4: --out holds another model" - "overwrite" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/other4"
check "4: the other model is untouched" cmp -s "$TMP/w4o.safetensors" "$TMP/other4/model.safetensors"
ok "4: --overwrite replaces the folder" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/other4" --overwrite
check "4: ... as a whole: nothing of the old folder is left" test ! -e "$TMP/other4/README.md"
mkdir "$TMP/empty4"
ok "4: an empty --out is fine" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/empty4"

# 5. one writer per --out: a second trainer on a busy folder is refused, naming the holder
mkfifo "$TMP/fifo5"
"$G" train --model "$TMP/tiny" "${T[@]}" --steps 100000 --out "$TMP/o5" --log "$TMP/fifo5" 2>"$TMP/err5a" &
pid5=$!
exec 5<>"$TMP/fifo5"
first=""
read -t 300 -r first <&5
check "5: the first trainer runs" test -n "$first"
fails "5: a second trainer on the same --out" - "lock|in use|pid $pid5" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 2 --out "$TMP/o5"
fails "5: ... also with --resume" - "lock|in use|pid $pid5" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 2 --out "$TMP/o5" --resume
kill -KILL $pid5
wait $pid5 2>/dev/null
exec 5<&-

# 6. a checkpoint is bound to the starting model and its tokenizer
ok "6: a first part" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 3 --stop-after 1 --out "$TMP/o6"
make_tiny "$TMP/tiny_other" 9
cp -r "$TMP/o6" "$TMP/o6b"
fails "6: resume with another start model of the same shape" - "model" "$G" train --model "$TMP/tiny_other" "${T[@]}" --steps 3 --out "$TMP/o6" --resume
cp -r "$TMP/tiny" "$TMP/tiny_tok"
sed "500s/\$/q/" "$TMP/tiny/vocab.txt" > "$TMP/tiny_tok/vocab.txt"
check "6: the tokenizer really differs" not cmp -s "$TMP/tiny/vocab.txt" "$TMP/tiny_tok/vocab.txt"
fails "6: resume with another tokenizer" - "tokenizer" "$G" train --model "$TMP/tiny_tok" "${T[@]}" --steps 3 --out "$TMP/o6b" --resume
ok "6: resume with the same model" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 3 --out "$TMP/o6" --resume

# 7. a failed first save leaves no --out behind (the disk-full test covers the rest)
mkdir "$TMP/ro7"
( trap '' XFSZ; ulimit -f 400; exec "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/ro7/out" ) >/dev/null 2>"$TMP/err7"
rc7=$?
check "7: the save that cannot fit fails (exit $rc7)" test $rc7 -eq 1
check "7: no --out is left behind" test ! -e "$TMP/ro7/out"
check "7: nothing half-written is left beside it" test -z "$(ls -A "$TMP/ro7")"

# 8. a vocabulary larger than the config's vocab_size is refused at load
cp -r "$TMP/tiny" "$TMP/m8"
printf 'zzextra1\nzzextra2\nzzextra3\n' >> "$TMP/m8/vocab.txt"
fails "8: vocab.txt larger than vocab_size" - "vocab" "$G" encode --model "$TMP/m8" --input "$TMP/texts.jsonl" --field text --out "$TMP/o8.npy"

# 9. temporaries of an interrupted save are removed by the next start
ok "9: a first part" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 2 --stop-after 1 --out "$TMP/o9"
head -c 5000 "$TMP/o9/model.safetensors" > "$TMP/o9/model.safetensors.tmp.Ab12Cd"
cp "$(ckpt "$TMP/o9")" "$(ckpt "$TMP/o9").tmp.Xy34Zw"
mkdir "$TMP/.o9.snap-Qw12Er" && echo partial > "$TMP/.o9.snap-Qw12Er/model.safetensors"
ok "9: resume" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 2 --out "$TMP/o9" --resume
check "9: no temporary left in --out" test -z "$(find "$TMP/o9" -name '*.tmp.*')"
check "9: no snapshot folder left beside --out" test ! -e "$TMP/.o9.snap-Qw12Er"

# 10. checkpoint fields are range-checked after the crc: see test_safety.c (needs a crc)

# 11. float options that overflow float32 are usage errors
fails "11: --lr 1e300" 2 "lr" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/o11" --lr 1e300
fails "11: --weight-decay 1e39" 2 "weight.decay" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/o11" --weight-decay 1e39
fails "11: --max-grad-norm 1e300" 2 "max-grad-norm" "$G" train --model "$TMP/tiny" "${T[@]}" --steps 1 --out "$TMP/o11" --max-grad-norm 1e300
check "11: nothing was made" test ! -e "$TMP/o11"

# 12. untrusted strings: control bytes are quoted, long values cut
bad="$TMP/x$(printf '\033')[31mred$(printf '\n')line.jsonl"
"$G" train --model "$TMP/tiny" --train "$bad" --out "$TMP/o12" >/dev/null 2>"$TMP/err12"
check "12: the run fails" test -s "$TMP/err12"
check "12: no escape byte reaches the terminal" not grep -q "$(printf '\033')" "$TMP/err12"
check "12: the message is one line" test "$(wc -l < "$TMP/err12")" -eq 1
cp -r "$TMP/tiny" "$TMP/m12"
sed 's/"model_type": "bert"/"model_type": "\\u001b[2Jevil\\nline"/' "$TMP/tiny/config.json" > "$TMP/m12/config.json"
"$G" encode --model "$TMP/m12" --input "$TMP/texts.jsonl" --field text --out "$TMP/o12.npy" >/dev/null 2>"$TMP/err12b"
check "12: a model file's string is quoted" not grep -q "$(printf '\033')" "$TMP/err12b"
check "12: ... on one line" test "$(wc -l < "$TMP/err12b")" -eq 1
long="--$(head -c 20000 /dev/zero | tr '\0' 'a')"
"$G" train "$long" >/dev/null 2>"$TMP/err12c"
check "12: a long value is cut ($(wc -c < "$TMP/err12c") bytes)" test "$(wc -c < "$TMP/err12c")" -lt 2000

# 15. the real reason, not "no such file"
cp -r "$TMP/tiny" "$TMP/m15"
rm "$TMP/m15/config.json" && mkdir "$TMP/m15/config.json"
fails "15: config.json is a folder" - "folder|directory" "$G" encode --model "$TMP/m15" --input "$TMP/texts.jsonl" --field text --out "$TMP/o15.npy"
check "15: ... and not 'no such file'" not grep -qi "no such file" "$TMP/err"
rm -r "$TMP/m15/config.json" && ln -s config.json "$TMP/m15/config.json"
fails "15: config.json is a symlink loop" - "symbolic links|loop" "$G" encode --model "$TMP/m15" --input "$TMP/texts.jsonl" --field text --out "$TMP/o15.npy"
rm "$TMP/m15/config.json" && cp "$TMP/tiny/config.json" "$TMP/m15/config.json"
rm "$TMP/m15/model.safetensors" && mkdir "$TMP/m15/model.safetensors"
fails "15: model.safetensors is a folder" - "folder|directory" "$G" encode --model "$TMP/m15" --input "$TMP/texts.jsonl" --field text --out "$TMP/o15.npy"
rm -r "$TMP/m15/model.safetensors" && cp "$TMP/tiny/model.safetensors" "$TMP/m15/model.safetensors"
rm -f "$TMP/m15/tokenizer.json" && rm "$TMP/m15/vocab.txt" && mkdir "$TMP/m15/vocab.txt"
fails "15: vocab.txt is a folder" - "vocab.txt.*directory" "$G" encode --model "$TMP/m15" --input "$TMP/texts.jsonl" --field text --out "$TMP/o15.npy"
rm -r "$TMP/m15/vocab.txt" && ln -s vocab.txt "$TMP/m15/vocab.txt"
fails "15: vocab.txt is a symlink loop" - "vocab.txt.*symbolic links" "$G" encode --model "$TMP/m15" --input "$TMP/texts.jsonl" --field text --out "$TMP/o15.npy"
check "15: ... and not 'neither ... found'" not grep -qi "neither" "$TMP/err"

# 16. pad_token_id outside the vocabulary is refused
cp -r "$TMP/tiny" "$TMP/m16"
sed 's/"pad_token_id": 0/"pad_token_id": 900/' "$TMP/tiny/config.json" > "$TMP/m16/config.json"
fails "16: pad_token_id 900 of 837" - "pad_token_id" "$G" encode --model "$TMP/m16" --input "$TMP/texts.jsonl" --field text --out "$TMP/o16.npy"

# 17. encode checks --out before any work
fails "17: encode into a missing folder" - "--out" "$G" encode --model "$TMP/tiny" --input "$TMP/texts.jsonl" --field text --out "$TMP/missing17/x.npy"
fails "17: --out is checked before the model is read" - "--out" "$G" encode --model "$TMP/nomodel17" --input "$TMP/texts.jsonl" --field text --out "$TMP/missing17/x.npy"

finish test_cli_safety
