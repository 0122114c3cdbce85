#!/bin/bash
# The C sources are as .clang-format lays them out (Debian 12's clang-format
# 14: other versions lay out some constructs differently).
. "$SAEF_SRC/test/lib.sh"
command -v clang-format >/dev/null || { echo "skip: no clang-format (apt-get install clang-format)"; exit 77; }
case "$(clang-format --version)" in
    *"version 14."*) ;;
    *) echo "skip: $(clang-format --version) is not clang-format 14"; exit 77 ;;
esac
cd "$SAEF_SRC" || exit 1
mapfile -t files < <(find . -path './build*' -prune -o -path ./.git -prune -o \
    \( -name '*.c' -o -name '*.h' \) -type f -print | sort)
: >"$T/bad"
for f in "${files[@]}"; do
    clang-format --style=file "$f" | diff -u "$f" - >"$T/diff" || {
        echo "$f" >>"$T/bad"
        head -20 "$T/diff" | sed 's/^/   | /'
    }
done
check "clang-format: ${#files[@]} files as .clang-format lays them out (fix: clang-format -i FILE)" \
    test ! -s "$T/bad"
sed 's/^/   not formatted: /' "$T/bad"
done_testing
