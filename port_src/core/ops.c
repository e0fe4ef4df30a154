/* ops.c - request dispatch: the core's own operations (ping, info,
 * dist_port, cancel), then each backend's table; the backends' fds,
 * timeouts and ticks for the loop; see ops.h. */
#include "ops.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "dist_port.h"
#include "http.h"
#include "ops_catalog.h"
#include "ops_dns.h"
#include "term.h"

/* Room for one sentence naming a node of up to 255 bytes. */
#define MSG_MAX 512
/* A ping may be delayed by at most a minute: enough for any liveness or
 * ordering test, short enough that a mistaken value cannot park an id forever. */
#define PING_MAX_DELAY_MS 60000

typedef int (*op_handler)(struct ops *o, const struct request *req);

/* dist_port #{name := binary(), default => 0..65535} -> Port */
static int op_dist_port(struct ops *o, const struct request *req)
{
    char name[1024 + 1], msg[MSG_MAX];
    size_t name_len = 0;
    long long default_port = 0;
    const struct term_arg spec[] = {
        {.key = "name", .type = ARG_BINARY, .required = true, .dest = name,
         .len_out = &name_len, .max = sizeof name - 1, .nul_ok = true},
        {.key = "default", .type = ARG_INT, .dest = &default_port, .min = 0, .max = 65535},
    };

    if (term_args_parse(req, spec, sizeof spec / sizeof spec[0], msg, sizeof msg) != 0)
        return replier_error(&o->r, req->id, "bad_args", msg);

    long port = 0;
    enum dist_port_error e =
        dist_port_from_name(name, name_len, (long)default_port, &port, msg, sizeof msg);
    if (e != DIST_PORT_OK)
        return replier_error(&o->r, req->id, dist_port_error_atom(e), msg);
    return replier_ok_ulong(&o->r, req->id, (unsigned long long)port);
}

/* ping #{delay_ms => 0..60000} -> pong, sent after the delay. */
static int op_ping(struct ops *o, const struct request *req)
{
    char msg[MSG_MAX];
    long long delay = 0;
    const struct term_arg spec[] = {
        {.key = "delay_ms", .type = ARG_INT, .dest = &delay, .min = 0, .max = PING_MAX_DELAY_MS},
    };

    if (term_args_parse(req, spec, 1, msg, sizeof msg) != 0)
        return replier_error(&o->r, req->id, "bad_args", msg);
    if (delay == 0)
        return replier_ok_atom(&o->r, req->id, "pong");
    if (deferred_add(&o->deferred, req->id, clock_now_ms() + delay) != 0)
        return replier_error(&o->r, req->id, "overload", "too many delayed replies outstanding");
    return 0;
}

/* cancel #{id := 1..2^64-1} -> cancelled | not_found. The request id ends
 * at once and gets no reply (docs/protocol.md says why). */
static int op_cancel(struct ops *o, const struct request *req)
{
    char msg[MSG_MAX];
    long long id = 0;
    /* Ids the owner chose count up from 1: 2^63 is never reached. */
    const struct term_arg spec[] = {
        {.key = "id", .type = ARG_INT, .required = true, .dest = &id, .min = 1,
         .max = INT64_MAX},
    };
    if (term_args_parse(req, spec, 1, msg, sizeof msg) != 0)
        return replier_error(&o->r, req->id, "bad_args", msg);
    int found = deferred_cancel(&o->deferred, (uint64_t)id);
    for (size_t i = 0; i < OPS_BACKENDS && !found; i++)
        found = o->backends[i].cancel(o->backends[i].state, (uint64_t)id);
    if (found)
        o->r.counters.cancelled++;
    else
        o->r.counters.cancel_noops++;
    return replier_ok_atom(&o->r, req->id, found ? "cancelled" : "not_found");
}

static int encode_counter(ei_x_buff *x, const char *key, unsigned long long value)
{
    return ei_x_encode_atom(x, key) || ei_x_encode_ulonglong(x, value);
}

static int encode_inflight(ei_x_buff *x, const struct ops *o)
{
    for (size_t i = 0; i < OPS_BACKENDS; i++) {
        const struct backend *b = &o->backends[i];
        if (encode_counter(x, b->inflight_key, b->inflight(b->state)))
            return -1;
    }
    return 0;
}

/* info #{} -> #{version, os_pid, uptime_ms, requests, ok, errors, dropped, deferred,
 *               dns_inflight, http_inflight, entries_skipped, cancelled, cancel_noops,
 *               chunked_replies, chunks, libcurl} */
