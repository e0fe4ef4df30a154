/* json.c - strict, linear JSON validation and reading by offset; see json.h.
 *
 * Validation is a recursive descent bounded by JSON_MAX_DEPTH. It replaced
 * jsmn, whose token array cost 20 bytes per token (more than the body
 * itself for Consul's answers) and whose object-key check walked each key's
 * subtree again (quadratic on nested bodies). */
#include "json.h"

#include <stdint.h>
#include <string.h>

struct cursor {
    const unsigned char *p, *end;
    const char *err;
};

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int fail(struct cursor *c, const char *why)
{
    if (c->err == NULL)
        c->err = why;
    return -1;
}

static int hex4(const unsigned char *s, const unsigned char *end, uint32_t *v)
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

/* One UTF-8 sequence starting at a byte >= 0x80 (RFC 3629 section 4:
 * no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8_seq(struct cursor *c)
{
    const unsigned char *s = c->p;
    size_t left = (size_t)(c->end - s);
    unsigned char b = s[0];
    size_t n;
    uint32_t cp, min;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2; cp = b & 0x1F; min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3; cp = b & 0x0F; min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4; cp = b & 0x07; min = 0x10000;
    } else {
        return fail(c, "invalid UTF-8");
    }
    if (left < n)
        return fail(c, "invalid UTF-8");
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return fail(c, "invalid UTF-8");
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(c, "invalid UTF-8");
    c->p += n;
    return 0;
}

/* A string, c->p at its opening quote. */
static int string(struct cursor *c)
{
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return 0;
        }
        if (ch < 0x20)
            return fail(c, "control character in a JSON string");
        if (ch >= 0x80) {
            if (utf8_seq(c) != 0)
                return -1;
            continue;
        }
        if (ch != '\\') {
            c->p++;
            continue;
        }
        if (c->end - c->p < 2)
            break;
        ch = c->p[1];
        c->p += 2;
        if (ch != 'u') {
            if (strchr("\"\\/bfnrt", ch) == NULL || ch == '\0')
                return fail(c, "invalid escape in a JSON string");
            continue;
        }
        uint32_t cp, lo;
        if (hex4(c->p, c->end, &cp) != 0)
            return fail(c, "invalid \\u escape in a JSON string");
        c->p += 4;
        /* A NUL would cut every C string made from this one short. */
        if (cp == 0)
            return fail(c, "\\u0000 in a JSON string");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return fail(c, "lone surrogate in a JSON string");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
                hex4(c->p + 2, c->end, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                return fail(c, "lone surrogate in a JSON string");
            c->p += 6;
        }
    }
    return fail(c, "JSON ends early");
}

/* RFC 8259 section 6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int number(struct cursor *c)
{
    const unsigned char *p = c->p, *end = c->end;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && is_digit(*p))
            p++;
    else
        return fail(c, "invalid JSON number");
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return fail(c, "invalid JSON number");
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return fail(c, "invalid JSON number");
        while (p < end && is_digit(*p))
            p++;
    }
    c->p = p;
    return 0;
}

static int literal(struct cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return fail(c, "invalid JSON literal");
    c->p += n;
    return 0;
}

static int value(struct cursor *c, int depth);

/* An array or object, c->p at its opening bracket. Every element must be
 * followed by exactly one ',' or the closing bracket: this is what refuses
 * `[1 2]`, `[1,,2]`, `[,1]`, `[1,]` and `{"a":1,}`. */
static int container(struct cursor *c, int depth)
{
    bool object = *c->p == '{';
    unsigned char close = object ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH)
        return fail(c, "JSON nested too deeply");
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        if (object) {
            if (c->p >= c->end || *c->p != '"')
                return fail(c, c->p >= c->end ? "JSON ends early" : "JSON object key is not a string");
            if (string(c) != 0)
                return -1;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return fail(c, "expected ':' after a JSON object key");
            c->p++;
            skip_ws(c);
        }
        if (value(c, depth + 1) != 0)
            return -1;
        skip_ws(c);
        if (c->p >= c->end)
            return fail(c, "JSON ends early");
        if (*c->p == close) {
            c->p++;
            return 0;
        }
        if (*c->p != ',')
            return fail(c, object ? "expected ',' or '}' in a JSON object"
                                  : "expected ',' or ']' in a JSON array");
        c->p++;
        skip_ws(c);
    }
}

