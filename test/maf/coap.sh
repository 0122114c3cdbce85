#!/bin/bash
# The MAF over CoAP/DTLS 1.2 PSK (saef-mafd --listen-coaps, coaps:// URLs):
# registration checked against openssl's own export of the DTLS session,
# retrieval by B over HTTPS and over CoAP, A-to-B over DTLS with that Kc,
# bad requests, a non-target refused, revocation within a session.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
KX=2122232425262728292A2B2C2D2E2F30 X="$T/x.db"
saef-key -s "$X" init >/dev/null
saef-key -s "$M" add km x-km@maf.example.com --hex $KX --peer //sp.example.com/other-cse
saef-key -s "$X" add km x-km@maf.example.com --hex $KX
CPORT=$(free_port udp)
COAPS="coaps://127.0.0.1:$CPORT"
maf_start --store "$M" --fqdn maf.example.com --listen-coaps "127.0.0.1:$CPORT"
wait_udp "$CPORT"
check_grep "saef-mafd serves HTTPS and CoAP at once" "listening on 127.0.0.1:$MPORT and coaps 127.0.0.1:$CPORT" "$T/mafd.log"

cnf() { # cnf FILE STORE ROLE URL [LINE...]
    f=$1 s=$2 r=$3 u=$4
    shift 4
    saef_cnf "$f" "$s" "entity_id = $IDB" "role = $r" "maf = maf.example.com $u" "maf_timeout = 2000" "$@"
}
cnf "$T/b.cnf" "$B" server "$COAPS" "maf_kmid = b-km@maf.example.com"
cnf "$T/a.cnf" "$A" client "$COAPS"
cnf "$T/x.cnf" "$X" server "$COAPS" "maf_kmid = x-km@maf.example.com"

# coap_raw KMID KEY METHOD PATH [BODY [CONTENT-FORMAT|none]]: a CoAP request
# written by hand (coap_msg), sent over openssl s_client -dtls1_2 with the
# mandatory TLS_PSK_WITH_AES_128_CCM_8, which also prints its own RFC 5705
# export of the session ($T/raw). coap_session KMID KEY CMD... runs CMD
# (which writes requests) as the session's input.
coap_msg() { # coap_msg MID METHOD PATH [BODY [FORMAT]]
    python3 - "$@" <<'PY'
import sys
mid, method, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = sys.argv[4].encode() if len(sys.argv) > 4 else b""
fmt = sys.argv[5] if len(sys.argv) > 5 else "50"
code = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4, "FETCH": 5}[method]
opts = [(11, s.encode()) for s in path.strip("/").split("/") if s]
if body and fmt != "none":
    opts.append((12, bytes([int(fmt)]) if int(fmt) else b""))
out, last = bytearray([0x40, code, mid >> 8, mid & 0xFF]), 0
for num, val in opts:
    head, ext = [], b""
    for v in (num - last, len(val)):
        if v < 13: head.append(v)
        elif v < 269: head.append(13); ext += bytes([v - 13])
        else: head.append(14); ext += (v - 269).to_bytes(2, "big")
    out += bytes([head[0] << 4 | head[1]]) + ext + val
    last = num
if body:
    out += b"\xff" + body
sys.stdout.buffer.write(out)
PY
}
coap_session() {
    local kmid=$1 key=$2
    shift 2
    { sleep 0.5; "$@"; sleep 0.5; } |
        OPENSSL_CONF=/dev/null timeout 15 openssl s_client -dtls1_2 -connect "127.0.0.1:$CPORT" \
            -cipher PSK-AES128-CCM8 -psk_identity "$kmid" -psk "$key" \
            -keymatexport EXPORTER-oneM2M-Connection -keymatexportlen 48 >"$T/raw" 2>&1
}
coap_raw() { coap_session "$1" "$2" coap_msg $((0x5A00)) "${@:3}"; }
# coap_code [N]: the code (c.dd) of the answer to the Nth request (1 by
# default) of the last coap_raw: an ACK (0x60) echoing its message ID.
coap_code() {
    python3 - "$T/raw" "$((0x5A00 + ${1:-1} - 1))" <<'PY'
import re, sys
data, mid = open(sys.argv[1], "rb").read(), int(sys.argv[2])
m = re.search(b"\x60(.)" + bytes([mid >> 8, mid & 0xFF]), data, re.S)
print("%d.%02d" % (m.group(1)[0] >> 5, m.group(1)[0] & 31) if m else "none")
PY
}

