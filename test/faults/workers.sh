#!/bin/bash
# Many processes sharing one store while it is written: nginx with 4 workers
# under load while saef-key adds, replaces and deletes keys; every worker
# sees each change at its next handshake. SAEF_LONG=1 runs for 5 minutes.
. "$SAEF_SRC/test/lib.sh"
: "${PSK_CLIENT:?run through ctest}"
SECS=$(by_run 15 300) WORKERS=4
S="$T/keys.db"
KS=$(openssl rand -hex 32)
saef-key -s "$S" init >/dev/null
saef-key -s "$S" add kpsa stable@sp.example.com --hex "$KS"
saef_cnf "$T/openssl.cnf" "$S" "entity_id = /sp.example.com/in-cse" "role = server" "require_psk = yes"
SAEF_BG_LIMIT=$((SECS + 120)) nginx_start "$T/openssl.cnf" $WORKERS
GET='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'
get() { # get COUNT ID KEY RESULTS: COUNT requests over fresh PSK connections
    "$PSK_CLIENT" -n "$1" -r "$GET" -o "$4" "127.0.0.1:$PORT" "$2" "$3" >/dev/null
}
for c in 1 2; do
    SAEF_BG_LIMIT=$((SECS + 60)) saef_bg "$T/load$c.log" "$PSK_CLIENT" -s "$T/stop" -w 2 -r "$GET" \
        -o "$T/load$c.res" "127.0.0.1:$PORT" stable@sp.example.com "$KS"
done

served() { sed -n 's/.* worker \([0-9]*\)$/\1/p' "$@" 2>/dev/null | sort -u | wc -l; }
end=$(($(date +%s) + SECS)) hard=$(($(date +%s) + 3 * SECS))
n=0
# SECS, and longer (up to 3 x SECS) until the kernel has spread the new
# keys' connections over every worker: slow builds make few rounds.
while [ "$(date +%s)" -lt "$end" ] ||
    { [ "$(served "$T/added.res")" -lt $WORKERS ] && [ "$(date +%s)" -lt "$hard" ]; }; do
    n=$((n + 1))
    K=$(openssl rand -hex 32)
    saef-key -s "$S" add kpsa "new$n@sp.example.com" --hex "$K"
    get $WORKERS "new$n@sp.example.com" "$K" "$T/added.res"
    K2=$(openssl rand -hex 32)
    saef-key -s "$S" add kpsa "new$n@sp.example.com" --hex "$K2" --replace
    get 2 "new$n@sp.example.com" "$K" "$T/replaced-old.res"
    get 2 "new$n@sp.example.com" "$K2" "$T/replaced-new.res"
    saef-key -s "$S" del kpsa "new$n@sp.example.com"
    get 2 "new$n@sp.example.com" "$K2" "$T/deleted.res"
done
touch "$T/stop"
for c in 1 2; do wait_log "$T/load$c.log" "^handshakes=" 15; done
count() { grep -c "^$1" "${@:2}" | awk -F: '{ n += $NF } END { print n + 0 }'; }
echo "     figures: nginx $WORKERS workers, ${SECS}s, $n keys added, replaced and deleted;" \
    "fixed key $(count ok "$T"/load?.res) ok $(count fail "$T"/load?.res) failed;" \
    "new keys $(count ok "$T/added.res") ok $(count fail "$T/added.res") failed, served by" \
    "$(served "$T/added.res") workers"
check "no handshake with the fixed key failed ($(count ok "$T"/load?.res) done)" \
    test "$(count fail "$T"/load?.res)" = 0 -a "$(count ok "$T"/load?.res)" -gt 0
check "every new key worked at once ($(count ok "$T/added.res") handshakes)" \
    test "$(count fail "$T/added.res")" = 0 -a "$(count ok "$T/added.res")" = $((n * WORKERS))
check "  ... in each of the $WORKERS workers" test "$(served "$T/added.res")" = $WORKERS
check "  ... which all served the fixed key too" test "$(served "$T"/load?.res)" = $WORKERS
check "a replaced key's old value was refused at once" test "$(count fail "$T/replaced-old.res")" = $((2 * n))
check "  ... its new value accepted" test "$(count ok "$T/replaced-new.res")" = $((2 * n))
check "a deleted key was refused at once" test "$(count fail "$T/deleted.res")" = $((2 * n))
check "nginx is still running" kill -0 "$NGINX"
check_nogrep "no worker crashed" "exited on signal" "$T/nginx.log"
for k in $KS $K $K2; do check_nogrep "no key in nginx's log" "$k" "$T/nginx.log"; done
done_testing
