/* deferred.c - bounded set of timed replies; see deferred.h.
 *
 * A linear scan over at most DEFERRED_MAX entries: with a handful of
 * outstanding pings this beats a heap in code and in time. */
#include "deferred.h"

int deferred_add(struct deferred *d, uint64_t id, int64_t due_ms)
{
    if (d->count >= DEFERRED_MAX)
        return -1;
    d->entries[d->count].id = id;
    d->entries[d->count].due_ms = due_ms;
    d->count++;
    return 0;
}

int deferred_timeout(const struct deferred *d, int64_t now_ms, int cap)
{
    int64_t best = cap;
    for (size_t i = 0; i < d->count; i++) {
        int64_t left = d->entries[i].due_ms - now_ms;
        if (left < best)
            best = left;
    }
    return best < 0 ? 0 : (int)best;
}

int deferred_pop_due(struct deferred *d, int64_t now_ms, uint64_t *id)
{
    for (size_t i = 0; i < d->count; i++) {
        if (d->entries[i].due_ms <= now_ms) {
            *id = d->entries[i].id;
            d->entries[i] = d->entries[--d->count];
            return 1;
        }
    }
    return 0;
}

int deferred_cancel(struct deferred *d, uint64_t id)
{
    for (size_t i = 0; i < d->count; i++) {
        if (d->entries[i].id == id) {
            d->entries[i] = d->entries[--d->count];
            return 1;
        }
    }
    return 0;
}
