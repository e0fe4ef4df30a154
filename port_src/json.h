/*
 * json.h - reading untrusted JSON with jsmn, strictly.
 *
 * jsmn tokenises but does not validate everything (in JSMN_STRICT mode `tru`
 * still passes as a primitive) and leaves strings escaped. json_parse()
 * tokenises, then checks every primitive (true, false, null or an RFC 8259
 * number) and every object key (a string). json_string() decodes escapes,
 * \uXXXX surrogate pairs included, into UTF-8 and refuses control
 * characters and lone surrogates.
 */
#ifndef CARAVAN_JSON_H
#define CARAVAN_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* jsmn is a header-only library: json.c includes it with its code (static),
 * every other file only for the types. The struct layout depends on
 * JSMN_PARENT_LINKS, so both must agree. */
#ifndef JSMN_H
#define JSMN_HEADER
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>
#endif

struct json {
    const char *js;
    size_t len;
    jsmntok_t *tok;
    int n;
};

/* Parses js[0..len). Returns 0, or -1 with *err set. The document must be
 * one value (an array or object for the APIs caravan reads). */
int json_parse(struct json *j, const char *js, size_t len, const char **err);
void json_free(struct json *j);

/* Index of the token after token i and everything inside it. */
int json_skip(const struct json *j, int i);

/* The value of key in object token obj, or -1. With loose, keys match
 * ignoring ASCII case and underscores (Consul writes `TaggedAddresses` and,
 * inside service tagged addresses, `address`). */
int json_get(const struct json *j, int obj, const char *key, bool loose);

/* The index of element k of array token arr: call with the previous index
 * (or -1 for the first); returns -1 past the end. */
int json_array_next(const struct json *j, int arr, int prev);

bool json_is(const struct json *j, int i, jsmntype_t type);

/* Decodes string token i into out (NUL-terminated, at most cap - 1 bytes).
 * Returns the decoded length, or -1 (not a string, bad escape, too long). */
int json_string(const struct json *j, int i, char *out, size_t cap);

/* Integer token i within [min, max]; returns 0 or -1. */
int json_int(const struct json *j, int i, long long min, long long max, long long *v);

#endif
