/* Times from options, the MAF and its answers: RFC 3339, YYYYMMDDTHHMMSS, +N[smhdw]. */
#include "fuzz-util.h"

#include <stdlib.h>
#include <string.h>

/* 2026-11-24T12:00:00Z */
#define NOW INT64_C(1795521600)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size), buf[64];
    int64_t t = -1, back = -1;

    if (saef_time_parse(text, NOW, &t)) {
        FUZZ_CHECK(t >= 0);
        if (text[0] == '+')
            FUZZ_CHECK(t > NOW);
        /* What saef writes, it reads back as the same second. */
        saef_time_format(t, buf, sizeof(buf));
        if (buf[0] != '\0') {
            FUZZ_CHECK(saef_time_parse(buf, NOW, &back) && back == t);
            saef_time_format_onem2m(t, buf, sizeof(buf));
            FUZZ_CHECK(saef_time_parse(buf, NOW, &back) && back == t);
        }
    }
    /* Buffers too short get "", never an overflow. */
    saef_time_format(t, buf, 5);
    saef_time_format_onem2m(t, buf, 1);
    free(text);
    return 0;
}
