# test_cli_mpi.sh: training under mpirun gives the numbers of one process. With dropout 0.1,
# two hard negatives, the symmetric loss and a learnable temperature, one SGD step with a huge
# learning rate (so the weight change is the gradient) changes every tensor the same way on 1,
# 2 and 3 ranks (bench/st_diff, 1e-5 norm-relative per tensor) and log(tau) too; the 2-rank run
# goes over TCP (OMPI_MCA_btl=tcp,self) instead of shared memory. Three AdamW steps log the
# same losses; a checkpoint written by 2 ranks resumes on 1 and on 3 with the losses of the
# uninterrupted run. The Matryoshka loss (--matryoshka 32,16:0.5,8) gives one process's gradient
# on 2 and 3 ranks too. Refusals: a batch not divisible by the ranks (exit 2), data or options
# that differ on one rank (before the first step).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi.sh"

make_tiny "$TMP/tiny"
head -32 "$FIX/pairs.jsonl" > "$TMP/neg.jsonl" # two hard negatives per line
COMMON=(--model "$TMP/tiny" --train "$TMP/neg.jsonl" --threads 1 --batch-size 6 --chunk-size 2
        --dropout 0.1 --symmetric --learn-temperature)
STEP=("${COMMON[@]}" --steps 1 --optimizer sgd --lr 1000 --weight-decay 0 --max-grad-norm 0
      --schedule constant)

# --- one SGD step: the gradient ---
ok "1 process" "$G" train "${STEP[@]}" --out "$TMP/g1"
ok "2 ranks over TCP" env OMPI_MCA_btl=tcp,self timeout 300 mpirun -np 2 "$G" train "${STEP[@]}" --out "$TMP/g2"
ok "3 ranks" mpi 3 train "${STEP[@]}" --out "$TMP/g3"
# the work was split (N copies of one process would give the same numbers): rank 0 alone
# reports, and it reports 3 ranks
check "3 ranks: one report, of 3 ranks sharing the batch" test "$(grep -c '^gradcache: training ' "$TMP/err")" -eq 1 -a \
    "$(grep -c '^gradcache: 3 ranks (mpirun): each encodes 2 of the 6 pairs' "$TMP/err")" -eq 1
base="$TMP/tiny/model.safetensors"
for n in 2 3; do
    ok "$n ranks: the same gradient as one process" "$ST_DIFF" "$base" "$TMP/g$n/model.safetensors" "$TMP/g1/model.safetensors" 1e-5
done
lt0=$(awk 'BEGIN { printf "%.9g", log(0.05) }')
lt() { "$CKPT_INFO" "$1/training_state/checkpoint.bin" | awk '$1 == "log_tau" { print $2 }'; }
d1=$(awk -v a="$(lt "$TMP/g1")" -v b="$lt0" 'BEGIN { print a - b }')
for n in 2 3; do
    dn=$(awk -v a="$(lt "$TMP/g$n")" -v b="$lt0" 'BEGIN { print a - b }')
    check "$n ranks: the temperature's gradient ($dn vs $d1)" close "$dn" "$d1" 1e-5
done
check "the step changed log(tau)" not close "$d1" 0 1
# the comparison can fail: another dropout seed on 2 ranks is another update
ok "2 ranks, another seed" mpi 2 train "${STEP[@]}" --seed 7 --out "$TMP/g2s"
check "st_diff notices another update" not quiet "$ST_DIFF" "$base" "$TMP/g2s/model.safetensors" "$TMP/g1/model.safetensors" 1e-5

# --- the Matryoshka loss, sharded over the ranks the same way ---
MSTEP=("${STEP[@]}" --matryoshka 32,16:0.5,8)
ok "matryoshka, 1 process" "$G" train "${MSTEP[@]}" --out "$TMP/m1"
for n in 2 3; do
    ok "matryoshka, $n ranks" mpi $n train "${MSTEP[@]}" --out "$TMP/m$n"
    ok "matryoshka, $n ranks: the gradient of one process" "$ST_DIFF" "$base" "$TMP/m$n/model.safetensors" "$TMP/m1/model.safetensors" 1e-5
done
check "st_diff notices the Matryoshka update differs from the plain one" not quiet "$ST_DIFF" "$base" "$TMP/m1/model.safetensors" "$TMP/g1/model.safetensors" 1e-5

