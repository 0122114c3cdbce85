#!/bin/bash
# The association rules in unmodified openssl s_server / s_client (saef-run).
. "$SAEF_SRC/test/lib.sh"

K1=00112233445566778899AABBCCDDEEFF
K2=FFEEDDCCBBAA99887766554433221100
S="$T/keys.db"
saef-key -s "$S" init >/dev/null
saef-key -s "$S" add kpsa dev1@sp.example.com --hex $K1 --peer /sp.example.com/C-dev1
saef-key -s "$S" add kpsa anon@sp.example.com --hex $K1
saef-key -s "$S" add kpsa old@sp.example.com --hex $K1 --expires +2s
saef-key -s "$S" add kpsa other@sp.example.com --hex $K1 --self /sp.example.com/other-cse
saef-key -s "$S" add kpsa mine@sp.example.com --hex $K1 --self /sp.example.com/in-cse
# Bound to authorities a client names in SNI (the server's sni list).
saef-key -s "$S" add kpsa listed@sp.example.com --hex $K1 --self cse1.example.com
saef-key -s "$S" add kpsa unlisted@sp.example.com --hex $K1 --self cse2.example.com

conf() { f=$1; shift; saef_cnf "$f" "$S" "entity_id = /sp.example.com/in-cse" "role = server" "$@"; }
conf "$T/server.cnf"

# server LOG [s_server args...]: preloaded s_server on a fresh port ($PORT).
server() {
    log=$1; shift
    PORT=$(free_port ${UDP:-})
    saef_bg "$log" env OPENSSL_CONF="${CONF:-$T/server.cnf}" saef-run -- \
        openssl s_server -accept "127.0.0.1:$PORT" -nocert -quiet "$@"
    SRV=$SAEF_LAST_PID
    if [ -n "${UDP:-}" ]; then wait_udp "$PORT"; else wait_port "$PORT"; fi
}
stop() { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }

# client ID KEY [s_client args...]: a native PSK client; output in $T/client.
client() {
    id=$1 key=$2; shift 2
    echo "ping-$RANDOM" | OPENSSL_CONF=/dev/null timeout 10 openssl s_client \
        -connect "127.0.0.1:$PORT" -psk_identity "$id" -psk "$key" "$@" >"$T/client" 2>&1
}
# ok: the handshake completed (the client saw a cipher and no alert)
hs_ok() { handshake_ok "$T/client"; }

server "$T/s1.log"
client dev1@sp.example.com $K1 -tls1_2 -cipher PSK-AES128-CBC-SHA256
check "TLS 1.2 with TLS_PSK_WITH_AES_128_CBC_SHA256" hs_ok
check_grep "  ... negotiated the TS-0003 suite" "Cipher is PSK-AES128-CBC-SHA256" "$T/client"
client dev1@sp.example.com $K1 -tls1_3
check "TLS 1.3 external PSK (client prefers SHA-384)" hs_ok
client dev1@sp.example.com $K1 -tls1_2 -cipher ECDHE-PSK-AES128-CBC-SHA256
check "TLS 1.2 ECDHE-PSK for forward secrecy" hs_ok
client anon@sp.example.com $K1 -tls1_2
check "record without a peer entity" hs_ok
client dev1@sp.example.com $K1 -tls1 -cipher PSK-AES128-CBC-SHA:@SECLEVEL=0
check_not "TLS 1.0 refused" hs_ok
sleep 0.3
check_grep "audit line binds to the AE-ID" 'association accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1" framework=psk protocol=TLSv1.2 cipher=PSK-AES128-CBC-SHA256 peer=127.0.0.1:' "$T/s1.log"
check_grep "audit line for TLS 1.3" 'entity="/sp.example.com/C-dev1" framework=psk protocol=TLSv1.3' "$T/s1.log"
check_grep "no peer entity: Credential-ID 12-KpsaID" 'entity="12-anon@sp.example.com"' "$T/s1.log"

# Refusals: every one looks like a wrong key to the client, and says why in the log.
alert() { grep -o "alert [a-z ]*" "$T/client" | head -1; }
client nobody@sp.example.com $K1 -tls1_2
check_not "unknown identity refused" hs_ok
unknown_alert=$(alert)
client dev1@sp.example.com $K2 -tls1_2
check_not "wrong key refused" hs_ok
check "  ... the unknown identity got the wrong key's alert ($unknown_alert)" \
    test -n "$unknown_alert" -a "$unknown_alert" = "$(alert)"
