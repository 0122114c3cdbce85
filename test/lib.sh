# shellcheck shell=bash disable=SC2034,SC2120
# (SC2034, SC2120: the variables and optional arguments are for the scripts that source this.)
# Shared helpers for saef's shell tests. Source it: . "$SAEF_SRC/test/lib.sh"
# Every test gets a private temp dir ($T) and a trap that stops whatever it
# started (saef_bg) and removes $T.
set -u
: "${SAEF_SRC:?run through ctest}" "${SAEF_BIN:?run through ctest}"
T=$(mktemp -d "${TMPDIR:-/tmp}/saef-test.XXXXXX")
chmod 700 "$T"
SAEF_PIDS=""
FAILS=0
# How much slower than a plain build programs are (sanitized builds set it):
# scales the lifetimes and time limits that tests measure.
SAEF_SLOW=${SAEF_SLOW:-1}
PATH="$SAEF_BIN:$PATH"
export PATH

# SAEF_SANITIZE builds (SAEF_SANITIZER_RT set by ctest): every sanitizer
# report goes to $T/sanitizer.PID, and any such file fails the test, also
# from programs in the background or with their output thrown away. The
# openssl CLI loads the sanitized provider only behind the ASan runtime.
if [ -n "${SAEF_SANITIZER_RT:-}" ]; then
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$T/sanitizer"
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:log_path=$T/sanitizer"
    export ASAN_OPTIONS UBSAN_OPTIONS
    mkdir "$T/san-bin"
    cat >"$T/san-bin/openssl" <<SH
#!/bin/sh
LD_PRELOAD="$SAEF_SANITIZER_RT\${LD_PRELOAD:+ \$LD_PRELOAD}" exec $(command -v openssl) "\$@"
SH
    chmod +x "$T/san-bin/openssl"
    PATH="$T/san-bin:$PATH"
fi

sanitizer_reports() {
    set -- "$T"/sanitizer.*
    [ -e "$1" ] || return 0
    for f in "$@"; do echo "FAIL - sanitizer report $f:"; sed 's/^/   | /' "$f"; done
    return 1
}

