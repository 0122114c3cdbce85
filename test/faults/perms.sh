#!/bin/bash
# Permission checks on what decides whom saef trusts: a store, its lock
# file, or an openssl.cnf that others can write or replace is refused, with
# the chmod that fixes it.
. "$SAEF_SRC/test/lib.sh"
K=$(openssl rand -hex 16)
sk() { saef-key -s "$@"; }

mkdir -m 0755 "$T/ok" "$T/open" "$T/group" "$T/sticky"
chmod 0777 "$T/open"; chmod 0775 "$T/group"; chmod 1777 "$T/sticky"
check_rc "a store in a safe directory" 0 sk "$T/ok/keys.db" init
check_rc "no store is created in a directory others may write" 3 sk "$T/open/keys.db" init
check_grep "  ... names the directory and the fix" "directory $T/open is writable by others: chmod go-w $T/open" "$T/err"
check "  ... and leaves nothing there" test -z "$(ls "$T/open")"
cp "$T/ok/keys.db" "$T/open/keys.db"
check_rc "an existing store there is refused" 3 sk "$T/open/keys.db" list
check_grep "  ... saying why" "refuses a store others can replace" "$T/err"
cp "$T/ok/keys.db" "$T/group/keys.db"
check_rc "a group-writable directory is refused too" 3 sk "$T/group/keys.db" list
check_grep "  ... named" "directory $T/group is writable by its group" "$T/err"
check_rc "a sticky directory (like /tmp) is fine" 0 sk "$T/sticky/keys.db" init
ln -s "$T/open/keys.db" "$T/ok/link.db"
check_rc "a symbolic link to a store in an unsafe place is refused" 3 sk "$T/ok/link.db" list
sk "$T/ok/keys.db" add kpsa dev@sp.example.com --hex "$K"
chmod 0666 "$T/ok/keys.db-lock"
check_rc "a lock file others may write is refused" 3 sk "$T/ok/keys.db" list
check_grep "  ... with the fix" "chmod o-w $T/ok/keys.db-lock" "$T/err"
chmod 0600 "$T/ok/keys.db-lock"
if [ "$(id -u)" = 0 ]; then
    mkdir -m 0755 "$T/theirs"; chown 65534 "$T/theirs"
    cp "$T/ok/keys.db" "$T/theirs/keys.db"
    check_rc "a directory that belongs to another user is refused" 3 sk "$T/theirs/keys.db" list
    check_grep "  ... named" "directory $T/theirs belongs to another user" "$T/err"
    # Another user made the store first in a sticky directory (/tmp): it is
    # theirs, with their key in it; nothing of saef may use it.
    sk "$T/sticky/keys.db" add kpsa dev@sp.example.com --hex "$K"
    chown 65534 "$T/sticky/keys.db" "$T/sticky/keys.db-lock"
    check_rc "init on another user's store says whose it is" 2 sk "$T/sticky/keys.db" init
    check_grep "  ... and what to do" "belongs to another user (uid 65534).*remove it" "$T/err"
    check_rc "add into another user's store is refused" 3 sk "$T/sticky/keys.db" add kpsa x@sp.example.com --random 16
    check_grep "  ... saying how to start over" "keys.db belongs to another user (uid 65534).*saef-key -s $T/sticky/keys.db init" "$T/err"
    saef_cnf "$T/ok/theirs.cnf" "$T/sticky/keys.db"
    env OPENSSL_CONF="$T/ok/theirs.cnf" openssl storeutl -noout saef://kpsa/dev@sp.example.com >"$T/out" 2>"$T/err"
    check_nogrep "a server does not take another user's key" "Total found: 1" "$T/out"
    check_grep "  ... and says why" "belongs to another user" "$T/err"
    # A lock file of another user, even 0600: its owner could lock it.
    chown 0 "$T/sticky/keys.db"
    check_rc "a lock file of another user is refused" 3 sk "$T/sticky/keys.db" list
    check_grep "  ... named, with the fix" "keys.db-lock belongs to another user (uid 65534): remove it" "$T/err"
    rm "$T/sticky/keys.db-lock"
    check_rc "  ... and once removed, the store opens" 0 sk "$T/sticky/keys.db" list
    # An export file another user made first, readable by them (and held
    # open): the keys go to a new file of root's, never into theirs.
    printf 'theirs\n' >"$T/sticky/exp.psk"; chown 65534 "$T/sticky/exp.psk"; chmod 666 "$T/sticky/exp.psk"
    exec 5<"$T/sticky/exp.psk"
    check_rc "export over another user's file" 0 sk "$T/sticky/keys.db" export "$T/sticky/exp.psk"
    check "  ... now root's file, 0600" test "$(stat -c %u:%a "$T/sticky/exp.psk")" = 0:600
    cat <&5 >"$T/theirs.out"; exec 5<&-
    check_no_key "$T/theirs.out" "$K"
fi

# openssl.cnf: the provider refuses to load from a file others may write.
saef_cnf "$T/ok/openssl.cnf" "$T/ok/keys.db" "role = server"
check_rc "a safe openssl.cnf loads saef" 0 env OPENSSL_CONF="$T/ok/openssl.cnf" openssl list -providers
check_grep "  ... active" "saef: oneM2M" "$T/out"
for mode in 0664 0646; do
    cp "$T/ok/openssl.cnf" "$T/ok/bad.cnf"; chmod $mode "$T/ok/bad.cnf"
    check_rc "openssl.cnf with mode $mode: openssl runs on" 0 env OPENSSL_CONF="$T/ok/bad.cnf" openssl list -providers
    check_nogrep "  ... without saef" "saef: oneM2M" "$T/out"
    check_grep "  ... and says why" "unsafe configuration: file $T/ok/bad.cnf is writable by" "$T/err"
done
cp "$T/ok/openssl.cnf" "$T/open/openssl.cnf"
check_rc "openssl.cnf in a directory others may write" 0 env OPENSSL_CONF="$T/open/openssl.cnf" openssl list -providers
check_grep "  ... is refused" "unsafe configuration: directory $T/open is writable by others" "$T/err"
check_rc "OPENSSL_CONF=/dev/null is no file to refuse" 0 env OPENSSL_CONF=/dev/null SAEF_STORE="$T/ok/keys.db" \
    openssl storeutl -provider-path "$SAEF_MODULES" -provider saef -provider default -noout \
    saef://kpsa/dev@sp.example.com
# A preloaded server with an unsafe configuration runs without saef: no
# PSK client gets in, and the reason is on its standard error.
PORT=$(free_port)
saef_bg "$T/server.log" saef-run --conf "$T/ok/bad.cnf" -- openssl s_server -accept "127.0.0.1:$PORT" -nocert -quiet
wait_port "$PORT"
echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
    -psk_identity dev@sp.example.com -psk "$K" -tls1_2 >"$T/client" 2>&1
check_not "a preloaded server with an unsafe openssl.cnf accepts no saef key" handshake_ok "$T/client"
check_grep "  ... and says why" "unsafe configuration" "$T/server.log"
done_testing