client dev1@sp.example.com $K2 -tls1_3
check_not "wrong key refused (TLS 1.3)" hs_ok
client other@sp.example.com $K1 -tls1_2
check_not "record bound to another CSE refused" hs_ok
client mine@sp.example.com $K1 -tls1_2
check "record bound to this CSE accepted" hs_ok
client "$(head -c 128 /dev/zero | tr '\0' a)" $K1 -tls1_2
check_not "128-byte unknown identity refused" hs_ok
sleep 2.1
client old@sp.example.com $K1 -tls1_2
check_not "expired record refused" hs_ok
client old@sp.example.com $K1 -tls1_3
check_not "expired record refused (TLS 1.3)" hs_ok
# A refused identity fails on a random key, never one a client can guess:
# the all-zero key, of 16 bytes (a usual key) or 32 (a refusal key's
# length), opens none of them; each try reached the refusal.
refusals() { grep -c -E 'refused identity="(nobody|other|old)@sp.example.com"' "$T/s1.log"; }
sleep 0.3
before=$(refusals) tries=0
for id in nobody@sp.example.com other@sp.example.com old@sp.example.com; do
    for len in 16 32; do
        zero=$(printf "%0$((2 * len))d" 0)
        for v in tls1_2 tls1_3; do
            tries=$((tries + 1))
            client "$id" "$zero" -$v
            check_not "refused $id with the all-zero $len-byte key ($v)" hs_ok
        done
    done
done
sleep 0.3
check "  ... each of the $tries tries refused by saef" test "$(refusals)" = $((before + tries))
check_grep "log: unknown identity" 'refused identity="nobody@sp.example.com" reason="unknown identity"' "$T/s1.log"
check_grep "log: bound elsewhere" 'refused identity="other@sp.example.com" reason="key bound to another server"' "$T/s1.log"
check_grep "log: expired" 'refused identity="old@sp.example.com" reason="key expired"' "$T/s1.log"
check_grep "log: wrong key fails the handshake" 'handshake failed identity="dev1@sp.example.com"' "$T/s1.log"

# Rotation while the server runs: the new key at once, the old one refused.
saef-key -s "$S" add kpsa dev1@sp.example.com --hex $K2 --peer /sp.example.com/C-dev1 --replace
client dev1@sp.example.com $K2 -tls1_2
check "rotated key used at the next handshake" hs_ok
client dev1@sp.example.com $K1 -tls1_2
check_not "old key refused after rotation" hs_ok
saef-key -s "$S" add kpsa new@sp.example.com --hex $K1
client new@sp.example.com $K1 -tls1_3
check "key added while running is usable" hs_ok
saef-key -s "$S" del kpsa new@sp.example.com
client new@sp.example.com $K1 -tls1_3
check_not "deleted key refused" hs_ok
stop
check_no_key "$T/s1.log" $K1 $K2

# Off unless configured: role off (the default) leaves the program alone.
CONF="$T/off.cnf"; conf "$CONF"; sed -i '/^role = /d' "$CONF"
server "$T/off.log"
client dev1@sp.example.com $K2 -tls1_2
check_not "role off: the program is left alone (no PSK)" hs_ok
stop
check_nogrep "  ... and saef logs nothing" "saef:" "$T/off.log"
unset CONF

# refuse = unknown_psk_identity
CONF="$T/uk.cnf"; conf "$CONF" "refuse = unknown_psk_identity"
server "$T/s2.log"
client nobody@sp.example.com $K1 -tls1_2
check_grep "refuse = unknown_psk_identity sends that alert" "alert unknown psk identity" "$T/client"
stop; unset CONF

# sni: a key bound to an authority is accepted when the client names it in
# SNI and, once the server lists the authorities it answers for, only if
# it is one of them.
server "$T/sni0.log"
for v in tls1_2 tls1_3; do
    client unlisted@sp.example.com $K1 -$v -servername cse2.example.com
    check "no sni list: a key bound to the SNI name is accepted ($v)" hs_ok
