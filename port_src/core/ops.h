/*
 * ops.h - the operations caravan_port answers, dispatched by name: the
 * core's own (ping, info, dist_port, cancel) and those of each backend
 * (backend.h: DNS, the catalog), which the loop drives through ops_nfds,
 * ops_poll_fds and ops_process without naming any of them.
 *
 * ops_packet() takes one packet as framed by frame.c and answers it through
 * the sink: always exactly one reply per request whose id can be read (now or,
 * for deferred operations, later), and a stderr line for packets whose id
 * cannot. Nothing a peer sends makes it return an error: only a sink failure
 * (the VM is gone) does. See docs/protocol.md for every message.
 */
#ifndef CARAVAN_OPS_H
#define CARAVAN_OPS_H

#include <ei.h>
#include <stdint.h>

#include <poll.h>

#include "backend.h"
#include "deferred.h"
#include "frame.h"
#include "replier.h"
#include "term.h"

/* CARAVAN_VERSION comes from the Makefile (erl_src/caravan.app.src's vsn). */

/* DNS, then the catalog (Consul and Nomad over HTTP). */
#define OPS_BACKENDS 2

struct ops {
    struct replier r; /* every reply goes through it (replier.h) */
    struct deferred deferred;
    struct backend backends[OPS_BACKENDS];
    size_t polled[OPS_BACKENDS]; /* how many fds each added in ops_poll_fds */
    int64_t started_ms;
    /* The writer's chunk counts, for info; set by the loop (NULL: none). */
    const struct frame_writer_counters *out;
};

/* Returns 0, or -1 when memory for the reply buffer cannot be had. */
int ops_init(struct ops *o, struct reply_sink sink);
void ops_free(struct ops *o);

/* Handles one request packet. Returns 0, or -1 when the sink failed. */
int ops_packet(struct ops *o, const char *buf, size_t len);

/* Framing anomalies that carry no id: counted and logged, never answered. */
void ops_dropped(struct ops *o, const char *what, size_t len);

/* poll() timeout in ms given pending deferred replies (cap when none). */
int ops_timeout(const struct ops *o, int cap);

/* Sends deferred replies that are due. Returns 0, or -1 when the sink failed. */
int ops_tick(struct ops *o);

/* The loop's part: the most fds the backends may add now; adding them
 * (returns how many); handing each its own with revents, in the same
 * order. The loop names no backend. */
size_t ops_nfds(const struct ops *o);
size_t ops_poll_fds(struct ops *o, struct pollfd *fds, size_t cap);
void ops_process(struct ops *o, const struct pollfd *fds, size_t n);

#endif
