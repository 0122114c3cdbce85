#!/bin/bash
# Entity B's copies of retrieved Kc leave its store once expired: a later
# retrieval deletes them (a bounded number, outside the MAF call), so the
# store does not grow by one record per device and key lifetime.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
maf_start --store "$M" --fqdn maf.example.com
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "role = server" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 1000"
BPORT=$(free_port)
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"

kc_in_b() { saef-key -s "$B" list kc | tail -n +2 | wc -l; }

# Five devices with short-lived keys, each connecting once: they must outlive
# the loop on a loaded machine, or a retrieval inside it purges the first.
L=$((6 * SAEF_SLOW)) ok=0
for i in 1 2 3 4 5; do
    maf_reg "+${L}s"
    kc_connect "$BPORT" && ok=$((ok + 1))
    echo "$KEY" >>"$T/short"
done
check "five devices connect with short-lived keys ($ok)" test "$ok" = 5
check "  ... B keeps a copy of each" test "$(kc_in_b)" = 5
sleep "$((L + 1)).2"
check "  ... still there once expired, until B retrieves again" \
    test "$(saef-key -s "$B" list kc | grep -c 'expired$')" = 5
maf_reg
check "a sixth device's first connection (a retrieval)" kc_connect "$BPORT"
check "  ... removed the expired copies" test "$(kc_in_b)" = 1
check_rc "  ... and kept the new one" 0 saef-key -s "$B" show kc "$KEY"
while read -r k; do
    check_rc "  ... $k is gone" 1 saef-key -s "$B" show kc "$k"
done <"$T/short"
check "B's copies are the MAF's live keys only" test "$(saef-key -s "$B" list kc | grep -c 'expired$')" = 0

for f in "$T"/*.log; do check_no_key "$f" $KA $KB $KCS; done
done_testing