FUTURE=$(date -u -d '+1 hour' +%Y%m%dT%H%M%S)
reg() { echo '{"expirationTime":"'"${1:-$FUTURE}"'","adminFQDN":"sp.example.com","SUID":32,"targetIDs":["'"${2:-$IDB}"'"]}'; }

# Registration by saef-maf over CoAP.
check_rc "A registers a key for B over CoAP (saef-maf --maf coaps://)" 0 \
    saef-maf -s "$A" register --maf "$COAPS" --target $IDB --expires +1h --label demo
KEYID=$(cut -f1 "$T/out")
check "  ... and prints HEX32@MAF-FQDN" test -n "$(echo "$KEYID" | grep -E '^[0-9A-F]{32}@maf.example.com$')"
check_rc "  ... the MAF holds the registration" 0 saef-key -s "$M" show kc "$KEYID"
check_grep "  ... from A, for B" "self: $IDA" "$T/out"
check_grep "  ... logged as a CoAP request" "COAP POST /keyReg -> 201 client=$IDA" "$T/mafd.log"
KC=$(saef-key -s "$A" show kc "$KEYID" --reveal --key-only)
check "  ... A and the MAF hold the same Kc" \
    test "$KC" = "$(saef-key -s "$M" show kc "$KEYID" --reveal --key-only)"

# The derivation checked independently: openssl's export of the same DTLS session.
coap_raw a-km@maf.example.com $KA POST /keyReg "$(reg)"
check "raw CoAP key registration: 2.01 Created" test "$(coap_code)" = 2.01
check_grep "  ... over TLS_PSK_WITH_AES_128_CCM_8" "Cipher is PSK-AES128-CCM8" "$T/raw"
ekm=$(sed -n 's/^ *Keying material: *//p' "$T/raw")
rel=$(grep -a -o '"relativeKeyID":"[0-9A-F]*"' "$T/raw" | cut -d'"' -f4)
check "  ... RelativeKeyID = hex(KcID) = DTLS export bytes 0-15" test -n "$rel" -a "$rel" = "${ekm:0:32}"
check_rc "  ... the MAF holds it" 0 saef-key -s "$M" show kc "$rel@maf.example.com" --reveal --key-only
check "  ... Kc = DTLS export bytes 16-47" test "$(cat "$T/out")" = "${ekm:32:64}"

# B retrieves it over either transport.
maf_raw b-km@maf.example.com $KB POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
check "B retrieves it over HTTPS: 200" test "$(maf_status)" = 200
check_grep "  ... the key" '"keyValue":"'"${ekm:32:64}"'"' "$T/raw"
coap_raw b-km@maf.example.com $KB POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
check "B retrieves it over CoAP: 2.04 Changed" test "$(coap_code)" = 2.04
check_grep "  ... the key" '"keyValue":"'"${ekm:32:64}"'"' "$T/raw"
check_grep "  ... with the source client" '"sourceMAFClientID":"'$IDA'"' "$T/raw"

# A to B over DTLS with the Kc A registered over CoAP; B retrieves over CoAP.
BPORT=$(free_port udp)
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- openssl s_server -dtls1_2 -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_udp "$BPORT"
echo ping | timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_client -dtls1_2 -cipher PSK-AES128-CCM8 \
    -connect "127.0.0.1:$BPORT" >"$T/client" 2>&1
check "A connects to B over DTLS 1.2 with the MAF key" \
    grep -q "association established identity=\"$KEYID\"" "$T/client"
check_grep "  ... a PSK suite" "Cipher is PSK-" "$T/client"
sleep 0.3
check_grep "  ... B bound it to A's ID from the MAF" "accepted identity=\"$KEYID\" entity=\"$IDA\" framework=maf" "$T/b.log"
check_grep "  ... after a retrieval over CoAP" "COAP POST /keyRetrieve -> 200 client=$IDB" "$T/mafd.log"
check_rc "  ... B cached the Kc A holds" 0 saef-key -s "$B" show kc "$KEYID" --reveal --key-only
check "  ... (the same key)" test "$(cat "$T/out")" = "$KC"

