/*
 * backend.h - a subsystem that answers operations and owns sockets (dns/,
 * catalog/), as the core sees it: the operations it answers and the hooks
 * the loop calls, backend after backend, naming none of them (as
 * circuits_uart's uart_add_poll_events / uart_process). A backend answers
 * through the replier it was made with (replier.h) and never includes
 * ops.h: dependencies run from the core to the backends, not back
 * (scripts/check-includes.sh).
 */
#ifndef CARAVAN_BACKEND_H
#define CARAVAN_BACKEND_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "term.h"

/* Answers req (now, or later through the replier). Returns 0, or -1 when
 * the sink failed. */
typedef int (*backend_op_fn)(void *state, const struct request *req);

struct backend_op {
    const char *name;
    backend_op_fn fn;
};

struct backend {
    void *state;
    const struct backend_op *ops;
    size_t nops;
    /* The most descriptors poll_fds may add now. */
    size_t (*nfds)(const void *state);
    /* Adds the descriptors to watch; returns how many. */
    size_t (*poll_fds)(void *state, struct pollfd *fds, size_t cap);
    /* The poll() timeout in ms, at most cap. */
    int (*timeout)(void *state, int cap);
    /* The descriptors poll_fds added, with their revents. */
    void (*process)(void *state, const struct pollfd *fds, size_t n);
    /* Sends replies made ready off the loop; returns -1 when the sink failed. */
    int (*tick)(void *state);
    /* Ends request id: 1, or 0 when it has none in flight. */
    int (*cancel)(void *state, uint64_t id);
    /* info reports inflight(state) under this key. */
    const char *inflight_key;
    uint64_t (*inflight)(const void *state);
    void (*free)(void *state);
};

#endif
