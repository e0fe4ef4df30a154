/*
 * grow.h - the one growable buffer rule: a buffer grows by doubling, from a
 * first size, to what is needed; the HTTP body, the JSON splitter's
 * element and the frame reader all use it, and grow_array() is the same
 * rule counted in elements, for the arrays of members, records, addresses
 * and sockets.
 */
#ifndef CARAVAN_GROW_H
#define CARAVAN_GROW_H

#include <stddef.h>

/* Returns buf, reallocated to hold at least need bytes when its *cap does
 * not (doubling from first, or from *cap), with *cap updated; or NULL on
 * overflow or out of memory, buf and *cap then unchanged. */
void *grow(void *buf, size_t *cap, size_t need, size_t first);

/* grow() for an array of elements of elem bytes: *cap and need count
 * elements, first is the first element count. The same returns. */
void *grow_array(void *arr, size_t *cap, size_t need, size_t elem, size_t first);

#endif
