#!/bin/bash
# shellcheck disable=SC2046 # $(psk ...) gives s_client its options, one a word
# ngx_http_saef_module in a real nginx (no saef-run, no LD_PRELOAD) in front
# of a stand-in CSE that records what reaches it: the originator check of
# TS-0003 7.2.1 over pre-provisioned and MAF-based associations, TLS 1.2 and
# 1.3, new and resumed sessions, two workers; require_psk; bad configurations.
. "$SAEF_SRC/test/lib.sh"
: "${SAEF_NGINX_MODULE:?run through ctest}"
PATH="$SAEF_SBIN:$PATH:/usr/sbin"
CRLF=$'\r\n'
# SAEF_SANITIZE builds: nginx loads the sanitized module only behind the
# ASan runtime, as saef-run arranges for preloaded programs.
NGX=(env)
[ -n "${SAEF_SANITIZER_RT:-}" ] &&
    NGX=(env LD_PRELOAD="$SAEF_SANITIZER_RT $SAEF_LIBDIR/libsaef-asan-first.so")

# B (nginx) and A (the AE) per maf_world; B is the IN-CSE //sp.example.com/in-cse.
maf_world
maf_start --store "$M" --fqdn maf.example.com
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 1000"
saef_cnf "$T/a.cnf" "$A" "entity_id = $IDA" "role = client" "maf = maf.example.com $MAF"
# Pre-provisioned keys at B: an AE bound to its AE-ID, one bound only to its
# Credential-ID (no --peer), and an MN-CSE.
K1=00112233445566778899AABBCCDDEEFF K2=0F0E0D0C0B0A09080706050403020100 K3=A0A1A2A3A4A5A6A7A8A9AAABACADAEAF
saef-key -s "$B" add kpsa ae1@sp.example.com --hex $K1 --peer /in-cse/Csaef1 >/dev/null
saef-key -s "$B" add kpsa ae2@sp.example.com --hex $K2 >/dev/null
saef-key -s "$B" add kpsa mn@sp.example.com --hex $K3 --peer /id-mn >/dev/null

BPORT=$(free_port)
saef_bg "$T/backend.out" python3 "$SAEF_SRC/test/nginx/backend.py" "$BPORT" "$T/backend.log"
wait_port "$BPORT"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
# ngx_conf DIR PORT SERVER-LINES: an nginx.conf with the module and two workers.
ngx_conf() {
    mkdir -p "$1/logs"
    cat >"$1/nginx.conf" <<NGX
load_module $SAEF_NGINX_MODULE;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 2;
daemon off;
pid $1/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
    log_format saef '\$saef_framework "\$saef_entity" "\$saef_identity" "\$http_x_m2m_origin" \$status';
    access_log $1/access.log saef;
    server {
        listen 127.0.0.1:$2 ssl http2 reuseport;
        ssl_certificate $T/cert.pem;
        ssl_certificate_key $T/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        $3
        location / {
            proxy_pass http://127.0.0.1:$BPORT;
            proxy_set_header X-Saef-Entity \$saef_entity;
            proxy_set_header X-Saef-Identity \$saef_identity;
            proxy_set_header X-Saef-Framework \$saef_framework;
            proxy_set_header X-Worker \$pid;
        }
    }
}
NGX
}
PORT=$(free_port)
ngx_conf "$T/ngx" "$PORT" "saef on; saef_conf $T/b.cnf; saef_originator_check on;"
saef_bg "$T/nginx.log" env -u OPENSSL_CONF "${NGX[@]}" nginx -p "$T/ngx" -c "$T/ngx/nginx.conf"
NGINX=$SAEF_LAST_PID
wait_port "$PORT"

