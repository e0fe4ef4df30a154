/* dns.c - c-ares channels, lookups and their poll() integration; see dns.h.
 *
 * IMPORTANT: c-ares may call a query's callback from inside ares_query()
 * (bad name, no memory), from inside ares_process_fd() and from inside
 * ares_destroy(). Hence the ownership rule of dns.h:
 * - a channel is only ever freed by reap(), which runs at the safe points
 *   (dns_poll_fds, the end of dns_process, dns_free) and never while c-ares
 *   is running (d->depth), while a lookup holds the channel, while a query
 *   is pending on it, or while the poll table lists it;
 * - a lookup is held (pending + 1) while code that issues queries for it
 *   runs; once answered it detaches its queries (query->lookup = NULL) and
 *   is freed, so a late callback touches only its query and channel. */
#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */

#include "dns_internal.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ares_socks.h"
#include "clock.h"
#include "fds.h"

/* Stable atom for a c-ares status code (ARES_E*). */
const char *dns_status_atom(int status)
{
    switch (status) {
    case ARES_SUCCESS: return "ok";
    case ARES_ENODATA:
    case ARES_ENOTFOUND: return "nxdomain";
    case ARES_ESERVFAIL: return "servfail";
    case ARES_EREFUSED: return "refused";
    case ARES_ETIMEOUT: return "timeout";
    case ARES_ECONNREFUSED: return "connection_refused";
    case ARES_EFORMERR:
    case ARES_EBADRESP: return "bad_answer";
    case ARES_ENOTIMP: return "not_implemented";
    case ARES_EBADNAME:
    case ARES_EBADSTR:
    case ARES_EBADQUERY: return "bad_args";
    case ARES_ENOMEM: return "no_memory";
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return "cancelled";
    default: return "dns_error";
    }
}

/*** public ***/

struct dns *dns_new(dns_done_fn done, void *ctx)
{
    if (ares_socks_library_init() != 0)
        return NULL;
    struct dns *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->done = done;
    d->ctx = ctx;
    return d;
}

void dns_free(struct dns *d)
{
    if (d == NULL)
        return;
    d->closing = true;
    /* Lookups first: their queries are detached, so the callbacks that
     * ares_destroy makes (EDESTRUCTION) touch only their own channel, which
     * stays allocated until its ares_destroy returns. Any order is safe. */
    while (d->lookups)
        dns_lookup_free(d->lookups);
    while (d->channels) {
        struct channel *ch = d->channels;
        d->channels = ch->next;
        dns_channel_free(d, ch);
    }
    free(d);
}

/* Number of servers in a "a,b,c" list. */
static size_t count_servers(const char *servers)
{
    if (servers[0] == '\0')
        return 0;
    size_t n = 1;
    for (const char *p = servers; *p; p++)
        n += *p == ',';
    return n;
}

int dns_start(struct dns *d, uint64_t id, const struct dns_query *q, const char **reason,
              char *detail, size_t dlen)
{
    if (d->inflight >= DNS_MAX_INFLIGHT) {
        *reason = "overload";
        snprintf(detail, dlen, "%d DNS lookups already in flight", DNS_MAX_INFLIGHT);
        return -1;
    }
    if (count_servers(q->servers) > DNS_MAX_SERVERS) {
        *reason = "bad_args";
        snprintf(detail, dlen, "servers: at most %d", DNS_MAX_SERVERS);
        return -1;
    }
    struct channel *ch, *followup_ch;
    if (dns_hold_channels(d, q, &ch, &followup_ch, reason, detail, dlen) != 0)
        return -1;
    struct lookup *l = calloc(1, sizeof *l);
    if (l == NULL) {
        ch->holds--;
        followup_ch->holds--;
        *reason = "no_memory";
        snprintf(detail, dlen, "cannot allocate a DNS lookup");
        return -1;
    }
    l->d = d;
    l->q = *q;
    l->ch = ch;
    l->followup_ch = followup_ch;
    l->id = id;
    l->kind = q->kind;
    l->families = q->families;
    l->tries_left = q->tries > DNS_CHANNEL_TRIES ? q->tries - DNS_CHANNEL_TRIES : 0;
    l->deadline_ms = clock_now_ms() + q->timeout_ms;
    if (q->transport == DNS_UDP && q->timeout_ms < DNS_CHANNEL_TRIES * DNS_TRY_TIMEOUT_MS)
        l->resend_ms = clock_now_ms() + q->timeout_ms / 2;
    l->followup_resends = q->timeout_ms < DNS_CHANNEL_TRIES * DNS_TRY_TIMEOUT_MS;
    l->status = ARES_SUCCESS;
    dns_answer_init(&l->answer);
    l->next = d->lookups;
    if (d->lookups)
        d->lookups->prev = l;
    d->lookups = l;
    d->inflight++;

    l->pending = 1; /* hold while issuing */
    if (q->kind == DNS_LOOKUP_SRV) {
        dns_issue(l, q->name, ns_t_srv, false, 0);
    } else {
        if (q->families & DNS_FAMILY_INET)
            dns_issue(l, q->name, ns_t_a, false, 0);
        if (q->families & DNS_FAMILY_INET6)
            dns_issue(l, q->name, ns_t_aaaa, false, 0);
    }
    dns_release(l);
    return 0;
}

