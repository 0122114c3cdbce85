#!/bin/sh
# campaign.sh BUILD-FUZZ-DIR OUT-DIR TARGET...: the long fuzz campaign.
# Runs every target for SAEF_FUZZ_TIME seconds (default 600), two at a time
# under nice (the machines are shared), each over its seed corpus plus what
# it finds in OUT-DIR, and prints one row per target from libFuzzer's final
# statistics: executions, exec/s, cov, ft, corpus size, crash artifacts
# (campaign.sh --table OUT-DIR TARGET... prints it again).
set -eu
src=$(cd "$(dirname "$0")" && pwd)
if [ "$1" = --one ]; then
    # The binary is copied: a rebuild during the campaign does not touch it.
    cp "$2/test/fuzz/fuzz_$4" "$3/bin/"
    nice -n 10 sh "$src/run.sh" "$3/bin/fuzz_$4" "$src" "$3" "$4" >"$3/$4.log" 2>&1 || true
    exit 0
fi
if [ "$1" = --table ]; then
    out=$2
    shift 2
    printf '| target | executions | exec/s | cov | ft | corpus | crashes |\n|---|---|---|---|---|---|---|\n'
    for t in "$@"; do
        log=$out/$t.log
        last=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -1)
        field() { echo "$last" | sed -n "s/.* $1: \([^ ]*\).*/\1/p"; }
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" \
            "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
            "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")" \
            "$(field cov)" "$(field ft)" "$(field corp)" \
            "$(find "$out/artifacts" -name "$t-*" 2>/dev/null | wc -l)"
    done
    exit 0
fi
build=$1 out=$2
shift 2
mkdir -p "$out/bin"
SAEF_FUZZ_TIME=${SAEF_FUZZ_TIME:-600}
export SAEF_FUZZ_TIME
printf '%s\n' "$@" | xargs -P 2 -n 1 sh "$0" --one "$build" "$out"
sh "$0" --table "$out" "$@"
