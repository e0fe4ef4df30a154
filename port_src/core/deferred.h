/*
 * deferred.h - replies due at a later time, driven by the poll loop.
 *
 * `ping` with a delay uses this; it is how the program shows (and the tests
 * check) that replies leave out of request order, and how a liveness check can
 * tell a busy program from a hung one. The queue is bounded: a full queue
 * answers {error, overload} instead of growing.
 */
#ifndef CARAVAN_DEFERRED_H
#define CARAVAN_DEFERRED_H

#include <stddef.h>
#include <stdint.h>

/* Far above any legitimate number of outstanding pings; small enough that a
 * flood costs a few kilobytes. */
#define DEFERRED_MAX 1024

struct deferred_entry {
    uint64_t id;
    int64_t due_ms;
};

struct deferred {
    struct deferred_entry entries[DEFERRED_MAX];
    size_t count;
};

/* Queues id for due_ms; returns 0, or -1 when the queue is full. */
int deferred_add(struct deferred *d, uint64_t id, int64_t due_ms);

/* Milliseconds until the earliest entry is due, clamped to [0, cap], or cap
 * when empty: the poll() timeout. */
int deferred_timeout(const struct deferred *d, int64_t now_ms, int cap);

/* Removes one entry due at or before now_ms into *id; returns 1, or 0 if none. */
/* Forgets the entry of id. Returns 1, or 0 when there is none. */
int deferred_cancel(struct deferred *d, uint64_t id);

int deferred_pop_due(struct deferred *d, int64_t now_ms, uint64_t *id);

#endif
