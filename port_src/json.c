/* json.c - strict JSON on jsmn's tokens; see json.h.
 *
 * jsmn (Debian's libjsmn-dev, header-only, included here and nowhere else)
 * cuts the document into tokens. JSMN_PARENT_LINKS makes each ',' and
 * closing bracket constant time (without it jsmn walks back over the
 * tokens: quadratic on wide or deep bodies). JSMN_STRICT still leaves much
 * unchecked: it ignores where ',' and ':' stand (`[1 2]`, `[1,,2]`,
 * `{"a" 1}` pass), reads any run of printable bytes after t, f, n, - or a
 * digit as a primitive (`tru`, `01`), and passes raw control characters,
 * invalid UTF-8, lone surrogates and `\u0000` in strings. check() below
 * walks the tokens once, with the bytes between them, and refuses all that.
 *
 * The token array is one per thread, reused by every parse and grown as
 * needed: an answer is parsed one element at a time (json_split.h), so it
 * stays as small as the largest element, and one grown past POOL_KEEP is
 * given back at the next parse. Nothing is left for a caller to free. */
#include "json.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#define POOL_FIRST 256u
#define POOL_KEEP 4096u /* tokens (20 bytes each) kept between parses */

static _Thread_local jsmntok_t *pool;
static _Thread_local unsigned pool_cap;

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static bool is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *js, size_t p, size_t end)
{
    while (p < end && is_ws((unsigned char)js[p]))
        p++;
    return p;
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

/* One UTF-8 sequence starting at a byte >= 0x80 (RFC 3629 section 4: no
 * overlong forms, no surrogates, nothing past U+10FFFF); its length or 0. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
    size_t left = (size_t)(end - s), n;
    unsigned char b = s[0];
    uint32_t cp, min;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2; cp = b & 0x1F; min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3; cp = b & 0x0F; min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4; cp = b & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* The bytes of a string between its quotes (or, for a string jsmn refused,
 * up to the end of the body). NULL if good, else the reason. */
static const char *check_string(const unsigned char *s, const unsigned char *end)
{
    while (s < end) {
        unsigned char ch = *s;
        if (ch >= 0x20 && ch < 0x80 && ch != '\\' && ch != '"') {
            s++;
            continue;
        }
        if (ch == '"')
            return NULL; /* only in a string jsmn refused: its end */
        if (ch < 0x20)
            return "control character in a JSON string";
        if (ch >= 0x80) {
            size_t n = utf8_seq(s, end);
            if (n == 0)
                return "invalid UTF-8";
            s += n;
            continue;
        }
        if (end - s < 2)
            return "JSON ends early";
        ch = s[1];
        s += 2;
        if (ch != 'u') {
            if (strchr("\"\\/bfnrt", ch) == NULL || ch == '\0')
                return "invalid escape in a JSON string";
            continue;
        }
        uint32_t cp, lo;
        if (hex4(s, end, &cp) != 0)
            return "invalid \\u escape in a JSON string";
        s += 4;
        /* A NUL would cut every C string made from this one short. */
        if (cp == 0)
            return "\\u0000 in a JSON string";
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return "lone surrogate in a JSON string";
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, end, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF)
                return "lone surrogate in a JSON string";
            s += 6;
        }
    }
    return NULL;
}

/* A primitive's bytes: true, false, null, or RFC 8259 section 6's number
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static const char *check_primitive(const char *s, size_t n)
{
    if (s[0] == 't' || s[0] == 'f' || s[0] == 'n') {
        const char *word = s[0] == 't' ? "true" : s[0] == 'f' ? "false" : "null";
        return strlen(word) == n && memcmp(s, word, n) == 0 ? NULL : "invalid JSON literal";
    }
    size_t p = 0;
    if (p < n && s[p] == '-')
        p++;
    if (p < n && s[p] == '0')
        p++;
    else if (p < n && s[p] >= '1' && s[p] <= '9')
        while (p < n && is_digit(s[p]))
            p++;
    else
        return "invalid JSON number";
    if (p < n && s[p] == '.') {
        p++;
        if (p >= n || !is_digit(s[p]))
            return "invalid JSON number";
        while (p < n && is_digit(s[p]))
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || !is_digit(s[p]))
            return "invalid JSON number";
        while (p < n && is_digit(s[p]))
            p++;
    }
    return p == n ? NULL : "invalid JSON number";
}

/* The container a token belongs to: its parent, or for an object's value
 * the object (jsmn makes the key the value's parent). */
