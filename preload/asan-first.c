/*
 * libsaef-asan-first.so: SAEF_SANITIZE builds only, preloaded by saef-run
 * right after the ASan runtime. Built without instrumentation.
 *
 * In a program that is not built with ASan (curl, python), the preloaded
 * runtime initialises at the first call it intercepts. When that is the
 * malloc() inside newlocale() that libp11-kit's constructor makes, ASan's
 * initialisation (dlerror -> dcgettext) takes glibc's locale lock that
 * newlocale() holds and leaves it broken: the program's first setlocale()
 * then waits forever. A malloc() before newlocale() takes the lock makes
 * ASan initialise outside it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <locale.h>
#include <stdlib.h>

__attribute__((visibility("default"))) locale_t newlocale(int category_mask, const char *locale,
                                                          locale_t base)
{
    static locale_t (*real_newlocale)(int, const char *, locale_t);

    if (real_newlocale == NULL) {
        void *volatile p = malloc(1); /* volatile: gcc drops a bare free(malloc(1)) */

        free(p);
        real_newlocale = (locale_t(*)(int, const char *, locale_t))dlsym(RTLD_NEXT, "newlocale");
        if (real_newlocale == NULL)
            abort();
    }
    return real_newlocale(category_mask, locale, base);
}
