#!/bin/bash
# Python's ssl module under saef-run, as Entity B and as Entity A.
. "$SAEF_SRC/test/lib.sh"
S="$T/keys.db"
dev1_store "$S"
saef_cnf "$T/openssl.cnf" "$S" "entity_id = /sp.example.com/in-cse"
export OPENSSL_CONF="$T/openssl.cnf"
# CPython leaves its objects to the OS at exit, from a stripped allocator
# that no suppression can name: no leak check in this script (ASan and UBSan
# stay on; its other programs are native openssl; saef's own leaks are
# checked in the other tests' programs).
[ -z "${SAEF_SANITIZER_RT:-}" ] || export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
# The interpreter itself, not a wrapper script (pyenv) that would run under the preload too.
PY="$(python3 -c 'import sys; print(sys.executable)') $SAEF_SRC/test/shim/pyssl.py"

PORT=$(free_port)
saef_bg "$T/server.log" saef-run --role server -- $PY server "$PORT" 3
wait_port "$PORT" # uses up one accept
for v in 2 3; do
    echo hi | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -tls1_$v -psk_identity dev1@sp.example.com -psk $K -ign_eof >"$T/client" 2>&1
    check_grep "Python server with its own cipher list, TLS 1.$v" "python CSE TLSv1.$v" "$T/client"
done
sleep 0.3
check_grep "  ... bound the client" 'accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1"' "$T/server.log"

PORT=$(free_port)
saef_bg "$T/native.log" env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$PORT" \
    -nocert -psk_identity dev1@sp.example.com -psk $K -quiet
wait_port "$PORT"
timeout 10 saef-run --role client -- $PY client "$PORT" >"$T/out" 2>&1
check_grep "Python client, TLS 1.3 (its session-id context copied into the PSK)" "client TLSv1.3" "$T/out"
timeout 10 saef-run --role client -- $PY client "$PORT" 1.2 >"$T/out" 2>&1
check_grep "Python client, TLS 1.2" "client TLSv1.2 PSK" "$T/out"
done_testing
