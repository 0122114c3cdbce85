#!/bin/bash
# Entity B's cached Kc does not outlive the MAF: past maf_revalidate B asks
# the MAF again at the next handshake, so a deregistered, re-targeted or
# shortened key stops working there; an unreachable MAF fails closed. One
# identity is one record, whatever the case of its hex and MAF-FQDN.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
OTHER=//sp.example.com/other-cse
saef-key -s "$M" add km x-km@maf.example.com --random 32 --peer $OTHER
maf_start --store "$M" --fqdn maf.example.com
R=$SAEF_SLOW # maf_revalidate of B, seconds
saef_cnf "$T/b.cnf" "$B" "entity_id = $IDB" "role = server" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 1000" "maf_revalidate = $R"
BPORT=$(free_port)
saef_bg "$T/b.log" saef-run --conf "$T/b.cnf" -- openssl s_server -accept "127.0.0.1:$BPORT" -nocert -quiet
wait_port "$BPORT"

stale() { sleep "$R.3"; }
b_said() { sleep 0.3; check_grep "$1" "identity=\"$KEY\" reason=\"$2\"" "$T/b.log"; }
retrievals() { grep -c 'POST /keyRetrieve -> 200' "$T/mafd.log"; }

maf_reg
check "deregistration: B accepts the key first" kc_connect $BPORT
saef-maf -s "$A" deregister --maf "$MAF" --key "$KEY" >/dev/null
stale
check_not "  ... and refuses it once maf_revalidate has passed" kc_connect $BPORT
b_said "  ... because the MAF no longer knows it" "the MAF does not know the key"
check_rc "  ... and dropped its cached copy" 1 saef-key -s "$B" show kc "$KEY"

maf_reg
check "re-targeting: B accepts the key first" kc_connect $BPORT
saef-maf -s "$A" update --maf "$MAF" --key "$KEY" --target $OTHER >/dev/null
stale
check_not "  ... and refuses it once it is another server's" kc_connect $BPORT
b_said "  ... because the MAF says so" "the MAF refused: this server is not the key's target"
check_rc "  ... and dropped its cached copy" 1 saef-key -s "$B" show kc "$KEY"

maf_reg
check "shortened expiry: B accepts the key first" kc_connect $BPORT
LIFE=$((4 * SAEF_SLOW))
saef-maf -s "$A" update --maf "$MAF" --key "$KEY" --expires "+${LIFE}s" >/dev/null
stale
check "  ... still within the new lifetime" kc_connect $BPORT
expiry() { saef-key -s "$1" show kc "$KEY" | grep '^expires:'; }
check "  ... B took the MAF's new expiry" test "$(expiry "$B")" = "$(expiry "$M")"
sleep "$LIFE"
check_not "  ... and refuses it after the new expiry" kc_connect $BPORT

maf_reg
check "MAF down: B accepts the key first" kc_connect $BPORT
kill "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done
stale
check_not "  ... refuses it when it cannot revalidate (fail closed)" kc_connect $BPORT
b_said "  ... because the MAF did not answer" "MAF unreachable or not authenticated"
check_rc "  ... keeping its copy" 0 saef-key -s "$B" show kc "$KEY"
maf_start --store "$M" --fqdn maf.example.com
sleep 1.2 # B rests a MAF that did not answer for a second
check "  ... and accepts it again once the MAF answers" kc_connect $BPORT

# Within maf_revalidate (the default 300 s) the cached copy is trusted.
saef_cnf "$T/b2.cnf" "$B" "entity_id = $IDB" "role = server" "maf = maf.example.com $MAF" \
    "maf_kmid = b-km@maf.example.com" "maf_timeout = 1000"
B2PORT=$(free_port)
saef_bg "$T/b2.log" saef-run --conf "$T/b2.cnf" -- openssl s_server -accept "127.0.0.1:$B2PORT" -nocert -quiet
wait_port "$B2PORT"
maf_reg
before=$(retrievals)
kc_connect $B2PORT
check "default maf_revalidate: two handshakes" kc_connect $B2PORT
check "  ... cost one retrieval" test "$(( $(retrievals) - before ))" = 1

# Case variants of one identity: one retrieval, one record, all accepted.
maf_reg
before=$(retrievals)
python3 - "$KEY" >"$T/variants" <<'PY'
import random, sys
key, seen = sys.argv[1], set()
while len(seen) < 30:
    v = "".join(c.upper() if random.random() < 0.5 else c.lower() for c in key)
    if v != key:
        seen.add(v)
print("\n".join(sorted(seen)))
PY
ok=0
while read -r v; do kc_connect $B2PORT "$v" && ok=$((ok + 1)); done <"$T/variants"
check "30 case variants of one identity are accepted ($ok)" test "$ok" = 30
check "  ... with one retrieval at the MAF" test "$(( $(retrievals) - before ))" = 1
check "  ... and one record in B's store" test "$(saef-key -s "$B" list kc | grep -ic "${KEY:0:32}")" = 1
check_rc "  ... under the canonical identity" 0 saef-key -s "$B" show kc "$KEY"

for f in "$T"/*.log; do
    check_no_key "$f" $KA $KB $KCS
done
done_testing
