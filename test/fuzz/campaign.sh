#!/bin/sh
# campaign.sh BUILD-FUZZ-DIR OUT-DIR TARGET...: the long fuzz campaign.
# Runs every target for SAEF_FUZZ_TIME seconds (default 600), two at a time
# under nice (the machines are shared), each over a copy of its seed corpus
# in OUT-DIR, and prints one table row per target from libFuzzer's final
# statistics: executions, exec/s, cov, ft, corpus size, crash artifacts.
set -eu
build=$1 out=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/bin"
: "${SAEF_FUZZ_TIME:=600}"
export SAEF_FUZZ_TIME
run_one() {
    # The binary is copied: a rebuild during the campaign does not touch it.
    cp "$build/test/fuzz/fuzz_$1" "$out/bin/"
    nice -n 10 sh "$src/run.sh" "$out/bin/fuzz_$1" "$src" "$out" "$1" >"$out/$1.log" 2>&1 || true
}
while [ $# -gt 0 ]; do
    run_one "$1" &
    a=$!
    if [ $# -gt 1 ]; then
        run_one "$2" &
        b=$!
        wait "$b"
        shift
    fi
    wait "$a"
    shift
done
printf '| target | executions | exec/s | cov | ft | corpus | crashes |\n|---|---|---|---|---|---|---|\n'
for log in "$out"/*.log; do
    t=$(basename "$log" .log)
    last=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
    crashes=$(find "$out/artifacts" -name "$t-*" 2>/dev/null | wc -l)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$execs" "$rate" "$cov" "$ft" "$corp" "$crashes"
done
