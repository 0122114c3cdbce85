#!/bin/bash
# The benchmark tools: saef-bench-handshake against native and preloaded
# openssl s_server (TLS 1.2, TLS 1.3, DTLS 1.2), its failure and new-key
# modes, then a small bench/run: every row measured, instruction target met.
. "$SAEF_SRC/test/lib.sh"
ID=bench@sp.example.com K=00112233445566778899AABBCCDDEEFF
S="$T/keys.db"
saef-key -s "$S" init >/dev/null
saef-key -s "$S" add kpsa $ID --hex $K
saef_cnf "$T/s.cnf" "$S" "role = server" "log = none"

# server WHO [udp] [s_server args...]: native or preloaded s_server on $PORT.
server() {
    who=$1 kind=tcp; shift
    [ "${1:-}" = udp ] && { kind=udp; shift; }
    PORT=$(free_port $kind)
    if [ "$who" = native ]; then
        set -- env OPENSSL_CONF=/dev/null openssl s_server -psk_identity $ID -psk $K "$@"
    else
        set -- env OPENSSL_CONF="$T/s.cnf" saef-run -- openssl s_server "$@"
    fi
    saef_bg "$T/$who.log" "$@" -accept "127.0.0.1:$PORT" -nocert -quiet
    SRV=$SAEF_LAST_PID
    if [ $kind = udp ]; then wait_udp "$PORT"; else wait_port "$PORT"; fi
}
# A UDP server is ready when its socket is bound (probes would be handshakes).
wait_udp() {
    for _ in $(seq 200); do
        ss -Hlun "sport = :$1" | grep -q . && return 0
        sleep 0.05
    done
    echo "nothing bound to udp port $1" >&2
    return 1
}
stop() { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }
# hs ARGS...: the client against $PORT; its line in $out, its status in $rc.
hs() { out=$(timeout 30 "$BENCH_HS" -p "$PORT" "$@"); rc=$?; }
val() { echo "$out" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
# Handshakes were made, none failed, exit status 0.
sane() { [ "$(val handshakes)" -gt 0 ] && [ "$(val failures)" = 0 ] && [ "$rc" = 0 ]; }

for who in native saef; do
    server $who
    for v in tls1.2 tls1.3; do
        hs -i $ID -k $K -V $v -t 0.5
        check "$who s_server, $v: handshakes, no failures ($out)" sane
    done
    hs -i $ID -k $K -V tls1.3 -c 2 -n 50
    check "$who s_server, two threads, -n 50 makes 50 handshakes" test "$(val handshakes)" = 50
    hs -i $ID -k FFEEDDCCBBAA99887766554433221100 -V tls1.3 -n 5
    check "$who s_server, wrong key: all 5 fail, exit 1" test "$(val failures):$rc" = 5:1
    stop
    server $who udp -dtls1_2 -cipher PSK-AES128-CCM8
    hs -i $ID -k $K -V dtls1.2 -t 0.5
    check "$who s_server, DTLS 1.2: handshakes, no failures ($out)" sane
    stop
done

server saef
printf 'new@sp.example.com:0A0B0C0D0E0F10111213141516171819\n' >"$T/psk.txt"
hs -f "$T/psk.txt" -u 0.3
check "-u: an unknown identity is not usable (exit 1)" test "$(val usable_ms):$rc" = -1:1
saef-key -s "$S" add kpsa new@sp.example.com --hex 0A0B0C0D0E0F10111213141516171819
hs -f "$T/psk.txt" -u 5
check "-u: a key added while the server runs is usable at once (-f FILE)" test "$rc" = 0
check "  ... after one try" test "$(val tries)" = 1
stop
check_rc "no port: a usage error" 2 "$BENCH_HS" -i $ID -k $K
check_rc "bad hex key: a usage error" 2 "$BENCH_HS" -p 1 -i $ID -k XYZ

# bench/run, small: two store sizes, the peers, one short round.
BENCH_SIZES="1 100" BENCH_ROUNDS=1 BENCH_SECONDS=0.3 BENCH_CG_N="20 80" SAEF_BG_LIMIT=300 \
    bash "$SAEF_SRC/bench/run" --quick --out "$T/results" >"$T/run.log" 2>&1
check "bench/run --quick completes" test $? = 0
R=$T/results
for row in native saef-1 saef-100; do
    for v in tls1.2 tls1.3; do
        check "  ... $row $v measured, no failures" awk -F, -v r=$row -v v=$v \
            '$1 == r && $4 == v && $6 > 0 && $11 == 0 { ok = 1 } END { exit !ok }' "$R/results.csv"
    done
done
for f in handshakes.svg handshakes.png scaling.svg scaling.png cpu.svg cpu.png summary.txt maf.csv; do
    check "  ... wrote $f" test -s "$R/$f"
done
check "  ... every server row has a start time" awk -F, 'NR > 1 && $6 == "" && $3 == "" { bad = 1 }
    END { exit bad }' "$R/servers.csv"
check "  ... a key added to saef's store was usable" awk -F, '$1 == "saef-100" && $5 != "" { ok = 1 }
    END { exit !ok }' "$R/servers.csv"
# Instructions per handshake are deterministic: the target holds exactly
# (TLS 1.2, where saef's share is largest).
check "saef at 100 keys costs at most 1/0.98 of native's instructions (TLS 1.2)" awk -F, '
    $1 == "native" { n = $4 } $1 == "saef-100" { s = $4 }
    END { exit !(n > 0 && s > 0 && n / s >= 0.98) }' "$R/instructions.csv"
check "MAF: cached Kc handshakes and registrations measured, no failed registration" awk -F, '
    $1 == "cached_maf_hs_per_s" && $4 > 0 { c = 1 } $1 == "registrations_per_s" && $4 > 0 { r = 1 }
    $1 == "registration_failures" && $4 != 0 { bad = 1 } END { exit !(c && r && !bad) }' "$R/maf-raw.csv"
if [ -f "$SAEF_STAGE/lib/nginx/modules/ngx_http_saef_module.so" ]; then
    check "nginx front: saef-run, module, module with the check; handshakes and requests, no failure" \
        awk -F, 'NR > 1 { n++; if ($5 == 0 || $6 != 0) bad = 1 } END { exit !(n == 12 && !bad) }' \
        "$R/nginx-raw.csv"
    check "nginx with the module and the check costs at most 1/0.98 of nginx under saef-run (instructions, handshake + request)" \
        awk -F, '$3 == "req" { i[$1] = $4 } END { s = i["saef-run"]; m = i["module-check"]
            exit !(s > 0 && m > 0 && s / m >= 0.98) }' "$R/nginx-instructions.csv"
fi
[ "$FAILS" -gt 0 ] && tail -20 "$T/run.log"
done_testing
