/* ops_dns.c - the DNS backend: the operations `srv' and `addr'; see ops_dns.h.
 *
 * Arguments are read here, the lookup runs in dns.c, and the answer is
 * encoded by on_done() when it arrives (possibly much later, and after
 * other requests have been answered). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <stdlib.h>

#include "dns.h"
#include "ops_dns.h"

/* Consul's agent answers DNS here; the default when no servers are given. */
#define DEFAULT_SERVERS "127.0.0.1:8600"
#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_TRIES 2
#define MAX_TIMEOUT_MS 60000
#define MAX_TRIES 10

struct dns_backend {
    struct dns *dns;
    struct replier *r;
};

/* Reads the arguments common to both lookups; transport defaults differ. */
static int read_query(struct dns_backend *o, const struct request *req, struct dns_query *q,
                      enum dns_transport default_transport)
{
    char msg[512], transport[8] = "", family[8] = "";
    size_t name_len = 0, nservers = 0;
    long long timeout = DEFAULT_TIMEOUT_MS, tries = DEFAULT_TRIES;
    bool have_servers = false;
    const struct term_arg spec[] = {
        {.key = "name", .type = ARG_BINARY, .required = true, .dest = q->name,
         .len_out = &name_len, .max = 255},
        {.key = "servers", .type = ARG_BINARY_LIST, .dest = q->servers, .len_out = &nservers,
         .max = DNS_SERVERS_MAX - 1, .seen = &have_servers},
        {.key = "timeout_ms", .type = ARG_INT, .dest = &timeout, .min = 1, .max = MAX_TIMEOUT_MS},
        {.key = "tries", .type = ARG_INT, .dest = &tries, .min = 1, .max = MAX_TRIES},
        {.key = "transport", .type = ARG_ATOM, .dest = transport, .max = sizeof transport - 1},
        {.key = "family", .type = ARG_ATOM, .dest = family, .max = sizeof family - 1},
        {.key = "resolv_conf", .type = ARG_BINARY, .dest = q->resolv_conf,
         .max = sizeof q->resolv_conf - 1},
    };

    if (term_args_parse(req, spec, sizeof spec / sizeof spec[0], msg, sizeof msg) != 0)
        return replier_error(o->r, req->id, "bad_args", msg) == 0 ? 1 : -1;
    if (name_len == 0 || memchr(q->name, '\0', name_len) != NULL)
        return replier_error(o->r, req->id, "bad_args", "name: empty or holds NUL") == 0 ? 1 : -1;
    if (!have_servers)
        snprintf(q->servers, sizeof q->servers, "%s", DEFAULT_SERVERS);
    /* servers => [] means the host's own resolver configuration. */
    q->timeout_ms = (int)timeout;
    q->tries = (int)tries;

    if (transport[0] == '\0')
        q->transport = default_transport;
    else if (strcmp(transport, "tcp") == 0)
        q->transport = DNS_TCP;
    else if (strcmp(transport, "udp") == 0)
        q->transport = DNS_UDP;
    else
        return replier_error(o->r, req->id, "bad_args", "transport: must be tcp or udp") == 0 ? 1
                                                                                          : -1;
    if (family[0] == '\0' || strcmp(family, "any") == 0)
        q->families = DNS_FAMILY_INET | DNS_FAMILY_INET6;
    else if (strcmp(family, "inet") == 0)
        q->families = DNS_FAMILY_INET;
    else if (strcmp(family, "inet6") == 0)
        q->families = DNS_FAMILY_INET6;
    else
        return replier_error(o->r, req->id, "bad_args", "family: must be inet, inet6 or any") == 0
                   ? 1
                   : -1;
    return 0;
}

static int start(struct dns_backend *o, const struct request *req, enum dns_kind kind,
                 enum dns_transport default_transport)
{
    struct dns_query q;
    memset(&q, 0, sizeof q);
    q.kind = kind;
    int rc = read_query(o, req, &q, default_transport);
    if (rc != 0)
        return rc < 0 ? -1 : 0;

    const char *reason = NULL;
    char detail[256];
    if (dns_start(o->dns, req->id, &q, &reason, detail, sizeof detail) != 0)
        return replier_error(o->r, req->id, reason, detail);
    return o->r->failed ? -1 : 0; /* the answer may already have been sent */
}

/* srv #{name := binary(), servers, timeout_ms, tries, transport, family}
 *   -> [#{priority, weight, port, target, addresses}] */
static int op_srv(void *state, const struct request *req)
{
    return start(state, req, DNS_LOOKUP_SRV, DNS_TCP);
}

/* addr #{name := binary(), servers, timeout_ms, tries, transport, family}
 *   -> [inet:ip_address()] */
static int op_addr(void *state, const struct request *req)
{
    return start(state, req, DNS_LOOKUP_ADDR, DNS_UDP);
}

/* {A,B,C,D} or the eight 16-bit groups of an IPv6 address. */
static int encode_addr(ei_x_buff *x, const struct dns_addr *a)
{
    if (a->family == AF_INET) {
        if (ei_x_encode_tuple_header(x, 4))
            return -1;
        for (int i = 0; i < 4; i++)
            if (ei_x_encode_ulong(x, a->bytes[i]))
                return -1;
        return 0;
    }
    if (ei_x_encode_tuple_header(x, 8))
        return -1;
    for (int i = 0; i < 8; i++)
        if (ei_x_encode_ulong(x, (unsigned long)(a->bytes[2 * i] << 8 | a->bytes[2 * i + 1])))
            return -1;
    return 0;
}

