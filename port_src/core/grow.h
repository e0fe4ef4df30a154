/*
 * grow.h - the one growable buffer rule: a buffer grows by doubling, from a
 * first size, to what is needed; the HTTP body, the JSON splitter's
 * element and the frame reader all use it.
 */
#ifndef CARAVAN_GROW_H
#define CARAVAN_GROW_H

#include <stddef.h>

/* Returns buf, reallocated to hold at least need bytes when its *cap does
 * not (doubling from first, or from *cap), with *cap updated; or NULL on
 * overflow or out of memory, buf and *cap then unchanged. */
void *grow(void *buf, size_t *cap, size_t need, size_t first);

#endif
