#!/bin/bash
# A MAF's store and a server's (Entity B's) store hold kc records that mean
# opposite things (a registration: peer = target, self = source; a retrieved
# copy: peer = source). Sharing one is refused both ways, with a clear reason.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
maf_start --store "$M" --fqdn maf.example.com
check_rc "A registers a key for B" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h
KEY=$(cut -f1 "$T/out")
KC=$(saef-key -s "$A" show kc "$KEY" --reveal --key-only)
snapshot=$(saef-key -s "$M" show kc "$KEY")
connect() {
    echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$1" \
        -tls1_2 -psk_identity "$KEY" -psk "$KC" >"$T/client" 2>&1
    handshake_ok "$T/client"
}

# A server on the MAF's store (here one whose entity is the key's source,
# which the registration's self would otherwise match).
saef_cnf "$T/s.cnf" "$M" "entity_id = $IDA" "role = server" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com"
SPORT=$(free_port)
saef_bg "$T/s.log" saef-run --conf "$T/s.cnf" -- openssl s_server -accept "127.0.0.1:$SPORT" -nocert -quiet
wait_port "$SPORT"
check_not "a server on the MAF's store does not take a registration for its key" connect $SPORT
sleep 0.3
check_grep "  ... and says why" "reason=\"the store is a MAF's registry (saef-mafd)" "$T/s.log"
check_nogrep "  ... no association bound to the target" "accepted identity=\"$KEY\"" "$T/s.log"
check "  ... the registration is untouched" test "$(saef-key -s "$M" show kc "$KEY")" = "$snapshot"

# The MAF on a server's store: B retrieved the key into its store first.
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "role = server" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com"
BPORT=$(free_port)
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"
check "B retrieves and caches the key" connect $BPORT
check_rc "saef-mafd refuses a server's store" 3 timeout 5 saef-mafd --store "$B" \
    --fqdn maf.example.com --listen "127.0.0.1:$(free_port)"
check_grep "  ... and says why" "is a server's store: it holds connection keys retrieved" "$T/err"
for f in "$T"/*.log "$T/err"; do
    check_no_key "$f" $KA $KB $KC
done
done_testing
