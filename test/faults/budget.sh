#!/bin/bash
# A flood of made-up MAF identities from other source addresses does not
# use up Entity B's MAF retrievals: a legitimate client's first MAF-based
# connections during the flood all succeed (maf_source_rate), the MAF still
# sees at most maf_rate retrievals a second, and a refusal by a rate is
# remembered like the MAF's own (maf_negative_ttl). SAEF_LONG=1 floods longer.
. "$SAEF_SRC/test/lib.sh"
: "${PSK_CLIENT:?run through ctest}"
PATH="$SAEF_SBIN:$PATH"
SECS=$(by_run 10 60)
N=$(by_run 8 50) # legitimate first connections during the flood
maf_world
maf_start --store "$M" --fqdn maf.example.com
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "role = server" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 1000"
BPORT=$(free_port)
SAEF_BG_LIMIT=$((2 * SECS + 60)) saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- \
    openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"

retrievals() { grep -c "POST /keyRetrieve -> $1" "$T/mafd.log"; }
for i in $(seq "$N"); do maf_reg && echo "$KEY $KC" >>"$T/keys"; done

# Three flooding clients, each from an address of its own (127.0.0.2-4).
KF=$(openssl rand -hex 32)
for f in 1 2 3; do
    saef_bg "$T/flood$f.txt" "$PSK_CLIENT" -m -b "127.0.0.$((f + 1))" -t "$SECS" \
        "127.0.0.1:$BPORT" @maf.example.com "$KF"
done
start=$(date +%s)
sleep 1
ok=0 gap=$(echo "($SECS - 2) / $N" | bc -l)
while read -r KEY KC; do
    if kc_connect "$BPORT"; then ok=$((ok + 1)); else sed 's/^/   | /' "$T/client" | tail -3; fi
    sleep "$gap"
done <"$T/keys"
for f in 1 2 3; do wait_log "$T/flood$f.txt" "^handshakes=" 30; done
span=$(($(date +%s) - start + 1))
flooded=$(cat "$T"/flood[123].txt | awk -F'[ =]' '{ n += $2; ok += $4 } END { print n, ok }')
echo "     figures: flood ${SECS}s from 3 addresses: ${flooded% *} made-up MAF identities," \
    "${flooded#* } accepted, $(retrievals 404) MAF retrievals for them;" \
    "legitimate first connections from a 4th address: $ok of $N accepted"
check "every legitimate first connection during the flood was accepted ($ok of $N)" test "$ok" = "$N"
check "  ... each after a retrieval" test "$(retrievals 200)" = "$N"
check "no made-up identity was accepted (${flooded% *} tried)" \
    test "${flooded#* }" = 0 -a "${flooded% *}" -gt 0
check "the flood got at most 3 x maf_source_rate retrievals a second ($(retrievals 404) in ${span}s)" \
    test "$(retrievals 404)" -le $((3 * 5 * span)) -a "$(retrievals 404)" -gt 0
check_grep "  ... the server said why it refused the rest" \
    "reason=\"MAF retrieval rate limit of this source address reached\" peer=127.0.0.[234]:" "$T/b.log"
check_nogrep "  ... and never refused the legitimate client for a rate" \
    "rate limit.* peer=127.0.0.1:" "$T/b.log"

# maf_rate = 1: a second retrieval within a second is refused, and that
# refusal is remembered for maf_negative_ttl like the MAF's own.
saef_cnf "$T/b2.cnf" "$B" "entity_id = $IDB" "role = server" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 1000" "maf_rate = 1"
B2PORT=$(free_port)
saef_bg "$T/b2.log" saef-run --conf "$T/b2.cnf" -- \
    openssl s_server -accept "127.0.0.1:$B2PORT" -nocert -quiet
wait_port "$B2PORT"
# A flood from another address keeps the one retrieval a second taken (the
# timing holds however slow the machine: a sanitized build is).
saef_bg "$T/flood-b2.txt" "$PSK_CLIENT" -m -b 127.0.0.2 -t 60 -s "$T/stop" \
    "127.0.0.1:$B2PORT" @maf.example.com "$KF"
FLOOD2=$SAEF_LAST_PID
sleep 1
for _ in 1 2 3 4 5; do
    maf_reg
    kc_connect "$B2PORT" || break
done
# Stopped and gone: its refusals share the memory of refusals (1024 slots).
touch "$T/stop"
while kill -0 "$FLOOD2" 2>/dev/null; do sleep 0.05; done
check_grep "maf_rate = 1: a second retrieval in one second is refused" \
    "identity=\"$KEY\" reason=\"MAF retrieval rate limit reached\"" "$T/b2.log"
sleep 1.1
check_not "  ... and refused again after that second, from memory" kc_connect "$B2PORT"
check_grep "  ... saying so" \
    "identity=\"$KEY\" reason=\"refused by a MAF retrieval rate limit recently\"" "$T/b2.log"
check "the server is still running" kill -0 "$(pgrep -f "accept 127.0.0.1:$BPORT" | head -1)"

for f in "$T"/*.log; do check_no_key "$f" $KA $KB $KF $KCS; done
done_testing
