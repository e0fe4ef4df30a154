/* term.c - bounded walk and decoding of request terms; see term.h. */
#include "term.h"

#include <ei.h>
#include <stdio.h>
#include <string.h>

#define VERSION_MAGIC 131
#define NEW_FLOAT_EXT 'F'

const char *term_error_text(enum term_error e)
{
    switch (e) {
    case TERM_OK: return "ok";
    case TERM_TRUNCATED: return "term truncated";
    case TERM_UNSUPPORTED: return "unsupported term type";
    case TERM_TOO_DEEP: return "term nested too deeply";
    case TERM_BAD_VERSION: return "not external term format (no version byte 131)";
    case TERM_TRAILING: return "bytes after the term";
    case TERM_BAD_SHAPE: return "unexpected term shape";
    }
    return "unknown term error";
}

/* Reads an n-byte big-endian unsigned at buf[*idx], if the bytes are there. */
static bool read_be(const char *buf, size_t len, size_t *idx, size_t n, size_t *out)
{
    if (len < n || *idx > len - n)
        return false;
    size_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | (unsigned char)buf[*idx + i];
    *idx += n;
    *out = v;
    return true;
}

/* Skips n raw bytes, if they are there. */
static bool skip_bytes(size_t len, size_t *idx, size_t n)
{
    if (n > len - *idx)
        return false;
    *idx += n;
    return true;
}

/* Skips `count` consecutive terms (tuple elements, list cells, map halves). */
static enum term_error skip_many(const char *buf, size_t len, size_t *idx, size_t count,
                                 int depth)
{
    for (size_t i = 0; i < count; i++) {
        /* Every term takes at least one byte: a count above what is left is a
         * lie, caught here before it costs a long loop. */
        if (*idx >= len)
            return TERM_TRUNCATED;
        enum term_error e = term_skip(buf, len, idx, depth);
        if (e != TERM_OK)
            return e;
    }
    return TERM_OK;
}

enum term_error term_skip(const char *buf, size_t len, size_t *idx, int depth)
{
    size_t n;

    if (depth > TERM_MAX_DEPTH)
        return TERM_TOO_DEEP;
    if (*idx >= len)
        return TERM_TRUNCATED;

    unsigned char tag = (unsigned char)buf[(*idx)++];
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT:
        return skip_bytes(len, idx, 1) ? TERM_OK : TERM_TRUNCATED;
    case ERL_INTEGER_EXT:
        return skip_bytes(len, idx, 4) ? TERM_OK : TERM_TRUNCATED;
    case NEW_FLOAT_EXT:
        return skip_bytes(len, idx, 8) ? TERM_OK : TERM_TRUNCATED;
    case ERL_SMALL_BIG_EXT:
        if (!read_be(buf, len, idx, 1, &n))
            return TERM_TRUNCATED;
        return skip_bytes(len, idx, n + 1) ? TERM_OK : TERM_TRUNCATED; /* sign + digits */
    case ERL_LARGE_BIG_EXT:
        if (!read_be(buf, len, idx, 4, &n) || n > len)
            return TERM_TRUNCATED;
        return skip_bytes(len, idx, n + 1) ? TERM_OK : TERM_TRUNCATED;
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        if (!read_be(buf, len, idx, 1, &n))
            return TERM_TRUNCATED;
        return skip_bytes(len, idx, n) ? TERM_OK : TERM_TRUNCATED;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        if (!read_be(buf, len, idx, 2, &n))
            return TERM_TRUNCATED;
        /* ei refuses atoms longer than this; refuse them here instead. */
        if (n > MAXATOMLEN_UTF8 - 1)
            return TERM_UNSUPPORTED;
        return skip_bytes(len, idx, n) ? TERM_OK : TERM_TRUNCATED;
    case ERL_BINARY_EXT:
    case ERL_STRING_EXT:
        if (!read_be(buf, len, idx, tag == ERL_BINARY_EXT ? 4 : 2, &n))
            return TERM_TRUNCATED;
        return skip_bytes(len, idx, n) ? TERM_OK : TERM_TRUNCATED;
    case ERL_NIL_EXT:
        return TERM_OK;
    case ERL_SMALL_TUPLE_EXT:
        if (!read_be(buf, len, idx, 1, &n))
            return TERM_TRUNCATED;
        return skip_many(buf, len, idx, n, depth + 1);
    case ERL_LARGE_TUPLE_EXT:
        if (!read_be(buf, len, idx, 4, &n))
            return TERM_TRUNCATED;
        return skip_many(buf, len, idx, n, depth + 1);
    case ERL_LIST_EXT: {
        if (!read_be(buf, len, idx, 4, &n))
            return TERM_TRUNCATED;
        enum term_error e = skip_many(buf, len, idx, n, depth + 1);
        return e != TERM_OK ? e : term_skip(buf, len, idx, depth + 1); /* the tail */
    }
    case ERL_MAP_EXT:
        if (!read_be(buf, len, idx, 4, &n))
            return TERM_TRUNCATED;
        if (n > (len - *idx) / 2)
            return TERM_TRUNCATED;
        return skip_many(buf, len, idx, 2 * n, depth + 1);
    default:
        return TERM_UNSUPPORTED;
    }
}

