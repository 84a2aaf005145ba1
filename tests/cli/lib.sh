# lib.sh: helpers sourced by the CLI tests (tests/cli/test_*.sh).
# Each test script is run as: bash test_x.sh <gradcache-binary> <source-dir>

set -u
G="$1"
SRC="$2"
BIN_DIR="$(dirname "$G")"
FIX="$SRC/tests/fixtures/cli"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gradcache-cli.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
PASS=0
FAIL=0

pass() { PASS=$((PASS + 1)); }
fail() { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }

# ok DESC CMD... : the command must exit 0
ok() {
    local desc="$1"; shift
    if "$@" >"$TMP/out" 2>"$TMP/err"; then pass; else
        fail "$desc (exit $?)"; sed 's/^/    /' "$TMP/err" | tail -5 >&2; fi
}

# fails DESC RC PATTERN CMD... : exit status RC (or any failure below 128 when RC is '-'),
# stderr a single 'gradcache: error: ...' line containing PATTERN (grep -E), no crash.
fails() {
    local desc="$1" want="$2" pat="$3"; shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$want" = "-" ]; then
        if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then fail "$desc: exit $rc"; sed 's/^/    /' "$TMP/err" | tail -5 >&2; return; fi
    elif [ $rc -ne "$want" ]; then fail "$desc: exit $rc, want $want"; sed 's/^/    /' "$TMP/err" | tail -5 >&2; return; fi
    if ! grep -q '^gradcache: error: ' "$TMP/err"; then fail "$desc: no 'gradcache: error:' line"; sed 's/^/    /' "$TMP/err" | tail -5 >&2; return; fi
    if [ "$(grep -c '^gradcache: error: ' "$TMP/err")" -ne 1 ]; then fail "$desc: more than one error line"; return; fi
    if ! grep -qE -- "$pat" "$TMP/err"; then fail "$desc: message does not match '$pat':"; sed 's/^/    /' "$TMP/err" >&2; return; fi
    pass
}

# check DESC CONDITION... : a plain test
check() {
    local desc="$1"; shift
    if "$@"; then pass; else fail "$desc"; fi
}

# not CMD... : succeeds when the command fails (for use with check)
not() { ! "$@"; }
# quiet CMD... : run without output
quiet() { "$@" >/dev/null 2>&1; }

# A tiny random model (hidden 32, 2 layers, 4 heads) from the committed config and vocab.
make_tiny() {
    "$G" init --config "$FIX/tiny_config.json" --vocab "$FIX/vocab.txt" --out "$1" --seed "${2:-7}" >/dev/null
}

finish() {
    echo "$1: $PASS passed, $FAIL failed"
    [ $FAIL -eq 0 ]
}
