/*
 * ops.h - the operations caravan_port answers, dispatched by name.
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

#include "deferred.h"
#include "dns.h"
#include "http.h"
#include "replier.h"
#include "term.h"

/* CARAVAN_VERSION comes from the Makefile (erl_src/caravan.app.src's vsn). */

struct ops {
    struct replier r; /* every reply goes through it (replier.h) */
    struct deferred deferred;
    struct dns *dns;
    struct http *http;
    struct answer_worker *answers; /* made on the first 200 answer */
    int64_t started_ms;
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

/* Handlers defined in ops_dns.c. */
int ops_dns_srv(struct ops *o, const struct request *req);
int ops_dns_addr(struct ops *o, const struct request *req);
void ops_dns_done(void *ctx, uint64_t id, const struct dns_result *r);

/* Handlers defined in ops_http.c. */
int ops_http_consul(struct ops *o, const struct request *req);
int ops_http_nomad(struct ops *o, const struct request *req);
void ops_http_done(void *ctx, uint64_t id, void *user, const struct http_result *r);
/* Ends HTTP request id (in flight or its answer on the worker thread);
 * returns 1, or 0 when there is none. */
int ops_http_cancel(struct ops *o, uint64_t id);
/* Sends the replies of answers read on the worker thread (answer_worker.h);
 * returns -1 when the sink failed. ops_answer_fd is the fd to poll for
 * them, or -1. */
struct answer_job;
int ops_answers_collect(struct ops *o);
void ops_answer_sent(struct ops *o, struct answer_job *job);
int ops_answer_fd(const struct ops *o);

#endif
