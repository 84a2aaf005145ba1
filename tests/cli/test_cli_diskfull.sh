# test_cli_diskfull.sh: a save that cannot be written (a file-size limit, RLIMIT_FSIZE, with
# SIGXFSZ ignored so that write() fails with EFBIG as on a full disk; issue 12). The run fails
# with a clear message, the previous snapshot stays whole and loadable, nothing half-written
# is visible, and the run resumes from it to the bytes of an uninterrupted run.
. "$(dirname "$0")/lib.sh"

make_tiny "$TMP/tiny"
A=(--model "$TMP/tiny" --train "$FIX/pairs.jsonl" --batch-size 16 --chunk-size 8 --threads 1
   --lr 1e-3 --schedule constant --save-every 1)
limited() { local kb="$1"; shift; ( trap '' XFSZ; ulimit -f "$kb"; exec "$@" ); }
ok "uninterrupted 4 steps" "$G" train "${A[@]}" --steps 4 --out "$TMP/ref"
mkdir "$TMP/d"
OUT="$TMP/d/out"
ok "first part: 2 steps" "$G" train "${A[@]}" --steps 2 --out "$OUT"
cp -a "$OUT" "$TMP/saved"
# the model file (192 KiB) fits, the checkpoint (three times that) does not; then neither
for kb in 400 100 1; do
    limited "$kb" "$G" train "${A[@]}" --steps 4 --out "$OUT" --resume >/dev/null 2>"$TMP/err"
    rc=$?
    check "limit ${kb}K: the run fails with status 1 (got $rc)" test $rc -eq 1
    check "limit ${kb}K: the error names the problem" grep -qE "^gradcache: error: .*(File too large|No space)" "$TMP/err"
    check "limit ${kb}K: the previous snapshot is unchanged" diff -r "$TMP/saved" "$OUT"
    check "limit ${kb}K: nothing half-written beside --out: $(ls -A "$TMP/d" | tr '\n' ' ')" test "$(ls -A "$TMP/d")" = out
    check "limit ${kb}K: nothing half-written inside --out" test -z "$(find "$OUT" -name '*.tmp*' -o -name '.*' | grep -v "^$OUT\$")"
done
ok "the previous snapshot loads" "$G" encode --model "$OUT" --input "$FIX/pairs.jsonl" --field query --out "$TMP/e.npy"
ok "and resumes" "$G" train "${A[@]}" --steps 4 --out "$OUT" --resume
check "to the bytes of the uninterrupted run" cmp -s "$TMP/ref/model.safetensors" "$OUT/model.safetensors"
# a first save that fails leaves no --out
for kb in 400 100; do limited $kb "$G" train "${A[@]}" --steps 2 --out "$TMP/d/new" >/dev/null 2>"$TMP/err"
check "a failed first save fails" test $? -eq 1
check "a failed first save leaves no --out: $(ls -A "$TMP/d" | tr '\n' ' ')" test "$(ls -A "$TMP/d")" = out; done

finish test_cli_diskfull
