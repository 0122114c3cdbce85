# shellcheck shell=bash
# The MAF-based SAEF measured with saef-bench-handshake; sourced by bench/run
# (uses its T, OUT, HS, ROUNDS, SECS, MAF_N and helpers). Writes
# $OUT/maf-raw.csv; report.py makes maf.csv of it.
#   registrations/s: POST /keyReg over a new TLS-PSK connection each (the
#     MAF derives Kc from each connection), as saef-maf does; the same as a
#     CoAP POST over a new DTLS 1.2 session each (--listen-coaps), when
#     saef-mafd has CoAP
#   the same over TLS 1.2 on a registry that already holds 100,000 other
#     registrations (--quick: 2,000; BENCH_REG_FILL), against an empty one
#   first handshake with a new Kc (B fetches it from saef-mafd) against the
#     next one (cached in B's store): p50 latency of single handshakes
#   cached MAF handshakes / pre-provisioned ones, same server, alternating
#     rounds, and the same in cachegrind instructions per handshake
PATH="${SAEF_SBIN:-}:$PATH"
KA=0102030405060708090A0B0C0D0E0F10 KB=1112131415161718191A1B1C1D1E1F20
KP=2122232425262728292A2B2C2D2E2F30
IDA=//sp.example.com/C-devA IDB=//sp.example.com/in-cse
M="$T/maf.db" A="$T/a.db" B="$T/b.db"
for s in "$M" "$A" "$B"; do saef-key -s "$s" init >/dev/null; done
saef-key -s "$M" add km a-km@maf.example.com --hex $KA --peer $IDA
saef-key -s "$M" add km b-km@maf.example.com --hex $KB --peer $IDB
saef-key -s "$A" add km a-km@maf.example.com --hex $KA --self $IDA
saef-key -s "$B" add km b-km@maf.example.com --hex $KB
saef-key -s "$B" add kpsa pre@sp.example.com --hex $KP --peer //sp.example.com/C-pre

MPORT=$(free_port) BPORT=$(free_port) CPORT=$(free_port udp)
MAF="https://127.0.0.1:$MPORT"
# Built without libcoap, saef-mafd says so for any --listen-coaps.
COAP=(--listen-coaps "127.0.0.1:$CPORT") REG_PROTOS="tls1.2 tls1.3 dtls1.2"
if saef-mafd --store "$M" --fqdn maf.example.com --listen-coaps x 2>&1 | grep -q "without libcoap"; then
    COAP=() REG_PROTOS="tls1.2 tls1.3"
fi
# Registrations per second are measured: no per-client quota in the way.
saef_bg "$T/mafd.log" saef-mafd --store "$M" --fqdn maf.example.com --listen "127.0.0.1:$MPORT" \
    --max-reg-rate 1000000 --max-registrations 1000000 "${COAP[@]}"
wait_port "$MPORT"
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "role = server" "log = none" \
    "maf = maf.example.com $MAF" "maf_timeout = 2000" "maf_kmid = b-km@maf.example.com"
saef_bg "$T/b.log" env OPENSSL_CONF="$T/b.cnf" saef-run -- \
    openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"

exp=$(date -u -d '+1 hour' +%Y%m%dT%H%M%S)
body='{"expirationTime":"'$exp'","adminFQDN":"sp.example.com","SUID":32,"targetIDs":["'$IDB'"]}'
printf 'POST /keyReg HTTP/1.1\r\nHost: maf.example.com\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    ${#body} "$body" >"$T/keyreg.http"
# The same request in CoAP: CON POST, Uri-Path keyReg, Content-Format 50.
printf '\x40\x02\x00\x01\xb6keyReg\x11\x32\xff%s' "$body" >"$T/keyreg.coap"
echo "figure,round,protocol,value" >"$OUT/maf-raw.csv"
for v in $REG_PROTOS; do
    port=$MPORT req=$T/keyreg.http
    [ $v = dtls1.2 ] && port=$CPORT req=$T/keyreg.coap
    out=$(hs "$port" $v -i a-km@maf.example.com -k $KA -r "$req" -t "$SECS")
    echo "registrations_per_s,1,$v,$(echo "$out" | field hs_per_s)" >>"$OUT/maf-raw.csv"
    echo "registration_failures,1,$v,$(echo "$out" | field failures)" >>"$OUT/maf-raw.csv"
