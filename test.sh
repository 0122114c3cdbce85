#!/bin/sh
# The whole test suite: installs what it needs, builds, runs every test.
#   ./test.sh                 default run (well under 20 minutes)
#   SAEF_LONG=1 ./test.sh     also the long soaks and fuzz campaigns
set -eu
cd "$(dirname "$0")"
sh scripts/deps.sh
cmake -S . -B build -DBUILD_TESTING=ON -DSAEF_WERROR=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600

# The same suite on an ASan + UBSan build of everything (gcc): a sanitizer
# report in any program fails its test (see test/lib.sh).
CC=gcc cmake -S . -B build-asan -DBUILD_TESTING=ON -DSAEF_WERROR=ON -DSAEF_SANITIZE=ON
cmake --build build-asan -j"$(nproc)"
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 900

# Fuzz targets (test/fuzz/): a clang libFuzzer build of its own, each target
# over its seed corpus for 10 s (600 s with SAEF_LONG=1).
CC=clang cmake -S . -B build-fuzz -DSAEF_FUZZ=ON -DBUILD_TESTING=ON -DSAEF_WERROR=ON
cmake --build build-fuzz -j"$(nproc)" --target fuzz-targets
ctest --test-dir build-fuzz --output-on-failure -L fuzz -j"$(nproc)" --timeout 900
