#!/bin/bash
# saef.so through the real openssl CLI and a C program using OSSL_STORE.
. "$SAEF_SRC/test/lib.sh"

KEY=00112233445566778899AABBCCDDEEFF
saef-key -s "$T/keys.db" init >/dev/null
saef-key -s "$T/keys.db" add kpsa dev1@sp.example.com --hex $KEY --peer /sp/C-dev1
saef-key -s "$T/keys.db" add km b-km@maf.example.com --hex 0102030405060708 --allow-short-key
saef-key -s "$T/keys.db" add kc 000102030405060708090A0B0C0D0E0F@maf.example.com --hex 0A0B --suid 32 --allow-short-key
saef-key -s "$T/keys.db" add kpsa old@sp.example.com --hex 0A0B --expires +2s --allow-short-key

# conf FILE [extra lines...]: an openssl.cnf loading default and saef.
conf() { f=$1; shift; saef_cnf "$f" "$T/keys.db" "entity_id = /sp.example.com/in-cse" "$@"; }
conf "$T/ok.cnf"
export OPENSSL_CONF="$T/ok.cnf"

check_rc "openssl list -providers loads saef" 0 openssl list -providers
check_grep "saef is active" "saef: oneM2M security associations" "$T/out"
check_grep "with its status" "status: active" "$T/out"

check_rc "storeutl loads a kpsa key" 0 openssl storeutl saef://kpsa/dev1@sp.example.com
check_grep "one key found" "Total found: 1" "$T/out"
check_rc "storeutl with -provider flags and no config" 0 env OPENSSL_CONF=/dev/null SAEF_STORE= \
    openssl storeutl -provider-path "$SAEF_MODULES" -provider saef -provider default \
    saef://kpsa/missing@x.y
check_grep "  ... reports the default store it tried" "/var/lib/saef/keys.db" "$T/err"

check_rc "C program: OSSL_STORE + raw private key gives the PSK" 0 "$STORE_LOAD" saef://kpsa/dev1@sp.example.com
check_grep "  ... exact key bytes" "key=$KEY" "$T/out"
check_grep "  ... store parameter readable" "store=$T/keys.db" "$T/out"
check_grep "  ... entity_id parameter readable" "entity_id=/sp.example.com/in-cse" "$T/out"
check_rc "km key by URI" 0 "$STORE_LOAD" saef://km/b-km@maf.example.com
check_grep "  ... km bytes" "key=0102030405060708" "$T/out"
check_rc "kc key by URI" 0 "$STORE_LOAD" saef://kc/000102030405060708090A0B0C0D0E0F@maf.example.com
check_rc "percent-encoded @ in the identity" 0 "$STORE_LOAD" saef://kpsa/dev1%40sp.example.com
check_grep "  ... same key" "key=$KEY" "$T/out"

check_rc "unknown identity fails" 1 "$STORE_LOAD" saef://kpsa/nobody@sp.example.com
check_grep "  ... with a clear reason" "no such saef key" "$T/err"
check_grep "  ... naming the identity" "nobody@sp.example.com" "$T/err"
check_rc "wrong key type in URI fails" 1 "$STORE_LOAD" saef://foo/dev1@sp.example.com
check_grep "  ... names the type" "unknown key type 'foo'" "$T/err"
check_rc "a MAF client registration (creg) is no key" 1 "$STORE_LOAD" saef://creg/00000000000000000000000000000000
check_grep "  ... refused as a type" "unknown key type 'creg'" "$T/err"
check_rc "no type in URI fails" 1 "$STORE_LOAD" saef://dev1
check_rc "bad percent-encoding fails" 1 "$STORE_LOAD" 'saef://kpsa/a%zz'
check_grep "  ... says so" "percent-encoded" "$T/err"
check_rc "empty identity fails" 1 "$STORE_LOAD" saef://kpsa/
check_rc "129-byte identity fails" 1 "$STORE_LOAD" "saef://kpsa/$(head -c 129 /dev/zero | tr '\0' a)"
sleep 2.2
check_rc "expired key is not handed out" 1 "$STORE_LOAD" saef://kpsa/old@sp.example.com
check_grep "  ... says expired" "expired" "$T/err"

