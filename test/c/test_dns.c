/* dns.c (channels, lookups, shutdown) against a small DNS responder run in
 * this process on 127.0.0.1: UDP and TCP on one port, driven by the same
 * poll() loop as the lookups. It answers SRV questions with N targets
 * (n1.t ... nN.t, no ADDITIONAL section) and A questions with 127.0.2.I;
 * with udp_silent set it reads UDP queries but never answers them, as a
 * server reachable only over TCP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"

#define MAX_CONNS 8

struct responder {
    int udp, listener, conns[MAX_CONNS];
    int port;
    int targets;
    int udp_silent;
    int rcode; /* non-zero: every answer is this error, with no records */
    int udp_queries, tcp_queries;
    int a_silent; /* reads A queries but never answers them */
    int zero_ports; /* SRV records n1..nK carry port 0 */
    /* An SRV question for a name starting with "bad" gets one target that
     * c-ares cannot ask about (a label of 63 bytes, most of them escaped
     * as \DDD in text: over 63 for ares_create_query), and its answer is
     * held until bad_release is set. */
    int bad_release;
    uint8_t bad_q[512];
    size_t bad_qlen;
    struct sockaddr_in bad_from;
    socklen_t bad_flen;
    int bad_answered;
};

struct outcome {
    int calls;
    const char *reason;
    size_t nsrv, naddrs;
};

static void done(void *ctx, uint64_t id, const struct dns_result *r)
{
    (void)id;
    struct outcome *o = ctx;
    o->calls++;
    o->reason = r->reason;
    o->nsrv = r->answer->nsrv;
    o->naddrs = 0;
    for (size_t i = 0; i < r->answer->nsrv; i++)
        o->naddrs += r->answer->srv[i].naddrs;
}

