#!/usr/bin/env bash
# Checks CI runs before the build: every tracked C file (*.c, *.h) is formatted as .clang-format
# says. Exits non-zero and lists the files that drift; fix them with
#   git ls-files '*.c' '*.h' | xargs clang-format -i
# src/text/tokenizer_tables.c is generated, but it is checked too: its tables sit between
# "clang-format off/on" markers and the rest of it is formatted.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "ci-checks: $CLANG_FORMAT not found (bash scripts/install-deps.sh installs it)" >&2
  exit 2
fi

files=()
while IFS= read -r -d '' f; do
  [ -f "$f" ] && files+=("$f")   # skip a tracked file deleted in the working tree
done < <(git ls-files -z -- '*.c' '*.h')
if [ ${#files[@]} -eq 0 ]; then
  echo "ci-checks: no tracked C files found" >&2
  exit 2
fi

drift=()
for f in "${files[@]}"; do
  "$CLANG_FORMAT" --dry-run -Werror "$f" >/dev/null 2>&1 || drift+=("$f")
done

if [ ${#drift[@]} -ne 0 ]; then
  {
    echo "ci-checks: FAILED: ${#drift[@]} of ${#files[@]} C files are not clang-formatted" \
         "($("$CLANG_FORMAT" --version | sed -n 1p)):"
    printf '  %s\n' "${drift[@]}"
    echo "warnings for the first one:"
    # sed reads to the end (head would close the pipe early and fail it under pipefail)
    "$CLANG_FORMAT" --dry-run "${drift[0]}" 2>&1 | sed -n '1,20s/^/  /p'
    echo "fix: git ls-files '*.c' '*.h' | xargs $CLANG_FORMAT -i"
  } >&2
  exit 1
fi
echo "ci-checks: format OK (${#files[@]} C files)"