# A server that is not the target: the MAF refuses over CoAP, its handshake fails.
XPORT=$(free_port udp)
saef_bg "$T/x.log" saef-run --conf "$T/x.cnf" -- openssl s_server -dtls1_2 -accept "127.0.0.1:$XPORT" -nocert -quiet
wait_udp "$XPORT"
echo ping | timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_client -dtls1_2 \
    -connect "127.0.0.1:$XPORT" >"$T/client" 2>&1
check_not "a server that is not the target gets no key" handshake_ok "$T/client"
sleep 0.3
check_grep "  ... the MAF answered 4.03 (403)" "COAP POST /keyRetrieve -> 403 client=//sp.example.com/other-cse" "$T/mafd.log"
check_grep "  ... and the server logged why" "not the key's target" "$T/x.log"
check_rc "  ... and holds no copy" 1 saef-key -s "$X" show kc "$KEYID"

# Bad requests: a clear code, and nothing changes.
before=$(saef-key -s "$M" list kc | wc -l)
bad() { # bad CODE DESC METHOD PATH [BODY [FORMAT]]
    want=$1 desc=$2; shift 2
    coap_raw a-km@maf.example.com $KA "$@"
    check "$desc: $want" test "$(coap_code)" = "$want"
}
bad 4.00 "malformed JSON" POST /keyReg '{"expirationTime":'
bad 4.00 "SUID not 32" POST /keyReg "$(reg | sed 's/"SUID":32/"SUID":12/')"
bad 4.00 "expirationTime in the past" POST /keyReg "$(reg 20200101T000000)"
bad 4.03 "a target this MAF does not know" POST /keyReg "$(reg "" //sp.example.com/stranger)"
bad 4.15 "a text/plain body" POST /keyReg "$(reg)" 0
bad 4.15 "a body without Content-Format" POST /keyReg "$(reg)" none
bad 4.05 "GET /keyReg" GET /keyReg
bad 4.05 "FETCH, which the MAF does not take" FETCH /keyReg
bad 4.04 "unknown resource" POST /nothing '{}'
bad 4.04 "retrieval of an unknown id" POST /keyRetrieve '{"relativeKeyID":"00000000000000000000000000000000"}'
bad 4.03 "retrieval by the source, not the target" POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
check_grep "  ... says why" '"error":"this client is not a target of the key"' "$T/raw"
coap_raw x-km@maf.example.com $KX POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
check "retrieval by a client that is not the target: 4.03" test "$(coap_code)" = 4.03
check_nogrep "  ... no key in the answer" "keyValue" "$T/raw"
coap_raw x-km@maf.example.com $KX DELETE "/keyReg/$rel"
check "deregistration by another client: 4.03" test "$(coap_code)" = 4.03
check "  ... nothing changed" test "$(saef-key -s "$M" list kc | wc -l)" = "$before"
check_rc "a body over --max-body (block-wise): refused" 4 \
    saef-maf -s "$A" register --maf "$COAPS" --target $IDB --label "$(head -c 20000 /dev/zero | tr '\0' x)"
check_grep "  ... 4.13 (413)" "answered 413" "$T/err"
check_rc "a 3 KB body (three blocks) arrives whole" 4 \
    saef-maf -s "$A" register --maf "$COAPS" --target $IDB --label "$(head -c 3000 /dev/zero | tr '\0' y)"
check_grep "  ... the registry read it: labels too long for a record (4.00)" "answered 400: .*1024" "$T/err"

# Update, deregistration and client registration over CoAP with saef-maf.
check_rc "saef-maf update over CoAP" 0 saef-maf -s "$A" update --maf "$COAPS" --key "$KEYID" --expires +2h
expiry() { saef-key -s "$1" show kc "$KEYID" | grep '^expires:'; }
check "  ... A's record takes the expiry the MAF answered" test "$(expiry "$A")" = "$(expiry "$M")"
check_rc "saef-maf deregister over CoAP" 0 saef-maf -s "$A" deregister --maf "$COAPS" --key "$KEYID"
check_rc "  ... gone from the MAF" 1 saef-key -s "$M" show kc "$KEYID"
check_rc "deregistering again: not found (4.04)" 1 saef-maf -s "$A" deregister --maf "$COAPS" --key "$KEYID"
check_rc "client registration over CoAP" 0 saef-maf -s "$A" client-register --maf "$COAPS"
REG=$(cut -f1 "$T/out")
check_rc "  ... its configuration (GET, 2.05)" 0 saef-maf -s "$A" client-config --maf "$COAPS" --reg "$REG"
check_grep "  ... names the CoAP port" "\"coapPort\":$CPORT" "$T/out"
check_rc "  ... de-registration" 0 saef-maf -s "$A" client-deregister --maf "$COAPS" --reg "$REG"
check_rc "HTTPS still serves beside CoAP" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB

