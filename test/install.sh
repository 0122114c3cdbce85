#!/bin/bash
# What `cmake --install` gives a program that builds on saef: one pkg-config
# file per library, and headers that compile with what those files say.
. "$SAEF_SRC/test/lib.sh"
export PKG_CONFIG_PATH="$SAEF_LIBDIR/pkgconfig"
check_rc "pkg-config knows libsaef" 0 pkg-config --exists saef
check_rc "pkg-config knows the key store alone" 0 pkg-config --exists saef-keystore
check "  ... libsaef brings OpenSSL's flags (saef.h includes its headers)" \
    sh -c 'pkg-config --print-requires saef | grep -q "^openssl"'
check "  ... the key store does not pull in libsaef" sh -c '! pkg-config --libs saef-keystore | grep -q -- "-lsaef "' 
cat >"$T/a.c" <<'C'
#include <saef.h>
int main(void)
{
    saef_ctx *s = saef_new_from_openssl(NULL);
    saef_free(s);
    return 0;
}
C
cat >"$T/k.c" <<'C'
#include <saef_keystore.h>
int main(void)
{
    saef_ks *ks;
    return saef_ks_open("/nonexistent/keys.db", SAEF_KS_RDONLY, &ks) == SAEF_KS_OK;
}
C
# shellcheck disable=SC2046 # pkg-config's words are meant to split
check_rc "a libsaef program builds from the installed files" 0 \
    cc -Wall -Werror -o "$T/a" "$T/a.c" $(pkg-config --cflags --libs saef)
# shellcheck disable=SC2046
check_rc "a key store program builds from the installed files" 0 \
    cc -Wall -Werror -o "$T/k" "$T/k.c" $(pkg-config --cflags --libs saef-keystore)
# (A sanitized library needs ASan's runtime first in a program built without.)
check_rc "  ... and runs (a missing store is refused)" 0 \
    env ${SAEF_SANITIZER_RT:+LD_PRELOAD="$SAEF_SANITIZER_RT"} "$T/k"
done_testing
