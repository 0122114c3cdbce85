#!/bin/bash
# The demo of setup.sh: a pre-provisioned oneM2M association end to end,
# using only installed programs. Usage: demo.sh [PREFIX]
set -eu
prefix=${1:-/usr/local}
PATH="$prefix/bin:$prefix/sbin:$PATH"
example="$prefix/share/doc/saef/examples/openssl.cnf"
[ -r "$example" ] || { echo "demo: $example is missing: run cmake --install first" >&2; exit 1; }
d=$(mktemp -d /tmp/saef-demo.XXXXXX)
pids=""
# shellcheck disable=SC2154 # p is the loop's own variable
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$d"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "1. Provision a pre-provisioned key (KpsaID, Kpsa) for an AE, bound to its AE-ID"
saef-key -s "$d/keys.db" init
saef-key -s "$d/keys.db" add kpsa dev-42@sp.example.com --random 32 \
    --peer /sp.example.com/C-dev42 --expires +30d
saef-key -s "$d/keys.db" list

step "2. An openssl.cnf that loads the saef provider (the installed example, with this store)"
sed -e "s|^store = .*|store = $d/keys.db|" "$example" >"$d/openssl.cnf"
grep -v '^#' "$d/openssl.cnf" | grep -v '^$'
export OPENSSL_CONF="$d/openssl.cnf"
openssl list -providers

step "3. Load the key back through the provider (OSSL_STORE, saef:// URI)"
openssl storeutl saef://kpsa/dev-42@sp.example.com

step "4. Entity B: an unmodified 'openssl s_server' started with saef-run"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
saef-run -- openssl s_server -accept "127.0.0.1:$port" -nocert -quiet >"$d/server.log" 2>&1 &
pids="$pids $!"
i=0
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$d/server.log"; exit 1; }; sleep 0.1
done
echo "listening on 127.0.0.1:$port"

step "5. Entity A: its own store with the same key, bound to IdB; an unmodified s_client"
saef-key -s "$d/a.db" init >/dev/null
saef-key -s "$d/keys.db" export | saef-key -s "$d/a.db" import --peer /sp.example.com/in-cse -
sed -e "s|^store = .*|store = $d/a.db|" -e "s|^role = .*|role = client|" "$example" >"$d/a.cnf"
echo "hello oneM2M" | saef-run --conf "$d/a.cnf" -- openssl s_client \
    -connect "127.0.0.1:$port" -tls1_2 -quiet 2>&1 | grep -E "saef|error" || true
echo "hello again, TLS 1.3" | saef-run --conf "$d/a.cnf" -- openssl s_client \
    -connect "127.0.0.1:$port" -tls1_3 -quiet 2>&1 | grep -E "saef|error" || true

step "6. A client with the right KpsaID but a wrong key is refused"
echo "intruder" | OPENSSL_CONF=/dev/null openssl s_client -connect "127.0.0.1:$port" -tls1_2 \
    -psk_identity dev-42@sp.example.com -psk 0badc0de -quiet >/dev/null 2>&1 || true
sleep 0.5

step "Entity B's log: each association bound to the AE-ID, the refusal with its reason"
cat "$d/server.log"
grep -q 'association accepted identity="dev-42@sp.example.com" entity="/sp.example.com/C-dev42"' "$d/server.log"

step "7. The MAF-based framework: a MAF, Entity A registering Kc for B, B fetching it"
# The MAF knows each client's KmID/Km and authenticated ID; A and B hold their own.
ka=$(openssl rand -hex 32); kb=$(openssl rand -hex 32)
saef-key -s "$d/maf.db" init >/dev/null
echo "$ka" | saef-key -s "$d/maf.db" add km a-km@maf.example.com --peer //sp.example.com/C-dev42
echo "$kb" | saef-key -s "$d/maf.db" add km b-km@maf.example.com --peer //sp.example.com/in-cse
echo "$ka" | saef-key -s "$d/a.db" add km a-km@maf.example.com --self //sp.example.com/C-dev42
echo "$kb" | saef-key -s "$d/keys.db" add km b-km@maf.example.com
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
saef-mafd --store "$d/maf.db" --fqdn maf.example.com --listen "127.0.0.1:$mport" 2>"$d/maf.log" &
pids="$pids $!"
sleep 0.5
echo "-- Entity A registers a connection key for B (key export, TS-0003 10.3.1):"
saef-key -s "$d/a.db" del kpsa dev-42@sp.example.com
saef-maf -s "$d/a.db" register --maf "https://127.0.0.1:$mport" --target //sp.example.com/in-cse --expires +1h
sed -e "s|^store = .*|store = $d/keys.db|" -e "s|^entity_id = .*|entity_id = //sp.example.com/in-cse|" \
    "$example" >"$d/b-maf.cnf"
printf 'maf = maf.example.com https://127.0.0.1:%s\nmaf_kmid = b-km@maf.example.com\n' "$mport" >>"$d/b-maf.cnf"
bport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
saef-run --conf "$d/b-maf.cnf" -- openssl s_server -accept "127.0.0.1:$bport" -nocert -quiet >"$d/b-maf.log" 2>&1 &
pids="$pids $!"
sleep 0.5
echo "-- Entity A connects to B with HEX(KcID)@maf.example.com; no key was ever configured between them:"
echo "hello over the MAF" | saef-run --conf "$d/a.cnf" -- openssl s_client \
    -connect "127.0.0.1:$bport" -tls1_3 -quiet 2>&1 | grep -E "saef|error" || true
sleep 0.5
echo "-- Entity B fetched Kc from the MAF and bound the association to A:"
grep saef "$d/b-maf.log"
grep -q 'framework=maf' "$d/b-maf.log"
echo "-- the MAF's log:"
cat "$d/maf.log"
echo
echo "demo finished: pre-provisioned and MAF-based associations, bound to A's ID"
