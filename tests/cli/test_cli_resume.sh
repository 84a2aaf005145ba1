# test_cli_resume.sh: checkpoints and --resume. With --threads 1 a run stopped and resumed
# ends with the same bytes as an uninterrupted one: stopped by --stop-after (linear schedule
# with warmup, learnable temperature, dropout, crossing an epoch boundary), extended with a
# larger --steps (constant schedule), and interrupted by SIGINT. Also: mismatched options,
# corrupt or missing checkpoints.
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny"
D="$FIX/pairs.jsonl"
# 64 pairs, batch 16: 3-4 batches per epoch, so 7 steps cross into epoch 1
ARGS=(--model "$TMP/tiny" --train "$D" --batch-size 16 --chunk-size 5 --threads 1 --seed 3
      --dropout 0.1 --learn-temperature --lr 1e-3 --warmup 2 --steps 7)

ok "straight run" "$G" train "${ARGS[@]}" --out "$TMP/a" --log "$TMP/a.log"
check "crossed an epoch" grep -q '"epoch": 1' "$TMP/a.log"

ok "first part (--stop-after 3)" "$G" train "${ARGS[@]}" --out "$TMP/b" --stop-after 3 --log "$TMP/b.log"
check "stopped at step 3" test "$(grep -c '"loss"' "$TMP/b.log")" -eq 3
check "a checkpoint after the first part" test -s "$TMP/b/training_state/checkpoint.bin"
ok "second part (--resume)" "$G" train "${ARGS[@]}" --out "$TMP/b" --resume --log "$TMP/b.log"
check "log continued to step 7" test "$(grep -c '"loss"' "$TMP/b.log")" -eq 7
check "resumed weights are bit-identical" cmp -s "$TMP/a/model.safetensors" "$TMP/b/model.safetensors"
check "resumed checkpoints are bit-identical" cmp -s "$TMP/a/training_state/checkpoint.bin" "$TMP/b/training_state/checkpoint.bin"
check "the same losses" test "$(grep -o '"loss": [0-9.]*' "$TMP/a.log" | md5sum)" = "$(grep -o '"loss": [0-9.]*' "$TMP/b.log" | md5sum)"

# extending a finished run (constant schedule: the total does not shape the learning rate)
C=(--model "$TMP/tiny" --train "$D" --batch-size 16 --threads 1 --schedule constant --lr 1e-3)
ok "constant, 6 steps" "$G" train "${C[@]}" --out "$TMP/c6" --steps 6
ok "constant, 3 steps" "$G" train "${C[@]}" --out "$TMP/c3" --steps 3
ok "constant, resumed to 6" "$G" train "${C[@]}" --out "$TMP/c3" --steps 6 --resume
check "extended run is bit-identical" cmp -s "$TMP/c6/model.safetensors" "$TMP/c3/model.safetensors"
ok "resume of a finished run does nothing" "$G" train "${C[@]}" --out "$TMP/c3" --steps 6 --resume
check "says nothing to train" grep -q "nothing to train" "$TMP/err"

# SIGINT: the log goes to a FIFO, so the test knows (without sleeping) that training runs
mkfifo "$TMP/fifo"
"$G" train "${ARGS[@]}" --steps 80 --out "$TMP/s" --log "$TMP/fifo" 2>"$TMP/s.err" &
pid=$!
exec 3<>"$TMP/fifo" # read-write: the open cannot block, whatever the trainer does
first=""
read -t 300 -r first <&3
check "training started before the signal" test -n "$first"
kill -INT $pid
wait $pid
rc=$?
exec 3<&-
check "SIGINT exits 130 (got $rc)" test $rc -eq 130
check "SIGINT message" grep -q "checkpoint saved" "$TMP/s.err"
check "SIGINT left a checkpoint" test -s "$TMP/s/training_state/checkpoint.bin"
check "SIGINT left the model" test -s "$TMP/s/model.safetensors"
check "no temporary files left" test -z "$(ls -A "$TMP/s" | grep -E '\.tmp|^\.')$(ls -A "$TMP" | grep '^\.s\.')"
ok "straight 80 steps" "$G" train "${ARGS[@]}" --steps 80 --out "$TMP/s80"
ok "resume after SIGINT" "$G" train "${ARGS[@]}" --steps 80 --out "$TMP/s" --resume
check "interrupted + resumed is bit-identical" cmp -s "$TMP/s80/model.safetensors" "$TMP/s/model.safetensors"

# what a resume must refuse
fails "resume with another lr" 1 "lr=0.001.*lr=0.002" "$G" train "${ARGS[@]}" --out "$TMP/b" --resume --lr 2e-3
fails "resume with another batch size" 1 "batch_size" "$G" train "${ARGS[@]}" --out "$TMP/b" --resume --batch-size 8
head -40 "$D" > "$TMP/d40.jsonl"
fails "resume with other data" 1 "data_" "$G" train "${ARGS[@]}" --train "$TMP/d40.jsonl" --out "$TMP/b" --resume
fails "resume without a checkpoint" 1 "no checkpoint" "$G" train "${ARGS[@]}" --out "$TMP/none" --resume
check "a failed resume creates nothing" test ! -e "$TMP/none"
cp -r "$TMP/b" "$TMP/trunc"
head -c 1000 "$TMP/b/training_state/checkpoint.bin" > "$TMP/trunc/training_state/checkpoint.bin"
fails "truncated checkpoint" 1 "checksum|truncated" "$G" train "${ARGS[@]}" --out "$TMP/trunc" --resume
cp -r "$TMP/b" "$TMP/flip"
printf '\x55' | dd of="$TMP/flip/training_state/checkpoint.bin" bs=1 seek=300 conv=notrunc 2>/dev/null
fails "corrupted checkpoint" 1 "checksum" "$G" train "${ARGS[@]}" --out "$TMP/flip" --resume
printf 'not a checkpoint at all' > "$TMP/flip/training_state/checkpoint.bin"
fails "not a checkpoint" 1 "magic" "$G" train "${ARGS[@]}" --out "$TMP/flip" --resume
cp -r "$TMP/b" "$TMP/other"
make_tiny "$TMP/tiny_other" 9
fails "another start model with the same shape is refused (the checkpoint names its start)" 1 \
    "model_weights" "$G" train "${ARGS[@]}" --model "$TMP/tiny_other" --out "$TMP/other" --resume --steps 8

finish test_cli_resume
