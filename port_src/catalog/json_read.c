/* json_read.c - reading a checked document by token index; see json.h.
 * json.c made the tokens; every read here is bounded by the value it
 * reads, and a subtree is skipped by bisection, not walked. */
#include "json.h"

#include <stdint.h>
#include <string.h>

#include "json_tok.h"

static const jsmntok_t *tok(const struct json *j, long v)
{
    return v >= 0 && v < j->ntok ? (const jsmntok_t *)j->tok + v : NULL;
}

static enum json_type type_of(const struct json *j, long v)
{
    const jsmntok_t *t = tok(j, v);
    if (t == NULL)
        return JSON_NONE;
    switch (t->type) {
    case JSMN_OBJECT: return JSON_OBJECT;
    case JSMN_ARRAY: return JSON_ARRAY;
    case JSMN_STRING: return JSON_STRING;
    default: return json_is_digit(j->js[t->start]) || j->js[t->start] == '-' ? JSON_NUMBER : JSON_LITERAL;
    }
}

bool json_is(const struct json *j, long v, enum json_type type)
{
    return type_of(j, v) == type;
}

bool json_is_null(const struct json *j, long v)
{
    return type_of(j, v) == JSON_LITERAL && j->js[tok(j, v)->start] == 'n';
}

/* The token after value v and everything inside it: the first that starts
 * past v's end, found by bisection (tokens are in document order). */
static long skip(const struct json *j, long v)
{
    const jsmntok_t *t = j->tok;
    if (t[v].type != JSMN_OBJECT && t[v].type != JSMN_ARRAY)
        return v + 1;
    long lo = v + 1, hi = j->ntok;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (t[mid].start < t[v].end)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

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

long json_get(const struct json *j, long obj, const char *key, bool loose)
{
    if (!json_is(j, obj, JSON_OBJECT))
        return -1;
    const jsmntok_t *t = j->tok;
    long k = obj + 1;
    for (int i = 0; i < t[obj].size; i++) {
        if (key_equal(j->js + t[k].start, (size_t)(t[k].end - t[k].start), key, loose))
            return k + 1;
        k = skip(j, k + 1);
    }
    return -1;
}

long json_array_next(const struct json *j, long arr, long prev)
{
    if (!json_is(j, arr, JSON_ARRAY))
        return -1;
    const jsmntok_t *t = j->tok;
    if (prev < 0)
        return t[arr].size > 0 ? arr + 1 : -1;
    if (tok(j, prev) == NULL || t[prev].parent != arr)
        return -1;
    long next = skip(j, prev);
    return next < j->ntok && t[next].parent == arr ? next : -1;
}

static int put_utf8(char *out, size_t cap, size_t *used, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*used + n >= cap)
        return -1;
    memcpy(out + *used, b, n);
    *used += n;
    return 0;
}

int json_string(const struct json *j, long v, char *out, size_t cap)
{
    if (!json_is(j, v, JSON_STRING) || cap == 0)
        return -1;
    /* The document was checked: escapes are well formed, and what is
     * checked again here only guards against a caller's wrong index. */
    const jsmntok_t *t = tok(j, v);
    const unsigned char *s = (const unsigned char *)j->js + t->start;
    const unsigned char *end = (const unsigned char *)j->js + t->end;
    size_t used = 0;
    while (s < end) {
        if (*s != '\\') {
            if (used + 1 >= cap)
                return -1;
            out[used++] = (char)*s++;
            continue;
        }
        if (end - s < 2)
            return -1;
        uint32_t cp, lo;
        char e = (char)s[1];
        s += 2;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (json_hex4(s, end, &cp) != 0 || cp == 0)
                return -1;
            s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - s < 6 || json_hex4(s + 2, end, &lo) != 0)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
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

int json_int(const struct json *j, long v, long long min, long long max, long long *out)
{
    if (!json_is(j, v, JSON_NUMBER))
        return -1;
    const jsmntok_t *t = tok(j, v);
    const char *s = j->js + t->start;
    size_t n = (size_t)(t->end - t->start), k = 0;
    bool neg = false;
    if (k < n && s[k] == '-') {
        neg = true;
        k++;
    }
    if (k == n)
        return -1;
    long long acc = 0;
    for (; k < n; k++) {
        if (!json_is_digit(s[k]))
            return -1; /* fractions and exponents are not integers here */
        if (acc > (INT64_MAX - (s[k] - '0')) / 10)
            return -1;
        acc = acc * 10 + (s[k] - '0');
    }
    if (neg)
        acc = -acc;
    if (acc < min || acc > max)
        return -1;
    *out = acc;
    return 0;
}
