#!/bin/bash
# log = syslog: audit and refusal lines go to syslog (facility auth, the
# level of each line), none to stderr, and never a key. glibc's syslog()
# writes to /dev/log: the test runs in a mount namespace of its own whose /dev
# is a copy with a /dev/log socket the test reads.
if [ -z "${SAEF_SYSLOG_NS:-}" ]; then
    if ! unshare -m true 2>/dev/null; then
        echo "SKIP - unshare -m is refused here: the test needs root (CAP_SYS_ADMIN)"
        exit 77
    fi
    SAEF_SYSLOG_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$SAEF_SRC/test/lib.sh"

# /mnt holds the new /dev only inside this namespace.
if ! mount -t tmpfs -o mode=755 saef-dev /mnt; then
    echo "SKIP - mount is refused in this namespace (a container without CAP_SYS_ADMIN)"
    exit 77
fi
for n in null zero full random urandom tty; do
    [ -e "/dev/$n" ] && touch "/mnt/$n" && mount --bind "/dev/$n" "/mnt/$n"
done
ln -s /proc/self/fd /mnt/fd
ln -s /proc/self/fd/0 /mnt/stdin
ln -s /proc/self/fd/1 /mnt/stdout
ln -s /proc/self/fd/2 /mnt/stderr
mount --rbind /mnt /dev || exit 1

saef_bg "$T/syslog.txt" python3 -u -c '
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
while True:
    print(s.recv(65536).decode("utf-8", "replace").rstrip("\n"), flush=True)
'
poll 10 test -S /dev/log || fail "the /dev/log socket is there"

S="$T/keys.db"
dev1_store "$S"
K2=FFEEDDCCBBAA99887766554433221100

# server LOG-SETTING: a preloaded s_server on $PORT, its stderr in $T/server.log.
server() {
    saef_cnf "$T/openssl.cnf" "$S" "entity_id = /sp.example.com/in-cse" "role = server" "log = $1"
    PORT=$(free_port)
    saef_bg "$T/server.log" env OPENSSL_CONF="$T/openssl.cnf" saef-run -- \
        openssl s_server -accept "127.0.0.1:$PORT" -nocert -quiet
    SRV=$SAEF_LAST_PID
    wait_port "$PORT"
}
stop() { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }
client() { # client ID KEY
    echo ping | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -tls1_2 -psk_identity "$1" -psk "$2" >"$T/client" 2>&1
}

server syslog
client dev1@sp.example.com $K
check "a handshake with log = syslog" handshake_ok "$T/client"
client nobody@sp.example.com $K
check_not "an unknown identity still fails" handshake_ok "$T/client"
client dev1@sp.example.com $K2
poll 5 grep -q "handshake failed" "$T/syslog.txt"
stop
# <PRI> = facility auth (4) * 8 + severity (info 6, warning 4 ...).
check_grep "the audit line in syslog, facility auth, info" \
    '^<38>.*saef: association accepted identity="dev1@sp.example.com" entity="/sp.example.com/C-dev1"' "$T/syslog.txt"
check_grep "the refusal in syslog" \
    '^<38>.*saef: refused identity="nobody@sp.example.com" reason="unknown identity"' "$T/syslog.txt"
check_grep "the failed handshake in syslog" 'saef: handshake failed identity="dev1@sp.example.com"' "$T/syslog.txt"
check_nogrep "nothing of saef on stderr" "saef:" "$T/server.log"
check_no_key "$T/syslog.txt" $K $K2

# log = none: syslog hears nothing more.
lines=$(wc -l <"$T/syslog.txt")
server none
client nobody@sp.example.com $K
stop
sleep 0.2
check "log = none: nothing in syslog" test "$(wc -l <"$T/syslog.txt")" -eq "$lines"
done_testing
