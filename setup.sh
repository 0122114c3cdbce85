#!/bin/sh
# Command 1: install the Debian packages, build, install (to /usr/local by
# default; PREFIX=... to change), and run the demo of the main job.
set -eu
cd "$(dirname "$0")"
prefix=${PREFIX:-/usr/local}
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_TESTING=ON
cmake --build build -j"$(nproc)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO cmake --install build
[ "$(id -u)" -eq 0 ] && ldconfig || $SUDO ldconfig
bash examples/demo.sh "$prefix"
