#!/bin/bash
# A flood of made-up MAF identities (HEX32@the configured MAF) against a
# preloaded server while a pre-provisioned client keeps connecting: the MAF
# sees a bounded number of retrievals, the server keeps serving the client.
# SAEF_LONG=1 floods for longer.
. "$SAEF_SRC/test/lib.sh"
: "${PSK_CLIENT:?run through ctest}"
PATH="$SAEF_SBIN:$PATH"
SECS=$(by_run 8 60)
# Retrievals a process may start per second (maf_rate's default).
RATE=20
KB=$(openssl rand -hex 32) KL=$(openssl rand -hex 32)
M="$T/maf.db" B="$T/b.db"
for s in "$M" "$B"; do saef-key -s "$s" init >/dev/null; done
saef-key -s "$M" add km b-km@maf.example.com --hex "$KB" --peer //sp.example.com/in-cse
saef-key -s "$B" add km b-km@maf.example.com --hex "$KB"
saef-key -s "$B" add kpsa legit@sp.example.com --hex "$KL"
MPORT=$(free_port) BPORT=$(free_port)
maf_start --store "$M" --fqdn maf.example.com
saef_cnf "$T/b.cnf" "$B" "entity_id = //sp.example.com/in-cse" "role = server" \
    "maf = maf.example.com https://127.0.0.1:$MPORT" "maf_kmid = b-km@maf.example.com"
SAEF_BG_LIMIT=$((3 * SECS + 60)) saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- \
    openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
SERVER=$SAEF_LAST_PID
wait_port "$BPORT"

legit() { "$PSK_CLIENT" -t "$SECS" -w 5 "127.0.0.1:${1:-$BPORT}" legit@sp.example.com "$KL"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }
# flood PORT [-c]: three clients sending made-up MAF identities for $SECS
# seconds (-c: in random case, MAF-FQDN included).
flood() { for f in 1 2 3; do
    saef_bg "$T/flood$f.txt" "$PSK_CLIENT" -m ${2:-} -t "$SECS" "127.0.0.1:$1" @maf.example.com "$KL"; done; }
flood_done() { for c in 1 2 3; do wait_log "$T/flood$c.txt" "^handshakes=" 30; done; }

# One retrieval, spaced under the rate: no delayed-ACK wait (40 ms) at the MAF.
"$PSK_CLIENT" -m -n 10 -w 100 "127.0.0.1:$BPORT" @maf.example.com "$KL" >"$T/one.txt"
# (A sanitized build is slower than that anyway: there the bound scales.)
check "a retrieval's handshake takes less than a delayed ACK: $(cat "$T/one.txt")" \
    test "$(echo "$(field p50_ms "$T/one.txt") < 40 * $SAEF_SLOW" | bc)" = 1
legit >"$T/quiet.txt"
check "the legitimate client without a flood: $(cat "$T/quiet.txt")" test "$(field fail "$T/quiet.txt")" = 0

before=$(grep -c "POST /keyRetrieve" "$T/mafd.log")
flood "$BPORT"
start=$(date +%s)
legit >"$T/flood.txt"
flood_done
span=$(($(date +%s) - start + 1))
retrievals=$(($(grep -c "POST /keyRetrieve" "$T/mafd.log") - before))
flooded=$(cat "$T"/flood[123].txt | awk -F'[ =]' '{ n += $2; ok += $4 } END { print n, ok }')
echo "     figures: flood ${SECS}s: ${flooded% *} made-up MAF identities, ${flooded#* } accepted," \
    "$retrievals MAF retrievals; legitimate client quiet: $(cat "$T/quiet.txt");" \
    "during the flood: $(cat "$T/flood.txt")"
check "no made-up identity was accepted (${flooded% *} tried)" test "${flooded#* }" = 0 -a "${flooded% *}" -gt 0
check "the MAF saw at most $RATE retrievals a second ($retrievals in ${span}s)" \
    test "$retrievals" -le $((RATE * span)) -a "$retrievals" -gt 0
check "  ... the server said why it refused the rest" grep -q "MAF retrieval rate limit" "$T/b.log"
check "the legitimate client kept being served during the flood: $(cat "$T/flood.txt")" \
    test "$(field fail "$T/flood.txt")" = 0 -a "$(field handshakes "$T/flood.txt")" -gt 0
check "the server is still running" kill -0 "$SERVER"

# A MAF that accepts connections and never answers: each retrieval would
# hold the server for maf_timeout; after one, the MAF rests for a pause
# that doubles (1 s, 2 s, 4 s...), so attempts grow with log2 of the time.
# The flood writes the MAF-FQDN in random case: MAFs are matched without
# regard to case, and so is the MAF that rests.
HPORT=$(free_port) B2PORT=$(free_port)
saef_bg "$T/hole.log" python3 -c '
import socket, sys
s = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
held = []
while True:
    held.append(s.accept()[0])' "$HPORT"
wait_port "$HPORT"
saef_cnf "$T/b2.cnf" "$B" "entity_id = //sp.example.com/in-cse" "role = server" \
    "maf = maf.example.com https://127.0.0.1:$HPORT" "maf_kmid = b-km@maf.example.com" \
    "maf_timeout = 1000"
SAEF_BG_LIMIT=$((3 * SECS + 60)) saef_bg "$T/b2.log" saef-run --conf "$T/b2.cnf" -- \
    openssl s_server -accept "127.0.0.1:$B2PORT" -nocert -quiet
wait_port "$B2PORT"
flood "$B2PORT" -c
start=$(date +%s)
legit "$B2PORT" >"$T/hole.txt"
flood_done
span=$(($(date +%s) - start + 1))
tries=$(grep -c "MAF unreachable" "$T/b2.log")
bound=0
while [ $(((1 << bound) - 1)) -lt "$span" ]; do bound=$((bound + 1)); done
echo "     figures: random-case flood ${SECS}s against a silent MAF (maf_timeout 1 s): $tries retrievals" \
    "tried; legitimate client: $(cat "$T/hole.txt")"
check "a silent MAF is tried at most $bound times in ${span}s ($tries)" \
    test "$tries" -ge 1 -a "$tries" -le "$bound"
check "  ... the server said why it refused the rest" grep -q "did not answer recently" "$T/b2.log"
check "  ... and kept serving the legitimate client: $(cat "$T/hole.txt")" \
    test "$(field fail "$T/hole.txt")" = 0 -a "$(field handshakes "$T/hole.txt")" -gt 0
for k in $KB $KL; do
    for f in "$T/b.log" "$T/b2.log" "$T/mafd.log"; do check_nogrep "no key in $(basename "$f")" "$k" "$f"; done
done
done_testing
