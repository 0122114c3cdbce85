#!/bin/bash
# What saef-mafd refuses (issue 12, "The MAF"): a client whose km record is
# gone or changed, also on a connection it opened before; registrations over
# a client's quota or rate; input it would store cut or could not use;
# ambiguous request framing; forged log lines; options it cannot parse.
# Expired registrations are purged however many there are.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
FUTURE=$(date -u -d '+1 hour' +%Y%m%dT%H%M%S)
reg() { echo '{"expirationTime":"'"$FUTURE"'","adminFQDN":"'"${1:-sp.example.com}"'","SUID":32,"targetIDs":["'"$IDB"'"]'"${2:-}"'}'; }
kc_count() { saef-key -s "$M" list kc | wc -l; }
# raw KMID KEY: the request text on stdin, sent over one TLS connection;
# what came back in $T/raw. Each exchange writes a file of its own ($RAW,
# named before the pipeline), so the writer can wait for the answers it
# needs: a sanitized build on a loaded machine takes its time.
RAWN=0
raw() {
    OPENSSL_CONF=/dev/null timeout $((15 * SAEF_SLOW)) openssl s_client -connect "127.0.0.1:$MPORT" \
        -tls1_2 -psk_identity "$1" -psk "$2" -quiet -no_ign_eof >"$RAW" 2>&1
    cp "$RAW" "$T/raw"
}
next() { RAWN=$((RAWN + 1)); RAW=$T/raw.$RAWN; }
# answers N: until the exchange under way has N answers.
got() { [ "$(grep -c '^HTTP/1.1' "$RAW" 2>/dev/null)" -ge "$1" ]; }
answers() { poll $((10 * SAEF_SLOW)) got "$1"; }
request() { # request METHOD PATH BODY [EXTRA-HEADER-LINES]
    printf '%s %s HTTP/1.1\r\nHost: maf.example.com\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s' \
        "$1" "$2" ${#3} "${4:-}" "$3"
}
statuses() { sed -n 's|^HTTP/1.1 \([0-9]*\).*|\1|p' "$T/raw" | tr '\n' ' ' | sed 's/ $//'; }

# Options are numbers in range, and the error names the option.
check_rc "--max-body 10k is refused" 2 saef-mafd --store "$M" --fqdn maf.example.com --max-body 10k
check_grep "  ... naming the option" "\-\-max-body '10k': give a whole number" "$T/err"
check_rc "--max-lifetime 9223372036854775807 is refused (it overflowed: every registration 500)" 2 \
    saef-mafd --store "$M" --fqdn maf.example.com --max-lifetime 9223372036854775807
check_rc "--request-timeout 0 is refused" 2 saef-mafd --store "$M" --fqdn maf.example.com --request-timeout 0
check_rc "--listen without a port is refused" 2 saef-mafd --store "$M" --fqdn maf.example.com --listen '[::1]'
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    P6=$(free_port)
    saef_bg "$T/mafd6.log" saef-mafd --store "$M" --fqdn maf.example.com --listen "[::1]:$P6"
    poll 10 grep -q listening "$T/mafd6.log"
    check_rc "--listen [::1]:PORT: a client registers over IPv6" 0 \
        saef-maf -s "$A" register --maf "https://[::1]:$P6" --target $IDB --expires +1h
    kill "$SAEF_LAST_PID"
else
    echo "ok   - # SKIP no IPv6 loopback"
fi

maf_start --store "$M" --fqdn maf.example.com --max-registrations 6 --max-reg-rate 1000 --purge-interval 1
before=$(kc_count)

# Input the MAF would store cut, or that is no key.
long=$(head -c 1500 /dev/zero | tr '\0' a)
next
{ request POST /keyReg "$(reg "$long")"; answers 1; } | raw a-km@maf.example.com $KA
check "a 1,500-byte adminFQDN: 400 (it was cut inside the record)" test "$(statuses)" = 400
next
{ request POST /keyReg "$(reg "sp example.com")"; answers 1; } | raw a-km@maf.example.com $KA
check "an adminFQDN that is no domain name: 400" test "$(statuses)" = 400
labels=$(python3 -c 'import json; print(json.dumps(["x" * 100] * 10))')
next
{ request POST /keyReg "$(reg sp.example.com ",\"labels\":$labels")"; answers 1; } | raw a-km@maf.example.com $KA
check "labels that do not fit the record: 400" test "$(statuses)" = 400
next
{ request POST /keyReg "$(reg sp.example.com ',"keyValue":"00000000000000000000000000000000"')"; answers 1; } | raw a-km@maf.example.com $KA
check "an all-zero keyValue: 400" test "$(statuses)" = 400
check_grep "  ... saying why" "all zero" "$T/raw"
body=$(reg)
next
{ printf 'POST /keyReg HTTP/1.1\r\nHost: m\r\nContent-Length: %d\r\nContent-Length: 2\r\n\r\n%s' ${#body} "$body"; answers 1; } |
    raw a-km@maf.example.com $KA
check "two Content-Length headers: 400" test "$(statuses)" = 400
check "  ... nothing was stored" test "$(kc_count)" = "$before"

# The request URI is logged escaped: no forged lines.
next
{ request GET $'/x\r\e[2Ksaef-mafd:\tforged' ""; answers 1; } | raw a-km@maf.example.com $KA
sleep 0.3
check "CR, ESC and TAB in a URI do not reach the log" test "$(grep -c $'[\r\e\t]' "$T/mafd.log")" = 0
check_grep "  ... they are logged as \\xNN" 'GET /x\\x0d\\x1b\[2Ksaef-mafd:\\x09forged -> 404' "$T/mafd.log"

# A revoked client: every request is authorised against the store as it is.
next
{ request POST /keyReg "$(reg)"; answers 1; saef-key -s "$M" del km a-km@maf.example.com
  request POST /keyReg "$(reg)"; answers 2; } | raw a-km@maf.example.com $KA
check "a client whose km record is deleted: 201, then 401 on the same connection" test "$(statuses)" = "201 401"
check "  ... which the MAF closed" grep -q -i "^Connection: close" "$T/raw"
saef-key -s "$M" add km a-km@maf.example.com --hex $KA --peer $IDA
next
{ request POST /keyReg "$(reg)"; answers 1; saef-key -s "$M" del km a-km@maf.example.com
  saef-key -s "$M" add km a-km@maf.example.com --hex "$(openssl rand -hex 16)" --peer $IDA
  request POST /keyReg "$(reg)"; answers 2; } | raw a-km@maf.example.com $KA
check "a client whose Km was replaced: 201, then 401" test "$(statuses)" = "201 401"
saef-key -s "$M" del km a-km@maf.example.com
saef-key -s "$M" add km a-km@maf.example.com --hex $KA --peer //sp.example.com/C-other
next
{ request POST /keyReg "$(reg)"; answers 1; } | raw a-km@maf.example.com $KA
check "a Km re-bound to another client ID works for that client on a new connection: 201" \
    test "$(statuses)" = 201
saef-key -s "$M" del km a-km@maf.example.com
saef-key -s "$M" add km a-km@maf.example.com --hex $KA --peer $IDA
next
{ request POST /keyReg "$(reg)"; answers 1; saef-key -s "$M" del km a-km@maf.example.com
  saef-key -s "$M" add km a-km@maf.example.com --hex $KA --peer //sp.example.com/C-other
  request POST /keyReg "$(reg)"; answers 2; } | raw a-km@maf.example.com $KA
check "a Km re-bound to another client ID on an open connection: 201, then 401" test "$(statuses)" = "201 401"
saef-key -s "$M" del km a-km@maf.example.com
saef-key -s "$M" add km a-km@maf.example.com --hex $KA --peer $IDA

# Quotas: live registrations per client (--max-registrations 6, some
# stored above), and registrations per minute.
for i in $(seq 8); do
    saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h >/dev/null 2>"$T/q" || break
done
live=$(saef-key -s "$M" list kc | grep -c -- "$IDA")
check "a client's 7th live registration is refused (--max-registrations 6; it holds $live)" \
    test "$live" = 6 -a "$i" -lt 8
check_grep "  ... with 403, saying which limit" "403.*max-registrations" "$T/q"
check "  ... another client's are not counted (C-other holds 1)" test "$(saef-key -s "$M" list kc | grep -c C-other)" = 1
mafd_stop() { kill "$MAFD"; while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done; }
mafd_stop
maf_start --store "$M" --fqdn maf.example.com --max-reg-rate 3 --purge-interval 1
saef-key -s "$M" add km r-km@maf.example.com --hex $KB --peer //sp.example.com/C-rate
: >"$T/rates"
for i in 1 2 3 4; do
    next
    { request POST /keyReg "$(reg sp.example.com ',"keyValue":"0102030405060708090A0B0C0D0E0F10"')"; answers 1; } |
        raw r-km@maf.example.com $KB
    echo "$(statuses)" >>"$T/rates"
done
check "--max-reg-rate 3: the 4th registration in a minute gets 429: $(tr '\n' ' ' <"$T/rates")" \
    test "$(tr '\n' ' ' <"$T/rates")" = "201 201 201 429 "
check "  ... with Retry-After" grep -q -i "^Retry-After: [0-9]" "$T/raw"

# Purge keeps up: 600 registrations expire within 2 s and are gone within
# seconds (256 a type per minute before).
mafd_stop
maf_start --store "$M" --fqdn maf.example.com --max-lifetime 2 --max-reg-rate 100000 \
    --max-registrations 100000 --purge-interval 1
n0=$(kc_count)
body=$(reg sp.example.com ',"keyValue":"0102030405060708090A0B0C0D0E0F10"')
next
{ for i in $(seq 600); do request POST /keyReg "$body"; done; answers 600; } | raw a-km@maf.example.com $KA
made=$(statuses | tr ' ' '\n' | grep -c 201)
gone() { test "$(kc_count)" = "$n0"; }
start=$(date +%s)
poll 10 gone
check "600 registrations living 2 s ($made answered 201) are all purged 3 s after the last answer, or $(($(date +%s) - start)) s later" \
    test "$made" = 600 -a "$(kc_count)" = "$n0" || { echo "   | $(kc_count) kc records, $n0 before"; grep -v ' -> ' "$T/mafd.log" | tail -3; }
check_no_key "$T/mafd.log" $KA $KB
done_testing
