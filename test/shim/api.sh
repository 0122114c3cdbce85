#!/bin/bash
# Keys for the libsaef API test: Entity B's store and Entity A's store.
. "$SAEF_SRC/test/lib.sh"
B="$T/b.db" A="$T/a.db"
saef-key -s "$B" init >/dev/null
saef-key -s "$B" add kpsa dev1@sp.example.com --hex 00112233445566778899AABBCCDDEEFF --peer /sp.example.com/C-dev1
saef-key -s "$B" add kpsa anon@sp.example.com --hex 0102030405060708 --allow-short-key
saef-key -s "$B" add kpsa mismatch@sp.example.com --hex 0102030405060708 --allow-short-key
saef-key -s "$B" add kpsa expired@sp.example.com --hex 0102030405060708 --allow-short-key
saef-key -s "$B" add kpsa resume@sp.example.com --hex 0102030405060708 --peer /sp.example.com/C-dev1 --allow-short-key
saef-key -s "$B" add kpsa vhost@sp.example.com --hex 0102030405060708 --self cse.example.com --allow-short-key
saef-key -s "$A" init >/dev/null
saef-key -s "$B" export | saef-key -s "$A" import --peer /sp.example.com/in-cse --allow-short-key - >/dev/null
saef-key -s "$A" add kpsa mismatch@sp.example.com --hex FFFF030405060708 --replace --allow-short-key
saef-key -s "$A" add kpsa expired@sp.example.com --hex 0102030405060708 --expires +1s --replace --allow-short-key
sleep 1.1
${API_WRAP:-} "$API_TEST" "$B" "$A"
