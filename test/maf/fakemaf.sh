#!/bin/bash
# A MAF is authenticated by the PSK (Km) alone: no certificate is checked.
# A fake MAF with a certificate and no Km (fakemaf.py, TLS 1.3 and TLS 1.2)
# must get nothing from Entity A (saef-maf sends no request) and must not be
# believed by Entity B (a key it hands out opens no association).
. "$SAEF_SRC/test/lib.sh"
maf_world
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=maf.example.com -keyout "$T/fake.key" -out "$T/fake.pem" 2>/dev/null
# The key the fake MAF hands to B for any identity: its owner knows it.
EVIL=$(openssl rand -hex 16)

saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" role=server "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 2000" "maf_negative_ttl = 0"
hs() { grep -c "^handshake TLSv" "$1"; }

for v in 1.3 1.2; do
    # A B of its own per fake: no MAF left resting from the last one.
    BPORT=$(free_port)
    saef_bg "$T/b$v.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$BPORT" \
        -nocert -quiet
    B_PID=$SAEF_LAST_PID
    wait_port "$BPORT"
    EVILID=$(openssl rand -hex 16 | tr a-f A-F)@maf.example.com
    saef_bg "$T/fake$v.log" python3 "$SAEF_SRC/test/maf/fakemaf.py" "$MPORT" "$T/fake.pem" \
        "$T/fake.key" "$EVIL" "$IDA" $v
    FAKE=$SAEF_LAST_PID
    wait_port "$MPORT"
    before=$(saef-key -s "$A" list kc | wc -l)

    check_rc "TLS $v fake MAF: A's registration refused" 4 \
        saef-maf -s "$A" register --maf "$MAF" --target "$IDB" --expires +1h
    if [ $v = 1.3 ]; then
        # It got as far as a certificate handshake; only the PSK check stops it.
        check_grep "  ... after a certificate handshake with it" "^handshake TLSv1.3" "$T/fake$v.log"
        check_grep "  ... saef-maf says the MAF did not use the PSK" "did not authenticate with the PSK" "$T/err"
    else
        check_grep "  ... no TLS 1.2 suite without the PSK" "^handshake failed" "$T/fake$v.log"
    fi
    check "  ... A stored no key" test "$(saef-key -s "$A" list kc | wc -l)" = "$before"
    seen=$(hs "$T/fake$v.log")

    for tls in tls1_2 tls1_3; do
        echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$BPORT" \
            -$tls -psk_identity "$EVILID" -psk "$EVIL" >"$T/client" 2>&1
        check_not "TLS $v fake MAF: B does not take its key ($tls client)" handshake_ok "$T/client"
    done
    sleep 0.3
    check_grep "  ... B refused: the MAF was not authenticated" \
        "refused identity=\"$EVILID\" reason=\"MAF unreachable or not authenticated\"" "$T/b$v.log"
    check_rc "  ... and cached nothing" 1 saef-key -s "$B" show kc "$EVILID"
    if [ $v = 1.3 ]; then
        check "  ... B too had a certificate handshake with it" test "$(hs "$T/fake$v.log")" -gt "$seen"
    fi
    check_nogrep "the TLS $v fake MAF got no request at all" "^request" "$T/fake$v.log"
    kill "$FAKE" "$B_PID"
    wait "$FAKE" "$B_PID" 2>/dev/null
    check_no_key "$T/b$v.log" "$EVIL" $KB
done
done_testing