# --- bf16: representations gathered as bf16 (pairs of floats on the wire), the same gradient ---
if "$G" --version | grep -q "bf16 native: yes"; then
    BSTEP=("${STEP[@]}" --precision bf16)
    ok "bf16, 1 process" "$G" train "${BSTEP[@]}" --out "$TMP/b1"
    ok "bf16, 2 ranks" mpi 2 train "${BSTEP[@]}" --out "$TMP/b2"
    ok "bf16, 2 ranks: the gradient of one process" "$ST_DIFF" "$base" "$TMP/b2/model.safetensors" "$TMP/b1/model.safetensors" 1e-5
    check "st_diff notices the bf16 update differs from the fp32 one" not quiet "$ST_DIFF" "$base" "$TMP/b1/model.safetensors" "$TMP/g1/model.safetensors" 1e-5
else
    echo "skip: bf16 over ranks (no native bf16 on this CPU: --precision bf16 runs fp32)"
fi

# --- three AdamW steps ---
ADAM=("${COMMON[@]}" --steps 3 --lr 1e-3)
ok "AdamW, 1 process" "$G" train "${ADAM[@]}" --out "$TMP/a1" --log "$TMP/a1.log"
for n in 2 3; do
    ok "AdamW, $n ranks" mpi $n train "${ADAM[@]}" --out "$TMP/a$n" --log "$TMP/a$n.log"
    check "AdamW, $n ranks: the losses of one process" same_losses "$TMP/a$n.log" "$TMP/a1.log" 1 3
done
check "the losses move" not close "$(loss_at "$TMP/a1.log" 3)" "$(loss_at "$TMP/a1.log" 1)" 1e-3

# --- a checkpoint of 2 ranks resumes on 1 and on 3 ---
RUN=("${COMMON[@]}" --steps 6 --lr 1e-3)
ok "uninterrupted" "$G" train "${RUN[@]}" --out "$TMP/u" --log "$TMP/u.log"
ok "2 ranks, stopping after 3" mpi 2 train "${RUN[@]}" --stop-after 3 --out "$TMP/c1" --log "$TMP/c1.log"
check "the 2-rank checkpoint is at step 3" grep -qx "step 3" <("$CKPT_INFO" "$TMP/c1/training_state/checkpoint.bin")
cp -r "$TMP/c1" "$TMP/c3"
ok "resumed on 1 process" "$G" train "${RUN[@]}" --resume --out "$TMP/c1" --log "$TMP/r1.log"
ok "resumed on 3 ranks" mpi 3 train "${RUN[@]}" --resume --out "$TMP/c3" --log "$TMP/r3.log"
check "2 ranks: steps 1-3 as uninterrupted" same_losses "$TMP/c1.log" "$TMP/u.log" 1 3
check "resumed on 1: steps 4-6 as uninterrupted" same_losses "$TMP/r1.log" "$TMP/u.log" 4 6
check "resumed on 3: steps 4-6 as uninterrupted" same_losses "$TMP/r3.log" "$TMP/u.log" 4 6

# --- refusals ---
mpi 2 train "${ADAM[@]}" --batch-size 7 --out "$TMP/odd" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "batch 7 on 2 ranks: exit 2 (got $rc)" test $rc -eq 2
check "batch 7 on 2 ranks: the message says why" grep -q "batch-size 7 .*not divisible by the 2 ranks" "$TMP/err"
check "batch 7 on 2 ranks: nothing written" test ! -e "$TMP/odd"

sed 's/a/e/' "$TMP/neg.jsonl" > "$TMP/other.jsonl"
timeout 300 mpirun -np 2 "$G" train "${ADAM[@]}" --out "$TMP/diff" --log "$TMP/diff.log" : \
    -np 1 "$G" train "${ADAM[@]}" --train "$TMP/other.jsonl" --out "$TMP/diff" --log "$TMP/diff.log" \
    >"$TMP/out" 2>"$TMP/err"
rc=$?
check "data differing on rank 2: refused (exit $rc)" test $rc -ne 0 -a $rc -lt 124
check "data differing on rank 2: the message names the rank" grep -q "training data differs on rank 2" "$TMP/err"
check "data differing on rank 2: no step was taken" test ! -s "$TMP/diff.log" -a ! -e "$TMP/diff/training_state/checkpoint.bin"
timeout 300 mpirun -np 1 "$G" train "${ADAM[@]}" --out "$TMP/opt" : \
    -np 1 "$G" train "${ADAM[@]}" --seed 9 --out "$TMP/opt" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "another --seed on rank 1: refused (exit $rc)" test $rc -ne 0 -a $rc -lt 124
check "another --seed on rank 1: the message names the rank" grep -q "options or the model differ on rank 1" "$TMP/err"
[ $FAIL -eq 0 ] || sed 's/^/    /' "$TMP/err" | tail -20 >&2

finish test_cli_mpi
