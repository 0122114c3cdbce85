#!/bin/bash
# Secrets: after pre-provisioned and MAF-based handshakes (TLS 1.2 and 1.3),
# no copy of a key is left in the memory of the server or of the MAF other
# than the store's own pages, and no log at log_level = debug holds a key.
. "$SAEF_SRC/test/lib.sh"
: "${PSK_CLIENT:?run through ctest}"
PATH="$SAEF_SBIN:$PATH"
SCAN="python3 $SAEF_SRC/test/faults/memscan.py"
# The dynamic linker's lazy binding saves vector registers (which may hold
# whatever a memcpy just moved) on the stack: bind at start, so what the
# scan finds is what the programs' own code left.
export LD_BIND_NOW=1
KA=$(openssl rand -hex 32) KB=$(openssl rand -hex 32) KP=$(openssl rand -hex 32)
M="$T/maf.db" A="$T/a.db" B="$T/b.db"
for s in "$M" "$A" "$B"; do saef-key -s "$s" init >/dev/null; done
IDA=//sp.example.com/C-devA IDB=//sp.example.com/in-cse
saef-key -s "$M" add km a-km@maf.example.com --hex "$KA" --peer $IDA
saef-key -s "$M" add km b-km@maf.example.com --hex "$KB" --peer $IDB
saef-key -s "$A" add km a-km@maf.example.com --hex "$KA" --self $IDA
saef-key -s "$B" add km b-km@maf.example.com --hex "$KB"
echo "$KP" | saef-key -s "$B" add kpsa dev@sp.example.com --peer //sp.example.com/C-dev
MPORT=$(free_port) BPORT=$(free_port)
MAF="https://127.0.0.1:$MPORT"
maf_start --store "$M" --fqdn maf.example.com
cnf() { # cnf FILE STORE ROLE [LINE...]: every log line saef can write
    f=$1 s=$2 r=$3
    shift 3
    saef_cnf "$f" "$s" "entity_id = $IDB" "role = $r" "maf = maf.example.com $MAF" \
        "log = stderr" "log_level = debug" "$@"
}
cnf "$T/b.cnf" "$B" server "maf_kmid = b-km@maf.example.com"
cnf "$T/a.cnf" "$A" client
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"
SERVER=$(saef_child)

KEYS="$KA $KB $KP"
for v in 1.2 1.3; do
    check "pre-provisioned handshake (TLS $v)" "$PSK_CLIENT" -v $v "127.0.0.1:$BPORT" dev@sp.example.com "$KP"
    saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h >"$T/reg" 2>>"$T/maf-client.log"
    id=$(cut -f1 "$T/reg")
    kc=$(saef-key -s "$A" show kc "$id" --reveal --key-only)
    KEYS="$KEYS $kc"
    check "MAF-based handshake, B retrieves Kc (TLS $v)" "$PSK_CLIENT" -v $v "127.0.0.1:$BPORT" "$id" "$kc"
    echo ping | OPENSSL_CONF="$T/a.cnf" timeout 10 saef-run -- openssl s_client -brief \
        -connect "127.0.0.1:$BPORT" -tls${v/./_} >>"$T/a.log" 2>&1
    check "  ... and the preloaded client offers it (TLS $v)" grep -q "established identity=\"$id\"" "$T/a.log"
    saef-key -s "$A" del kc "$id"
done
sleep 0.3
$SCAN "$SERVER" $KEYS >"$T/server.scan"
rc=$?
check "no key copy left in the server's memory: $(tail -1 "$T/server.scan")" test $rc = 0
$SCAN "$MAFD" $KEYS >"$T/maf.scan"
rc=$?
check "no key copy left in the MAF's memory: $(tail -1 "$T/maf.scan")" test $rc = 0
grep copy "$T"/*.scan | sed 's/^/   | /' | head -10

# Every command of saef-key that handles keys, its output and errors.
for c in "list" "show kpsa dev@sp.example.com" "show kc nothing@maf.example.com" "export $T/x.psk" \
         "add kpsa dev@sp.example.com --hex $KP" "import $T/x.psk" "del kpsa none@sp.example.com"; do
    saef-key -s "$B" $c >>"$T/saef-key.log" 2>&1
done
for f in "$T"/*.log; do check_no_key "$f" $KEYS; done
done_testing
