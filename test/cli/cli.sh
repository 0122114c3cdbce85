#!/bin/bash
# The installed saef-key: every command, its output and exit codes, every error.
. "$SAEF_SRC/test/lib.sh"
S="$T/keys.db"
K=00112233445566778899AABBCCDDEEFF
K1=0F0E0D0C0B0A09080706050403020100 K2=A0A1A2A3A4A5A6A7A8A9AAABACADAEAF
sk() { saef-key -s "$S" "$@"; }
mode() { stat -c %a "$1"; }

check_rc "--help" 0 saef-key --help
check_grep "  ... shows usage" "usage: saef-key" "$T/out"
check_rc "--version" 0 saef-key --version
check_rc "no command is a usage error" 2 saef-key
check_rc "unknown command" 2 sk frobnicate
check_grep "  ... named" "unknown command 'frobnicate'" "$T/err"
check_rc "missing store: exit 3" 3 sk list
check_grep "  ... says how to create it" "saef-key -s $S init" "$T/err"

check_rc "init" 0 sk init
check "  ... store is 0600" test "$(mode "$S")" = 600
check_rc "init twice refused" 2 sk init
check_rc "init --group-read" 0 saef-key -s "$T/g.db" --group-read init
check "  ... store is 0640" test "$(mode "$T/g.db")" = 640
check "  ... lock file is 0660" test "$(mode "$T/g.db-lock")" = 660
check_rc "group-readable store refused without --group-read" 3 saef-key -s "$T/g.db" list
check_grep "  ... names the fix" "store_group_read" "$T/err"
check_rc "  ... accepted with it" 0 saef-key -s "$T/g.db" --group-read list

check_rc "add --hex" 0 sk add kpsa dev1@sp.example.com --hex $K --peer /sp/C-dev1 --self /sp/in-cse --suid 12
check_rc "add --random" 0 sk add km b-km@maf.example.com --random 32
check_rc "add with the key on stdin" 0 sh -c "echo $K | saef-key -s '$S' add kpsa stdin@sp.example.com"
check_rc "add kc" 0 sk add kc 000102030405060708090A0B0C0D0E0F@maf.example.com --hex $K --suid 32
check_rc "duplicate add refused" 2 sk add kpsa dev1@sp.example.com --hex $K
check_grep "  ... says how to replace" "already exists" "$T/err"
check_rc "--replace overwrites" 0 sk add kpsa dev1@sp.example.com --hex $K --peer /sp/C-dev1 --replace

check_rc "list" 0 sk list
check_grep "  ... header" "^TYPE	IDENTITY	PEER	SELF	EXPIRES	CREATED	SUID	STATUS" "$T/out"
check_grep "  ... row with peer" "^kpsa	dev1@sp.example.com	/sp/C-dev1	" "$T/out"
check_nogrep "  ... never prints the key" "$K" "$T/out"
check "  ... 4 keys" test "$(tail -n +2 "$T/out" | wc -l)" = 4
check_rc "list km" 0 sk list km
check "  ... only km" test "$(tail -n +2 "$T/out" | cut -f1 | sort -u)" = km
check_rc "show hides the key" 0 sk show kpsa dev1@sp.example.com
check_nogrep "  ... no key bytes" "$K" "$T/out"
check_grep "  ... key length" "key-length: 16" "$T/out"
check_rc "show --reveal" 0 sk show kpsa dev1@sp.example.com --reveal
check_grep "  ... shows the key" "key: $K" "$T/out"
check_rc "show --reveal --key-only" 0 sk show kpsa stdin@sp.example.com --reveal --key-only
check "  ... only the hex" test "$(cat "$T/out")" = "$K"
check_rc "--key-only without --reveal refused" 2 sk show kpsa dev1@sp.example.com --key-only
check_rc "show missing: exit 1" 1 sk show kpsa nobody@sp.example.com

