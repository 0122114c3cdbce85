#!/bin/bash
# Entity A with many keys picks the one for the target it reaches: the
# targets list maps a host name (SNI) or an address:port to IdB; a live kc
# for IdB beats a kpsa for it; an unknown target gets no key.
. "$SAEF_SRC/test/lib.sh"
B="$T/b.db" A="$T/a.db"
K_IN=00112233445566778899AABBCCDDEE01 K_MN=00112233445566778899AABBCCDDEE02
K_OT=00112233445566778899AABBCCDDEE03 K_KC=00112233445566778899AABBCCDDEE04
KC=0123456789ABCDEF0123456789ABCDEF@maf.example.com
IN=//sp.example.com/in-cse

# Entity B knows all of A's keys (as one server answering for several IdBs).
saef-key -s "$B" init >/dev/null
for k in a-in:$K_IN a-mn:$K_MN a-other:$K_OT; do
    saef-key -s "$B" add kpsa "${k%%:*}@sp.example.com" --hex "${k#*:}" --peer /sp.example.com/C-a
done
saef-key -s "$B" add kc $KC --hex $K_KC --suid 32 --peer /sp.example.com/C-a
saef_cnf "$T/b.cnf" "$B" "entity_id = $IN" "role = server" "maf = maf.example.com https://127.0.0.1:9"
PORT=$(free_port)
saef_bg "$T/server.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$PORT" -nocert -www
wait_port "$PORT"

saef-key -s "$A" init >/dev/null
saef-key -s "$A" add kpsa a-in@sp.example.com --hex $K_IN --peer $IN
saef-key -s "$A" add kpsa a-mn@sp.example.com --hex $K_MN --peer /id-mn
saef-key -s "$A" add kpsa a-other@sp.example.com --hex $K_OT --peer /id-other
saef_cnf "$T/a.cnf" "$A" "role = client" \
    "targets = in-cse.example.com = $IN, 127.0.0.1:$PORT=/id-mn"
c() { timeout 10 saef-run --conf "$T/a.cnf" -- curl -sS -k "$@" >"$T/out" 2>"$T/err"; }
sc() { echo ping | timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_client "$@" >"$T/out" 2>&1; }

c --resolve "in-cse.example.com:$PORT:127.0.0.1" "https://in-cse.example.com:$PORT/"
check_grep "curl by host name: the kpsa for the IdB it maps to" \
    "association established identity=\"a-in@sp.example.com\" entity=\"$IN\"" "$T/err"
check_grep "  ... and B served it" "PSK-AES128-CBC-SHA256\|TLS_AES_128_GCM_SHA256" "$T/out"
c --tlsv1.2 --tls-max 1.2 --resolve "In-CSE.example.com:$PORT:127.0.0.1" "https://In-CSE.example.com:$PORT/"
check_grep "  ... TLS 1.2, host name in another case" 'established identity="a-in@sp.example.com"' "$T/err"

for v in tls1_2 tls1_3; do
    sc -connect "127.0.0.1:$PORT" -noservername -$v
    check "s_client without SNI ($v): the address:port picks IdB" handshake_ok "$T/out"
    check_grep "  ... the kpsa for /id-mn" 'established identity="a-mn@sp.example.com" entity="/id-mn"' "$T/out"
done

# s_time's connect BIO connects after TLS 1.3 chose its key: its address.
timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_time -connect "127.0.0.1:$PORT" -new -time 1 \
    -tls1_3 >"$T/out" 2>&1
check_grep "s_time (connect BIO, TLS 1.3): the address:port picks IdB" \
    'established identity="a-mn@sp.example.com" entity="/id-mn"' "$T/out"
check_nogrep "  ... for every connection" "no key to offer" "$T/out"

# A live kc registered for IdB beats the kpsa for it, even a newer kpsa; an
# expired one does not.
saef-key -s "$A" add kc $KC --hex $K_KC --suid 32 --peer $IN --expires +1h
sleep 1
saef-key -s "$A" add kpsa a-in@sp.example.com --hex $K_IN --peer $IN --replace
for v in 1.2 1.3; do
    c --tlsv$v --tls-max $v --resolve "in-cse.example.com:$PORT:127.0.0.1" "https://in-cse.example.com:$PORT/"
    check_grep "kc for IdB preferred over its kpsa (TLS $v)" \
        "established identity=\"$KC\" entity=\"$IN\" framework=maf" "$T/err"
done
saef-key -s "$A" add kc $KC --hex $K_KC --suid 32 --peer $IN --expires +1s --replace
sleep 2.1
c --resolve "in-cse.example.com:$PORT:127.0.0.1" "https://in-cse.example.com:$PORT/"
check_grep "  ... not once it expired: the kpsa again" 'established identity="a-in@sp.example.com"' "$T/err"

# Unknown targets with several keys: nothing offered, the handshake fails.
c --resolve "other.example.com:$PORT:127.0.0.1" "https://other.example.com:$PORT/"
check_grep "unmapped host name: no key to offer" 'no key to offer for target "other.example.com"' "$T/err"
check_nogrep "  ... no association" "established" "$T/err"
check_not "  ... and curl got nothing" grep -q "Cipher" "$T/out"
saef_cnf "$T/a2.cnf" "$A" "role = client" "targets = 127.0.0.1:1=/id-mn"
echo ping | timeout 10 saef-run --conf "$T/a2.cnf" -- openssl s_client -connect "127.0.0.1:$PORT" \
    -noservername >"$T/out" 2>&1
check_grep "unmapped address without SNI: no key to offer" "no key to offer for target \"(none" "$T/out"
check_not "  ... and the handshake fails" handshake_ok "$T/out"

# Bad entries: an error naming the key and the entry.
for bad in "in-cse.example.com" "127.0.0.1=/id-mn" "in-cse.example.com:443=/x" \
    "a.example.com=/x, a.example.com=/y"; do
    saef_cnf "$T/bad.cnf" "$A" "role = client" "targets = $bad"
    OPENSSL_CONF="$T/bad.cnf" openssl list -providers >"$T/out" 2>&1
    check_grep "bad targets \"$bad\" refused" "bad value for 'targets'.*entry \"" "$T/out"
done

sleep 0.3
check_grep "B accepted the kc" "accepted identity=\"$KC\"" "$T/server.log"
check_no_key "$T/server.log" $K_IN
check_no_key "$T/err" $K_IN
done_testing
