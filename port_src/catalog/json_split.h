/*
 * json_split.h - a top-level JSON array read as it arrives, one element at
 * a time, so that a body never has to be held whole.
 *
 * Consul's and Nomad's answers are arrays of small objects (a Consul entry
 * is under 1 KB), and the body can be tens of MB: held whole it was most of
 * the program's memory. The splitter checks the array's own grammar (one
 * '[', exactly one ',' between elements, one ']', only whitespace after)
 * and hands each whole element to a callback, which validates it strictly
 * with json_parse_within (json.h) at depth 1. Together they refuse exactly
 * what json_parse refuses on the whole body, for any way the body is cut
 * into pieces: only the error text may differ.
 *
 * Memory: an element that arrives in one piece is handed over in place; one
 * cut by a piece boundary is gathered in a buffer, so the buffer holds one
 * element at most. Nesting past JSON_MAX_DEPTH is refused when it is seen,
 * before the element is gathered.
 */
#ifndef CARAVAN_JSON_SPLIT_H
#define CARAVAN_JSON_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

/* Called once per element with its bytes (no surrounding whitespace).
 * Returns 0, or -1 with *err set (a static string) to stop the split. */
typedef int (*json_element_fn)(void *ctx, const char *el, size_t len, const char **err);

struct json_split {
    json_element_fn element;
    void *ctx;
    int state;      /* where in the array's grammar (json_split.c) */
    int depth;      /* brackets open in the current element */
    bool in_string, escaped;
    char *buf;      /* the part of an element cut by a piece boundary */
    size_t len, cap;
    const char *err; /* latched: once set, feeding does nothing */
};

void json_split_init(struct json_split *s, json_element_fn element, void *ctx);
/* Takes the next piece. Returns 0, or -1 with *err set (then and on every
 * later call). */
int json_split_feed(struct json_split *s, const char *data, size_t n, const char **err);
/* The body has ended: returns 0 if it was one whole array, else -1. */
int json_split_end(struct json_split *s, const char **err);
void json_split_free(struct json_split *s);

#endif