check_rc "non-conforming identity refused" 2 sk add kpsa "bad id" --hex $K
check_grep "  ... cites TS-0003" "TS-0003" "$T/err"
check_rc "  ... accepted with --any-identity" 0 sk add kpsa "bad id" --hex $K --any-identity
check_rc "129-byte identity refused even with --any-identity" 2 sk add kpsa "$(head -c 129 /dev/zero | tr '\0' a)" --hex $K --any-identity
check_grep "  ... says the limit" "1 to 128 bytes" "$T/err"
check_rc "kc identity must be HEX32@fqdn" 2 sk add kc abc@maf.example.com --hex $K
# Control characters would forge rows of list (and lines of logs).
check_rc "a newline in --peer refused" 2 sk add kpsa f1@sp.example.com --hex $K --peer $'/sp/C-1\nkpsa\tforged@sp.example.com'
check_grep "  ... saying why" "\-\-peer holds a control character" "$T/err"
check_rc "an escape in --self refused" 2 sk add kpsa f1@sp.example.com --hex $K --self $'/sp/\e[2Jin-cse'
check_rc "a newline in an --any-identity refused" 2 sk add kpsa $'f1@sp.example.com\nkpsa' --hex $K --any-identity
check_grep "  ... saying why" "identity holds a control character" "$T/err"
check_rc "a tab in an imported --any-identity refused" 2 sh -c "printf 'f\tx:$K\n' | saef-key -s '$S' import --any-identity -"
check_rc "import --peer with a newline refused" 2 sh -c "echo 'f2@sp.example.com:$K' | saef-key -s '$S' import --peer \"\$(printf '/a\nb')\" -"
check "  ... nothing of them stored" test "$(sk list | grep -c 'f[12]@\|forged')" = 0
check_rc "a relative -s refused" 2 saef-key -s keys.db list
check_grep "  ... asking for an absolute path" "store path keys.db is relative: give an absolute path" "$T/err"
check_rc "  ... so is a relative SAEF_STORE" 2 env SAEF_STORE=./keys.db saef-key list
# Keys of 16 bytes or more; shorter ones only when asked (tests, old peers).
check_rc "a 1-byte key refused" 2 sk add kpsa s1@sp.example.com --hex 00
check_grep "  ... naming the minimum and the override" "shorter than 16 bytes (--allow-short-key" "$T/err"
check_rc "a 15-byte key refused" 2 sk add kpsa s1@sp.example.com --hex "${K:2}"
check_rc "--random 8 refused" 2 sk add kpsa s1@sp.example.com --random 8
check_rc "a short key on stdin refused" 2 sh -c "echo 0102 | saef-key -s '$S' add kpsa s1@sp.example.com"
check_rc "a short key in an import refused" 2 sh -c "printf 's1@sp.example.com:%s\ns2@sp.example.com:0102\n' $K | saef-key -s '$S' import -"
check_grep "  ... at its line" "^saef-key: -:2: key is shorter than 16 bytes" "$T/err"
check_rc "--allow-short-key accepts one" 0 sk add kpsa s1@sp.example.com --hex 00 --allow-short-key
check_rc "  ... in an import too" 0 sh -c "echo 's2@sp.example.com:0102' | saef-key -s '$S' import --allow-short-key -"
sk del kpsa s1@sp.example.com; sk del kpsa s2@sp.example.com
check_rc "bad hex" 2 sk add kpsa x@y.z --hex zz
check_rc "odd hex" 2 sk add kpsa x@y.z --hex 123
check_rc "empty key" 2 sk add kpsa x@y.z --hex ""
check_rc "257-byte key" 2 sk add kpsa x@y.z --hex "$(head -c 257 /dev/zero | od -An -tx1 | tr -d ' \n')"
check_rc "--random 0" 2 sk add kpsa x@y.z --random 0
check_rc "--hex and --random together" 2 sk add kpsa x@y.z --hex $K --random 4
check_rc "unknown type" 2 sk add kx x@y.z --hex $K