static int value(struct cursor *c, int depth)
{
    if (c->p >= c->end)
        return fail(c, "JSON ends early");
    switch (*c->p) {
    case '{':
    case '[': return container(c, depth);
    case '"': return string(c);
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case 'n': return literal(c, "null");
    default: return number(c);
    }
}

int json_parse(struct json *j, const char *js, size_t len, const char **err)
{
    return json_parse_within(j, js, len, 0, err);
}

int json_parse_within(struct json *j, const char *js, size_t len, int depth, const char **err)
{
    struct cursor c = {(const unsigned char *)js, (const unsigned char *)js + len, NULL};
    memset(j, 0, sizeof *j);
    j->js = js;
    j->len = len;
    j->root = -1;
    skip_ws(&c);
    if (c.p == c.end) {
        *err = "empty JSON document";
        return -1;
    }
    long root = (long)((const char *)c.p - js);
    if (value(&c, depth) != 0) {
        *err = c.err;
        return -1;
    }
    skip_ws(&c);
    if (c.p != c.end) {
        *err = "bytes after the JSON value";
        return -1;
    }
    j->root = root;
    return 0;
}

void json_free(struct json *j)
{
    j->root = -1;
}

enum json_type json_type(const struct json *j, long v)
{
    if (v < 0 || (size_t)v >= j->len)
        return JSON_NONE;
    switch (j->js[v]) {
    case '{': return JSON_OBJECT;
    case '[': return JSON_ARRAY;
    case '"': return JSON_STRING;
    case 't':
    case 'f':
    case 'n': return JSON_LITERAL;
    default: return JSON_NUMBER;
    }
}

bool json_is(const struct json *j, long v, enum json_type type)
{
    return json_type(j, v) == type;
}

bool json_is_null(const struct json *j, long v)
{
    return json_type(j, v) == JSON_LITERAL && j->js[v] == 'n';
}

/* Offset just past the (validated) value at v. */
static long skip(const struct json *j, long v)
{
    const char *s = j->js;
    long n = (long)j->len, p = v;
    long depth = 0;
    do {
        char ch = s[p];
        if (ch == '"') {
            for (p++; p < n && s[p] != '"'; p++)
                if (s[p] == '\\')
                    p++;
            p++;
        } else if (ch == '{' || ch == '[') {
            depth++;
            p++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            p++;
        } else if (depth == 0) {
            /* A number or literal at the top: up to the next delimiter. */
            while (p < n && strchr(",]} \t\r\n", s[p]) == NULL)
                p++;
        } else {
            p++;
        }
    } while (depth > 0 && p < n);
    return p;
}

static long next_token(const struct json *j, long p)
{
    while ((size_t)p < j->len && strchr(" \t\r\n", j->js[p]) != NULL && j->js[p] != '\0')
        p++;
    return p;
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
    long p = next_token(j, obj + 1);
    while ((size_t)p < j->len && j->js[p] == '"') {
        long kend = skip(j, p); /* just past the closing quote */
        long v = next_token(j, next_token(j, kend) + 1);
        if (key_equal(j->js + p + 1, (size_t)(kend - p - 2), key, loose))
            return v;
        p = next_token(j, skip(j, v));
        if ((size_t)p >= j->len || j->js[p] != ',')
            return -1;
        p = next_token(j, p + 1);
    }
    return -1;
}

long json_array_next(const struct json *j, long arr, long prev)
{
    if (!json_is(j, arr, JSON_ARRAY))
        return -1;
    long p;
    if (prev < 0) {
        p = next_token(j, arr + 1);
        return (size_t)p < j->len && j->js[p] != ']' ? p : -1;
    }
    p = next_token(j, skip(j, prev));
    if ((size_t)p >= j->len || j->js[p] != ',')
        return -1;
    return next_token(j, p + 1);
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
    /* The document was validated: escapes are well formed, and what is
     * checked again here only guards against a caller's wrong offset. */
    const unsigned char *s = (const unsigned char *)j->js + v + 1;
    const unsigned char *end = (const unsigned char *)j->js + skip(j, v) - 1;
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
            if (hex4(s, end, &cp) != 0 || cp == 0)
                return -1;
            s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - s < 6 || hex4(s + 2, end, &lo) != 0)
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
    const char *s = j->js + v;
    size_t n = (size_t)(skip(j, v) - v), k = 0;
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
    *out = acc;
    return 0;
}