static void responder_start(struct responder *r, int targets, int udp_silent)
{
    memset(r, 0, sizeof *r);
    r->targets = targets;
    r->udp_silent = udp_silent;
    for (int i = 0; i < MAX_CONNS; i++)
        r->conns[i] = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    /* The kernel picks the TCP port; UDP takes the same one (retried if
     * something already holds it for UDP). */
    for (int attempt = 0; attempt < 20; attempt++) {
        r->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        a.sin_port = 0;
        assert_int_equal(bind(r->listener, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(listen(r->listener, 8), 0);
        assert_int_equal(getsockname(r->listener, (struct sockaddr *)&a, &len), 0);
        r->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (bind(r->udp, (struct sockaddr *)&a, sizeof a) == 0)
            break;
        close(r->udp);
        close(r->listener);
        r->udp = -1;
    }
    assert_true(r->udp >= 0);
    r->port = ntohs(a.sin_port);
}

static void responder_stop(struct responder *r)
{
    close(r->udp);
    close(r->listener);
    for (int i = 0; i < MAX_CONNS; i++)
        if (r->conns[i] >= 0)
            close(r->conns[i]);
}

static void put16(uint8_t *b, size_t *n, unsigned v)
{
    b[(*n)++] = (uint8_t)(v >> 8);
    b[(*n)++] = (uint8_t)v;
}

static void put_name(uint8_t *b, size_t *n, const char *dotted)
{
    while (*dotted) {
        size_t len = strcspn(dotted, ".");
        b[(*n)++] = (uint8_t)len;
        memcpy(b + *n, dotted, len);
        *n += len;
        dotted += len + (dotted[len] == '.');
    }
    b[(*n)++] = 0;
}

/* Builds the answer to query q (qlen bytes) into out; returns its length,
 * or 0 for a query this responder does not read. */
static size_t build_answer(const struct responder *r, const uint8_t *q, size_t qlen, uint8_t *out)
{
    if (qlen < 12)
        return 0;
    size_t pos = 12;
    char qname[256];
    size_t used = 0;
    while (pos < qlen && q[pos] != 0) {
        size_t l = q[pos++];
        if (pos + l > qlen || used + l + 2 > sizeof qname)
            return 0;
        if (used)
            qname[used++] = '.';
        memcpy(qname + used, q + pos, l);
        used += l;
        pos += l;
    }
    qname[used] = '\0';
    if (pos + 5 > qlen)
        return 0;
    unsigned qtype = (unsigned)(q[pos + 1] << 8 | q[pos + 2]);
    size_t qend = pos + 5;
    if (qtype == 1 && r->a_silent)
        return 0;
    bool bad = strncmp(qname, "bad", 3) == 0;

    size_t n = 0;
    memcpy(out, q, 2); /* id */
    n = 2;
    put16(out, &n, (unsigned)(0x8400 | (q[2] & 1) << 8 | r->rcode)); /* QR, AA, RD echoed */
    put16(out, &n, 1);
    size_t ancount_at = n;
    put16(out, &n, 0);
    put16(out, &n, 0);
    put16(out, &n, 0);
    memcpy(out + n, q + 12, qend - 12);
    n += qend - 12;
    unsigned count = 0;
    if (r->rcode != 0) {
        /* no records */
    } else if (qtype == 33 && bad) {
        put16(out, &n, 0xC00C);
        put16(out, &n, 33);
        put16(out, &n, 1);
        put16(out, &n, 0);
        put16(out, &n, 0);
        put16(out, &n, 2 + 2 + 2 + 1 + 63 + 1);
        put16(out, &n, 1);
        put16(out, &n, 1);
        put16(out, &n, 30000);
        out[n++] = 63;
        memset(out + n, 1, 40);
        memset(out + n + 40, 'a', 23);
        n += 63;
        out[n++] = 0;
        count = 1;
    } else if (qtype == 33) {
        for (int i = 1; i <= r->targets; i++, count++) {
            char target[32];
            snprintf(target, sizeof target, "n%d.t", i);
            put16(out, &n, 0xC00C);
            put16(out, &n, 33);
            put16(out, &n, 1);
            put16(out, &n, 0);
            put16(out, &n, 0);
            size_t rdlen_at = n;
            put16(out, &n, 0);
            put16(out, &n, 1);
            put16(out, &n, 1);
            put16(out, &n, i <= r->zero_ports ? 0u : (unsigned)(30000 + i));
            put_name(out, &n, target);
            size_t rdlen = n - rdlen_at - 2;
            out[rdlen_at] = (uint8_t)(rdlen >> 8);
            out[rdlen_at + 1] = (uint8_t)rdlen;
        }
    } else if (qtype == 1 && qname[0] == 'n') {
        int i = atoi(qname + 1);
        put16(out, &n, 0xC00C);
        put16(out, &n, 1);
        put16(out, &n, 1);
        put16(out, &n, 0);
        put16(out, &n, 0);
        put16(out, &n, 4);
        const uint8_t a[4] = {127, 0, 2, (uint8_t)i};
        memcpy(out + n, a, 4);
        n += 4;
        count = 1;
    }
    out[ancount_at] = (uint8_t)(count >> 8);
    out[ancount_at + 1] = (uint8_t)count;
    return n;
}

static void serve(struct responder *r)
{
    uint8_t q[1500], a[8192];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t got;
    if (r->bad_qlen > 0 && r->bad_release) {
        size_t n = build_answer(r, r->bad_q, r->bad_qlen, a);
        (void)sendto(r->udp, a, n, 0, (struct sockaddr *)&r->bad_from, r->bad_flen);
        r->bad_qlen = 0;
        r->bad_answered = 1;
    }
    while ((got = recvfrom(r->udp, q, sizeof q, 0, (struct sockaddr *)&from, &flen)) > 0) {
        r->udp_queries++;
        if (got > 16 && (size_t)got <= sizeof r->bad_q && memcmp(q + 13, "bad", 3) == 0 &&
            !r->bad_release) {
            memcpy(r->bad_q, q, (size_t)got);
            r->bad_qlen = (size_t)got;
            r->bad_from = from;
            r->bad_flen = flen;
            flen = sizeof from;
            continue;
        }
        size_t n = r->udp_silent ? 0 : build_answer(r, q, (size_t)got, a);
        if (n > 0)
            (void)sendto(r->udp, a, n, 0, (struct sockaddr *)&from, flen);
        flen = sizeof from;
    }
    int c;
    while ((c = accept(r->listener, NULL, NULL)) >= 0) {
        int slot = 0;
        while (slot < MAX_CONNS && r->conns[slot] >= 0)
            slot++;
        if (slot == MAX_CONNS) {
            close(c);
            continue;
        }
        r->conns[slot] = c;
    }
    /* TCP: small queries arrive whole on loopback; read each, answer it. */
    for (int i = 0; i < MAX_CONNS; i++) {
        if (r->conns[i] < 0)
            continue;
        struct pollfd p = {.fd = r->conns[i], .events = POLLIN};
        while (poll(&p, 1, 0) == 1) {
            uint8_t hdr[2];
            if (read(r->conns[i], hdr, 2) != 2) {
                close(r->conns[i]);
                r->conns[i] = -1;
                break;
            }
            size_t qlen = (size_t)(hdr[0] << 8 | hdr[1]);
            if (qlen > sizeof q || read(r->conns[i], q, qlen) != (ssize_t)qlen) {
                close(r->conns[i]);
                r->conns[i] = -1;
                break;
            }
            r->tcp_queries++;
            size_t n = build_answer(r, q, qlen, a + 2);
            a[0] = (uint8_t)(n >> 8);
            a[1] = (uint8_t)n;
            if (n > 0 && write(r->conns[i], a, n + 2) != (ssize_t)(n + 2))
                fail_msg("short TCP write");
        }
    }
}

/* One round of the program's loop, with the responder's sockets polled too. */
/* One turn of the program's loop for d and k responders: poll, let each
 * responder answer, then d. */
static void step_many(struct dns *d, struct responder *rs, int k)
{
    struct pollfd fds[DNS_MAX_CHANNELS * DNS_MAX_SOCKS_PER_CHANNEL + 16 * (2 + MAX_CONNS)];
    size_t n = dns_poll_fds(d, fds, DNS_MAX_CHANNELS * DNS_MAX_SOCKS_PER_CHANNEL);
    size_t extra = n;
    for (int j = 0; j < k; j++) {
        fds[extra++] = (struct pollfd){.fd = rs[j].udp, .events = POLLIN};
        fds[extra++] = (struct pollfd){.fd = rs[j].listener, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++)
            if (rs[j].conns[i] >= 0)
                fds[extra++] = (struct pollfd){.fd = rs[j].conns[i], .events = POLLIN};
    }
    assert_true(poll(fds, extra, dns_timeout(d, 20)) >= 0 || errno == EINTR);
    for (int j = 0; j < k; j++)
        serve(&rs[j]);
    dns_process(d, fds, n);
}

static void step(struct dns *d, struct responder *r)
{
    step_many(d, r, 1);
}

/* Steps while cond holds, for at most ms. */
#define STEP_WHILE(d, r, cond, ms)                                                              \
    do {                                                                                       \
        int64_t until_ = clock_now_ms() + (ms);                                                \
        while ((cond) && clock_now_ms() < until_)                                              \
            step((d), (r));                                                                    \
    } while (0)

static struct dns_query srv_query(const struct responder *r, enum dns_transport t, int timeout_ms)
{
    struct dns_query q;
    memset(&q, 0, sizeof q);
    q.kind = DNS_LOOKUP_SRV;
    snprintf(q.name, sizeof q.name, "app.service.consul");
    snprintf(q.servers, sizeof q.servers, "127.0.0.1:%d", r->port);
    q.timeout_ms = timeout_ms;
    q.tries = 2;
    q.transport = t;
    q.families = DNS_FAMILY_INET | DNS_FAMILY_INET6;
    return q;
}

static void start_ok(struct dns *d, uint64_t id, const struct dns_query *q)
{
    const char *reason = NULL;
    char detail[256];
    if (dns_start(d, id, q, &reason, detail, sizeof detail) != 0)
        fail_msg("dns_start: %s (%s)", detail, reason);
}

/* Most tests' setting: one responder (responder_start's targets and
 * udp_silent), and a dns whose answers land in o. */
struct rig {
    struct responder r;
    struct outcome o;
    struct dns *d;
};

static void rig_start(struct rig *g, int targets, int udp_silent)
{
    responder_start(&g->r, targets, udp_silent);
    g->o = (struct outcome){0};
    g->d = dns_new(done, &g->o);
}

static void rig_stop(struct rig *g)
{
    dns_free(g->d);
    responder_stop(&g->r);
}

/* Starts lookup 1 of q and steps until it is answered, for at most 5 s:
 * answered once. */
static void answered_once(struct rig *g, const struct dns_query *q)
{
    start_ok(g->d, 1, q);
    STEP_WHILE(g->d, &g->r, g->o.calls == 0, 5000);
    assert_int_equal(g->o.calls, 1);
}

/* The answer has no error and n targets, each with its one address. */
static void expect_complete(const struct outcome *o, size_t n)
{
    assert_null(o->reason);
    assert_int_equal(o->nsrv, n);
    assert_int_equal(o->naddrs, n);
}

/* Sanity: the responder and the loop give a complete answer. */
static void srv_with_followups_completes(void **state)
{
    (void)state;
    struct rig g;
    rig_start(&g, 5, 0);
    struct dns_query q = srv_query(&g.r, DNS_TCP, 3000);
    answered_once(&g, &q);
    expect_complete(&g.o, 5);
    rig_stop(&g);
}

/* Issue 18 item 6: an SRV record with port 0 names no service (the README:
 * left out); it was answered and dialled forever as app-0@host. Left out,
 * and its target never asked about. */
static void port_zero_records_are_left_out(void **state)
{
    (void)state;
    struct rig g;
    rig_start(&g, 5, 0);
    g.r.zero_ports = 2;
    struct dns_query q = srv_query(&g.r, DNS_TCP, 3000);
    answered_once(&g, &q);
    expect_complete(&g.o, 3);
    assert_int_equal(g.r.udp_queries, 3); /* follow-ups for n3..n5 only */
    rig_stop(&g);
}

/* Issue 10 item 1: the SRV answer came over TCP, the follow-ups (UDP) are
 * never answered, and everything is torn down while they wait. Before the
 * fix ares_destroy of the UDP channel called back into a lookup whose TCP
 * channel was already freed (heap-use-after-free under ASan). */
static void shutdown_with_followups_pending(void **state)
{
    (void)state;
    struct rig g;
    rig_start(&g, 5, 1);
    struct dns_query q = srv_query(&g.r, DNS_TCP, 30000);
    for (uint64_t id = 1; id <= 3; id++)
        start_ok(g.d, id, &q);
    STEP_WHILE(g.d, &g.r, g.r.udp_queries < 5, 5000);
    assert_true(g.r.udp_queries >= 5);
    assert_int_equal(dns_inflight(g.d), 3);
    rig_stop(&g);
    assert_int_equal(g.o.calls, 0); /* cancelled, not answered */
}

/* A lookup answered at its deadline lets go at once: nothing in flight
 * right after the timeout answer, although c-ares still had its follow-ups
 * (before: it stayed in flight until they timed out, seconds later). */
static void deadline_releases_the_lookup(void **state)
{
    (void)state;
    struct rig g;
    rig_start(&g, 3, 1);
    struct dns_query q = srv_query(&g.r, DNS_TCP, 200);
    answered_once(&g, &q);
    assert_string_equal(g.o.reason, "timeout");
    assert_int_equal(dns_inflight(g.d), 0);
    /* And no follow-up leaves for it afterwards. */
    int sent = g.r.udp_queries;
    STEP_WHILE(g.d, &g.r, true, 1500);
    assert_int_equal(g.r.udp_queries, sent);
    rig_stop(&g);
}

/* Issue 10 item 9: lookups to one server set share its channels whatever
 * their timeout_ms and tries. Before: the 5th TCP SRV lookup with its own
 * options was refused with overload (two channels each, 8 in all). */
static void lookups_share_channels_whatever_options(void **state)
{
    (void)state;
    struct rig g;
    rig_start(&g, 2, 0);
    for (int i = 0; i < 20; i++) {
        struct dns_query q = srv_query(&g.r, DNS_TCP, 3000 + i);
        q.tries = 1 + i % 3;
        start_ok(g.d, (uint64_t)i + 1, &q);
    }
    STEP_WHILE(g.d, &g.r, g.o.calls < 20, 5000);
    assert_int_equal(g.o.calls, 20);
    rig_stop(&g);
}

/* Two sockets per server fit a channel's cap; a longer list is refused
 * rather than leaving sockets unpolled. */
static void too_many_servers_refused(void **state)
{
    (void)state;
    struct outcome o = {0};
    struct dns *d = dns_new(done, &o);
    struct dns_query q;
    memset(&q, 0, sizeof q);
    q.kind = DNS_LOOKUP_SRV;
    snprintf(q.name, sizeof q.name, "app.service.consul");
    size_t used = 0;
    for (int i = 0; i <= DNS_MAX_SERVERS; i++)
        used += (size_t)snprintf(q.servers + used, sizeof q.servers - used, "%s127.0.0.%d:53",
                                 i ? "," : "", i + 1);
    q.timeout_ms = 100;
    q.tries = 1;
    q.families = DNS_FAMILY_INET;
    const char *reason = NULL;
    char detail[256];
    assert_int_equal(dns_start(d, 1, &q, &reason, detail, sizeof detail), -1);
    assert_string_equal(reason, "bad_args");
    dns_free(d);
}

/* One round of the loop with several responders' sockets polled. */

/* Fail-over (REFUSED from every one of 8 servers, the cap) while other
 * server sets hold most channels: each step needs two new channels (TCP
 * and the UDP follow-up one) and may only mark idle ones dead from inside
 * c-ares. The lookup is answered exactly once with an error, nothing is
 * freed twice or leaked (ASan), and the busy lookups stay untouched. */
static void fail_over_under_channel_pressure(void **state)
{
    (void)state;
    enum { REFUSING = DNS_MAX_SERVERS, BUSY = 4 };
    struct responder rs[REFUSING + BUSY];
    struct outcome o = {0};
    for (int j = 0; j < REFUSING + BUSY; j++) {
        responder_start(&rs[j], 2, j >= REFUSING);
        rs[j].rcode = j < REFUSING ? 5 : 0;
    }
    struct dns *d = dns_new(done, &o);
    for (int j = REFUSING; j < REFUSING + BUSY; j++) {
        struct dns_query q = srv_query(&rs[j], DNS_UDP, 30000);
        start_ok(d, (uint64_t)j + 100, &q);
    }
    struct dns_query q = srv_query(&rs[0], DNS_TCP, 3000);
    size_t used = 0;
    for (int j = 0; j < REFUSING; j++)
        used += (size_t)snprintf(q.servers + used, sizeof q.servers - used, "%s127.0.0.1:%d",
                                 j ? "," : "", rs[j].port);
    start_ok(d, 1, &q);
    int64_t until = clock_now_ms() + 5000;
    while (o.calls == 0 && clock_now_ms() < until)
        step_many(d, rs, REFUSING + BUSY);
    assert_int_equal(o.calls, 1);
    assert_non_null(o.reason);
    assert_int_equal(dns_inflight(d), BUSY);
    /* Every server was asked in turn, channels being found for each. */
    int asked = 0;
    for (int j = 0; j < REFUSING; j++)
        asked += rs[j].tcp_queries > 0;
    assert_int_equal(asked, REFUSING); /* each step dropped one server */
    /* Some more rounds: dead channels are reaped, nothing else happens. */
    until = clock_now_ms() + 300;
    while (clock_now_ms() < until)
        step_many(d, rs, REFUSING + BUSY);
    assert_int_equal(o.calls, 1);
    dns_free(d);
    for (int j = 0; j < REFUSING + BUSY; j++)
        responder_stop(&rs[j]);
}

/* A window full of one lookup's follow-ups, and an older lookup's query
 * waiting behind them that c-ares refuses at once (EBADNAME, called back
 * inside ares_query). The younger lookup's deadline detaches its queries
 * and cancels them (cancel_orphans); each cancelled one makes room, so the
 * waiting query is sent from inside ares_cancel, fails there, and answers
 * and frees the older lookup: the next one in dns_process's walk of the
 * lookups. Nothing may be read from it after that (ASan: use after free). */
static void waiting_query_failing_at_once_inside_cancel(void **state)
{
    (void)state;
    struct rig g;
    rig_start(&g, 70, 0);
    g.r.a_silent = 1;
    struct dns_query old = srv_query(&g.r, DNS_UDP, 30000);
    snprintf(old.name, sizeof old.name, "bad.service.consul");
    old.families = DNS_FAMILY_INET;
    start_ok(g.d, 1, &old);
    struct dns_query young = srv_query(&g.r, DNS_UDP, 300);
    young.families = DNS_FAMILY_INET;
    start_ok(g.d, 2, &young);
    /* The young lookup's SRV answer: 70 follow-ups, 63 of them sent (the
     * old lookup's SRV question holds the last place). */
    STEP_WHILE(g.d, &g.r, g.r.udp_queries < 2 + 63, 2000);
    assert_int_equal(g.r.udp_queries, 2 + 63);
    /* The old lookup's answer: its follow-up waits behind the young one's. */
    g.r.bad_release = 1;
    STEP_WHILE(g.d, &g.r, !g.r.bad_answered, 2000);
    assert_int_equal(g.o.calls, 0);
    STEP_WHILE(g.d, &g.r, g.o.calls < 2, 2000);
    assert_int_equal(g.o.calls, 2);
    assert_int_equal(dns_inflight(g.d), 0);
    rig_stop(&g);
}

/* Fail-over: the first server answers SERVFAIL, the second REFUSED, the
 * third the records. Over TCP and over UDP the lookup moves on past both
 * failures and is answered once, complete (the follow-ups fail over the
 * same way); each failing server was asked. */
static void servfail_and_refused_fail_over(void **state)
{
    (void)state;
    const enum dns_transport transports[] = {DNS_TCP, DNS_UDP};
    for (size_t t = 0; t < sizeof transports / sizeof transports[0]; t++) {
        struct responder rs[3];
        struct outcome o = {0};
        for (int j = 0; j < 3; j++)
            responder_start(&rs[j], 2, 0);
        rs[0].rcode = 2; /* SERVFAIL */
        rs[1].rcode = 5; /* REFUSED */
        struct dns *d = dns_new(done, &o);
        struct dns_query q = srv_query(&rs[0], transports[t], 5000);
        snprintf(q.servers, sizeof q.servers, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
                 rs[0].port, rs[1].port, rs[2].port);
        start_ok(d, 1, &q);
        int64_t until = clock_now_ms() + 5000;
        while (o.calls == 0 && clock_now_ms() < until)
            step_many(d, rs, 3);
        assert_int_equal(o.calls, 1);
        if (o.reason != NULL)
            fail_msg("transport %zu: %s", t, o.reason);
        assert_int_equal(o.nsrv, 2);
        assert_int_equal(o.naddrs, 2);
        for (int j = 0; j < 3; j++)
            assert_true(rs[j].udp_queries + rs[j].tcp_queries > 0);
        assert_int_equal(dns_inflight(d), 0);
        dns_free(d);
        for (int j = 0; j < 3; j++)
            responder_stop(&rs[j]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(srv_with_followups_completes),
        cmocka_unit_test(port_zero_records_are_left_out),
        cmocka_unit_test(shutdown_with_followups_pending),
        cmocka_unit_test(deadline_releases_the_lookup),
        cmocka_unit_test(lookups_share_channels_whatever_options),
        cmocka_unit_test(too_many_servers_refused),
        cmocka_unit_test(fail_over_under_channel_pressure),
        cmocka_unit_test(waiting_query_failing_at_once_inside_cancel),
        cmocka_unit_test(servfail_and_refused_fail_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
