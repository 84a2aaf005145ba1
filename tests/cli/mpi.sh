# mpi.sh: what the MPI CLI tests share (sourced after lib.sh). Skips the test, with the reason,
# when this build has no MPI; otherwise sets up mpirun for a root, oversubscribed, one-machine run.

if ! grep -q '^GC_MPI:BOOL=ON' "$BIN_DIR/CMakeCache.txt" 2>/dev/null; then
    echo "$(basename "$0" .sh): skipped: gradcache was built without MPI (GC_MPI off: install libopenmpi-dev)"
    exit 0
fi
if ! command -v mpirun >/dev/null; then # built with MPI, so its launcher must be there
    echo "$(basename "$0" .sh): FAIL: gradcache has MPI but mpirun is not found (install openmpi-bin)"
    exit 1
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# MPI's own allocations are not ours to free (a sanitizer build would report them at exit)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"
CKPT_INFO="$BIN_DIR/ckpt_info"
ST_DIFF="$BIN_DIR/st_diff"
for t in "$CKPT_INFO" "$ST_DIFF"; do
    if [ ! -x "$t" ]; then echo "$(basename "$0" .sh): $t not built"; exit 1; fi
done

# mpi N ARGS... : gradcache on N ranks, bounded (a hang fails the test instead of blocking it)
mpi() {
    local n="$1"; shift
    timeout 300 mpirun -np "$n" "$G" "$@"
}

# The loss of step S in a JSON log.
loss_at() { grep "\"step\": $2, \"epoch\"" "$1" | sed 's/.*"loss": \([^,]*\),.*/\1/'; }

# close A B REL : |A - B| <= REL * |B|
close() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a != "" && b != "" && d <= r * m) }'; }

# same_losses A B FIRST LAST : steps FIRST..LAST of two logs within 1e-5 relative
same_losses() {
    local s
    for s in $(seq "$3" "$4"); do
        if ! close "$(loss_at "$1" $s)" "$(loss_at "$2" $s)" 1e-5; then
            echo "    step $s: loss $(loss_at "$1" $s) vs $(loss_at "$2" $s)" >&2
            return 1
        fi
    done
}