# rq METHOD FROM [CONTENT-TYPE]: a oneM2M request (FROM "-": no X-M2M-Origin)
# with a fresh X-M2M-RI; a body when a Content-Type is given.
rq() {
    local h="$1 /cse-in HTTP/1.1${CRLF}Host: cse.example.com${CRLF}Connection: close${CRLF}" b
    h+="X-M2M-RI: ri-$(date +%s%N)$CRLF"
    [ "$2" != - ] && h+="X-M2M-Origin: $2$CRLF"
    if [ -n "${3:-}" ]; then
        b='{"m2m:ae":{"rn":"ae","api":"Nsaef","rr":false,"srv":["3"]}}'
        h+="Content-Type: $3${CRLF}Content-Length: ${#b}$CRLF$CRLF$b"
    else
        h+="$CRLF"
    fi
    printf '%s' "$h"
}
# send REQUEST S_CLIENT-ARGS...: one connection; the answer in $T/resp.
send() {
    local r=$1
    shift
    # $(rq ...) loses the last newline
    case $r in *$'\r') r+=$'\n' ;; esac
    printf '%s' "$r" | OPENSSL_CONF=/dev/null timeout 10 openssl s_client \
        -connect "127.0.0.1:$PORT" -ign_eof "$@" >"$T/resp" 2>&1
}
seen() { [ -f "$T/backend.log" ] && wc -l <"$T/backend.log" || echo 0; }
last() { tail -1 "$T/backend.log" | python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
psk() { echo "-$1 -psk_identity $2@sp.example.com -psk $3"; }

# forwarded DESC ENTITY FROM REQUEST ARGS...: reaches the backend with the
# originator unchanged and the bound entity beside it.
forwarded() {
    local d=$1 e=$2 f=$3 before
    shift 3
    before=$(seen)
    send "$@"
    if grep -q "^HTTP/1.1 20[01]" "$T/resp" && [ "$(seen)" = $((before + 1)) ] &&
        [ "$(last X-M2M-Origin)" = "$f" ] && [ "$(last X-Saef-Entity)" = "$e" ]; then
        pass "$d"
    else
        fail "$d"; sed 's/^/   | /' "$T/resp" | grep -v "^   | \(depth\|verify\)" | head -12
    fi
}
# refused DESC RSC REQUEST ARGS...: answered by nginx with 403 and RSC, the
# request's X-M2M-RI echoed, and nothing reaches the backend.
refused() {
    local d=$1 rsc=$2 before ri
    shift 2
    ri=$(printf '%s' "$1" | sed -n 's/^X-M2M-RI: \(ri-[0-9]*\)\r$/\1/p')
    before=$(seen)
    send "$@"
    sleep 0.1
    if grep -q "^HTTP/1.1 403" "$T/resp" && grep -q "^X-M2M-RSC: $rsc" "$T/resp" &&
        grep -q "^X-M2M-RI: $ri" "$T/resp" && grep -q '"m2m:dbg"' "$T/resp" &&
        [ "$(seen)" = "$before" ]; then
        pass "$d"
    else
        fail "$d"; sed 's/^/   | /' "$T/resp" | grep -v "^   | \(depth\|verify\)" | head -12
    fi
}

JSON_AE="application/json;ty=2"
for v in tls1_2 tls1_3; do
    forwarded "$v: own originator forwarded with the entity" /in-cse/Csaef1 Csaef1 \
        "$(rq GET Csaef1)" $(psk $v ae1 $K1)
    check "  ... framework and identity beside it" \
        test "$(last X-Saef-Framework) $(last X-Saef-Identity)" = "psk ae1@sp.example.com"
    forwarded "$v: own SP-relative AE-ID forwarded" /in-cse/Csaef1 /in-cse/Csaef1 \
        "$(rq GET /in-cse/Csaef1)" $(psk $v ae1 $K1)
    forwarded "$v: own absolute AE-ID forwarded" /in-cse/Csaef1 //sp.example.com/in-cse/Csaef1 \
        "$(rq GET //sp.example.com/in-cse/Csaef1)" $(psk $v ae1 $K1)
    refused "$v: another AE's originator refused with 4106" 4106 "$(rq GET Cvictim)" $(psk $v ae1 $K1)
    refused "$v: the admin's originator refused (DELETE)" 4106 "$(rq DELETE CAdmin)" $(psk $v ae1 $K1)
    refused "$v: a CSE's originator refused (PUT with a body)" 4106 \
        "$(rq PUT /id-mn application/json)" $(psk $v ae1 $K1)
    refused "$v: no originator refused" 4106 "$(rq GET -)" $(psk $v ae1 $K1)
done
check_grep "the refusal is in the audit log with entity and originator" \
    'saef: refused request rsc=4106 (ORIGINATOR_NOT_AUTHENTICATED) entity="/in-cse/Csaef1" originator="Cvictim" peer=127.0.0.1:' "$T/nginx.log"
check_grep "the variables in log_format: a refusal with its association" \
    'psk "/in-cse/Csaef1" "ae1@sp.example.com" "Cvictim" 403' "$T/ngx/access.log"
check_grep "  ... and a forwarded request" \
    'psk "/in-cse/Csaef1" "ae1@sp.example.com" "Csaef1" 200' "$T/ngx/access.log"
refused "two X-M2M-Origin headers refused" 4106 \
    "$(rq GET Csaef1 | sed "s|^X-M2M-Origin: Csaef1\r$|&\nX-M2M-Origin: CAdmin\r|")" $(psk tls1_2 ae1 $K1)
refused "an originator with quotes and backslashes refused" 4106 "$(rq GET 'C"a\b')" $(psk tls1_3 ae1 $K1)
check_grep "  ... and escaped in the audit line" 'originator="C\\x22a\\x5cb"' "$T/nginx.log"
LONG=C$(printf 'x%.0s' $(seq 599))
refused "a 600-byte originator refused" 4106 "$(rq GET "$LONG")" $(psk tls1_2 ae1 $K1)
check_grep "  ... and cut short in the audit line" "originator=\"${LONG:0:128}\"\.\.\. peer=" "$T/nginx.log"

# A client without a key: the certificate handshake nginx allows, but no association.
refused "certificate-only client refused with 4107" 4107 "$(rq GET Csaef1)" -tls1_3
refused "  ... also over TLS 1.2" 4107 "$(rq GET Csaef1)" -tls1_2
curl -sk --http2 -o "$T/h2.body" -D "$T/h2.head" -H "X-M2M-Origin: Csaef1" -H "X-M2M-RI: h2-1" \
    "https://127.0.0.1:$PORT/cse-in" --max-time 10
check "  ... also over HTTP/2 (403, 4107, RI echoed)" \
    test "$(grep -c -i -e "^HTTP/2 403" -e "^x-m2m-rsc: 4107" -e "^x-m2m-ri: h2-1" "$T/h2.head")" = 3
check_grep "  ... in the audit log" 'refused request rsc=4107 (SECURITY_ASSOCIATION_REQUIRED) entity="-" originator="Csaef1"' "$T/nginx.log"

# AE registration (TS-0001 10.2.2.2): first-registration forms on a
# Credential-ID-bound association; an AE bound to its AE-ID uses it.
for f in C S -; do
    forwarded "Credential-ID bound: first registration with From '$f'" 12-ae2@sp.example.com \
        "$([ "$f" = - ] && echo None || echo "$f")" "$(rq POST "$f" "$JSON_AE")" $(psk tls1_2 ae2 $K2)
done
forwarded "Credential-ID bound: first registration, vendor media type" 12-ae2@sp.example.com C \
    "$(rq POST C "application/vnd.onem2m-res+json; ty=2")" $(psk tls1_3 ae2 $K2)
refused "Credential-ID bound: 'C' on anything but an AE create refused" 4106 "$(rq GET C)" $(psk tls1_2 ae2 $K2)
refused "Credential-ID bound: 'C' creating another type (ty=23) refused" 4106 \
    "$(rq POST C "application/json;ty=23")" $(psk tls1_2 ae2 $K2)
refused "Credential-ID bound: claiming an AE-ID refused" 4106 "$(rq GET Cae2)" $(psk tls1_3 ae2 $K2)
forwarded "AE-ID bound: registration with its own AE-ID-Stem" /in-cse/Csaef1 Csaef1 \
    "$(rq POST Csaef1 "$JSON_AE")" $(psk tls1_3 ae1 $K1)
refused "AE-ID bound: registration asking for a new AE-ID refused" 4106 \
    "$(rq POST C "$JSON_AE")" $(psk tls1_2 ae1 $K1)

# A CSE forwards the requests of others (TS-0003 7.2.1).
for f in Cvictim /in-cse/Cother //sp.example.com/id-asn/Cx; do
    forwarded "CSE bound: forwards the originator $f" /id-mn "$f" "$(rq GET "$f")" $(psk tls1_3 mn $K3)
done

# Resumed sessions are associations too: bound and checked alike.
for v in tls1_2 tls1_3; do
    send "$(rq GET Csaef1)" $(psk $v ae1 $K1) -sess_out "$T/sess.$v"
    forwarded "$v resumed: own originator forwarded" /in-cse/Csaef1 Csaef1 \
        "$(rq GET Csaef1)" $(psk $v ae1 $K1) -sess_in "$T/sess.$v"
    check "  ... the session was resumed" grep -q "^Reused" "$T/resp"
    refused "$v resumed: another originator refused" 4106 "$(rq GET Cvictim)" \
        $(psk $v ae1 $K1) -sess_in "$T/sess.$v"
    check "  ... the session was resumed" grep -q "^Reused" "$T/resp"
done
check_grep "resumed sessions are audited as associations" \
    'accepted identity="ae1@sp.example.com" entity="/in-cse/Csaef1" framework=psk protocol=TLSv1.3 .*session=resumed' "$T/nginx.log"

# MAF-based: A registers a Kc for B and connects through its client shim.
check_rc "A registers a key for B at the MAF" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB
KEYID=$(cut -f1 "$T/out")
send_a() { printf '%s\n' "$1" | timeout 10 saef-run --conf "$T/a.cnf" -- openssl s_client \
               -connect "127.0.0.1:$PORT" -ign_eof "$2" >"$T/resp" 2>&1; }
for v in -tls1_2 -tls1_3; do
    before=$(seen)
    send_a "$(rq GET C-devA)" $v
    check "MAF ($v): own originator forwarded with A's entity from the MAF" \
        test "$(seen) $(last X-Saef-Entity) $(last X-Saef-Framework)" = "$((before + 1)) $IDA maf"
    before=$(seen)
    send_a "$(rq GET Cvictim)" $v
    check "MAF ($v): another originator refused with 4106" \
        grep -q "^X-M2M-RSC: 4106" "$T/resp"
    check "  ... and the backend saw nothing" test "$(seen)" = "$before"
done
check_grep "  ... audited with the MAF's entity" "refused request rsc=4106 (ORIGINATOR_NOT_AUTHENTICATED) entity=\"$IDA\" originator=\"Cvictim\"" "$T/nginx.log"
# A reload (SIGHUP) builds new contexts: saef is installed in them too.
"${NGX[@]}" nginx -s reload -p "$T/ngx" -c "$T/ngx/nginx.conf" 2>/dev/null
wait_log "$T/nginx.log" "gracefully shutting down" 10 >/dev/null
forwarded "after a reload: own originator forwarded" /in-cse/Csaef1 Csaef1 \
    "$(rq GET Csaef1)" $(psk tls1_3 ae1 $K1)
refused "after a reload: another originator refused" 4106 "$(rq GET Cvictim)" $(psk tls1_2 ae1 $K1)
check "several workers served requests" test "$(python3 -c 'import json,sys; print(len({json.loads(l)["X-Worker"] for l in open(sys.argv[1])}))' "$T/backend.log")" -ge 2
kill "$NGINX" 2>/dev/null

# saef on without saef_conf: the configuration OpenSSL loaded (OPENSSL_CONF),
# here with require_psk: a client without a key gets no handshake at all.
saef_cnf "$T/req.cnf" "$B" "entity_id = $IDB" "require_psk = yes"
PORT=$(free_port)
ngx_conf "$T/ngx2" "$PORT" "saef on; saef_originator_check on;"
saef_bg "$T/nginx2.log" "${NGX[@]}" OPENSSL_CONF="$T/req.cnf" nginx -p "$T/ngx2" -c "$T/ngx2/nginx.conf"
wait_port "$PORT"
send "$(rq GET Csaef1)" -tls1_3
check_not "require_psk: a certificate-only client gets no handshake" grep -q "^HTTP/1.1" "$T/resp"
forwarded "require_psk: a PSK client is served (saef on from OPENSSL_CONF)" /in-cse/Csaef1 Csaef1 \
    "$(rq GET Csaef1)" $(psk tls1_2 ae1 $K1)

# Configurations saef cannot honour stop nginx (nginx -t fails, saying why).
ngx_t() { ngx_conf "$T/ngx3" "$(free_port)" "$1"; "${NGX[@]}" OPENSSL_CONF=/dev/null nginx -t -p "$T/ngx3" -c "$T/ngx3/nginx.conf" >"$T/t.out" 2>&1; }
check_not "saef_originator_check without saef is refused" ngx_t "saef_originator_check on;"
check_grep "  ... saying so" 'needs "saef on"' "$T/t.out"
check_not "saef on without any saef configuration is refused" ngx_t "saef on;"
check_grep "  ... saying so" "loads no saef provider" "$T/t.out"
saef_cnf "$T/bad.cnf" "$T/no/such/store" "entity_id = $IDB"
check_not "saef on with a store that cannot be opened is refused" ngx_t "saef on; saef_conf $T/bad.cnf;"
saef_cnf "$T/bad2.cnf" "$B" "require_psk = perhaps"
check_not "saef on with a bad value is refused" ngx_t "saef on; saef_conf $T/bad2.cnf;"
check_grep "  ... naming the key" "require_psk" "$T/t.out"

KC=$(saef-key -s "$A" show kc "$KEYID" --reveal --key-only)
for f in "$T"/*.log "$T"/ngx/access.log; do check_no_key "$f" $K1 $K2 $K3 $KA $KB "$KC"; done
done_testing
