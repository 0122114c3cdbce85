#!/bin/bash
# MAF Client Registration (TS-0003 8.8.2.3-8.8.2.6) with a MAF that requires
# it (--require-client-reg): register, configuration retrieval, update,
# de-registration, and key registration / retrieval gated on it.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
ADMIN=sp.example.com
maf_start --store "$M" --fqdn maf.example.com --require-client-reg
maf() { saef-maf -s "$1" "${@:2}" --maf "$MAF"; }

check_rc "key registration before client registration: refused" 4 maf "$A" register --target $IDB --admin-fqdn $ADMIN
check_grep "  ... the MAF says to register first" "POST /clientReg" "$T/err"
check "  ... nothing registered" test "$(saef-key -s "$M" list kc | wc -l)" = 1  # the header

check_rc "A registers as a MAF client" 0 maf "$A" client-register --admin-fqdn $ADMIN --label fleet --expires +30d
REG=$(cut -f1 "$T/out")
check "  ... gets a mafClientRegID" test -n "$(echo "$REG" | grep -E '^[0-9A-F]{32}$')"
check "  ... with its authenticated MAF Client ID" test "$(cut -f2 "$T/out")" = "$IDA"
check_rc "  ... kept by the MAF as a creg record" 0 saef-key -s "$M" show creg "$REG"
check_grep "  ... for the client" "peer: $IDA" "$T/out"
check_rc "a second registration for the same stakeholder: refused" 4 maf "$A" client-register --admin-fqdn $ADMIN
check_grep "  ... 409, naming the registration" "409.*$REG" "$T/err"
check_rc "a registration for another stakeholder is separate" 0 maf "$A" client-register --admin-fqdn other.example.com --expires +2s
OTHER=$(cut -f1 "$T/out")
check "  ... with its own ID" test "$OTHER" != "$REG" -a -n "$OTHER"

check_rc "configuration retrieval" 0 maf "$A" client-config --reg "$REG"
check_grep "  ... mafClientCfg with the MAF-FQDN" '"mafClientCfg":{.*"fqdn":"maf.example.com"' "$T/out"
check_grep "  ... the adminFQDN" "\"adminFQDN\":\"$ADMIN\"" "$T/out"
check_grep "  ... the MAF's HTTP port" "\"httpPort\":$MPORT" "$T/out"
check_grep "  ... the labels" '"labels":\["fleet"\]' "$T/out"
check_rc "configuration retrieval by another client: refused" 4 maf "$B" client-config --reg "$REG"
check_grep "  ... 403" "403" "$T/err"
snapshot=$(saef-key -s "$M" show creg "$REG")
check_rc "update by another client: refused" 4 maf "$B" client-update --reg "$REG" --label taken --expires +90d
check_grep "  ... 403" "403.*only the registered client" "$T/err"
check_rc "de-registration by another client: refused" 4 maf "$B" client-deregister --reg "$REG"
check_grep "  ... 403" "403.*only the registered client" "$T/err"
check "  ... the registration is as it was" test "$(saef-key -s "$M" show creg "$REG")" = "$snapshot"
check_rc "update: labels" 0 maf "$A" client-update --reg "$REG" --label fleet --label north
check_grep "  ... answered with the new labels" '"labels":\["fleet","north"\]' "$T/out"
check_nogrep "  ... and only what changed" "expirationTime" "$T/out"
check_rc "update: expirationTime" 0 maf "$A" client-update --reg "$REG" --expires +60d
check_grep "  ... answered" '"expirationTime":"' "$T/out"
check_rc "update with nothing to change: usage error" 2 maf "$A" client-update --reg "$REG"

# Key registration and retrieval now pass the gate; B must register too.
check_rc "key registration after client registration" 0 maf "$A" register --target $IDB --admin-fqdn $ADMIN
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" role=server "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 1000" "maf_negative_ttl = 0"
saef_cnf "$T/a.cnf" "$A" "entity_id = $IDB" role=client
BPORT=$(free_port)
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"
a_connect() { echo ping | timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_client \
                  -connect "127.0.0.1:$BPORT" -tls1_2 >"$T/client" 2>&1; }