/* Forgets the poll table handed out last: its channels may be reaped. */
static void unlist(struct dns *d)
{
    for (size_t i = 0; i < d->npolled; i++)
        d->polled[i]->listed = false;
    d->npolled = 0;
}

size_t dns_poll_fds(struct dns *d, struct pollfd *fds, size_t cap)
{
    unlist(d);
    dns_reap(d);
    size_t n = 0;
    /* Dead channels have no queries (only idle ones are evicted, and a dead
     * one takes no new ones): nothing to poll for. Live ones number at most
     * DNS_MAX_CHANNELS, each with at most DNS_MAX_SOCKS_PER_CHANNEL sockets
     * (ares_socks refuses more): a table of that size lists them all. */
    for (struct channel *ch = d->channels; ch; ch = ch->next) {
        if (ch->dead)
            continue;
        for (size_t k = 0; k < ch->socks.n && n < cap && n < sizeof d->polled / sizeof d->polled[0];
             k++) {
            fds[n] = ares_socks_pollfd(&ch->socks, k);
            d->polled[n] = ch;
            ch->listed = true;
            n++;
        }
    }
    d->npolled = n;
    return n;
}

/* c-ares' own ares_timeout() walks every outstanding query of a channel
 * (c-ares 1.18), which with thousands of follow-ups in flight was the
 * program's largest user of CPU (perf, bench/dns_bench.escript). Its tries
 * last DNS_TRY_TIMEOUT_MS, so waking every DNS_TICK_MS while queries are
 * out retries them at most that late, for no walk at all. */
#define DNS_TICK_MS 25

int dns_timeout(struct dns *d, int cap)
{
    int64_t best = cap, now = clock_now_ms();
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        if (ch->queries > 0 && DNS_TICK_MS < best)
            best = DNS_TICK_MS;
    for (struct lookup *l = d->lookups; l; l = l->next) {
        if (l->deadline_ms - now < best)
            best = l->deadline_ms - now;
        if (l->resend_ms > 0 && l->resend_ms - now < best)
            best = l->resend_ms - now;
        if (l->followup_resend_ms > 0 && l->followup_resend_ms - now < best)
            best = l->followup_resend_ms - now;
    }
    return best < 0 ? 0 : (int)best;
}

/* A channel whose queries are all detached (a lookup that failed over may
 * still have live ones on a channel it no longer holds, a lookup answered at
 * its deadline or cancelled leaves its own): end them rather than let
 * c-ares keep re-sending questions nobody waits for. Their callbacks
 * (ECANCELLED, EDESTRUCTION) only free the query. Not from inside c-ares.
 * IMPORTANT: a TCP channel is retired, not ares_cancel'ed. c-ares 1.18.1's
 * ares_cancel frees each query without taking it off its server's TCP send
 * queue, so a question not yet written (a connection still being made) is
 * later written from freed memory: a heap-use-after-free, and freed heap
 * bytes sent to the server. A retired channel takes no new lookups (dead)
 * and dns_reap() destroys it once nothing holds it: ares_destroy frees the send
 * queues with the queries. UDP questions are sent at once, never queued. */
static void cancel_orphans(struct dns *d, struct channel *ch)
{
    if (ch->queries == 0 || ch->orphans != ch->queries || d->depth > 0)
        return;
    if (ch->tcp) {
        ch->dead = true;
        return;
    }
    d->depth++;
    ares_cancel(ch->ares);
    d->depth--;
}

/* Copies l's follow-ups due by now, once each (dns.h), and sets
 * followup_resend_ms to the next one due, 0 if none. */
