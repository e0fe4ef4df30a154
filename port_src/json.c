/* json.c - strict JSON reading on top of jsmn; see json.h. */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A token is at least one byte of input; this bounds the token array. */
#define MAX_TOKENS (64 * 1024 * 1024 / (int)sizeof(jsmntok_t))

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* RFC 8259 section 6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool valid_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && is_digit(s[i]))
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return false;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

static bool valid_primitive(const char *s, size_t n)
{
    return (n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0) ||
           (n == 4 && memcmp(s, "null", 4) == 0) || valid_number(s, n);
}

int json_parse(struct json *j, const char *js, size_t len, const char **err)
{
    jsmn_parser p;
    memset(j, 0, sizeof *j);
    j->js = js;
    j->len = len;

    jsmn_init(&p);
    int n = jsmn_parse(&p, js, len, NULL, 0);
    if (n < 0) {
        *err = n == JSMN_ERROR_PART ? "JSON ends early" : "not valid JSON";
        return -1;
    }
    if (n == 0 || n > MAX_TOKENS) {
        *err = n == 0 ? "empty JSON document" : "JSON document too large";
        return -1;
    }
    j->tok = calloc((size_t)n, sizeof *j->tok);
    if (j->tok == NULL) {
        *err = "out of memory for the JSON document";
        return -1;
    }
    jsmn_init(&p);
    j->n = jsmn_parse(&p, js, len, j->tok, (unsigned)n);
    if (j->n != n) {
        *err = "not valid JSON";
        json_free(j);
        return -1;
    }
    if (json_skip(j, 0) != n) {
        *err = "more than one JSON value";
        json_free(j);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const jsmntok_t *t = &j->tok[i];
        if (t->type == JSMN_PRIMITIVE &&
            !valid_primitive(js + t->start, (size_t)(t->end - t->start))) {
            *err = "invalid JSON literal or number";
            json_free(j);
            return -1;
        }
        if (t->type == JSMN_OBJECT) {
            int end = json_skip(j, i);
            for (int k = i + 1; k < end; k = json_skip(j, k + 1)) {
                if (j->tok[k].type != JSMN_STRING || j->tok[k].size != 1) {
                    *err = "JSON object key is not a string";
                    json_free(j);
                    return -1;
                }
            }
        }
    }
    return 0;
}

void json_free(struct json *j)
{
    free(j->tok);
    j->tok = NULL;
    j->n = 0;
}

int json_skip(const struct json *j, int i)
{
    /* Every token owns `size` direct children; walk until all are consumed. */
    long pending = 1;
    while (pending > 0 && i < j->n) {
        pending += j->tok[i].size;
        pending--;
        i++;
    }
    return i;
}

bool json_is(const struct json *j, int i, jsmntype_t type)
{
    return i >= 0 && i < j->n && j->tok[i].type == type;
}

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Compares raw (still escaped) key bytes: API keys never need escapes. */
static bool key_equal(const char *k, size_t n, const char *want, bool loose)
{
    if (!loose)
        return strlen(want) == n && memcmp(k, want, n) == 0;
    size_t a = 0, b = 0, wn = strlen(want);
    for (;;) {
        while (a < n && k[a] == '_')
            a++;
        while (b < wn && want[b] == '_')
            b++;
        if (a == n || b == wn)
            return a == n && b == wn;
        if (fold(k[a]) != fold(want[b]))
            return false;
        a++;
        b++;
    }
}

int json_get(const struct json *j, int obj, const char *key, bool loose)
{
    if (!json_is(j, obj, JSMN_OBJECT))
        return -1;
    int end = json_skip(j, obj);
    for (int k = obj + 1; k < end; k = json_skip(j, k + 1)) {
        const jsmntok_t *t = &j->tok[k];
        if (key_equal(j->js + t->start, (size_t)(t->end - t->start), key, loose))
            return k + 1 < end ? k + 1 : -1;
    }
    return -1;
}

int json_array_next(const struct json *j, int arr, int prev)
{
    if (!json_is(j, arr, JSMN_ARRAY))
        return -1;
    /* Parent links tell where the array ends without walking all of it
     * again: walking it per element made a 10,000-entry answer quadratic. */
    int next = prev < 0 ? arr + 1 : json_skip(j, prev);
    return next < j->n && j->tok[next].parent == arr ? next : -1;
}

static int hex4(const char *s, size_t n, uint32_t *v)
{
    if (n < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

static int put_utf8(char *out, size_t cap, size_t *used, uint32_t cp)
{
    uint8_t b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6);
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | cp >> 12);
        b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | cp >> 18);
        b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*used + n >= cap)
        return -1;
    memcpy(out + *used, b, n);
    *used += n;
    return 0;
}

int json_string(const struct json *j, int i, char *out, size_t cap)
{
    if (!json_is(j, i, JSMN_STRING) || cap == 0)
        return -1;
    const char *s = j->js + j->tok[i].start;
    size_t n = (size_t)(j->tok[i].end - j->tok[i].start), used = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c < 0x20)
            return -1; /* raw control characters are not JSON */
        if (c != '\\') {
            if (used + 1 >= cap)
                return -1;
            out[used++] = (char)c;
            continue;
        }
        if (++k >= n)
            return -1;
        uint32_t cp;
        switch (s[k]) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (hex4(s + k + 1, n - k - 1, &cp) != 0)
                return -1;
            k += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return -1; /* a low surrogate first */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (k + 2 >= n || s[k + 1] != '\\' || s[k + 2] != 'u' ||
                    hex4(s + k + 3, n - k - 3, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            }
            break;
        default:
            return -1;
        }
        if (put_utf8(out, cap, &used, cp) != 0)
            return -1;
    }
    out[used] = '\0';
    return (int)used;
}

int json_int(const struct json *j, int i, long long min, long long max, long long *v)
{
    if (!json_is(j, i, JSMN_PRIMITIVE))
        return -1;
    const char *s = j->js + j->tok[i].start;
    size_t n = (size_t)(j->tok[i].end - j->tok[i].start);
    size_t k = 0;
    bool neg = false;
    if (k < n && s[k] == '-') {
        neg = true;
        k++;
    }
    if (k == n)
        return -1;
    long long acc = 0;
    for (; k < n; k++) {
        if (!is_digit(s[k]))
            return -1; /* fractions and exponents are not integers here */
        if (acc > (INT64_MAX - (s[k] - '0')) / 10)
            return -1;
        acc = acc * 10 + (s[k] - '0');
    }
    if (neg)
        acc = -acc;
    if (acc < min || acc > max)
        return -1;
    *v = acc;
    return 0;
}
