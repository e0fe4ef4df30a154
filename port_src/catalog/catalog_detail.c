/* catalog_detail.c - a non-200 answer as an error detail; see catalog_detail.h. */
#include "catalog_detail.h"

#include <stdio.h>
#include <string.h>

void catalog_detail(char *out, size_t cap, long status, const char *body, size_t len,
                 const char *token)
{
    size_t tlen = strlen(token);
    /* The first line, long enough that a token starting inside the shown
     * part is seen whole. Bodies can be megabytes: look no further. */
    char line[CATALOG_DETAIL_BODY_MAX + 512];
    size_t n = 0, want = CATALOG_DETAIL_BODY_MAX + (tlen < 511 ? tlen : 511);
    while (n < len && n < want && body[n] != '\n') {
        line[n] = body[n];
        n++;
    }
    if (tlen > 0 && tlen <= n) {
        for (size_t i = 0; i + tlen <= n;) {
            if (memcmp(line + i, token, tlen) == 0) {
                memset(line + i, '*', tlen);
                i += tlen;
            } else {
                i++;
            }
        }
    }
    if (n > CATALOG_DETAIL_BODY_MAX)
        n = CATALOG_DETAIL_BODY_MAX;
    for (size_t i = 0; i < n; i++)
        if (line[i] < 0x20 || line[i] >= 0x7f)
            line[i] = '?';
    line[n] = '\0';
    snprintf(out, cap, "HTTP %ld: %s", status, line);
}