check_rc "--expires RFC 3339" 0 sk add kpsa e1@sp.example.com --hex $K --expires 2099-01-31T12:00:00Z
check_rc "--expires oneM2M" 0 sk add kpsa e2@sp.example.com --hex $K --expires 20990131T120000
check_rc "--expires relative" 0 sk add kpsa e3@sp.example.com --hex $K --expires +30d
check_rc "  ... shown" 0 sk show kpsa e2@sp.example.com
check_grep "  ... as RFC 3339" "expires: 2099-01-31T12:00:00Z" "$T/out"
check_rc "--expires in the past refused" 2 sk add kpsa e4@sp.example.com --hex $K --expires 2001-01-01T00:00:00Z
check_rc "--expires garbage refused" 2 sk add kpsa e4@sp.example.com --hex $K --expires tomorrow
check_rc "--expires Feb 30 refused" 2 sk add kpsa e4@sp.example.com --hex $K --expires 20990230T000000
sk add kpsa soon@sp.example.com --hex $K --expires +1s
sleep 1.2
check_rc "expired key listed as expired" 0 sk list kpsa
check_grep "  ... status column" "soon@sp.example.com.*expired$" "$T/out"

check_rc "del" 0 sk del kpsa e1@sp.example.com
check_rc "del missing: exit 1" 1 sk del kpsa e1@sp.example.com
check_rc "SAEF_STORE used without -s" 0 env SAEF_STORE="$S" saef-key show kpsa e2@sp.example.com

cp "$S" "$T/open.db"; chmod 644 "$T/open.db"
check_rc "world-readable store refused: exit 3" 3 saef-key -s "$T/open.db" list
check_grep "  ... with the chmod" "chmod 600 $T/open.db" "$T/err"
head -c 65536 /dev/urandom >"$T/junk.db"; chmod 600 "$T/junk.db"
check_rc "corrupt store: exit 3" 3 saef-key -s "$T/junk.db" list
: >"$T/empty.db"; chmod 600 "$T/empty.db"
check_rc "empty file is not a store" 3 saef-key -s "$T/empty.db" list

# purge: expired keys of one type (default kc) go, the rest stays.
P="$T/purge.db"
saef-key -s "$P" init >/dev/null
for i in 1 2 3; do
    saef-key -s "$P" add kc "0000000000000000000000000000000$i@maf.example.com" --hex $K --expires +1s
done
saef-key -s "$P" add kc 0000000000000000000000000000000A@maf.example.com --hex $K --expires +1h
saef-key -s "$P" add kc 0000000000000000000000000000000B@maf.example.com --hex $K
saef-key -s "$P" add kpsa old@sp.example.com --hex $K --expires +1s
sleep 1.2
check_rc "purge --dry-run" 0 saef-key -s "$P" purge --dry-run
check_grep "  ... counts the expired kc keys" "^would purge 3 expired kc keys$" "$T/out"
check "  ... and removes none" test "$(saef-key -s "$P" list | tail -n +2 | wc -l)" = 6
check_rc "purge" 0 saef-key -s "$P" purge
check_grep "  ... says how many it removed" "^purged 3 expired kc keys$" "$T/out"
check "  ... the live and the unexpiring kc and the kpsa stay" \
    test "$(saef-key -s "$P" list | tail -n +2 | cut -f1,2 | sort | tr '\t\n' ': ')" = \
    "kc:0000000000000000000000000000000A@maf.example.com kc:0000000000000000000000000000000B@maf.example.com kpsa:old@sp.example.com "
