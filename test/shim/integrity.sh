#!/bin/bash
# The association holds beyond a plain first handshake (saef-run, real
# openssl s_server / s_client): require_psk judged on what the handshake
# used (hand-made TLS 1.3 ClientHellos), resumed sessions and tickets that
# outlive their key, and Entity A refusing a server that ignored its PSK.
. "$SAEF_SRC/test/lib.sh"

K=00112233445566778899AABBCCDDEEFF
K2=FFEEDDCCBBAA99887766554433221100
S="$T/keys.db"
saef-key -s "$S" init >/dev/null
add() { saef-key -s "$S" add kpsa "$1" --hex "$2" --peer /sp.example.com/C-dev1 --replace "${@:3}"; }
add dev1@sp.example.com $K
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
DEAD=$(free_port) # a MAF nobody answers for
conf() {
    f=$1; shift
    saef_cnf "$f" "$S" "entity_id = /sp.example.com/in-cse" "maf = maf.example.com https://127.0.0.1:$DEAD" \
        "maf_timeout = 300" "$@"
}

# server CONF LOG [s_server args...]: a preloaded s_server on a fresh $PORT.
server() {
    cnf=$1 log=$2; shift 2
    PORT=$(free_port ${UDP:-})
    saef_bg "$log" env OPENSSL_CONF="$cnf" saef-run -- \
        openssl s_server -accept "127.0.0.1:$PORT" -quiet "$@"
    SRV=$SAEF_LAST_PID
    if [ -n "${UDP:-}" ]; then wait_udp "$PORT"; else wait_port "$PORT"; fi
}
stop() { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }
# client [s_client args...]: a native client, output in $T/client. With
# -sess_out it stays until the session (a TLS 1.3 ticket comes after the
# handshake) is written, however slow a loaded machine is.
client() {
    local out="" a
    for a in "$@"; do [ "${prev:-}" = -sess_out ] && out=$a; prev=$a; done
    prev=""
    [ -n "$out" ] && rm -f "$out"
    (echo "ping-$RANDOM"; sleep 0.3
     [ -n "$out" ] && poll 10 test -s "$out"; sleep 0.1) |
        OPENSSL_CONF=/dev/null timeout 15 openssl s_client -connect "127.0.0.1:$PORT" "$@" \
            >"$T/client" 2>&1
}
hs_ok() { handshake_ok "$T/client"; }
# last_session LOG new|resumed: the server's last association line says so
# (s_client prints "Reused" for a TLS 1.3 external PSK too).
last_session() {
    sleep 0.1
    grep 'association accepted' "$1" | tail -1 | grep -q "session=$2\$"
}
hello() { python3 "$SAEF_SRC/test/shim/hello13.py" "$PORT" "$@"; }

# ---- require_psk: the outcome, not the offer -------------------------------
conf "$T/req.cnf" "role = server" "require_psk = yes"
server "$T/req.cnf" "$T/req.log" -cert "$T/cert.pem" -key "$T/key.pem"
check_grep "require_psk: a known identity, random binder, psk_ke only: refused before the certificate" \
    "alert 40" <(hello dev1@sp.example.com 0)
check_grep "require_psk: the same with psk_ke and an unknown mode: refused" \
    "alert 40" <(hello dev1@sp.example.com 0,127)
check_grep "require_psk: a made-up MAF identity with psk_ke: refused" \
    "alert 40" <(hello 00112233445566778899AABBCCDDEEFF@maf.example.com 0)
check_grep "require_psk: no PSK at all: refused" "alert 40" <(hello x "")
client -tls1_3
check_not "require_psk: certificate-only s_client refused (TLS 1.3)" hs_ok
client -tls1_2
check_not "require_psk: certificate-only s_client refused (TLS 1.2)" hs_ok
client -tls1_3 -psk_identity dev1@sp.example.com -psk $K
check "require_psk: the PSK client still gets through (TLS 1.3)" hs_ok
client -tls1_2 -psk_identity dev1@sp.example.com -psk $K
check "require_psk: the PSK client still gets through (TLS 1.2)" hs_ok
# Without require_psk the same hand-made hello gets the certificate: what
# the server would have done with it (the control for the checks above).
conf "$T/plain.cnf" "role = server"
stop
server "$T/plain.cnf" "$T/plain.log" -cert "$T/cert.pem" -key "$T/key.pem"
check_grep "control: without require_psk that hello gets a certificate handshake" \
    "serverhello psk=0" <(hello dev1@sp.example.com 0)
stop
sleep 0.2
check_grep "require_psk: each refusal logged" \
    'refused TLSv1.3 handshake: TLS 1.3 handshake without a saef PSK (require_psk)' "$T/req.log"