/* ei's index type is int: packets are bounded by FRAME_MAX_PACKET, far below. */
static int as_index(size_t idx)
{
    return (int)idx;
}

enum term_error term_request_decode(const char *buf, size_t len, struct request *req,
                                    const char **detail)
{
    size_t idx = 0, arity = 0;

    memset(req, 0, sizeof *req);
    req->buf = buf;
    req->len = len;
    *detail = NULL;

    if (len < 1 || (unsigned char)buf[0] != VERSION_MAGIC)
        return TERM_BAD_VERSION;
    idx = 1;

    /* The id comes first so that as many errors as possible can be replied to. */
    if (idx < len && buf[idx] == ERL_SMALL_TUPLE_EXT) {
        idx++;
        if (!read_be(buf, len, &idx, 1, &arity))
            return TERM_TRUNCATED;
    } else if (idx < len && buf[idx] == ERL_LARGE_TUPLE_EXT) {
        idx++;
        if (!read_be(buf, len, &idx, 4, &arity))
            return TERM_TRUNCATED;
    } else if (idx < len) {
        *detail = "request is not a tuple";
        return TERM_BAD_SHAPE;
    } else {
        return TERM_TRUNCATED;
    }
    if (arity < 1) {
        *detail = "request is an empty tuple";
        return TERM_BAD_SHAPE;
    }

    size_t id_at = idx;
    enum term_error e = term_skip(buf, len, &idx, 1);
    if (e != TERM_OK)
        return e;
    int ei_idx = as_index(id_at);
    unsigned long long id = 0;
    if (ei_decode_ulonglong(buf, &ei_idx, &id) != 0 || id == 0 || (size_t)ei_idx != idx) {
        *detail = "request id is not a positive integer";
        return TERM_BAD_SHAPE;
    }
    req->has_id = true;
    req->id = id;

    /* Validate the rest before ei touches any of it. */
    size_t op_at = idx;
    e = skip_many(buf, len, &idx, arity - 1, 1);
    if (e != TERM_OK)
        return e;
    if (idx != len)
        return TERM_TRAILING;
    if (arity != 3) {
        *detail = "request is not {Id, Op, Args}";
        return TERM_BAD_SHAPE;
    }

    int type = 0, size = 0;
    ei_idx = as_index(op_at);
    if (ei_get_type(buf, &ei_idx, &type, &size) != 0 ||
        (type != ERL_ATOM_EXT && type != ERL_SMALL_ATOM_EXT && type != ERL_ATOM_UTF8_EXT &&
         type != ERL_SMALL_ATOM_UTF8_EXT) ||
        size > TERM_MAX_OP) {
        *detail = "operation is not an atom of at most 32 bytes";
        return TERM_BAD_SHAPE;
    }
    if (ei_decode_atom(buf, &ei_idx, req->op) != 0) {
        *detail = "operation atom is not latin-1";
        return TERM_BAD_SHAPE;
    }
    req->args = (size_t)ei_idx;
    return TERM_OK;
}

static const struct term_arg *find_arg(const struct term_arg *spec, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(spec[i].key, key) == 0)
            return &spec[i];
    return NULL;
}

static int parse_binary(const struct request *req, int *idx, const struct term_arg *a,
                        char *dest, size_t *len_out, char *msg, size_t msglen)
{
    int type = 0, size = 0;
    ei_get_type(req->buf, idx, &type, &size);
    if (type != ERL_BINARY_EXT) {
        snprintf(msg, msglen, "%s: expected a binary", a->key);
        return -1;
    }
    if ((long long)size > a->max) {
        snprintf(msg, msglen, "%s: longer than %lld bytes", a->key, a->max);
        return -1;
    }
    long got = 0;
    if (ei_decode_binary(req->buf, idx, dest, &got) != 0) {
        snprintf(msg, msglen, "%s: unreadable binary", a->key);
        return -1;
    }
    dest[got] = '\0';
    /* IMPORTANT: every string argument becomes a C string; a NUL inside it
     * would silently cut it short (a service "web\0x" would query web). */
    if (!a->nul_ok && memchr(dest, '\0', (size_t)got) != NULL) {
        snprintf(msg, msglen, "%s: holds a NUL byte", a->key);
        return -1;
    }
    if (len_out)
        *len_out = (size_t)got;
    return 0;
}

static int parse_int(const struct request *req, int *idx, const struct term_arg *a, char *msg,
                     size_t msglen)
{
    int type = 0, size = 0;
    long long v = 0;
    ei_get_type(req->buf, idx, &type, &size);
    if (type != ERL_SMALL_INTEGER_EXT && type != ERL_INTEGER_EXT && type != ERL_SMALL_BIG_EXT &&
        type != ERL_LARGE_BIG_EXT) {
        snprintf(msg, msglen, "%s: expected an integer", a->key);
        return -1;
    }
    if (ei_decode_longlong(req->buf, idx, &v) != 0 || v < a->min || v > a->max) {
        snprintf(msg, msglen, "%s: must be an integer in %lld..%lld", a->key, a->min, a->max);
        return -1;
    }
    *(long long *)a->dest = v;
    return 0;
}

