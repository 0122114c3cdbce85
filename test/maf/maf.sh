#!/bin/bash
# The MAF-based SAEF end to end with real processes: saef-mafd (the MAF),
# Entity A registering with saef-maf, Entity B a preloaded s_server that
# retrieves Kc from the MAF; no key configured between A and B.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
KX=2122232425262728292A2B2C2D2E2F30 X="$T/x.db"
saef-key -s "$X" init >/dev/null
saef-key -s "$M" add km x-km@maf.example.com --hex $KX --peer //sp.example.com/other-cse
saef-key -s "$B" add kpsa pre@sp.example.com --hex $KX --peer //sp.example.com/C-pre
saef-key -s "$X" add km x-km@maf.example.com --hex $KX
KU=3132333435363738393A3B3C3D3E3F40
saef-key -s "$M" add km u-km@maf.example.com --hex $KU --peer $'//sp.example.com/\xff'

# shellcheck disable=SC2120 # options are optional
start_maf() { maf_start --store "$M" --fqdn maf.example.com "$@"; }
start_maf

cnf() { # cnf FILE STORE ROLE [LINE...]
    f=$1 s=$2 r=$3
    shift 3
    saef_cnf "$f" "$s" "entity_id = $IDB" "role = $r" "maf = maf.example.com $MAF" "maf_timeout = 1000" "$@"
}
cnf "$T/b.cnf" "$B" server "maf_kmid = b-km@maf.example.com"
cnf "$T/a.cnf" "$A" client
cnf "$T/x.cnf" "$X" server "maf_kmid = x-km@maf.example.com"

check_rc "A registers a key for B at the MAF" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h --label demo
KEYID=$(cut -f1 "$T/out")
check "  ... and prints HEX32@MAF-FQDN" test -n "$(echo "$KEYID" | grep -E '^[0-9A-F]{32}@maf.example.com$')"
check_rc "  ... stored as a kc record in A's store" 0 saef-key -s "$A" show kc "$KEYID"
check_grep "  ... bound to IdB" "peer: $IDB" "$T/out"
check_rc "  ... the MAF holds the registration" 0 saef-key -s "$M" show kc "$KEYID"
check_grep "  ... from A, for B" "self: $IDA" "$T/out"

BPORT=$(free_port)
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"
# A handshake that completed: s_client names a cipher and reports no failure.
hs_ok() { handshake_ok "$T/client"; }
a_connect() { echo ping | timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_client \
                  -connect "127.0.0.1:$BPORT" "$@" >"$T/client" 2>&1; }
established() { grep -q "association established identity=\"$KEYID\"" "$T/client"; }
a_connect -tls1_2
check "A connects to B with the MAF key (TLS 1.2)" established
check_rc "  ... B cached Kc in its store" 0 saef-key -s "$B" show kc "$KEYID"
check_grep "  ... bound to A's ID from the MAF" "peer: $IDA" "$T/out"
a_connect -tls1_3
check "A connects again (TLS 1.3), from B's cache" established
sleep 0.3
check_grep "B bound the association to A" "accepted identity=\"$KEYID\" entity=\"$IDA\" framework=maf" "$T/b.log"
check "  ... with one retrieval at the MAF" test "$(grep -c 'POST /keyRetrieve -> 200' "$T/mafd.log")" = 1

# A Kc whose SUID is not the one for TLS (kc_suid, 32) is no connection key
# here: B refuses it from the MAF's answer and from its cached copy. The
# MAF's record is a registration from A for B like any other (adminFQDN
# and all), but with SUID 12.
KS=$(openssl rand -hex 16)
SU=$(openssl rand -hex 16 | tr a-f A-F)@maf.example.com
echo '{"type":"kc","identity":"'"$SU"'","key":"'"$KS"'","peer":"'$IDB'","self":"'$IDA'","expires":"'"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"'","suid":12,"meta":"{\"adminFQDN\":\"sp.example.com\"}"}' |
    saef-key -s "$M" import --format json - >/dev/null
