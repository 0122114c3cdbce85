/*
 * Allocator functions for the libraries that hold key text for saef
 * (jansson, libcurl, libevent): every block is wiped before it goes back,
 * so a freed JSON body or HTTP buffer leaves no key behind in the heap.
 */
#include "saef-internal.h"

#include <malloc.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void saef_wipe_free(void *p)
{
    if (p != NULL)
        OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

/* Never realloc(): it would leave the old block's bytes behind. */
void *saef_wipe_realloc(void *p, size_t n)
{
    size_t have;
    void *q;

    if (p == NULL)
        return malloc(n);
    if (n <= (have = malloc_usable_size(p)))
        return p;
    if ((q = malloc(n)) == NULL)
        return NULL;
    memcpy(q, p, have);
    saef_wipe_free(p);
    return q;
}