check_rc "purge again" 0 saef-key -s "$P" purge
check_grep "  ... removes nothing" "^purged 0 expired kc keys$" "$T/out"
check_rc "purge --type kpsa" 0 saef-key -s "$P" purge --type kpsa
check_grep "  ... removes the expired kpsa key" "^purged 1 expired kpsa key$" "$T/out"
check_rc "purge --type with an unknown type" 2 saef-key -s "$P" purge --type kx
check_rc "purge with an argument" 2 saef-key -s "$P" purge kc
check_rc "purge with an unknown option" 2 saef-key -s "$P" purge --all
check_rc "purge of a missing store: exit 3" 3 saef-key -s "$T/none.db" purge
check_nogrep "  ... prints no key" "$K" "$T/out"
# Two bytes of a page header (mp_lower) made 0x7fff send LMDB's reads
# outside the file: saef-key fails with the reason, never with a signal.
saef-key -s "$T/pg.db" init >/dev/null
for i in $(seq 1 300); do echo "pg$i@sp.example.com:$K"; done | saef-key -s "$T/pg.db" import - >/dev/null
python3 - "$T/pg.db" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    for n in range(2, len(data) // 4096):
        page = data[n * 4096:(n + 1) * 4096]
        if page[10:12] == b"\x02\x00" and b"saef-store" not in page and b"\xffpeer" not in page:
            f.seek(n * 4096 + 12)
            f.write(b"\xff\x7f")
PY
worst=0; corrupt=0 bad="" good=""
for i in $(seq 1 300); do
    saef-key -s "$T/pg.db" show kpsa "pg$i@sp.example.com" >/dev/null 2>"$T/pg.err"; rc=$?
    [ $rc -gt $worst ] && worst=$rc
    [ $rc = 0 ] && good=pg$i@sp.example.com
    grep -q "is corrupt: a read (read) went outside the file: restore it from a backup" "$T/pg.err" &&
        corrupt=$((corrupt + 1)) bad=pg$i@sp.example.com
done
check "a corrupt page header: 300 lookups, none killed by a signal (worst exit $worst)" test $worst -le 3
check "  ... lookups on pages near the end say the store is corrupt ($corrupt)" test $corrupt -gt 0
check_rc "  ... list fails with exit 3" 3 saef-key -s "$T/pg.db" list
check_grep "  ... saying why" "is corrupt" "$T/err"
# A server asked for an identity on such a page refuses it and serves on.
saef_cnf "$T/pg.cnf" "$T/pg.db" "role = server"
PORT=$(free_port)
saef_bg "$T/pgsrv.log" env OPENSSL_CONF="$T/pg.cnf" saef-run -- openssl s_server -accept "127.0.0.1:$PORT" -nocert -quiet
wait_port "$PORT"
pg_client() {
    echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -psk_identity "$1" -psk $K -tls1_2 >"$T/client" 2>&1
}
pg_client "$bad"
check_not "a server refuses an identity on a corrupt page" handshake_ok "$T/client"
check "  ... and lives on" kill -0 "$(saef_child)"
check_grep "  ... logging why" "is corrupt" "$T/pgsrv.log"
pg_client "$good"
check "  ... still serving the keys on intact pages" handshake_ok "$T/client"

# import / export
I="$T/import.db"
saef-key -s "$I" init >/dev/null
printf '# comment\n\na1@sp.example.com:%s\na2@sp.example.com:%s\n' $K1 $K2 >"$T/good.psk"
check_rc "import" 0 saef-key -s "$I" import --format psk "$T/good.psk"
check_grep "  ... counts" "imported 2 keys" "$T/out"
printf 'b1@sp.example.com:%s\nb2@sp.example.com:%s\nb3@sp.example.com:zz\n' $K1 $K2 >"$T/bad.psk"
check_rc "import with a bad line: exit 2" 2 saef-key -s "$I" import "$T/bad.psk"
check_grep "  ... names file and line" "bad.psk:3: key is not" "$T/err"
check_rc "  ... imports nothing" 1 saef-key -s "$I" show kpsa b1@sp.example.com
printf 'c1@sp.example.com:%s\nc1@sp.example.com:%s\n' $K1 $K2 >"$T/dup.psk"
check_rc "duplicate in the file refused" 2 saef-key -s "$I" import "$T/dup.psk"
check_grep "  ... at line 2" "dup.psk:2:" "$T/err"
check_rc "existing identity refused without --replace" 2 saef-key -s "$I" import "$T/good.psk"
check_rc "  ... replaced with it" 0 saef-key -s "$I" import --replace "$T/good.psk"
printf 'x y:%s\n' $K1 >"$T/odd.psk"
check_rc "non-conforming identity in a file refused" 2 saef-key -s "$I" import "$T/odd.psk"
check_rc "  ... accepted with --any-identity" 0 saef-key -s "$I" import --any-identity "$T/odd.psk"
check_rc "import from stdin" 0 sh -c "echo 'd1@sp.example.com:$K1' | saef-key -s '$I' import -"
check_rc "import --peer applies to every line" 0 sh -c "echo 'd2@sp.example.com:$K2' | saef-key -s '$I' import --peer /sp/C-d2 -"
check_rc "  ..." 0 saef-key -s "$I" show kpsa d2@sp.example.com
check_grep "  ... peer set" "peer: /sp/C-d2" "$T/out"
# A malformed line may hold its key anywhere: no message quotes a line.
KL=5A5B5C5D5E5F60616263646566676869
for line in "e1@sp.example.com:$KL:" "e1@sp.example.com:$KL:x" "$KL:" "$KL" ":$KL:" "$KL:zz" \
            "e1@sp.example.com:${KL}0" "bad id:$KL:" "$KL@sp.example.com:0102" "x:$KL:$KL" \
            "$KL:$KL" "e1 $KL:" "$(printf 'e\t%s:' "$KL")" "${KL}@x:" "#x:$KL:" " e1:$KL::"; do
    printf '%s\n' "$line" | saef-key -s "$I" import - >/dev/null 2>>"$T/leak"
    printf '%s\n' "$line" | saef-key -s "$I" import --any-identity - >/dev/null 2>>"$T/leak"
    printf '%s\n' "$line" | saef-key -s "$I" import --type kc - >/dev/null 2>>"$T/leak"
done
check "malformed import lines give errors" test "$(grep -c 'saef-key: -:1:' "$T/leak")" -ge 30
check_no_key "$T/leak" "$KL"
check_rc "unknown --format" 2 saef-key -s "$I" import --format pem "$T/good.psk"
check_rc "missing import file" 2 saef-key -s "$I" import "$T/nope.psk"

check_rc "export to a file" 0 saef-key -s "$I" export "$T/exp.psk"
check "  ... file is 0600" test "$(mode "$T/exp.psk")" = 600
check_grep "  ... identity:hexkey" "^a1@sp.example.com:$K1$" "$T/exp.psk"
# An existing file is replaced by a new one, never written through: whoever
# could read the old file (another link, an open descriptor) reads no key.
printf 'old\n' >"$T/exp3.psk"; chmod 644 "$T/exp3.psk"; ln "$T/exp3.psk" "$T/exp3.link"
check_rc "export over an existing file" 0 saef-key -s "$I" export "$T/exp3.psk"
check "  ... a new file, 0600" test "$(mode "$T/exp3.psk")" = 600 -a "$(stat -c %h "$T/exp3.psk")" = 1
check "  ... the old file untouched" test "$(cat "$T/exp3.link")" = old
check "  ... no temporary file left" test -z "$(find "$T" -maxdepth 1 -name 'exp3.psk.*')"
check_rc "export into a missing directory fails" 2 saef-key -s "$I" export "$T/nodir/x.psk"
saef-key -s "$T/round.db" init >/dev/null
check_rc "export round trip through import" 0 saef-key -s "$T/round.db" import --any-identity "$T/exp.psk"
saef-key -s "$T/round.db" export "$T/exp2.psk"
check "  ... identical" cmp -s "$T/exp.psk" "$T/exp2.psk"

# Lossless provisioning: JSON lines carry every field, per record.
J="$T/j.db" J2="$T/j2.db"
saef-key -s "$J" init >/dev/null; saef-key -s "$J2" init >/dev/null
saef-key -s "$J" add kpsa j1@sp.example.com --hex $K --peer /sp/C-j1 --self /sp/in-cse --expires +30d --suid 12
saef-key -s "$J" add kpsa j2@sp.example.com --hex $K1 --expires +1s
saef-key -s "$J" add km j-km@maf.example.com --hex $K2 --self //sp.example.com/C-j
saef-key -s "$J" add kc 000102030405060708090A0B0C0D0E0F@maf.example.com --hex $K --peer //sp.example.com/C-j --suid 32
saef-key -s "$J" add kpsa 'odd j3' --hex $K1 --any-identity --peer /sp/Ç-j3
sleep 1.2
check_rc "export --format json" 0 saef-key -s "$J" export --format json "$T/j.json"
check "  ... one line per key, every type" test "$(wc -l <"$T/j.json")" = 5
check_grep "  ... with every field" '^{"type":"kpsa","identity":"j1@sp.example.com","key":"'$K'","peer":"/sp/C-j1","self":"/sp/in-cse","expires":"20[0-9-]*T[0-9:]*Z","created":"20[0-9-]*T[0-9:]*Z","suid":12}$' "$T/j.json"
check_rc "import --format json" 0 saef-key -s "$J2" import --format json --any-identity "$T/j.json"
check_grep "  ... counts" "imported 5 keys" "$T/out"
saef-key -s "$J" list >"$T/l1"; saef-key -s "$J2" list >"$T/l2"
check "  ... the copy lists the same, expired key and creation times included" cmp -s "$T/l1" "$T/l2"
saef-key -s "$J2" export --format json - | cmp -s - "$T/j.json"
check "  ... and exports the same lines" test $? = 0
check_rc "the key survives" 0 saef-key -s "$J2" show kc 000102030405060708090A0B0C0D0E0F@maf.example.com --reveal --key-only
check "  ... byte for byte" test "$(cat "$T/out")" = "$K"
# What the psk format drops, and why JSON exists.
saef-key -s "$T/j3.db" init >/dev/null
saef-key -s "$J" export | saef-key -s "$T/j3.db" import --any-identity - >/dev/null
saef-key -s "$T/j3.db" show kpsa j1@sp.example.com >"$T/out"
check_grep "(psk lines drop the peer)" "peer: -" "$T/out"
# Each device its own AE-ID, from stdin.
printf '{"type":"kpsa","identity":"d%d@sp.example.com","key":"%s","peer":"/sp/C-d%d"}\n' 1 $K 1 2 $K1 2 |
    saef-key -s "$J2" import --format json - >"$T/out" 2>"$T/err"
check "per-record peers from stdin" test "$(saef-key -s "$J2" list kpsa | grep -c 'd[12]@sp.example.com	/sp/C-d[12]	')" = 2
check_rc "--peer does not apply to JSON" 2 saef-key -s "$J2" import --format json --peer /x "$T/j.json"
# Errors: file and line, the reason, never a key; nothing written.
printf '{"type":"kpsa","identity":"ok1@sp.example.com","key":"%s"}\n\n{"type":"kpsa","identity":"ok2@sp.example.com","key":"%s","suid":0}\n' $K $K >"$T/bad.json"
check_rc "a bad JSON line: exit 2" 2 saef-key -s "$J2" import --format json "$T/bad.json"
check_grep "  ... file, line, field and reason" "bad.json:3: \"suid\" must be an integer from 1 to 99" "$T/err"
check_rc "  ... nothing imported" 1 saef-key -s "$J2" show kpsa ok1@sp.example.com
KL=5A5B5C5D5E5F60616263646566676869
rm -f "$T/leak"
for line in "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":\"$KL\"" \
    "{\"type\":\"kpsa\",\"identity\":\"$KL\",\"key\":\"$KL\"}" \
    "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":\"${KL}0\"}" \
    "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":\"$KL\",\"$KL\":1}" \
    "{\"type\":\"$KL\",\"identity\":\"x@y.z\",\"key\":\"$KL\"}" \
    "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":\"$KL\",\"peer\":\"$KL\n\"}" \
    "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":\"$KL\",\"expires\":\"$KL\"}" \
    "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":\"$KL\",\"key\":\"$KL\"}" \
    "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":$KL}" \
    "[\"$KL\"]" "$KL" "{\"type\":\"kpsa\",\"identity\":\"x@y.z\",\"key\":\"0102\",\"meta\":\"$KL\"}" \
    "{\"type\":\"creg\",\"identity\":\"x@y.z\",\"key\":\"$KL\"}" "{\"key\":\"$KL\" \"type\":1}"; do
    printf '%s\n' "$line" | saef-key -s "$J2" import --format json - >/dev/null 2>>"$T/leak"
done
check "malformed JSON lines: one error each" test "$(grep -c '^saef-key: -:1: ' "$T/leak")" = 14
check_no_key "$T/leak" "$KL"
printf 'nonutf8@sp.example.com:%s\n' $K | sed 's/utf8/\xff/' | saef-key -s "$T/j3.db" import --any-identity - >/dev/null
check_rc "an identity JSON cannot carry is an error" 2 saef-key -s "$T/j3.db" export --format json "$T/nu.json"
check_grep "  ... saying what to do" "export it with --format psk" "$T/err"
check "  ... and leaves no file" test ! -e "$T/nu.json"

# Large imports: one transaction, fast.
N=${SAEF_LONG:+1000000}; N=${N:-100000}
python3 -c "
import os, sys
with open(sys.argv[1], 'w') as f:
    for i in range(int(sys.argv[2])):
        f.write('dev-%07d@sp.example.com:%s\n' % (i, os.urandom(32).hex()))" "$T/big.psk" $N
saef-key -s "$T/big.db" init >/dev/null
start=$(date +%s.%N)
check_rc "import $N keys" 0 saef-key -s "$T/big.db" import "$T/big.psk"
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "     $N keys imported in ${secs}s"
limit=${SAEF_LONG:+15}; limit=${limit:-10}
check "  ... in under ${limit}s" test "$(echo "$secs < $limit" | bc)" = 1
check "  ... all $N are there" test "$(saef-key -s "$T/big.db" list | tail -n +2 | wc -l)" = "$N"
check_rc "  ... the last one readable" 0 saef-key -s "$T/big.db" show kpsa "dev-$(printf %07d $((N - 1)))@sp.example.com"
# The same number of devices, each with its own AE-ID, as JSON lines.
python3 -c "
import os, sys
with open(sys.argv[1], 'w') as f:
    for i in range(int(sys.argv[2])):
        f.write('{\"type\":\"kpsa\",\"identity\":\"dev-%07d@sp.example.com\",\"key\":\"%s\",'
                '\"peer\":\"/sp.example.com/C-dev%07d\",\"expires\":\"2030-01-01T00:00:00Z\",\"suid\":12}\n'
                % (i, os.urandom(32).hex(), i))" "$T/big.json" $N
saef-key -s "$T/bigj.db" init >/dev/null
start=$(date +%s.%N)
check_rc "import --format json of $N devices" 0 saef-key -s "$T/bigj.db" import --format json "$T/big.json"
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "     figures: $N JSON devices imported in ${secs}s"
limit=${SAEF_LONG:+30}; limit=${limit:-10}
check "  ... in under ${limit}s" test "$(echo "$secs < $limit" | bc)" = 1
check_rc "  ... each with its AE-ID" 0 saef-key -s "$T/bigj.db" show kpsa "dev-$(printf %07d $((N - 1)))@sp.example.com"
check_grep "  ..." "peer: /sp.example.com/C-dev$(printf %07d $((N - 1)))" "$T/out"
done_testing