static int container_of(const jsmntok_t *t, int i)
{
    int p = t[i].parent;
    if (p >= 0 && t[p].type == JSMN_STRING)
        p = t[p].parent;
    return p;
}

/* Bytes p..to hold only whitespace around one `sep` (none when sep is 0). */
static bool gap(const char *js, size_t p, size_t to, char sep)
{
    p = skip_ws(js, p, to);
    if (sep != 0) {
        if (p >= to || js[p] != sep)
            return false;
        p = skip_ws(js, p + 1, to);
    }
    return p == to;
}

/* The strictness jsmn leaves out, over its n tokens of js[0..len) in one
 * pass: the bytes between tokens, each token's role, strings, primitives
 * and depth. Each container is closed once: linear. */
static const char *check(const char *js, size_t len, const jsmntok_t *t, int n, int depth)
{
    size_t p = 0;
    int open = -1; /* the innermost container not yet closed */
    for (int i = 0; i < n; i++) {
        int parent = t[i].parent, in = -1;
        char sep = 0;
        if (parent < 0) {
            if (i != 0)
                return "bytes after the JSON value";
        } else if (t[parent].type == JSMN_ARRAY) {
            in = parent;
            sep = i == parent + 1 ? 0 : ',';
        } else if (t[parent].type == JSMN_OBJECT) {
            in = parent;
            sep = i == parent + 1 ? 0 : ',';
            if (t[i].type != JSMN_STRING)
                return "JSON object key is not a string";
            if (t[i].size != 1)
                return "expected ':' after a JSON object key";
        } else if (t[parent].type == JSMN_STRING && i == parent + 1 && t[parent].parent >= 0 &&
                   t[t[parent].parent].type == JSMN_OBJECT) {
            in = t[parent].parent;
            sep = ':';
        } else {
            return "expected ',' or a closing bracket in JSON";
        }
        while (open != in) {
            if (open < 0)
                return "JSON brackets do not match";
            size_t close = (size_t)t[open].end - 1;
            if (!gap(js, p, close, 0))
                return t[open].type == JSMN_OBJECT ? "expected ',' or '}' in a JSON object"
                                                   : "expected ',' or ']' in a JSON array";
            p = close + 1;
            depth--;
            open = container_of(t, open);
        }
        size_t start = (size_t)t[i].start - (t[i].type == JSMN_STRING ? 1 : 0);
        if (!gap(js, p, start, sep))
            return sep == ':' ? "expected ':' after a JSON object key"
                 : in >= 0 && t[in].type == JSMN_OBJECT ? "expected ',' or '}' in a JSON object"
                 : in >= 0 ? "expected ',' or ']' in a JSON array"
                           : "bytes after the JSON value";
        const char *why = NULL;
        switch (t[i].type) {
        case JSMN_OBJECT:
        case JSMN_ARRAY:
            if (depth >= JSON_MAX_DEPTH)
                return "JSON nested too deeply";
            depth++;
            open = i;
            p = start + 1;
            break;
        case JSMN_STRING:
            why = check_string((const unsigned char *)js + t[i].start,
                               (const unsigned char *)js + t[i].end);
            p = (size_t)t[i].end + 1;
            break;
        default:
            why = check_primitive(js + start, (size_t)(t[i].end - t[i].start));
            p = (size_t)t[i].end;
            break;
        }
        if (why != NULL)
            return why;
    }
    while (open >= 0) {
        size_t close = (size_t)t[open].end - 1;
        if (!gap(js, p, close, 0))
            return t[open].type == JSMN_OBJECT ? "expected ',' or '}' in a JSON object"
                                               : "expected ',' or ']' in a JSON array";
        p = close + 1;
        open = container_of(t, open);
    }
    return skip_ws(js, p, len) == len ? NULL : "bytes after the JSON value";
}

/* Why jsmn stopped (rc one of its errors) at the byte where it stands. */
static const char *refused(const char *js, size_t len, const jsmn_parser *parser, int rc)
{
    size_t at = parser->pos;
    if (at < len && js[at] == '"') {
        const char *why = check_string((const unsigned char *)js + at + 1,
                                       (const unsigned char *)js + len);
        return why != NULL ? why : "JSON ends early";
    }
    /* JSMN_STRICT refuses a value where an object wants a key, which is
     * also where a ':' is missing. */
    if (rc == JSMN_ERROR_INVAL && parser->toksuper >= 0 && pool[parser->toksuper].type == JSMN_OBJECT)
        return "expected a string key or ':' in a JSON object";
    if (rc == JSMN_ERROR_PART)
        return memchr(js, '\0', len) != NULL ? "bytes after the JSON value" : "JSON ends early";
    if (at < len && (js[at] == 't' || js[at] == 'f' || js[at] == 'n'))
        return "invalid JSON literal";
    if (at < len && (js[at] == '-' || is_digit(js[at])))
        return "invalid JSON number";
    if (at < len && (js[at] == ']' || js[at] == '}'))
        return "JSON brackets do not match";
    return "unexpected byte in JSON";
}