# ---- resumption lives no longer than its key ---------------------------------
# resume_case NAME VERSION-ARGS...: a session saved from a PSK handshake
# resumes while the key is unchanged (bound and audited as resumed), and not
# after the key was replaced, deleted or expired.
conf "$T/srv.cnf" "role = server"
resume_case() {
    name=$1; shift
    add dev1@sp.example.com $K
    server "$T/srv.cnf" "$T/r.log" -nocert "${SRVARGS[@]}"
    client "$@" -psk_identity dev1@sp.example.com -psk $K -sess_out "$T/sess"
    check "$name: first handshake" hs_ok
    check "$name:   ... audited as a new association" last_session "$T/r.log" new
    client "$@" -psk_identity dev1@sp.example.com -psk $K -sess_in "$T/sess"
    check "$name: resumed while the key is unchanged" hs_ok
    check "$name:   ... audited as resumed" last_session "$T/r.log" resumed
    check_grep "$name:   ... bound to the entity" \
        'association accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1" .*session=resumed' "$T/r.log"
    add dev1@sp.example.com $K2
    client "$@" -psk_identity dev1@sp.example.com -psk $K -sess_in "$T/sess"
    check_not "$name: key replaced: neither the old session nor the old key gets through" hs_ok
    client "$@" -psk_identity dev1@sp.example.com -psk $K2 -sess_out "$T/sess"
    check "$name: new key: full handshake" hs_ok
    saef-key -s "$S" del kpsa dev1@sp.example.com
    client "$@" -psk_identity dev1@sp.example.com -psk $K -sess_in "$T/sess"
    check_not "$name: key deleted: the session does not resume (wrong -psk)" hs_ok
    add dev1@sp.example.com $K --expires +2s
    client "$@" -psk_identity dev1@sp.example.com -psk $K -sess_out "$T/sess"
    check "$name: key with 2 s to live: full handshake" hs_ok
    sleep 2.2
    client "$@" -psk_identity dev1@sp.example.com -psk $K -sess_in "$T/sess"
    check_not "$name: key expired: the session does not resume" hs_ok
    stop
    sleep 0.2
    check_grep "$name: refused resumptions logged" 'refused resumption identity="dev1@sp.example.com"' "$T/r.log"
    check_nogrep "$name: tickets never logged as refused identities" 'reason="malformed identity"' "$T/r.log"
}
SRVARGS=()
resume_case "TLS 1.2 ticket" -tls1_2
resume_case "TLS 1.3 ticket" -tls1_3
SRVARGS=(-no_ticket)
resume_case "TLS 1.2 session id" -tls1_2
resume_case "TLS 1.3 stateful ticket" -tls1_3
SRVARGS=(-dtls)
UDP=udp resume_case "DTLS 1.2" -dtls1_2

# A key rotated under a client that still holds a TLS 1.3 ticket: the ticket
# is passed over and the new key's full handshake goes on.
add dev1@sp.example.com $K
server "$T/srv.cnf" "$T/rot.log" -nocert
client -tls1_3 -psk_identity dev1@sp.example.com -psk $K -sess_out "$T/sess"
add dev1@sp.example.com $K2
client -tls1_3 -psk_identity dev1@sp.example.com -psk $K2 -sess_in "$T/sess"
check "TLS 1.3: an old ticket beside the new key: handshake with the new key" hs_ok
check "  ... a new association, not a resumption" last_session "$T/rot.log" new

# A key that expires in a minute: the tickets say they live no longer.
add dev1@sp.example.com $K --expires +60s
client -tls1_3 -psk_identity dev1@sp.example.com -psk $K -sess_out "$T/sess"
hint=$(sed -n 's/.*lifetime hint: \([0-9]*\).*/\1/p' "$T/client" | head -1)
check "a ticket's lifetime is capped at the key's expiry (hint ${hint:-none} s)" \
    test -n "$hint" -a "${hint:-0}" -le 60
stop

# refuse = unknown_psk_identity: tickets resume too, and are not "refused".
conf "$T/unk.cnf" "role = server" "refuse = unknown_psk_identity"
add dev1@sp.example.com $K
server "$T/unk.cnf" "$T/unk.log" -nocert
client -tls1_3 -psk_identity dev1@sp.example.com -psk $K -sess_out "$T/sess"
client -tls1_3 -psk_identity dev1@sp.example.com -psk $K -sess_in "$T/sess"
check "refuse = unknown_psk_identity: TLS 1.3 ticket resumes" last_session "$T/unk.log" resumed
saef-key -s "$S" del kpsa dev1@sp.example.com
client -tls1_3 -psk_identity dev1@sp.example.com -psk $K -sess_in "$T/sess"
check_not "refuse = unknown_psk_identity: not after the key was deleted" hs_ok
stop
sleep 0.2
check_nogrep "  ... and no ticket logged as a refused identity" 'refused identity="\\x' "$T/unk.log"

# ---- Entity A proves the association -------------------------------------------
add dev1@sp.example.com $K
saef-key -s "$S" add kpsa dev1@sp.example.com --hex $K --peer /sp.example.com/in-cse --replace
conf "$T/cli.cnf" "role = client"
PORT=$(free_port)
saef_bg "$T/certsrv.log" openssl s_server -accept "127.0.0.1:$PORT" -quiet -cert "$T/cert.pem" -key "$T/key.pem"
SRV=$SAEF_LAST_PID
wait_port "$PORT"
pclient() {
    (echo "ping-$RANDOM"; sleep 0.2) | OPENSSL_CONF="$1" timeout 10 saef-run -- openssl s_client \
        -connect "127.0.0.1:$PORT" "${@:2}" >"$T/client" 2>&1
}
pclient "$T/cli.cnf" -tls1_3
check_not "Entity A: a certificate-only server ignored the offered PSK: refused (TLS 1.3)" hs_ok
check_nogrep "  ... and no association recorded" "association established" "$T/client"
check_grep "  ... said why" "refused TLSv1.3 handshake: the server did not use the saef PSK" "$T/client"
conf "$T/clireq.cnf" "role = client" "require_psk = yes"
pclient "$T/clireq.cnf" -tls1_2
check_not "Entity A with require_psk: certificate suite refused (TLS 1.2)" hs_ok
# Server options stay on server contexts: a program's outgoing connections
# (a CSE's notifications) keep their certificate suites.
conf "$T/srvreq.cnf" "role = server" "require_psk = yes"
pclient "$T/srvreq.cnf" -tls1_2
check "role = server, require_psk: the program's own outgoing TLS 1.2 still works" hs_ok
stop

for f in "$T"/*.log; do check_no_key "$f" $K $K2; done
done_testing
