#!/bin/bash
# curl as Entity A through saef-run, against a preloaded s_server -www (Entity B).
. "$SAEF_SRC/test/lib.sh"
B="$T/b.db" A="$T/a.db"
dev1_store "$B"
saef-key -s "$B" add kpsa dev2@sp.example.com --hex FF$K --peer /sp.example.com/C-dev2
cnf() { saef_cnf "$1" "$2" "entity_id = /sp.example.com/in-cse" "role = $3"; } # cnf FILE STORE ROLE
cnf "$T/b.cnf" "$B" server
cnf "$T/a.cnf" "$A" client
PORT=$(free_port)
saef_bg "$T/server.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$PORT" -nocert -www
wait_port "$PORT"

# Entity A holds one key: it is used whatever the server's name.
saef-key -s "$A" init >/dev/null
saef-key -s "$A" add kpsa dev1@sp.example.com --hex $K --peer cse.example.com
c() { timeout 10 saef-run --conf "$T/a.cnf" -- curl -sS -k "$@" >"$T/out" 2>"$T/err"; }
c "https://127.0.0.1:$PORT/"
check_grep "curl through saef-run (only key, no SNI)" "PSK-AES128-CBC-SHA256\|TLS_AES_128_GCM_SHA256" "$T/out"
check_grep "  ... curl's audit line" 'association established identity="dev1@sp.example.com"' "$T/err"
c --tlsv1.2 --tls-max 1.2 "https://127.0.0.1:$PORT/"
check_grep "curl TLS 1.2" "Protocol  : TLSv1.2" "$T/out"

# Two keys: the SNI host picks the one whose peer is that server.
saef-key -s "$A" add kpsa dev2@sp.example.com --hex FF$K --peer other.example.com
c --resolve "cse.example.com:$PORT:127.0.0.1" "https://cse.example.com:$PORT/"
check_grep "SNI picks the key bound to cse.example.com" 'established identity="dev1@sp.example.com"' "$T/err"
c --resolve "other.example.com:$PORT:127.0.0.1" "https://other.example.com:$PORT/"
check_grep "SNI picks the key bound to other.example.com" 'established identity="dev2@sp.example.com"' "$T/err"
c "https://127.0.0.1:$PORT/"
check_not "two keys and no SNI: no key offered" grep -q "established" "$T/err"
check_grep "  ... and says why" "no key to offer" "$T/err"
sleep 0.3
check_grep "server bound both" 'entity="/sp.example.com/C-dev2"' "$T/server.log"
check_no_key "$T/server.log" $K
done_testing
