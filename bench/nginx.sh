# shellcheck shell=bash disable=SC2034,SC2154
# (sourced by bench/run: PIDS is its associative array, read by its cpu_ticks)
# nginx as the front of a CSE, sourced by bench/run (uses its T, OUT, HS,
# ROUNDS, SECS, CERT and helpers): the same nginx (one worker, `return 200`)
#   saef-run     under saef-run (the preload), no originator check
#   module       with ngx_http_saef_module: saef on, no check
#   module-check with ngx_http_saef_module and saef_originator_check on
# in alternating rounds (wall-clock and server CPU), and in instructions per
# connection (cachegrind, deterministic), full handshakes alone (hs) and each with one oneM2M
# request (req: GET with the bound AE's X-M2M-Origin, counted on a 2xx).
# nginx has no PSK of its own (1.22), so there is no native row here.
# Writes $OUT/nginx-raw.csv, nginx-instructions.csv and nginx.txt.
NGX_MOD=$(dirname "$SAEF_BIN")/lib/nginx/modules/ngx_http_saef_module.so
if [ -f "$NGX_MOD" ]; then
    NS=$T/nginx-front.db NK=303132333435363738393A3B3C3D3E3F NID=front@sp.example.com
    saef-key -s "$NS" init >/dev/null
    saef-key -s "$NS" add kpsa $NID --hex $NK --peer /in-cse/Cbench
    saef_cnf "$T/front.cnf" "$NS" "entity_id = //sp.example.com/in-cse" "role = server"
    printf 'GET /cse-in HTTP/1.1\r\nHost: cse\r\nX-M2M-Origin: Cbench\r\nX-M2M-RI: 1\r\nConnection: close\r\n\r\n' \
        >"$T/front-req.txt"
    declare -A FPORT FPIDS FLOAD FSRV FENV
    FLOAD[saef-run]="" FSRV[saef-run]="" FENV[saef-run]="OPENSSL_CONF=$T/front.cnf LD_PRELOAD=$PRELOAD"
    FLOAD[module]="load_module $NGX_MOD;" FSRV[module]="saef on; saef_conf $T/front.cnf;"
    FLOAD[module-check]=${FLOAD[module]}
    FSRV[module-check]="${FSRV[module]} saef_originator_check on;"
    FENV[module]="OPENSSL_CONF=/dev/null" FENV[module-check]="OPENSSL_CONF=/dev/null"
    # front_conf NAME DIR PORT GLOBAL-LINES: nginx.conf of row NAME in DIR.
    front_conf() {
        mkdir -p "$2/logs"
        cat >"$2/nginx.conf" <<NGX
${FLOAD[$1]}
$4
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log stderr error;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$3 ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $T/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ${FSRV[$1]}
        location / { return 200 "oneM2M CSE\n"; }
    }
}
NGX
    }
    # front NAME: row NAME started (master and worker), on FPORT[NAME].
    front() {
        local name=$1 d=$T/front-$1 i=0
        FPORT[$name]=$(free_port)
        front_conf "$name" "$d" "${FPORT[$name]}" ""
        saef_bg "$T/front-$name.log" env ${FENV[$name]} nginx -p "$d" -c "$d/nginx.conf"
        wait_port "${FPORT[$name]}" 30
        while [ -z "$(pgrep -P "$(pgrep -P $SAEF_LAST_PID | tail -1)")" ] && [ $i -lt 100 ]; do
            sleep 0.1; i=$((i + 1))
        done
        FPIDS[$name]=$(pgrep -P $SAEF_LAST_PID | tail -1)
        FPIDS[$name]="${FPIDS[$name]} $(pgrep -P "${FPIDS[$name]}")"
    }
    FROWS=(saef-run module module-check)
    for name in "${FROWS[@]}"; do front "$name"; done
    echo "round,row,protocol,mode,count,failures,per_s,cpu_us" >"$OUT/nginx-raw.csv"
    for r in $(seq "$ROUNDS"); do
        for v in tls1.2 tls1.3; do
            for mode in hs req; do
                for ((i = 0; i < ${#FROWS[@]}; i++)); do
                    name=${FROWS[(i + r - 1) % ${#FROWS[@]}]}
                    PIDS[front]=${FPIDS[$name]}
                    cpu_ticks front
                    c0=$TICKS
                    extra=()
                    [ $mode = req ] && extra=(-r "$T/front-req.txt")
                    out=$(hs "${FPORT[$name]}" $v -i $NID -k $NK -t "$SECS" "${extra[@]}")
                    cpu_ticks front
                    n=0 f=0 rate=0
                    if [[ $out =~ handshakes=([0-9]+)\ failures=([0-9]+).*hs_per_s=([0-9.]+) ]]; then
                        n=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} rate=${BASH_REMATCH[3]}
                    fi
                    cpu=$((n > 0 ? (TICKS - c0) * 1000000 / TICK / n : 0))
                    echo "$r,$name,$v,$mode,$n,$f,$rate,$cpu" >>"$OUT/nginx-raw.csv"
                done
            done
        done
    done
    for name in "${FROWS[@]}"; do kill ${FPIDS[$name]%% *} 2>/dev/null; done

    # Instructions (BENCHMARKING.md): nginx in one process under cachegrind
    # serving N1, then N2 connections, stopped gracefully; the difference
    # over N2 - N1 is one connection's share, start and stop left out.
    # ngx_cg NAME MODE N: instructions of that whole run.
    ngx_cg() {
        local d=$T/cg-$1 port i=0 req=()
        port=$(free_port)
        front_conf "$1" "$d" "$port" "master_process off;"
        [ "$2" = req ] && req=(-r "$T/front-req.txt")
        env ${FENV[$1]} valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
            nginx -p "$d" -c "$d/nginx.conf" 2>"$T/cg-nginx.err" &
        cg=$!
        until ss -Htln "sport = :$port" | grep -q .; do
            sleep 0.1; i=$((i + 1)); [ $i -gt 600 ] && break
        done
        hs "$port" tls1.2 -i $NID -k $NK -n "$3" "${req[@]}" >/dev/null
        kill -QUIT $cg
        wait $cg
        sed -n 's/.*I *refs: *//p' "$T/cg-nginx.err" | tr -d ,
    }
    echo "row,protocol,mode,instructions_per_connection" >"$OUT/nginx-instructions.csv"
    if have valgrind; then
        set -- $CG_N
        for name in "${FROWS[@]}"; do
            for mode in hs req; do
                a=$(ngx_cg "$name" $mode "$1") b=$(ngx_cg "$name" $mode "$2")
                echo "$name,tls1.2,$mode,$(((b - a) / ($2 - $1)))" >>"$OUT/nginx-instructions.csv"
            done
        done
    fi
    python3 - "$OUT" <<'PY'
import csv, os, statistics, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "nginx-raw.csv"))))
def med(name, v, mode, key):
    xs = [float(r[key]) for r in rows if (r["row"], r["protocol"], r["mode"]) == (name, v, mode)]
    return statistics.median(xs) if xs else 0.0
lines = ["nginx as a CSE front, one worker, %d rounds (medians); req = handshake + one "
         "GET with X-M2M-Origin" % len({r["round"] for r in rows}), "",
         "| nginx | protocol | mode | per s | ratio to saef-run | server CPU µs | failures |",
         "|---|---|---|---:|---:|---:|---:|"]
for v in ("tls1.2", "tls1.3"):
    for mode in ("hs", "req"):
        base = med("saef-run", v, mode, "per_s")
        for name in ("saef-run", "module", "module-check"):
            rate = med(name, v, mode, "per_s")
            fails = sum(int(r["failures"]) for r in rows
                        if (r["row"], r["protocol"], r["mode"]) == (name, v, mode))
            lines.append("| %s | %s | %s | %.0f | %.3f | %.0f | %d |" % (
                name, v, mode, rate, rate / base if base else 0, med(name, v, mode, "cpu_us"), fails))
ins = {(r["row"], r["mode"]): int(r["instructions_per_connection"])
       for r in csv.DictReader(open(os.path.join(out, "nginx-instructions.csv")))}
if ins:
    lines += ["", "Instructions per connection (cachegrind, TLS 1.2, one process):", "",
              "| nginx | mode | instructions | saef-run / this |", "|---|---|---:|---:|"]
    for mode in ("hs", "req"):
        for name in ("saef-run", "module", "module-check"):
            n = ins.get((name, mode), 0)
            lines.append("| %s | %s | %d | %.4f |" % (name, mode, n,
                         ins.get(("saef-run", mode), 0) / n if n else 0))
open(os.path.join(out, "nginx.txt"), "w").write("\n".join(lines) + "\n")
PY
    log "nginx front: $OUT/nginx.txt"
else
    log "no ngx_http_saef_module in the stage: the nginx front rows are skipped"
fi
