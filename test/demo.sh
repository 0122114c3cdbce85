#!/bin/bash
# The README's demo (examples/demo.sh, run by setup.sh) against a copy of the
# staged install, so a broken demo fails the tests, not a new user.
. "$SAEF_SRC/test/lib.sh"
P="$T/prefix"
cp -a "$SAEF_STAGE" "$P"
# The installed example names the configured prefix's module; point it here.
sed -i "s|^module = .*|module = $P${SAEF_MODULES#"$SAEF_STAGE"}/saef.so|" "$P/share/doc/saef/examples/openssl.cnf"
check_rc "the demo runs to its end" 0 timeout 120 bash "$SAEF_SRC/examples/demo.sh" "$P"
check_grep "  ... and says so" "demo finished" "$T/out"
check_grep "  ... B bound the pre-provisioned association to the AE-ID" 'accepted identity="dev-42@sp.example.com" entity="/sp.example.com/C-dev42" framework=psk' "$T/out"
check_grep "  ... A reached B with the MAF key" 'established identity="[0-9A-F]\{32\}@maf.example.com" .* framework=maf ' "$T/out"
check_grep "  ... B bound it to A's ID from the MAF" 'accepted identity="[0-9A-F]\{32\}@maf.example.com" entity="//sp.example.com/C-dev42" framework=maf ' "$T/out"
done_testing
