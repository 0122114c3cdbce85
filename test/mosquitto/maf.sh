#!/bin/bash
# mosquitto with saef-mosquitto.so as Entity B of the MAF-based SAEF: a
# client connects with the Kc that Entity A registered (HEX32@MAF-FQDN), the
# plugin retrieves it from saef-mafd, binds the client to A's ID from the
# MAF, and holds it to that ID's topics.
. "$SAEF_SRC/test/lib.sh"
# A sanitized plugin in the unsanitized broker: ASan's runtime first (the
# broker's own allocations are not ours to leak-check).
MOSQ=(mosquitto)
[ -z "${SAEF_SANITIZER_RT:-}" ] ||
    MOSQ=(env LD_PRELOAD="$SAEF_SANITIZER_RT" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" mosquitto)
command -v mosquitto >/dev/null || PATH="$PATH:/usr/sbin"
PATH="$SAEF_SBIN:$PATH"
maf_world # A = //sp.example.com/C-devA, B = //sp.example.com/in-cse
maf_start --store "$M" --fqdn maf.example.com
check_rc "A registers a key for B at the MAF" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h
KEYID=$(cut -f1 "$T/out")
KC=$(saef-key -s "$A" show kc "$KEYID" --reveal --key-only)
# mosquitto drops to its own user before loading plugins; B caches Kc.
chmod 755 "$T"
[ "$(id -u)" != 0 ] || chown mosquitto "$B" "$B-lock"
# A store belongs to the user who runs saef on it: as root, saef-key runs as
# mosquitto on B's store from here on.
owner() { if [ "$(id -u)" = 0 ]; then runuser -u mosquitto -- "$@"; else "$@"; fi; }
PORT=$(free_port)
cat >"$T/mosquitto.conf" <<MQ
plugin $SAEF_LIBDIR/saef/saef-mosquitto.so
plugin_opt_store $B
plugin_opt_entity_id $IDB
plugin_opt_maf maf.example.com $MAF
plugin_opt_maf_kmid b-km@maf.example.com
plugin_opt_maf_timeout 1000
allow_anonymous false
listener $PORT 127.0.0.1
psk_hint saef
MQ
chmod 644 "$T/mosquitto.conf"
saef_bg "$T/mosquitto.log" "${MOSQ[@]}" -c "$T/mosquitto.conf"
wait_port "$PORT"
pub() { timeout 10 mosquitto_pub -h 127.0.0.1 -p "$PORT" --psk "$2" --psk-identity "$1" -t "$3" \
            -m hello ${4:-} 2>"$T/err"; }
OWN=/oneM2M/req/::sp.example.com:C-devA/::sp.example.com:in-cse/json
check "A's client connects with Kc, retrieved by the plugin (TLS 1.3)" pub "$KEYID" $KC $OWN
check "  ... again from B's cache (TLS 1.2)" pub "$KEYID" $KC $OWN "--tls-version tlsv1.2"
check_rc "  ... B cached Kc in its store" 0 owner saef-key -s "$B" show kc "$KEYID"
check_grep "  ... bound to A's ID from the MAF" "peer: $IDA" "$T/out"
check_not "a wrong key for the identity is refused" pub "$KEYID" 000102030405060708090A0B0C0D0E0F $OWN
check_not "an identity the MAF does not know is refused" \
    pub 00000000000000000000000000000000@maf.example.com $KC $OWN
check "A's ID publishing as another AE is taken (and dropped)" \
    pub "$KEYID" $KC /oneM2M/req/::sp.example.com:C-devB/::sp.example.com:in-cse/json
sleep 0.3
check_grep "association logged: framework maf, A's ID" \
    "association accepted identity=\"$KEYID\" entity=\"$IDA\" framework=maf" "$T/mosquitto.log"
check_grep "the foreign topic refused with A's ID" \
    "refused topic entity=\"$IDA\" access=publish topic=\"/oneM2M/req/::sp.example.com:C-devB/" "$T/mosquitto.log"
check_grep "the unknown identity refused with a reason" \
    'refused identity="00000000000000000000000000000000@maf.example.com" reason=' "$T/mosquitto.log"
check_no_key "$T/mosquitto.log" $KC $KB
done_testing
