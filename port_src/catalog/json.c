/* json.c - strict JSON on jsmn's tokens: tokenizing and checking; see
 * json.h (reading the tokens is json_read.c's).
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

/* jsmn's code, static, here and nowhere else (json_tok.h). */
#define JSMN_STATIC
#define JSON_TOK_PARSER
#include "json_tok.h"

#define POOL_FIRST 256u
#define POOL_KEEP 4096u /* tokens (20 bytes each) kept between parses */

static _Thread_local jsmntok_t *pool;
static _Thread_local unsigned pool_cap;

static bool is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *js, size_t p, size_t end)
{
    while (p < end && is_ws((unsigned char)js[p]))
        p++;
    return p;
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
        if (json_hex4(s, end, &cp) != 0)
            return "invalid \\u escape in a JSON string";
        s += 4;
        /* A NUL would cut every C string made from this one short. */
        if (cp == 0)
            return "\\u0000 in a JSON string";
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return "lone surrogate in a JSON string";
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || json_hex4(s + 2, end, &lo) != 0 ||
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
        while (p < n && json_is_digit(s[p]))
            p++;
    else
        return "invalid JSON number";
    if (p < n && s[p] == '.') {
        p++;
        if (p >= n || !json_is_digit(s[p]))
            return "invalid JSON number";
        while (p < n && json_is_digit(s[p]))
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || !json_is_digit(s[p]))
            return "invalid JSON number";
        while (p < n && json_is_digit(s[p]))
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
    if (at < len && (js[at] == '-' || json_is_digit(js[at])))
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