void dns_resend_followups(struct lookup *l, int64_t now)
{
    struct { int type; size_t group; char target[DNS_NAME_TEXT_MAX]; } again[16];
    size_t n = 0;
    int64_t next = 0;
    for (struct query *q = l->queries; q != NULL; q = q->next) {
        if (!q->followup || q->resend_ms == 0)
            continue;
        if (q->waiting && q->resend_ms <= now) /* not sent, so not lost: later */
            q->resend_ms = now + (l->deadline_ms - now) / 2 + 1;
        if (q->resend_ms > now || n == sizeof again / sizeof again[0]) {
            if (next == 0 || q->resend_ms < next)
                next = q->resend_ms;
            continue;
        }
        q->resend_ms = 0;
        again[n].type = q->type;
        again[n].group = q->group;
        memcpy(again[n].target, q->target, sizeof again[n].target);
        n++;
    }
    /* Set before issuing: a copy may answer, and free, l at once. */
    l->followup_resend_ms = next > 0 && next <= now ? now + 1 : next;
    l->pending++; /* hold while issuing, as dns_resend() */
    l->copying = true;
    l->followups_copied = l->followups_copied || n > 0;
    for (size_t i = 0; i < n; i++)
        dns_issue(l, again[i].target, again[i].type, true, again[i].group);
    l->copying = false;
    dns_release(l);
}

void dns_process(struct dns *d, const struct pollfd *fds, size_t n)
{
    /* polled[i] stays allocated: it is listed, and dns_reap() spares listed
     * channels until unlist() below. */
    d->depth++;
    for (size_t i = 0; i < n && i < d->npolled; i++) {
        if (fds[i].revents == 0)
            continue;
        ares_socket_t rfd = fds[i].revents & (POLLIN | POLLHUP | POLLERR) ? fds[i].fd
                                                                          : ARES_SOCKET_BAD;
        ares_socket_t wfd = fds[i].revents & POLLOUT ? fds[i].fd : ARES_SOCKET_BAD;
        ares_process_fd(d->polled[i]->ares, rfd, wfd);
    }
    /* Let c-ares retry or time out queries whose sockets stayed quiet. */
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        if (ch->queries > 0)
            ares_process_fd(ch->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    d->depth--;

    /* A lookup past its deadline is answered and let go of at once: no more
     * follow-ups, its channels free for others. */
    int64_t now = clock_now_ms();
    for (struct lookup *l = d->lookups, *next; l; l = next) {
        next = l->next;
        if (now >= l->deadline_ms) {
            dns_lookup_answer(l, "timeout", "no complete DNS answer within the lookup's timeout");
            dns_lookup_free(l);
        }
    }
    /* Resends, one at a time from the head: issuing may answer (and free)
     * any lookup, as dns_pump() sends other lookups' waiting queries. Each
     * lookup resends once (resend_ms cleared first), so this ends; so does
     * each follow-up (its copies get no resend_ms). */
    for (struct lookup *l = d->lookups; l;) {
        if (l->resend_ms > 0 && now >= l->resend_ms) {
            l->resend_ms = 0;
            dns_resend(l);
            l = d->lookups;
        } else if (l->followup_resend_ms > 0 && now >= l->followup_resend_ms) {
            dns_resend_followups(l, now);
            l = d->lookups;
        } else {
            l = l->next;
        }
    }
    /* Only after that walk: a cancelled query makes room in its channel's
     * window, dns_pump() sends a waiting one, and c-ares may fail it inside
     * ares_query (a name it cannot encode), which answers and frees that
     * query's lookup, the walk's next one among them. Every channel, as a
     * lookup that failed over left queries on channels it no longer holds. */
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        cancel_orphans(d, ch);
    unlist(d);
    dns_reap(d);
}

int dns_cancel(struct dns *d, uint64_t id)
{
    struct lookup *l = d->lookups;
    while (l != NULL && l->id != id)
        l = l->next;
    if (l == NULL || d->depth > 0)
        return 0;
    dns_lookup_free(l);
    /* As at the end of dns_process: ares_cancel's callbacks free detached
     * queries and dns_pump() may send waiting ones, which may answer (and
     * free) other lookups; nothing here is walked afterwards. */
    for (struct channel *ch = d->channels; ch; ch = ch->next)
        cancel_orphans(d, ch);
    return 1;
}

size_t dns_inflight(const struct dns *d)
{
    return d->inflight;
}