static int op_info(struct ops *o, const struct request *req)
{
    char msg[MSG_MAX];
    if (term_args_parse(req, NULL, 0, msg, sizeof msg) != 0)
        return replier_error(&o->r, req->id, "bad_args", msg);

    char curl[300];
    http_library(curl, sizeof curl);
    /* replier_ok_begin counts this reply first, so that it sees itself. */
    ei_x_buff *x = replier_ok_begin(&o->r, req->id);
    const struct replier_counters *c = &o->r.counters;
    struct frame_writer_counters out = {0};
    if (o->out != NULL)
        out = *o->out;
    bool bad = x == NULL || ei_x_encode_map_header(x, 14 + OPS_BACKENDS) ||
        ei_x_encode_atom(x, "version") ||
        ei_x_encode_binary(x, CARAVAN_VERSION, (int)strlen(CARAVAN_VERSION)) ||
        encode_counter(x, "os_pid", (unsigned long long)getpid()) ||
        encode_counter(x, "uptime_ms", (unsigned long long)(clock_now_ms() - o->started_ms)) ||
        encode_counter(x, "requests", c->requests) || encode_counter(x, "ok", c->ok) ||
        encode_counter(x, "errors", c->errors) || encode_counter(x, "dropped", c->dropped) ||
        encode_counter(x, "deferred", o->deferred.count) ||
        encode_inflight(x, o) ||
        encode_counter(x, "entries_skipped", c->entries_skipped) ||
        encode_counter(x, "cancelled", c->cancelled) ||
        encode_counter(x, "cancel_noops", c->cancel_noops) ||
        encode_counter(x, "chunked_replies", out.chunked) ||
        encode_counter(x, "chunks", out.chunks) ||
        ei_x_encode_atom(x, "libcurl") || ei_x_encode_binary(x, curl, (int)strlen(curl));
    return replier_ok_end(&o->r, bad);
}

static const struct {
    const char *name;
    op_handler handler;
} op_table[] = {
    {"cancel", op_cancel},
    {"dist_port", op_dist_port},
    {"info", op_info},
    {"ping", op_ping},
};

int ops_init(struct ops *o, struct reply_sink sink)
{
    memset(o, 0, sizeof *o);
    o->started_ms = clock_now_ms();
    if (replier_init(&o->r, sink) != 0)
        return -1;
    if (ops_dns_backend(&o->backends[0], &o->r) != 0 ||
        ops_catalog_backend(&o->backends[1], &o->r) != 0) {
        ops_free(o);
        return -1;
    }
    return 0;
}

void ops_free(struct ops *o)
{
    /* Freeing a backend hands its unanswered requests back to it so that
     * their state is freed; nobody is listening for replies now. */
    o->r.failed = true;
    for (size_t i = OPS_BACKENDS; i-- > 0;)
        if (o->backends[i].free != NULL)
            o->backends[i].free(o->backends[i].state);
    replier_free(&o->r);
}

void ops_dropped(struct ops *o, const char *what, size_t len)
{
    o->r.counters.dropped++;
    fprintf(stderr, "caravan_port: dropped a packet of %zu bytes: %s\n", len, what);
}

int ops_packet(struct ops *o, const char *buf, size_t len)
{
    struct request req;
    const char *detail = NULL;
    enum term_error e = term_request_decode(buf, len, &req, &detail);

    if (!req.has_id) {
        ops_dropped(o, detail ? detail : term_error_text(e), len);
        return 0;
    }
    o->r.counters.requests++;
    if (e != TERM_OK)
        return replier_error(&o->r, req.id, e == TERM_BAD_SHAPE ? "bad_request" : "bad_term",
                          detail ? detail : term_error_text(e));

    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
        if (strcmp(op_table[i].name, req.op) == 0)
            return op_table[i].handler(o, &req);
    for (size_t i = 0; i < OPS_BACKENDS; i++) {
        const struct backend *b = &o->backends[i];
        for (size_t j = 0; j < b->nops; j++)
            if (strcmp(b->ops[j].name, req.op) == 0)
                return b->ops[j].fn(b->state, &req);
    }

    char msg[MSG_MAX];
    snprintf(msg, sizeof msg, "no operation '%s'", req.op);
    return replier_error(&o->r, req.id, "unknown_op", msg);
}

int ops_timeout(const struct ops *o, int cap)
{
    int t = deferred_timeout(&o->deferred, clock_now_ms(), cap);
    for (size_t i = 0; i < OPS_BACKENDS; i++)
        t = o->backends[i].timeout(o->backends[i].state, t);
    return t;
}

size_t ops_nfds(const struct ops *o)
{
    size_t n = 0;
    for (size_t i = 0; i < OPS_BACKENDS; i++)
        n += o->backends[i].nfds(o->backends[i].state);
    return n;
}

size_t ops_poll_fds(struct ops *o, struct pollfd *fds, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < OPS_BACKENDS; i++) {
        o->polled[i] = o->backends[i].poll_fds(o->backends[i].state, fds + n, cap - n);
        n += o->polled[i];
    }
    return n;
}

void ops_process(struct ops *o, const struct pollfd *fds, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < OPS_BACKENDS && at <= n; i++) {
        size_t k = o->polled[i] < n - at ? o->polled[i] : n - at;
        o->backends[i].process(o->backends[i].state, fds + at, k);
        at += k;
    }
}

int ops_tick(struct ops *o)
{
    for (size_t i = 0; i < OPS_BACKENDS; i++)
        if (o->backends[i].tick != NULL && o->backends[i].tick(o->backends[i].state) != 0)
            return -1;
    uint64_t id;
    int64_t now = clock_now_ms();
    while (deferred_pop_due(&o->deferred, now, &id))
        if (replier_ok_atom(&o->r, id, "pong") != 0)
            return -1;
    return o->r.failed ? -1 : 0;
}
