#!/bin/sh
# The demo of setup.sh: a pre-provisioned oneM2M association end to end,
# using only installed programs. Usage: demo.sh [PREFIX]
set -eu
prefix=${1:-/usr/local}
PATH="$prefix/bin:$PATH"
modules=$(pkg-config --variable=modulesdir saef 2>/dev/null ||
          PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/$(gcc -print-multiarch)/pkgconfig" \
          pkg-config --variable=modulesdir saef)
d=$(mktemp -d /tmp/saef-demo.XXXXXX)
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$d"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "1. Provision a pre-provisioned key (KpsaID, Kpsa) for an AE, bound to its AE-ID"
saef-key -s "$d/keys.db" init
saef-key -s "$d/keys.db" add kpsa dev-42@sp.example.com --random 32 \
    --peer /sp.example.com/C-dev42 --expires +30d
saef-key -s "$d/keys.db" list

step "2. An openssl.cnf that loads the saef provider (see examples/openssl.cnf)"
cat >"$d/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = providers_sect
[providers_sect]
default = default_sect
saef = saef_sect
[default_sect]
activate = 1
[saef_sect]
module = $modules/saef.so
activate = 1
store = $d/keys.db
entity_id = /sp.example.com/in-cse
role = server
CNF
cat "$d/openssl.cnf"
export OPENSSL_CONF="$d/openssl.cnf"
openssl list -providers

step "3. Load the key back through the provider (OSSL_STORE, saef:// URI)"
openssl storeutl -noout -text saef://kpsa/dev-42@sp.example.com | grep -v -i -E '^ +[0-9a-f]{2}:' || true
echo "(key bytes not shown)"

step "4. Entity B: an unmodified 'openssl s_server' started with saef-run"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
saef-run -- openssl s_server -accept "127.0.0.1:$port" -nocert -naccept 1 -quiet >"$d/server.log" 2>&1 &
pids="$pids $!"
sleep 1

step "5. Entity A: 'openssl s_client' with the same KpsaID and Kpsa, TLS 1.2, TS-0003 suite"
key=$(saef-key -s "$d/keys.db" show kpsa dev-42@sp.example.com --reveal --key-only)
echo "hello oneM2M" | OPENSSL_CONF=/dev/null openssl s_client -connect "127.0.0.1:$port" \
    -tls1_2 -cipher PSK-AES128-CBC-SHA256 -psk_identity dev-42@sp.example.com -psk "$key" \
    -quiet 2>&1 | head -5 || true
sleep 0.5
echo "-- server log (the audit line binds the connection to the AE-ID):"
cat "$d/server.log"
grep -q "C-dev42" "$d/server.log"
echo
echo "demo finished: the association was bound to /sp.example.com/C-dev42"
