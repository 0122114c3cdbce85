#!/bin/bash
# Slow-handshake floods against saef-mafd (issue 12): connections that send
# a byte of a ClientHello now and then must not keep the MAF's descriptors,
# spin it on accept() or fill its log, and a client registering a key during
# the flood must get through in seconds. slowloris.py is the flooder; the
# MAF runs with the descriptor limit given. SAEF_LONG=1 floods for longer,
# a byte every 5 s as in the report.
. "$SAEF_SRC/test/lib.sh"
PATH="$SAEF_SBIN:$PATH"
SECS=$(by_run 8 60) EVERY=$(by_run 1 5)
FLOOD="python3 $SAEF_SRC/test/faults/slowloris.py"
maf_world

# mafd NOFILE ARGS...: saef-mafd with at most NOFILE descriptors.
mafd() {
    n=$1
    shift
    MPORT=$(free_port) MAF="https://127.0.0.1:$MPORT"
    saef_bg "$T/mafd.log" bash -c 'ulimit -n "$0" && exec saef-mafd "$@"' "$n" \
        --listen "127.0.0.1:$MPORT" --store "$M" --fqdn maf.example.com "$@"
    MAFD=$SAEF_LAST_PID
    wait_port "$MPORT"
    MAFD=$(pgrep -P "$MAFD" | head -1)
}
mafd_stop() { kill "$MAFD"; while kill -0 "$MAFD" 2>/dev/null; do sleep 0.05; done; }
ticks() { awk '{ print $14 + $15 }' "/proc/$MAFD/stat"; }
# register: one key registration by A, timed; "RC SECONDS" appended to $T/reg.
register() {
    s=$(date +%s%N)
    timeout 20 saef-maf -s "$A" register --maf "$MAF" --target "$IDB" --expires +1h \
        >/dev/null 2>>"$T/reg.err"
    echo "$? $((($(date +%s%N) - s) / 1000000))" >>"$T/reg"
}
# registrations N: N registrations one after the other, during a flood.
registrations() { : >"$T/reg"; for _ in $(seq "$1"); do register; sleep 0.3; done; }
regs_ok() { awk '$1 != 0 { bad++ } $2 > max { max = $2 } END { exit bad || max > 3000 * s }' s="$SAEF_SLOW" "$T/reg"; }
regs_text() { awk '$1 == 0 { ok++ } $2 > max { max = $2 } END { printf "%d/%d in at most %d ms", ok, NR, max }' "$T/reg"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }

# 1. The report: 1,100 slow connections, 1024 descriptors, defaults.
mafd 1024
t0=$(ticks)
$FLOOD "$MPORT" -n 1100 --addrs 40 --interval "$EVERY" --duration "$SECS" --reconnect >"$T/flood1" &
FP=$!
sleep 2
registrations 5
wait $FP
cpu=$(($(ticks) - t0))
lines=$(grep -c -v -e ' -> ' "$T/mafd.log")
echo "     figures: 1,100 slow connections from 40 addresses for ${SECS}s, a byte every ${EVERY}s," \
    "1024 descriptors: flooder $(cat "$T/flood1"); registrations during it: $(regs_text);" \
    "MAF CPU $((cpu * 10)) ms ($((cpu * 10000 / $(field opened "$T/flood1"))) us a connection);" \
    "$lines log lines besides requests"
check "a client registers keys during the flood: $(regs_text)" regs_ok
check "  ... the MAF kept at most 512 connections (default) open: $(cat "$T/flood1")" \
    test "$(field max_open "$T/flood1")" -ge 1000 -a "$(field closed_by_server "$T/flood1")" -gt 0
check "  ... its log was not flooded ($lines lines besides requests)" test "$lines" -le $((SECS * 3 / 10 + 10))
check_nogrep "  ... no accept() errors from libevent" "Error from accept" "$T/mafd.log"
check_grep "  ... and it said why it dropped connections" "connection table full" "$T/mafd.log"
mafd_stop

# 2. Out of descriptors (a limit set above what NOFILE allows): accepting
# pauses instead of spinning, and pending connections make room. The
# flooder does not reconnect here, so what the MAF spends is its own.
mafd 128 --max-connections 1000
t0=$(ticks) start=$(date +%s%N)
$FLOOD "$MPORT" -n 300 --addrs 10 --interval "$EVERY" --duration 5 >"$T/flood2" &
FP=$!
sleep 1.5
registrations 3
wait $FP
cpu=$(($(ticks) - t0)) ms=$((($(date +%s%N) - start) / 1000000))
paused=$(grep -c "out of descriptors" "$T/mafd.log")
echo "     figures: 300 slow connections, 128 descriptors: flooder $(cat "$T/flood2");" \
    "registrations $(regs_text); MAF CPU $((cpu * 10)) ms in $ms ms; $paused log lines on EMFILE"
check "out of descriptors, a client still registers: $(regs_text)" regs_ok
check "  ... the MAF does not spin (CPU $((cpu * 10)) of $ms ms)" test $((cpu * 10)) -lt $((ms / 10))
check "  ... it logged running out, at most every 10 s ($paused lines)" test "$paused" -ge 1 -a "$paused" -le 2
check_nogrep "  ... no accept() errors from libevent" "Error from accept" "$T/mafd.log"
mafd_stop

# 3. The deadline: bytes do not extend it.
mafd 1024 --request-timeout 2
$FLOOD "$MPORT" -n 20 --addrs 1 --interval 0.5 --duration 4 >"$T/flood3"
check "connections sending a byte every 0.5 s are closed after the 2 s deadline: $(cat "$T/flood3")" \
    test "$(field closed_by_server "$T/flood3")" = 20 -a \
    "$(echo "$(field lifetime_p50 "$T/flood3") >= 1.9 && $(field lifetime_max "$T/flood3") < 3.5" | bc)" = 1
check_grep "  ... logged" "request not complete within the deadline (2 s" "$T/mafd.log"
: >"$T/reg"
register
check "  ... a client still registers: $(regs_text)" regs_ok
mafd_stop

# 4. One source address gets at most --max-connections-per-address.
mafd 1024 --max-connections-per-address 8
$FLOOD "$MPORT" -n 50 --addrs 1 --interval 1 --duration 2 >"$T/flood4"
check "50 connections from one address: 8 kept, 42 closed: $(cat "$T/flood4")" \
    test "$(field open_at_end "$T/flood4")" = 8 -a "$(field closed_by_server "$T/flood4")" = 42
check_grep "  ... logged" "too many connections from one address (127.0.1.1 has 8" "$T/mafd.log"
mafd_stop

check_no_key "$T/mafd.log" $KA $KB
done_testing
