#!/bin/bash
# nginx (an HTTP CSE stand-in) with a certificate, started with saef-run:
# PSK clients get through on TLS 1.2 and 1.3; with require_psk a
# certificate-only client does not.
. "$SAEF_SRC/test/lib.sh"
S="$T/keys.db"
dev1_store "$S"
conf() { saef_cnf "$T/openssl.cnf" "$S" "entity_id = /sp.example.com/in-cse" "role = server" "log = stderr" "$@"; }

start_nginx() { nginx_start "$T/openssl.cnf" 2; }

get() { # get CLIENT-ARGS...: HTTP GET over s_client; response in $T/client
    printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' | OPENSSL_CONF=/dev/null timeout 10 \
        openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -ign_eof "$@" >"$T/client" 2>&1
}

conf
start_nginx
get -tls1_2 -psk_identity dev1@sp.example.com -psk $K
check_grep "PSK client through nginx, TLS 1.2" "oneM2M CSE" "$T/client"
check_grep "  ... with a PSK suite, not the certificate" "Cipher is .*PSK" "$T/client"
get -tls1_3 -psk_identity dev1@sp.example.com -psk $K
check_grep "PSK client through nginx, TLS 1.3" "oneM2M CSE" "$T/client"
check_grep "  ... resumed the external PSK" "Reused, TLSv1.3" "$T/client"
get -tls1_2 -psk_identity dev1@sp.example.com -psk FFFF
check_nogrep "wrong key refused by nginx" "oneM2M CSE" "$T/client"
get -tls1_2
check_grep "without require_psk a certificate client still works" "oneM2M CSE" "$T/client"
sleep 0.3
check_grep "nginx worker logged the association" 'accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1"' "$T/nginx.log"
# curl's second connection in one run resumes with nginx's TLS 1.3 ticket
# (which once came to saef as an identity and was refused).
timeout 10 curl -sS -k --tlsv1.3 "https://localhost:$PORT/a" "https://localhost:$PORT/b" \
    --resolve "localhost:$PORT:127.0.0.1" >"$T/curl" 2>&1
check "curl: two requests in one run over TLS 1.3 (the second resumes)" \
    test "$(grep -c "oneM2M CSE" "$T/curl")" = 2
kill "$NGINX"; wait "$NGINX" 2>/dev/null

conf "require_psk = yes"
start_nginx
get -tls1_2
check_nogrep "require_psk: certificate-only client refused (TLS 1.2)" "oneM2M CSE" "$T/client"
get -tls1_3
check_nogrep "require_psk: certificate-only client refused (TLS 1.3)" "oneM2M CSE" "$T/client"
get -tls1_3 -psk_identity nobody@sp.example.com -psk $K
check_nogrep "require_psk: unknown identity gets no certificate fallback" "oneM2M CSE" "$T/client"
get -tls1_2 -psk_identity dev1@sp.example.com -psk $K
check_grep "require_psk: PSK client works (TLS 1.2)" "oneM2M CSE" "$T/client"
get -tls1_3 -psk_identity dev1@sp.example.com -psk $K
check_grep "require_psk: PSK client works (TLS 1.3)" "oneM2M CSE" "$T/client"

# Resumption across the workers lives as long as the key: every worker
# resumes the tickets (OpenSSL's ticket keys come from the master), binds
# and audits them; after the key is deleted none does.
for v in -tls1_2 -tls1_3; do
    get $v -psk_identity dev1@sp.example.com -psk $K -sess_out "$T/sess"
    workers=""
    for i in $(seq 20); do
        # A wrong -psk: only a resumption gets through.
        get $v -psk_identity dev1@sp.example.com -psk FFFF -sess_in "$T/sess"
        grep -q "oneM2M CSE" "$T/client" || break
        workers=$(printf '%s\n%s' "$workers" "$(sed -n 's/^worker //p' "$T/client")" | sort -u)
        [ "$(echo "$workers" | grep -c .)" -ge 2 ] && break
    done
    check "require_psk $v: saved session resumed by both workers" test "$(echo "$workers" | grep -c .)" -ge 2
done
check_grep "  ... audited as resumed, bound to the entity" \
    'accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1" .*session=resumed' "$T/nginx.log"
saef-key -s "$S" del kpsa dev1@sp.example.com
for v in -tls1_2 -tls1_3; do
    get $v -psk_identity dev1@sp.example.com -psk FFFF -sess_in "$T/sess"
    check_nogrep "require_psk $v: key deleted, the saved session is not served" "oneM2M CSE" "$T/client"
done
check_grep "  ... refusal logged" 'refused resumption identity="dev1@sp.example.com" reason="key deleted"' "$T/nginx.log"
check_no_key "$T/nginx.log" $K
done_testing
