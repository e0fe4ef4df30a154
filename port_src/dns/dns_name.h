/*
 * dns_name.h - DNS names on the wire and as text: the bounded walk over
 * labels and compression pointers that every record of an answer goes
 * through, and the case-insensitive comparison and hash (RFC 4343) that
 * group records by target.
 */
#ifndef CARAVAN_DNS_NAME_H
#define CARAVAN_DNS_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A name is at most 255 bytes on the wire; escaped for text (\DDD) it can
 * grow four-fold. */
#define DNS_NAME_TEXT_MAX 1024
/* More pointer jumps than a 255-byte name has labels means a loop. */
#define DNS_MSG_MAX_JUMPS 128

/* Reads the (possibly compressed) name at *off into text form, escaping
 * bytes that are not letters, digits, '-' or '_' as \DDD, without the final
 * dot. Advances *off past the name where it stands. Returns 0 or -1. */
int dns_name_read(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap);

/* dns_name_read's walk. With out NULL nothing is written; *label_at, if
 * given, gets where the name's labels start once the pointers before them
 * are followed (two names starting there are the same name). */
int dns_name_walk(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap,
                  size_t *label_at);

/* Case-insensitive comparison of two text names (RFC 4343). */
bool dns_name_equal(const char *a, const char *b);

/* A hash of a name's text, case folded, seeded per process so that an
 * answer cannot be made to collide on purpose. */
uint64_t dns_name_hash(const char *s);

/* Name comparisons (dns_name_equal) since the program started: how tests
 * see that the work is not quadratic. */
extern unsigned long long dns_name_comparisons;

#endif