retrieved=$(grep -c 'POST /keyRetrieve -> 200' "$T/mafd.log") tries=0
for v in tls1_2 tls1_3; do
    tries=$((tries + 1))
    echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$BPORT" -$v \
        -psk_identity "$SU" -psk "$KS" >"$T/client" 2>&1
    check_not "a Kc with SUID 12 opens no association ($v)" hs_ok
done
sleep 0.3
check "  ... the MAF released it to B once: the second refusal came from B's copy" \
    test "$(grep -c 'POST /keyRetrieve -> 200' "$T/mafd.log")" = $((retrieved + 1))
check_rc "  ... B's copy keeps the SUID" 0 saef-key -s "$B" show kc "$SU"
check_grep "  ... (12)" "^suid: 12" "$T/out"
check "  ... B refused it each time ($tries) for its SUID" \
    test "$(grep -c "refused identity=\"$SU\" reason=\"connection key has the wrong SUID\"" "$T/b.log")" = "$tries"

FUTURE=$(date -u -d '+1 hour' +%Y%m%dT%H%M%S)
reg() { echo '{"expirationTime":"'"${1:-$FUTURE}"'","adminFQDN":"sp.example.com","SUID":'"${2:-32}"',"targetIDs":'"${3:-[\"$IDB\"]}"'}'; }

# The derivation checked independently: openssl's export of the same connection.
maf_raw a-km@maf.example.com $KA POST /keyReg "$(reg)"
check "raw key registration: 201" test "$(maf_status)" = 201
ekm=$(sed -n 's/^ *Keying material: *//p' "$T/raw")
rel=$(grep -o '"relativeKeyID":"[0-9A-F]*"' "$T/raw" | cut -d'"' -f4)
check "  ... RelativeKeyID = hex(KcID) = export bytes 0-15" test -n "$rel" -a "$rel" = "${ekm:0:32}"
check_rc "  ... the MAF holds it" 0 saef-key -s "$M" show kc "$rel@maf.example.com" --reveal --key-only
check "  ... Kc = export bytes 16-47" test "$(cat "$T/out")" = "${ekm:32:64}"

