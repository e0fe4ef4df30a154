/* json_tok.h - private to json.c and json_read.c: jsmn's token type with
 * one layout for both (JSMN_PARENT_LINKS adds the parent field), and the
 * \u escape digits both read. jsmn's code is compiled in json.c only, which
 * defines JSON_TOK_PARSER; here, with JSMN_HEADER, only its types. */
#ifndef CARAVAN_JSON_TOK_H
#define CARAVAN_JSON_TOK_H

#include <stdbool.h>
#include <stdint.h>

#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#ifndef JSON_TOK_PARSER
#define JSMN_HEADER
#endif
#include <jsmn.h>

static inline bool json_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Four hex digits at s (before end) into *v; 0 or -1. */
static inline int json_hex4(const unsigned char *s, const unsigned char *end, uint32_t *v)
{
    if (end - s < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0'
              : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

#endif
