#!/bin/bash
# GnuTLS interop both ways: gnutls-cli against a preloaded s_server (Entity B),
# a preloaded s_client (Entity A) against gnutls-serv. TLS 1.2, 1.3, DTLS 1.2.
. "$SAEF_SRC/test/lib.sh"
S="$T/keys.db"
dev1_store "$S"
saef_cnf "$T/openssl.cnf" "$S" "entity_id = /sp.example.com/in-cse"
export OPENSSL_CONF="$T/openssl.cnf"

TLS12="NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA256"
TLS13="NORMAL:-VERS-ALL:+VERS-TLS1.3:+PSK:+DHE-PSK:+ECDHE-PSK"
DTLS12="NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CCM-8:-MAC-ALL:+AEAD"

# gnutls-cli against the preloaded s_server.
gcli() {
    echo ping | timeout 10 gnutls-cli --port "$PORT" 127.0.0.1 --pskusername "$1" --pskkey "$2" \
        --priority "$3" ${4:-} >"$T/client" 2>&1
}
PORT=$(free_port)
saef_bg "$T/server.log" saef-run --role server -- openssl s_server -accept "127.0.0.1:$PORT" -nocert -quiet
wait_port "$PORT"
gcli dev1@sp.example.com $K "$TLS12"
check_grep "gnutls-cli TLS 1.2 PSK-AES128-CBC-SHA256" "(TLS1.2.*(PSK)-(AES-128-CBC)-(SHA256)" "$T/client"
gcli dev1@sp.example.com $K "$TLS13"
check_grep "gnutls-cli TLS 1.3 external PSK" "Handshake was completed" "$T/client"
gcli dev1@sp.example.com FFFF "$TLS12"
check_not "gnutls-cli with a wrong key refused" grep -q "Handshake was completed" "$T/client"
gcli nobody@sp.example.com $K "$TLS13"
check_not "gnutls-cli with an unknown identity refused (TLS 1.3)" grep -q "Handshake was completed" "$T/client"
# Identities OpenSSL's own clients cannot send: too long, empty.
LONG=$(head -c 129 /dev/zero | tr '\0' a)
gcli "$LONG" $K "$TLS13"
check_not "129-byte identity refused (TLS 1.3)" grep -q "Handshake was completed" "$T/client"
gcli "$(head -c 300 /dev/zero | tr '\0' b)" $K "$TLS13"
check_not "300-byte identity refused (TLS 1.3)" grep -q "Handshake was completed" "$T/client"
gcli "" $K "$TLS12"
check_not "empty identity refused (TLS 1.2)" grep -q "Handshake was completed" "$T/client"
gcli dev1@sp.example.com $K "$TLS12"
check_grep "server still serves after them" "Handshake was completed" "$T/client"
sleep 0.3
# Longer than any identity: to OpenSSL a ticket it cannot decrypt, not a refused identity.
check_nogrep "  ... the long identities were taken as tickets, not logged as identities" 'refused identity="aaaa' "$T/server.log"
check_grep "server bound the gnutls client" 'accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1" framework=psk protocol=TLSv1.3' "$T/server.log"

UPORT=$(free_port udp)
saef_bg "$T/dserver.log" saef-run --role server -- openssl s_server -dtls1_2 -accept "127.0.0.1:$UPORT" -nocert -quiet
wait_udp "$UPORT"
PORT=$UPORT gcli dev1@sp.example.com $K "$DTLS12" --udp
check_grep "gnutls-cli DTLS 1.2 PSK-AES128-CCM8" "(DTLS1.2.*(PSK)-(AES-128-CCM-8)" "$T/client"

# A preloaded s_client against gnutls-serv --pskpasswd.
echo "dev1@sp.example.com:$K" >"$T/psk.txt"
for v in 2 3; do
    p=TLS12; [ $v = 3 ] && p=TLS13
    PORT=$(free_port)
    saef_bg "$T/gserv$v.log" gnutls-serv --port "$PORT" --pskpasswd "$T/psk.txt" --priority "${!p}" --echo
    wait_port "$PORT"
    echo ping | timeout 10 saef-run --role client -- openssl s_client -connect "127.0.0.1:$PORT" \
        -tls1_$v >"$T/client" 2>&1
    check_grep "preloaded s_client against gnutls-serv, TLS 1.$v" "association established identity=\"dev1@sp.example.com\" .*protocol=TLSv1.$v" "$T/client"
done
UPORT=$(free_port udp)
saef_bg "$T/gservd.log" gnutls-serv --udp --port "$UPORT" --pskpasswd "$T/psk.txt" --priority "$DTLS12" --echo
wait_udp "$UPORT"
echo ping | timeout 10 saef-run --role client -- openssl s_client -dtls1_2 -connect "127.0.0.1:$UPORT" \
    >"$T/client" 2>&1
check_grep "preloaded s_client against gnutls-serv, DTLS 1.2 CCM_8" 'established identity="dev1@sp.example.com" .*protocol=DTLSv1.2 cipher=PSK-AES128-CCM8' "$T/client"
for f in "$T"/*.log; do check_no_key "$f" $K; done
done_testing