static int encode_addrs(ei_x_buff *x, const struct dns_addr *addrs, size_t n)
{
    if (n > 0 && ei_x_encode_list_header(x, (long)n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (encode_addr(x, &addrs[i]))
            return -1;
    return ei_x_encode_empty_list(x);
}

static int encode_srv(ei_x_buff *x, const struct dns_srv *s)
{
    return ei_x_encode_map_header(x, 5) || ei_x_encode_atom(x, "priority") ||
           ei_x_encode_ulong(x, s->priority) || ei_x_encode_atom(x, "weight") ||
           ei_x_encode_ulong(x, s->weight) || ei_x_encode_atom(x, "port") ||
           ei_x_encode_ulong(x, s->port) || ei_x_encode_atom(x, "target") ||
           ei_x_encode_binary(x, s->target, (int)strlen(s->target)) ||
           ei_x_encode_atom(x, "addresses") || encode_addrs(x, s->addrs, s->naddrs);
}

/* The most bytes an answer's Result term takes, reserved before encoding
 * (reply_reserve: growing by ei's 200 bytes, a 360-record answer of
 * 1,000-byte targets cost 2,000 reallocs and held the loop 8 ms). An
 * address: a tuple header 2 and four small integers 2 each, or eight
 * integers 5 each, in a list (header 5, nil 1). A record: map header 5,
 * five atoms 3 + 8, 3 + 6, 3 + 4, 3 + 6, 3 + 9, three integers 5 each and a
 * binary header 5: 73, plus the target and its addresses. */
static size_t addrs_bound(const struct dns_addr *addrs, size_t n)
{
    size_t bytes = 6;
    for (size_t i = 0; i < n; i++)
        bytes += addrs[i].family == AF_INET ? 10 : 42;
    return bytes;
}

static size_t result_bound(const struct dns_result *r)
{
    const struct dns_answer *a = r->answer;
    if (r->kind != DNS_LOOKUP_SRV)
        return addrs_bound(a->addrs, a->naddrs);
    size_t bytes = 6;
    for (size_t i = 0; i < a->nsrv; i++)
        bytes += 73 + strlen(a->srv[i].target) + addrs_bound(a->srv[i].addrs, a->srv[i].naddrs);
    return bytes;
}

static void on_done(void *ctx, uint64_t id, const struct dns_result *r)
{
    struct dns_backend *o = ctx;
    if (o->r->failed)
        return;
    if (r->reason) {
        replier_error(o->r, id, r->reason, r->detail);
        return;
    }
    const struct dns_answer *a = r->answer;
    ei_x_buff *x = replier_ok_begin(o->r, id);
    bool bad = x == NULL || reply_reserve(x, result_bound(r)) != 0;
    if (!bad && r->kind == DNS_LOOKUP_SRV) {
        bad = a->nsrv > 0 && ei_x_encode_list_header(x, (long)a->nsrv);
        for (size_t i = 0; i < a->nsrv && !bad; i++)
            bad = encode_srv(x, &a->srv[i]);
        bad = bad || ei_x_encode_empty_list(x);
    } else if (!bad) {
        bad = encode_addrs(x, a->addrs, a->naddrs);
    }
    replier_ok_end(o->r, bad);
}

static const struct backend_op dns_ops[] = {
    {"addr", op_addr},
    {"srv", op_srv},
};

static size_t b_nfds(const void *state)
{
    (void)state;
    return DNS_MAX_CHANNELS * DNS_MAX_SOCKS_PER_CHANNEL;
}

static size_t b_poll_fds(void *state, struct pollfd *fds, size_t cap)
{
    return dns_poll_fds(((struct dns_backend *)state)->dns, fds, cap);
}

static int b_timeout(void *state, int cap)
{
    return dns_timeout(((struct dns_backend *)state)->dns, cap);
}

static void b_process(void *state, const struct pollfd *fds, size_t n)
{
    dns_process(((struct dns_backend *)state)->dns, fds, n);
}

static int b_cancel(void *state, uint64_t id)
{
    return dns_cancel(((struct dns_backend *)state)->dns, id);
}

static uint64_t b_inflight(const void *state)
{
    return dns_inflight(((const struct dns_backend *)state)->dns);
}

static void b_free(void *state)
{
    struct dns_backend *s = state;
    if (s != NULL)
        dns_free(s->dns);
    free(s);
}

int ops_dns_backend(struct backend *b, struct replier *r)
{
    struct dns_backend *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->r = r;
    s->dns = dns_new(on_done, s);
    if (s->dns == NULL) {
        free(s);
        return -1;
    }
    *b = (struct backend){.state = s,
                          .ops = dns_ops,
                          .nops = sizeof dns_ops / sizeof dns_ops[0],
                          .nfds = b_nfds,
                          .poll_fds = b_poll_fds,
                          .timeout = b_timeout,
                          .process = b_process,
                          .tick = NULL,
                          .cancel = b_cancel,
                          .inflight_key = "dns_inflight",
                          .inflight = b_inflight,
                          .free = b_free};
    return 0;
}
