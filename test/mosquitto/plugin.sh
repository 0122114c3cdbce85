#!/bin/bash
# mosquitto with saef-mosquitto.so (no saef-run, no psk_file): keys from the
# saef store, the username is the bound entity, each client held to its own
# TS-0010 topics; mosquitto_pub/sub for TLS 1.2/1.3 and refusals, paho (under
# saef-run as Entity A) for a full registration + request/response exchange.
. "$SAEF_SRC/test/lib.sh"
# A sanitized plugin in the unsanitized broker: ASan's runtime first (the
# broker's own allocations are not ours to leak-check).
MOSQ=(mosquitto)
[ -z "${SAEF_SANITIZER_RT:-}" ] ||
    MOSQ=(env LD_PRELOAD="$SAEF_SANITIZER_RT" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" mosquitto)
command -v mosquitto >/dev/null || PATH="$PATH:/usr/sbin"
S="$T/keys.db"
dev1_store "$S" # dev1@sp.example.com -> /sp.example.com/C-dev1, key $K
K2=2233445566778899AABBCCDDEEFF0011 KC=445566778899AABBCCDDEEFF00112233
saef-key -s "$S" add kpsa dev2@sp.example.com --hex $K2 --peer /sp.example.com/C-dev2
saef-key -s "$S" add kpsa in-cse@sp.example.com --hex $KC --peer /in-cse
saef-key -s "$S" add kpsa mn-cse@sp.example.com --hex $KC --peer /mn-cse
saef-key -s "$S" add kpsa cred@sp.example.com --hex $K # no peer: 12-cred@sp.example.com
saef-key -s "$S" add kpsa other@sp.example.com --hex $K --peer /sp.example.com/C-o --self /other-cse
saef-key -s "$S" add kpsa old@sp.example.com --hex $K --peer /sp.example.com/C-old --expires +1s
# mosquitto 2.0 drops to its own user before it loads plugins: as root, the
# store is given to that user, as a deployment would.
chmod 755 "$T"
[ "$(id -u)" != 0 ] || chown mosquitto "$S" "$S-lock"
# A store belongs to the user who runs saef on it: as root, saef-key runs as
# mosquitto on it from here on.
owner() { if [ "$(id -u)" = 0 ]; then runuser -u mosquitto -- "$@"; else "$@"; fi; }
PORT=$(free_port) PORT2=$(free_port)
cat >"$T/mosquitto.conf" <<MQ
per_listener_settings false
plugin $SAEF_LIBDIR/saef/saef-mosquitto.so
plugin_opt_store $S
plugin_opt_entity_id /in-cse
allow_anonymous false
listener $PORT 127.0.0.1
psk_hint saef
listener $PORT2 127.0.0.1
psk_hint saef
use_identity_as_username true
MQ
chmod 644 "$T/mosquitto.conf"
saef_bg "$T/mosquitto.log" "${MOSQ[@]}" -c "$T/mosquitto.conf"
wait_port "$PORT"
wait_port "$PORT2"

# pub ID KEY TOPIC [ARGS]: one message, 0 if the broker took the connection.
pub() { timeout 10 mosquitto_pub -h 127.0.0.1 -p "${P:-$PORT}" --psk "$2" --psk-identity "$1" \
            -t "$3" -m "${M:-hello}" ${4:-} 2>"$T/err"; }
# sub_start ID KEY FILTER OUT: a subscriber in the background, until stopped.
sub_start() {
    timeout 60 stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" --psk "$2" --psk-identity "$1" \
        -t "$3" -v -d >"$4" 2>&1 &
    SUB_PID=$!
    poll 5 grep -q "Subscribed (mid: 1)" "$4"
}
suback() { # ID KEY FILTER: the SUBACK's granted QoS (128 = refused)
    timeout 10 mosquitto_sub -h 127.0.0.1 -p "$PORT" --psk "$2" --psk-identity "$1" -t "$3" \
        -d -W 1 2>/dev/null | sed -n 's/^Subscribed (mid: 1): //p'
}
REQ1=/oneM2M/req/:sp.example.com:C-dev1/:in-cse/json
REQ2=/oneM2M/req/:sp.example.com:C-dev2/:in-cse/json

# The CSE listens to every request addressed to it.
sub_start in-cse@sp.example.com $KC '/oneM2M/req/+/:in-cse/#' "$T/cse.out"
check_grep "CSE subscribes to the requests addressed to it" "Subscribed (mid: 1): 0" "$T/cse.out"
M=own13 check "dev1 publishes its own request (TLS 1.3)" pub dev1@sp.example.com $K $REQ1
M=own12 check "dev1 publishes its own request (TLS 1.2)" pub dev1@sp.example.com $K $REQ1 "--tls-version tlsv1.2"
M=own-noslash check "  ... also with the ID's leading '/' left out" pub dev1@sp.example.com $K \
    /oneM2M/req/sp.example.com:C-dev1/:in-cse/json
M=forged check "dev1's request as dev2 is taken by the broker (and dropped)" pub dev1@sp.example.com $K $REQ2
M=forged-resp check "dev1's response as the CSE is taken (and dropped)" pub dev1@sp.example.com $K \
    /oneM2M/resp/:sp.example.com:C-dev2/:in-cse/json
M=dev2 check "dev2 publishes its own request" pub dev2@sp.example.com $K2 $REQ2
M=mn-ae check "an MN-CSE publishes for an AE it serves (/mn-cse/Cae1)" pub mn-cse@sp.example.com $KC \
    /oneM2M/req/:mn-cse:Cae1/:in-cse/json
M=mn-forged check "  ... not for another CSE's AE (taken, dropped)" pub mn-cse@sp.example.com $KC $REQ1
M=cred check "a key without a peer publishes as its Credential-ID (12-<KpsaID>)" pub cred@sp.example.com $K \
    /oneM2M/req/12-cred@sp.example.com/:in-cse/json
M=other check "a topic outside /oneM2M/ is taken (and dropped)" pub dev1@sp.example.com $K onem2m/test
poll 5 grep -q ' dev2$' "$T/cse.out"
sleep 0.3
for m in own13 own12 own-noslash dev2 mn-ae cred; do
    check "  the CSE got '$m'" grep -q " $m\$" "$T/cse.out"
done
for m in forged forged-resp mn-forged; do
    check "  the CSE never got '$m'" test -z "$(grep " $m\$" "$T/cse.out")"
done

check "dev1 subscribes to its own responses" test "$(suback dev1@sp.example.com $K '/oneM2M/resp/:sp.example.com:C-dev1/+/json')" = 0
check "dev1 subscribes to its registration responses" test "$(suback dev1@sp.example.com $K '/oneM2M/reg_resp/:sp.example.com:C-dev1/#')" = 0
check "dev1 may not subscribe to dev2's responses" test "$(suback dev1@sp.example.com $K '/oneM2M/resp/:sp.example.com:C-dev2/+/json')" = 128
check "dev1 may not subscribe to the CSE's requests" test "$(suback dev1@sp.example.com $K '/oneM2M/req/+/:in-cse/#')" = 128
check "dev1 may not subscribe to everything" test "$(suback dev1@sp.example.com $K '#')" = 128

check_not "wrong key refused" pub dev1@sp.example.com FFEEDDCCBBAA99887766554433221100 $REQ1
check_not "wrong key refused (TLS 1.2)" pub dev1@sp.example.com FFEEDDCCBBAA99887766554433221100 $REQ1 "--tls-version tlsv1.2"
check_not "unknown identity refused" pub nobody@sp.example.com $K $REQ1
check_not "key bound to another server refused" pub other@sp.example.com $K /oneM2M/req/:sp.example.com:C-o/:in-cse/json
sleep 1.1 # old@ has expired
check_not "expired key refused" pub old@sp.example.com $K /oneM2M/req/:sp.example.com:C-old/:in-cse/json

# use_identity_as_username: mosquitto sets the identity; saef makes it the entity.
P=$PORT2 check "listener with use_identity_as_username takes saef clients" pub dev1@sp.example.com $K $REQ1
sleep 0.3
check_grep "username is the bound entity (basic auth)" \
    "association accepted identity=\"dev1@sp.example.com\" entity=\"/sp.example.com/C-dev1\" framework=psk peer=127.0.0.1 client=\"[^\"]*\" user=\"/sp.example.com/C-dev1\"" "$T/mosquitto.log"
check_grep "  ... mosquitto's own log shows it" "u'/sp.example.com/C-dev1'" "$T/mosquitto.log"
grep -A3 "on port $PORT2\." "$T/mosquitto.log" >"$T/port2.log"
check_grep "username is the bound entity (use_identity_as_username, at the first publish)" \
    'identity="dev1@sp.example.com".* user="/sp.example.com/C-dev1"' "$T/port2.log"

# The full exchange with paho: registration, request, response; a forged
# response to dev1 (from dev2) and a subscription to dev1's responses by dev2
# go nowhere.
for who in dev1 in-cse; do
    saef-key -s "$T/$who.db" init >/dev/null
done
saef-key -s "$T/dev1.db" add kpsa dev1@sp.example.com --hex $K
saef-key -s "$T/in-cse.db" add kpsa in-cse@sp.example.com --hex $KC
saef_cnf "$T/dev1.cnf" "$T/dev1.db" "role = client"
saef_cnf "$T/in-cse.cnf" "$T/in-cse.db" "role = client"
[ -z "${SAEF_SANITIZER_RT:-}" ] || export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
# The interpreter itself (not a pyenv shim, which would run under the
# preload too), one that has Debian's python3-paho-mqtt.
for py in /usr/bin/python3 "$(python3 -c 'import sys; print(sys.executable)')"; do
    "$py" -c 'import paho.mqtt.client' 2>/dev/null && break
done
PY="$py $SAEF_SRC/test/mosquitto/onem2m_mqtt.py"
saef_bg "$T/py-cse.log" env OPENSSL_CONF="$T/in-cse.cnf" saef-run -- $PY cse "$PORT" /in-cse 15
poll 10 grep -q "cse subscribed" "$T/py-cse.log"
check_grep "paho CSE subscribed (TLS-PSK from saef-run)" "cse subscribed \[0, 0\]" "$T/py-cse.log"
OPENSSL_CONF="$T/dev1.cnf" timeout 30 saef-run -- $PY ae "$PORT" /sp.example.com/C-dev1 /in-cse 2 >"$T/py-ae.log" 2>&1 &
AE_PID=$!
poll 10 grep -q "ae subscribed" "$T/py-ae.log"
check "dev2 may not subscribe to dev1's responses" test "$(suback dev2@sp.example.com $K2 '/oneM2M/resp/:sp.example.com:C-dev1/+/json')" = 128
M='{"rqi": "req-1", "rsc": 2000, "pc": "FORGED"}' check "dev2 forges dev1's response (taken, dropped)" \
    pub dev2@sp.example.com $K2 /oneM2M/resp/:sp.example.com:C-dev1/:in-cse/json
M='{"rqi": "reg-1", "rsc": 2001, "pc": "FORGED"}' check "dev2 forges dev1's registration response (taken, dropped)" \
    pub dev2@sp.example.com $K2 /oneM2M/reg_resp/:sp.example.com:C-dev1/:in-cse/json
check "paho AE: registration and request answered, nothing forged arrived" wait $AE_PID
cat "$T/py-ae.log"
check_grep "  the CSE answered the registration" "answered reg-1 from /sp.example.com/C-dev1 on /oneM2M/reg_req/" "$T/py-cse.log"
check_nogrep "  nothing forged reached the AE" FORGED "$T/py-ae.log"

# A key deleted with saef-key: refused at the next connection.
owner saef-key -s "$S" del kpsa dev2@sp.example.com
check_not "key deleted with saef-key refused at the next connection" pub dev2@sp.example.com $K2 $REQ2

# The complete mosquitto.conf of docs/deploy-mqtt.md, paths and port
# changed: saef settings from plugin_opt_conf, plugin_opt_* over them.
saef_cnf "$T/saef.cnf" /nonexistent/store.db "entity_id = /not-this-one"
chmod 644 "$T/saef.cnf"
PORT3=$(free_port)
sed -n '/^    # \/etc\/mosquitto/,/use_identity_as_username true/p' "$SAEF_SRC/docs/deploy-mqtt.md" |
    sed "s/^    //; s|/usr/local/lib/saef/|$SAEF_LIBDIR/saef/|; s|/etc/saef/openssl.cnf|$T/saef.cnf|
         s|/var/lib/saef/mqtt.db|$S|; s|^listener 8883|listener $PORT3 127.0.0.1|" >"$T/doc.conf"
chmod 644 "$T/doc.conf"
saef_bg "$T/doc.log" "${MOSQ[@]}" -c "$T/doc.conf"
wait_port "$PORT3"
P=$PORT3 M=doc12 check "the documented mosquitto.conf serves TLS 1.2" pub dev1@sp.example.com $K $REQ1 "--tls-version tlsv1.2"
P=$PORT3 M=doc13 check "  ... and TLS 1.3" pub dev1@sp.example.com $K $REQ1 "--tls-version tlsv1.3"
# A misspelled option stops the broker at start, naming it.
sed 's/^plugin_opt_topics onem2m/plugin_opt_topic onem2m/' "$T/doc.conf" >"$T/bad.conf"
chmod 644 "$T/bad.conf"
timeout 10 "${MOSQ[@]}" -c "$T/bad.conf" >"$T/bad.log" 2>&1
check "a misspelled plugin option stops mosquitto" test $? -ne 0 -a $? -ne 124
check_grep "  ... naming it" "plugin_opt_topic: " "$T/bad.log"

kill "$SUB_PID" 2>/dev/null
sleep 0.3
check_grep "refusal logged with entity and topic (publish)" \
    'refused topic entity="/sp.example.com/C-dev1" access=publish topic="/oneM2M/req/:sp.example.com:C-dev2/:in-cse/json"' "$T/mosquitto.log"
check_grep "refusal logged with entity and topic (subscribe)" \
    'refused topic entity="/sp.example.com/C-dev2" access=subscribe topic="/oneM2M/resp/:sp.example.com:C-dev1/+/json"' "$T/mosquitto.log"
check_grep "unknown identity logged" 'refused identity="nobody@sp.example.com" reason="unknown identity"' "$T/mosquitto.log"
check_grep "other server's key logged" 'refused identity="other@sp.example.com" reason="key bound to another server"' "$T/mosquitto.log"
check_grep "expired key logged" 'refused identity="old@sp.example.com" reason="key expired"' "$T/mosquitto.log"
check_grep "deleted key logged" 'refused identity="dev2@sp.example.com" reason="unknown identity"' "$T/mosquitto.log"
check_nogrep "no psk_file anywhere" psk_file "$T/mosquitto.conf"
check_no_key "$T/mosquitto.log" $K
check_no_key "$T/mosquitto.log" $K2
check_no_key "$T/mosquitto.log" $KC
done_testing
