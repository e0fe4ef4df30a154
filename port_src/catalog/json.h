/*
 * json.h - reading untrusted JSON strictly, in time linear in the body and
 * memory for one answer element.
 *
 * json_parse() tokenizes the document with jsmn and checks it against
 * RFC 8259 in one pass over the tokens: trailing or doubled commas, missing
 * commas, bytes after the value (a NUL included), raw control characters,
 * bad escapes, lone surrogates, `\u0000`, invalid UTF-8, numbers and
 * literals off the grammar are all refused, as is nesting deeper than
 * JSON_MAX_DEPTH. Values are then named by their token index (a `long`, -1
 * for none) and read on demand.
 *
 * Ownership: the tokens live in one array per thread that json.c owns and
 * reuses, so there is nothing to free; a struct json stays valid until the
 * next json_parse on the same thread, and its body must outlive it.
 * Every read below walks at most the value it reads (json_get the object's
 * keys, json_array_next one step), so a reader that visits each element a
 * bounded number of times stays linear overall.
 */
#ifndef CARAVAN_JSON_H
#define CARAVAN_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Consul and Nomad answers nest about 6 deep; the bound keeps the
 * walk's work per element small and refuses a nesting bomb. */
#define JSON_MAX_DEPTH 64

enum json_type { JSON_NONE, JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_NUMBER, JSON_LITERAL };

struct json {
    const char *js;
    size_t len;
    const void *tok; /* json.c's tokens (jsmn's), valid until the next parse */
    long ntok;
    long root; /* token of the document's value: 0, or -1 */
};

/* Validates js[0..len). Returns 0, or -1 with *err set (a static string). */
int json_parse(struct json *j, const char *js, size_t len, const char **err);
/* The same for a value found at nesting depth `depth` of a larger document
 * (an element of a top-level array is at 1), so that JSON_MAX_DEPTH bounds
 * the whole document when it is read a piece at a time (json_split.h). */
int json_parse_within(struct json *j, const char *js, size_t len, int depth, const char **err);

bool json_is(const struct json *j, long v, enum json_type type);
bool json_is_null(const struct json *j, long v);

/* The value of key in object obj, or -1. With loose, keys match ignoring
 * ASCII case and underscores (Consul writes `TaggedAddresses` and, inside
 * service tagged addresses, `address`). Keys are compared undecoded: API
 * keys never need escapes. */
long json_get(const struct json *j, long obj, const char *key, bool loose);

/* The element of array arr after prev (-1 for the first), or -1 past the end. */
long json_array_next(const struct json *j, long arr, long prev);

/* Decodes string v into out (NUL-terminated, at most cap - 1 bytes).
 * Returns the decoded length, or -1 (not a string, too long). */
int json_string(const struct json *j, long v, char *out, size_t cap);

/* Integer v within [min, max]; returns 0 or -1. */
int json_int(const struct json *j, long v, long long min, long long max, long long *out);

#endif