/* Room for at least `need` tokens in the pool; 0 or -1. */
static int pool_reserve(unsigned need)
{
    if (need <= pool_cap)
        return 0;
    unsigned cap = pool_cap == 0 ? POOL_FIRST : pool_cap;
    while (cap < need && cap <= UINT_MAX / 2)
        cap *= 2;
    size_t bytes;
    if (cap < need || __builtin_mul_overflow(cap, sizeof *pool, &bytes))
        return -1;
    jsmntok_t *grown = realloc(pool, bytes);
    if (grown == NULL)
        return -1;
    pool = grown;
    pool_cap = cap;
    return 0;
}

/* Containers open where the parser stands: its chain of parents. */
static int open_containers(const jsmn_parser *parser)
{
    int n = 0;
    for (int x = parser->toksuper; x >= 0; x = pool[x].parent)
        if (pool[x].type == JSMN_OBJECT || pool[x].type == JSMN_ARRAY)
            n++;
    return n;
}

/* Tokenizes js[0..len) into the pool, growing it; the token count or -1.
 * jsmn is run DEPTH_STEP tokens at a time and the nesting checked between
 * runs: jsmn closes a bracket by walking up from the last token, so a deep
 * chain would cost it depth squared, and a nesting bomb is refused within
 * DEPTH_STEP tokens of the bound rather than after the whole body. */
#define DEPTH_STEP 64u
static int tokenize(const char *js, size_t len, int depth, const char **err)
{
    jsmn_parser parser;
    jsmn_init(&parser);
    for (;;) {
        if (parser.toknext + DEPTH_STEP > pool_cap &&
            (pool_cap >= (unsigned)INT_MAX || pool_reserve(parser.toknext + DEPTH_STEP) != 0)) {
            *err = "out of memory";
            return -1;
        }
        /* jsmn resumes where it ran out of tokens (NOMEM leaves its
         * position at the value it could not store). */
        int rc = jsmn_parse(&parser, js, len, pool, parser.toknext + DEPTH_STEP);
        if (rc >= 0)
            return (int)parser.toknext;
        if (rc != JSMN_ERROR_NOMEM) {
            *err = refused(js, len, &parser, rc);
            return -1;
        }
        if (depth + open_containers(&parser) > JSON_MAX_DEPTH) {
            *err = "JSON nested too deeply";
            return -1;
        }
    }
}

int json_parse(struct json *j, const char *js, size_t len, const char **err)
{
    return json_parse_within(j, js, len, 0, err);
}

int json_parse_within(struct json *j, const char *js, size_t len, int depth, const char **err)
{
    memset(j, 0, sizeof *j);
    j->js = js;
    j->len = len;
    j->root = -1;
    size_t p = skip_ws(js, 0, len);
    if (p == len) {
        *err = "empty JSON document";
        return -1;
    }
    if (len > INT_MAX) {
        *err = "JSON document over 2 GiB";
        return -1;
    }
    /* The pool of a bigger document before is given back. */
    if (pool_cap > POOL_KEEP) {
        free(pool);
        pool = NULL;
        pool_cap = 0;
    }
    if (pool_reserve(POOL_FIRST) != 0) {
        *err = "out of memory";
        return -1;
    }
    int n;
    if (js[p] != '{' && js[p] != '[' && js[p] != '"') {
        /* A scalar alone: JSMN_STRICT wants a delimiter after it, which a
         * document (or an array element from json_split) does not have. */
        size_t e = p;
        while (e < len && !is_ws((unsigned char)js[e]))
            e++;
        pool[0] = (jsmntok_t){JSMN_PRIMITIVE, (int)p, (int)e, 0, -1};
        n = 1;
    } else if ((n = tokenize(js, len, depth, err)) < 0) {
        return -1;
    }
    const char *why = check(js, len, pool, n, depth);
    if (why != NULL) {
        *err = why;
        return -1;
    }
    j->tok = pool;
    j->ntok = n;
    j->root = 0;
    return 0;
}

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
    default: return is_digit(j->js[t->start]) || j->js[t->start] == '-' ? JSON_NUMBER : JSON_LITERAL;
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
