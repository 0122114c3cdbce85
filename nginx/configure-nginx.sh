#!/bin/bash
# configure-nginx.sh NGINX_SRC BUILD_DIR MODULE_DIR: configures a copy of
# nginx-dev's source with the packaged nginx's own flags (conf_flags), so
# objs/ngx_auto_config.h, and with it the module signature that load_module
# compares, are those of the nginx binary; objs/ also gets the module list
# (ngx_http_saef_module_modules.c) a dynamic module exports.
set -euo pipefail
src=$1 out=$2 mod=$3
rm -rf "$out"
mkdir -p "$out"
cp -a "$src/." "$out/"
cd "$out"
. ./conf_flags
./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$mod" >configure.log 2>&1 ||
    { tail -20 configure.log >&2; exit 1; }
