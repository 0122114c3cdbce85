#!/bin/bash
# The shell scripts pass shellcheck (warnings and errors).
. "$SAEF_SRC/test/lib.sh"
command -v shellcheck >/dev/null || { echo "skip: no shellcheck (apt-get install shellcheck)"; exit 77; }
cd "$SAEF_SRC" || exit 1
mapfile -t scripts < <(find . -path ./build\* -prune -o -path ./.git -prune -o \
    \( -name '*.sh' -o -path ./bench/run \) -type f -print | sort)
shellcheck -S warning -x "${scripts[@]}" >"$T/lint" 2>&1
check "shellcheck: ${#scripts[@]} scripts clean" test ! -s "$T/lint"
head -40 "$T/lint" | sed 's/^/   | /'
done_testing