a_connect
check_not "B not registered with the stakeholder: the MAF refuses, the handshake fails" handshake_ok "$T/client"
sleep 0.3
check_grep "  ... the MAF said 403" "POST /keyRetrieve -> 403" "$T/mafd.log"
check_rc "B registers as a MAF client" 0 maf "$B" client-register --admin-fqdn $ADMIN
a_connect
check "  ... then A's MAF key works at B" handshake_ok "$T/client"

# Bad requests: a clear status, nothing changes.
FUTURE=$(date -u -d '+1 hour' +%Y%m%dT%H%M%S)
before=$(saef-key -s "$M" list creg | wc -l)
bad() { # bad STATUS DESC METHOD PATH [BODY]
    want=$1 desc=$2; shift 2
    maf_raw a-km@maf.example.com $KA "$@"
    check "$desc: $want" test "$(maf_status)" = "$want"
}
bad 400 "client registration without adminFQDN" POST /clientReg '{"expirationTime":"'$FUTURE'"}'
bad 400 "client registration with an unknown field" POST /clientReg '{"expirationTime":"'$FUTURE'","adminFQDN":"x.example.com","SUID":32}'
bad 400 "client registration in the past" POST /clientReg '{"expirationTime":"20200101T000000","adminFQDN":"x.example.com"}'
bad 400 "client registration for another MAF" POST /clientReg '{"MAF-FQDN":"other.example.com","expirationTime":"'$FUTURE'","adminFQDN":"x.example.com"}'
bad 400 "client registration, malformed JSON" POST /clientReg '{"adminFQDN":'
bad 405 "GET /clientReg" GET /clientReg
bad 405 "POST /clientReg/ID" POST "/clientReg/$REG" '{}'
bad 400 "update with no field" PUT "/clientReg/$REG" '{}'
bad 400 "an update for another MAF" PUT "/clientReg/$REG" '{"MAF-FQDN":"other.example.com","labels":["x"]}'
check_grep "  ... says which MAF this is" 'is not this MAF (maf.example.com)' "$T/raw"
bad 400 "an update with an unknown field" PUT "/clientReg/$REG" '{"labels":["x"],"SUID":32}'
check_grep "  ... names it" "unknown field 'SUID'" "$T/raw"
bad 404 "an unknown registration" GET /clientReg/00000000000000000000000000000000
bad 404 "a malformed registration ID" GET /clientReg/xyz
check "  ... nothing changed" test "$(saef-key -s "$M" list creg | wc -l)" = "$before"
check_rc "saef-key does not provision creg records" 2 saef-key -s "$M" add creg 00000000000000000000000000000000@x --hex 00

# Expiry, persistence, de-registration.
sleep 2.1
check_rc "an expired client registration: gone" 4 maf "$A" client-config --reg "$OTHER"
check_grep "  ... 410" "410" "$T/err"
check_rc "  ... and purged" 1 saef-key -s "$M" show creg "$OTHER"
kill -9 "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done
maf_start --store "$M" --fqdn maf.example.com --require-client-reg
check_rc "the MAF restarted after kill -9 keeps client registrations" 0 maf "$A" client-config --reg "$REG"
check_rc "de-registration" 0 maf "$A" client-deregister --reg "$REG"
check_grep "the MAF logs configuration retrievals by method" "GET /clientReg/$REG -> 200" "$T/mafd.log"
check_rc "  ... then the registration is unknown" 1 maf "$A" client-config --reg "$REG"
check_rc "  ... and key registration is refused again" 4 maf "$A" register --target $IDB --admin-fqdn $ADMIN
for f in "$T"/*.log; do
    check_no_key "$f" $KA $KB
done
done_testing
