# test_cli_kill.sh: kill -9 at random moments of a --save-every 1 run (issue 12). After each
# kill --out is exactly one snapshot: its model file is the one its checkpoint holds (checked
# by resuming from the checkpoint with nothing left to train, which saves the checkpoint's
# parameters again, and comparing the model file), the next run leaves no temporary file or
# folder anywhere, and resuming to the end gives the bytes of an uninterrupted run.
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny"
A=(--model "$TMP/tiny" --train "$FIX/pairs.jsonl" --batch-size 16 --chunk-size 8 --threads 1
   --seed 3 --dropout 0.1 --learn-temperature --lr 1e-3 --warmup 2 --steps 400 --save-every 1)
ok "uninterrupted run" "$G" train "${A[@]}" --out "$TMP/ref/out"

mkdir "$TMP/k"
OUT="$TMP/k/out"
RANDOM=12
kills=0
for i in $(seq 1 20); do
    resume=()
    [ -e "$OUT" ] && resume=(--resume)
    "$G" train "${A[@]}" --out "$OUT" "${resume[@]}" --log "$TMP/log$i" >/dev/null 2>"$TMP/kill.err" &
    pid=$!
    # the random moment counts from the first step, so that a slow start (sanitizers) does not
    # put every kill before the first save
    while [ ! -s "$TMP/log$i" ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done
    sleep "0.$(printf "%03d" $((RANDOM % 380 + 20)))"
    kill -KILL $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    [ -e "$OUT" ] || continue
    check "kill $i: a whole snapshot" test -s "$OUT/model.safetensors" -a -s "$OUT/training_state/checkpoint.bin" -a -s "$OUT/config.json"
    cp "$OUT/model.safetensors" "$TMP/before.safetensors"
    ok "kill $i: the snapshot resumes" "$G" train "${A[@]}" --steps 1 --out "$OUT" --resume
    check "kill $i: the model file is the checkpoint's" cmp -s "$TMP/before.safetensors" "$OUT/model.safetensors"
    check "kill $i: nothing left beside --out: $(ls -A "$TMP/k" | tr '\n' ' ')" test "$(ls -A "$TMP/k")" = out
    check "kill $i: no temporary inside --out" test -z "$(find "$OUT" -name '*.tmp*' -o -name '.*' | grep -v "^$OUT\$")"
done
echo "kills that hit a running trainer: $kills"
check "at least 15 of the 20 kills hit a running trainer ($kills)" test $kills -ge 15
resume=()
[ -e "$OUT" ] && resume=(--resume)
ok "resume to the end" "$G" train "${A[@]}" --out "$OUT" "${resume[@]}"
check "killed 20 times and resumed: the model is bit-identical" cmp -s "$TMP/ref/out/model.safetensors" "$OUT/model.safetensors"
check "... and the checkpoint" cmp -s "$TMP/ref/out/training_state/checkpoint.bin" "$OUT/training_state/checkpoint.bin"
check "nothing left beside --out at the end" test "$(ls -A "$TMP/k")" = out

finish test_cli_kill
