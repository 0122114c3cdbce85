#!/bin/sh
# run.sh FUZZER SRCDIR BINDIR NAME: one libFuzzer run over the seed corpus.
# SAEF_FUZZ_TIME seconds (default 10; 600 with SAEF_LONG=1). A crash, leak,
# UB report, timeout or broken invariant fails the test; the input that did
# it is left in BINDIR/artifacts/. libFuzzer's final figures are printed.
# dict/NAME.dict is the target's dictionary; options/NAME its extra flags
# (provider_conf builds a library context per input: checking for leaks
# after each would cost 7 times the runs, so it checks at exit only).
set -eu
fuzzer=$1 src=$2 bin=$3 name=$4
secs=${SAEF_FUZZ_TIME:-$([ "${SAEF_LONG:-}" = 1 ] && echo 600 || echo 10)}
mkdir -p "$bin/artifacts" "$bin/corpus/$name"
set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -close_fd_mask=3 -artifact_prefix="$bin/artifacts/$name-"
[ -f "$src/dict/$name.dict" ] && set -- "$@" -dict="$src/dict/$name.dict"
# shellcheck disable=SC2046 # one option per word
[ -f "$src/options/$name" ] && set -- "$@" $(cat "$src/options/$name")
exec "$fuzzer" "$@" "$bin/corpus/$name" "$src/corpus/$name"