done

for i in $(seq "$MAF_N"); do
    kid=$(saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h | cut -f1)
    kc=$(saef-key -s "$A" show kc "$kid" --reveal --key-only)
    for fig in first_handshake_us cached_handshake_us; do
        echo "$fig,$i,tls1.2,$(hs "$BPORT" tls1.2 -i "$kid" -k "$kc" -n 1 | field p50_us)"
    done >>"$OUT/maf-raw.csv"
done

for r in $(seq "$ROUNDS"); do
    for v in tls1.2 tls1.3; do
        echo "cached_maf_hs_per_s,$r,$v,$(hs "$BPORT" $v -i "$kid" -k "$kc" -t "$SECS" | field hs_per_s)"
        echo "preprovisioned_hs_per_s,$r,$v,$(hs "$BPORT" $v -i pre@sp.example.com -k $KP -t "$SECS" |
            field hs_per_s)"
    done >>"$OUT/maf-raw.csv"
done

# Registrations per second on a registry that already holds REG_FILL key
# registrations of 100 other clients, against one that holds none, in
# alternating rounds: the quota and target checks go through the store's
# indexes, so the registry's size should not show.
REG_FILL=${BENCH_REG_FILL:-100000}
[ "$QUICK" = 1 ] && REG_FILL=${BENCH_REG_FILL:-2000}
for f in empty full; do
    saef-key -s "$T/maf-$f.db" init >/dev/null
    saef-key -s "$T/maf-$f.db" add km a-km@maf.example.com --hex $KA --peer $IDA
    saef-key -s "$T/maf-$f.db" add km b-km@maf.example.com --hex $KB --peer $IDB
done
python3 - "$REG_FILL" "$IDB" "$exp" >"$T/fill.json" <<'PY'
import json, sys
n, idb, exp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
expires = "%s-%s-%sT%s:%s:%sZ" % (exp[:4], exp[4:6], exp[6:8], exp[9:11], exp[11:13], exp[13:15])
for i in range(n):
    print(json.dumps({"type": "kc", "identity": "%032X@maf.example.com" % i, "key": "00" * 32,
                      "peer": idb, "self": "//sp.example.com/C-fill%d" % (i % 100),
                      "expires": expires, "suid": 32,
                      "meta": json.dumps({"adminFQDN": "sp.example.com"})}))
PY
saef-key -s "$T/maf-full.db" import --format json "$T/fill.json" >/dev/null
declare -A RPORT RPID
for f in empty full; do
    RPORT[$f]=$(free_port)
    saef_bg "$T/mafd-$f.log" saef-mafd --store "$T/maf-$f.db" --fqdn maf.example.com \
        --listen "127.0.0.1:${RPORT[$f]}" --max-reg-rate 1000000 --max-registrations 1000000
    RPID[$f]=$SAEF_LAST_PID
    wait_port "${RPORT[$f]}"
done
echo "registry_fill,1,tls1.2,$REG_FILL" >>"$OUT/maf-raw.csv"
for r in $(seq "$ROUNDS"); do
    for f in empty full; do
        echo "registrations_per_s_$f,$r,tls1.2,$(hs "${RPORT[$f]}" tls1.2 \
            -i a-km@maf.example.com -k $KA -r "$T/keyreg.http" -t "$SECS" | field hs_per_s)"
    done >>"$OUT/maf-raw.csv"
done
kill "${RPID[empty]}" "${RPID[full]}"

# The same comparison in instructions (deterministic): a B that serves N.
# Not in --quick: four more valgrind runs.
if have valgrind && [ "$QUICK" = 0 ]; then
    for v in $CG_PROTOS; do
        echo "cached_maf_instructions_per_hs,1,$v,$(cg_per_hs $v "$kid" "$kc" "$T/b.cnf" "$PRELOAD")"
        echo "preprovisioned_instructions_per_hs,1,$v,$(cg_per_hs $v pre@sp.example.com $KP \
            "$T/b.cnf" "$PRELOAD")"
    done >>"$OUT/maf-raw.csv"
fi