conf "$T/missing.cnf"; sed -i "s|^store = .*|store = $T/none.db|" "$T/missing.cnf"
check_rc "missing store fails" 1 env OPENSSL_CONF="$T/missing.cnf" "$STORE_LOAD" saef://kpsa/dev1@sp.example.com
check_grep "  ... says how to create it" "saef-key -s $T/none.db init" "$T/err"

cp "$T/keys.db" "$T/open.db"; chmod 644 "$T/open.db"
conf "$T/perm.cnf"; sed -i "s|^store = .*|store = $T/open.db|" "$T/perm.cnf"
check_rc "world-readable store refused" 1 env OPENSSL_CONF="$T/perm.cnf" "$STORE_LOAD" saef://kpsa/dev1@sp.example.com
check_grep "  ... with the chmod to run" "chmod 600 $T/open.db" "$T/err"

# Every validated key: a bad value makes loading fail with the key's name.
for kv in "store=relative/path" "store_group_read=maybe" "entity_id=has space" "role=king" \
          "refuse=silently" "require_psk=2" "tls13=perhaps" "log=file" "log_level=loud" \
          "maf=maf.example.com http://insecure" "maf_kmid=not an id" "maf_timeout=0" \
          "maf_negative_ttl=-1" "kc_half=half" "kc_suid=abc" "sni=bad_host!"; do
    k=${kv%%=*}; v=${kv#*=}
    conf "$T/bad.cnf"; sed -i "/^$k = /d" "$T/bad.cnf"; echo "$k = $v" >>"$T/bad.cnf"
    # OpenSSL 3.0 goes on without a provider that failed to start from the config.
    check_rc "bad $k: openssl still runs" 0 env OPENSSL_CONF="$T/bad.cnf" openssl list -providers
    check_nogrep "  ... without saef" "saef: oneM2M" "$T/out"
    check_grep "  ... and the error names '$k'" "bad value for '$k'" "$T/err"
done
# A key saef does not know is an error that names it, never a silent default.
for k in require-psk Require_psk "x.require_psk" stor; do
    conf "$T/typo.cnf" "$k = yes"
    check_rc "unknown key $k: openssl still runs" 0 env OPENSSL_CONF="$T/typo.cnf" openssl list -providers
    check_nogrep "  ... without saef" "saef: oneM2M" "$T/out"
    check_grep "  ... and the error names '$k'" "unknown key '$k' in \[saef_sect\] of $T/typo.cnf" "$T/err"
done
# Loaded by a program (not activated by the file), the load fails and the
# error on OpenSSL's queue names the key.
conf "$T/queue.cnf" "require-psk = yes"; sed -i '/^module = /{n;d}' "$T/queue.cnf"
check_rc "loaded by name, an unknown key fails the load" 1 env OPENSSL_CONF="$T/queue.cnf" openssl list -providers -provider saef
check_grep "  ... with the key in OpenSSL's error queue" ":error:.*unknown key 'require-psk'" "$T/err"
# OpenSSL's own keys, with or without a "prefix.", are no error.
conf "$T/own.cnf" "identity = saef" "soft_load = 0" "x.activate = 1"
check_rc "OpenSSL's keys in the section load saef" 0 env OPENSSL_CONF="$T/own.cnf" openssl list -providers
check_grep "  ... active" "saef: oneM2M" "$T/out"
check_nogrep "  ... no complaint" "unknown key" "$T/err"
# The provider checks the file it was loaded from: one loaded by hand is not checked.
check_rc "a typo in OPENSSL_CONF does not stop a provider loaded from elsewhere" 0 \
    env OPENSSL_CONF="$T/typo.cnf" SAEF_STORE="$T/keys.db" openssl storeutl -provider-path "$SAEF_MODULES" \
    -provider saef -provider default -noout saef://kpsa/dev1@sp.example.com
conf "$T/good.cnf" "refuse = unknown_psk_identity" "tls13 = off" "maf = maf.example.com https://127.0.0.1:9"
check_rc "good optional values load" 0 env OPENSSL_CONF="$T/good.cnf" "$STORE_LOAD" saef://kpsa/dev1@sp.example.com
done_testing
