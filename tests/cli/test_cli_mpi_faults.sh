# test_cli_mpi_faults.sh: a lost rank and a signal under mpirun. A rank killed with SIGKILL in
# the middle of a run: mpirun (Open MPI's launcher) notices, names the lost rank and ends the
# job, so the other ranks stop with a non-zero status well within 60 s instead of waiting in a
# collective; the last checkpoint stays valid and resumes. SIGTERM to one rank (not to mpirun):
# every rank stops after the same step, rank 0 saves once, the job exits 143, and the
# checkpoint resumes. Every wait is bounded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi.sh"

make_tiny "$TMP/tiny"
head -32 "$FIX/pairs.jsonl" > "$TMP/neg.jsonl"
LONG=(--model "$TMP/tiny" --train "$TMP/neg.jsonl" --threads 1 --batch-size 6 --chunk-size 2
      --dropout 0.1 --steps 1000000 --save-every 3)
export GC_TEST_TAG="$TMP" # marks this test's ranks among other processes

# The pid of rank R of this test's job (empty if none).
rank_pid() {
    local p
    for p in $(pgrep -x gradcache); do
        if tr '\0' '\n' 2>/dev/null </proc/$p/environ | grep -qx "GC_TEST_TAG=$TMP" &&
           tr '\0' '\n' 2>/dev/null </proc/$p/environ | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
            echo $p; return
        fi
    done
}

# start_job OUT : 3 ranks in the background (pid in JOB) once the first checkpoint exists
start_job() {
    timeout 300 mpirun -np 3 "$G" train "${LONG[@]}" --out "$1" >"$1.out" 2>&1 &
    JOB=$!
    local i
    for i in $(seq 600); do
        [ -e "$1/training_state/checkpoint.bin" ] && [ -n "$(rank_pid 1)" ] && return 0
        sleep 0.1
    done
    return 1
}

# wait_job LIMIT : wait at most LIMIT seconds for JOB; RC its status (999: still running)
wait_job() {
    local i
    for i in $(seq $(($1 * 10))); do
        if ! kill -0 $JOB 2>/dev/null; then wait $JOB; RC=$?; return 0; fi
        sleep 0.1
    done
    RC=999
    kill $JOB 2>/dev/null
    wait $JOB
}

# --- SIGKILL on rank 1 ---
check "the job starts and saves" start_job "$TMP/k"
sleep 1 # into a later step
victim=$(rank_pid 1)
check "rank 1 found" test -n "$victim"
[ -n "$victim" ] && kill -KILL $victim
wait_job 60
check "after SIGKILL of rank 1 the job ends within 60 s, non-zero (status $RC)" test $RC -ne 0 -a $RC -ne 999
check "the message names the lost rank" grep -q "rank 1 .*exited on signal 9" "$TMP/k.out"
check "no rank is left" test -z "$(rank_pid 0)$(rank_pid 2)"
check "the last checkpoint is valid" quiet "$CKPT_INFO" "$TMP/k/training_state/checkpoint.bin"
step=$("$CKPT_INFO" "$TMP/k/training_state/checkpoint.bin" | awk '$1 == "step" { print $2 }')
ok "it resumes (from step $step)" "$G" train "${LONG[@]}" --resume --stop-after 2 --out "$TMP/k"
check "and moves on by 2 steps" grep -qx "step $((step + 2))" <("$CKPT_INFO" "$TMP/k/training_state/checkpoint.bin")
[ $FAIL -eq 0 ] || sed 's/^/    /' "$TMP/k.out" | grep -v 'step [0-9]*/' | tail -20 >&2

# --- SIGTERM on rank 2 ---
check "the job starts and saves" start_job "$TMP/t"
victim=$(rank_pid 2)
[ -n "$victim" ] && kill -TERM $victim
wait_job 60
check "after SIGTERM of rank 2 the job ends with 143 (status $RC)" test $RC -eq 143
check "rank 0 saved once" test "$(grep -c 'stopped by signal 15 at step' "$TMP/t.out")" -eq 1
saved=$(sed -n 's/.*stopped by signal 15 at step \([0-9]*\);.*/\1/p' "$TMP/t.out")
check "the checkpoint is that step's ($saved)" grep -qx "step $saved" <("$CKPT_INFO" "$TMP/t/training_state/checkpoint.bin")
ok "it resumes on 2 ranks" mpi 2 train "${LONG[@]}" --resume --stop-after 1 --out "$TMP/t"
check "and moves on by 1 step" grep -qx "step $((saved + 1))" <("$CKPT_INFO" "$TMP/t/training_state/checkpoint.bin")
[ $FAIL -eq 0 ] || sed 's/^/    /' "$TMP/t.out" | grep -v 'step [0-9]*/' | tail -20 >&2

finish test_cli_mpi_faults