# Bad requests: a clear status, and nothing changes.
before=$(saef-key -s "$M" list kc | wc -l)
bad() { # bad STATUS DESC METHOD PATH [BODY]
    want=$1 desc=$2; shift 2
    maf_raw a-km@maf.example.com $KA "$@"
    check "$desc: $want" test "$(maf_status)" = "$want"
}
bad 400 "malformed JSON" POST /keyReg '{"expirationTime":'
bad 400 "not an object" POST /keyReg '[1,2]'
bad 400 "JSON error near bytes JSON cannot carry" POST /keyReg $'{"a\\u000\xd0\x97":1}'
check_grep "  ... still answered with an error text (fuzz_mafd_request)" '"error":"malformed JSON' "$T/raw"
bad 400 "missing SUID" POST /keyReg '{"expirationTime":"'$FUTURE'","adminFQDN":"a","targetIDs":["'$IDB'"]}'
bad 400 "extra field" POST /keyReg "$(reg | sed 's/}$/,"color":"red"}/')"
bad 400 "two targets" POST /keyReg "$(reg "" 32 '["'$IDB'","//sp.example.com/x"]')"
bad 400 "relative target ID" POST /keyReg "$(reg "" 32 '["in-cse"]')"
bad 400 "SUID not 32" POST /keyReg "$(reg "" 12)"
bad 400 "expirationTime in the past" POST /keyReg "$(reg 20200101T000000)"
bad 400 "another MAF-FQDN" POST /keyReg "$(reg | sed 's/^{/{"MAF-FQDN":"other.example.com",/')"
bad 413 "body over the limit" POST /keyReg "{\"labels\":[\"$(head -c 20000 /dev/zero | tr '\0' x)\"]}"
bad 405 "GET /keyReg" GET /keyReg
bad 404 "unknown resource" POST /nothing '{}'
bad 400 "retrieval with a bad id" POST /keyRetrieve '{"relativeKeyID":"xyz"}'
bad 404 "retrieval of an unknown id" POST /keyRetrieve '{"relativeKeyID":"00000000000000000000000000000000"}'
bad 403 "retrieval by the source, not the target" POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
snapshot=$(saef-key -s "$M" show kc "$rel@maf.example.com")
bad 400 "an update naming another MAF-FQDN" PUT "/keyReg/$rel" '{"MAF-FQDN":"other.example.com","labels":["x"]}'
bad 400 "an update with an expirationTime in the past" PUT "/keyReg/$rel" '{"expirationTime":"20200101T000000"}'
bad 400 "an update with two targets" PUT "/keyReg/$rel" '{"targetIDs":["'$IDB'","//sp.example.com/x"]}'
bad 400 "an update with nothing to change" PUT "/keyReg/$rel" '{}'
bad 400 "a MAF-FQDN that is not a string" POST /keyReg "$(reg | sed 's/^{/{"MAF-FQDN":7,/')"
check_grep "  ... says so" '"error":"MAF-FQDN must be a string"' "$T/raw"
bad 400 "a retrieval with an unknown field" POST /keyRetrieve '{"relativeKeyID":"'$rel'","x":1}'
check_grep "  ... names it" "unknown field 'x'" "$T/raw"
check "  ... the registration is as it was" test "$(saef-key -s "$M" show kc "$rel@maf.example.com")" = "$snapshot"
maf_raw x-km@maf.example.com $KX DELETE "/keyReg/$rel"
check "deregistration by another client: 403" test "$(maf_status)" = 403
check "  ... nothing changed" test "$(saef-key -s "$M" list kc | wc -l)" = "$before"
# Another client (X, a MAF client and so a valid target) cannot update it:
# not re-target the key to itself, not stretch its life.
maf_raw x-km@maf.example.com $KX PUT "/keyReg/$rel" '{"targetIDs":["//sp.example.com/other-cse"]}'
check "an update by another client re-targeting the key to itself: 403" test "$(maf_status)" = 403
check_grep "  ... only the source may change it" "only the source client may change it" "$T/raw"
maf_raw x-km@maf.example.com $KX PUT "/keyReg/$rel" '{"expirationTime":"'"$(date -u -d '+3 hours' +%Y%m%dT%H%M%S)"'"}'
check "an update of the expiry by another client: 403" test "$(maf_status)" = 403
check "  ... the registration is as it was" test "$(saef-key -s "$M" show kc "$rel@maf.example.com")" = "$snapshot"
maf_raw x-km@maf.example.com $KX POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
check "  ... and that client still cannot retrieve the key" test "$(maf_status)" = 403
maf_raw b-km@maf.example.com $KB POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
check "retrieval by the target: 200" test "$(maf_status)" = 200
check_grep "  ... with the source client and adminFQDN" '"sourceMAFClientID":"'$IDA'"' "$T/raw"
check_grep "  ... and adminFQDN" '"adminFQDN":"sp.example.com"' "$T/raw"
check_grep "  ... and the key" '"keyValue":"'"${ekm:32:64}"'"' "$T/raw"

# A MAF Client ID that JSON cannot carry (found by fuzz_mafd_request).
maf_raw u-km@maf.example.com $KU POST /keyReg "$(reg)"
check "client ID not UTF-8: 401" test "$(maf_status)" = 401
check "  ... nothing registered" test "$(saef-key -s "$M" list kc | wc -l)" = "$before"

# Update and deregistration by the source, with saef-maf.
check_rc "saef-maf update --expires" 0 saef-maf -s "$A" update --maf "$MAF" --key "$KEYID" --expires +2h
expiry() { saef-key -s "$1" show kc "$KEYID" | grep '^expires:'; }
check "  ... A's record takes the expiry the MAF answered" test "$(expiry "$A")" = "$(expiry "$M")"
check_rc "saef-maf deregister" 0 saef-maf -s "$A" deregister --maf "$MAF" --key "$rel@maf.example.com"
check_rc "  ... gone from the MAF" 1 saef-key -s "$M" show kc "$rel@maf.example.com"
check_rc "deregistering again: not found" 1 saef-maf -s "$A" deregister --maf "$MAF" --key "$rel@maf.example.com"

