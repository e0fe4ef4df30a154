/* json_split.c - a top-level JSON array split into its elements as it
 * arrives; see json_split.h. */
#include "json_split.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "json.h"

enum {
    S_START,   /* before the '[' */
    S_FIRST,   /* after '[': an element or ']' */
    S_ELEMENT, /* inside an element */
    S_AFTER,   /* after an element: ',' or ']' */
    S_NEXT,    /* after ',': an element */
    S_DONE,    /* after ']': whitespace only */
};

/* A buffer that grew past this for one big element is given back once the
 * element is read, rather than kept for the rest of the body. */
#define SPLIT_KEEP_BYTES (64 * 1024)

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void json_split_init(struct json_split *s, json_element_fn element, void *ctx)
{
    memset(s, 0, sizeof *s);
    s->element = element;
    s->ctx = ctx;
    s->state = S_START;
}

void json_split_free(struct json_split *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

static int fail(struct json_split *s, const char *why, const char **err)
{
    if (s->err == NULL)
        s->err = why;
    *err = s->err;
    return -1;
}

static int gather(struct json_split *s, const char *from, size_t n)
{
    if (n > SIZE_MAX - s->len)
        return -1;
    char *buf = grow(s->buf, &s->cap, s->len + n, 4096);
    if (buf == NULL)
        return -1;
    s->buf = buf;
    memcpy(s->buf + s->len, from, n);
    s->len += n;
    return 0;
}

/* The element that began at start (in this piece, or in earlier ones when
 * s->len > 0) ends just before end. */
static int complete(struct json_split *s, const char *start, const char *end, const char **err)
{
    const char *el = start;
    size_t len = (size_t)(end - start);
    if (s->len > 0) {
        if (gather(s, start, len) != 0)
            return fail(s, "out of memory", err);
        el = s->buf;
        len = s->len;
    }
    s->state = S_AFTER;
    const char *why = NULL;
    int rc = s->element(s->ctx, el, len, &why);
    s->len = 0;
    if (s->cap > SPLIT_KEEP_BYTES)
        json_split_free(s);
    return rc == 0 ? 0 : fail(s, why ? why : "an element was refused", err);
}

/* Opens a bracket inside the element; the element's own is at depth 1,
 * as json_parse counts from the array at 0. */
static int open_bracket(struct json_split *s, const char **err)
{
    if (++s->depth >= JSON_MAX_DEPTH)
        return fail(s, "JSON nested too deeply", err);
    return 0;
}

int json_split_feed(struct json_split *s, const char *data, size_t n, const char **err)
{
    if (s->err != NULL)
        return fail(s, s->err, err);
    const char *p = data, *end = data + n;
    const char *start = data; /* of the current element within this piece */
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        switch (s->state) {
        case S_START:
            if (c == '[')
                s->state = S_FIRST;
            else if (!is_ws(c))
                return fail(s, "expected a JSON array of instances", err);
            p++;
            break;
        case S_AFTER:
            if (c == ',')
                s->state = S_NEXT;
            else if (c == ']')
                s->state = S_DONE;
            else if (!is_ws(c))
                return fail(s, "expected ',' or ']' in a JSON array", err);
            p++;
            break;
        case S_DONE:
            if (!is_ws(c))
                return fail(s, "bytes after the JSON value", err);
            p++;
            break;
        case S_FIRST:
        case S_NEXT:
            if (is_ws(c)) {
                p++;
                break;
            }
            if (c == ']' && s->state == S_FIRST) {
                s->state = S_DONE;
                p++;
                break;
            }
            if (c == ']' || c == ',')
                return fail(s, "expected a value in a JSON array", err);
            /* An element begins: a container, a string, or a scalar that
             * runs to the next delimiter (json_parse judges its bytes). */
            start = p;
            s->state = S_ELEMENT;
            s->depth = 0;
            s->in_string = c == '"';
            s->escaped = false;
            if ((c == '{' || c == '[') && open_bracket(s, err) != 0)
                return -1;
            p++;
            break;
        case S_ELEMENT:
            if (s->in_string) {
                if (s->escaped) {
                    s->escaped = false;
                    p++;
                    break;
                }
                while (p < end && *p != '"' && *p != '\\')
                    p++;
                if (p == end)
                    break;
                if (*p == '\\') {
                    s->escaped = true;
                    p++;
                    break;
                }
                s->in_string = false;
                p++;
                if (s->depth == 0 && complete(s, start, p, err) != 0)
                    return -1;
            } else if (s->depth > 0) {
                if (c == '"') {
                    s->in_string = true;
                } else if (c == '{' || c == '[') {
                    if (open_bracket(s, err) != 0)
                        return -1;
                } else if ((c == '}' || c == ']') && --s->depth == 0) {
                    if (complete(s, start, p + 1, err) != 0)
                        return -1;
                }
                p++;
            } else if (is_ws(c) || c == ',' || c == ']') {
                /* A scalar ends before its delimiter, which S_AFTER reads. */
                if (complete(s, start, p, err) != 0)
                    return -1;
            } else {
                p++;
            }
            break;
        }
    }
    if (s->state == S_ELEMENT && gather(s, start, (size_t)(end - start)) != 0)
        return fail(s, "out of memory", err);
    return 0;
}

int json_split_end(struct json_split *s, const char **err)
{
    if (s->err != NULL)
        return fail(s, s->err, err);
    if (s->state == S_DONE)
        return 0;
    return fail(s, s->state == S_START ? "empty JSON document" : "JSON ends early", err);
}