# Revocation: the km record deleted between two requests of one DTLS session.
revoke_between() {
    coap_msg $((0x5A00)) POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
    sleep 0.5
    saef-key -s "$M" del km x-km@maf.example.com
    coap_msg $((0x5A01)) POST /keyRetrieve '{"relativeKeyID":"'$rel'"}'
}
coap_session x-km@maf.example.com $KX revoke_between
check "a client's first request in a session: answered (4.03)" test "$(coap_code 1)" = 4.03
check "  ... after its km record is deleted: 4.01" test "$(coap_code 2)" = 4.01
coap_raw x-km@maf.example.com $KX GET /clientReg/00000000000000000000000000000000
check "  ... and it gets no new session" test "$(coap_code)" = none
check_grep "  ... the MAF logged the refused identity" "handshake refused: KmID x-km@maf.example.com unknown or expired" "$T/mafd.log"

# A session stays bound to the client its handshake authenticated.
coap_session a-km@maf.example.com $KA echo R
check_grep "a renegotiation is refused" "no renegotiation" "$T/raw"

# Wrong or unknown keys: no DTLS session (DTLS drops what it cannot
# decrypt, so the client gives up at its time limit).
saef-key -s "$T/w.db" init >/dev/null
saef-key -s "$T/w.db" add km a-km@maf.example.com --hex FFFF0000FFFF0000FFFF0000FFFF0000 --self $IDA
check_rc "a wrong Km fails at the MAF over CoAP" 4 \
    saef-maf -s "$T/w.db" register --maf "$COAPS" --target $IDB --timeout 2000
check_grep "  ... no DTLS session" "no DTLS handshake" "$T/err"

# Idle sessions end after --request-timeout, driven by libcoap's timer on
# saef-mafd's event loop, which then sleeps.
kill "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done
mv "$T/mafd.log" "$T/mafd1.log"
# Not 1 s: on a loaded machine a handshake's flights can be that far apart.
IDLE=$((2 * SAEF_SLOW))
maf_start --store "$M" --fqdn maf.example.com --listen-coaps "127.0.0.1:$CPORT" \
    --request-timeout $IDLE --max-reg-rate 1
wait_udp "$CPORT"
idle_between() {
    coap_msg $((0x5A00)) GET "/clientReg/$REG"
    sleep $((2 * IDLE)).5
    coap_msg $((0x5A01)) GET "/clientReg/$REG"
}
coap_session a-km@maf.example.com $KA idle_between
check "a request in a fresh session is answered" test "$(coap_code 1)" = 4.04
check "  ... one after $((2 * IDLE)).5 s idle (--request-timeout $IDLE) is not: the session ended" \
    test "$(coap_code 2)" = none
cpu() { read -r st <"/proc/$MAFD/stat"; set -- ${st##*) }; echo $((${12} + ${13})); }
t0=$(cpu)
sleep 2
check "  ... and the idle MAF uses no CPU (ticks in 2 s: $(($(cpu) - t0)))" test $(($(cpu) - t0)) -le 1

# A rate refusal says when to retry: 4.29 with Max-Age (RFC 8516).
check_rc "one registration a minute (--max-reg-rate 1): the first" 0 \
    saef-maf -s "$A" register --maf "$COAPS" --target $IDB
coap_raw a-km@maf.example.com $KA POST /keyReg "$(reg)"
check "  ... the second: 4.29" test "$(coap_code)" = 4.29
max_age() { # the Max-Age option (14) after Content-Format 50 in the answer
    python3 - "$T/raw" <<'PY'
import re, sys
m = re.search(b"\x60\x9d\x5a\x00\xc1\x32\x21(.)", open(sys.argv[1], "rb").read(), re.S)
print(m.group(1)[0] if m else 0)
PY
}
wait_s=$(grep -a -o '"retryAfter":[0-9]*' "$T/raw" | cut -d: -f2)
check "  ... Max-Age = retryAfter = $wait_s s" test -n "$wait_s" -a "$(max_age)" = "$wait_s"

for f in "$T"/*.log; do
    check_no_key "$f" $KA $KB $KX "$KC" "${ekm:32:64}"
done
done_testing
