#!/bin/bash
# mosquitto (the MQTT binding) started with saef-run: saef identities work,
# mosquitto's own psk_file identities still work (its callback is chained),
# wrong keys do not. As root mosquitto drops to its own user after start:
# the store was opened before.
. "$SAEF_SRC/test/lib.sh"
command -v mosquitto >/dev/null || PATH="$PATH:/usr/sbin"
S="$T/keys.db"
dev1_store "$S"
echo "native-id:0A0B0C0D" >"$T/psk.txt"
saef_cnf "$T/openssl.cnf" "$S" "entity_id = /sp.example.com/in-cse" "role = server"
PORT=$(free_port)
cat >"$T/mosquitto.conf" <<MQ
listener $PORT 127.0.0.1
psk_hint saef
psk_file $T/psk.txt
allow_anonymous true
MQ
chmod 755 "$T"; chmod 644 "$T/psk.txt" "$T/mosquitto.conf"
saef_bg "$T/mosquitto.log" env OPENSSL_CONF="$T/openssl.cnf" saef-run -- mosquitto -c "$T/mosquitto.conf"
wait_port "$PORT"

pub() { timeout 10 mosquitto_pub -h 127.0.0.1 -p "$PORT" --psk "$2" --psk-identity "$1" \
            -t onem2m/test -m hello ${3:-} 2>"$T/err"; }
check "saef identity publishes (TLS 1.3)" pub dev1@sp.example.com $K
check "saef identity publishes (TLS 1.2)" pub dev1@sp.example.com $K "--tls-version tlsv1.2"
check_not "wrong key refused" pub dev1@sp.example.com FFFF
check_not "unknown identity refused" pub nobody@sp.example.com $K
check "mosquitto's own psk_file identity still works (TLS 1.3)" pub native-id 0A0B0C0D
check "mosquitto's own psk_file identity still works (TLS 1.2)" pub native-id 0A0B0C0D "--tls-version tlsv1.2"
sleep 0.3
check_grep "association logged" 'accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1"' "$T/mosquitto.log"
check_no_key "$T/mosquitto.log" $K
done_testing
