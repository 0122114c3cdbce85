#!/bin/bash
# A program run with saef whose configuration cannot be used refuses every
# TLS handshake, with the reason on its standard error: never silently
# without saef (saef.cnf(5) DIAGNOSTICS, saef-run(1)).
. "$SAEF_SRC/test/lib.sh"
S="$T/keys.db"
dev1_store "$S"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null

# cnf NAME [LINE...]: a server configuration that asks for saef.
cnf() { f="$T/$1.cnf"; shift; saef_cnf "$f" "$S" "role = server" "$@"; }

# server CNF [env...]: a preloaded s_server with a certificate on a fresh $PORT.
server() {
    c=$1; shift
    PORT=$(free_port)
    saef_bg "$T/server.log" env "$@" saef-run --conf "$c" -- openssl s_server \
        -accept "127.0.0.1:$PORT" -cert "$T/cert.pem" -key "$T/key.pem" -quiet
    SRV=$SAEF_LAST_PID
    wait_port "$PORT"
}
stop() { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }
# cert_client: a plain certificate-only client, no PSK, no saef.
cert_client() {
    echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        ${1:-} >"$T/client" 2>&1
}
# refused DESC CNF WHY [env...]: a certificate client gets nothing from the
# server started on CNF, and the server's stderr says why.
refused() {
    d=$1 c=$2 why=$3; shift 3
    server "$c" "$@"
    cert_client -tls1_2
    check_not "$d: TLS 1.2 certificate handshake refused" handshake_ok "$T/client"
    cert_client -tls1_3
    check_not "  ... TLS 1.3 too" handshake_ok "$T/client"
    stop
    check_grep "  ... the server says it refused" "saef: TLS handshake refused" "$T/server.log"
    check_grep "  ... and why" "$why" "$T/server.log"
}

# The control: a usable configuration without require_psk serves certificates.
cnf good
server "$T/good.cnf"
cert_client -tls1_2
check "a usable configuration serves a certificate client (control)" handshake_ok "$T/client"
stop
check_nogrep "  ... and refuses nothing" "refused" "$T/server.log"

cnf typo "require-psk = yes"
refused "misspelled key require-psk" "$T/typo.cnf" "unknown key 'require-psk'"
cnf case "Require_psk = yes"
refused "key in the wrong case Require_psk" "$T/case.cnf" "unknown key 'Require_psk'"
# The rest ask for a PSK, which a certificate client does not have.
cnf bad "require_psk = yes" "tls13 = perhaps"
refused "bad value" "$T/bad.cnf" "bad value for 'tls13'"
cnf rel "require_psk = yes"; sed -i 's|^store = .*|store = keys.db|' "$T/rel.cnf"
refused "relative store path" "$T/rel.cnf" "an absolute path is required"
cnf group "require_psk = yes"; chmod 664 "$T/group.cnf"
refused "group-writable configuration" "$T/group.cnf" "is writable by its group"
# Without require_psk: saef itself would refuse nothing here.
cnf nostore; sed -i "s|^store = .*|store = $T/none.db|" "$T/nostore.cnf"
refused "a store that cannot be opened" "$T/nostore.cnf" "saef-key -s $T/none.db init"
cnf module "require_psk = yes"; sed -i "s|^module = .*|module = $T/none.so|" "$T/module.cnf"
refused "a provider module that does not load" "$T/module.cnf" "did not load"
cnf envrole
refused "a bad SAEF_ROLE" "$T/envrole.cnf" "SAEF_ROLE: bad value for 'role'" SAEF_ROLE=king

# saef-run on a file without saef (a wrong --conf) is no saef at all.
PORT=$(free_port)
saef_bg "$T/server.log" saef-run --conf /dev/null -- openssl s_server -accept "127.0.0.1:$PORT" \
    -cert "$T/cert.pem" -key "$T/key.pem" -quiet
SRV=$SAEF_LAST_PID
wait_port "$PORT"
cert_client -tls1_2
check_not "saef-run on a file without saef refuses a certificate handshake" handshake_ok "$T/client"
stop
check_grep "  ... and says why" "/dev/null configures no saef provider and no --role was given" "$T/server.log"
# ... but the same file with an explicit role off, or the preload without
# saef-run (sanitized builds need saef-run's runtime first), is no error.
hows=("saef-run --conf /dev/null --role off --")
[ -n "${SAEF_SANITIZER_RT:-}" ] ||
    hows+=("env OPENSSL_CONF=/dev/null LD_PRELOAD=$SAEF_LIBDIR/libsaef-preload.so")
for how in "${hows[@]}"; do
    PORT=$(free_port)
    saef_bg "$T/server.log" $how openssl s_server -accept "127.0.0.1:$PORT" \
        -cert "$T/cert.pem" -key "$T/key.pem" -quiet
    SRV=$SAEF_LAST_PID
    wait_port "$PORT"
    cert_client -tls1_2
    check "$how: a certificate handshake, as asked" handshake_ok "$T/client"
    stop
done

# The client side: a preloaded s_client on a broken configuration does not
# fall back to a plain certificate handshake with a plain server.
PORT=$(free_port)
saef_bg "$T/plain.log" env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$PORT" \
    -cert "$T/cert.pem" -key "$T/key.pem" -quiet
wait_port "$PORT"
saef_cnf "$T/client.cnf" "$S" "role = client" "requre_psk = yes"
for v in -tls1_2 -tls1_3; do
    echo ping | timeout 10 saef-run --conf "$T/client.cnf" -- openssl s_client \
        -connect "127.0.0.1:$PORT" $v >"$T/client" 2>&1
    check_not "a preloaded client on a misspelled key refuses $v" handshake_ok "$T/client"
    check_grep "  ... and says why" "unknown key 'requre_psk'" "$T/client"
done
check_no_key "$T/server.log" "$K"
done_testing
