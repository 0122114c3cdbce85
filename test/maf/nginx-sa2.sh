#!/bin/bash
# The MAF-based SAEF with an unmodified nginx as Entity B (two workers that
# share B's store, so one retrieval serves both), and SA2: B as the client
# of A, over the same Kc.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
maf_start --store "$M" --fqdn maf.example.com
MAFCNF=("maf = maf.example.com $MAF" "maf_timeout = 1000")
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "role = both" "maf_kmid = b-km@maf.example.com" "${MAFCNF[@]}"
saef_cnf "$T/a.cnf" "$A" "entity_id = $IDA" "role = both" "${MAFCNF[@]}"
check_rc "A registers a key for B" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB
KEYID=$(cut -f1 "$T/out")

nginx_start "$T/b.cnf" 2
get() { # get VERSION: A's HTTP GET through its client shim
    printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' | timeout 10 saef-run --conf "$T/a.cnf" -- \
        openssl s_client -connect "127.0.0.1:$PORT" "$1" -ign_eof >"$T/client" 2>&1
}
# Until both workers have answered (at most 30 tries: the kernel's choice).
ok=0 n=0
: >"$T/pids"
while [ "$n" -lt 30 ] && [ "$(sort -u "$T/pids" | wc -l)" -lt 2 ]; do
    get -tls1_$((2 + n % 2))
    grep -q "oneM2M CSE" "$T/client" && grep -q "Cipher is .*\(PSK\|TLS_AES\)" "$T/client" && ok=$((ok + 1))
    sed -n 's/^worker //p' "$T/client" >>"$T/pids"
    n=$((n + 1))
done
check "A reaches nginx (B) with its MAF key over TLS 1.2 and 1.3, every time ($ok of $n)" test "$ok" = "$n" -a "$n" -ge 2
check "  ... served by both workers" test "$(sort -u "$T/pids" | wc -l)" = 2
sleep 0.3
check_grep "  ... bound to A's ID from the MAF" "accepted identity=\"$KEYID\" entity=\"$IDA\" framework=maf" "$T/nginx.log"
check "  ... with one retrieval for all workers (the shared store)" \
    test "$(grep -c 'POST /keyRetrieve -> 200' "$T/mafd.log")" = 1

# SA2 (TS-0003 8.2.2.3): B reaches A, a request-reachable AE/CSE, with the same Kc.
APORT=$(free_port)
saef_bg "$T/a-server.log" saef-run --conf "$T/a.cnf" -- openssl s_server -accept "127.0.0.1:$APORT" -nocert -quiet
wait_port "$APORT"
b_connect() { echo ping | timeout 10 saef-run --conf "$T/b.cnf" -- openssl s_client \
                  -connect "127.0.0.1:$APORT" -servername "$1" "$2" >"$T/client" 2>&1; }
b_connect C-devA -tls1_2
check_not "SA2: B does not offer Kc to a host that is not A" handshake_ok "$T/client"
for v in -tls1_2 -tls1_3; do
    b_connect "$IDA" $v
    check "SA2: B connects to A with the retrieved Kc ($v)" grep -q "established identity=\"$KEYID\"" "$T/client"
done
sleep 0.3
check_grep "  ... A bound the association to B" "accepted identity=\"$KEYID\" entity=\"$IDB\" framework=maf" "$T/a-server.log"
check "  ... and needed no MAF round trip" test "$(grep -c 'POST /keyRetrieve' "$T/mafd.log")" = 1
KC=$(saef-key -s "$A" show kc "$KEYID" --reveal --key-only)
for f in "$T"/*.log; do check_no_key "$f" $KA $KB "$KC"; done
done_testing
