#!/bin/bash
# The project's documents stand alone: they name no file outside the
# repository, and every relative link in them leads to a file in it.
. "$SAEF_SRC/test/lib.sh"
cd "$SAEF_SRC" || exit 1
docs=$(ls README.md docs/*.md docs/*.[0-9])
check_rc "no document names a path outside the repository" 1 grep -nE '(^|[^A-Za-z0-9_.-])/(work|home|srv/saef)/' $docs
sed 's/^/   | /' "$T/out" | head -5
python3 - $docs >"$T/links" <<'PY'
import os, re, sys
for doc in sys.argv[1:]:
    for m in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", open(doc, encoding="utf-8").read()):
        target = m.group(1)
        if "://" in target or target.startswith("mailto:"):
            continue
        if not os.path.exists(os.path.join(os.path.dirname(doc), target)):
            print(doc, target)
PY
check "every relative link leads to a file of the repository" test ! -s "$T/links"
sed 's/^/   | /' "$T/links" | head -5
done_testing
