#!/bin/bash
# "The MAF has to know IdB": a key is registered (or re-targeted) only for a
# target this MAF knows, by default a MAF client (a km record's peer); with
# --targets only the listed IDs, with --cse-targets-only only CSE-IDs.
# Anything else is 403 and nothing is stored.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
maf_world
AE=//sp.example.com/C-devE
saef-key -s "$M" add km e-km@maf.example.com --hex 2122232425262728292A2B2C2D2E2F30 --peer $AE
FUTURE=$(date -u -d '+1 hour' +%Y%m%dT%H%M%S)
reg() { echo '{"expirationTime":"'$FUTURE'","adminFQDN":"sp.example.com","SUID":32,"targetIDs":["'$1'"]}'; }
kcs() { saef-key -s "$M" list kc | wc -l; }
# refused DESC TARGET: key registration for TARGET is 403, nothing stored.
refused() {
    before=$(kcs)
    maf_raw a-km@maf.example.com $KA POST /keyReg "$(reg "$2")"
    check "$1: 403" test "$(maf_status)" = 403
    check_grep "  ... says why" "target $2 refused" "$T/raw"
    check "  ... nothing stored" test "$(kcs)" = "$before"
}
accepted() {
    maf_raw a-km@maf.example.com $KA POST /keyReg "$(reg "$2")"
    check "$1: 201" test "$(maf_status)" = 201
}

maf_start --store "$M" --fqdn maf.example.com
refused "a target that is no client of this MAF" //sp.example.com/unknown-cse
check_grep "  ... it is no client" "not a client of this MAF" "$T/raw"
refused "another provider's CSE" //other-sp.example.com/in-cse
accepted "a target that is a MAF client (B)" $IDB
accepted "an AE that is a MAF client" $AE
a_kcs=$(saef-key -s "$A" list kc | wc -l)
check_rc "saef-maf register for an unknown target fails (MAF refusal)" 4 \
    saef-maf -s "$A" register --maf "$MAF" --target //sp.example.com/unknown-cse
check_grep "  ... and says why" "not a client of this MAF" "$T/err"
check "  ... nothing in A's store" test "$(saef-key -s "$A" list kc | wc -l)" = "$a_kcs"

# Re-targeting is held to the same rule.
check_rc "A registers a key for B" 0 saef-maf -s "$A" register --maf "$MAF" --target $IDB
KEYID=$(cut -f1 "$T/out")
snapshot=$(saef-key -s "$M" show kc "$KEYID")
maf_raw a-km@maf.example.com $KA PUT "/keyReg/${KEYID:0:32}" '{"targetIDs":["//sp.example.com/unknown-cse"]}'
check "re-targeting to an unknown target: 403" test "$(maf_status)" = 403
check "  ... the registration is unchanged" test "$(saef-key -s "$M" show kc "$KEYID")" = "$snapshot"
maf_raw a-km@maf.example.com $KA PUT "/keyReg/${KEYID:0:32}" '{"targetIDs":["'$AE'"]}'
check "re-targeting to another MAF client: 200" test "$(maf_status)" = 200

# A client added while the MAF runs is a target at once (no restart).
saef-key -s "$M" add km n-km@maf.example.com --random 32 --peer //sp.example.com/new-cse
accepted "a client added while the MAF runs" //sp.example.com/new-cse
kill "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done

# --cse-targets-only: an AE-ID is refused even when it is a client.
maf_start --store "$M" --fqdn maf.example.com --cse-targets-only
refused "--cse-targets-only: an AE that is a MAF client" $AE
check_grep "  ... only CSEs" "only for CSEs" "$T/raw"
refused "--cse-targets-only: an AE-ID below a CSE" //sp.example.com/in-cse/C-devE
accepted "--cse-targets-only: a CSE that is a client" $IDB
kill "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done

# --targets FILE: only the listed IDs, whether clients or not.
printf '# targets of this MAF\n%s\n\n  //sp.example.com/listed-cse\n' "$AE" >"$T/targets"
maf_start --store "$M" --fqdn maf.example.com --targets "$T/targets"
accepted "--targets: a listed AE" $AE
accepted "--targets: a listed ID that is no client" //sp.example.com/listed-cse
refused "--targets: a client that is not listed" $IDB
check_grep "  ... not in the list" "not in this MAF's list of targets" "$T/raw"
kill "$MAFD"
while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done

echo "in-cse" >"$T/bad-targets"
check_rc "--targets with a relative ID: usage error" 2 \
    saef-mafd --store "$M" --fqdn maf.example.com --targets "$T/bad-targets"
check_grep "  ... naming the line" "bad-targets line 1: 'in-cse' is not an Absolute" "$T/err"
check_rc "--targets with a missing file: usage error" 2 \
    saef-mafd --store "$M" --fqdn maf.example.com --targets "$T/none"
check_no_key "$T/mafd.log" $KA $KB
done_testing