static int parse_atom(const struct request *req, int *idx, const struct term_arg *a, char *msg,
                      size_t msglen)
{
    char atom[MAXATOMLEN_UTF8];
    if (ei_decode_atom(req->buf, idx, atom) != 0 || strlen(atom) > (size_t)a->max) {
        snprintf(msg, msglen, "%s: expected an atom", a->key);
        return -1;
    }
    strcpy(a->dest, atom);
    return 0;
}

/* [binary()] joined with ','. An empty list leaves dest empty. */
static int parse_binary_list(const struct request *req, int *idx, const struct term_arg *a,
                             char *msg, size_t msglen)
{
    int arity = 0;
    char *dest = a->dest;
    size_t used = 0, count = 0;
    char item[256];
    struct term_arg one = {.key = a->key, .max = sizeof item - 1};

    dest[0] = '\0';
    if (ei_decode_list_header(req->buf, idx, &arity) != 0) {
        snprintf(msg, msglen, "%s: expected a list of binaries", a->key);
        return -1;
    }
    for (int i = 0; i < arity; i++) {
        size_t n = 0;
        if (parse_binary(req, idx, &one, item, &n, msg, msglen) != 0)
            return -1;
        if (n == 0 || memchr(item, ',', n) != NULL || memchr(item, '\0', n) != NULL) {
            snprintf(msg, msglen, "%s: element %d is empty or holds ',' or NUL", a->key, i + 1);
            return -1;
        }
        if (used + n + 1 > (size_t)a->max) {
            snprintf(msg, msglen, "%s: longer than %lld bytes in all", a->key, a->max);
            return -1;
        }
        if (used > 0)
            dest[used++] = ',';
        memcpy(dest + used, item, n);
        used += n;
        dest[used] = '\0';
        count++;
    }
    if (arity > 0 && ei_decode_list_header(req->buf, idx, &arity) != 0) {
        snprintf(msg, msglen, "%s: not a proper list", a->key);
        return -1;
    }
    if (a->len_out)
        *a->len_out = count;
    return 0;
}

static int parse_one(const struct request *req, int *idx, const struct term_arg *a, char *msg,
                     size_t msglen)
{
    switch (a->type) {
    case ARG_BINARY: return parse_binary(req, idx, a, a->dest, a->len_out, msg, msglen);
    case ARG_INT: return parse_int(req, idx, a, msg, msglen);
    case ARG_ATOM: return parse_atom(req, idx, a, msg, msglen);
    case ARG_BINARY_LIST: return parse_binary_list(req, idx, a, msg, msglen);
    case ARG_TERM:
        *(size_t *)a->dest = (size_t)*idx;
        if (ei_skip_term(req->buf, idx) != 0) {
            snprintf(msg, msglen, "%s: unreadable term", a->key);
            return -1;
        }
        return 0;
    case ARG_ATOM_OR_BINARY: {
        int type = 0, size = 0;
        ei_get_type(req->buf, idx, &type, &size);
        *a->is_atom = type != ERL_BINARY_EXT;
        if (type == ERL_BINARY_EXT)
            return parse_binary(req, idx, a, a->dest, a->len_out, msg, msglen);
        if (parse_atom(req, idx, a, msg, msglen) == 0)
            return 0;
        snprintf(msg, msglen, "%s: expected an atom or a binary", a->key);
        return -1;
    }
    }
    return -1;
}

int term_args_parse(const struct request *req, const struct term_arg *spec, size_t n, char *msg,
                    size_t msglen)
{
    int idx = as_index(req->args), arity = 0;
    bool seen[32] = {false}; /* ops_catalog.c's Consul table has 17 */

    if (n > sizeof seen / sizeof seen[0]) {
        snprintf(msg, msglen, "internal: argument table too long");
        return -1;
    }
    if (ei_decode_map_header(req->buf, &idx, &arity) != 0) {
        snprintf(msg, msglen, "arguments are not a map");
        return -1;
    }
    for (int i = 0; i < arity; i++) {
        char key[MAXATOMLEN_UTF8];
        if (ei_decode_atom(req->buf, &idx, key) != 0) {
            snprintf(msg, msglen, "argument keys must be atoms");
            return -1;
        }
        const struct term_arg *a = find_arg(spec, n, key);
        if (a == NULL) {
            snprintf(msg, msglen, "unknown argument '%s'", key);
            return -1;
        }
        if (parse_one(req, &idx, a, msg, msglen) != 0)
            return -1;
        seen[a - spec] = true;
        if (a->seen)
            *a->seen = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (spec[i].required && !seen[i]) {
            snprintf(msg, msglen, "missing argument '%s'", spec[i].key);
            return -1;
        }
    }
    return 0;
}
