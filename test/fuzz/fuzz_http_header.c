/* libFuzzer target: one response header line as libcurl hands it over
 * (http_header_read), then the index as ops_catalog.c reads it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_response r;
    char why[HTTP_HEADER_WHY_MAX] = "";
    memset(&r, 0, sizeof r);
    if (http_header_read((const char *)data, size, &r, why, sizeof why) == 0) {
        /* Whatever was read is a whole C string inside its field. */
        if (strlen(r.index) >= sizeof r.index || strlen(r.next_token) >= sizeof r.next_token)
            __builtin_trap();
    } else if (why[0] == '\0' || strnlen(why, sizeof why) == sizeof why) {
        __builtin_trap(); /* a refusal always says why, in a whole string */
    }
    return 0;
}
