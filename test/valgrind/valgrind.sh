#!/bin/bash
# The programs we build under valgrind memcheck: saef-key, the provider's
# OSSL_STORE loader (store_load.c), saef-maf, saef-mafd and the shim in a
# preloaded s_server retrieving Kc from it. Any invalid access or definite
# leak is a report file ($T/vg.PID), and a report fails the test.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite --child-silent-after-fork=yes --log-file="$T/vg.%p")
vg() { "${VG[@]}" "$@"; }
KM=0102030405060708090A0B0C0D0E0F10 KB=1112131415161718191A1B1C1D1E1F20 K=00112233445566778899AABBCCDDEEFF
S="$T/keys.db" M="$T/maf.db" A="$T/a.db" B="$T/b.db"
IDA=//sp.example.com/C-devA IDB=//sp.example.com/in-cse

check_rc "saef-key init" 0 vg saef-key -s "$S" init
check_rc "saef-key add --hex" 0 vg saef-key -s "$S" add kpsa dev1@sp.example.com --hex $K --peer /sp/C-dev1
check_rc "saef-key add --random" 0 vg saef-key -s "$S" add kc 000102030405060708090A0B0C0D0E0F@maf.example.com --random 32
printf 'imp1@sp.example.com:%s\nimp2@sp.example.com:%s\n' $K $KB >"$T/in.psk"
check_rc "saef-key import" 0 vg saef-key -s "$S" import --format psk "$T/in.psk"
check_rc "saef-key list" 0 vg saef-key -s "$S" list
check_rc "saef-key show" 0 vg saef-key -s "$S" show kpsa dev1@sp.example.com
check_rc "saef-key export" 0 vg saef-key -s "$S" export "$T/out.psk"
check_rc "saef-key del" 0 vg saef-key -s "$S" del kpsa imp2@sp.example.com
check_rc "saef-key show of a missing key fails" 1 vg saef-key -s "$S" show kpsa nobody@sp.example.com
check_rc "saef-key add with bad hex fails" 2 vg saef-key -s "$S" add kpsa bad@sp.example.com --hex 0G
check_rc "saef-key on a missing store fails" 3 vg saef-key -s "$T/none.db" list

saef_cnf "$T/p.cnf" "$S"
check_rc "store_load: a key" 0 env OPENSSL_CONF="$T/p.cnf" "${VG[@]}" "$STORE_LOAD" saef://kpsa/dev1@sp.example.com
check_rc "store_load: an unknown key" 1 env OPENSSL_CONF="$T/p.cnf" "${VG[@]}" "$STORE_LOAD" saef://kpsa/x@y.z
check_rc "store_load: a malformed URI" 1 env OPENSSL_CONF="$T/p.cnf" "${VG[@]}" "$STORE_LOAD" 'saef://kpsa/a%zz'

for s in "$M" "$A" "$B"; do saef-key -s "$s" init >/dev/null; done
saef-key -s "$M" add km a-km@maf.example.com --hex $KM --peer $IDA
saef-key -s "$M" add km b-km@maf.example.com --hex $KB --peer $IDB
saef-key -s "$A" add km a-km@maf.example.com --hex $KM --self $IDA
saef-key -s "$B" add km b-km@maf.example.com --hex $KB
MPORT=$(free_port) BPORT=$(free_port)
MAF="https://127.0.0.1:$MPORT"
saef_bg "$T/mafd.log" "${VG[@]}" saef-mafd --store "$M" --fqdn maf.example.com --listen "127.0.0.1:$MPORT"
MAFD=$SAEF_LAST_PID
wait_port "$MPORT" 30
check_rc "saef-maf register" 0 vg saef-maf -s "$A" register --maf "$MAF" --target $IDB --expires +1h --timeout 60000
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "role = server" "maf = maf.example.com $MAF" \
    "maf_timeout = 30000" "maf_kmid = b-km@maf.example.com"
# -naccept 2: wait_port uses up the first.
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- "${VG[@]}" openssl s_server -naccept 2 \
    -accept "127.0.0.1:$BPORT" -nocert -quiet
SRV=$SAEF_LAST_PID
wait_port "$BPORT" 30
saef_cnf "$T/a.cnf" "$A" "role = client"
echo ping | timeout 30 saef-run --conf "$T/a.cnf" -- openssl s_client -connect "127.0.0.1:$BPORT" \
    -tls1_2 >"$T/client" 2>&1
check "the preloaded s_server fetched Kc from the MAF" handshake_ok "$T/client"
wait "$SRV"
check "  ... and exited clean" test $? -eq 0
# TERM to the daemon itself: a TERM to its timeout wrapper would arm the
# wrapper's kill -9 five seconds later, sooner than valgrind's leak check ends
# on a loaded machine.
kill "$(pgrep -P "$MAFD" | head -1)"
wait "$MAFD"
check "saef-mafd exited clean" test $? -eq 0
for f in "$T"/vg.*; do
    [ -s "$f" ] || continue
    fail "valgrind report $f"
    sed 's/^/   | /' "$f"
done
done_testing