# Another server that is not the target: the MAF refuses, its handshake fails.
XPORT=$(free_port)
saef_bg "$T/x.log" saef-run --conf "$T/x.cnf" -- openssl s_server -accept "127.0.0.1:$XPORT" -nocert -quiet
wait_port "$XPORT"
echo ping | timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_client -connect "127.0.0.1:$XPORT" \
    -tls1_2 >"$T/client" 2>&1
check_not "a server that is not the target gets no key" hs_ok
sleep 0.3
check_grep "  ... the MAF said 403" "POST /keyRetrieve -> 403" "$T/mafd.log"
check_grep "  ... and the server logged why" "not the key's target" "$T/x.log"

# Unknown MAF identities: refused like a wrong key, one MAF round trip for many tries.
UNKNOWN=0123456789ABCDEF0123456789ABCDEF@maf.example.com
before=$(grep -c "keyRetrieve" "$T/mafd.log")
for i in 1 2 3 4 5; do
    echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$BPORT" \
        -tls1_2 -psk_identity $UNKNOWN -psk $KA >"$T/client" 2>&1
done
check_not "an identity the MAF does not know is refused" hs_ok
check "  ... five tries cost one MAF round trip (negative cache)" \
    test "$(( $(grep -c "keyRetrieve" "$T/mafd.log") - before ))" = 1
sleep 0.3
check_grep "  ... later ones refused from the cache" "refused by the MAF recently" "$T/b.log"

# A wrong Km fails the MAF handshake.
saef-key -s "$T/w.db" init >/dev/null
saef-key -s "$T/w.db" add km a-km@maf.example.com --hex FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF --self $IDA
check_rc "a wrong Km fails at the MAF" 4 saef-maf -s "$T/w.db" register --maf "$MAF" --target $IDB

# Lifetime: a short-lived key works, then B fails the handshake (also from its cache).
# A fresh MAF first: its purge, a minute after start, must not remove the
# expired key before the MAF is asked for it (slow runs reach that minute).
kill "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done
start_maf
LIFE=$((2 * SAEF_SLOW))
check_rc "A registers a $LIFE-second key" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +${LIFE}s
SHORT=$(cut -f1 "$T/out")
saef-key -s "$A" del kc "$KEYID"
a_connect -tls1_2
check "  ... it works at once" grep -q "established identity=\"$SHORT\"" "$T/client"
sleep "$LIFE.2"
echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$BPORT" -tls1_2 \
    -psk_identity "$SHORT" -psk "$(saef-key -s "$A" show kc "$SHORT" --reveal --key-only)" >"$T/client" 2>&1
check_not "  ... and fails after expirationTime (B's cached copy too)" hs_ok
sleep 0.3
check_grep "  ... B says expired" "identity=\"$SHORT\" reason=\"key expired\"" "$T/b.log"
maf_raw b-km@maf.example.com $KB POST /keyRetrieve '{"relativeKeyID":"'${SHORT:0:32}'"}'
check "  ... the MAF answers 410 for it" test "$(maf_status)" = 410
check_rc "  ... and purged it" 1 saef-key -s "$M" show kc "$SHORT"

# Restart: registrations survive; MAF down: B fails fast and still serves others.
check_rc "A registers another key" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h
LATE=$(cut -f1 "$T/out")
kill -9 "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done
start_maf
check_rc "the MAF restarted after kill -9 keeps the registration" 0 saef-key -s "$M" show kc "$LATE"
kill "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done
start=$(date +%s%N)
echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$BPORT" -tls1_2 \
    -psk_identity "$LATE" -psk "$(saef-key -s "$A" show kc "$LATE" --reveal --key-only)" >"$T/client" 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_not "MAF down: the MAF key fails" hs_ok
check "  ... within the time limit (${ms} ms)" test "$ms" -lt $((3000 * SAEF_SLOW))
echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$BPORT" -tls1_2 \
    -psk_identity pre@sp.example.com -psk $KX >"$T/client" 2>&1
check "  ... and B still serves pre-provisioned clients" hs_ok
for f in "$T"/*.log; do
    check_no_key "$f" $KA $KB $KX
done
done_testing
