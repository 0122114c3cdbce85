#!/bin/bash
# Rotation under load: a preloaded openssl s_server serves several client
# loops with fixed keys while keys are added, replaced and deleted: no valid
# handshake fails, a replaced or deleted key is refused as soon as saef-key
# returned, the server does not crash. SAEF_LONG=1 runs for 5 minutes.
. "$SAEF_SRC/test/lib.sh"
SECS=$(by_run 20 300)
S="$T/keys.db"
saef-key -s "$S" init >/dev/null
for i in 1 2 3; do
    eval "K$i=$(openssl rand -hex 32)"
    saef-key -s "$S" add kpsa "stable$i@sp.example.com" --hex "$(eval echo \$K$i)"
done
OLD=$(openssl rand -hex 32)
saef-key -s "$S" add kpsa rot@sp.example.com --hex "$OLD"
saef_cnf "$T/server.cnf" "$S" "entity_id = /sp.example.com/in-cse" "role = server"
PORT=$(free_port)
SAEF_BG_LIMIT=$((SECS + 120)) saef_bg "$T/server.log" saef-run --conf "$T/server.cnf" -- \
    openssl s_server -accept "127.0.0.1:$PORT" -nocert -quiet
SERVER=$SAEF_LAST_PID
wait_port "$PORT"

# Clients with keys that never change, TLS 1.2 and 1.3 in turn, until the
# writer is done; each handshake's outcome goes to $T/loadN.res.
: "${PSK_CLIENT:?run through ctest}"
for i in 1 2 3; do
    SAEF_BG_LIMIT=$((SECS + 60)) saef_bg "$T/load$i.log" "$PSK_CLIENT" -s "$T/stop" -w 2 -o "$T/load$i.res" \
        "127.0.0.1:$PORT" "stable$i@sp.example.com" "$(eval echo \$K$i)"
done

# expect CLASS WANT ID KEY VERSION: one handshake whose outcome is known.
expect() {
    if "$PSK_CLIENT" -v "$5" "127.0.0.1:$PORT" "$3" "$4" >/dev/null; then got=ok; else got=fail; fi
    [ "$got" = "$2" ] && echo "$1 ok" || echo "$1 fail"
}
# Keys change continuously: the rotated key, a key added then deleted, and a
# batch of other keys replaced and deleted around them.
end=$(($(date +%s) + SECS))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
    n=$((n + 1))
    v=$([ $((n % 2)) = 0 ] && echo 1.3 || echo 1.2)
    NEW=$(openssl rand -hex 32)
    saef-key -s "$S" add kpsa rot@sp.example.com --hex "$NEW" --replace
    expect replaced-old-value-refused fail rot@sp.example.com "$OLD" $v
    expect replaced-new-value-accepted ok rot@sp.example.com "$NEW" $v
    OLD=$NEW
    D=$(openssl rand -hex 16)
    saef-key -s "$S" add kpsa "del$n@sp.example.com" --hex "$D"
    expect added-key-accepted ok "del$n@sp.example.com" "$D" $v
    saef-key -s "$S" del kpsa "del$n@sp.example.com"
    expect deleted-key-refused fail "del$n@sp.example.com" "$D" $v
    openssl rand -hex 800 | fold -w 32 | awk '{ print "churn" NR "@sp.example.com:" $0 }' |
        saef-key -s "$S" import --replace - >/dev/null
    saef-key -s "$S" del kpsa "churn$((n % 50 + 1))@sp.example.com"
done >"$T/writer.res"
touch "$T/stop"
for c in 1 2 3; do
    wait_log "$T/load$c.log" "^handshakes=" 15
    sed 's/^\([a-z]*\) .*/valid-fixed-key \1/' "$T/load$c.res"
done >"$T/all.res"
cat "$T/writer.res" >>"$T/all.res"
tally "$T/all.res" | sed 's/^/     /'
total=$(wc -l <"$T/all.res")
fails=$(grep -c ' fail$' "$T/all.res")
echo "     figures: rotation under load ${SECS}s, $n rotations, $total handshakes, $fails unexpected outcomes"
fixed=$(grep -c '^valid-fixed-key ok' "$T/all.res")
check "no handshake with a valid fixed key failed ($fixed done)" \
    test "$fixed" -gt 0 -a "$(grep -c '^valid-fixed-key fail' "$T/all.res")" = 0
check "every replaced key's old value was refused after the replace ($n)" \
    test "$(grep -c '^replaced-old-value-refused ok' "$T/all.res")" = "$n"
check "every new value was accepted at once" \
    test "$(grep -c '^replaced-new-value-accepted ok' "$T/all.res")" = "$n"
check "every added key was accepted at once" test "$(grep -c '^added-key-accepted ok' "$T/all.res")" = "$n"
check "every deleted key was refused after the delete returned" \
    test "$(grep -c '^deleted-key-refused ok' "$T/all.res")" = "$n"
check "the server is still running" kill -0 "$SERVER"
accepted=$(grep -c "association accepted" "$T/server.log")
check "  ... and logged every accepted handshake ($accepted)" \
    test "$accepted" = "$(grep -c -E '^(valid-fixed-key|replaced-new-value-accepted|added-key-accepted) ok' "$T/all.res")"
for k in $K1 $K2 $K3 $OLD; do
    check_nogrep "no key in the server log" "$k" "$T/server.log"
done
done_testing