# Stops what saef_bg started: TERM first, and time to exit (a sanitized
# program checks for leaks on its way out), then KILL.
saef_cleanup() {
    rc=$?
    for p in $SAEF_PIDS; do kill "$p" 2>/dev/null; done
    i=0
    for p in $SAEF_PIDS; do
        while kill -0 "$p" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
    sanitizer_reports || rc=$((rc + 1))
    [ -n "${SAEF_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
    exit "$rc"
}
trap saef_cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP (or UDP with "udp") port on 127.0.0.1.
free_port() {
    python3 - "${1:-tcp}" <<'PY'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# saef_bg LOGFILE CMD...: start CMD in the background under a time limit.
saef_bg() {
    log=$1; shift
    timeout -k 5 "${SAEF_BG_LIMIT:-120}" "$@" >"$log" 2>&1 &
    SAEF_LAST_PID=$!
    SAEF_PIDS="$SAEF_PIDS $SAEF_LAST_PID"
}

# poll SECONDS CMD...: runs CMD every 50 ms until it succeeds (0) or SECONDS
# have passed (1).
poll() {
    local n=$(( $1 * 20 )) i=0
    shift
    while [ "$i" -lt "$n" ]; do
        "$@" && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

tcp_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
udp_bound() { grep -q " $(printf '0100007F:%04X' "$1") " /proc/net/udp; }

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT (TCP).
wait_port() {
    poll "${2:-10}" tcp_listens "$1" && return 0
    echo "nothing listens on port $1" >&2
    return 1
}

# wait_udp PORT [SECONDS]: until a UDP socket is bound to 127.0.0.1:PORT.
wait_udp() {
    poll "${2:-10}" udp_bound "$1" && return 0
    echo "nothing bound to UDP port $1" >&2
    return 1
}

# wait_log FILE PATTERN [SECONDS]
wait_log() {
    poll "${3:-10}" grep -q -- "$2" "$1" 2>/dev/null && return 0
    echo "no '$2' in $1 after ${3:-10}s:" >&2
    tail -20 "$1" >&2
    return 1
}

# saef_cnf FILE STORE [LINE...]: an openssl.cnf activating default and the
# staged saef provider on STORE; each LINE ("key = value") is appended.
saef_cnf() {
    f=$1 s=$2
    shift 2
    cat >"$f" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = providers_sect
[providers_sect]
default = default_sect
saef = saef_sect
[default_sect]
activate = 1
[saef_sect]
module = $SAEF_MODULES/saef.so
activate = 1
store = $s
CNF
    for l in "$@"; do echo "$l" >>"$f"; done
}

# handshake_ok FILE: openssl s_client's output shows a completed handshake.
handshake_ok() {
    grep -q "Cipher is" "$1" && ! grep -q -E "alert|:error:|Cipher is \(NONE\)" "$1"
}

# dev1_store STORE: a new store holding $K, the pre-provisioned key of
# dev1@sp.example.com, whose client is /sp.example.com/C-dev1.
dev1_store() {
    K=00112233445566778899AABBCCDDEEFF
    saef-key -s "$1" init >/dev/null
    saef-key -s "$1" add kpsa dev1@sp.example.com --hex $K --peer /sp.example.com/C-dev1
}

# maf_world: new stores of the MAF ($M), Entity A ($A, $IDA) and Entity B
# ($B, $IDB), the Km of A and B ($KA, $KB) in them, and the port ($MPORT)
# and URL ($MAF) for a MAF started with maf_start.
maf_world() {
    KA=0102030405060708090A0B0C0D0E0F10 KB=1112131415161718191A1B1C1D1E1F20
    M="$T/maf.db" A="$T/a.db" B="$T/b.db"
    IDA=//sp.example.com/C-devA IDB=//sp.example.com/in-cse
    for s in "$M" "$A" "$B"; do saef-key -s "$s" init >/dev/null; done
    # The MAF knows each client's Km and authenticated ID (TS-0003 8.8.3.1).
    saef-key -s "$M" add km a-km@maf.example.com --hex $KA --peer $IDA
    saef-key -s "$M" add km b-km@maf.example.com --hex $KB --peer $IDB
    saef-key -s "$A" add km a-km@maf.example.com --hex $KA --self $IDA
    saef-key -s "$B" add km b-km@maf.example.com --hex $KB
    MPORT=$(free_port)
    MAF="https://127.0.0.1:$MPORT"
}

# MAF helpers; MPORT is the MAF's port.
# maf_start ARGS...: start saef-mafd on MPORT; MAFD is the daemon's PID.
maf_start() {
    saef_bg "$T/mafd.log" saef-mafd --listen "127.0.0.1:$MPORT" "$@"
    wait_port "$MPORT"
    MAFD=$(saef_child)
}
# maf_reg [EXPIRES]: A registers a key for B (IdB) at $MAF (default +1h); KEY
# is its identity, KC its key, KCS every KC so far (for check_no_key).
maf_reg() {
    saef-maf -s "$A" register --maf "$MAF" --target "$IDB" --expires "${1:-+1h}" >"$T/reg" || return 1
    KEY=$(cut -f1 "$T/reg")
    KC=$(saef-key -s "$A" show kc "$KEY" --reveal --key-only)
    KCS="${KCS:-} $KC"
}
# kc_connect PORT [IDENTITY]: A's TLS 1.2 handshake with KC (identity KEY by
# default) from 127.0.0.1, as a plain PSK client; output in $T/client.
kc_connect() {
    echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$1" \
        -tls1_2 -psk_identity "${2:-$KEY}" -psk "$KC" >"$T/client" 2>&1
    handshake_ok "$T/client"
}
# maf_raw KMID KEY METHOD PATH [BODY]: one HTTP request over openssl s_client,
# which also prints its own RFC 5705 export of the connection ($T/raw).
maf_raw() {
    local b=${5:-}
    { printf '%s %s HTTP/1.1\r\nHost: maf.example.com\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
          "$3" "$4" ${#b} "$b"; sleep 0.5; } |
        OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$MPORT" -tls1_2 \
            -psk_identity "$1" -psk "$2" -keymatexport EXPORTER-oneM2M-Connection \
            -keymatexportlen 48 -ign_eof >"$T/raw" 2>&1
}
# maf_status: the HTTP status of the last maf_raw.
maf_status() { sed -n 's|^HTTP/1.1 \([0-9]*\).*|\1|p' "$T/raw" | head -1; }

pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }

# check DESC CMD...: pass if CMD succeeds.
check() { d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
# check_not DESC CMD...: pass if CMD fails.
check_not() { d=$1; shift; if "$@"; then fail "$d"; else pass "$d"; fi; }
# check_rc DESC WANT CMD...: pass if CMD exits WANT (output in $T/out, $T/err).
check_rc() {
    d=$1; want=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$d"; else
        fail "$d (exit $rc, wanted $want)"; sed 's/^/   | /' "$T/err" | head -5
    fi
}
# check_grep DESC PATTERN FILE
check_grep() {
    if grep -q -- "$2" "$3"; then pass "$1"; else fail "$1: no '$2' in $3"; sed 's/^/   | /' "$3" | head -10; fi
}
check_nogrep() {
    if grep -q -- "$2" "$3"; then fail "$1: '$2' found in $3"; else pass "$1"; fi
}
# check_no_key FILE KEY...: no KEY (hex) in FILE as upper or lower case hex,
# nor as base64 of its bytes (what PEM and JSON encoders would write).
check_no_key() {
    f=$1 found="" n=0
    shift
    for k in "$@"; do
        n=$((n + 1))
        b64=$(printf "%b" "$(echo "$k" | sed 's/../\\x&/g')" | base64 -w0)
        b64=${b64%%=*}
        grep -q -i -F -e "$k" "$f" || grep -q -F -e "$b64" "$f" && found="$found key$n"
    done
    if [ -n "$found" ]; then fail "$f holds$found of the keys given"; else pass "no key in $(basename "$f") ($n looked for)"; fi
}

# End of a test: exit status is the number of failures.
done_testing() {
    [ "$FAILS" -eq 0 ] && echo "all passed" || echo "$FAILS failed"
    exit "$FAILS"
}

# by_run SHORT LONG: SHORT in the default run, LONG with SAEF_LONG=1.
by_run() { if [ -n "${SAEF_LONG:-}" ]; then echo "$2"; else echo "$1"; fi; }

# saef_child: the program saef_bg started last, not its timeout wrapper.
saef_child() { pgrep -P "$SAEF_LAST_PID" | head -1; }

# tally FILE: "CLASS ok|fail" lines -> "CLASS ok=N fail=M" per class.
tally() {
    awk '{ n[$1 " " $2]++; c[$1] = 1 }
         END { for (k in c) printf "%s ok=%d fail=%d\n", k, n[k " ok"], n[k " fail"] }' "$1" | sort
}

# nginx_start CNF WORKERS: nginx under saef-run (OPENSSL_CONF=CNF), with a
# self-signed certificate, on a fresh 127.0.0.1:$PORT; NGINX is the master.
# reuseport lets the kernel spread connections over the workers; every
# answer is "oneM2M CSE" and the pid of the worker that served it.
nginx_start() {
    command -v nginx >/dev/null || PATH="$PATH:/usr/sbin"
    [ -e "$T/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -nodes -days 1 -subj /CN=localhost -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
    PORT=$(free_port)
    mkdir -p "$T/nginx/logs"
    # Workers fork from the master: they keep saef's configuration without
    # the environment, and reopen the store.
    cat >"$T/nginx/nginx.conf" <<NGX
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes $2;
daemon off;
pid $T/nginx/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$PORT ssl reuseport;
        ssl_certificate $T/cert.pem;
        ssl_certificate_key $T/key.pem;
        ssl_ciphers HIGH:!aNULL:!MD5;
        ssl_protocols TLSv1.2 TLSv1.3;  # 1.22 leaves 1.3 off by default
        location / { return 200 "oneM2M CSE\nworker \$pid\n"; }
    }
}
NGX
    saef_bg "$T/nginx.log" env OPENSSL_CONF="$1" saef-run -- nginx -p "$T/nginx" -c "$T/nginx/nginx.conf"
    NGINX=$SAEF_LAST_PID
    wait_port "$PORT"
}
