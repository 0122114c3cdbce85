#!/bin/bash
# kill -9 of saef's writers in the middle of their writes, many times: the
# store always opens, every write reported done is there, nothing half-written.
# SAEF_LONG=1 runs many more rounds with bigger imports.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
K9="python3 $SAEF_SRC/test/faults/kill9.py"

saef-key -s "$T/import.db" init >/dev/null
$K9 import "$T/import.db" "$(by_run 30 200)" "$(by_run 20000 100000)"
FAILS=$((FAILS + $?))

saef-key -s "$T/add.db" init >/dev/null
$K9 add "$T/add.db" "$(by_run 150 1000)"
FAILS=$((FAILS + $?))

# The MAF knows A's Km and B as a client (a key's target must be one);
# A registers keys for B while the MAF is killed.
mkdir "$T/maf"
KA=$(openssl rand -hex 32)
saef-key -s "$T/maf/maf.db" init >/dev/null
saef-key -s "$T/maf/a.db" init >/dev/null
saef-key -s "$T/maf/maf.db" add km a-km@maf.example.com --hex "$KA" --peer //sp.example.com/C-devA
saef-key -s "$T/maf/maf.db" add km b-km@maf.example.com --random 32 --peer //sp.example.com/in-cse
saef-key -s "$T/maf/a.db" add km a-km@maf.example.com --hex "$KA" --self //sp.example.com/C-devA
MAF_PORT=$(free_port) $K9 mafd "$T/maf" "$(by_run 6 50)"
FAILS=$((FAILS + $?))
check_nogrep "no key in the MAF's log" "$KA" "$T/maf/mafd.log"
done_testing