done
stop
CONF="$T/sni.cnf"; conf "$CONF" "sni = cse1.example.com, cse3.example.com"
server "$T/sni.log"
tries=0
for v in tls1_2 tls1_3; do
    tries=$((tries + 1))
    client listed@sp.example.com $K1 -$v -servername CSE1.example.com
    check "sni lists it: a key bound to the SNI name is accepted ($v)" hs_ok
    client unlisted@sp.example.com $K1 -$v -servername cse2.example.com
    check_not "sni does not list it: a key bound to the SNI name is refused ($v)" hs_ok
done
stop; unset CONF
check "  ... each logged as bound elsewhere ($tries)" test "$(grep -c \
    'refused identity="unlisted@sp.example.com" reason="key bound to another server"' "$T/sni.log")" = "$tries"

# The program's own cipher list and its own PSK callback.
server "$T/s3.log" -cipher ECDHE-RSA-AES128-GCM-SHA256
client dev1@sp.example.com $K2 -tls1_2
check "program's cipher list does not remove the PSK suites" hs_ok
stop
server "$T/s4.log" -psk_identity native-id -psk AABBCCDD
client dev1@sp.example.com $K2 -tls1_2
check "chained: saef identity works next to s_server -psk" hs_ok
client native-id AABBCCDD -tls1_2
check "chained: the program's own PSK still works" hs_ok
stop

# DTLS 1.2 with TLS_PSK_WITH_AES_128_CCM_8
UDP=udp server "$T/s5.log" -dtls1_2
echo ping | OPENSSL_CONF=/dev/null timeout 5 openssl s_client -dtls1_2 -connect "127.0.0.1:$PORT" \
    -cipher PSK-AES128-CCM8 -psk_identity dev1@sp.example.com -psk $K2 >"$T/client" 2>&1
check "DTLS 1.2 with PSK-AES128-CCM8" hs_ok
check_grep "  ... negotiated CCM_8" "Cipher is PSK-AES128-CCM8" "$T/client"
stop; unset UDP

# Entity A: preloaded s_client against a native s_server -psk.
conf "$T/client.cnf"; sed -i 's/^role = server/role = client/' "$T/client.cnf"
saef-key -s "$S" add kpsa dev1@sp.example.com --hex $K2 --peer localhost --replace
PORT=$(free_port)
saef_bg "$T/native.log" env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$PORT" \
    -nocert -psk_identity dev1@sp.example.com -psk $K2 -quiet
wait_port "$PORT"
for v in tls1_2 tls1_3; do
    echo ping | OPENSSL_CONF="$T/client.cnf" timeout 10 saef-run -- openssl s_client \
        -connect "127.0.0.1:$PORT" -servername localhost -$v >"$T/client" 2>&1
    check "preloaded s_client ($v) against native s_server -psk" hs_ok
    check_grep "  ... client audit line" 'association established identity="dev1@sp.example.com" entity="localhost"' "$T/client"
done
stop_native() { kill "$SAEF_LAST_PID"; wait "$SAEF_LAST_PID" 2>/dev/null; }
stop_native
# A HelloRetryRequest (the server wants P-384, the client guessed X25519)
# calls the client's PSK callback again with another digest object.
PORT=$(free_port)
saef_bg "$T/native.log" env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$PORT" \
    -nocert -psk_identity dev1@sp.example.com -psk $K2 -groups P-384 -quiet
wait_port "$PORT"
echo ping | OPENSSL_CONF="$T/client.cnf" timeout 10 saef-run -- openssl s_client \
    -connect "127.0.0.1:$PORT" -servername localhost -tls1_3 -groups X25519:P-384 -msg >"$T/client" 2>&1
check "preloaded s_client completes the PSK handshake after HRR" hs_ok
check "  ... there was a HelloRetryRequest (two ClientHellos)" \
    test "$(grep -c '>>> .*ClientHello' "$T/client")" = 2
saef-key -s "$S" add kpsa dev1@sp.example.com --hex $K2 --peer localhost --expires +1s --replace
sleep 1.2
echo ping | OPENSSL_CONF="$T/client.cnf" timeout 10 saef-run -- openssl s_client \
    -connect "127.0.0.1:$PORT" -servername localhost -tls1_2 >"$T/client" 2>&1
check_not "client does not offer an expired key" hs_ok
check_grep "  ... and says so" "no key to offer" "$T/client"
done_testing
